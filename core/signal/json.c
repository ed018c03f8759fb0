/* JSON forms: the machine (stored, so a restarted server resumes every
 * object exactly where it was) and the transition (stored and sent). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "signal/signal_internal.h"
#include "util/err.h"
#include "util/iso_time.h"

#define STATE_VERSION 1

void rm__signal_iso(int64_t ms, char out[32]) { rm_iso_ms(ms < 0 ? 0 : ms, out); }

/* ---- writing ---- */

/* One observation; with_iso adds its time as text (transitions). */
static json_t *evidence_json(const rm_signal_evidence *e, bool with_iso) {
  json_t *j = json_pack("{s:s?, s:s, s:I}", "id", e->id[0] ? e->id : NULL, "state", rm_signal_state_name(e->level),
                        "at_ms", (json_int_t)e->at_ms);
  char at[32];
  if (j && with_iso) {
    rm__signal_iso(e->at_ms, at);
    json_object_set_new(j, "at", json_string(at));
  }
  if (j && e->has_value) {
    json_object_set_new(j, "value", json_real(e->value));
    json_object_set_new(j, "aggregate", json_real(e->aggregate));
  }
  return j;
}

static json_t *streak_json(const rm_signal_streak *s) {
  return json_pack("{s:I, s:I}", "n", (json_int_t)s->n, "since_ms", (json_int_t)s->since_ms);
}

static json_t *recent_json(const rm_signal_evidence *items, size_t n, bool with_iso) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, evidence_json(&items[i], with_iso)) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static json_t *window_json(const rm_signal *sig) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < sig->nwindow; i++)
    if (json_array_append_new(a, json_pack("{s:I, s:f}", "at_ms", (json_int_t)sig->window[i].at_ms, "value",
                                           sig->window[i].value)) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

json_t *rm_signal_to_json(const rm_signal *sig) {
  json_t *pending = sig->has_pending ? json_pack("{s:s, s:I}", "state", rm_signal_state_name(sig->pending), "since_ms",
                                                 (json_int_t)sig->pending_since_ms)
                                     : json_null();
  return json_pack(
      "{s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o, s:{s:o, s:o, s:o, s:o}, s:o, s:o}", "v", STATE_VERSION,
      "state", rm_signal_state_name(sig->state), "transitions", (json_int_t)sig->transitions, "changed_ms",
      (json_int_t)sig->changed_ms, "observations", (json_int_t)sig->observations, "seen_ms", (json_int_t)sig->seen_ms,
      "last_at_ms", (json_int_t)sig->last_at_ms, "incidents", (json_int_t)sig->incidents, "incident_open",
      sig->incident_open, "pending", pending, "streaks", "failed", streak_json(&sig->failed), "bad",
      streak_json(&sig->bad), "healthy", streak_json(&sig->healthy), "not_failed", streak_json(&sig->not_failed),
      "recent", recent_json(sig->recent, sig->nrecent, false), "window", window_json(sig));
}

static const char *incident_word(const rm_signal_transition *t) {
  if (t->incident_opened) return "opened";
  if (t->incident_resolved) return "resolved";
  return t->correlation_id[0] ? "updated" : NULL;
}

json_t *rm_signal_transition_to_json(const rm_signal_transition *t) {
  char at[32];
  rm__signal_iso(t->at_ms, at);
  return json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s?, s:s?, s:o, s:I, s:o, s:s}", "source_id",
                   t->source_id, "source_type", rm_signal_type_name(t->source_type), "seq", (json_int_t)t->seq, "at",
                   at, "at_ms", (json_int_t)t->at_ms, "from", rm_signal_state_name(t->from), "to",
                   rm_signal_state_name(t->to), "severity", rm_signal_severity_name(t->severity), "correlation_id",
                   t->correlation_id[0] ? t->correlation_id : NULL, "incident", incident_word(t), "tags",
                   t->tags ? json_deep_copy(t->tags) : json_array(), "streak", (json_int_t)t->streak, "evidence",
                   recent_json(t->evidence, t->nevidence, true), "reason", t->reason);
}

/* ---- reading ---- */

static void read_u64(rm__sig_problems *p, const json_t *j, const char *path, const char *key, uint64_t *out) {
  int64_t v;
  if (rm__sig_int(p, j, path, key, true, 0, INT64_MAX, &v)) *out = (uint64_t)v;
}

static void read_state(rm__sig_problems *p, const json_t *j, const char *path, const char *key, int min,
                       enum rm_signal_state *out) {
  int i;
  if (rm__sig_enum(p, j, path, key, true, rm__signal_state_names + min, &i)) *out = (enum rm_signal_state)(i + min);
}

/* An object at j[key] (a problem when it is not one). */
static const json_t *object(rm__sig_problems *p, const json_t *j, const char *path, const char *key) {
  const json_t *v = json_object_get(j, key);
  if (!json_is_object(v)) rm__sig_problem(p, path, key, "must be an object");
  return json_is_object(v) ? v : NULL;
}

/* An array of at most max items at j[key]; its size in *n. */
static const json_t *array(rm__sig_problems *p, const json_t *j, const char *key, size_t max, size_t *n) {
  const json_t *v = json_object_get(j, key);
  *n = json_array_size(v);
  if (json_is_array(v) && *n <= max) return v;
  rm__sig_problem(p, "$", key, "must be an array of at most %zu items", max);
  *n = 0;
  return NULL;
}

static void read_streak(rm__sig_problems *p, const json_t *streaks, const char *key, rm_signal_streak *s) {
  char path[64];
  int64_t v;
  snprintf(path, sizeof path, "$.streaks.%s", key);
  const json_t *o = object(p, streaks, "$.streaks", key);
  if (!o) return;
  if (rm__sig_int(p, o, path, "n", true, 0, UINT32_MAX, &v)) s->n = (uint32_t)v;
  rm__sig_int(p, o, path, "since_ms", true, 0, INT64_MAX, &s->since_ms);
}

static void read_evidence(rm__sig_problems *p, const json_t *o, const char *path, rm_signal_evidence *e) {
  const char *id = "";
  if (!json_is_object(o)) {
    rm__sig_problem(p, path, NULL, "must be an object");
    return;
  }
  if (!json_is_null(json_object_get(o, "id"))) rm__sig_str(p, o, path, "id", true, RM_SIGNAL_ID_MAX - 1, &id);
  snprintf(e->id, sizeof e->id, "%s", id);
  read_state(p, o, path, "state", RM_SIGNAL_HEALTHY, &e->level);
  rm__sig_int(p, o, path, "at_ms", true, 0, INT64_MAX, &e->at_ms);
  e->has_value = json_object_get(o, "value") != NULL;
  if (e->has_value) {
    rm__sig_real(p, o, path, "value", true, &e->value);
    rm__sig_real(p, o, path, "aggregate", true, &e->aggregate);
  }
}

static void read_lists(rm__sig_problems *p, const json_t *j, rm_signal *s) {
  char path[48];
  const json_t *a = array(p, j, "recent", RM_SIGNAL_EVIDENCE_MAX, &s->nrecent);
  for (size_t i = 0; a && i < s->nrecent; i++) {
    snprintf(path, sizeof path, "$.recent[%zu]", i);
    read_evidence(p, json_array_get(a, i), path, &s->recent[i]);
  }
  a = array(p, j, "window", RM_SIGNAL_WINDOW_MAX, &s->nwindow);
  for (size_t i = 0; a && i < s->nwindow; i++) {
    const json_t *o = json_array_get(a, i);
    snprintf(path, sizeof path, "$.window[%zu]", i);
    rm__sig_int(p, o, path, "at_ms", true, 0, INT64_MAX, &s->window[i].at_ms);
    rm__sig_real(p, o, path, "value", true, &s->window[i].value);
  }
}

static void read_pending(rm__sig_problems *p, const json_t *j, rm_signal *s) {
  const json_t *o = json_object_get(j, "pending");
  if (json_is_null(o)) return;
  if (!(o = object(p, j, "$", "pending"))) return;
  s->has_pending = true;
  read_state(p, o, "$.pending", "state", RM_SIGNAL_HEALTHY, &s->pending);
  rm__sig_int(p, o, "$.pending", "since_ms", true, 0, INT64_MAX, &s->pending_since_ms);
}

static void read_machine(rm__sig_problems *p, const json_t *j, rm_signal *s) {
  read_state(p, j, "$", "state", RM_SIGNAL_UNKNOWN, &s->state);
  read_u64(p, j, "$", "transitions", &s->transitions);
  rm__sig_int(p, j, "$", "changed_ms", true, 0, INT64_MAX, &s->changed_ms);
  read_u64(p, j, "$", "observations", &s->observations);
  rm__sig_int(p, j, "$", "seen_ms", true, 0, INT64_MAX, &s->seen_ms);
  rm__sig_int(p, j, "$", "last_at_ms", true, 0, INT64_MAX, &s->last_at_ms);
  read_u64(p, j, "$", "incidents", &s->incidents);
  rm__sig_bool(p, j, "$", "incident_open", true, &s->incident_open);
  read_pending(p, j, s);
  const json_t *streaks = object(p, j, "$", "streaks");
  if (streaks) {
    read_streak(p, streaks, "failed", &s->failed);
    read_streak(p, streaks, "bad", &s->bad);
    read_streak(p, streaks, "healthy", &s->healthy);
    read_streak(p, streaks, "not_failed", &s->not_failed);
  }
  read_lists(p, j, s);
}

int rm_signal_from_json(rm_signal *sig, const json_t *j, char *err, size_t errlen) {
  rm__sig_problems p;
  rm_signal s;
  int64_t v = 0;
  rm__sig_problems_init(&p, NULL, err, errlen);
  rm_signal_init(&s);
  if (!json_is_object(j)) {
    rm__sig_problem(&p, "$", NULL, "must be an object");
    return RM_EINVAL;
  }
  if (!rm__sig_int(&p, j, "$", "v", true, 1, INT64_MAX, &v)) return RM_EINVAL;
  if (v > STATE_VERSION) {
    rm__sig_problem(&p, "$", "v", "version %lld is newer than this binary's %d", (long long)v, STATE_VERSION);
    return RM_EVERSION;
  }
  read_machine(&p, j, &s);
  if (p.n) return RM_EINVAL;
  *sig = s;
  return 0;
}
