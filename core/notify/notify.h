/* rm_notify: sends one message through one notification channel.
 *
 * A channel is the stored document the API validated (serve/defs_channel.c):
 * {"name", "type", "settings"}. rm_notify_send delivers a message
 *
 *   {"title": str, "text": str, "severity"?: str, "fields"?: {k: v},
 *    "event"?: any JSON (what webhooks get), "id"?: str}
 *
 * on the channel's type, with retries, and reports once how it ended.
 * Two types are built in:
 *
 *   webhook   POST of the event (or settings.template rendered) through
 *             rm_webhook_send: signed with the secret named by hmac_secret,
 *             header values may reference {{secrets.NAME}}.
 *   email     SMTP (smtp:// with STARTTLS when offered, or required with
 *             settings.starttls or credentials; smtps://) of a text/plain
 *             UTF-8 message; subject and body from settings.subject and
 *             settings.body templates or a default layout.
 *
 * Every other type is a channel plugin of opts.lua (plugins/<type>/ with
 * "kind": "channel": discord, slack, telegram, ntfy ship with RestMon;
 * docs/plugins.md): each attempt runs its plugin.send(ctx) in the Lua
 * sandbox (notify_plugin.c). Before the first attempt the notifier fills
 * in the manifest's defaults, refuses a missing required setting, and
 * looks up each "password" setting's secret, checks its value against
 * the field's value_pattern and hands Lua an opaque token in its place,
 * which http.request replaces by the value only when it builds the
 * request. Lua never holds a secret value.
 *
 * One retry policy for every type but email: 408, 429 (Retry-After
 * honoured), 5xx and transport errors are retried with jittered
 * exponential backoff, other statuses are permanent; a plugin may also
 * say itself that an attempt should be retried or not. A plugin that
 * exhausts its CPU budget or memory cap, or raises an error, fails for
 * good; one that runs out of wall-clock time (opts.http_timeout_ms per
 * attempt) is retried. SMTP: a 4xx reply or a transport error is
 * retried, a 5xx reply, refused credentials or a TLS requirement the
 * server cannot meet are permanent.
 *
 * Templates (settings.template, subject, body, and what plugins render)
 * hold "{{ path }}" placeholders resolved against the message plus
 * "channel" ({name, type}): "{{event.run.status}}", "{{fields.host}}",
 * "{{channel.name}}" (notify/render.h). There is no {{secrets.*}} in
 * templates: a channel must not be able to mail a secret.
 *
 * Secrets: settings name vault secrets; the notifier asks opts.secret for
 * their values when a send starts and keeps them only as long as the
 * send. No error text, outcome or log line holds a secret value or a URL
 * path (a bot token may be in a path; Discord's and Slack's URLs are
 * themselves credentials): receivers are named by host and port, and
 * every text is scrubbed of the send's secret values before it is shown.
 *
 * Email runs curl_easy_perform on the libuv thread pool: libcurl's multi
 * interface on the loop (http/client.h) is HTTP-only, and a notification
 * rate does not justify a second multi driver. At most opts.smtp_threads
 * sends use pool threads at once (the pool also hashes passwords), the
 * rest wait their turn; closing aborts a transfer in progress from its
 * progress callback, so no pool thread stays blocked on a dead server.
 *
 * The caller decides whether a channel should be notified (enabled,
 * webhook events/workflows filters): rm_notify_send always sends.
 *
 * Memory: the caller allocates the notifier; rm_notify_send copies what it
 * needs (channel and message are borrowed for the call only). Loop thread
 * only. */
#ifndef RM_NOTIFY_NOTIFY_H
#define RM_NOTIFY_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "http/client.h"
#include "lua/host.h"
#include "notify/webhook.h"

#define RM_NOTIFY_DEFAULT_SMTP_TIMEOUT_MS 30000
#define RM_NOTIFY_DEFAULT_SMTP_THREADS 2
#define RM_NOTIFY_TYPE_MAX 63 /* bytes of a type's name */

/* The value of the secret called name: a malloc'ed NUL-terminated copy,
 * its length in *len (caller wipes and frees), or NULL when there is no
 * such secret. Called on the loop thread, from rm_notify_send only. */
typedef char *(*rm_notify_secret_fn)(void *ud, const char *name, size_t *len);

/* An rm_notify_secret_fn over an rm_secrets set (secret/secret.h) given
 * as ud. */
char *rm_notify_vault_secret(void *ud, const char *name, size_t *len);

typedef struct rm_notify_opts {
  rm_notify_secret_fn secret; /* NULL: no secret resolves */
  void *secret_ud;
  unsigned max_attempts;      /* 0 = RM_WEBHOOK_DEFAULT_ATTEMPTS, at most
                                 RM_WEBHOOK_MAX_ATTEMPTS */
  unsigned backoff_ms;        /* first retry delay; 0 = RM_WEBHOOK_DEFAULT_BACKOFF_MS */
  unsigned max_delay_ms;      /* 0 = RM_WEBHOOK_DEFAULT_MAX_DELAY_MS */
  unsigned http_timeout_ms;   /* per HTTP attempt; 0 = RM_WEBHOOK_DEFAULT_TIMEOUT_MS */
  unsigned smtp_timeout_ms;   /* per SMTP attempt; 0 = RM_NOTIFY_DEFAULT_SMTP_TIMEOUT_MS */
  unsigned smtp_threads;      /* 0 = RM_NOTIFY_DEFAULT_SMTP_THREADS */
  const char *smtp_ca_file;   /* PEM CAs that SMTP servers' certificates are
                                 checked against; NULL = the system's (copied) */
  rm_lua_host *lua;           /* channel plugins run here (borrowed: open until
                                 closed_cb); NULL = the built-in types only */
} rm_notify_opts;

/* How a send ended. Borrowed for the callback only. */
typedef struct rm_notify_outcome {
  bool delivered;
  bool permanent;      /* a failure retrying will not fix: the channel's
                          settings, a missing secret, a refusal (HTTP 4xx
                          but 408/429, SMTP 5xx, bad credentials) */
  bool cancelled;      /* the notifier closed before it ended */
  unsigned attempts;   /* attempts started; 0 when the channel could not be used */
  long status;         /* HTTP status or SMTP reply code of the last answer; 0 = none */
  int err;             /* 0, RM_EINVAL (settings), RM_ENOTFOUND (a secret),
                          RM_EHTTP (HTTP or SMTP failure), RM_ETIMEOUT,
                          RM_ECANCELED, RM_ENOMEM, RM_EIO; for plugins also
                          RM_ELUA (a Lua error), RM_EBUDGET, RM_EMEMLIMIT */
  const char *error;   /* "" when delivered; else what went wrong, naming
                          the setting or the receiver (host:port), never a
                          secret value */
  const char *type;    /* the channel's type ("email"), "" when it had none */
  const char *channel; /* the channel's name (or id), "" when it had none */
  const char *id;      /* the message id: webhook event id, email Message-ID
                          local part; the same on every retry */
} rm_notify_outcome;

/* Runs once per successful rm_notify_send, on the loop, never inside
 * rm_notify_send or rm_notify_close. It may call both. */
typedef void (*rm_notify_done_cb)(const rm_notify_outcome *o, void *ud);

typedef struct rm_notifier rm_notifier;
typedef void (*rm_notify_closed_cb)(rm_notifier *n);

struct rm_notifier {
  /* Read-only for callers. */
  uv_loop_t *loop;
  rm_http_client *http; /* borrowed; must stay open until closed_cb */
  size_t active;        /* sends whose callback has not run yet */

  /* Private. */
  rm_notify_opts opts;  /* smtp_ca_file copied */
  rm_webhook_sender hooks;
  struct rm__notify_send *list;      /* sends not yet finished */
  struct rm__notify_send *smtp_wait; /* email attempts waiting for a thread (FIFO) */
  struct rm__notify_send *smtp_wait_tail;
  size_t live;          /* sends not yet freed */
  unsigned smtp_running;
  bool closing, hooks_closed, released;
  rm_notify_closed_cb closed_cb;
};

/* Sets n up to send on http's loop with opts (copied; NULL = defaults).
 * 0, RM_EINVAL (max_attempts too large) or RM_ENOMEM; on an error nothing
 * needs releasing. After a success, rm_notify_close must be called
 * exactly once. */
int rm_notify_init(rm_notifier *n, rm_http_client *http, const rm_notify_opts *opts);

/* Starts sending message through channel; cb(outcome, ud) runs once when
 * it ends. Problems with the channel's content (unknown type, a missing
 * setting or secret, a URL the secret holds that is not one) are not
 * errors of the call: they end the send with a permanent outcome and
 * attempts 0, so a caller handles every failure in one place. 0, or
 * RM_EINVAL (channel or message not an object, cb NULL), RM_ECANCELED (the
 * notifier or the HTTP client is closing), RM_ENOMEM; then cb never runs. */
int rm_notify_send(rm_notifier *n, const json_t *channel, const json_t *message,
                   rm_notify_done_cb cb, void *ud);
/* rm_notify_send with at most max_attempts attempts (0: the notifier's;
 * "send a test now" makes one). Also RM_EINVAL when max_attempts is over
 * RM_WEBHOOK_MAX_ATTEMPTS. */
int rm_notify_send_attempts(rm_notifier *n, const json_t *channel, const json_t *message,
                            unsigned max_attempts, rm_notify_done_cb cb, void *ud);

/* The manifest of the channel plugin called type (borrowed from opts.lua),
 * or NULL for a built-in type or no such plugin. */
const json_t *rm_notify_plugin_type(const rm_notifier *n, const char *type);

/* Stops every send: HTTP requests in flight are cancelled, an SMTP
 * transfer in progress is aborted, retries waiting are dropped; each
 * send's callback runs with cancelled set. closed_cb (may be NULL) runs
 * after the last of them, on the loop; n may be freed there. Close the
 * notifier before its HTTP client. */
void rm_notify_close(rm_notifier *n, rm_notify_closed_cb closed_cb);

/* The outcome as {"delivered", "permanent", "cancelled", "attempts",
 * "status", "error", "type", "channel", "id"} (caller decrefs), for run
 * records and API answers; NULL when out of memory. */
json_t *rm_notify_outcome_json(const rm_notify_outcome *o);

#endif
