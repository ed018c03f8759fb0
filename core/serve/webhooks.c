/* Outgoing webhooks on run status changes. A notification channel of
 * type "webhook" subscribes with settings {url, headers?, hmac_secret?,
 * events?, workflows?}: when a run this process executes finishes, each
 * such channel whose events include "run.<status>" (all run events when
 * absent) and whose workflows include the run's workflow (all when
 * absent) gets a signed POST (notify/webhook.h) of
 *   {"event": "run.failed", "at": ISO time, "channel": name,
 *    "run": {run_id, workflow_id, workflow_name, workflow_version, status,
 *            reason, trigger, created_at, started_at, finished_at,
 *            duration_ms, summary, tags, rerun_of}}
 * scrubbed of every secret value. The HMAC key is the value of the vault
 * secret named by hmac_secret; header values may hold {{secrets.NAME}}
 * references, filled in only when sending. The channel list is read from the store at
 * most every RM_HOOKS_CACHE_MS. Deliveries retry with backoff; their
 * outcome is logged and counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify/notify.h"
#include "serve/serve.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define RM_HOOKS_CACHE_MS 2000

typedef struct pending_event {
  rm_serve *s;
  json_t *payload; /* without "channel" */
  const char *workflow_id;
} pending_event;

int rm_serve_webhooks_init(rm_serve *s) {
  static const char *const outcome[] = {"outcome", NULL};
  s->m_hooks = rm_metrics_counter(&s->metrics, "restmon_webhook_deliveries_total",
                                  "Webhook deliveries ended, by outcome (delivered, failed, cancelled).", outcome);
  return rm_webhook_sender_init(&s->hooks, &s->http);
}

static void delivered(const rm_webhook_outcome *o, void *ud) {
  rm_serve *s = ud;
  const char *v[] = {o->delivered ? "delivered" : o->cancelled ? "cancelled" : "failed"};
  rm_metric_add(s->m_hooks, v, 1);
  if (o->delivered) rm_log_info("webhook", "event %s delivered after %u attempt(s)", o->event_id, o->attempts);
  else rm_log_warn("webhook", "event %s not delivered: %s", o->event_id, o->error);
}

static bool has_string(const json_t *arr, const char *v) {
  size_t i;
  json_t *e;
  if (!json_is_array(arr)) return true; /* absent: everything */
  json_array_foreach(arr, i, e) if (v && json_is_string(e) && strcmp(json_string_value(e), v) == 0) return true;
  return false;
}

/* Copy of v with each {{secrets.NAME}} replaced by the secret's value
 * (an unknown name stays as written). Caller wipes and frees. */
static char *expand_secrets(const rm_secrets *sec, const char *v) {
  rm_buf b = RM_BUF_INIT;
  const char *p = v, *open;
  while ((open = strstr(p, "{{secrets.")) != NULL) {
    const char *name = open + 10, *close = strstr(name, "}}");
    if (!close || close - name > 120) break;
    char n[128];
    snprintf(n, sizeof n, "%.*s", (int)(close - name), name);
    size_t len = 0;
    char *val = rm_notify_vault_secret((void *)sec, n, &len);
    rm_buf_append(&b, p, (size_t)(open - p));
    if (val) rm_buf_append(&b, val, len);
    else rm_buf_append(&b, open, (size_t)(close + 2 - open));
    if (val) {
      memset(val, 0, len);
      free(val);
    }
    p = close + 2;
  }
  rm_buf_append(&b, p, strlen(p));
  char *out = b.data ? strndup(b.data, b.len) : strdup(v);
  if (b.data) memset(b.data, 0, b.len);
  rm_buf_free(&b);
  return out;
}

static void send_to(rm_serve *s, const json_t *ch, json_t *payload, const char *event_id) {
  const json_t *st = json_object_get(ch, "settings");
  const char *url = json_string_value(json_object_get(st, "url"));
  const char *name = json_string_value(json_object_get(ch, "name"));
  if (!url) return;
  rm_webhook_header hdr[16];
  char *vals[16];
  size_t nh = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)json_object_get(st, "headers"), k, v) {
    if (nh < 16 && json_is_string(v) && (vals[nh] = expand_secrets(s->secrets, json_string_value(v))) != NULL) {
      hdr[nh] = (rm_webhook_header){k, vals[nh]};
      nh++;
    }
  }
  json_object_set_new(payload, "channel", json_string(name ? name : ""));
  size_t klen = 0;
  const char *kname = json_string_value(json_object_get(st, "hmac_secret"));
  char *key = kname ? rm_notify_vault_secret(s->secrets, kname, &klen) : NULL;
  if (kname && !key) rm_log_warn("webhook", "channel %s: secret %s is not in the vault; sending unsigned", name, kname);
  rm_webhook_msg m = {.url = url, .headers = hdr, .nheaders = nh, .json = payload, .key = (unsigned char *)key,
                      .key_len = key ? klen : 0, .event_id = event_id};
  int rc = rm_webhook_send(&s->hooks, &m, delivered, s);
  if (rc) rm_log_warn("webhook", "channel %s: cannot send: %s", name ? name : "?", rm_strerror(rc));
  if (key) {
    memset(key, 0, klen);
    free(key);
  }
  for (size_t i = 0; i < nh; i++) {
    memset(vals[i], 0, strlen(vals[i]));
    free(vals[i]);
  }
}

static void fan_out(rm_serve *s, pending_event *e) {
  const char *event = json_string_value(json_object_get(e->payload, "event"));
  const char *run_id = json_string_value(json_object_get(json_object_get(e->payload, "run"), "run_id"));
  size_t i;
  json_t *ch;
  json_array_foreach(s->hook_channels, i, ch) {
    const json_t *st = json_object_get(ch, "settings");
    if (json_is_false(json_object_get(ch, "enabled")) || !has_string(json_object_get(st, "events"), event) ||
        !has_string(json_object_get(st, "workflows"), e->workflow_id))
      continue;
    char id[128];
    snprintf(id, sizeof id, "%.40s.%.36s.%.40s", event, run_id ? run_id : "-",
             json_string_value(json_object_get(ch, "id")) ? json_string_value(json_object_get(ch, "id")) : "-");
    for (char *p = id; *p; p++)
      if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p)) *p = '-';
    json_t *copy = json_deep_copy(e->payload);
    if (copy) send_to(s, ch, copy, id);
    json_decref(copy);
  }
}

static void channels_listed(void *ud, int err, const char *errmsg, json_t *res) {
  pending_event *e = ud;
  rm_serve *s = e->s;
  if (err) rm_log_warn("webhook", "listing notification channels failed: %s", errmsg);
  else {
    json_t *keep = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(res, "items"), i, ch) {
      const char *t = json_string_value(json_object_get(ch, "type"));
      if (t && strcmp(t, "webhook") == 0) json_array_append(keep, ch);
    }
    json_decref(s->hook_channels);
    s->hook_channels = keep;
    s->hook_channels_at = uv_now(&s->loop);
  }
  json_decref(res);
  if (!s->stopping) fan_out(s, e);
  json_decref(e->payload);
  free(e);
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
  snprintf(event, sizeof event, "run.%.40s", status);
  return json_pack("{s:s, s:s, s:o}", "event", event, "at", at, "run", run);
}

void rm_serve_webhooks_run(rm_serve *s, const json_t *row, const json_t *record, const char *status) {
  if (s->stopping || !row) return;
  pending_event *e = calloc(1, sizeof *e);
  if (!e || !(e->payload = rm_serve_run_event(row, record, status))) {
    free(e);
    return;
  }
  rm_secrets_scrub_json(s->secrets, e->payload);
  e->s = s;
  e->workflow_id = json_string_value(json_object_get(json_object_get(e->payload, "run"), "workflow_id"));
  if (s->hook_channels && uv_now(&s->loop) - s->hook_channels_at < RM_HOOKS_CACHE_MS) {
    fan_out(s, e);
    json_decref(e->payload);
    free(e);
    return;
  }
  json_t *q = json_pack("{s:i}", "page_size", 500);
  rm_store_doc_list(s->store, "channel", q, channels_listed, e);
  json_decref(q);
}

void rm_serve_webhooks_close(rm_serve *s, rm_webhook_closed_cb done) {
  json_decref(s->hook_channels);
  s->hook_channels = NULL;
  rm_webhook_sender_close(&s->hooks, done);
}
