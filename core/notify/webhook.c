/* Webhook delivery (notify/webhook.h): one record per delivery holds a
 * copy of the message, the request of the attempt in flight and the timer
 * of the retry wait. A delivery ends in finish() (callback, then the timer
 * is closed) or is cancelled by the sender's close (timer closed, callback
 * from the close callback); either way it is freed in on_closed. */
#include "notify/webhook.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/err.h"
#include "util/log.h"
#include "util/text.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/* Only the start of a refusal's body is kept (the outcome's answer); a
 * larger body is cut, not an error. */
#define MAX_ANSWER_BYTES (64 * 1024)

typedef struct rm__webhook_delivery delivery;

struct rm__webhook_delivery {
  rm_http_request req; /* the attempt in flight */
  uv_timer_t timer;    /* the wait before a retry; closed before free */
  rm_webhook_sender *s;
  char *url, *body;
  size_t body_len;
  unsigned char *key; /* NULL when unsigned; cleansed before free */
  size_t key_len;
  char origin[272]; /* "host:port", what error texts name */
  char id[RM_WEBHOOK_EVENT_ID_MAX + 1];
  struct curl_slist *extra; /* the message's headers as "Name: value" */
  struct curl_slist *sent;  /* headers of the attempt in flight */
  unsigned max_attempts, backoff_ms, max_delay_ms, timeout_ms;
  unsigned attempts;
  bool in_flight, delivered, permanent;
  long status;       /* of the last answer, 0 when none */
  int err;           /* of the last failed attempt */
  char last[600];    /* what went wrong on the last failed attempt */
  char answer[RM_WEBHOOK_ANSWER_MAX + 1]; /* of the last non-2xx answer */
  rm_webhook_done_cb cb; /* NULL once called (or for a send that failed) */
  void *ud;
  delivery *prev, *next; /* s->list */
};

/* ---- the message ---------------------------------------------------- */

static bool event_id_ok(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > RM_WEBHOOK_EVENT_ID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && !strchr("._:-", id[i])) return false;
  return true;
}

/* Headers this module writes, or that would let a caller corrupt the
 * framing of the request. */
static bool header_reserved(const char *name) {
  static const char *const reserved[] = {"content-type",      "user-agent", "host",
                                         "content-length",    "expect",     "connection",
                                         "transfer-encoding", NULL};
  for (size_t i = 0; reserved[i]; i++)
    if (strcasecmp(name, reserved[i]) == 0) return true;
  return strncasecmp(name, "x-restmon-", 10) == 0;
}

static bool header_ok(const rm_webhook_header *h) {
  if (!h->name || !h->value || !h->name[0] || header_reserved(h->name)) return false;
  for (const char *p = h->name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) return false;
  for (const unsigned char *p = (const unsigned char *)h->value; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return false;
  return true;
}

int rm_webhook_origin(const char *url, char *out, size_t cap) {
  CURLU *u = curl_url();
  if (!u) return RM_ENOMEM;
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = RM_EINVAL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, cap, "%s:%s", host, port);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

static int check_msg(const rm_webhook_msg *m) {
  if (!m->url || (!m->json == !m->body) || m->max_attempts > RM_WEBHOOK_MAX_ATTEMPTS)
    return RM_EINVAL;
  if (m->event_id && !event_id_ok(m->event_id)) return RM_EINVAL;
  if (m->nheaders && !m->headers) return RM_EINVAL;
  for (size_t i = 0; i < m->nheaders; i++)
    if (!header_ok(&m->headers[i])) return RM_EINVAL;
  return 0;
}

static char *copy_bytes(const void *p, size_t n) {
  char *c = malloc(n + 1);
  if (c) {
    memcpy(c, p, n);
    c[n] = '\0';
  }
  return c;
}

static int copy_body(delivery *d, const rm_webhook_msg *m) {
  if (m->json) {
    /* jansson allocates with malloc unless told otherwise, which the
     * project never does. */
    d->body = json_dumps(m->json, JSON_COMPACT | JSON_ENCODE_ANY);
    d->body_len = d->body ? strlen(d->body) : 0;
  } else {
    d->body = copy_bytes(m->body, m->body_len);
    d->body_len = m->body_len;
  }
  return d->body ? 0 : RM_ENOMEM;
}

static int copy_headers(delivery *d, const rm_webhook_msg *m) {
  for (size_t i = 0; i < m->nheaders; i++) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: %s", m->headers[i].name, m->headers[i].value);
    if (n < 0 || (size_t)n >= sizeof line) return RM_EINVAL;
    struct curl_slist *l = curl_slist_append(d->extra, line);
    if (!l) return RM_ENOMEM;
    d->extra = l;
  }
  return 0;
}

/* Copies m into d (everything but the callback). */
static int copy_msg(delivery *d, const rm_webhook_msg *m) {
  int rc = rm_webhook_origin(m->url, d->origin, sizeof d->origin);
  if (!rc) rc = copy_body(d, m);
  if (!rc) rc = copy_headers(d, m);
  if (rc) return rc;
  if (!(d->url = strdup(m->url))) return RM_ENOMEM;
  if (m->key && m->key_len) {
    if (!(d->key = (unsigned char *)copy_bytes(m->key, m->key_len))) return RM_ENOMEM;
    d->key_len = m->key_len;
  }
  if (m->event_id) snprintf(d->id, sizeof d->id, "%s", m->event_id);
  else if (rm_uuid_v4(d->id)) return RM_EIO;
  d->max_attempts = m->max_attempts ? m->max_attempts : RM_WEBHOOK_DEFAULT_ATTEMPTS;
  d->backoff_ms = m->backoff_ms ? m->backoff_ms : RM_WEBHOOK_DEFAULT_BACKOFF_MS;
  d->max_delay_ms = m->max_delay_ms ? m->max_delay_ms : RM_WEBHOOK_DEFAULT_MAX_DELAY_MS;
  d->timeout_ms = m->timeout_ms ? m->timeout_ms : RM_WEBHOOK_DEFAULT_TIMEOUT_MS;
  return 0;
}

/* ---- signing and sending --------------------------------------------- */

/* Lowercase hex HMAC-SHA256 of "<ts>.<body>" into hex (65 bytes). */
static int sign(const delivery *d, const char *ts, char hex[65]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_end()};
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t outlen = 0;
  int ok = ctx && EVP_MAC_init(ctx, d->key, d->key_len, params) &&
           EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) &&
           EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
           EVP_MAC_update(ctx, (const unsigned char *)d->body, d->body_len) &&
           EVP_MAC_final(ctx, out, &outlen, sizeof out) && outlen == 32;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) return RM_ENOMEM;
  for (size_t i = 0; i < outlen; i++) snprintf(hex + 2 * i, 3, "%02x", out[i]);
  OPENSSL_cleanse(out, sizeof out);
  return 0;
}

static struct curl_slist *add_line(struct curl_slist *l, const char *line, bool *ok) {
  struct curl_slist *n = *ok ? curl_slist_append(l, line) : NULL;
  if (!n) *ok = false;
  return n ? n : l;
}

/* The headers of one attempt, timestamped (and signed) now. NULL when out
 * of memory. */
static struct curl_slist *attempt_headers(const delivery *d) {
  char ts[24], line[160];
  snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
  bool ok = true;
  struct curl_slist *l = NULL;
  for (const struct curl_slist *e = d->extra; e; e = e->next) l = add_line(l, e->data, &ok);
  l = add_line(l, "Content-Type: application/json", &ok);
  l = add_line(l, "User-Agent: RestMon-Webhook/1", &ok);
  l = add_line(l, "Expect:", &ok); /* no 100-continue round trip */
  snprintf(line, sizeof line, "X-RestMon-Event-Id: %s", d->id);
  l = add_line(l, line, &ok);
  snprintf(line, sizeof line, "X-RestMon-Timestamp: %s", ts);
  l = add_line(l, line, &ok);
  if (d->key) {
    char hex[65];
    if (sign(d, ts, hex)) ok = false;
    snprintf(line, sizeof line, "X-RestMon-Signature: sha256=%s", ok ? hex : "");
    l = add_line(l, line, &ok);
  }
  if (!ok) {
    curl_slist_free_all(l);
    return NULL;
  }
  return l;
}

static void on_answer(rm_http_request *r);

/* Sends the next attempt. 0 or an RM_E* from the HTTP client. */
static int start_attempt(delivery *d) {
  memset(&d->req, 0, sizeof d->req);
  d->sent = attempt_headers(d);
  if (!d->sent) return RM_ENOMEM;
  d->req.method = "POST";
  d->req.url = d->url;
  d->req.headers = d->sent;
  d->req.body = d->body;
  d->req.body_len = d->body_len;
  d->req.timeout_ms = (long)d->timeout_ms;
  d->req.max_response_bytes = MAX_ANSWER_BYTES;
  d->req.data = d;
  int rc = rm_http_send(d->s->http, &d->req, on_answer);
  if (rc) {
    curl_slist_free_all(d->sent);
    d->sent = NULL;
    rm_http_request_cleanup(&d->req);
    return rc;
  }
  d->attempts++;
  d->in_flight = true;
  return 0;
}

/* Releases what the attempt in flight (or just answered) holds. */
static void end_attempt(delivery *d) {
  rm_http_request_cleanup(&d->req);
  curl_slist_free_all(d->sent);
  d->sent = NULL;
}

/* ---- ending a delivery ------------------------------------------------ */

static void unlink_delivery(delivery *d) {
  rm_webhook_sender *s = d->s;
  if (d->prev) d->prev->next = d->next;
  else s->list = d->next;
  if (d->next) d->next->prev = d->prev;
  d->prev = d->next = NULL;
}

static const char *plural(unsigned n) { return n == 1 ? "" : "s"; }

/* The final error text of a delivery that did not get through. */
static void final_error(const delivery *d, bool cancelled, char *out, size_t cap) {
  if (cancelled && !d->in_flight && d->last[0])
    snprintf(out, cap, "cancelled: the sender closed after %u attempt%s (last: %s)", d->attempts,
             plural(d->attempts), d->last);
  else if (cancelled)
    snprintf(out, cap, "cancelled: the sender closed during attempt %u to %s", d->attempts,
             d->origin);
  else if (d->permanent)
    snprintf(out, cap, "%s, not retried", d->last);
  else
    snprintf(out, cap, "%s after %u attempt%s", d->last, d->attempts, plural(d->attempts));
}

/* Runs the callback once. */
static void report(delivery *d, bool cancelled) {
  rm_webhook_done_cb cb = d->cb;
  if (!cb) return;
  d->cb = NULL;
  char error[700] = "";
  if (!d->delivered) final_error(d, cancelled, error, sizeof error);
  rm_webhook_outcome o = {.delivered = d->delivered,
                          .cancelled = cancelled,
                          .attempts = d->attempts,
                          .status = d->status,
                          .err = d->delivered ? 0 : cancelled ? RM_ECANCELED : d->err,
                          .error = error,
                          .event_id = d->id,
                          .permanent = !d->delivered && !cancelled && d->permanent,
                          .answer = d->delivered ? "" : d->answer};
  d->s->active--;
  cb(&o, d->ud);
}

static void maybe_closed(rm_webhook_sender *s) {
  if (s->closing && s->closer_closed && s->live == 0 && s->closed_cb) {
    rm_webhook_closed_cb cb = s->closed_cb;
    s->closed_cb = NULL;
    cb(s);
  }
}

/* The last word on a delivery: a callback still pending here means the
 * sender's close cancelled it. */
static void on_closed(uv_handle_t *h) {
  delivery *d = container_of(h, delivery, timer);
  rm_webhook_sender *s = d->s;
  report(d, true);
  curl_slist_free_all(d->extra);
  if (d->key) OPENSSL_cleanse(d->key, d->key_len);
  free(d->key);
  free(d->url);
  free(d->body);
  free(d);
  s->live--;
  maybe_closed(s);
}

static void finish(delivery *d) {
  unlink_delivery(d);
  report(d, false);
  uv_close((uv_handle_t *)&d->timer, on_closed);
}

/* ---- after an attempt --------------------------------------------------- */

uint64_t rm_webhook_retry_after_ms(const char *v, size_t vlen) {
  if (!v || vlen == 0 || vlen > 9) return 0; /* an HTTP-date, or absurd: use the backoff */
  uint64_t secs = 0;
  for (size_t i = 0; i < vlen; i++) {
    if (!isdigit((unsigned char)v[i])) return 0;
    secs = secs * 10 + (uint64_t)(v[i] - '0');
  }
  return secs * 1000;
}

static void on_retry_after(void *ud, const char *name, size_t nlen, const char *v, size_t vlen) {
  uint64_t *ms = ud;
  if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0) *ms = rm_webhook_retry_after_ms(v, vlen);
}

/* Keeps the start of a refusal's body: chat APIs say there why
 * ("Bad Request: chat not found"). */
static void keep_answer(delivery *d, const rm_buf *body) {
  size_t n = body->len < RM_WEBHOOK_ANSWER_MAX ? body->len : RM_WEBHOOK_ANSWER_MAX;
  n = body->data ? rm_utf8_valid_prefix(body->data, n) : 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)body->data[i];
    d->answer[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  d->answer[n] = '\0';
}

bool rm_webhook_status_retryable(long st) { return st == 408 || st == 429 || st >= 500; }

void rm_webhook_describe_failure(const char *origin, const char *url, int err, const char *errmsg,
                                 unsigned timeout_ms, char *out, size_t cap) {
  const char *detail = errmsg;
  size_t n = url ? strlen(url) : 0;
  if (n && strncmp(detail, url, n) == 0 && strncmp(detail + n, ": ", 2) == 0) detail += n + 2;
  if (err == RM_ETIMEOUT)
    snprintf(out, cap, "no answer from %s within %u ms", origin, timeout_ms);
  else if (strstr(detail, curl_easy_strerror(CURLE_COULDNT_CONNECT)))
    snprintf(out, cap, "could not connect to %s", origin);
  else if (strstr(detail, curl_easy_strerror(CURLE_COULDNT_RESOLVE_HOST)))
    snprintf(out, cap, "could not resolve the host of %s", origin);
  else
    snprintf(out, cap, "%s: %.300s", origin, detail);
}

/* Records what the attempt got; true when another attempt may help. */
static bool judge(delivery *d, uint64_t *retry_after_ms) {
  rm_http_request *r = &d->req;
  if (r->status > 0) d->status = r->status;
  if (r->status >= 200 && r->status < 300) {
    /* The receiver accepted it, even if its answer's body was cut. */
    d->delivered = true;
    return false;
  }
  d->answer[0] = '\0';
  if (r->status > 0 && (r->err == 0 || r->err == RM_ETOOBIG)) {
    d->err = RM_EHTTP;
    keep_answer(d, &r->resp_body);
    snprintf(d->last, sizeof d->last, "HTTP %ld from %s", r->status, d->origin);
    d->permanent = !rm_webhook_status_retryable(r->status);
    if (!d->permanent) rm_http_each_header(r, on_retry_after, retry_after_ms);
    return !d->permanent;
  }
  d->err = r->err ? r->err : RM_EHTTP;
  rm_webhook_describe_failure(d->origin, d->url, r->err, r->errmsg, d->timeout_ms, d->last, sizeof d->last);
  return true;
}

static uint32_t jitter(void) {
  uint32_t r = 0;
  rm_random_bytes(&r, sizeof r); /* without randomness: no jitter */
  return r;
}

static void on_retry(uv_timer_t *t) {
  delivery *d = container_of(t, delivery, timer);
  int rc = start_attempt(d);
  if (rc) {
    d->err = rc;
    snprintf(d->last, sizeof d->last, "could not start attempt %u to %s (%s)", d->attempts + 1,
             d->origin, rm_strerror(rc));
    finish(d);
  }
}

static void on_answer(rm_http_request *r) {
  delivery *d = r->data;
  d->in_flight = false;
  uint64_t retry_after = 0;
  bool again = judge(d, &retry_after);
  end_attempt(d);
  if (!again || d->attempts >= d->max_attempts) {
    finish(d);
    return;
  }
  uint64_t delay = rm_webhook_backoff_ms(d->backoff_ms, d->max_delay_ms, d->attempts, jitter());
  if (retry_after > delay) delay = retry_after < d->max_delay_ms ? retry_after : d->max_delay_ms;
  rm_log_info("webhook", "event %s: %s (attempt %u of %u), retrying in %" PRIu64 " ms", d->id,
              d->last, d->attempts, d->max_attempts, delay);
  uv_timer_start(&d->timer, on_retry, delay, 0);
}

/* ---- the sender ------------------------------------------------------- */

int rm_webhook_sender_init(rm_webhook_sender *s, rm_http_client *http) {
  memset(s, 0, sizeof *s);
  s->loop = http->loop;
  s->http = http;
  uv_timer_init(s->loop, &s->closer);
  return 0;
}

int rm_webhook_send(rm_webhook_sender *s, const rm_webhook_msg *m, rm_webhook_done_cb cb,
                    void *ud) {
  if (s->closing || s->http->closing) return RM_ECANCELED;
  int rc = check_msg(m);
  if (rc) return rc;
  delivery *d = calloc(1, sizeof *d);
  if (!d) return RM_ENOMEM;
  d->s = s;
  uv_timer_init(s->loop, &d->timer);
  s->live++;
  rc = copy_msg(d, m);
  if (!rc) rc = start_attempt(d);
  if (rc) { /* freed from the close callback, silently (no cb yet) */
    uv_close((uv_handle_t *)&d->timer, on_closed);
    return rc;
  }
  d->cb = cb;
  d->ud = ud;
  d->next = s->list;
  if (s->list) s->list->prev = d;
  s->list = d;
  s->active++;
  return 0;
}

static void on_closer_closed(uv_handle_t *h) {
  rm_webhook_sender *s = container_of(h, rm_webhook_sender, closer);
  s->closer_closed = true;
  maybe_closed(s);
}

void rm_webhook_sender_close(rm_webhook_sender *s, rm_webhook_closed_cb closed_cb) {
  if (s->closing) return;
  s->closing = true;
  s->closed_cb = closed_cb;
  while (s->list) {
    delivery *d = s->list;
    unlink_delivery(d);
    if (d->in_flight) {
      rm_http_cancel(&d->req); /* in_flight stays set: the outcome says so */
      end_attempt(d);
    }
    uv_close((uv_handle_t *)&d->timer, on_closed);
  }
  uv_close((uv_handle_t *)&s->closer, on_closer_closed);
}

uint64_t rm_webhook_backoff_ms(unsigned backoff_ms, unsigned max_delay_ms, unsigned n,
                               uint32_t rnd) {
  uint64_t d = backoff_ms;
  for (unsigned i = 1; i < n && d < max_delay_ms; i++) d *= 2;
  if (d > max_delay_ms) d = max_delay_ms;
  d = d - d / 4 + rnd % (d / 2 + 1);
  return d > max_delay_ms ? max_delay_ms : d;
}
