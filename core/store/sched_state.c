/* Scheduler state: the last fire time of each scheduled item, written in
 * batches (one statement per batch) and read back whole at start-up. A
 * write never moves an item's time backwards, so batches that overlap or
 * arrive out of order leave the latest time. */
#include "store/store_internal.h"
#include "util/err.h"

static int state_put_run(rm__conn *c, rm__job *j) {
  const json_t *items = json_object_get(j->args, "items"), *it;
  size_t i;
  json_array_foreach(items, i, it) {
    if (!json_is_string(json_object_get(it, "item")) || !json_is_integer(json_object_get(it, "last_fire_ms")))
      return rm__fail(j, RM_EINVAL, "schedule state: items[%zu]: must be {\"item\": string, \"last_fire_ms\": integer}",
                      i);
  }
  const char *sql =
      rm__conn_pg(c)
          ? "INSERT INTO schedule_state (item, last_fire_ms, updated_at) "
            "SELECT e->>'item', (e->>'last_fire_ms')::bigint, rm_now() FROM jsonb_array_elements($1::jsonb) e "
            "ON CONFLICT (item) DO UPDATE SET last_fire_ms = GREATEST(schedule_state.last_fire_ms, "
            "excluded.last_fire_ms), updated_at = excluded.updated_at"
          : "INSERT INTO schedule_state (item, last_fire_ms, updated_at) "
            "SELECT json_extract(value, '$.item'), json_extract(value, '$.last_fire_ms'), rm_now() "
            "FROM json_each($1) WHERE true "
            "ON CONFLICT (item) DO UPDATE SET last_fire_ms = max(schedule_state.last_fire_ms, "
            "excluded.last_fire_ms), updated_at = excluded.updated_at";
  return rm__dbfail(j, c, rm__qx(c, NULL, sql, json_pack("[o]", rm__json_text(items))));
}

static int state_del_run(rm__conn *c, rm__job *j) {
  return rm__dbfail(j, c,
                    rm__qx(c, NULL, "DELETE FROM schedule_state WHERE item = $1",
                           json_pack("[s]", rm__str(j->args, "item"))));
}

static int state_all_run(rm__conn *c, rm__job *j) {
  json_t *rows = NULL;
  int rc = rm__dbfail(j, c, rm__q(c, &rows, "SELECT item, last_fire_ms FROM schedule_state", NULL));
  if (rc) return rc;
  json_t *out = json_object();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    const json_t *t = json_object_get(row, "last_fire_ms");
    json_int_t v = json_is_integer(t) ? json_integer_value(t) : (json_int_t)json_number_value(t);
    json_object_set_new(out, rm__str(row, "item"), json_integer(v));
  }
  json_decref(rows);
  j->result = out;
  return 0;
}

static const rm__op state_put_op = {"sched_state_put", RM__OP_WRITE, state_put_run};
static const rm__op state_del_op = {"sched_state_delete", RM__OP_WRITE, state_del_run};
static const rm__op state_all_op = {"sched_state_all", RM__OP_READ, state_all_run};

void rm_store_sched_state_put(rm_store *s, const json_t *items, rm_store_cb cb, void *ud) {
  rm__submit(s, &state_put_op, json_is_array(items) ? json_pack("{s:o}", "items", rm__copy(items)) : NULL, cb, ud);
}

void rm_store_sched_state_delete(rm_store *s, const char *item, rm_store_cb cb, void *ud) {
  rm__submit(s, &state_del_op, item ? json_pack("{s:s}", "item", item) : NULL, cb, ud);
}

void rm_store_sched_state_all(rm_store *s, rm_store_cb cb, void *ud) {
  rm__submit(s, &state_all_op, json_object(), cb, ud);
}
