/* Maintenance windows in force. A window (kind "maintenance",
 * /api/v1/maintenance-windows; its fields are checked in defs_notify.c)
 * is either one-off, from "start" to "end", or recurring: it opens at
 * each fire of "cron" and stays open "duration_min" minutes. Times
 * without an offset, and cron fields, are in its "timezone". It covers
 * the monitors and workflows it names and every object carrying one of
 * its "object_tags"; it holds back their notifications
 * ("suppress_notifications", default true) and, for check monitors, their
 * scheduled checks ("suppress_checks", read by the scheduler). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/cron.h"
#include "serve/notify_int.h"
#include "util/log.h"

/* The instant of one ISO date-time in zone: 0, or -1 when it does not load. */
static int instant(rm_tz_registry *reg, const char *iso, const char *zone, int64_t *out) {
  rm_schedule sc;
  const rm_tz *tz = NULL;
  char err[200];
  if (!iso || rm_tz_registry_get(reg, zone, &tz, err, sizeof err) != 0) return -1;
  if (rm_cron_dates(&sc, &iso, 1, zone, err, sizeof err) != 0) return -1;
  int rc = rm_cron_next(&sc, tz, RM_CRON_MIN_MS, out); /* before any date */
  rm_cron_free(&sc);
  return rc == 0 ? 0 : -1;
}

/* The end of the period of the window's cron open at now_ms (a fire in
 * (now - duration, now]), or 0. */
static int64_t recurring_until(rm_tz_registry *reg, const json_t *w, const char *zone, int64_t now_ms) {
  const char *expr = json_string_value(json_object_get(w, "cron"));
  json_int_t dur_ms = json_integer_value(json_object_get(w, "duration_min")) * 60000;
  rm_schedule sc;
  const rm_tz *tz = NULL;
  char err[200];
  int64_t fire = 0;
  if (!expr || dur_ms <= 0 || rm_tz_registry_get(reg, zone, &tz, err, sizeof err) != 0) return 0;
  if (rm_cron_parse(&sc, expr, zone, err, sizeof err) != 0) return 0;
  int rc = rm_cron_next(&sc, tz, now_ms - dur_ms, &fire);
  rm_cron_free(&sc);
  return rc == 0 && fire <= now_ms ? fire + dur_ms : 0;
}

int64_t rm__maint_until(rm_tz_registry *reg, const json_t *w, int64_t now_ms) {
  const char *zone = json_string_value(json_object_get(w, "timezone"));
  if (!zone) zone = "UTC";
  if (json_is_false(json_object_get(w, "enabled"))) return 0;
  if (json_object_get(w, "cron")) return recurring_until(reg, w, zone, now_ms);
  int64_t start, end;
  if (instant(reg, json_string_value(json_object_get(w, "start")), zone, &start) != 0 ||
      instant(reg, json_string_value(json_object_get(w, "end")), zone, &end) != 0)
    return 0;
  return start <= now_ms && now_ms < end ? end : 0;
}

bool rm__maint_active(rm_tz_registry *reg, const json_t *w, int64_t now_ms) { return rm__maint_until(reg, w, now_ms) > 0; }

static bool has_string(const json_t *arr, const char *v) {
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) if (v && json_is_string(e) && strcmp(json_string_value(e), v) == 0) return true;
  return false;
}

static bool covers(const json_t *w, const json_t *object) {
  const char *id = json_string_value(json_object_get(object, "id"));
  if (has_string(json_object_get(w, "monitors"), id) || has_string(json_object_get(w, "workflows"), id)) return true;
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(object, "tags"), i, t) if (has_string(json_object_get(w, "object_tags"),
                                                                            json_string_value(t))) return true;
  return false;
}

const json_t *rm__maint_covering(rm_tz_registry *reg, const json_t *windows, const json_t *object, const char *what,
                                 int64_t now_ms) {
  char flag[40];
  snprintf(flag, sizeof flag, "suppress_%s", what);
  size_t i;
  json_t *w;
  json_array_foreach(windows, i, w) {
    const json_t *f = json_object_get(w, flag);
    bool on = f ? json_is_true(f) : strcmp(what, "notifications") == 0;
    if (on && covers(w, object) && rm__maint_active(reg, w, now_ms)) return w;
  }
  return NULL;
}

/* ---- the lookup for other modules (the scheduler) ---- */

typedef struct lookup {
  rm_serve *s;
  json_t *object;
  char what[16];
  rm_serve_maint_cb cb;
  void *ud;
} lookup;

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  lookup *l = ud;
  const json_t *w = NULL;
  if (err) rm_log_warn("maintenance", "listing maintenance windows failed: %s", errmsg);
  else if (l->s->notify)
    w = rm__maint_covering(l->s->notify->tz, json_object_get(res, "items"), l->object, l->what, rm__serve_now_ms());
  l->cb(l->s, w, l->ud);
  json_decref(res);
  json_decref(l->object);
  free(l);
}

void rm_serve_maintenance_lookup(rm_serve *s, const json_t *object, const char *what, rm_serve_maint_cb cb,
                                 void *ud) {
  lookup *l = calloc(1, sizeof *l);
  json_t *q = json_pack("{s:i}", "page_size", 500);
  if (!l || !q) {
    free(l);
    json_decref(q);
    cb(s, NULL, ud);
    return;
  }
  l->s = s;
  l->object = json_deep_copy(object);
  snprintf(l->what, sizeof l->what, "%s", what);
  l->cb = cb;
  l->ud = ud;
  rm_store_doc_list(s->store, "maintenance", q, listed, l);
  json_decref(q);
}
