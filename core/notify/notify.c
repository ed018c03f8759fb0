/* The notifier (notify/notify.h): one record per send, dispatched to its
 * channel type (notify_http.c, notify_email.c, notify_plugin.c). A send ends in
 * rm__notify_finish (callback, then its timer is closed) or is cancelled
 * by the notifier's close (callback from the timer's close callback);
 * either way it is freed in on_closed. */
#include "notify/notify.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/channel.h"
#include "notify/notify_internal.h"
#include "secret/secret.h"
#include "util/err.h"
#include "util/text.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

static const char *const builtin_types[] = {"webhook", "email", NULL};

/* ---- secrets ------------------------------------------------------------ */

char *rm_notify_vault_secret(void *ud, const char *name, size_t *len) {
  const rm_secrets *sec = ud;
  char *tok = sec && name ? rm_secrets_token(sec, name) : NULL;
  if (!tok) return NULL;
  char *v = rm_secrets_inject(sec, tok, strlen(tok), RM_SECRET_RAW, len);
  free(tok);
  return v;
}

void rm__notify_wipe(char *s) {
  if (!s) return;
  volatile char *p = s;
  while (*p) *p++ = '\0';
  free(s);
}

static void remember(rm__notify_send *x, const char *v, size_t len) {
  if (len < 3 || x->nhide == RM__NOTIFY_HIDE_MAX) return; /* the vault refuses shorter values */
  char *c = strndup(v, len);
  if (!c) return;
  x->hide[x->nhide] = c;
  x->hide_len[x->nhide++] = strlen(c);
}

char *rm__notify_secret_named(rm__notify_send *x, const char *name, const char *where, size_t *len) {
  const rm_notify_opts *o = &x->n->opts;
  size_t n = 0;
  char *v = o->secret ? o->secret(o->secret_ud, name, &n) : NULL;
  if (!v) {
    rm__notify_fail(x, RM_ENOTFOUND, "%s: the secret %.120s is not in the vault", where, name);
    return NULL;
  }
  remember(x, v, n);
  if (len) *len = n;
  return v;
}

char *rm__notify_secret(rm__notify_send *x, const json_t *settings, const char *key, size_t *len) {
  const char *name = json_string_value(json_object_get(settings, key));
  if (!name || !*name) {
    rm__notify_fail(x, RM_EINVAL, "settings.%s: missing", key);
    return NULL;
  }
  char where[64];
  snprintf(where, sizeof where, "settings.%s", key);
  return rm__notify_secret_named(x, name, where, len);
}

void rm__notify_scrub(const rm__notify_send *x, char *s, size_t cap) {
  (void)cap; /* "***" is never longer than what it replaces (values have 3+ bytes) */
  for (size_t i = 0; i < x->nhide; i++) {
    char *p = s;
    while ((p = strstr(p, x->hide[i])) != NULL) {
      memcpy(p, "***", 3);
      memmove(p + 3, p + x->hide_len[i], strlen(p + x->hide_len[i]) + 1);
      p += 3;
    }
  }
}

/* ---- ending a send ------------------------------------------------------ */

int rm__notify_fail(rm__notify_send *x, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->error, sizeof x->error, fmt, ap);
  va_end(ap);
  x->err = err;
  x->permanent = err != RM_ENOMEM;
  return err;
}

static void unlink_send(rm__notify_send *x) {
  rm_notifier *n = x->n;
  if (x->prev) x->prev->next = x->next;
  else if (n->list == x) n->list = x->next;
  if (x->next) x->next->prev = x->prev;
  x->prev = x->next = NULL;
}

/* Texts are cut with %.Ns and may hold what servers sent: make them valid
 * UTF-8, as JSON needs. */
static void valid_utf8(char *s, size_t cap) {
  size_t n = strlen(s);
  if (rm_utf8_valid_prefix(s, n) == n) return;
  char *c = rm_utf8_sanitize(s, n);
  if (!c) {
    s[rm_utf8_valid_prefix(s, n)] = '\0';
    return;
  }
  size_t k = rm_utf8_valid_prefix(c, strlen(c) < cap - 1 ? strlen(c) : cap - 1);
  memcpy(s, c, k);
  s[k] = '\0';
  free(c);
}

/* Runs the callback once. */
static void report(rm__notify_send *x, bool cancelled) {
  rm_notify_done_cb cb = x->cb;
  if (!cb) return;
  x->cb = NULL;
  if (x->delivered) x->error[0] = '\0';
  else if (cancelled && x->smtp) rm__notify_email_cancelled(x);
  else if (cancelled && x->lua && !x->error[0]) rm__notify_plugin_cancelled(x);
  else if (cancelled && !x->error[0])
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed after %u attempt%s", x->attempts,
             x->attempts == 1 ? "" : "s");
  rm__notify_scrub(x, x->error, sizeof x->error);
  valid_utf8(x->error, sizeof x->error);
  rm_notify_outcome o = {.delivered = x->delivered,
                         .permanent = !x->delivered && !cancelled && x->permanent,
                         .cancelled = cancelled && !x->delivered,
                         .attempts = x->attempts,
                         .status = x->status,
                         .err = x->delivered ? 0 : cancelled ? RM_ECANCELED : x->err ? x->err : RM_EIO,
                         .error = x->error,
                         .type = x->type_name,
                         .channel = x->channel,
                         .id = x->id};
  x->n->active--;
  cb(&o, x->ud);
}

/* The end of a close: every send freed (no pool thread reads the options
 * any more) and the webhook sender closed. */
static void maybe_closed(rm_notifier *n) {
  if (!n->closing || !n->hooks_closed || n->live || n->released) return;
  n->released = true;
  free((char *)n->opts.smtp_ca_file);
  n->opts.smtp_ca_file = NULL;
  if (n->closed_cb) n->closed_cb(n);
}

static void on_closed(uv_handle_t *h) {
  rm__notify_send *x = container_of(h, rm__notify_send, timer);
  rm_notifier *n = x->n;
  report(x, true);
  rm__notify_email_free(x);
  rm__notify_plugin_free(x);
  for (size_t i = 0; i < x->nhide; i++) rm__notify_wipe(x->hide[i]);
  free(x);
  n->live--;
  maybe_closed(n);
}

void rm__notify_finish(rm__notify_send *x, bool cancelled) {
  unlink_send(x);
  report(x, cancelled);
  uv_close((uv_handle_t *)&x->timer, on_closed);
}

static void on_deferred(uv_timer_t *t) { rm__notify_finish(container_of(t, rm__notify_send, timer), false); }

/* ---- sending ------------------------------------------------------------ */

static bool id_ok(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > RM_WEBHOOK_EVENT_ID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && !strchr("._:-", id[i])) return false;
  return true;
}

/* The message plus "channel": what templates see (caller decrefs). */
static json_t *render_ctx(const rm__notify_send *x, const json_t *msg) {
  json_t *ctx = json_copy((json_t *)msg);
  if (ctx && json_object_set_new(ctx, "channel",
                                 json_pack("{s:s, s:s}", "name", x->channel, "type", x->type_name))) {
    json_decref(ctx);
    return NULL;
  }
  return ctx;
}

static bool builtin(const char *type) {
  for (int i = 0; builtin_types[i]; i++)
    if (strcmp(type, builtin_types[i]) == 0) return true;
  return false;
}

const json_t *rm_notify_plugin_type(const rm_notifier *n, const char *type) {
  if (!type || !n->opts.lua || builtin(type)) return NULL;
  return rm_lua_host_channel(n->opts.lua, type);
}

/* Fills in x from the channel and starts its first attempt: 0, or the
 * error recorded in x when nothing started. */
static int start(rm__notify_send *x, const json_t *channel, const json_t *msg) {
  const char *t = json_string_value(json_object_get(channel, "type"));
  const json_t *manifest = rm_notify_plugin_type(x->n, t);
  x->type = manifest ? RM__NOTIFY_PLUGIN : -1;
  for (int i = 0; t && builtin_types[i]; i++)
    if (strcmp(t, builtin_types[i]) == 0) x->type = i;
  snprintf(x->type_name, sizeof x->type_name, "%s", x->type >= 0 ? t : "");
  const char *name = json_string_value(json_object_get(channel, "name"));
  if (!name) name = json_string_value(json_object_get(channel, "id"));
  snprintf(x->channel, sizeof x->channel, "%s", name ? name : "");
  x->channel[rm_utf8_valid_prefix(x->channel, strlen(x->channel))] = '\0'; /* not half a character */
  const char *id = json_string_value(json_object_get(msg, "id"));
  if (id && id_ok(id)) snprintf(x->id, sizeof x->id, "%s", id);
  else if (rm_uuid_v4(x->id)) return rm__notify_fail(x, RM_EIO, "no randomness for a message id");
  const json_t *settings = json_object_get(channel, "settings");
  if (x->type < 0) return rm__notify_fail(x, RM_EINVAL, "type: %s", t ? "not a known channel type" : "missing");
  if (!json_is_object(settings)) return rm__notify_fail(x, RM_EINVAL, "settings: missing");
  json_t *ctx = render_ctx(x, msg);
  if (!ctx) return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  int rc = x->type == RM__NOTIFY_EMAIL    ? rm__notify_email_start(x, settings, ctx)
           : x->type == RM__NOTIFY_PLUGIN ? rm__notify_plugin_start(x, manifest, settings, ctx)
                                          : rm__notify_http_start(x, settings, ctx);
  json_decref(ctx);
  return rc;
}

int rm_notify_send_attempts(rm_notifier *n, const json_t *channel, const json_t *message, unsigned max_attempts,
                            rm_notify_done_cb cb, void *ud) {
  if (!json_is_object(channel) || !json_is_object(message) || !cb || max_attempts > RM_WEBHOOK_MAX_ATTEMPTS)
    return RM_EINVAL;
  if (n->closing || n->http->closing) return RM_ECANCELED;
  rm__notify_send *x = calloc(1, sizeof *x);
  if (!x) return RM_ENOMEM;
  x->n = n;
  x->max_attempts = max_attempts         ? max_attempts
                    : n->opts.max_attempts ? n->opts.max_attempts
                                           : RM_WEBHOOK_DEFAULT_ATTEMPTS;
  uv_timer_init(n->loop, &x->timer);
  n->live++;
  x->next = n->list;
  if (n->list) n->list->prev = x;
  n->list = x;
  int rc = start(x, channel, message);
  if (rc == RM_ENOMEM) { /* freed from the close callback, silently (no cb yet) */
    unlink_send(x);
    uv_close((uv_handle_t *)&x->timer, on_closed);
    return rc;
  }
  x->cb = cb;
  x->ud = ud;
  n->active++;
  if (rc) uv_timer_start(&x->timer, on_deferred, 0, 0); /* never call back from inside the call */
  return 0;
}

int rm_notify_send(rm_notifier *n, const json_t *channel, const json_t *message, rm_notify_done_cb cb,
                   void *ud) {
  return rm_notify_send_attempts(n, channel, message, 0, cb, ud);
}

/* ---- the notifier ------------------------------------------------------- */

int rm_notify_init(rm_notifier *n, rm_http_client *http, const rm_notify_opts *opts) {
  memset(n, 0, sizeof *n);
  if (opts) n->opts = *opts;
  if (n->opts.max_attempts > RM_WEBHOOK_MAX_ATTEMPTS) return RM_EINVAL;
  n->opts.smtp_ca_file = NULL;
  if (opts && opts->smtp_ca_file && !(n->opts.smtp_ca_file = strdup(opts->smtp_ca_file))) return RM_ENOMEM;
  if (!n->opts.smtp_threads) n->opts.smtp_threads = RM_NOTIFY_DEFAULT_SMTP_THREADS;
  if (!n->opts.smtp_timeout_ms) n->opts.smtp_timeout_ms = RM_NOTIFY_DEFAULT_SMTP_TIMEOUT_MS;
  n->loop = http->loop;
  n->http = http;
  return rm_webhook_sender_init(&n->hooks, http);
}

static void on_hooks_closed(rm_webhook_sender *s) {
  rm_notifier *n = container_of(s, rm_notifier, hooks);
  n->hooks_closed = true;
  maybe_closed(n);
}

void rm_notify_close(rm_notifier *n, rm_notify_closed_cb closed_cb) {
  if (n->closing) return;
  n->closing = true;
  n->closed_cb = closed_cb;
  n->smtp_wait = n->smtp_wait_tail = NULL;
  /* HTTP sends are cancelled by the sender, which calls them back. */
  rm_webhook_sender_close(&n->hooks, on_hooks_closed);
  rm__notify_send *x = n->list;
  while (x) {
    rm__notify_send *next = x->next;
    if (!x->hook_pending && !rm__notify_email_abort(x) && !rm__notify_plugin_abort(x)) {
      unlink_send(x);
      uv_timer_stop(&x->timer);
      uv_close((uv_handle_t *)&x->timer, on_closed);
    }
    x = next;
  }
}

json_t *rm_notify_outcome_json(const rm_notify_outcome *o) {
  return json_pack("{s:b, s:b, s:b, s:i, s:I, s:s, s:s, s:s, s:s}", "delivered", o->delivered, "permanent",
                   o->permanent, "cancelled", o->cancelled, "attempts", (int)o->attempts, "status",
                   (json_int_t)o->status, "error", o->error ? o->error : "", "type", o->type ? o->type : "",
                   "channel", o->channel ? o->channel : "", "id", o->id ? o->id : "");
}
