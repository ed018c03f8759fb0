/* Signals: applying an observation or a clock tick to an object's state
 * machine (core/signal) in one transaction -- read the machine, run it,
 * write it back with any transition -- so concurrent writers (threads or
 * processes) never lose an observation or record a transition twice.
 * Reading them back is in signal_query.c. */
#include <stdio.h>
#include <string.h>

#include "signal/signal.h"
#include "store/store_internal.h"
#include "util/err.h"


/* The overview's order: the worst first, Unknown above Healthy. */
static int signal_rank(const char *state) {
  static const char *const order[] = {"healthy", "unknown", "degraded", "failed", NULL};
  for (int i = 0; order[i]; i++)
    if (state && strcmp(order[i], state) == 0) return i;
  return 0;
}

/* What one call changes, read from its arguments. */
typedef struct apply_ctx {
  const char *id;
  rm_signal_config cfg;
  rm_signal sig;
  bool tick;
  rm_signal_obs obs;
  int64_t now_ms, interval_ms;
} apply_ctx;

static int read_obs(rm__job *j, apply_ctx *a, const json_t *obs) {
  const json_t *at = json_object_get(obs, "at_ms"), *v = json_object_get(obs, "value");
  const char *level = rm__str(obs, "level");
  if (!json_is_integer(at)) return rm__fail(j, RM_EINVAL, "signal %s: obs.at_ms: must be an integer", a->id);
  a->obs.at_ms = json_integer_value(at);
  a->obs.id = rm__str(obs, "id");
  a->obs.value = json_is_number(v) ? json_number_value(v) : 0;
  a->obs.level = RM_SIGNAL_UNKNOWN;
  if (level && rm_signal_level_parse(level, &a->obs.level) != 0)
    return rm__fail(j, RM_EINVAL, "signal %s: obs.level: '%s' is not healthy, degraded or failed", a->id, level);
  return 0;
}

static int read_args(rm__job *j, apply_ctx *a) {
  static const rm__field fields[] = {{"object_id", JSON_STRING, true}, {"config", JSON_OBJECT, true},
                                     {"now_ms", JSON_INTEGER, true},   {"obs", JSON_OBJECT, false},
                                     {"tick", JSON_OBJECT, false},     {NULL, 0, false}};
  char err[600];
  int rc = rm__check(j, "signal", j->args, fields);
  if (rc) return rc;
  a->id = rm__str(j->args, "object_id");
  a->now_ms = json_integer_value(json_object_get(j->args, "now_ms"));
  const json_t *obs = json_object_get(j->args, "obs"), *tick = json_object_get(j->args, "tick");
  if (!obs == !tick) return rm__fail(j, RM_EINVAL, "signal %s: exactly one of obs and tick", a->id);
  a->tick = tick != NULL;
  a->interval_ms = json_integer_value(json_object_get(tick, "interval_ms"));
  if (obs && (rc = read_obs(j, a, obs)) != 0) return rc;
  if (rm_signal_config_parse(&a->cfg, json_object_get(j->args, "config"), NULL, err, sizeof err) != 0)
    return rm__fail(j, RM_EINVAL, "signal %s: config: %s", a->id, err);
  return 0;
}

/* The row of the object, locked for this transaction; a new object gets
 * an Unknown one first (not on a tick: silence of nothing changes nothing). */
static int lock_row(rm__conn *c, rm__job *j, apply_ctx *a, json_t **row) {
  int rc = 0;
  if (!a->tick) {
    rm_signal fresh;
    rm_signal_init(&fresh);
    json_t *m = rm_signal_to_json(&fresh);
    if (!m) return rm__fail(j, RM_ENOMEM, "out of memory");
    rc = rm__dbfail(j, c,
                    rm__qx(c, NULL,
                           "INSERT INTO signals (object_id, object_type, name, tags, state, state_rank, machine, "
                           "updated_at) VALUES ($1, $2, $3, $4, 'unknown', 1, $5, rm_now()) "
                           "ON CONFLICT (object_id) DO NOTHING",
                           json_pack("[s s s? O o]", a->id, rm_signal_type_name(a->cfg.type),
                                     rm__str(j->args, "name"), a->cfg.tags ? a->cfg.tags : json_array(), m)));
  }
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, row,
                           rm__conn_pg(c) ? "SELECT " RM__SIGNAL_COLS " FROM signals WHERE object_id = $1 FOR UPDATE"
                                          : "SELECT " RM__SIGNAL_COLS " FROM signals WHERE object_id = $1",
                           json_pack("[s]", a->id)));
  return rc;
}

static int run_machine(rm__job *j, apply_ctx *a, rm_signal_transition *tr) {
  int rc = a->tick ? rm_signal_tick(&a->cfg, &a->sig, a->now_ms, a->interval_ms, tr)
                   : rm_signal_observe(&a->cfg, &a->sig, &a->obs, a->now_ms, tr);
  if (rc == RM_ECONFLICT)
    return rm__fail(j, rc, "signal %s: an observation made at %lld ms is older than the last one (%lld ms)", a->id,
                    (long long)a->obs.at_ms, (long long)a->sig.last_at_ms);
  if (rc < 0)
    return rm__fail(j, rc, "signal %s: the observation does not fit a %s object", a->id,
                    rm_signal_type_name(a->cfg.type));
  return rc;
}

static int insert_transition(rm__conn *c, rm__job *j, const rm_signal_transition *tr, json_t *tj) {
  char at[32];
  rm__ts_format(tr->at_ms, at);
  return rm__dbfail(j, c,
                    rm__qx(c, NULL,
                           "INSERT INTO signal_transitions (object_id, seq, at, from_state, to_state, severity, "
                           "source_type, correlation_id, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           json_pack("[s I s s s s s s? O]", tr->source_id, (json_int_t)tr->seq, at,
                                     rm_signal_state_name(tr->from), rm_signal_state_name(tr->to),
                                     rm_signal_severity_name(tr->severity), rm_signal_type_name(tr->source_type),
                                     tr->correlation_id[0] ? tr->correlation_id : NULL, tj)));
}

/* Writes the machine; a transition also clears the acknowledgement (the
 * new state is not what was acknowledged). */
static int write_row(rm__conn *c, rm__job *j, apply_ctx *a, bool changed) {
  char changed_at[32], seen[32];
  rm__ts_format(a->sig.changed_ms, changed_at);
  rm__ts_format(a->sig.seen_ms, seen);
  const char *state = rm_signal_state_name(a->sig.state);
  json_t *m = rm_signal_to_json(&a->sig);
  if (!m) return rm__fail(j, RM_ENOMEM, "out of memory");
  return rm__dbfail(
      j, c,
      rm__q1(c, &j->result,
             changed ? "UPDATE signals SET object_type = $2, name = COALESCE($3, name), tags = $4, state = $5, "
                       "state_rank = $6, machine = $7, transitions = $8, changed_at = $9, observed_at = $10, "
                       "acknowledged_by = NULL, acknowledged_at = NULL, ack_text = NULL, updated_at = rm_now() "
                       "WHERE object_id = $1 RETURNING " RM__SIGNAL_COLS
                     : "UPDATE signals SET object_type = $2, name = COALESCE($3, name), tags = $4, state = $5, "
                       "state_rank = $6, machine = $7, transitions = $8, changed_at = $9, observed_at = $10, "
                       "updated_at = rm_now() WHERE object_id = $1 RETURNING " RM__SIGNAL_COLS,
             json_pack("[s s s? O s i o I s? s?]", a->id, rm_signal_type_name(a->cfg.type), rm__str(j->args, "name"),
                       a->cfg.tags ? a->cfg.tags : json_array(), state, signal_rank(state), m,
                       (json_int_t)a->sig.transitions, a->sig.transitions ? changed_at : NULL,
                       a->sig.observations ? seen : NULL)));
}

static int apply_locked(rm__conn *c, rm__job *j, apply_ctx *a, json_t *row, json_t *trs) {
  char err[600];
  if (rm_signal_from_json(&a->sig, json_object_get(row, "machine"), err, sizeof err) != 0)
    return rm__fail(j, RM_EINVAL, "signal %s: the stored machine is unreadable: %s", a->id, err);
  rm_signal_transition tr;
  int rc = run_machine(j, a, &tr);
  if (rc < 0) return rc;
  if (rc == 1) {
    json_t *tj = rm_signal_transition_to_json(&tr);
    if (!tj || json_array_append_new(trs, tj) != 0) return rm__fail(j, RM_ENOMEM, "out of memory");
    if ((rc = insert_transition(c, j, &tr, tj)) != 0) return rc;
  }
  return write_row(c, j, a, json_array_size(trs) > 0);
}

static int apply_run(rm__conn *c, rm__job *j) {
  apply_ctx a;
  memset(&a, 0, sizeof a);
  json_t *row = NULL, *trs = json_array();
  int rc = read_args(j, &a);
  if (rc == 0) rc = lock_row(c, j, &a, &row);
  if (rc == 0 && row) rc = apply_locked(c, j, &a, row, trs);
  if (rc == 0) {
    json_t *res = json_pack("{s:o, s:o}", "signal", j->result ? j->result : json_null(), "transitions", trs);
    j->result = res;
    trs = NULL;
    if (!res) rc = rm__fail(j, RM_ENOMEM, "out of memory");
  }
  rm_signal_config_free(&a.cfg);
  json_decref(row);
  json_decref(trs);
  return rc;
}

static const rm__op apply_op = {"signal_apply", RM__OP_WRITE, apply_run};

void rm_store_signal_apply(rm_store *s, const json_t *spec, rm_store_cb cb, void *ud) {
  rm__submit(s, &apply_op, spec ? json_deep_copy(spec) : NULL, cb, ud);
}
