/* The human reason of a transition: what streak reached which threshold,
 * citing the observations ("3 consecutive failures (runs a, b, c) reached
 * the threshold of 3"), or how long the silence was. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "signal/signal_internal.h"

typedef struct text {
  char *s;
  size_t cap, len;
} text;

/* Appends; what does not fit is cut. */
__attribute__((format(printf, 2, 3))) static void put(text *b, const char *fmt, ...) {
  if (b->len + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (k > 0) b->len += (size_t)k < b->cap - b->len ? (size_t)k : b->cap - b->len - 1;
}

typedef struct noun {
  const char *one, *many;
} noun;

/* Indexed by rule. */
static const noun check_nouns[] = {
    [RM__SIG_FAILED] = {"failure", "failures"},
    [RM__SIG_BAD] = {"degraded or failed run", "degraded or failed runs"},
    [RM__SIG_HEALTHY] = {"success", "successes"},
    [RM__SIG_NOT_FAILED] = {"run no worse than degraded", "runs no worse than degraded"},
};
static const noun event_nouns[] = {
    [RM__SIG_FAILED] = {"failed event", "failed events"},
    [RM__SIG_BAD] = {"degraded or failed event", "degraded or failed events"},
    [RM__SIG_HEALTHY] = {"healthy event", "healthy events"},
    [RM__SIG_NOT_FAILED] = {"event no worse than degraded", "events no worse than degraded"},
};

/* Milliseconds as seconds: "60", "1.5". */
static const char *secs(char out[32], int64_t ms) {
  if (ms % 1000 == 0) {
    snprintf(out, 32, "%" PRId64, ms / 1000);
    return out;
  }
  snprintf(out, 32, "%.3f", (double)ms / 1000);
  for (size_t n = strlen(out); out[n - 1] == '0'; n--) out[n - 1] = '\0';
  return out;
}

/* " (runs a, b, c" or " (last 10 runs: ...": the cited ids, or the
 * values for metrics. Whether it wrote anything (the caller closes it). */
static bool put_cited(text *b, const rm_signal_transition *t, const noun *label, bool values) {
  size_t k = 0;
  for (size_t i = 0; i < t->nevidence; i++) k += values || t->evidence[i].id[0];
  if (!k) return false;
  if (t->streak > k)
    put(b, " (last %zu %s: ", k, label->many);
  else
    put(b, " (%s ", k == 1 ? label->one : label->many);
  for (size_t i = 0, n = 0; i < t->nevidence; i++) {
    if (values)
      put(b, "%s%g", n++ ? ", " : "", t->evidence[i].value);
    else if (t->evidence[i].id[0])
      put(b, "%s%s", n++ ? ", " : "", t->evidence[i].id);
  }
  return true;
}

/* Which threshold a streak reached, after "the ": the count (of unit,
 * for metrics), the breach duration when there is one. */
static void put_threshold(text *b, const rm_signal *sig, const rm__sig_verdict *v, const char *unit,
                          int64_t breach_ms) {
  bool leave = v->rule == RM__SIG_HEALTHY && sig->state == RM_SIGNAL_UNKNOWN && !sig->incident_open;
  const char *kind = v->rule == RM__SIG_BAD ? "degraded " : v->rule == RM__SIG_FAILED || leave ? "" : "recovery ";
  char w[32];
  put(b, "%sthreshold of %" PRIu32 "%s%s", kind, v->threshold, unit, unit[0] && v->threshold != 1 ? "s" : "");
  if (breach_ms > 0) put(b, " and the breach duration of %s s", secs(w, breach_ms));
  if (leave) put(b, " to leave unknown");
}

static void counted_reason(text *b, const rm_signal_config *cfg, const rm_signal *sig, const rm__sig_verdict *v,
                           const rm_signal_transition *t) {
  bool check = cfg->type == RM_SIGNAL_CHECK;
  const noun *n = check ? &check_nouns[v->rule] : &event_nouns[v->rule];
  static const noun runs = {"run", "runs"}, events = {"event", "events"};
  if (t->streak == 1)
    put(b, "1 %s", n->one);
  else
    put(b, "%" PRIu32 " consecutive %s", t->streak, n->many);
  if (put_cited(b, t, check ? &runs : &events, false)) put(b, ")");
  put(b, " reached the ");
  put_threshold(b, sig, v, "", 0);
}

/* "the mean over 60 s was above the failed threshold 800" */
static void put_condition(text *b, const rm_signal_metric_rule *m, enum rm__sig_rule rule) {
  static const char *const agg[] = {"", "mean", "", "minimum", "maximum"};
  char w[32];
  if (m->window_ms == 0 || m->aggregate == RM_SIGNAL_AGG_LAST)
    put(b, "the value");
  else
    put(b, "the %s over %s s", agg[m->aggregate], secs(w, m->window_ms));
  bool failed = m->has_failed && (rule == RM__SIG_FAILED || rule == RM__SIG_NOT_FAILED || !m->has_degraded);
  bool negated = rule == RM__SIG_HEALTHY || rule == RM__SIG_NOT_FAILED;
  put(b, " was %s%s the %s threshold %g", negated ? "not " : "", m->direction == RM_SIGNAL_BELOW ? "below" : "above",
      failed ? "failed" : "degraded", failed ? m->failed : m->degraded);
}

static void metric_reason(text *b, const rm_signal_config *cfg, const rm_signal *sig, const rm__sig_verdict *v,
                          const rm_signal_transition *t) {
  static const noun values = {"value", "values"};
  static const char *const agg_short[] = {"", "mean", "last", "min", "max"};
  const rm_signal_metric_rule *m = &cfg->metric;
  char w[32];
  put_condition(b, m, v->rule);
  if (t->streak == 1)
    put(b, " in 1 sample");
  else
    put(b, " in %" PRIu32 " consecutive samples", t->streak);
  if (m->breach_ms > 0) put(b, " over %s s", secs(w, sig->last_at_ms - v->streak->since_ms));
  if (put_cited(b, t, &values, true)) {
    if (m->window_ms > 0 && m->aggregate != RM_SIGNAL_AGG_LAST)
      put(b, "; %s %g", agg_short[m->aggregate], t->evidence[t->nevidence - 1].aggregate);
    put(b, ")");
  }
  put(b, " reached the ");
  put_threshold(b, sig, v, " sample", m->breach_ms);
}

void rm__signal_reason(const rm_signal_config *cfg, const rm_signal *sig, const rm__sig_verdict *v,
                       rm_signal_transition *t) {
  text b = {t->reason, sizeof t->reason, 0};
  char w1[32], w2[32], at[32];
  t->reason[0] = '\0';
  if (v->rule == RM__SIG_SILENCE) {
    put(&b, "no observation for %s s (unknown after %" PRIu32 " intervals of %s s)", secs(w1, v->silence_ms),
        cfg->unknown_after, secs(w2, v->interval_ms));
    return;
  }
  if (cfg->type == RM_SIGNAL_METRIC)
    metric_reason(&b, cfg, sig, v, t);
  else
    counted_reason(&b, cfg, sig, v, t);
  if (!v->was_held) return;
  rm__signal_iso(v->held_since_ms, at);
  put(&b, "; held back by the %s s cooldown since %s", secs(w1, cfg->cooldown_ms), at);
}
