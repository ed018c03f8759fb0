/* Run webhooks: who subscribes to a run event, and the event itself.
 *
 * A notification channel of type "webhook" subscribes to the ends of
 * runs with its settings {events?: ["run.failed", ...] (every run event
 * when absent), workflows?: [ids] (every workflow when absent)}; a
 * disabled channel subscribes to nothing. When a run this process
 * executes ends (not a dry run), notify_events.c sends the run event
 * ({"event": "run.<status>", "at", "channel", "run": {...}}, scrubbed of
 * every secret value) to each subscriber through the notification
 * deliveries of notifications.c, merged with the workflow's own
 * notifications: one delivery per channel and run end, recorded,
 * retried, dead-lettered, re-sendable and held back by maintenance
 * windows like any other; its id is the X-RestMon-Event-Id. Signing
 * (hmac_secret) and {{secrets.NAME}} in header values are the webhook
 * channel's (core/notify/notify_http.c). docs/webhooks.md is the
 * receiver's side.
 *
 * The channel list is read from the store at most every
 * RM_HOOKS_CACHE_MS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/notify_int.h"
#include "util/log.h"

#define RM_HOOKS_CACHE_MS 2000

typedef struct hooks_req {
  rm_serve *s;
  char event[48];
  char *workflow_id;
  rm__hooks_cb cb;
  void *ud;
} hooks_req;

/* v is in arr, or arr is absent (everything). */
static bool has_string(const json_t *arr, const char *v) {
  size_t i;
  json_t *e;
  if (!json_is_array(arr)) return true;
  json_array_foreach(arr, i, e) if (v && json_is_string(e) && strcmp(json_string_value(e), v) == 0) return true;
  return false;
}

/* The cached channels that subscribe to r's event (a new array). */
static json_t *subscribers(const hooks_req *r) {
  json_t *out = json_array(), *ch;
  size_t i;
  json_array_foreach(r->s->notify->hooks, i, ch) {
    const json_t *st = json_object_get(ch, "settings");
    if (!json_is_false(json_object_get(ch, "enabled")) && has_string(json_object_get(st, "events"), r->event) &&
        has_string(json_object_get(st, "workflows"), r->workflow_id))
      json_array_append(out, ch);
  }
  return out;
}

/* "run.<status>": the event of a run's end. */
static void run_event_name(char out[48], const char *status) { snprintf(out, 48, "run.%.40s", status); }

bool rm__webhooks_none(rm_serve *s, const char *status, const char *workflow_id) {
  struct rm_serve_notify *ns = s->notify;
  if (!ns->hooks || !ns->hooks_at || uv_now(&s->loop) - ns->hooks_at >= RM_HOOKS_CACHE_MS) return false;
  hooks_req r = {.s = s, .workflow_id = (char *)workflow_id};
  run_event_name(r.event, status);
  json_t *subs = subscribers(&r);
  bool none = json_array_size(subs) == 0;
  json_decref(subs);
  return none;
}

static void answer(hooks_req *r) {
  r->cb(r->s, subscribers(r), r->ud);
  free(r->workflow_id);
  free(r);
}

static void channels_listed(void *ud, int err, const char *errmsg, json_t *res) {
  hooks_req *r = ud;
  struct rm_serve_notify *ns = r->s->notify;
  if (err) rm_log_warn("webhook", "listing notification channels failed (no run webhooks this time): %s", errmsg);
  json_t *keep = json_array(), *ch;
  size_t i;
  json_array_foreach(json_object_get(res, "items"), i, ch) {
    const char *t = json_string_value(json_object_get(ch, "type"));
    if (t && strcmp(t, "webhook") == 0) json_array_append(keep, ch);
  }
  json_decref(res);
  json_decref(ns->hooks);
  ns->hooks = keep;
  ns->hooks_at = err ? 0 : uv_now(&r->s->loop);
  answer(r);
}

void rm__webhooks_subscribers(rm_serve *s, const char *event, const char *workflow_id, rm__hooks_cb cb, void *ud) {
  struct rm_serve_notify *ns = s->notify;
  hooks_req *r = calloc(1, sizeof *r);
  if (!r || (workflow_id && !(r->workflow_id = strdup(workflow_id)))) {
    free(r);
    cb(s, json_array(), ud);
    return;
  }
  *r = (hooks_req){.s = s, .workflow_id = r->workflow_id, .cb = cb, .ud = ud};
  snprintf(r->event, sizeof r->event, "%s", event ? event : "");
  if (ns->hooks && ns->hooks_at && uv_now(&s->loop) - ns->hooks_at < RM_HOOKS_CACHE_MS) {
    answer(r);
    return;
  }
  json_t *q = json_pack("{s:i}", "page_size", 500);
  rm_store_doc_list(s->store, "channel", q, channels_listed, r);
  json_decref(q);
}

json_t *rm_serve_run_event(const json_t *row, const json_t *record, const char *status) {
  static const char *const keep[] = {"run_id",     "workflow_id", "workflow_name", "workflow_version",
                                     "status",     "reason",      "trigger",       "created_at",
                                     "started_at", "finished_at", "duration_ms",   "summary",
                                     "tags",       "rerun_of",    NULL};
  json_t *run = json_object();
  for (size_t i = 0; keep[i]; i++) {
    json_t *v = json_object_get(record, keep[i]); /* the outcome, final */
    if (!v || json_is_null(v)) v = json_object_get(row, keep[i]);
    if (v) json_object_set_new(run, keep[i], json_deep_copy(v)); /* callers scrub it in place */
  }
  char at[32], event[48];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
  run_event_name(event, status);
  return json_pack("{s:s, s:s, s:o}", "event", event, "at", at, "run", run);
}
