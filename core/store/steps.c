/* Step writes: one row per (run, task) holding the step record, plus the
 * columns searches use (status, the last HTTP status, the extracted
 * variables). Group-committed by the worker (worker.c); each write first
 * checks that its executor still holds the run's lease. */
#include "store/store_internal.h"
#include "util/err.h"

/* The status of the last response the step received, or 0. */
static json_int_t last_http_status(const json_t *step) {
  const json_t *attempts = json_object_get(step, "attempts");
  for (size_t a = json_array_size(attempts); a-- > 0;) {
    const json_t *ex = json_object_get(json_array_get(attempts, a), "exchanges");
    for (size_t e = json_array_size(ex); e-- > 0;) {
      const json_t *st = json_object_get(json_object_get(json_array_get(ex, e), "response"), "status");
      if (json_is_integer(st)) return json_integer_value(st);
    }
  }
  const json_t *st = json_object_get(step, "http_status");
  return json_is_integer(st) ? json_integer_value(st) : 0;
}

/* The variables the step extracted: its last attempt's that has any. */
static json_t *extracted(const json_t *step) {
  const json_t *attempts = json_object_get(step, "attempts");
  for (size_t a = json_array_size(attempts); a-- > 0;) {
    const json_t *x = json_object_get(json_array_get(attempts, a), "extracted");
    if (json_is_object(x)) return json_deep_copy(x);
  }
  const json_t *x = json_object_get(step, "extracted");
  return json_is_object(x) ? json_deep_copy(x) : json_object();
}

static int step_check(rm__job *j, const char *run_id, const json_t *step) {
  const char *task = rm__str(step, "task");
  if (!json_is_object(step) || !task || !*task)
    return rm__fail(j, RM_EINVAL, "run %s: step: must be an object with a task name", run_id);
  return 0;
}

static int step_put_run(rm__conn *c, rm__job *j) {
  const char *run_id = rm__str(j->args, "run_id"), *owner = rm__str(j->args, "owner");
  const json_t *step = json_object_get(j->args, "step"), *vars = json_object_get(j->args, "vars");
  int64_t held = 0;
  int rc = step_check(j, run_id, step);
  if (rc != 0) return rc;
  if (!json_is_null(vars) && !json_is_object(vars))
    return rm__fail(j, RM_EINVAL, "run %s: vars: must be an object", run_id);
  rc = rm__dbfail(j, c,
                  rm__qx(c, &held, "UPDATE runs SET vars = COALESCE($3, vars) WHERE run_id = $1 AND " RM__LEASE_HELD,
                         json_pack("[ssO]", run_id, owner, vars)));
  if (rc != 0) return rc;
  if (held == 0) return rm__lease_lost(c, j, run_id, owner);
  return rm__step_insert(c, j, run_id, step);
}

int rm__step_insert(rm__conn *c, rm__job *j, const char *run_id, const json_t *step) {
  int rc = step_check(j, run_id, step);
  if (rc != 0) return rc;
  json_int_t http = last_http_status(step);
  return rm__dbfail(
      j, c,
      rm__qx(c, NULL,
             "INSERT INTO steps (run_id, seq, task, status, http_status, extracted, record, updated_at) "
             "VALUES ($1, (SELECT COALESCE(max(seq), 0) + 1 FROM steps WHERE run_id = $1), $2, $3, $4, $5, $6, "
             "rm_now()) ON CONFLICT (run_id, task) DO UPDATE SET status = excluded.status, "
             "http_status = excluded.http_status, extracted = excluded.extracted, record = excluded.record, "
             "updated_at = excluded.updated_at",
             json_pack("[s s s? o o O]", run_id, rm__str(step, "task"), rm__str(step, "status"),
                       http ? json_integer(http) : json_null(), extracted(step), step)));
}

static const rm__op step_put_op = {"step_put", RM__OP_STEP, step_put_run};

void rm_store_step_put(rm_store *s, const char *run_id, const char *owner, const json_t *step, const json_t *vars,
                       rm_store_cb cb, void *ud) {
  rm__submit(s, &step_put_op,
             json_pack("{s:s, s:s, s:o, s:o}", "run_id", run_id, "owner", owner, "step", rm__copy(step), "vars",
                       rm__copy(vars)),
             cb, ud);
}
