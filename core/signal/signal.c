/* The signal state machine (semantics in signal.h): observations update
 * the streaks, the streaks give a verdict, the cooldown may hold the
 * verdict back, and a verdict let through becomes a transition. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "signal/signal_internal.h"
#include "util/err.h"

void rm_signal_init(rm_signal *sig) { memset(sig, 0, sizeof *sig); }

/* ---- the metric window ---- */

/* Adds a sample, first dropping those that fell out of the window (and
 * the oldest when it is full). Samples arrive in time order. */
static void window_push(const rm_signal_metric_rule *m, rm_signal *sig, int64_t at_ms, double value) {
  size_t drop = 0;
  while (drop < sig->nwindow && sig->window[drop].at_ms <= at_ms - m->window_ms) drop++;
  if (sig->nwindow - drop == RM_SIGNAL_WINDOW_MAX) drop++;
  memmove(sig->window, sig->window + drop, (sig->nwindow - drop) * sizeof sig->window[0]);
  sig->nwindow -= drop;
  sig->window[sig->nwindow++] = (rm_signal_sample){at_ms, value};
}

static double window_aggregate(const rm_signal_metric_rule *m, const rm_signal *sig) {
  double acc = m->aggregate == RM_SIGNAL_AGG_MEAN ? 0 : sig->window[0].value;
  for (size_t i = 0; i < sig->nwindow; i++) {
    double v = sig->window[i].value;
    if (m->aggregate == RM_SIGNAL_AGG_MEAN)
      acc += v;
    else if (m->aggregate == RM_SIGNAL_AGG_LAST)
      acc = v;
    else if (m->aggregate == RM_SIGNAL_AGG_MIN)
      acc = v < acc ? v : acc;
    else
      acc = v > acc ? v : acc;
  }
  return m->aggregate == RM_SIGNAL_AGG_MEAN ? acc / (double)sig->nwindow : acc;
}

static bool beyond(const rm_signal_metric_rule *m, double v, double threshold) {
  return m->direction == RM_SIGNAL_BELOW ? v < threshold : v > threshold;
}

static enum rm_signal_state metric_level(const rm_signal_metric_rule *m, double aggregate) {
  if (m->has_failed && beyond(m, aggregate, m->failed)) return RM_SIGNAL_FAILED;
  if (m->has_degraded && beyond(m, aggregate, m->degraded)) return RM_SIGNAL_DEGRADED;
  return RM_SIGNAL_HEALTHY;
}

/* ---- streaks and recent observations ---- */

static void streak_step(rm_signal_streak *s, bool holds, int64_t at_ms) {
  if (!holds) {
    *s = (rm_signal_streak){0, 0};
    return;
  }
  if (s->n == 0) s->since_ms = at_ms;
  if (s->n < UINT32_MAX) s->n++;
}

static void streaks_step(rm_signal *sig, enum rm_signal_state level, int64_t at_ms) {
  streak_step(&sig->failed, level == RM_SIGNAL_FAILED, at_ms);
  streak_step(&sig->bad, level != RM_SIGNAL_HEALTHY, at_ms);
  streak_step(&sig->healthy, level == RM_SIGNAL_HEALTHY, at_ms);
  streak_step(&sig->not_failed, level != RM_SIGNAL_FAILED, at_ms);
}

static void streaks_clear(rm_signal *sig) {
  sig->failed = sig->bad = sig->healthy = sig->not_failed = (rm_signal_streak){0, 0};
}

static void remember(rm_signal *sig, const rm_signal_evidence *e) {
  if (sig->nrecent == RM_SIGNAL_EVIDENCE_MAX) {
    memmove(sig->recent, sig->recent + 1, (RM_SIGNAL_EVIDENCE_MAX - 1) * sizeof sig->recent[0]);
    sig->nrecent--;
  }
  sig->recent[sig->nrecent++] = *e;
}

/* ---- the verdict ---- */

/* Whether s has reached threshold, and for metrics lasted breach_ms. */
static bool streak_ok(const rm_signal_config *cfg, const rm_signal *sig, const rm_signal_streak *s,
                      uint32_t threshold) {
  if (s->n < threshold) return false;
  return cfg->type != RM_SIGNAL_METRIC || sig->last_at_ms - s->since_ms >= cfg->metric.breach_ms;
}

static bool try_rule(const rm_signal_config *cfg, const rm_signal *sig, rm__sig_verdict *v, enum rm_signal_state to,
                     enum rm__sig_rule rule, const rm_signal_streak *s, uint32_t threshold) {
  if (!streak_ok(cfg, sig, s, threshold)) return false;
  *v = (rm__sig_verdict){.to = to, .rule = rule, .threshold = threshold, .streak = s};
  return true;
}

/* Where the streaks point, or rule NONE: escalation first, and only
 * towards a worse state; then recovery, only towards a better one. */
static rm__sig_verdict verdict(const rm_signal_config *cfg, const rm_signal *sig) {
  rm__sig_verdict v = {.to = sig->state, .rule = RM__SIG_NONE};
  bool unknown = sig->state == RM_SIGNAL_UNKNOWN;
  if (try_rule(cfg, sig, &v, RM_SIGNAL_FAILED, RM__SIG_FAILED, &sig->failed, cfg->failures_to_fail) ||
      try_rule(cfg, sig, &v, RM_SIGNAL_DEGRADED, RM__SIG_BAD, &sig->bad, cfg->degradations_to_degrade)) {
    if (unknown || v.to > sig->state) return v;
    v = (rm__sig_verdict){.to = sig->state, .rule = RM__SIG_NONE};
  }
  if (sig->state == RM_SIGNAL_HEALTHY) return v;
  uint32_t heal = unknown && !sig->incident_open ? 1 : cfg->successes_to_recover;
  if (try_rule(cfg, sig, &v, RM_SIGNAL_HEALTHY, RM__SIG_HEALTHY, &sig->healthy, heal)) return v;
  if (sig->state == RM_SIGNAL_FAILED)
    try_rule(cfg, sig, &v, RM_SIGNAL_DEGRADED, RM__SIG_NOT_FAILED, &sig->not_failed, cfg->successes_to_recover);
  return v;
}

/* Whether the cooldown holds a move to `to` back at now_ms. */
static bool held(const rm_signal_config *cfg, const rm_signal *sig, enum rm_signal_state to, int64_t now_ms) {
  if (sig->state == RM_SIGNAL_UNKNOWN || to == RM_SIGNAL_UNKNOWN) return false;
  if (to > sig->state && cfg->escalate_during_cooldown) return false;
  return now_ms - sig->changed_ms < cfg->cooldown_ms;
}

/* ---- transitions ---- */

static enum rm_signal_severity severity_of(enum rm_signal_state to) {
  if (to == RM_SIGNAL_HEALTHY) return RM_SIGNAL_SEV_INFO;
  return to == RM_SIGNAL_FAILED ? RM_SIGNAL_SEV_CRITICAL : RM_SIGNAL_SEV_WARNING;
}

/* Opens, continues or resolves the incident in t (sig is not changed). */
static void incident(const rm_signal_config *cfg, const rm_signal *sig, rm_signal_transition *t) {
  uint64_t n = sig->incidents;
  t->incident_opened = !sig->incident_open && t->to != RM_SIGNAL_HEALTHY;
  t->incident_resolved = sig->incident_open && t->to == RM_SIGNAL_HEALTHY;
  if (t->incident_opened) n++;
  if (sig->incident_open || t->incident_opened)
    snprintf(t->correlation_id, sizeof t->correlation_id, "%s#%" PRIu64, cfg->id, n);
}

/* The latest observations of the streak behind v. */
static void cite(const rm_signal *sig, const rm__sig_verdict *v, rm_signal_transition *t) {
  size_t n = v->streak ? v->streak->n : 0;
  if (n > sig->nrecent) n = sig->nrecent;
  memcpy(t->evidence, sig->recent + (sig->nrecent - n), n * sizeof t->evidence[0]);
  t->nevidence = n;
  t->streak = v->streak ? v->streak->n : 0;
}

static void apply(rm_signal *sig, const rm_signal_transition *t) {
  sig->state = t->to;
  sig->transitions = t->seq;
  sig->changed_ms = t->at_ms;
  if (t->incident_opened) sig->incidents++;
  sig->incident_open = t->to != RM_SIGNAL_HEALTHY;
  sig->has_pending = false;
  sig->pending = RM_SIGNAL_UNKNOWN;
  sig->pending_since_ms = 0;
  if (t->to == RM_SIGNAL_UNKNOWN) streaks_clear(sig);
}

static void transition(const rm_signal_config *cfg, rm_signal *sig, const rm__sig_verdict *v, int64_t now_ms,
                       rm_signal_transition *t) {
  memset(t, 0, sizeof *t);
  snprintf(t->source_id, sizeof t->source_id, "%s", cfg->id);
  t->source_type = cfg->type;
  t->tags = cfg->tags;
  t->seq = sig->transitions + 1;
  t->at_ms = now_ms;
  t->from = sig->state;
  t->to = v->to;
  t->severity = severity_of(v->to);
  incident(cfg, sig, t);
  cite(sig, v, t);
  rm__signal_reason(cfg, sig, v, t);
  apply(sig, t);
}

/* Turns the current verdict into a transition unless the cooldown holds
 * it back, in which case it is recorded as pending. 1 or 0. */
static int decide(const rm_signal_config *cfg, rm_signal *sig, int64_t now_ms, rm_signal_transition *t) {
  rm__sig_verdict v = verdict(cfg, sig);
  bool was_pending = sig->has_pending && sig->pending == v.to;
  if (v.rule == RM__SIG_NONE) {
    sig->has_pending = false;
    sig->pending = RM_SIGNAL_UNKNOWN;
    sig->pending_since_ms = 0;
    return 0;
  }
  if (held(cfg, sig, v.to, now_ms)) {
    if (!was_pending) sig->pending_since_ms = now_ms;
    sig->has_pending = true;
    sig->pending = v.to;
    return 0;
  }
  v.was_held = was_pending;
  v.held_since_ms = sig->pending_since_ms;
  transition(cfg, sig, &v, now_ms, t);
  return 1;
}

/* ---- observe ---- */

/* RM_EINVAL or RM_ECONFLICT when obs cannot be taken. */
static int check_obs(const rm_signal_config *cfg, const rm_signal *sig, const rm_signal_obs *obs, int64_t now_ms) {
  if (!cfg || !sig || !obs || now_ms < 0 || obs->at_ms < 0) return RM_EINVAL;
  if (obs->id && strlen(obs->id) >= RM_SIGNAL_ID_MAX) return RM_EINVAL;
  if (cfg->type == RM_SIGNAL_METRIC ? !isfinite(obs->value)
                                    : obs->level < RM_SIGNAL_HEALTHY || obs->level > RM_SIGNAL_FAILED)
    return RM_EINVAL;
  if (sig->observations && obs->at_ms < sig->last_at_ms) return RM_ECONFLICT;
  return 0;
}

/* What is remembered of obs; for metrics this pushes it into the window. */
static rm_signal_evidence take(const rm_signal_config *cfg, rm_signal *sig, const rm_signal_obs *obs) {
  rm_signal_evidence e = {.level = obs->level, .at_ms = obs->at_ms};
  snprintf(e.id, sizeof e.id, "%s", obs->id ? obs->id : "");
  if (cfg->type != RM_SIGNAL_METRIC) return e;
  window_push(&cfg->metric, sig, obs->at_ms, obs->value);
  e.has_value = true;
  e.value = obs->value;
  e.aggregate = window_aggregate(&cfg->metric, sig);
  e.level = metric_level(&cfg->metric, e.aggregate);
  return e;
}

int rm_signal_observe(const rm_signal_config *cfg, rm_signal *sig, const rm_signal_obs *obs, int64_t now_ms,
                      rm_signal_transition *tr) {
  int rc = tr ? check_obs(cfg, sig, obs, now_ms) : RM_EINVAL;
  if (rc != 0) return rc;
  rm_signal_evidence e = take(cfg, sig, obs);
  remember(sig, &e);
  streaks_step(sig, e.level, obs->at_ms);
  sig->observations++;
  sig->seen_ms = now_ms;
  sig->last_at_ms = obs->at_ms;
  return decide(cfg, sig, now_ms, tr);
}

/* ---- tick ---- */

static bool silent(const rm_signal_config *cfg, const rm_signal *sig, int64_t now_ms, int64_t interval_ms) {
  if (sig->state == RM_SIGNAL_UNKNOWN || !cfg->unknown_after || !interval_ms) return false;
  if (interval_ms > INT64_MAX / cfg->unknown_after) return false;
  return now_ms - sig->seen_ms >= interval_ms * cfg->unknown_after;
}

int rm_signal_tick(const rm_signal_config *cfg, rm_signal *sig, int64_t now_ms, int64_t interval_ms,
                   rm_signal_transition *tr) {
  if (!cfg || !sig || !tr || now_ms < 0 || interval_ms < 0) return RM_EINVAL;
  if (!silent(cfg, sig, now_ms, interval_ms)) return decide(cfg, sig, now_ms, tr);
  rm__sig_verdict v = {.to = RM_SIGNAL_UNKNOWN, .rule = RM__SIG_SILENCE};
  v.silence_ms = now_ms - sig->seen_ms;
  v.interval_ms = interval_ms;
  transition(cfg, sig, &v, now_ms, tr);
  return 1;
}

bool rm_signal_pending(const rm_signal_config *cfg, const rm_signal *sig, enum rm_signal_state *to, int64_t *until_ms) {
  if (!sig->has_pending) return false;
  if (to) *to = sig->pending;
  if (until_ms) *until_ms = sig->changed_ms + cfg->cooldown_ms;
  return true;
}
