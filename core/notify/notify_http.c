/* The webhook channel type: an HTTP POST of the event or a template,
 * signed, through rm_webhook_send (notify/webhook.h), whose retries,
 * timeouts and error texts name the receiver by host and port only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"
#include "util/err.h"

#define MAX_HEADERS 16
#define DETAIL_MAX 200

void rm__notify_answer_detail(const char *answer, char *out, size_t cap) {
  out[0] = '\0';
  if (!answer || !*answer) return;
  json_t *j = json_loads(answer, JSON_DECODE_ANY, NULL);
  static const char *const keys[] = {"description", "message", "error", NULL};
  for (size_t i = 0; j && keys[i] && !out[0]; i++) {
    const char *s = json_string_value(json_object_get(j, keys[i]));
    if (s) snprintf(out, cap, "%.*s", DETAIL_MAX, s);
  }
  if (!j && !strchr("{[<", answer[0])) snprintf(out, cap, "%.*s", DETAIL_MAX, answer);
  json_decref(j);
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
}

static void on_hook_done(const rm_webhook_outcome *o, void *ud) {
  rm__notify_send *x = ud;
  x->hook_pending = false;
  x->delivered = o->delivered;
  x->permanent = o->permanent;
  x->attempts = o->attempts;
  x->status = o->status;
  x->err = o->err;
  char detail[DETAIL_MAX + 8];
  rm__notify_answer_detail(o->answer, detail, sizeof detail);
  static const char sender[] = "cancelled: the sender";
  const char *e = o->error;
  bool ours = strncmp(e, sender, sizeof sender - 1) == 0; /* it is the notifier's sender */
  snprintf(x->error, sizeof x->error, detail[0] ? "%s%s (%s)" : "%s%s", ours ? "cancelled: the notifier" : "",
           ours ? e + sizeof sender - 1 : e, detail);
  rm__notify_finish(x, o->cancelled);
}

/* Hands the delivery to the webhook sender. why_invalid says which
 * setting is wrong when the sender refuses the message. */
static int send_hook(rm__notify_send *x, const char *url, const json_t *body, const rm_webhook_header *h,
                     size_t nh, const char *key, size_t klen, const char *why_invalid) {
  const rm_notify_opts *o = &x->n->opts;
  rm_webhook_msg m = {.url = url,
                      .headers = h,
                      .nheaders = nh,
                      .json = body,
                      .key = (const unsigned char *)key,
                      .key_len = key ? klen : 0,
                      .event_id = x->id,
                      .max_attempts = x->max_attempts,
                      .backoff_ms = o->backoff_ms,
                      .max_delay_ms = o->max_delay_ms,
                      .timeout_ms = o->http_timeout_ms};
  int rc = rm_webhook_send(&x->n->hooks, &m, on_hook_done, x);
  if (!rc) {
    x->hook_pending = true;
    return 0;
  }
  if (rc == RM_EINVAL) return rm__notify_fail(x, rc, "%s", why_invalid);
  return rm__notify_fail(x, rc, "cannot send: %s", rm_strerror(rc));
}

/* ---- webhook -------------------------------------------------------------- */

/* Copy of v with each {{secrets.NAME}} replaced by the secret's value
 * (caller wipes). NULL after recording the failure. */
static char *expand_secrets(rm__notify_send *x, const char *header, const char *v) {
  rm_buf b = RM_BUF_INIT;
  const char *p = v, *open;
  int rc = 0;
  while (!rc && (open = strstr(p, "{{")) != NULL) {
    const char *a = open + 2, *close = strstr(a, "}}");
    while (close && a < close && *a == ' ') a++;
    if (!close || strncmp(a, "secrets.", 8) != 0) break; /* not a reference: kept as written */
    const char *name = a + 8, *z = close;
    while (z > name && z[-1] == ' ') z--;
    char n[128], where[240];
    snprintf(n, sizeof n, "%.*s", (int)(z - name), name);
    snprintf(where, sizeof where, "settings.headers.%.200s", header);
    size_t len = 0;
    char *val = rm__notify_secret_named(x, n, where, &len);
    if (!val) return NULL;
    rc = rm_buf_append(&b, p, (size_t)(open - p));
    if (!rc) rc = rm_buf_append(&b, val, len);
    rm__notify_wipe(val);
    p = close + 2;
  }
  if (!rc) rc = rm_buf_puts(&b, p);
  char *out = rc ? NULL : strndup(b.data ? b.data : "", b.len);
  if (b.data) memset(b.data, 0, b.len);
  rm_buf_free(&b);
  if (!out) rm__notify_fail(x, RM_ENOMEM, "out of memory");
  return out;
}

/* The body: settings.template rendered, else the event, else the
 * message without it. */
static json_t *webhook_body(const json_t *settings, const json_t *ctx) {
  const json_t *tmpl = json_object_get(settings, "template");
  if (tmpl) return rm_notify_render_json(tmpl, ctx);
  const json_t *event = json_object_get(ctx, "event");
  if (event) return json_deep_copy(event);
  json_t *b = json_deep_copy(ctx);
  json_object_del(b, "channel");
  return b;
}

int rm__notify_http_start(rm__notify_send *x, const json_t *settings, const json_t *ctx) {
  const char *url = json_string_value(json_object_get(settings, "url"));
  if (!url) return rm__notify_fail(x, RM_EINVAL, "settings.url: missing");
  rm_webhook_header h[MAX_HEADERS];
  char *vals[MAX_HEADERS];
  size_t nh = 0, klen = 0;
  char *key = NULL;
  const char *name;
  const json_t *v;
  json_object_foreach((json_t *)json_object_get(settings, "headers"), name, v) {
    if (nh == MAX_HEADERS) break;
    if (!json_is_string(v)) continue;
    if (!(vals[nh] = expand_secrets(x, name, json_string_value(v)))) break;
    h[nh] = (rm_webhook_header){name, vals[nh]};
    nh++;
  }
  if (!x->error[0] && json_object_get(settings, "hmac_secret"))
    key = rm__notify_secret(x, settings, "hmac_secret", &klen);
  json_t *body = x->error[0] ? NULL : webhook_body(settings, ctx);
  int rc = x->error[0] ? x->err : !body ? rm__notify_fail(x, RM_ENOMEM, "out of memory") : 0;
  if (!rc)
    rc = send_hook(x, url, body, h, nh, key, klen,
                   "settings: the url must be http:// or https://, and headers must not set Content-Type, "
                   "User-Agent, Host, Content-Length, Expect, Connection, Transfer-Encoding or X-RestMon-* "
                   "nor hold control characters");
  json_decref(body);
  rm__notify_wipe(key);
  for (size_t i = 0; i < nh; i++) rm__notify_wipe(vals[i]);
  return rc;
}
