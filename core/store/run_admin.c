/* What operators do to runs (cancel, annotate, acknowledge), retention
 * cleanup, and the audit trail. */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

static int cancel_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "run_id"), *actor = rm__str(j->args, "actor");
  char reason[300];
  snprintf(reason, sizeof reason, "cancelled by %s before it started", actor ? actor : "an operator");
  /* a queued run ends at once; a running one is told at its next renewal */
  int rc = rm__q1(c, &j->result,
                  "UPDATE runs SET status = 'cancelled', cancel_requested = TRUE, reason = $2, "
                  "finished_at = rm_now() WHERE run_id = $1 AND status = 'queued' RETURNING " RM__RUN_COLS,
                  json_pack("[ss]", id, reason));
  if (rc == 0 && !j->result)
    rc = rm__q1(c, &j->result,
                "UPDATE runs SET cancel_requested = TRUE WHERE run_id = $1 AND status = 'running' RETURNING " RM__RUN_COLS,
                json_pack("[s]", id));
  if ((rc = rm__dbfail(j, c, rc)) != 0 || j->result) return rc;
  json_t *row = NULL;
  rc = rm__dbfail(j, c, rm__q1(c, &row, "SELECT status FROM runs WHERE run_id = $1", json_pack("[s]", id)));
  if (rc == 0 && !row) rc = rm__fail(j, RM_ENOTFOUND, "run %s: not found", id);
  else if (rc == 0) rc = rm__fail(j, RM_ECONFLICT, "run %s: already %s", id, rm__str(row, "status"));
  json_decref(row);
  return rc;
}

/* Resume: the steps that did not succeed go, the run is queued again. */
static int resume_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "run_id");
  json_t *row = NULL;
  int rc = rm__dbfail(j, c, rm__q1(c, &row, "SELECT status FROM runs WHERE run_id = $1", json_pack("[s]", id)));
  if (rc == 0 && !row) rc = rm__fail(j, RM_ENOTFOUND, "run %s: not found", id);
  const char *status = rm__str(row, "status");
  if (rc == 0 && strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0)
    rc = rm__fail(j, RM_ECONFLICT, "run %s: is %s; only a failed or cancelled run can be resumed", id, status);
  json_decref(row);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__qx(c, NULL, "DELETE FROM steps WHERE run_id = $1 AND status NOT IN ('succeeded', 'degraded')",
                           json_pack("[s]", id)));
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, &j->result,
                           "UPDATE runs SET status = 'queued', reason = NULL, finished_at = NULL, duration_ms = NULL, "
                           "summary = NULL, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, "
                           "resumed_from = run_id WHERE run_id = $1 RETURNING " RM__RUN_COLS,
                           json_pack("[s]", id)));
  return rc;
}

static int annotate_run(rm__conn *c, rm__job *j) {
  const char *run_id = rm__str(j->args, "run_id"), *kind = rm__str(j->args, "kind");
  const char *author = rm__str(j->args, "author"), *text = rm__str(j->args, "text");
  json_t *run = NULL;
  char id[37];
  if (!kind || (strcmp(kind, "note") && strcmp(kind, "ack")))
    return rm__fail(j, RM_EINVAL, "run %s: annotation kind: must be \"note\" or \"ack\"", run_id);
  if (strcmp(kind, "note") == 0 && (!text || !*text))
    return rm__fail(j, RM_EINVAL, "run %s: a note needs text", run_id);
  int rc = rm__dbfail(j, c, rm__q1(c, &run, "SELECT status FROM runs WHERE run_id = $1", json_pack("[s]", run_id)));
  if (rc == 0 && !run) rc = rm__fail(j, RM_ENOTFOUND, "run %s: not found", run_id);
  if (rc == 0 && rm__uuid(id) != 0) rc = rm__fail(j, RM_EIO, "run %s: cannot make an id", run_id);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, &j->result,
                           "INSERT INTO annotations (id, run_id, kind, author, text, created_at) VALUES ($1, $2, $3, "
                           "$4, $5, rm_now()) RETURNING id, run_id, kind, author, text, created_at",
                           json_pack("[ssss?s?]", id, run_id, kind, author, text)));
  /* acknowledging marks a failed (or degraded) run as seen by someone */
  const char *status = rm__str(run, "status");
  if (rc == 0 && strcmp(kind, "ack") == 0 && (!strcmp(status, "failed") || !strcmp(status, "degraded")))
    rc = rm__dbfail(j, c,
                    rm__qx(c, NULL, "UPDATE runs SET acknowledged_by = $2, acknowledged_at = rm_now() WHERE run_id = $1",
                           json_pack("[ss?]", run_id, author)));
  json_decref(run);
  return rc;
}

/* Deleting one finished run record: its steps, variables and annotations
 * go with it (ON DELETE CASCADE). A queued or running run is refused: it
 * is cancelled first. The answer is the run as it was, without steps. */
static int delete_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "run_id");
  int rc = rm__dbfail(j, c, rm__q1(c, &j->result, "SELECT " RM__RUN_COLS " FROM runs WHERE run_id = $1",
                                   json_pack("[s]", id)));
  if (rc) return rc;
  if (!j->result) return rm__fail(j, RM_ENOTFOUND, "run %s: not found", id);
  const char *status = rm__str(j->result, "status");
  if (!strcmp(status, "queued") || !strcmp(status, "running"))
    return rm__fail(j, RM_ECONFLICT, "run %s: is %s; cancel it before deleting it", id, status);
  return rm__dbfail(j, c, rm__qx(c, NULL, "DELETE FROM runs WHERE run_id = $1", json_pack("[s]", id)));
}

/* "(succeeded or degraded, finished before now - success_ms) OR (failed
 * or cancelled, before now - failed_ms)", a period of 0 keeping them. */
static void retention_cond(rm__sql *q, json_int_t success_ms, json_int_t failed_ms) {
  rm__sql_add(q, "(");
  if (success_ms > 0)
    rm__sql_add(q, "(status IN ('succeeded', 'degraded') AND finished_at < rm_now_plus_ms(?))",
                json_integer(-success_ms));
  if (success_ms > 0 && failed_ms > 0) rm__sql_add(q, " OR ");
  if (failed_ms > 0)
    rm__sql_add(q, "(status IN ('failed', 'cancelled') AND finished_at < rm_now_plus_ms(?))", json_integer(-failed_ms));
  rm__sql_add(q, ")");
}

static int retention_run(rm__conn *c, rm__job *j) {
  json_int_t ok_ms = json_integer_value(json_object_get(j->args, "success_ms"));
  json_int_t bad_ms = json_integer_value(json_object_get(j->args, "failed_ms"));
  json_int_t batch = json_integer_value(json_object_get(j->args, "batch"));
  int64_t deleted = 0;
  json_t *more = NULL;
  if (batch <= 0) return rm__fail(j, RM_EINVAL, "retention: batch must be > 0");
  if (ok_ms <= 0 && bad_ms <= 0) {
    j->result = json_pack("{s:i, s:b}", "deleted", 0, "more", 0);
    return 0;
  }
  rm__sql del, rest;
  rm__sql_init(&del);
  rm__sql_init(&rest);
  /* steps and annotations go with their run (ON DELETE CASCADE) */
  rm__sql_add(&del, "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE ");
  retention_cond(&del, ok_ms, bad_ms);
  rm__sql_add(&del, " ORDER BY finished_at LIMIT ?)", json_integer(batch));
  rm__sql_add(&rest, "SELECT EXISTS (SELECT 1 FROM runs WHERE ");
  retention_cond(&rest, ok_ms, bad_ms);
  rm__sql_add(&rest, ") AS more");
  int rc = del.err || rest.err ? rm__fail(j, RM_ENOMEM, "out of memory") : 0;
  if (rc == 0) rc = rm__dbfail(j, c, rm__qx(c, &deleted, del.b.data, json_incref(del.params)));
  if (rc == 0) rc = rm__dbfail(j, c, rm__q1(c, &more, rest.b.data, json_incref(rest.params)));
  if (rc == 0)
    j->result = json_pack("{s:I, s:b}", "deleted", (json_int_t)deleted, "more", json_is_true(json_object_get(more, "more")));
  json_decref(more);
  rm__sql_free(&del);
  rm__sql_free(&rest);
  return rc;
}

static const rm__field audit_fields[] = {{"actor", JSON_STRING, true},        {"action", JSON_STRING, true},
                                         {"object_kind", JSON_STRING, false}, {"object_id", JSON_STRING, false},
                                         {"ip", JSON_STRING, false},          {NULL, 0, false}};

static int audit_run(rm__conn *c, rm__job *j) {
  const json_t *e = json_object_get(j->args, "entry");
  char id[37];
  int rc = rm__check(j, "audit entry", e, audit_fields);
  if (rc == 0 && rm__uuid(id) != 0) rc = rm__fail(j, RM_EIO, "audit: cannot make an id");
  if (rc != 0) return rc;
  return rm__dbfail(j, c,
                    rm__qx(c, NULL,
                           "INSERT INTO audit (id, at, actor, action, object_kind, object_id, before, after, ip) "
                           "VALUES ($1, rm_now(), $2, $3, $4, $5, $6, $7, $8)",
                           json_pack("[s s s s? s? o o s?]", id, rm__str(e, "actor"), rm__str(e, "action"),
                                     rm__str(e, "object_kind"), rm__str(e, "object_id"),
                                     rm__json_text(json_object_get(e, "before")),
                                     rm__json_text(json_object_get(e, "after")), rm__str(e, "ip"))));
}

static int audit_list_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"at", "actor", "action", NULL};
  static const char *const eq[] = {"actor", "action", "object_kind", "object_id", NULL};
  static const rm__field fields[] = {{"actor", JSON_STRING, false},     {"action", JSON_STRING, false},
                                     {"object_kind", JSON_STRING, false}, {"object_id", JSON_STRING, false},
                                     {"from", JSON_STRING, false},      {"to", JSON_STRING, false},
                                     {NULL, 0, false}};
  const json_t *query = json_object_get(j->args, "query");
  char from[32] = "", to[32] = "", frag[64];
  rm__page p;
  int rc = rm__check(j, "audit query", query, fields);
  if (rc == 0) rc = rm__page_parse(j, query, sorts, "-at", "id", &p);
  if (rc == 0 && rm__str(query, "from") && rm__ts_normalize(rm__str(query, "from"), from))
    rc = rm__fail(j, RM_EINVAL, "from: not an ISO-8601 time");
  if (rc == 0 && rm__str(query, "to") && rm__ts_normalize(rm__str(query, "to"), to))
    rc = rm__fail(j, RM_EINVAL, "to: not an ISO-8601 time");
  if (rc != 0) return rc;
  rm__sql q;
  rm__sql_init(&q);
  rm__sql_add(&q, "FROM audit WHERE 1 = 1");
  for (const char *const *k = eq; *k; k++)
    if (rm__str(query, *k)) {
      snprintf(frag, sizeof frag, " AND %s = ?", *k);
      rm__sql_add(&q, frag, json_string(rm__str(query, *k)));
    }
  if (*from) rm__sql_add(&q, " AND at >= ?", json_string(from));
  if (*to) rm__sql_add(&q, " AND at < ?", json_string(to));
  return rm__page_run(c, j, "id, at, actor, action, object_kind, object_id, before, after, ip", &q, &p);
}

/* Deletes up to batch audit entries older than older_ms, oldest first. */
static int audit_retention_run(rm__conn *c, rm__job *j) {
  return rm__prune(c, j, "audit",
                   "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < rm_now_plus_ms($1) ORDER BY at "
                   "LIMIT $2)",
                   "SELECT EXISTS (SELECT 1 FROM audit WHERE at < rm_now_plus_ms($1)) AS more");
}

static int ping_run(rm__conn *c, rm__job *j) { return rm__dbfail(j, c, rm__qx(c, NULL, "SELECT 1", NULL)); }

static const rm__op cancel_op = {"run_cancel", RM__OP_WRITE, cancel_run};
static const rm__op annotate_op = {"run_annotate", RM__OP_WRITE, annotate_run};
static const rm__op delete_op = {"run_delete", RM__OP_WRITE, delete_run};
static const rm__op resume_op = {"resume", RM__OP_WRITE, resume_run};
static const rm__op retention_op = {"retention", RM__OP_WRITE, retention_run};
static const rm__op audit_op = {"audit", RM__OP_WRITE, audit_run};
static const rm__op audit_list_op = {"audit_list", RM__OP_READ, audit_list_run};
static const rm__op audit_retention_op = {"audit_retention", RM__OP_WRITE, audit_retention_run};
static const rm__op ping_op = {"ping", RM__OP_READ, ping_run};

void rm_store_run_cancel(rm_store *s, const char *run_id, const char *actor, rm_store_cb cb, void *ud) {
  rm__submit(s, &cancel_op, json_pack("{s:s, s:s?}", "run_id", run_id, "actor", actor), cb, ud);
}

void rm_store_run_resume(rm_store *s, const char *run_id, const char *actor, rm_store_cb cb, void *ud) {
  rm__submit(s, &resume_op, json_pack("{s:s, s:s?}", "run_id", run_id, "actor", actor), cb, ud);
}

void rm_store_run_delete(rm_store *s, const char *run_id, rm_store_cb cb, void *ud) {
  rm__submit(s, &delete_op, json_pack("{s:s}", "run_id", run_id), cb, ud);
}

void rm_store_run_annotate(rm_store *s, const char *run_id, const char *kind, const char *author, const char *text,
                           rm_store_cb cb, void *ud) {
  rm__submit(s, &annotate_op,
             json_pack("{s:s, s:s?, s:s?, s:s?}", "run_id", run_id, "kind", kind, "author", author, "text", text), cb,
             ud);
}

void rm_store_retention(rm_store *s, uint64_t success_ms, uint64_t failed_ms, int batch, rm_store_cb cb, void *ud) {
  rm__submit(s, &retention_op,
             json_pack("{s:I, s:I, s:i}", "success_ms", (json_int_t)success_ms, "failed_ms", (json_int_t)failed_ms,
                       "batch", batch),
             cb, ud);
}

void rm_store_audit(rm_store *s, const json_t *entry, rm_store_cb cb, void *ud) {
  rm__submit(s, &audit_op, json_pack("{s:o}", "entry", rm__copy(entry)), cb, ud);
}

void rm_store_audit_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud) {
  rm__submit(s, &audit_list_op, json_pack("{s:o}", "query", query ? json_deep_copy(query) : json_object()), cb, ud);
}

void rm_store_audit_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud) {
  rm__submit(s, &audit_retention_op,
             json_pack("{s:I, s:i}", "older_ms", (json_int_t)older_than_ms, "batch", batch), cb, ud);
}

void rm_store_ping(rm_store *s, rm_store_cb cb, void *ud) { rm__submit(s, &ping_op, json_object(), cb, ud); }
