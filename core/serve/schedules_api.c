/* Routes of the scheduler:
 *   GET  /api/v1/schedules/{id}/next?n=10&after=ISO   the next fire times (a calendar)
 *   POST /api/v1/monitors/{id}/run                    run a check now (trigger "manual")
 * Both load the object as the caller may see it (404 otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "serve/defs.h"
#include "serve/sched_internal.h"
#include "util/err.h"

#define NEXT_MAX 1000

/* ---- next fire times ---- */

/* utc_ms in the zone, as "2026-03-29T03:00:00+02:00" (a new JSON string). */
static json_t *local_iso(const rm_tz *tz, int64_t utc_ms) {
  int64_t sec = utc_ms / 1000;
  rm_tz_info inf = rm_tz_offset(tz, sec);
  int64_t y, days = rm_tz_floor_div(sec + inf.utc_offset, 86400), in_day = sec + inf.utc_offset - days * 86400;
  unsigned m, d;
  rm_tz_civil_from_days(days, &y, &m, &d);
  int off = inf.utc_offset < 0 ? -inf.utc_offset : inf.utc_offset;
  char b[64];
  snprintf(b, sizeof b, "%04lld-%02u-%02uT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d, (int)(in_day / 3600),
           (int)(in_day / 60 % 60), (int)(in_day % 60), inf.utc_offset < 0 ? '-' : '+', off / 3600, off / 60 % 60);
  return json_string(b);
}

static void next_loaded(rm_hctx *c) {
  const json_t *doc = c->doc2;
  rm_schedule sc;
  const rm_tz *tz = NULL;
  char err[300];
  int rc = rm__sched_from_doc(doc, &sc, err, sizeof err);
  if (rc == 0) rc = rm_tz_registry_get(c->s->sched->tzs, sc.tz, &tz, err, sizeof err);
  int64_t *at = rc == 0 ? calloc((size_t)c->n, sizeof *at) : NULL;
  int n = at ? rm_cron_next_n(&sc, tz, json_integer_value(json_object_get(c->doc, "after")), at, c->n) : -1;
  if (n < 0) {
    rm_cron_free(&sc);
    free(at);
    char msg[400];
    snprintf(msg, sizeof msg, "schedule %s: %s", c->id, rc ? err : "cannot compute its fire times");
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  json_t *items = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(items, json_pack("{s:o, s:o}", "at", rm__sched_iso(at[i]), "local", local_iso(tz, at[i])));
  free(at);
  rm_cron_free(&sc);
  rm_hctx_ok(c, 200, json_pack("{s:s, s:O, s:O, s:b, s:o}", "schedule_id", c->id, "name", json_object_get(doc, "name"),
                               "timezone", json_object_get(doc, "timezone"), "enabled",
                               !json_is_false(json_object_get(doc, "enabled")), "items", items));
}

/* ?n (1..1000, default 10) and ?after (ISO time, default now) into c->n
 * and c->doc {"after": ms}; false: answered 400. */
static bool next_query(rm_hctx *c) {
  rm_api_details d = RM_API_DETAILS_INIT;
  int64_t after = rm__serve_now_ms(), t;
  c->n = 10;
  for (size_t i = 0, n = rm_api_req_query_count(c->req); i < n; i++) {
    const char *name, *value;
    char *end, path[200];
    rm_api_req_query_at(c->req, i, &name, &value);
    snprintf(path, sizeof path, "query.%.150s", name);
    long v = strcmp(name, "n") == 0 ? strtol(value, &end, 10) : 0;
    if (strcmp(name, "n") == 0 && (!*value || *end || v < 1 || v > NEXT_MAX))
      rm_api_details_add(&d, path, "expected an integer from 1 to 1000");
    else if (strcmp(name, "n") == 0) c->n = (int)v;
    else if (strcmp(name, "after") != 0) rm_api_details_add(&d, path, "unknown query parameter");
    else if (rm__serve_iso_to_unix(value, &t) != 0)
      rm_api_details_add(&d, path, "expected an ISO-8601 time such as 2026-05-01T09:30:00Z");
    else after = t * 1000 - 1; /* a fire exactly at 'after' is listed */
  }
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID_QUERY, &d);
    return false;
  }
  c->doc = json_pack("{s:I}", "after", (json_int_t)after);
  return true;
}

static void h_next(rm_hctx *c) {
  if (!c->s->sched) {
    rm_hctx_error(c, RM_API_UNAVAILABLE, "the scheduler is not running");
    return;
  }
  if (next_query(c)) rm_defs_load(c, "schedule", next_loaded);
}

/* ---- run a check now ---- */

static void run_queued(void *ud, int err, const char *errmsg, json_t *run) {
  rm_hctx *c = ud;
  if (err && c->req && (err == RM_ENOTFOUND || err == RM_EINVAL)) {
    json_decref(run);
    rm_hctx_error(c, RM_API_CONFLICT, errmsg);
    return;
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, run)) return;
  json_t *data = json_pack("{s:O, s:O, s:s, s:O, s:O}", "run_id", json_object_get(run, "run_id"), "status",
                           json_object_get(run, "status"), "monitor_id", c->id, "workflow_id",
                           json_object_get(run, "workflow_id"), "workflow_version",
                           json_object_get(run, "workflow_version"));
  rm_hctx_audit(c, "monitor.run", "monitor", c->id, NULL, json_deep_copy(data));
  json_decref(run);
  rm_hctx_ok(c, 202, data);
}

static void run_loaded(rm_hctx *c) {
  const char *type = json_string_value(json_object_get(c->doc2, "type"));
  if (!type || strcmp(type, "check") != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "monitor %s is a%s %s monitor: only check monitors run", c->id,
             type && type[0] == 'e' ? "n" : "", type ? type : "?");
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  json_t *trigger = json_pack("{s:s, s:s, s:O?, s:s?}", "type", "manual", "monitor_id", c->id, "schedule_id",
                              json_object_get(c->doc2, "schedule_id"), "by", rm_hctx_user_name(c));
  rm__check_start(c->s, c->doc2, trigger, -1, run_queued, c);
}

static void h_run(rm_hctx *c) {
  if (rm_hctx_empty_body(c)) rm_defs_load(c, "monitor", run_loaded);
}

int rm_serve_sched_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/schedules/{id}/next", h_next, RM_ACCESS_ROLE, RM_MOD_SCHEDULES, RM_ACT_VIEW},
      {"POST", "/api/v1/monitors/{id}/run", h_run, RM_ACCESS_ROLE, RM_MOD_MONITORS, RM_ACT_EXECUTE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
