/* Reading runs: one whole run record, and the searches behind the run
 * list (by workflow, status, tag, time, HTTP status, extracted variable,
 * trigger), each served by an index on both backends. */
#include <ctype.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

static const char *const statuses[] = {"queued", "running", "succeeded", "degraded", "failed", "cancelled", NULL};

static int run_get_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "run_id");
  json_t *run = NULL, *steps = NULL, *notes = NULL;
  int rc = rm__dbfail(j, c, rm__q1(c, &run, "SELECT " RM__RUN_COLS " FROM runs WHERE run_id = $1", json_pack("[s]", id)));
  if (rc == 0 && !run) rc = rm__fail(j, RM_ENOTFOUND, "run %s: not found", id);
  if (rc == 0) rc = rm__run_steps(c, j, id, &steps);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q(c, &notes,
                          "SELECT id, run_id, kind, author, text, created_at FROM annotations WHERE run_id = $1 "
                          "ORDER BY created_at, id",
                          json_pack("[s]", id)));
  if (rc != 0) {
    json_decref(run);
    json_decref(steps);
    return rc;
  }
  /* the "workflow" object of docs/run-record.md, beside the flat columns */
  json_object_set_new(run, "workflow",
                      json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(run, "workflow_id"), "name",
                                json_object_get(run, "workflow_name"), "version",
                                json_object_get(run, "workflow_version"), "source", json_object_get(run, "source")));
  json_object_set_new(run, "steps", steps);
  json_object_set_new(run, "annotations", notes);
  j->result = run;
  return 0;
}

static int status_filter(rm__job *j, rm__sql *q, const json_t *v) {
  json_t *one = json_is_string(v) ? json_pack("[O]", v) : json_incref((json_t *)v);
  const json_t *s;
  size_t i;
  int rc = json_is_array(one) && json_array_size(one) ? 0 : rm__fail(j, RM_EINVAL, "status: must be a status or a list");
  json_array_foreach(one, i, s) {
    if (rc == 0 && !rm__one_of(json_string_value(s), statuses))
      rc = rm__fail(j, RM_EINVAL, "status[%zu]: not one of queued, running, succeeded, degraded, failed, cancelled", i);
  }
  if (rc == 0) {
    rm__sql_add(q, " AND status IN (");
    json_array_foreach(one, i, s) rm__sql_add(q, i ? ", ?" : "?", json_incref((json_t *)s));
    rm__sql_add(q, ")");
  }
  json_decref(one);
  return rc;
}


/* An extracted variable equal to a JSON value: containment on the GIN
 * index, then exact equality (containment alone would let [1, 2] match
 * [1]). */
static void var_filter_pg(rm__sql *q, const char *name, const json_t *value) {
  rm__sql_add(q,
              " AND run_id IN (SELECT run_id FROM steps WHERE extracted @> CAST(? AS jsonb) "
              "AND extracted -> CAST(? AS text) = CAST(? AS jsonb))",
              json_pack("{s:O}", name, value), json_string(name),
              json_is_null(value) ? json_string("null") : rm__json_text(value));
}

/* SQLite: the step_vars index table (migration 2), compared in the same
 * canonical form the triggers store. */
static void var_filter_sqlite(rm__sql *q, const char *name, const json_t *value) {
  json_t *one = json_pack("[O]", value);
  rm__sql_add(q,
              " AND run_id IN (SELECT run_id FROM step_vars WHERE name = ? AND value = (SELECT CASE v.type "
              "WHEN 'text' THEN json_quote(v.value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
              "WHEN 'null' THEN 'null' WHEN 'integer' THEN CAST(v.value AS TEXT) "
              "WHEN 'real' THEN CAST(v.value AS TEXT) ELSE json(v.value) END FROM json_each(?) v))",
              json_string(name), rm__json_text(one));
  json_decref(one);
}

static int var_filter(rm__conn *c, rm__job *j, rm__sql *q, const json_t *var) {
  const char *name = rm__str(var, "name");
  const json_t *value = json_object_get(var, "value");
  if (!name || !value) return rm__fail(j, RM_EINVAL, "var: must be {\"name\": string, \"value\": JSON}");
  if (rm__conn_pg(c)) var_filter_pg(q, name, value);
  else var_filter_sqlite(q, name, value);
  return 0;
}

/* 8-4-4-4-12 hex digits: a workflow id (names rarely look like that). */
static bool looks_like_uuid(const char *s) {
  static const int groups[] = {8, 4, 4, 4, 12};
  for (int g = 0; g < 5; g++) {
    for (int i = 0; i < groups[g]; i++, s++)
      if (!isxdigit((unsigned char)*s)) return false;
    if (*s != (g == 4 ? '\0' : '-')) return false;
    s += g < 4;
  }
  return true;
}

static int search_filters(rm__conn *c, rm__job *j, const json_t *query, rm__sql *q) {
  static const rm__field fields[] = {{"workflow", JSON_STRING, false}, {"tag", JSON_STRING, false},
                                     {"http_status", JSON_INTEGER, false}, {"var", JSON_OBJECT, false},
                                     {"trigger", JSON_STRING, false}, {NULL, 0, false}};
  const json_t *status = json_object_get(query, "status"), *var = json_object_get(query, "var");
  const char *wf = rm__str(query, "workflow"), *tag = rm__str(query, "tag"), *trig = rm__str(query, "trigger");
  int rc = rm__check(j, "run search", query, fields);
  rm__sql_add(q, "FROM runs WHERE 1 = 1");
  /* One column, not "id = ? OR name = ?": an OR keeps both backends from
   * walking the (column, created_at) index in order. */
  if (rc == 0 && wf)
    rm__sql_add(q, looks_like_uuid(wf) ? " AND workflow_id = ?" : " AND workflow_name = ?", json_string(wf));
  if (rc == 0 && status && !json_is_null(status)) rc = status_filter(j, q, status);
  if (rc == 0 && tag) rm__sql_tag(q, rm__conn_pg(c), "tags", tag);
  if (rc == 0) rc = rm__sql_time(j, q, query, "from", " AND created_at >= ?");
  if (rc == 0) rc = rm__sql_time(j, q, query, "to", " AND created_at < ?");
  if (rc == 0 && json_is_integer(json_object_get(query, "http_status")))
    rm__sql_add(q, " AND run_id IN (SELECT run_id FROM steps WHERE http_status = ?)",
                json_incref(json_object_get(query, "http_status")));
  if (rc == 0 && json_is_object(var)) rc = var_filter(c, j, q, var);
  if (rc == 0 && trig) rm__sql_add(q, " AND trigger_type = ?", json_string(trig));
  return rc;
}

static int run_search_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"created_at", "started_at", "finished_at", "duration_ms",
                                      "status",     "workflow_name", NULL};
  const json_t *query = json_object_get(j->args, "query");
  rm__page p;
  rm__sql q;
  int rc = rm__page_parse(j, query, sorts, "-created_at", "run_id", &p);
  if (rc != 0) return rc;
  rm__sql_init(&q);
  if ((rc = search_filters(c, j, query, &q)) != 0) {
    rm__sql_free(&q);
    return rc;
  }
  return rm__page_run(c, j, RM__RUN_LIST_COLS, &q, &p);
}

static const rm__op run_get_op = {"run_get", RM__OP_READ, run_get_run};
static const rm__op run_search_op = {"run_search", RM__OP_READ, run_search_run};

void rm_store_run_get(rm_store *s, const char *run_id, rm_store_cb cb, void *ud) {
  rm__submit(s, &run_get_op, json_pack("{s:s}", "run_id", run_id), cb, ud);
}

void rm_store_run_search(rm_store *s, const json_t *query, rm_store_cb cb, void *ud) {
  rm__submit(s, &run_search_op, json_pack("{s:o}", "query", query ? json_deep_copy(query) : json_object()), cb, ud);
}
