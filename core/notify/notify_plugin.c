/* Channel types written as Lua plugins (notify/notify.h; lua/channel.h).
 *
 * Before the first attempt the channel's settings are made ready for Lua:
 * the manifest's defaults filled in, a missing required setting refused,
 * and each password setting's secret looked up, checked against the
 * field's value_pattern and replaced by an opaque token of a set private
 * to this send -- its values live only as long as the send. Each attempt
 * then runs plugin.send(ctx) on the Lua host (always from a loop callback:
 * a plugin that never yields ends its attempt inside the start call) and
 * its verdict is judged by the webhook's rules: 2xx delivered; 408, 429
 * (Retry-After honoured), 5xx, transport errors, a wall-clock timeout and
 * a plugin's {retry = true} retried with the notifier's backoff; any other
 * status, a refusal, a Lua error, an exhausted CPU budget or memory cap
 * end it for good. Error texts name the receiver by host and port, worked
 * out here from the request's URL (Lua never sees a URL held by a secret),
 * and hold no secret value: what Lua says is scrubbed with the send's set,
 * and the final text with the values the send used (notify.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/channel.h"
#include "notify/notify_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/text.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

#define DETAIL_MAX 200

struct rm__notify_lua {
  const json_t *manifest;           /* borrowed from the Lua host */
  json_t *ctx;                      /* what send(ctx) gets */
  rm_secrets *sec;                  /* the values of the tokens in ctx */
  rm_lua_channel_attempt *running;  /* the attempt in progress, or NULL */
  unsigned timeout_ms;              /* of one attempt */
  uint64_t retry_after_ms;          /* asked for by the last answer */
  char last[600];                   /* what went wrong on the last attempt */
  char detail[DETAIL_MAX + 8];      /* the receiver's words about it */
};

static const char *plural(unsigned n) { return n == 1 ? "" : "s"; }

/* ---- the settings Lua gets ------------------------------------------------ */

static bool is_password(const json_t *field) {
  const char *t = json_string_value(json_object_get(field, "type"));
  return t && strcmp(t, "password") == 0;
}

/* out[name] = the token of the secret named by v, checked against the
 * field. -1 after recording the failure. */
static int tokenize(rm__notify_send *x, json_t *out, const char *name, const json_t *field, const json_t *v) {
  rm__notify_lua *p = x->lua;
  const char *secret = json_string_value(v);
  if (!secret || !*secret) return rm__notify_fail(x, RM_EINVAL, "settings.%s: must name a vault secret", name);
  char where[96], err[160];
  snprintf(where, sizeof where, "settings.%s", name);
  size_t len = 0;
  char *val = rm__notify_secret_named(x, secret, where, &len);
  if (!val) return -1;
  const char *hint = json_string_value(json_object_get(field, "value_hint"));
  int rc = 0;
  if (!rm_lua_channel_value_ok(field, val, len))
    rc = rm__notify_fail(x, RM_EINVAL, "%s: the secret %.120s does not hold %s", where, secret,
                         hint ? hint : "a value of the form this channel type needs");
  else if (rm_secrets_set(p->sec, secret, val, err, sizeof err) != 0)
    rc = rm__notify_fail(x, RM_EINVAL, "%s: %s", where, err);
  rm__notify_wipe(val);
  char *tok = rc ? NULL : rm_secrets_token(p->sec, secret);
  if (!rc && (!tok || json_object_set_new(out, name, json_string(tok))))
    rc = rm__notify_fail(x, RM_ENOMEM, "out of memory");
  free(tok);
  return rc ? -1 : 0;
}

/* The channel's settings with the manifest's defaults and tokens for the
 * password fields (a new object), or NULL after recording the failure. */
static json_t *lua_settings(rm__notify_send *x, const json_t *settings) {
  json_t *out = json_deep_copy(settings);
  if (!out) {
    rm__notify_fail(x, RM_ENOMEM, "out of memory");
    return NULL;
  }
  size_t i;
  const json_t *f;
  json_array_foreach(json_object_get(x->lua->manifest, "fields"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    const json_t *v = json_object_get(out, name), *dflt = json_object_get(f, "default");
    if (!v && dflt && !is_password(f)) {
      json_object_set(out, name, (json_t *)dflt);
      v = dflt;
    }
    int rc = 0;
    if (!v && json_is_true(json_object_get(f, "required")))
      rc = rm__notify_fail(x, RM_EINVAL, "settings.%s: missing", name);
    else if (v && is_password(f))
      rc = tokenize(x, out, name, f, v);
    if (rc) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

/* The message as templates see it (ctx: the message plus "channel"), with
 * its id and field_order: the names of its fields in order, which a Lua
 * table does not keep. A new reference, or NULL. */
static json_t *lua_message(const rm__notify_send *x, const json_t *ctx) {
  json_t *m = json_deep_copy(ctx), *order = json_array();
  const char *k;
  const json_t *v;
  json_object_foreach(json_object_get(ctx, "fields"), k, v) json_array_append_new(order, json_string(k));
  if (!m || !order || json_object_set_new(m, "field_order", order) ||
      json_object_set_new(m, "id", json_string(x->id))) {
    json_decref(m);
    return NULL;
  }
  return m;
}

/* ---- judging an attempt --------------------------------------------------- */

/* p->last = s scrubbed of the send's tokens and values. */
static void set_last(rm__notify_lua *p, const char *fmt, const char *s) {
  char *clean = rm_secrets_scrub(p->sec, s ? s : "", strlen(s ? s : ""), NULL);
  snprintf(p->last, sizeof p->last, fmt, clean ? clean : "(out of memory)");
  free(clean);
}

/* The last HTTP exchange of the attempt, or NULL. */
static const json_t *last_exchange(const rm_lua_task *t) {
  size_t n = json_array_size(t->exchanges);
  return n ? json_array_get(t->exchanges, n - 1) : NULL;
}

/* "host:port" of the last request (its URL's tokens put back in here). */
static void origin_of(const rm__notify_lua *p, const json_t *ex, char *out, size_t cap) {
  const char *shown = json_string_value(json_object_get(json_object_get(ex, "request"), "url"));
  char *real = shown ? rm_secrets_inject(p->sec, shown, strlen(shown), RM_SECRET_RAW, NULL) : NULL;
  if (!real || rm_webhook_origin(real, out, cap) != 0) snprintf(out, cap, "the receiver");
  if (real) rm__notify_wipe(real);
}

static int code_of(const char *name) {
  for (int e = -1; e >= RM_EVERSION; e--)
    if (name && strcmp(rm_errname(e), name) == 0) return e;
  return RM_EIO;
}

/* nil, "E_CODE: message": what http.request said, or the plugin's own. */
static bool judge_failed(rm__notify_send *x, const rm_lua_task *t) {
  rm__notify_lua *p = x->lua;
  const char *code = json_string_value(json_object_get(t->result, "code"));
  const char *msg = json_string_value(json_object_get(t->result, "error"));
  x->err = code_of(code);
  bool transport = x->err == RM_EHTTP || x->err == RM_ETIMEOUT || x->err == RM_EIO;
  const json_t *ex = last_exchange(t), *e = json_object_get(ex, "error");
  const char *raw = json_string_value(json_object_get(e, "message"));
  if (transport && raw && !json_object_get(ex, "response")) {
    char origin[272], said[600];
    origin_of(p, ex, origin, sizeof origin);
    const char *detail = strstr(raw, "://") ? strstr(raw, ": ") : NULL; /* after the URL */
    snprintf(said, sizeof said, "%s", detail ? detail + 2 : raw);
    rm__notify_scrub(x, said, sizeof said);
    char described[600];
    rm_webhook_describe_failure(origin, NULL, code_of(json_string_value(json_object_get(e, "code"))), said,
                                p->timeout_ms, described, sizeof described);
    set_last(p, "%s", described);
  } else {
    set_last(p, "%s", msg);
  }
  x->permanent = !transport;
  return transport;
}

/* The plugin returned http.request's response. */
static bool judge_response(rm__notify_send *x, const rm_lua_task *t, long status) {
  rm__notify_lua *p = x->lua;
  if (status >= 200 && status < 300) {
    x->delivered = true;
    return false;
  }
  char origin[272];
  origin_of(p, last_exchange(t), origin, sizeof origin);
  snprintf(p->last, sizeof p->last, "HTTP %ld from %s", status, origin);
  char detail[DETAIL_MAX + 8];
  rm__notify_answer_detail(json_string_value(json_object_get(t->result, "answer")), detail, sizeof detail);
  char *clean = rm_secrets_scrub(p->sec, detail, strlen(detail), NULL);
  snprintf(p->detail, sizeof p->detail, "%s", clean ? clean : "");
  free(clean);
  const char *ra = json_string_value(json_object_get(t->result, "retry_after"));
  p->retry_after_ms = ra ? rm_webhook_retry_after_ms(ra, strlen(ra)) : 0;
  x->err = RM_EHTTP;
  x->permanent = !rm_webhook_status_retryable(status);
  return !x->permanent;
}

/* A limit or a failure to start stopped the attempt (no result). */
static bool judge_stopped(rm__notify_send *x, const rm_lua_task *t) {
  x->err = t->err ? t->err : RM_ELUA;
  set_last(x->lua, "%s", t->errmsg[0] ? t->errmsg : rm_strerror(x->err));
  x->permanent = x->err != RM_ETIMEOUT;
  return !x->permanent;
}

/* Records what the attempt got; true when another attempt may help. */
static bool judge(rm__notify_send *x, const rm_lua_task *t) {
  rm__notify_lua *p = x->lua;
  p->detail[0] = '\0';
  p->retry_after_ms = 0;
  x->permanent = false;
  if (!t->result) return judge_stopped(x, t);
  const char *kind = json_string_value(json_object_get(t->result, "kind"));
  const char *error = json_string_value(json_object_get(t->result, "error"));
  long status = (long)json_integer_value(json_object_get(t->result, "status"));
  const json_t *resp = json_object_get(last_exchange(t), "response");
  if (status > 0) x->status = status;
  else if (resp) x->status = (long)json_integer_value(json_object_get(resp, "status"));
  if (!kind) kind = "";
  if (strcmp(kind, "delivered") == 0) {
    x->delivered = true;
    return false;
  }
  if (strcmp(kind, "response") == 0 && status > 0) return judge_response(x, t, status);
  if (strcmp(kind, "failed") == 0) return judge_failed(x, t);
  if (strcmp(kind, "retry") == 0) {
    set_last(p, "%s", error);
    p->retry_after_ms = (uint64_t)json_integer_value(json_object_get(t->result, "retry_after_ms"));
    x->err = status > 0 ? RM_EHTTP : RM_EIO;
    return true;
  }
  x->permanent = true;
  if (strcmp(kind, "raised") == 0) {
    set_last(p, "plugin error: %s", error);
    x->err = RM_ELUA;
  } else {
    set_last(p, "%s", error ? error : "the plugin gave no verdict");
    x->err = status > 0 ? RM_EHTTP : RM_EINVAL;
  }
  return false;
}

/* ---- attempts ------------------------------------------------------------- */

static void attempt_closed(uv_handle_t *h) { free(container_of(h, rm_lua_channel_attempt, task.timer)); }

static void on_retry(uv_timer_t *timer);

/* The send is over: its final error, then its callback. */
static void conclude(rm__notify_send *x) {
  rm__notify_lua *p = x->lua;
  if (!x->delivered) {
    char head[700];
    if (x->permanent) snprintf(head, sizeof head, "%s, not retried", p->last);
    else snprintf(head, sizeof head, "%s after %u attempt%s", p->last, x->attempts, plural(x->attempts));
    snprintf(x->error, sizeof x->error, p->detail[0] ? "%s (%s)" : "%s", head, p->detail);
  }
  rm__notify_finish(x, false);
}

static void on_attempt(rm_lua_task *t) {
  rm__notify_send *x = t->data;
  rm__notify_lua *p = x->lua;
  p->running = NULL;
  if (t->err == RM_ECANCELED) {
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed during attempt %u (channel plugin %s)",
             x->attempts, x->type_name);
    rm_lua_task_cleanup(t, attempt_closed);
    rm__notify_finish(x, true);
    return;
  }
  bool again = judge(x, t);
  rm_lua_task_cleanup(t, attempt_closed);
  if (!again || x->attempts >= x->max_attempts) {
    conclude(x);
    return;
  }
  const rm_notify_opts *o = &x->n->opts;
  unsigned backoff = o->backoff_ms ? o->backoff_ms : RM_WEBHOOK_DEFAULT_BACKOFF_MS;
  unsigned max_delay = o->max_delay_ms ? o->max_delay_ms : RM_WEBHOOK_DEFAULT_MAX_DELAY_MS;
  uint32_t rnd = 0;
  rm_random_bytes(&rnd, sizeof rnd); /* without randomness: no jitter */
  uint64_t delay = rm_webhook_backoff_ms(backoff, max_delay, x->attempts, rnd);
  if (p->retry_after_ms > delay) delay = p->retry_after_ms < max_delay ? p->retry_after_ms : max_delay;
  rm_log_info("notify", "%s %s: %s (attempt %u of %u), retrying in %" PRIu64 " ms", x->type_name, x->id, p->last,
              x->attempts, x->max_attempts, delay);
  uv_timer_start(&x->timer, on_retry, delay, 0);
}

/* Starts the next attempt: 0, or an RM_E* when it could not start. The
 * attempt may end (and x with it) before this returns. */
static int start_attempt(rm__notify_send *x) {
  rm__notify_lua *p = x->lua;
  rm_lua_channel_attempt *a = calloc(1, sizeof *a);
  if (!a) return RM_ENOMEM;
  a->task.data = x;
  x->attempts++;
  json_object_set_new(p->ctx, "attempt", json_integer(x->attempts));
  rm_lua_channel_spec spec = {.type = x->type_name, .channel = x->channel, .ctx = p->ctx, .secrets = p->sec,
                              .timeout_ms = p->timeout_ms};
  p->running = a;
  int rc = rm_lua_channel_start(x->n->opts.lua, a, &spec, on_attempt);
  if (rc) {
    p->running = NULL;
    x->attempts--;
    rm_lua_task_cleanup(&a->task, attempt_closed);
  }
  return rc;
}

static void on_retry(uv_timer_t *timer) {
  rm__notify_send *x = container_of(timer, rm__notify_send, timer);
  int rc = start_attempt(x);
  if (!rc) return;
  x->err = rc;
  x->permanent = false;
  snprintf(x->lua->last, sizeof x->lua->last, "could not start attempt %u of channel plugin %s (%s)",
           x->attempts + 1, x->type_name, rm_strerror(rc));
  conclude(x);
}

/* ---- the type --------------------------------------------------------------- */

int rm__notify_plugin_start(rm__notify_send *x, const json_t *manifest, const json_t *settings,
                            const json_t *ctx) {
  rm__notify_lua *p = calloc(1, sizeof *p);
  if (!p) return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  x->lua = p;
  p->manifest = manifest;
  p->timeout_ms = x->n->opts.http_timeout_ms ? x->n->opts.http_timeout_ms : RM_WEBHOOK_DEFAULT_TIMEOUT_MS;
  if (!(p->sec = rm_secrets_new())) return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  json_t *s = lua_settings(x, settings);
  if (!s) return x->err;
  json_t *m = lua_message(x, ctx);
  p->ctx = json_object();
  if (!m || !p->ctx || json_object_set_new(p->ctx, "message", m) ||
      json_object_set_new(p->ctx, "channel", json_pack("{s:s, s:s}", "name", x->channel, "type", x->type_name)) ||
      json_object_set_new(p->ctx, "settings", s))
    return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  uv_timer_start(&x->timer, on_retry, 0, 0); /* never run Lua inside rm_notify_send */
  return 0;
}

bool rm__notify_plugin_abort(rm__notify_send *x) {
  if (!x->lua || !x->lua->running) return false;
  rm_lua_task_cancel(&x->lua->running->task); /* on_attempt ends x */
  return true;
}

void rm__notify_plugin_cancelled(rm__notify_send *x) {
  if (!x->attempts)
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed before the first attempt");
  else
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed after %u attempt%s (last: %s)", x->attempts,
             plural(x->attempts), x->lua->last);
}

void rm__notify_plugin_free(rm__notify_send *x) {
  rm__notify_lua *p = x->lua;
  if (!p) return;
  json_decref(p->ctx);
  rm_secrets_free(p->sec);
  free(p);
  x->lua = NULL;
}
