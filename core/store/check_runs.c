/* The writes of a scheduled check, each one job group-committed with the
 * step writes (worker.c), so a check costs no transaction of its own:
 *
 *  - a fire: the claim of (item, scheduled time) in schedule_state as a
 *    compare-and-set, and the run it starts, together: of the servers
 *    sharing the store, exactly one creates the run of a given fire, and
 *    the last fire time needs no write of its own;
 *  - the end of a run whose last step was not stored yet: that step and
 *    the final record together (nothing can start after a run's last
 *    step, so "each step is stored before the next one starts" holds). */
#include "store/store_internal.h"
#include "util/err.h"

/* Sets the item's last fire time to fire_ms if it is earlier (or absent):
 * *won tells whether this call moved it. */
static int claim_fire(rm__conn *c, rm__job *j, const char *item, json_int_t fire_ms, bool *won) {
  int64_t changed = 0;
  int rc = rm__dbfail(j, c,
                      rm__qx(c, &changed,
                             "INSERT INTO schedule_state (item, last_fire_ms, updated_at) VALUES ($1, $2, rm_now()) "
                             "ON CONFLICT (item) DO UPDATE SET last_fire_ms = excluded.last_fire_ms, "
                             "updated_at = excluded.updated_at WHERE schedule_state.last_fire_ms < excluded.last_fire_ms",
                             json_pack("[sI]", item, fire_ms)));
  *won = changed > 0;
  return rc;
}

static int fire_run(rm__conn *c, rm__job *j) {
  const char *item = rm__str(j->args, "item");
  const json_t *at = json_object_get(j->args, "fire_ms"), *spec = json_object_get(j->args, "spec");
  bool won = false;
  if (!item || !*item || !json_is_integer(at) || !json_is_object(spec))
    return rm__fail(j, RM_EINVAL, "check fire: item, fire_ms (an integer) and spec (an object) are required");
  int rc = claim_fire(c, j, item, json_integer_value(at), &won);
  if (rc != 0 || !won) return rc;
  return rm__run_insert(c, j, spec, false);
}

static int finish_last_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "run_id"), *owner = rm__str(j->args, "owner");
  const json_t *step = json_object_get(j->args, "step");
  int rc = json_is_object(step) ? rm__step_insert(c, j, id, step) : 0;
  return rc ? rc : rm__run_finish(c, j, id, owner, json_object_get(j->args, "record"), false);
}

static const rm__op fire_op = {"check_fire", RM__OP_STEP, fire_run};
static const rm__op finish_last_op = {"run_finish_last", RM__OP_STEP, finish_last_run};

void rm_store_check_fire(rm_store *s, const char *item, int64_t fire_ms, const json_t *spec, rm_store_cb cb,
                         void *ud) {
  rm__submit(s, &fire_op,
             item && spec ? json_pack("{s:s, s:I, s:o}", "item", item, "fire_ms", (json_int_t)fire_ms, "spec",
                                      json_deep_copy(spec))
                          : NULL,
             cb, ud);
}

void rm_store_run_finish_last(rm_store *s, const char *run_id, const char *owner, json_t *step, const json_t *record,
                              rm_store_cb cb, void *ud) {
  rm__submit(s, &finish_last_op,
             json_pack("{s:s, s:s, s:o, s:o}", "run_id", run_id, "owner", owner, "step", step ? step : json_null(),
                       "record", rm__finish_record(record)),
             cb, ud);
}
