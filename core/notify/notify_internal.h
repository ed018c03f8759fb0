/* What the files of core/notify share: the record of one send and the
 * helpers each channel type uses. Not for the rest of the core. */
#ifndef RM_NOTIFY_INTERNAL_H
#define RM_NOTIFY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "notify/notify.h"
#include "util/buf.h"

#define RM__NOTIFY_HIDE_MAX 8

enum rm__notify_type {
  RM__NOTIFY_WEBHOOK = 0,
  RM__NOTIFY_EMAIL = 1,
  RM__NOTIFY_TELEGRAM = 2,
  RM__NOTIFY_DISCORD = 3,
  RM__NOTIFY_SLACK = 4,
};

typedef struct rm__notify_smtp rm__notify_smtp;
typedef struct rm__notify_send rm__notify_send;

/* One send. Freed in the close callback of its timer, after its callback
 * ran (or, for a send that failed to start, without it). */
struct rm__notify_send {
  uv_timer_t timer; /* a deferred outcome, or the wait before an SMTP retry */
  rm_notifier *n;
  int type;         /* enum rm__notify_type, -1 when unknown */
  char type_name[16], channel[208], id[RM_WEBHOOK_EVENT_ID_MAX + 1];
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

/* ---- notify_render.c ---- */
enum rm__notify_escape {
  RM__ESC_NONE = 0,
  RM__ESC_HTML = 1,       /* & < > (Telegram HTML) */
  RM__ESC_MARKDOWNV2 = 2, /* Telegram MarkdownV2 */
  RM__ESC_MARKDOWN = 3,   /* Telegram's legacy Markdown */
  RM__ESC_SLACK = 4,      /* & < > as entities (Slack mrkdwn) */
};
/* Appends the text form of v: strings as they are, null as nothing,
 * other values as compact JSON. 0 or RM_ENOMEM. */
int rm__notify_value_text(rm_buf *b, const json_t *v, enum rm__notify_escape esc);
/* Appends s escaped for esc. 0 or RM_ENOMEM. */
int rm__notify_escape(rm_buf *b, const char *s, enum rm__notify_escape esc);
/* tmpl with its placeholders resolved against ctx, values escaped for
 * esc (caller frees), or NULL when out of memory. */
char *rm__notify_render_text(const char *tmpl, const json_t *ctx, enum rm__notify_escape esc);
/* Every string inside tmpl rendered; a string that is exactly one
 * placeholder becomes the value itself (caller decrefs). NULL when out
 * of memory. */
json_t *rm__notify_render_json(const json_t *tmpl, const json_t *ctx);
/* The default subject ("[severity] title") and body (text, then one
 * "key: value" line per field), values escaped for esc. Caller frees;
 * NULL when out of memory. */
char *rm__notify_default_title(const json_t *msg, enum rm__notify_escape esc);
char *rm__notify_default_body(const json_t *msg, enum rm__notify_escape esc);
/* A copy of s cut to at most max bytes on a UTF-8 boundary, "…" marking
 * a cut (caller frees), or NULL when out of memory. */
char *rm__notify_cut(const char *s, size_t max);

/* ---- notify_chat.c: the JSON bodies of the chat APIs ---- */
/* NULL after recording a permanent failure (bad settings) or when out
 * of memory (then x->err is RM_ENOMEM). */
json_t *rm__notify_telegram_body(rm__notify_send *x, const json_t *settings, const json_t *ctx);
json_t *rm__notify_discord_body(rm__notify_send *x, const json_t *settings, const json_t *ctx);
json_t *rm__notify_slack_body(rm__notify_send *x, const json_t *settings, const json_t *ctx);

/* ---- notify_http.c: webhook, telegram, discord, slack ---- */
/* Starts the HTTP delivery of x (its callback will come), or records why
 * it cannot. 0 or the error recorded. */
int rm__notify_http_start(rm__notify_send *x, const json_t *settings, const json_t *ctx);

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
