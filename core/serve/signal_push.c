/* Observations pushed through the API (authenticated like every route):
 *   POST /monitors/{id}/metrics  {"value": number, "at"?: ISO time, "id"?}
 *     to a metric monitor;
 *   POST /monitors/{id}/events   {"state": healthy|degraded|failed, or
 *     "severity": info|warning|critical|... (rm_signal_severity_level),
 *     "at"?, "id"?, "message"?}  to an event monitor.
 * "at" (when the value was taken; default now) may not be in the future
 * nor older than the signal's last observation (409). Answers 200
 * {"signal": the signal, "transition": the transition it caused or null}. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/defs.h"
#include "serve/signals_int.h"
#include "signal/signal.h"
#include "util/err.h"
#include "util/log.h"

#define FUTURE_SLACK_MS 60000 /* clocks of pushers drift a little */

static int num(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "Z" or "+HH:MM" / "-HH:MM" / "+HHMM" into seconds east of UTC. */
static bool zone(const char *p, int *off) {
  if ((*p == 'Z' || *p == 'z') && !p[1]) return *off = 0, true;
  if (*p != '+' && *p != '-') return false;
  int h = num(p + 1, 2), m = num(p + (p[3] == ':' ? 4 : 3), 2);
  if (h < 0 || h > 23 || m < 0 || m > 59 || p[(p[3] == ':' ? 6 : 5)]) return false;
  *off = (*p == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return true;
}

bool rm__signals_iso_ms(const char *s, int64_t *ms) {
  if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || !strchr("Tt ", s[10]) || s[13] != ':' || s[16] != ':')
    return false;
  int Y = num(s, 4), M = num(s + 5, 2), D = num(s + 8, 2), h = num(s + 11, 2), mi = num(s + 14, 2),
      sec = num(s + 17, 2), frac = 0, off;
  const char *p = s + 19;
  if (*p == '.') {
    int scale = 100, n = 0;
    for (p++; isdigit((unsigned char)*p); p++, n++, scale /= 10) frac += (*p - '0') * scale;
    if (n == 0) return false;
  }
  if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
      sec > 59 || !zone(p, &off))
    return false;
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
  *ms = ((int64_t)timegm(&tm) - off) * 1000 + frac;
  return true;
}

/* ---- answering ---- */

static void fed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  json_t *trs = json_object_get(res, "transitions");
  json_t *data = json_pack("{s:o, s:O}", "signal", rm__signals_view(json_object_get(res, "signal")), "transition",
                           json_array_size(trs) ? json_array_get(trs, 0) : json_null());
  json_decref(res);
  rm_hctx_ok(c, 200, data);
}

/* The monitor in c->doc2 must be of type; c->doc holds the observation. */
static void feed_loaded(rm_hctx *c, const char *type) {
  const char *has = json_string_value(json_object_get(c->doc2, "type"));
  if (!has || strcmp(has, type) != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "monitor %.100s is a %s monitor: %s go to %s monitors", c->id, has ? has : "?",
             strcmp(type, "metric") == 0 ? "metric values" : "events", type);
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  rm__signals_feed(c->s, c->doc2, "monitor", c->doc, fed, c);
}

static void metric_loaded(rm_hctx *c) { feed_loaded(c, "metric"); }

static void event_loaded(rm_hctx *c) {
  const char *msg = json_string_value(json_object_get(c->doc, "message"));
  if (msg) rm_log_info("signal", "event for monitor %s: %.500s", c->id, msg);
  json_object_del(c->doc, "message");
  feed_loaded(c, "event");
}

/* ---- the bodies ---- */

/* The common fields into c->doc as an observation: at_ms and id. */
static void common(rm_hctx *c, rm_dcheck *k, const json_t *b) {
  const json_t *at = json_object_get(b, "at");
  const char *id = json_object_get(b, "id") ? rm_dc_str(k, b, "$", "id", false) : NULL;
  int64_t ms = rm__serve_now_ms(), now = ms;
  if (id && strlen(id) >= RM_SIGNAL_ID_MAX) rm_dc_add(k, "$", "id", "at most %d characters", RM_SIGNAL_ID_MAX - 1);
  if (at && (!json_is_string(at) || !rm__signals_iso_ms(json_string_value(at), &ms)))
    rm_dc_add(k, "$", "at", "expected an ISO-8601 time with a zone, such as \"2026-05-01T09:30:00Z\"");
  else if (ms > now + FUTURE_SLACK_MS) rm_dc_add(k, "$", "at", "is in the future");
  c->doc = json_pack("{s:I, s:s?}", "at_ms", (json_int_t)ms, "id", id);
}

/* Answers the problems in k (and returns false) or frees it. */
static bool checked(rm_hctx *c, rm_dcheck *k) {
  if (rm_api_details_count(&k->d)) {
    rm_defs_invalid(c, k);
    return false;
  }
  rm_dc_free(k);
  return true;
}

void rm__signals_h_metric(rm_hctx *c) {
  static const char *const allowed[] = {"value", "at", "id", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_dcheck k;
  rm_dc_init(&k, c);
  common(c, &k, b);
  const json_t *v = json_object_get(b, "value");
  if (!json_is_number(v) || !isfinite(json_number_value(v))) rm_dc_add(&k, "$", "value", "required: a number");
  else json_object_set_new(c->doc, "value", json_real(json_number_value(v)));
  if (checked(c, &k)) rm_defs_load(c, "monitor", metric_loaded);
}

void rm__signals_h_event(rm_hctx *c) {
  static const char *const allowed[] = {"state", "severity", "at", "id", "message", NULL};
  static const char *const which[] = {"state", "severity", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_dcheck k;
  rm_dc_init(&k, c);
  common(c, &k, b);
  const char *key = rm_dc_one_of(&k, b, "$", which, true);
  const char *val = key ? rm_dc_str(&k, b, "$", key, true) : NULL;
  enum rm_signal_state level;
  bool state = key && strcmp(key, "state") == 0;
  if (val && (state ? rm_signal_level_parse(val, &level) : rm_signal_severity_level(val, &level)) != 0)
    rm_dc_add(&k, "$", key, state ? "expected healthy, degraded or failed"
                                  : "expected a severity such as info, warning, error or critical");
  else if (val) json_object_set_new(c->doc, "level", json_string(rm_signal_state_name(level)));
  if (json_object_get(b, "message")) {
    const char *m = rm_dc_str(&k, b, "$", "message", false);
    if (m && strlen(m) > 2000) rm_dc_add(&k, "$", "message", "at most 2000 characters");
    else if (m) json_object_set_new(c->doc, "message", json_string(m));
  }
  if (checked(c, &k)) rm_defs_load(c, "monitor", event_loaded);
}
