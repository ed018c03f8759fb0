/* What the files of core/notify share: the record of one send and the
 * helpers each channel type uses. Not for the rest of the core. */
#ifndef RM_NOTIFY_INTERNAL_H
#define RM_NOTIFY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "notify/notify.h"
#include "notify/render.h"
#include "util/buf.h"

#define RM__NOTIFY_HIDE_MAX 8

enum rm__notify_type {
  RM__NOTIFY_WEBHOOK = 0,
  RM__NOTIFY_EMAIL = 1,
  RM__NOTIFY_PLUGIN = 2, /* a channel plugin (notify_plugin.c) */
};

typedef struct rm__notify_smtp rm__notify_smtp;
typedef struct rm__notify_lua rm__notify_lua;
typedef struct rm__notify_send rm__notify_send;

/* One send. Freed in the close callback of its timer, after its callback
 * ran (or, for a send that failed to start, without it). */
struct rm__notify_send {
  uv_timer_t timer; /* a deferred outcome, or the wait before an SMTP or plugin retry */
  rm_notifier *n;
  int type;         /* enum rm__notify_type, -1 when unknown */
  char type_name[RM_NOTIFY_TYPE_MAX + 1], channel[208], id[RM_WEBHOOK_EVENT_ID_MAX + 1];
  unsigned max_attempts; /* of this send */
  rm_notify_done_cb cb; /* NULL once called */
  void *ud;
  /* the outcome so far */
  bool delivered, permanent;
  unsigned attempts;
  long status;
  int err;
  char error[800];
  /* secret values this send used: no text it shows may hold them */
  char *hide[RM__NOTIFY_HIDE_MAX];
  size_t hide_len[RM__NOTIFY_HIDE_MAX], nhide;
  bool hook_pending;    /* an rm_webhook delivery will call back */
  rm__notify_smtp *smtp; /* email only (notify_email.c) */
  rm__notify_lua *lua;   /* channel plugins only (notify_plugin.c) */
  rm__notify_send *prev, *next; /* n->list */
  rm__notify_send *wait_next;   /* n->smtp_wait */
};

/* ---- notify.c ---- */
/* The value of the secret named by settings[key] (caller wipes and
 * frees with rm__notify_wipe), remembered for scrubbing; its length in
 * *len. NULL after recording a permanent failure naming the setting
 * ("settings.key: ...") when the setting or the secret is missing. */
char *rm__notify_secret(rm__notify_send *x, const json_t *settings, const char *key, size_t *len);
/* The same for a secret named name; where names the setting in errors. */
char *rm__notify_secret_named(rm__notify_send *x, const char *name, const char *where, size_t *len);
/* Records a failure before any attempt: permanent, but for RM_ENOMEM.
 * Returns err. */
int rm__notify_fail(rm__notify_send *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends x from a loop callback: its callback runs (cancelled: the
 * notifier closed), then x is freed. x must not be used after. */
void rm__notify_finish(rm__notify_send *x, bool cancelled);
/* s with every secret value x used replaced by "***", in place (s has
 * cap bytes). */
void rm__notify_scrub(const rm__notify_send *x, char *s, size_t cap);
void rm__notify_wipe(char *s);

/* ---- notify_http.c: the webhook type ---- */
/* Starts the HTTP delivery of x (its callback will come), or records why
 * it cannot. 0 or the error recorded. */
int rm__notify_http_start(rm__notify_send *x, const json_t *settings, const json_t *ctx);
/* What a receiver said about a refusal, from the start of its answer:
 * a JSON "description" (Telegram), "message" (Discord) or "error", or a
 * short plain text (Slack's "no_service"); "" when nothing is readable.
 * Control characters become spaces. */
void rm__notify_answer_detail(const char *answer, char *out, size_t cap);

/* ---- notify_plugin.c: channel types written as Lua plugins ---- */
/* Starts x on the channel plugin whose manifest is given (borrowed), or
 * records why it cannot. 0 or the error recorded. */
int rm__notify_plugin_start(rm__notify_send *x, const json_t *manifest, const json_t *settings,
                            const json_t *ctx);
/* On close: true when an attempt was running and was cancelled (x has
 * ended); false when x runs nothing. */
bool rm__notify_plugin_abort(rm__notify_send *x);
/* Writes into x->error how the close cut a waiting x short. */
void rm__notify_plugin_cancelled(rm__notify_send *x);
/* Frees x's plugin state (with x). */
void rm__notify_plugin_free(rm__notify_send *x);

/* ---- notify_mime.c ---- */
typedef struct rm__mime_msg {
  const char *from;
  const char *const *to;
  size_t nto;
  const char *subject, *body; /* UTF-8 */
  const char *message_id;     /* "<local@domain>" */
  time_t date;
} rm__mime_msg;
/* The RFC 5322 message (CRLF lines, quoted-printable UTF-8 text/plain
 * body, RFC 2047 subject when needed), caller frees; NULL when out of
 * memory. */
char *rm__notify_mime_build(const rm__mime_msg *m, size_t *len);
/* Appends the quoted-printable encoding of s (RFC 2045 6.7; "\n" and
 * "\r\n" become CRLF line breaks). 0 or RM_ENOMEM. */
int rm__notify_qp_append(rm_buf *b, const char *s, size_t n);
/* Appends "Subject: " + s folded or RFC 2047-encoded + CRLF. */
int rm__notify_subject_append(rm_buf *b, const char *s);

/* ---- notify_email.c ---- */
/* Like rm__notify_http_start, for email. */
int rm__notify_email_start(rm__notify_send *x, const json_t *settings, const json_t *ctx);
/* On close: true when an SMTP transfer is running and was told to stop
 * (its completion ends x); false when x holds no thread. */
bool rm__notify_email_abort(rm__notify_send *x);
/* Writes into x->error how the close cut x short. */
void rm__notify_email_cancelled(rm__notify_send *x);
/* Frees x's SMTP state (with x). */
void rm__notify_email_free(rm__notify_send *x);

#endif
