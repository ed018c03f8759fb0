/* The notification fields of definitions, checked strictly (docs/api.md
 * "Notifications"):
 *   workflow  "notifications": [{"on", "channel_id", "variables"?}]
 *   monitor   "notify": {"channels"?, "on"?, "escalation"?: [{"after_min"
 *             | "after_s", "channel_id"}]}
 * and the maintenance window kind (maintenance.c says what it does). */
#include <stdio.h>
#include <string.h>

#include "engine/template.h"
#include "sched/cron.h"
#include "serve/defs.h"
#include "serve/notify_int.h"

#define MAX_NOTIFICATIONS 20
#define MAX_VARIABLES 50
#define MAX_ESCALATION 10

/* A reference to a channel at path (an array item: key NULL). */
static void channel_ref(rm_dcheck *k, const char *path, const json_t *id) {
  json_array_append_new(k->refs, json_pack("{s:s, s:s, s:O}", "path", path, "kind", "channel", "id", id));
}

/* ---- workflow: notifications ---- */

static int variable_ref(void *ud, const char *location, const char *expr, const char *problem) {
  static const char *const plain[] = {"run_id", "now", "now_unix", "now_unix_ms", NULL};
  rm_dcheck *k = ud;
  char path[300];
  snprintf(path, sizeof path, "%s", location);
  if (!expr) rm_dc_add(k, path, NULL, "%s", problem ? problem : "malformed placeholder");
  else if (strncmp(expr, "secrets.", 8) == 0)
    rm_dc_add(k, path, NULL, "{{%s}}: a notification must not carry a secret", expr);
  else if (strncmp(expr, "inputs.", 7) != 0 && strncmp(expr, "vars.", 5) != 0 && rm_dc_index(plain, expr) < 0)
    rm_dc_add(k, path, NULL, "{{%s}}: use inputs.NAME, vars.NAME, run_id or now", expr);
  return 0;
}

static void check_variables(rm_dcheck *k, const json_t *entry, const char *path) {
  json_t *vars = rm_dc_obj(k, entry, path, "variables", false);
  char p[200];
  snprintf(p, sizeof p, "%s.variables", path);
  if (!vars) return;
  if (json_object_size(vars) > MAX_VARIABLES) rm_dc_add(k, p, NULL, "at most %d variables", MAX_VARIABLES);
  rm_template_scan(vars, p, variable_ref, k);
}

static void check_notification(rm_dcheck *k, json_t *entry, const char *path) {
  static const char *const fields[] = {"on", "channel_id", "variables", NULL};
  static const char *const outcomes[] = {"success", "failure", "degraded", "cancelled", NULL};
  if (!json_is_object(entry)) {
    rm_dc_add(k, path, NULL, "must be an object {\"on\", \"channel_id\", \"variables\"?}");
    return;
  }
  rm_dc_only(k, entry, path, fields);
  rm_dc_strs(k, entry, path, "on", true, outcomes);
  rm_dc_ref(k, entry, path, "channel_id", "channel", true);
  check_variables(k, entry, path);
}

void rm_defs_check_notifications(rm_dcheck *k, json_t *b) {
  const json_t *list = json_object_get(b, "notifications");
  size_t i;
  json_t *entry;
  if (!list) return;
  if (!json_is_array(list) || json_array_size(list) > MAX_NOTIFICATIONS) {
    rm_dc_add(k, "$", "notifications", "must be an array of at most %d entries", MAX_NOTIFICATIONS);
    return;
  }
  json_array_foreach(list, i, entry) {
    char p[64];
    snprintf(p, sizeof p, "$.notifications[%zu]", i);
    check_notification(k, entry, p);
  }
}

/* ---- monitor: notify ---- */

static void check_escalation(rm_dcheck *k, const json_t *notify) {
  static const char *const fields[] = {"after_min", "after_s", "channel_id", NULL};
  static const char *const delays[] = {"after_min", "after_s", NULL};
  const json_t *steps = json_object_get(notify, "escalation");
  json_t *step;
  size_t i;
  json_int_t prev = 0;
  if (!steps) return;
  if (!json_is_array(steps) || !json_array_size(steps) || json_array_size(steps) > MAX_ESCALATION) {
    rm_dc_add(k, "$.notify", "escalation", "must be an array of 1 to %d steps", MAX_ESCALATION);
    return;
  }
  json_array_foreach(steps, i, step) {
    char p[64];
    snprintf(p, sizeof p, "$.notify.escalation[%zu]", i);
    if (!json_is_object(step)) {
      rm_dc_add(k, p, NULL, "must be an object {\"after_min\" or \"after_s\", \"channel_id\"}");
      continue;
    }
    rm_dc_only(k, step, p, fields);
    rm_dc_ref(k, step, p, "channel_id", "channel", true);
    const char *d = rm_dc_one_of(k, step, p, delays, true);
    bool min = d && strcmp(d, "after_min") == 0;
    if (!d || !rm_dc_int(k, step, p, d, true, 1, min ? 10080 : 604800, false, 0)) continue;
    json_int_t s = json_integer_value(json_object_get(step, d)) * (min ? 60 : 1);
    if (s < prev) rm_dc_add(k, p, d, "steps must come in order: this one is earlier than the one before");
    prev = s;
  }
}

void rm_defs_check_monitor_notify(rm_dcheck *k, json_t *b) {
  static const char *const fields[] = {"channels", "on", "escalation", NULL};
  static const char *const states[] = {"healthy", "degraded", "failed", "unknown", NULL};
  json_t *n = rm_dc_obj(k, b, "$", "notify", false);
  if (!n) return;
  rm_dc_only(k, n, "$.notify", fields);
  const json_t *chans = rm_dc_strs(k, n, "$.notify", "channels", false, NULL), *c;
  size_t i;
  json_array_foreach(chans, i, c) {
    char p[64];
    snprintf(p, sizeof p, "$.notify.channels[%zu]", i);
    channel_ref(k, p, c);
  }
  rm_dc_strs(k, n, "$.notify", "on", false, states);
  check_escalation(k, n);
  if (!json_array_size(json_object_get(n, "channels")) && !json_object_get(n, "escalation"))
    rm_dc_add(k, "$.notify", NULL, "needs \"channels\" or \"escalation\" (or leave \"notify\" out)");
}

/* ---- maintenance windows ---- */

static void check_zone(rm_dcheck *k, json_t *b) {
  const json_t *v = json_object_get(b, "timezone");
  char err[200];
  const rm_tz *tz = NULL;
  if (!v) {
    json_object_set_new(b, "timezone", json_string("UTC"));
    return;
  }
  struct rm_serve_notify *ns = k->c->s->notify;
  if (!json_is_string(v) || !rm_tz_name_valid(json_string_value(v)) ||
      (ns && rm_tz_registry_get(ns->tz, json_string_value(v), &tz, err, sizeof err) != 0))
    rm_dc_add(k, "$", "timezone", "must name an IANA time zone such as \"UTC\" or \"Europe/Paris\"");
}

/* One ISO date-time; its instant in *ms when it parses. */
static bool check_time(rm_dcheck *k, const json_t *b, const char *key, int64_t *ms) {
  const char *v = rm_dc_str(k, b, "$", key, true), *zone = json_string_value(json_object_get(b, "timezone"));
  struct rm_serve_notify *ns = k->c->s->notify;
  rm_schedule sc;
  const rm_tz *tz = NULL;
  char err[200];
  if (!v) return false;
  bool ok = rm_cron_dates(&sc, &v, 1, zone ? zone : "UTC", err, sizeof err) == 0;
  if (!ok) rm_dc_add(k, "$", key, "must be an ISO-8601 date-time such as \"2026-05-01T22:00:00Z\" (no offset: the "
                                  "window's time zone)");
  else if (ns && rm_tz_registry_get(ns->tz, zone ? zone : "UTC", &tz, err, sizeof err) == 0)
    ok = rm_cron_next(&sc, tz, RM_CRON_MIN_MS, ms) == 0;
  else ok = false;
  rm_cron_free(&sc);
  return ok;
}

static void check_recurring(rm_dcheck *k, json_t *b) {
  const char *expr = rm_dc_str(k, b, "$", "cron", true);
  const char *zone = json_string_value(json_object_get(b, "timezone"));
  rm_schedule sc;
  char err[300];
  if (expr && rm_cron_parse(&sc, expr, zone ? zone : "UTC", err, sizeof err) != 0) rm_dc_add(k, "$", "cron", "%s", err);
  else if (expr) rm_cron_free(&sc);
  rm_dc_int(k, b, "$", "duration_min", true, 1, 525600, false, 0);
  if (json_object_get(b, "start") || json_object_get(b, "end"))
    rm_dc_add(k, "$", json_object_get(b, "start") ? "start" : "end",
              "a recurring window (cron) has a duration_min, not a start and an end");
}

static void check_targets(rm_dcheck *k, const json_t *b) {
  static const char *const lists[] = {"monitors", "workflows", NULL};
  static const char *const kinds[] = {"monitor", "workflow"};
  for (size_t l = 0; lists[l]; l++) {
    const json_t *ids = rm_dc_strs(k, b, "$", lists[l], false, NULL), *id;
    size_t i;
    json_array_foreach(ids, i, id) {
      char p[64];
      snprintf(p, sizeof p, "$.%s[%zu]", lists[l], i);
      json_array_append_new(k->refs, json_pack("{s:s, s:s, s:O}", "path", p, "kind", kinds[l], "id", id));
    }
  }
  rm_dc_strs(k, b, "$", "object_tags", false, NULL);
  if (!json_array_size(json_object_get(b, "monitors")) && !json_array_size(json_object_get(b, "workflows")) &&
      !json_array_size(json_object_get(b, "object_tags")))
    rm_dc_add(k, "$", NULL, "a window needs at least one of \"monitors\", \"workflows\" or \"object_tags\"");
}

static void check_maintenance(rm_dcheck *k, json_t *b) {
  rm_dc_bool(k, b, "$", "enabled", true);
  rm_dc_bool(k, b, "$", "suppress_notifications", true);
  rm_dc_bool(k, b, "$", "suppress_checks", false);
  check_zone(k, b);
  if (json_object_get(b, "cron") || json_object_get(b, "duration_min")) check_recurring(k, b);
  else {
    int64_t start = 0, end = 0;
    bool s = check_time(k, b, "start", &start), e = check_time(k, b, "end", &end);
    if (s && e && end <= start) rm_dc_add(k, "$", "end", "must be after start");
  }
  check_targets(k, b);
}

static const char *const maintenance_f[] = {"enabled",  "timezone",  "start",       "end",
                                            "cron",     "duration_min", "monitors", "workflows",
                                            "object_tags", "suppress_notifications", "suppress_checks", NULL};
const rm_defkind rm__kind_maintenance = {"maintenance", "maintenance-windows", RM_MOD_MONITORS, false, maintenance_f,
                                         check_maintenance, NULL};
