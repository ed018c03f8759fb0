/* rm_webhook: outgoing webhook delivery, signed, with retries.
 *
 * A delivery POSTs one JSON body to one URL on the shared asynchronous
 * HTTP client (http/client.h), so nothing blocks the loop, and retries
 * until the receiver answers 2xx, the attempts run out, or the failure is
 * permanent. Every attempt carries:
 *
 *   Content-Type: application/json
 *   User-Agent: RestMon-Webhook/1
 *   X-RestMon-Event-Id: <id>          the same on every retry: receivers
 *                                     deduplicate on it (at-least-once)
 *   X-RestMon-Timestamp: <unix seconds when this attempt was sent>
 *   X-RestMon-Signature: sha256=<hex>  only when the message has a key
 *
 * plus the message's own headers. The signature is the lowercase hex
 * HMAC-SHA256, keyed with the message's key, of the bytes
 *
 *   <timestamp> "." <body>
 *
 * (the decimal timestamp exactly as sent in X-RestMon-Timestamp, a dot,
 * then the raw body bytes as sent). Each attempt is signed afresh with its
 * own timestamp, so a receiver can refuse stale timestamps (replays)
 * without refusing our retries. docs/webhooks.md shows how to verify.
 *
 * Outcome of an attempt:
 *   2xx                        delivered
 *   408, 429, 5xx              retried; a Retry-After in seconds is
 *                              honoured (up to max_delay_ms)
 *   connection error, timeout  retried
 *   any other status           permanent failure (redirects are not
 *                              followed: the signed body must not go to a
 *                              host the configuration did not name)
 * Retries wait backoff_ms * 2^(n-1), jittered to 75-125 %, at most
 * max_delay_ms (rm_webhook_backoff_ms).
 *
 * Error texts name the receiver by host and port only: a webhook URL's
 * path or query is often itself a credential (Slack, Discord), and the
 * key never appears anywhere but in the MAC computation.
 *
 * Memory: the caller allocates the sender; each delivery is allocated by
 * rm_webhook_send (it copies the message) and freed by the sender once its
 * callback has run. Loop thread only. */
#ifndef RM_NOTIFY_WEBHOOK_H
#define RM_NOTIFY_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/client.h"

#define RM_WEBHOOK_DEFAULT_ATTEMPTS 5
#define RM_WEBHOOK_DEFAULT_BACKOFF_MS 1000
#define RM_WEBHOOK_DEFAULT_MAX_DELAY_MS 60000
#define RM_WEBHOOK_DEFAULT_TIMEOUT_MS 10000
#define RM_WEBHOOK_MAX_ATTEMPTS 100
#define RM_WEBHOOK_EVENT_ID_MAX 128
#define RM_WEBHOOK_ANSWER_MAX 512

typedef struct rm_webhook_header {
  const char *name, *value;
} rm_webhook_header;

/* What to deliver. Everything is borrowed for the rm_webhook_send call
 * only (it is copied). Zero numbers take the defaults above. */
typedef struct rm_webhook_msg {
  const char *url;                  /* http:// or https:// */
  const rm_webhook_header *headers; /* extra headers; not the ones listed
                                       above, Host, Content-Length,
                                       Transfer-Encoding or Expect */
  size_t nheaders;
  const json_t *json;               /* the body, serialised compactly; or */
  const char *body;                 /* the body as JSON text ... */
  size_t body_len;                  /* ... of this many bytes */
  const unsigned char *key;         /* HMAC key; NULL or key_len 0: unsigned */
  size_t key_len;
  const char *event_id;             /* 1-128 of [A-Za-z0-9._:-]; NULL = a new UUID */
  unsigned max_attempts;            /* 0 = 5; at most RM_WEBHOOK_MAX_ATTEMPTS */
  unsigned backoff_ms;              /* first retry delay; 0 = 1000 */
  unsigned max_delay_ms;            /* cap of a retry delay; 0 = 60000 */
  unsigned timeout_ms;              /* per attempt, connect included; 0 = 10000 */
} rm_webhook_msg;

/* How a delivery ended. Borrowed for the callback only. */
typedef struct rm_webhook_outcome {
  bool delivered;       /* a 2xx came back */
  bool cancelled;       /* the sender closed before it ended */
  unsigned attempts;    /* requests started (at least 1) */
  long status;          /* HTTP status of the last answer; 0 when none */
  int err;              /* 0, or why it failed: RM_EHTTP (transport or a
                           status), RM_ETIMEOUT, RM_ECANCELED, RM_ENOMEM */
  const char *error;    /* "" when delivered, else what went wrong and
                           after how many attempts */
  const char *event_id; /* the id sent (the generated one when NULL was given) */
  bool permanent;       /* failed on an answer that retrying cannot change
                           (a status other than 408, 429, 5xx) */
  const char *answer;   /* the start of the last non-2xx answer's body, at
                           most RM_WEBHOOK_ANSWER_MAX bytes of UTF-8 with
                           control characters as spaces; "" when none. It
                           comes from the receiver: scrub before showing */
} rm_webhook_outcome;

/* Runs once per successful rm_webhook_send, on the loop (never inside
 * rm_webhook_send or rm_webhook_sender_close). It may call rm_webhook_send
 * and rm_webhook_sender_close. */
typedef void (*rm_webhook_done_cb)(const rm_webhook_outcome *o, void *ud);

typedef struct rm_webhook_sender rm_webhook_sender;
typedef void (*rm_webhook_closed_cb)(rm_webhook_sender *s);

struct rm_webhook_sender {
  /* Read-only for callers. */
  uv_loop_t *loop;
  rm_http_client *http; /* borrowed; must stay open until closed_cb */
  size_t active;        /* deliveries whose callback has not run yet */

  /* Private. */
  uv_timer_t closer;    /* makes closed_cb asynchronous when nothing is pending */
  struct rm__webhook_delivery *list; /* not yet finished */
  size_t live;          /* deliveries not yet freed */
  bool closing, closer_closed;
  rm_webhook_closed_cb closed_cb;
};

/* Sets s up to deliver on http's loop. Always 0. After it,
 * rm_webhook_sender_close must be called exactly once. */
int rm_webhook_sender_init(rm_webhook_sender *s, rm_http_client *http);

/* Starts delivering m; cb(outcome, ud) runs when it ends. 0, or RM_EINVAL
 * (no or non-HTTP URL, no body or both json and body, a bad header or
 * event id, too many attempts), RM_ECANCELED (the sender or the HTTP
 * client is closing), RM_ENOMEM, RM_EIO (no randomness for an event id);
 * on an error cb never runs. */
int rm_webhook_send(rm_webhook_sender *s, const rm_webhook_msg *m, rm_webhook_done_cb cb,
                    void *ud);

/* Stops every delivery: requests in flight are cancelled, retries waiting
 * are dropped, and each one's callback runs with cancelled set and err
 * RM_ECANCELED. closed_cb (may be NULL) runs after the last of those, on
 * the loop; s may be freed there. Close the sender before its HTTP client:
 * closing the client first cancels requests without telling anyone. */
void rm_webhook_sender_close(rm_webhook_sender *s, rm_webhook_closed_cb closed_cb);

/* ---- what the notifier's other HTTP types share with webhooks ---- */

/* "host:port" of an http:// or https:// url (the port its scheme's when
 * absent) into out: what error texts name instead of the URL, whose path
 * may be a credential. 0, RM_EINVAL (not such a URL) or RM_ENOMEM. */
int rm_webhook_origin(const char *url, char *out, size_t cap);
/* Whether an answer with this HTTP status is worth another attempt
 * (408, 429, 5xx). */
bool rm_webhook_status_retryable(long status);
/* The milliseconds a Retry-After value in seconds asks for (vlen bytes);
 * 0 for an HTTP-date or anything else. */
uint64_t rm_webhook_retry_after_ms(const char *v, size_t vlen);
/* What a transport failure of the HTTP client (err, errmsg: http/client.h)
 * was, naming the receiver by origin only: "could not connect to
 * host:port", "no answer from host:port within N ms", ... url (may be
 * NULL) is the URL the client put in front of errmsg, left out. */
void rm_webhook_describe_failure(const char *origin, const char *url, int err, const char *errmsg,
                                 unsigned timeout_ms, char *out, size_t cap);

/* The delay before retry number n (1 = after the first attempt failed):
 * backoff_ms * 2^(n-1), capped at max_delay_ms, then jittered by rnd to
 * 75-125 % of that and capped again. Exposed for tests. */
uint64_t rm_webhook_backoff_ms(unsigned backoff_ms, unsigned max_delay_ms, unsigned n,
                               uint32_t rnd);

#endif
