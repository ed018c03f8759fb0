/* Signals read back: one object's signal with its last transition, the
 * health overview (worst first), the timeline of transitions, the
 * acknowledgement of a Degraded or Failed signal, and the retention of
 * old transitions. Written by signals.c. */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

#define TRANSITION_COLS "object_id, seq, at, from_state, to_state, severity, source_type, correlation_id, body"

static const char *const states[] = {"unknown", "healthy", "degraded", "failed", NULL};
static const char *const types[] = {"check", "metric", "event", NULL};

static int signal_get_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "object_id");
  json_t *row = NULL, *last = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row, "SELECT " RM__SIGNAL_COLS " FROM signals WHERE object_id = $1",
                             json_pack("[s]", id)));
  if (rc == 0 && !row) return rm__fail(j, RM_ENOTFOUND, "signal %s: not found (nothing observed yet)", id);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, &last, "SELECT body FROM signal_transitions WHERE object_id = $1 ORDER BY seq DESC LIMIT 1",
                           json_pack("[s]", id)));
  if (rc == 0) {
    json_object_set(row, "last_transition", last ? json_object_get(last, "body") : json_null());
    j->result = row;
    row = NULL;
  }
  json_decref(row);
  json_decref(last);
  return rc;
}

/* A string, or an array of strings each in allowed: " AND col IN (...)". */
static int in_filter(rm__job *j, rm__sql *q, const json_t *query, const char *key, const char *col,
                     const char *const *allowed) {
  const json_t *v = json_object_get(query, key), *s;
  if (!v || json_is_null(v)) return 0;
  json_t *one = json_is_string(v) ? json_pack("[O]", v) : json_incref((json_t *)v);
  size_t i;
  int rc = json_is_array(one) && json_array_size(one) ? 0 : rm__fail(j, RM_EINVAL, "%s: must be a string or a list", key);
  json_array_foreach(one, i, s) if (rc == 0 && !rm__one_of(json_string_value(s), allowed))
      rc = rm__fail(j, RM_EINVAL, "%s[%zu]: not one of the allowed values", key, i);
  if (rc == 0) {
    char frag[96];
    snprintf(frag, sizeof frag, " AND %s IN (", col);
    rm__sql_add(q, frag);
    json_array_foreach(one, i, s) rm__sql_add(q, i ? ", ?" : "?", json_incref((json_t *)s));
    rm__sql_add(q, ")");
  }
  json_decref(one);
  return rc;
}

/* Signals of deleted objects, and of private objects the viewer does not
 * own, are left out (of the total too). */
static void visibility(rm__sql *q, const json_t *query) {
  const char *viewer = rm__str(query, "visible_to");
  rm__sql_add(q, " AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = signals.object_id AND "
                 "(d.deleted_at IS NOT NULL");
  if (viewer) rm__sql_add(q, " OR (d.scope = 'private' AND (d.owner IS NULL OR d.owner <> ?))", json_string(viewer));
  rm__sql_add(q, "))");
}

static int signal_list_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"state_rank", "name", "changed_at", "observed_at", "object_id", NULL};
  static const rm__field fields[] = {{"tag", JSON_STRING, false}, {"visible_to", JSON_STRING, false},
                                     {"name", JSON_STRING, false}, {NULL, 0, false}};
  const json_t *query = json_object_get(j->args, "query");
  rm__page p;
  rm__sql q;
  int rc = rm__check(j, "signal list", query, fields);
  if (rc == 0) rc = rm__page_parse(j, query, sorts, "-state_rank", "object_id", &p);
  if (rc != 0) return rc;
  rm__sql_init(&q);
  rm__sql_add(&q, "FROM signals WHERE 1 = 1");
  rc = in_filter(j, &q, query, "state", "state", states);
  if (rc == 0) rc = in_filter(j, &q, query, "object_type", "object_type", types);
  const char *tag = rm__str(query, "tag"), *name = rm__str(query, "name");
  if (rc == 0 && tag) rm__sql_tag(&q, rm__conn_pg(c), "tags", tag);
  if (rc == 0 && name) rm__sql_add(&q, " AND name = ?", json_string(name));
  if (rc != 0) {
    rm__sql_free(&q);
    return rc;
  }
  visibility(&q, query);
  return rm__page_run(c, j, RM__SIGNAL_COLS, &q, &p);
}

static int transitions_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"seq", "at", NULL};
  const char *id = rm__str(j->args, "object_id");
  const json_t *query = json_object_get(j->args, "query");
  rm__page p;
  rm__sql q;
  int rc = rm__page_parse(j, query, sorts, "-seq", "seq", &p);
  if (rc != 0) return rc;
  rm__sql_init(&q);
  rm__sql_add(&q, "FROM signal_transitions WHERE object_id = ?", json_string(id));
  rc = in_filter(j, &q, query, "to", "to_state", states);
  if (rc == 0) rc = rm__sql_time(j, &q, query, "from", " AND at >= ?");
  if (rc == 0) rc = rm__sql_time(j, &q, query, "until", " AND at < ?");
  if (rc != 0) {
    rm__sql_free(&q);
    return rc;
  }
  return rm__page_run(c, j, TRANSITION_COLS, &q, &p);
}

static int ack_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "object_id");
  json_t *row = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row,
                             "UPDATE signals SET acknowledged_by = $2, acknowledged_at = rm_now(), ack_text = $3 "
                             "WHERE object_id = $1 AND state IN ('degraded', 'failed') RETURNING " RM__SIGNAL_COLS,
                             json_pack("[s s? s?]", id, rm__str(j->args, "actor"), rm__str(j->args, "text"))));
  if (rc != 0 || row) {
    j->result = row;
    return rc;
  }
  rc = rm__dbfail(j, c, rm__q1(c, &row, "SELECT state FROM signals WHERE object_id = $1", json_pack("[s]", id)));
  if (rc == 0 && !row) rc = rm__fail(j, RM_ENOTFOUND, "signal %s: not found (nothing observed yet)", id);
  else if (rc == 0)
    rc = rm__fail(j, RM_ECONFLICT, "signal %s: is %s; only a degraded or failed signal can be acknowledged", id,
                  rm__str(row, "state"));
  json_decref(row);
  return rc;
}

/* A transition older than the period that is not its signal's latest
 * (the latest says why the signal is in its state, and escalations read
 * it). */
#define OLD_TRANSITION                                                                                           \
  "t.at < rm_now_plus_ms($1) AND t.seq < (SELECT max(m.seq) FROM signal_transitions m WHERE "                   \
  "m.object_id = t.object_id)"

static int transition_retention_run(rm__conn *c, rm__job *j) {
  return rm__prune(c, j, "transition",
                   "DELETE FROM signal_transitions WHERE (object_id, seq) IN (SELECT t.object_id, t.seq FROM "
                   "signal_transitions t WHERE " OLD_TRANSITION " ORDER BY t.at LIMIT $2)",
                   "SELECT EXISTS (SELECT 1 FROM signal_transitions t WHERE " OLD_TRANSITION ") AS more");
}

static const rm__op get_op = {"signal_get", RM__OP_READ, signal_get_run};
static const rm__op transition_retention_op = {"transition_retention", RM__OP_WRITE, transition_retention_run};
static const rm__op list_op = {"signal_list", RM__OP_READ, signal_list_run};
static const rm__op transitions_op = {"signal_transitions", RM__OP_READ, transitions_run};
static const rm__op ack_op = {"signal_ack", RM__OP_WRITE, ack_run};

void rm_store_signal_get(rm_store *s, const char *object_id, rm_store_cb cb, void *ud) {
  rm__submit(s, &get_op, json_pack("{s:s}", "object_id", object_id), cb, ud);
}

void rm_store_signal_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud) {
  rm__submit(s, &list_op, json_pack("{s:o}", "query", query ? json_deep_copy(query) : json_object()), cb, ud);
}

void rm_store_signal_transitions(rm_store *s, const char *object_id, const json_t *query, rm_store_cb cb, void *ud) {
  rm__submit(s, &transitions_op,
             json_pack("{s:s, s:o}", "object_id", object_id, "query", query ? json_deep_copy(query) : json_object()),
             cb, ud);
}

void rm_store_signal_ack(rm_store *s, const char *object_id, const char *actor, const char *text, rm_store_cb cb,
                         void *ud) {
  rm__submit(s, &ack_op, json_pack("{s:s, s:s?, s:s?}", "object_id", object_id, "actor", actor, "text", text), cb,
             ud);
}

void rm_store_transition_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud) {
  rm__submit(s, &transition_retention_op,
             json_pack("{s:I, s:i}", "older_ms", (json_int_t)older_than_ms, "batch", batch), cb, ud);
}
