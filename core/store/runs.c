/* Runs and their leases: create, claim, renew, finish.
 *
 * A lease is (lease_owner, lease_expires_at), expiry by the database
 * clock (rm_now(): the PostgreSQL server's, or the host's for SQLite);
 * callers never send times for leases, so executors on machines with
 * skewed clocks agree. A run whose lease expired is claimable again; once
 * another executor claims it, the old owner's step writes, renewals and
 * finish are refused. Until then the owner may go on (a late renewal
 * under load does not by itself cost a step). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

static const char *const terminal[] = {"succeeded", "degraded", "failed", "cancelled", NULL};

int rm__run_steps(rm__conn *c, rm__job *j, const char *run_id, json_t **steps) {
  json_t *rows = NULL, *row;
  size_t i;
  *steps = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q(c, &rows, "SELECT record FROM steps WHERE run_id = $1 ORDER BY seq",
                            json_pack("[s]", run_id)));
  if (rc != 0) return rc;
  json_array_foreach(rows, i, row) json_array_set(rows, i, json_object_get(row, "record"));
  *steps = rows;
  return 0;
}

int rm__lease_lost(rm__conn *c, rm__job *j, const char *run_id, const char *owner) {
  json_t *row = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row,
                             "SELECT status, lease_owner, lease_expires_at, rm_now() AS now FROM runs "
                             "WHERE run_id = $1",
                             json_pack("[s]", run_id)));
  if (rc != 0) return rc;
  if (!row) return rm__fail(j, RM_ENOTFOUND, "run %s: not found", run_id);
  const char *status = rm__str(row, "status"), *holder = rm__str(row, "lease_owner");
  if (strcmp(status, "running") != 0)
    rc = rm__fail(j, RM_ECONFLICT, "run %s: is %s, not running", run_id, status);
  else if (!holder || strcmp(holder, owner) != 0)
    rc = rm__fail(j, RM_ECONFLICT, "run %s: lease held by %s, not %s (taken over)", run_id, holder ? holder : "nobody",
                  owner);
  else
    rc = rm__fail(j, RM_ECONFLICT, "run %s: lease of %s no longer held (expired at %s, now %s)", run_id, owner,
                  rm__str(row, "lease_expires_at"), rm__str(row, "now"));
  json_decref(row);
  return rc;
}

static const rm__field create_fields[] = {
    {"workflow_name", JSON_STRING, true}, {"definition", JSON_OBJECT, true}, {"trigger", JSON_OBJECT, true},
    {"workflow_id", JSON_STRING, false},  {"workflow_version", JSON_INTEGER, false},
    {"source", JSON_STRING, false},       {"inputs", JSON_OBJECT, false},    {"vars", JSON_OBJECT, false},
    {"dry_run", JSON_TRUE, false},        {"rerun_of", JSON_STRING, false},  {"resumed_from", JSON_STRING, false},
    {"tags", JSON_ARRAY, false},          {"status", JSON_STRING, false},    {"lease_owner", JSON_STRING, false},
    {"lease_ms", JSON_INTEGER, false},    {"run_id", JSON_STRING, false},    {NULL, 0, false}};

static json_t *member_or(const json_t *o, const char *key, json_t *dflt) {
  const json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return dflt;
  json_decref(dflt);
  return json_deep_copy(v);
}

static int check_create(rm__job *j, const json_t *spec, bool *running) {
  int rc = rm__check(j, "run", spec, create_fields);
  if (rc != 0) return rc;
  const char *status = rm__str(spec, "status"), *type = rm__str(json_object_get(spec, "trigger"), "type");
  if (!type) return rm__fail(j, RM_EINVAL, "run: trigger.type: required (a string)");
  if (status && strcmp(status, "queued") && strcmp(status, "running"))
    return rm__fail(j, RM_EINVAL, "run: status: must be \"queued\" or \"running\", not \"%s\"", status);
  *running = status && strcmp(status, "running") == 0;
  if (*running && (!rm__str(spec, "lease_owner") || json_integer_value(json_object_get(spec, "lease_ms")) <= 0))
    return rm__fail(j, RM_EINVAL, "run: a running run needs lease_owner and lease_ms > 0");
  return 0;
}

#define INSERT_RUNNING                                                                                          \
  "INSERT INTO runs (run_id, workflow_id, workflow_name, workflow_version, definition, source, trigger, "          \
  "trigger_type, inputs, vars, dry_run, rerun_of, resumed_from, tags, status, lease_owner, created_at, "          \
  "started_at, lease_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "           \
  "'running', $15, rm_now(), rm_now(), rm_now_plus_ms($16))"
#define INSERT_QUEUED                                                                                           \
  "INSERT INTO runs (run_id, workflow_id, workflow_name, workflow_version, definition, source, trigger, "          \
  "trigger_type, inputs, vars, dry_run, rerun_of, resumed_from, tags, status, created_at) VALUES ($1, "           \
  "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'queued', rm_now())"

/* The row (RM__RUN_LIST_COLS) of a run just inserted with params p, its
 * times as stored in t. */
static json_t *row_inserted(const json_t *p, bool running, const json_t *t) {
#define P(i) json_array_get(p, i)
  return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:s, s:n, s:O, s:O, s:O, s:O, s:O, s:O, s:n, s:n, s:n, s:O, "
                   "s:O, s:O, s:b, s:n, s:n}",
                   "run_id", P(0), "workflow_id", P(1), "workflow_name", P(2), "workflow_version", P(3), "source",
                   P(5), "trigger", P(6), "inputs", P(8), "status", running ? "running" : "queued", "reason", "vars",
                   P(9), "dry_run", P(10), "rerun_of", P(11), "resumed_from", P(12), "created_at",
                   json_object_get(t, "created_at"), "started_at", json_object_get(t, "started_at"), "finished_at",
                   "duration_ms", "summary", "tags", P(13), "lease_owner", running ? P(14) : json_null(),
                   "lease_expires_at", json_object_get(t, "lease_expires_at"), "cancel_requested", 0,
                   "acknowledged_by", "acknowledged_at");
#undef P
}

/* The times rm_now() gave the row just inserted, from the connection
 * (NULL when only a query can tell). */
static json_t *times_known(rm__conn *c, bool running, const json_t *params) {
  char now[32], until[32];
  if (!rm__tx_now(c, 0, now)) return NULL;
  if (!running) return json_pack("{s:s, s:n, s:n}", "created_at", now, "started_at", "lease_expires_at");
  if (!rm__tx_now(c, json_integer_value(json_array_get(params, 15)), until)) return NULL;
  return json_pack("{s:s, s:s, s:s}", "created_at", now, "started_at", now, "lease_expires_at", until);
}

/* SQLite: INSERT, its times known (params stolen): with RETURNING SQLite
 * builds a temporary table for the one row, and reading the row back
 * parses its JSON again; the rest is what was written. */
static int insert_then_read(rm__conn *c, rm__job *j, bool running, json_t *params) {
  json_t *key = json_pack("[O]", json_array_get(params, 0)), *t = NULL;
  json_incref(params);
  int rc = rm__qx(c, NULL, running ? INSERT_RUNNING : INSERT_QUEUED, params);
  if (rc == 0 && !(t = times_known(c, running, params)))
    rc = rm__q1(c, &t, "SELECT created_at, started_at, lease_expires_at FROM runs WHERE run_id = $1", json_incref(key));
  if (rc == RM_ECONFLICT) rc = rm__fail(j, rc, "run %s: already exists", json_string_value(json_array_get(key, 0)));
  else if (rc == 0 && !(j->result = t ? row_inserted(params, running, t) : NULL)) rc = rm__fail(j, RM_ENOMEM, "out of memory");
  else rc = rm__dbfail(j, c, rc);
  json_decref(key);
  json_decref(params);
  json_decref(t);
  return rc;
}

int rm__run_insert(rm__conn *c, rm__job *j, const json_t *spec, bool definition) {
  bool running;
  char id[37];
  int rc = check_create(j, spec, &running);
  if (rc != 0) return rc;
  if (!rm__str(spec, "run_id") && rm__uuid_ordered(id) != 0) return rm__fail(j, RM_EIO, "run: cannot make an id");
  const char *sql = running ? (definition ? INSERT_RUNNING " RETURNING " RM__RUN_COLS
                                           : INSERT_RUNNING " RETURNING " RM__RUN_LIST_COLS)
                            : (definition ? INSERT_QUEUED " RETURNING " RM__RUN_COLS
                                          : INSERT_QUEUED " RETURNING " RM__RUN_LIST_COLS);
  const json_t *trigger = json_object_get(spec, "trigger");
  json_t *params = json_pack(
      "[s s? s I O s? O s o o b s? s? o]", rm__str(spec, "run_id") ? rm__str(spec, "run_id") : id,
      rm__str(spec, "workflow_id"), rm__str(spec, "workflow_name"),
      json_integer_value(json_object_get(spec, "workflow_version")), json_object_get(spec, "definition"),
      rm__str(spec, "source"), trigger, rm__str(trigger, "type"), member_or(spec, "inputs", json_object()),
      member_or(spec, "vars", json_object()), json_is_true(json_object_get(spec, "dry_run")),
      rm__str(spec, "rerun_of"), rm__str(spec, "resumed_from"), member_or(spec, "tags", json_array()));
  if (params && running) {
    json_array_append_new(params, json_string(rm__str(spec, "lease_owner")));
    json_array_append(params, json_object_get(spec, "lease_ms"));
  }
  if (!params) return rm__fail(j, RM_ENOMEM, "out of memory");
  if (!definition && !rm__conn_pg(c)) return insert_then_read(c, j, running, params);
  rc = rm__q1(c, &j->result, sql, params);
  if (rc == RM_ECONFLICT) return rm__fail(j, rc, "run %s: already exists", rm__str(spec, "run_id"));
  return rm__dbfail(j, c, rc);
}

static int create_run(rm__conn *c, rm__job *j) { return rm__run_insert(c, j, j->args, true); }

static int by_created(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  int d = strcmp(rm__str(x, "created_at"), rm__str(y, "created_at"));
  return d ? d : strcmp(rm__str(x, "run_id"), rm__str(y, "run_id"));
}

/* RETURNING gives rows in no promised order: oldest first, as claimed. */
static void sort_runs(json_t *rows) {
  size_t n = json_array_size(rows);
  json_t **v = n ? malloc(n * sizeof *v) : NULL;
  if (!v) return;
  for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(rows, i));
  qsort(v, n, sizeof *v, by_created);
  for (size_t i = 0; i < n; i++) json_array_set_new(rows, i, v[i]);
  free(v);
}

static int claim_run(rm__conn *c, rm__job *j) {
  const char *owner = rm__str(j->args, "owner");
  json_int_t lease = json_integer_value(json_object_get(j->args, "lease_ms"));
  json_int_t limit = json_integer_value(json_object_get(j->args, "limit"));
  if (!owner || !*owner || lease <= 0 || limit <= 0)
    return rm__fail(j, RM_EINVAL, "run_claim: owner, lease_ms > 0 and limit > 0 are required");
  /* PostgreSQL: rows another executor is claiming right now are skipped,
   * not waited for. SQLite: the one writer makes this atomic as is. */
  const char *sql = rm__conn_pg(c)
                        ? "UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = "
                          "rm_now_plus_ms($2), started_at = COALESCE(started_at, rm_now()) WHERE run_id IN (SELECT "
                          "run_id FROM runs WHERE status = 'queued' OR (status = 'running' AND lease_expires_at <= "
                          "rm_now()) ORDER BY created_at, run_id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING " RM__RUN_COLS
                        : "UPDATE runs SET status = 'running', lease_owner = $1, lease_expires_at = "
                          "rm_now_plus_ms($2), started_at = COALESCE(started_at, rm_now()) WHERE run_id IN (SELECT "
                          "run_id FROM runs WHERE status = 'queued' OR (status = 'running' AND lease_expires_at <= "
                          "rm_now()) ORDER BY created_at, run_id LIMIT $3) RETURNING " RM__RUN_COLS;
  json_t *rows = NULL, *row;
  size_t i;
  int rc = rm__dbfail(j, c, rm__q(c, &rows, sql, json_pack("[sII]", owner, lease, limit)));
  if (rc != 0) return rc;
  sort_runs(rows);
  json_array_foreach(rows, i, row) {
    json_t *steps;
    if ((rc = rm__run_steps(c, j, rm__str(row, "run_id"), &steps)) != 0) break;
    json_object_set_new(row, "steps", steps);
  }
  if (rc == 0) j->result = json_incref(rows);
  json_decref(rows);
  return rc;
}

static int renew_one(rm__conn *c, rm__job *j, const char *id, json_t *out) {
  const char *owner = rm__str(j->args, "owner");
  json_t *row = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row,
                             "UPDATE runs SET lease_expires_at = rm_now_plus_ms($3) WHERE run_id = $1 AND " RM__LEASE_HELD
                             " RETURNING cancel_requested",
                             json_pack("[ssO]", id, owner, json_object_get(j->args, "lease_ms"))));
  if (rc != 0) return rc;
  json_array_append_new(json_object_get(out, row ? "renewed" : "lost"), json_string(id));
  if (json_is_true(json_object_get(row, "cancel_requested")))
    json_array_append_new(json_object_get(out, "cancel"), json_string(id));
  json_decref(row);
  return 0;
}

static int renew_run(rm__conn *c, rm__job *j) {
  const json_t *ids = json_object_get(j->args, "run_ids"), *id;
  size_t i;
  if (!rm__str(j->args, "owner") || json_integer_value(json_object_get(j->args, "lease_ms")) < 0 ||
      !json_is_array(ids))
    return rm__fail(j, RM_EINVAL, "run_renew: owner, run_ids (an array) and lease_ms >= 0 (0 releases) are required");
  json_array_foreach(ids, i, id) if (!json_is_string(id))
      return rm__fail(j, RM_EINVAL, "run_renew: run_ids[%zu]: must be a string", i);
  json_t *out = json_pack("{s:[], s:[], s:[]}", "renewed", "lost", "cancel");
  int rc = out ? 0 : rm__fail(j, RM_ENOMEM, "out of memory");
  json_array_foreach(ids, i, id) if (rc == 0) rc = renew_one(c, j, json_string_value(id), out);
  if (rc == 0) j->result = out;
  else json_decref(out);
  return rc;
}

static const rm__field finish_fields[] = {{"status", JSON_STRING, true},  {"reason", JSON_STRING, false},
                                          {"finished_at", JSON_STRING, false}, {"duration_ms", JSON_REAL, false},
                                          {"summary", JSON_OBJECT, false}, {"vars", JSON_OBJECT, false},
                                          {NULL, 0, false}};

int rm__run_finish(rm__conn *c, rm__job *j, const char *id, const char *owner, const json_t *rec, bool row) {
  char at[32];
  int rc = rm__check(j, "run record", rec, finish_fields);
  if (rc != 0) return rc;
  const char *status = rm__str(rec, "status"), *fin = rm__str(rec, "finished_at");
  if (!rm__one_of(status, terminal))
    return rm__fail(j, RM_EINVAL, "run %s: status: must be succeeded, degraded, failed or cancelled, not \"%s\"", id,
                    status);
  if (fin && rm__ts_normalize(fin, at) != 0)
    return rm__fail(j, RM_EINVAL, "run %s: finished_at: not an ISO-8601 time: \"%s\"", id, fin);
  json_t *dur = json_object_get(rec, "duration_ms");
#define FINISH_SQL                                                                                             \
  "UPDATE runs SET status = $3, reason = $4, finished_at = COALESCE($5, rm_now()), duration_ms = $6, "         \
  "summary = $7, vars = COALESCE($8, vars), lease_owner = NULL, lease_expires_at = NULL "                      \
  "WHERE run_id = $1 AND " RM__LEASE_HELD
  json_t *params = json_pack("[s s s s? s? o o o]", id, owner, status, rm__str(rec, "reason"), fin ? at : NULL,
                             dur ? json_real(json_number_value(dur)) : json_null(),
                             rm__copy(json_object_get(rec, "summary")), rm__copy(json_object_get(rec, "vars")));
  int64_t changed = 0;
  rc = row ? rm__q1(c, &j->result, FINISH_SQL " RETURNING " RM__RUN_COLS, params) : rm__qx(c, &changed, FINISH_SQL, params);
#undef FINISH_SQL
  if ((rc = rm__dbfail(j, c, rc)) != 0 || j->result || changed) return rc;
  return rm__lease_lost(c, j, id, owner);
}

json_t *rm__finish_record(const json_t *record) {
  if (!json_is_object(record)) return rm__copy(record);
  json_t *out = json_object();
  for (const rm__field *f = finish_fields; out && f->name; f++) {
    const json_t *v = json_object_get(record, f->name);
    if (v) json_object_set_new(out, f->name, json_deep_copy(v));
  }
  return out;
}

static int finish_run(rm__conn *c, rm__job *j) {
  return rm__run_finish(c, j, rm__str(j->args, "run_id"), rm__str(j->args, "owner"), json_object_get(j->args, "record"),
                        true);
}

static const rm__op create_op = {"run_create", RM__OP_WRITE, create_run};
static const rm__op claim_op = {"run_claim", RM__OP_WRITE, claim_run};
static const rm__op renew_op = {"run_renew", RM__OP_WRITE, renew_run};
static const rm__op finish_op = {"run_finish", RM__OP_WRITE, finish_run};

void rm_store_run_create(rm_store *s, const json_t *spec, rm_store_cb cb, void *ud) {
  rm__submit(s, &create_op, spec ? json_deep_copy(spec) : NULL, cb, ud);
}

void rm_store_run_claim(rm_store *s, const char *owner, uint64_t lease_ms, int limit, rm_store_cb cb, void *ud) {
  rm__submit(s, &claim_op,
             json_pack("{s:s?, s:I, s:i}", "owner", owner, "lease_ms", (json_int_t)lease_ms, "limit", limit), cb, ud);
}

void rm_store_run_renew(rm_store *s, const char *owner, const json_t *run_ids, uint64_t lease_ms, rm_store_cb cb,
                        void *ud) {
  rm__submit(s, &renew_op,
             json_pack("{s:s?, s:o, s:I}", "owner", owner, "run_ids", rm__copy(run_ids), "lease_ms",
                       (json_int_t)lease_ms),
             cb, ud);
}

void rm_store_run_finish(rm_store *s, const char *run_id, const char *owner, const json_t *record, rm_store_cb cb,
                         void *ud) {
  rm__submit(s, &finish_op,
             json_pack("{s:s, s:s, s:o}", "run_id", run_id, "owner", owner, "record", rm__finish_record(record)), cb,
             ud);
}
