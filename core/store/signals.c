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
#include "util/json_dump.h"


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
                                     {"tick", JSON_OBJECT, false},     {"interval_ms", JSON_INTEGER, false},
                                     {NULL, 0, false}};
  char err[600];
  int rc = rm__check(j, "signal", j->args, fields);
  if (rc) return rc;
  a->id = rm__str(j->args, "object_id");
  a->now_ms = json_integer_value(json_object_get(j->args, "now_ms"));
  const json_t *obs = json_object_get(j->args, "obs"), *tick = json_object_get(j->args, "tick");
  if (!obs == !tick) return rm__fail(j, RM_EINVAL, "signal %s: exactly one of obs and tick", a->id);
  a->tick = tick != NULL;
  a->interval_ms = json_integer_value(json_object_get(tick ? tick : j->args, "interval_ms"));
  if (obs && (rc = read_obs(j, a, obs)) != 0) return rc;
  if (rm_signal_config_parse(&a->cfg, json_object_get(j->args, "config"), NULL, err, sizeof err) != 0)
    return rm__fail(j, RM_EINVAL, "signal %s: config: %s", a->id, err);
  return 0;
}

/* SQLite reads the machine as text (machine_text) for the memo; keep in
 * step with RM__SIGNAL_COLS. */
#define SIGNAL_COLS_TEXT                                                                                      \
  "object_id, object_type, name, tags, state, state_rank, machine AS machine_text, transitions, changed_at, "  \
  "observed_at, acknowledged_by, acknowledged_at, ack_text, updated_at"

static int select_locked(rm__conn *c, rm__job *j, apply_ctx *a, json_t **row) {
  return rm__dbfail(j, c,
                    rm__q1(c, row,
                           rm__conn_pg(c) ? "SELECT " RM__SIGNAL_COLS " FROM signals WHERE object_id = $1 FOR UPDATE"
                                          : "SELECT " SIGNAL_COLS_TEXT " FROM signals WHERE object_id = $1",
                           json_pack("[s]", a->id)));
}

/* The row of the object, locked for this transaction; a new object gets
 * an Unknown one first (not on a tick: silence of nothing changes
 * nothing). Read first: the row exists for all but the first observation. */
static int lock_row(rm__conn *c, rm__job *j, apply_ctx *a, json_t **row) {
  int rc = select_locked(c, j, a, row);
  if (rc != 0 || *row || a->tick) return rc;
  rm_signal fresh;
  rm_signal_init(&fresh);
  json_t *m = rm_signal_to_json(&fresh);
  if (!m) return rm__fail(j, RM_ENOMEM, "out of memory");
  rc = rm__dbfail(j, c,
                  rm__qx(c, NULL,
                         "INSERT INTO signals (object_id, object_type, name, tags, state, state_rank, machine, "
                         "updated_at) VALUES ($1, $2, $3, $4, 'unknown', 1, $5, rm_now()) "
                         "ON CONFLICT (object_id) DO NOTHING",
                         json_pack("[s s s? O o]", a->id, rm_signal_type_name(a->cfg.type), rm__str(j->args, "name"),
                                   a->cfg.tags ? a->cfg.tags : json_array(), m)));
  return rc ? rc : select_locked(c, j, a, row);
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

/* The row as written: the one read (row, stolen) with the columns the
 * update set; the machine is the object written, not read back (a
 * machine's JSON round trip cost more than the write). */
static json_t *row_written(json_t *row, json_t *params, const json_t *stamps, bool changed) {
  static const char *const cols[] = {"object_id", "object_type", "name", "tags", "state", "state_rank", "machine",
                                     "transitions", "changed_at", "observed_at", NULL};
  for (size_t i = 1; cols[i]; i++) {
    json_t *v = json_array_get(params, i);
    if (i == 2 && json_is_null(v)) continue; /* name = COALESCE($3, name) */
    json_object_set(row, cols[i], v);
  }
  json_object_set(row, "updated_at", json_object_get(stamps, "updated_at"));
  static const char *const ack[] = {"acknowledged_by", "acknowledged_at", "ack_text", NULL};
  for (size_t i = 0; changed && ack[i]; i++) json_object_set_new(row, ack[i], json_null());
  return row;
}

/* row's column k holds v (both NULL counts). */
static bool same(const json_t *row, const char *k, const char *v) {
  const char *have = rm__str(row, k);
  return have && v ? strcmp(have, v) == 0 : !have && !v && json_is_null(json_object_get(row, k));
}

/* Writes the machine; a transition also clears the acknowledgement (the
 * new state is not what was acknowledged). j->result: the row (row
 * stolen, the one read under the lock). */
static int write_row(rm__conn *c, rm__job *j, apply_ctx *a, json_t *row, bool changed) {
  char changed_at[32], seen[32];
  rm__ts_format(a->sig.changed_ms, changed_at);
  rm__ts_format(a->sig.seen_ms, seen);
  const char *state = rm_signal_state_name(a->sig.state);
  json_t *m = rm_signal_to_json(&a->sig), *stamps = NULL;
  /* SQLite: the text written goes to the memo (the same text binding m
   * would write) */
  char *text = m && !rm__conn_pg(c) ? rm_json_dumps(m, 0) : NULL;
  json_t *params = m && (text || rm__conn_pg(c))
                       ? json_pack("[s s s? O s i O I s? s?]", a->id, rm_signal_type_name(a->cfg.type),
                                   rm__str(j->args, "name"), a->cfg.tags ? a->cfg.tags : json_array(), state,
                                   signal_rank(state), m, (json_int_t)a->sig.transitions,
                                   a->sig.transitions ? changed_at : NULL, a->sig.observations ? seen : NULL)
                       : NULL;
  if (params && text) json_array_set_new(params, 6, json_stringn_nocheck(text, strlen(text))); /* valid UTF-8: written from jansson strings */
  if (!params) {
    free(text);
    json_decref(m);
    json_decref(row);
    return rm__fail(j, RM_ENOMEM, "out of memory");
  }
#define SET_ROW                                                                                                  \
  "UPDATE signals SET object_type = $2, name = COALESCE($3, name), tags = $4, state = $5, state_rank = $6, "    \
  "machine = $7, transitions = $8, changed_at = $9, observed_at = $10, "
#define CLEAR_ACK "acknowledged_by = NULL, acknowledged_at = NULL, ack_text = NULL, "
#define WHERE_ROW "updated_at = rm_now() WHERE object_id = $1"
  int rc;
  json_incref(params);
  if (rm__conn_pg(c)) {
    rc = rm__q1(c, &stamps,
                changed ? SET_ROW CLEAR_ACK WHERE_ROW " RETURNING updated_at" : SET_ROW WHERE_ROW " RETURNING updated_at",
                params);
  } else { /* SQLite's RETURNING builds a temporary table; rm_now() is the transaction's time */
    /* An observation that moves no state (most of them) leaves the
     * CHECKed and indexed columns alone: SQLite then evaluates no CHECK
     * (each builds a temporary table for its IN list) and moves no
     * signals_rank entry. */
    bool steady = !changed && same(row, "object_type", rm_signal_type_name(a->cfg.type)) &&
                  same(row, "state", state) && same(row, "changed_at", a->sig.transitions ? changed_at : NULL);
    rc = rm__qx(c, NULL,
                steady    ? "UPDATE signals SET name = COALESCE($3, name), tags = $4, machine = $7, transitions = $8, "
                            "observed_at = $10, " WHERE_ROW
                : changed ? SET_ROW CLEAR_ACK WHERE_ROW
                          : SET_ROW WHERE_ROW,
                params);
    char now[32];
    if (rc == 0 && rm__tx_now(c, 0, now)) stamps = json_pack("{s:s}", "updated_at", now);
    else if (rc == 0) rc = rm__q1(c, &stamps, "SELECT rm_now() AS updated_at", NULL);
  }
#undef SET_ROW
#undef CLEAR_ACK
#undef WHERE_ROW
  rc = rm__dbfail(j, c, rc);
  if (rc == 0) {
    json_array_set_new(params, 6, m); /* the row shows the machine as an object */
    j->result = row_written(row, params, stamps, changed);
    if (text) rm__sigmemo_put(c, a->id, text, &a->sig);
  } else {
    json_decref(m);
    json_decref(row);
    free(text);
  }
  json_decref(params);
  json_decref(stamps);
  return rc;
}

/* The row's machine into a->sig: from the memo when the row holds the
 * text this connection wrote last, else parsed. */
static int read_machine(rm__conn *c, rm__job *j, apply_ctx *a, json_t *row) {
  char err[600];
  const json_t *text = json_object_get(row, "machine_text");
  if (json_is_string(text) && rm__sigmemo_get(c, a->id, json_string_value(text), json_string_length(text), &a->sig))
    return 0;
  json_t *m = json_is_string(text) ? json_loadb(json_string_value(text), json_string_length(text), 0, NULL)
                                   : json_incref(json_object_get(row, "machine"));
  int rc = rm_signal_from_json(&a->sig, m, err, sizeof err);
  json_decref(m);
  if (rc != 0) return rm__fail(j, RM_EINVAL, "signal %s: the stored machine is unreadable: %s", a->id, err);
  return 0;
}

/* row: stolen. */
static int apply_locked(rm__conn *c, rm__job *j, apply_ctx *a, json_t *row, json_t *trs) {
  int rc0 = read_machine(c, j, a, row);
  json_object_del(row, "machine_text");
  if (rc0 != 0) {
    json_decref(row);
    return rc0;
  }
  rm_signal_transition tr;
  int rc = run_machine(j, a, &tr);
  if (rc == 1) {
    json_t *tj = rm_signal_transition_to_json(&tr);
    if (!tj || json_array_append_new(trs, tj) != 0) rc = rm__fail(j, RM_ENOMEM, "out of memory");
    else rc = insert_transition(c, j, &tr, tj);
  }
  if (rc < 0) {
    json_decref(row);
    return rc;
  }
  return write_row(c, j, a, row, json_array_size(trs) > 0);
}

/* When a tick could next change the machine (UTC ms; -1: never): its
 * silence reaches Unknown, or a verdict a cooldown holds back is due. */
static int64_t due_of(apply_ctx *a) {
  int64_t due = -1, until;
  enum rm_signal_state to;
  if (a->sig.state != RM_SIGNAL_UNKNOWN && a->sig.observations && a->interval_ms > 0 && a->cfg.unknown_after)
    due = a->sig.seen_ms + (int64_t)a->cfg.unknown_after * a->interval_ms;
  if (rm_signal_pending(&a->cfg, &a->sig, &to, &until) && (due < 0 || until < due)) due = until;
  return due;
}

static int apply_run(rm__conn *c, rm__job *j) {
  apply_ctx a;
  memset(&a, 0, sizeof a);
  json_t *row = NULL, *trs = json_array();
  int rc = read_args(j, &a);
  if (rc == 0) rc = lock_row(c, j, &a, &row);
  if (rc == 0 && row) rc = apply_locked(c, j, &a, json_incref(row), trs);
  if (rc == 0) {
    json_t *res = json_pack("{s:o, s:o, s:I}", "signal", j->result ? j->result : json_null(), "transitions", trs,
                            "due_ms", (json_int_t)(j->result ? due_of(&a) : -1));
    j->result = res;
    trs = NULL;
    if (!res) rc = rm__fail(j, RM_ENOMEM, "out of memory");
  }
  rm_signal_config_free(&a.cfg);
  json_decref(row);
  json_decref(trs);
  return rc;
}

static const rm__op apply_op = {"signal_apply", RM__OP_STEP, apply_run}; /* group-committed */

void rm_store_signal_apply(rm_store *s, const json_t *spec, rm_store_cb cb, void *ud) {
  rm__submit(s, &apply_op, spec ? json_deep_copy(spec) : NULL, cb, ud);
}
