#include "http/client.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

#define DEFAULT_MAX_BODY (10u * 1024 * 1024)

/* One per socket curl asks us to watch; freed in the poll close callback. */
typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  rm_http_client *client;
} sock_ctx;

static void check_done(rm_http_client *c);

/* A handle for a new request: an idle one (reset when it was put back),
 * or a new one. NULL when out of memory. */
static CURL *easy_get(rm_http_client *c) { return c->nidle ? c->idle[--c->nidle] : curl_easy_init(); }

/* Takes back the handle of an ended request (removed from the multi). */
static void easy_put(rm_http_client *c, CURL *e) {
  if (c->closing || c->nidle == RM_HTTP_IDLE_EASY) {
    curl_easy_cleanup(e);
    return;
  }
  curl_easy_reset(e);
  c->idle[c->nidle++] = e;
}

static void maybe_finish_close(rm_http_client *c) {
  if (c->closing && c->sockets_open == 0 && c->multi == NULL && c->close_cb) {
    void (*cb)(rm_http_client *) = c->close_cb;
    c->close_cb = NULL;
    cb(c);
  }
}

static void on_sock_closed(uv_handle_t *h) {
  sock_ctx *s = (sock_ctx *)h->data;
  rm_http_client *c = s->client;
  free(s);
  c->sockets_open--;
  maybe_finish_close(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *s = (sock_ctx *)h->data;
  rm_http_client *c = s->client;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_done(c);
}

/* curl's CURLMOPT_SOCKETFUNCTION: start, change or stop watching fd. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  rm_http_client *c = userp;
  sock_ctx *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      curl_multi_assign(c->multi, fd, NULL);
      uv_close((uv_handle_t *)&s->poll, on_sock_closed);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->client = c;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    c->sockets_open++;
    curl_multi_assign(c->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_timer(uv_timer_t *t) {
  rm_http_client *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* curl's CURLMOPT_TIMERFUNCTION. A zero timeout is deferred to the next
 * loop turn rather than run inline: curl forbids re-entering the multi
 * handle from its own callbacks. */
static int on_timeout(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  rm_http_client *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

int rm_http_client_init(rm_http_client *c, uv_loop_t *loop) {
  memset(c, 0, sizeof *c);
  c->loop = loop;
  c->multi = curl_multi_init();
  if (!c->multi) return RM_ENOMEM;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  /* Idle connections kept for reuse. curl's default follows the number of
   * transfers in flight, so after a burst of checks it closed them all and
   * the next burst connected again. */
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)RM_HTTP_MAX_IDLE_CONNECTIONS);
  return 0;
}

static double us_to_ms(curl_off_t us) { return (double)us / 1000.0; }

/* curl reports each phase as time since start; the record keeps the
 * duration of each phase, which is what an operator compares. On a reused
 * connection curl reports connect and TLS as 0, so the wait for the first
 * byte starts where the latest earlier phase ended, not at 0. */
static void read_timings(rm_http_request *r) {
  curl_off_t dns = 0, conn = 0, tls = 0, first = 0, total = 0;
  curl_easy_getinfo(r->easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
  curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &conn);
  curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
  curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total);
  r->timings.dns_ms = us_to_ms(dns);
  r->timings.connect_ms = conn > dns ? us_to_ms(conn - dns) : 0;
  r->timings.tls_ms = tls > conn ? us_to_ms(tls - conn) : 0;
  curl_off_t before_first = tls > conn ? tls : conn;
  if (dns > before_first) before_first = dns;
  r->timings.first_byte_ms = first > before_first ? us_to_ms(first - before_first) : 0;
  r->timings.total_ms = us_to_ms(total);
}

static void set_error(rm_http_request *r, CURLcode rc, const char *curl_msg) {
  const char *detail = curl_msg[0] ? curl_msg : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      r->err = RM_ETIMEOUT;
      snprintf(r->errmsg, sizeof r->errmsg, "request to %s timed out after %ld ms", r->url,
               r->timeout_ms);
      return;
    case CURLE_WRITE_ERROR:
      if (r->too_big) {
        r->err = RM_ETOOBIG;
        snprintf(r->errmsg, sizeof r->errmsg,
                 "response from %s exceeded max_response_bytes (%zu bytes)", r->url,
                 r->max_response_bytes ? r->max_response_bytes : (size_t)DEFAULT_MAX_BODY);
        return;
      }
      break;
    case CURLE_FILESIZE_EXCEEDED:
      r->err = RM_ETOOBIG;
      snprintf(r->errmsg, sizeof r->errmsg,
               "response from %s is larger than max_response_bytes (%zu bytes)", r->url,
               r->max_response_bytes ? r->max_response_bytes : (size_t)DEFAULT_MAX_BODY);
      return;
    case CURLE_HTTP2_STREAM:
      r->err = RM_EHTTP;
      snprintf(r->errmsg, sizeof r->errmsg, "stream reset by server (%s)", r->url);
      return;
    default:
      break;
  }
  r->err = RM_EHTTP;
  snprintf(r->errmsg, sizeof r->errmsg, "%s: %s", r->url, detail);
}

static void unlink_request(rm_http_request *r) {
  rm_http_client *c = r->client;
  if (r->prev) r->prev->next = r->next;
  else c->active = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  c->in_flight--;
}

static void finish(rm_http_request *r, CURLcode rc) {
  rm_http_client *c = r->client;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  long ver = 0;
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
  snprintf(r->http_version_str, sizeof r->http_version_str, "%s",
           ver == CURL_HTTP_VERSION_2_0 ? "2" : ver == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
  char *eff = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) r->effective_url = strdup(eff);
  curl_off_t up = 0;
  curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &up);
  r->request_sent = up > 0;
  read_timings(r);
  if (rc != CURLE_OK) {
    char curl_msg[CURL_ERROR_SIZE];
    memcpy(curl_msg, r->errmsg, sizeof curl_msg - 1);
    curl_msg[sizeof curl_msg - 1] = '\0';
    set_error(r, rc, curl_msg);
  }
  curl_multi_remove_handle(c->multi, r->easy);
  easy_put(c, r->easy);
  r->easy = NULL;
  unlink_request(r);
  rm_http_done_cb cb = r->cb;
  r->cb = NULL;
  cb(r);
}

/* Drains finished transfers; must follow every curl_multi_socket_action. */
static void check_done(rm_http_client *c) {
  CURLMsg *m;
  int left;
  while (c->multi && (m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    rm_http_request *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    finish(r, m->data.result);
  }
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  rm_http_request *r = ud;
  size_t len = size * n;
  size_t cap = r->max_response_bytes ? r->max_response_bytes : DEFAULT_MAX_BODY;
  if (r->body_size + len > cap) {
    r->too_big = true;
    return 0;
  }
  r->body_size += len;
  if (rm_buf_append(&r->resp_body, p, len)) return 0;
  return len;
}

/* Keeps only the final response's headers: a new status line (after a
 * redirect or a 100 Continue) starts the block again. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  rm_http_request *r = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) rm_buf_reset(&r->resp_headers);
  if (rm_buf_append(&r->resp_headers, p, len)) return 0;
  return len;
}

int rm_http_send(rm_http_client *c, rm_http_request *r, rm_http_done_cb cb) {
  if (c->closing) return RM_ECANCELED;
  CURL *e = easy_get(c);
  if (!e) return RM_ENOMEM;
  r->client = c;
  r->easy = e;
  r->cb = cb;
  r->err = 0;
  r->errmsg[0] = '\0';
  r->status = 0;
  r->body_size = 0;
  r->too_big = false;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errmsg);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "RestMon/0.1");
  if (r->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  const char *method = r->method ? r->method : "GET";
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (r->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (r->timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 30000L);
  if (r->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (r->follow_redirects) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, r->max_redirects >= 0 ? r->max_redirects : 5L);
  }
  size_t cap = r->max_response_bytes ? r->max_response_bytes : DEFAULT_MAX_BODY;
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
  if (r->http_version == 11)
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  else if (r->http_version == 2)
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  if (r->fresh_connect) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  }
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    easy_put(c, e);
    r->easy = NULL;
    return RM_ENOMEM;
  }
  r->prev = NULL;
  r->next = c->active;
  if (c->active) c->active->prev = r;
  c->active = r;
  c->in_flight++;
  return 0;
}

void rm_http_cancel(rm_http_request *r) {
  if (!r->easy) return;
  rm_http_client *c = r->client;
  curl_multi_remove_handle(c->multi, r->easy);
  easy_put(c, r->easy);
  r->easy = NULL;
  r->cb = NULL;
  unlink_request(r);
}

void rm_http_request_cleanup(rm_http_request *r) {
  rm_buf_free(&r->resp_headers);
  rm_buf_free(&r->resp_body);
  free(r->effective_url);
  r->effective_url = NULL;
}

void rm_http_client_close(rm_http_client *c, void (*close_cb)(rm_http_client *)) {
  c->closing = true;
  c->close_cb = close_cb;
  uv_timer_stop(&c->timer);
  if (c->multi) {
    /* Removing every easy handle makes curl close its sockets, which
     * comes back through on_socket(CURL_POLL_REMOVE). */
    while (c->active) rm_http_cancel(c->active);
    while (c->nidle) curl_easy_cleanup(c->idle[--c->nidle]);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
  }
  uv_close((uv_handle_t *)&c->timer, NULL);
  maybe_finish_close(c);
}

void rm_http_each_header(const rm_http_request *r,
                         void (*fn)(void *ud, const char *name, size_t nlen,
                                    const char *value, size_t vlen),
                         void *ud) {
  const char *p = r->resp_headers.data;
  const char *end = p + r->resp_headers.len;
  if (!p) return;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *line_end = eol;
    if (line_end > p && line_end[-1] == '\r') line_end--;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      const char *v = colon + 1;
      while (v < line_end && (*v == ' ' || *v == '\t')) v++;
      const char *ve = line_end;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      fn(ud, p, (size_t)(colon - p), v, (size_t)(ve - v));
    }
    p = eol + 1;
  }
}
