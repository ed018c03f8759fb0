/* Webhook delivery (core/notify) against a real receiver: each test runs
 * the project's HTTP server (core/api) on an ephemeral port in its own uv
 * loop, with a route that records every request and answers from a
 * script (a status per attempt, 0 = never answer), and the sender on the
 * real HTTP client in the same loop. The loop ends when every delivery has
 * reported and the sender, the client and the server are closed; the test
 * then checks what the receiver saw and what the callbacks said, and that
 * the loop holds no handle. Backoffs are a few milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/request.h"
#include "api/response.h"
#include "api/server.h"
#include "http/client.h"
#include "notify/webhook.h"
#include "util/err.h"
#include "util/log.h"

#define KEY "whsec-7f3a9c-do-not-print"
#define MAX_HITS 16
#define MAX_OUTS 8
#define SETTLE_MS 100

typedef struct hit {
  char path[32], event_id[160], ts[32], sig[128], ctype[64], ua[64], custom[64];
  bool has_sig;
  char *body;
  uint64_t at; /* uv_now when it arrived */
} hit;

typedef struct out {
  bool delivered, cancelled, during_close;
  unsigned attempts;
  long status;
  int err;
  char error[700], event_id[160];
} out;

typedef struct fx {
  uv_loop_t loop;
  rm_api_server srv;
  rm_http_client http;
  rm_webhook_sender sender;
  uv_timer_t poll;
  int port;
  char base[64];
  /* the receiver's script */
  int script[8];
  size_t nscript;
  int then; /* status after the script; 0 = 200 */
  const char *retry_after;
  /* what happened */
  hit hits[MAX_HITS];
  size_t nhits;
  out outs[MAX_OUTS];
  size_t nouts, expect;
  bool in_close, sender_closed, stopped, loop_closed;
  size_t active_at_close;
} fx;

/* ---- the receiver (runs on the loop) ----------------------------------- */

static void copy_header(rm_api_req *r, const char *name, char *out, size_t cap) {
  const char *v = rm_api_req_header(r, name);
  snprintf(out, cap, "%s", v ? v : "");
}

static void on_hang_abort(rm_api_req *r, void *ud) {
  (void)r;
  (void)ud; /* the server answers 503 to nobody and frees r */
}

static void on_hook(rm_api_req *r, void *ud) {
  fx *f = ud;
  assert_true(f->nhits < MAX_HITS);
  hit *h = &f->hits[f->nhits];
  size_t n;
  const char *body = rm_api_req_body(r, &n);
  h->body = strndup(body, n);
  h->at = uv_now(&f->loop);
  snprintf(h->path, sizeof h->path, "%s", rm_api_req_path(r));
  copy_header(r, "x-restmon-event-id", h->event_id, sizeof h->event_id);
  copy_header(r, "x-restmon-timestamp", h->ts, sizeof h->ts);
  copy_header(r, "x-restmon-signature", h->sig, sizeof h->sig);
  copy_header(r, "content-type", h->ctype, sizeof h->ctype);
  copy_header(r, "user-agent", h->ua, sizeof h->ua);
  copy_header(r, "x-custom", h->custom, sizeof h->custom);
  h->has_sig = rm_api_req_header(r, "x-restmon-signature") != NULL;
  size_t i = f->nhits++;
  int status = i < f->nscript ? f->script[i] : f->then ? f->then : 200;
  if (strcmp(h->path, "/hang") == 0) status = 0;
  if (status == 0) {
    rm_api_req_on_abort(r, on_hang_abort, f);
    return;
  }
  if (f->retry_after && status != 200) rm_api_resp_header(r, "Retry-After", f->retry_after);
  rm_api_respond_raw(r, status, "application/json", "{}", 2);
}

/* ---- shutting down: sender, then client, then server ------------------- */

static void on_stopped(rm_api_server *s, int status) {
  (void)status;
  fx *f = (fx *)((char *)s - offsetof(fx, srv));
  f->stopped = true;
}

static void on_http_closed(rm_http_client *c) {
  fx *f = (fx *)((char *)c - offsetof(fx, http));
  if (f->port) rm_api_server_stop(&f->srv, 100, on_stopped);
  else f->stopped = true;
}

static void on_sender_closed(rm_webhook_sender *s) {
  fx *f = (fx *)((char *)s - offsetof(fx, sender));
  f->sender_closed = true;
  f->active_at_close = s->active;
  rm_http_client_close(&f->http, on_http_closed);
}

static void close_sender(fx *f) {
  f->in_close = true;
  rm_webhook_sender_close(&f->sender, on_sender_closed);
  f->in_close = false;
  assert_false(f->sender_closed); /* never from inside the close call */
}

static void on_done(const rm_webhook_outcome *o, void *ud) {
  fx *f = ud;
  assert_true(f->nouts < MAX_OUTS);
  out *x = &f->outs[f->nouts++];
  x->delivered = o->delivered;
  x->cancelled = o->cancelled;
  x->during_close = f->in_close;
  x->attempts = o->attempts;
  x->status = o->status;
  x->err = o->err;
  snprintf(x->error, sizeof x->error, "%s", o->error);
  snprintf(x->event_id, sizeof x->event_id, "%s", o->event_id);
  if (f->nouts == f->expect && !f->sender.closing) close_sender(f);
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  if (!f->loop_closed) uv_loop_close(&f->loop);
  for (size_t i = 0; i < f->nhits; i++) free(f->hits[i].body);
  free(f);
  return 0;
}

static void start_receiver(fx *f) {
  rm_api_server_opts o = {.host = "127.0.0.1"};
  assert_int_equal(rm_api_server_init(&f->srv, &f->loop, &o), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/hook", on_hook, f), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/hang", on_hook, f), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/hooks/{token}", on_hook, f), 0);
  assert_int_equal(rm_api_server_start(&f->srv), 0);
  f->port = rm_api_server_port(&f->srv);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static void start(fx *f, bool receiver) {
  if (receiver) start_receiver(f);
  assert_int_equal(rm_http_client_init(&f->http, &f->loop), 0);
  assert_int_equal(rm_webhook_sender_init(&f->sender, &f->http), 0);
}

/* Runs the loop to the end; asserts everything closed. */
static void finish(fx *f) {
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_true(f->sender_closed);
  assert_true(f->stopped);
  assert_int_equal(f->active_at_close, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  f->loop_closed = true;
}

static void deliver(fx *f, rm_webhook_msg m, const char *path) {
  char url[160];
  if (!m.url) {
    snprintf(url, sizeof url, "%s%s", f->base, path ? path : "/hook");
    m.url = url;
  }
  assert_int_equal(rm_webhook_send(&f->sender, &m, on_done, f), 0);
  f->expect++;
}

/* ---- checks ------------------------------------------------------------- */

/* The signature a receiver computes, independently of the sender. */
static void assert_signed(const hit *h, const char *key) {
  size_t n = strlen(h->ts) + 1 + strlen(h->body);
  char *msg = malloc(n + 1);
  snprintf(msg, n + 1, "%s.%s", h->ts, h->body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)msg, n, mac, &mlen));
  char want[8 + 2 * EVP_MAX_MD_SIZE] = "sha256=";
  for (unsigned i = 0; i < mlen; i++) snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
  assert_string_equal(h->sig, want);
  free(msg);
}

static void assert_fresh_timestamp(const hit *h) {
  char *end;
  long long ts = strtoll(h->ts, &end, 10);
  assert_true(h->ts[0] && *end == '\0');
  long long now = (long long)time(NULL);
  assert_true(ts <= now && ts >= now - 5);
}

static void assert_standard_headers(const hit *h, const char *event_id) {
  assert_string_equal(h->ctype, "application/json");
  assert_string_equal(h->ua, "RestMon-Webhook/1");
  assert_string_equal(h->event_id, event_id);
  assert_fresh_timestamp(h);
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* nothing listens there now */
  return ntohs(a.sin_port);
}

static rm_webhook_msg signed_msg(const char *body) {
  return (rm_webhook_msg){.body = body, .body_len = strlen(body), .key = (const unsigned char *)KEY,
                          .key_len = strlen(KEY), .event_id = "evt-1", .backoff_ms = 2};
}

/* ---- tests -------------------------------------------------------------- */

static void test_delivers_first_time_with_valid_signature(void **state) {
  fx *f = *state;
  start(f, true);
  json_t *body = json_pack("{s:s, s:s, s:i}", "run", "r-42", "state", "failed", "step", 3);
  rm_webhook_header extra[] = {{"X-Custom", "yes"}};
  rm_webhook_msg m = {.json = body, .headers = extra, .nheaders = 1, .key = (const unsigned char *)KEY,
                      .key_len = strlen(KEY), .event_id = "run-42.failed:1"};
  deliver(f, m, NULL);
  json_decref(body); /* copied by send */
  finish(f);
  assert_int_equal(f->nhits, 1);
  const hit *h = &f->hits[0];
  assert_standard_headers(h, "run-42.failed:1");
  assert_string_equal(h->custom, "yes");
  assert_string_equal(h->body, "{\"run\":\"r-42\",\"state\":\"failed\",\"step\":3}");
  assert_signed(h, KEY);
  const out *o = &f->outs[0];
  assert_true(o->delivered);
  assert_false(o->cancelled);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 200);
  assert_int_equal(o->err, 0);
  assert_string_equal(o->error, "");
  assert_string_equal(o->event_id, "run-42.failed:1");
}

static void test_retries_5xx_and_408_with_same_event_id_and_backoff(void **state) {
  fx *f = *state;
  start(f, true);
  f->script[0] = 500, f->script[1] = 503, f->script[2] = 408, f->nscript = 3;
  rm_webhook_msg m = signed_msg("{\"n\":1}");
  m.backoff_ms = 20;
  deliver(f, m, NULL);
  finish(f);
  assert_int_equal(f->nhits, 4);
  for (size_t i = 0; i < 4; i++) {
    assert_standard_headers(&f->hits[i], "evt-1");
    assert_string_equal(f->hits[i].body, "{\"n\":1}");
    assert_signed(&f->hits[i], KEY); /* each attempt signs its own timestamp */
  }
  /* waits of at least 75 % of 20, 40, 80 ms (uv_now is per loop turn) */
  for (size_t i = 1; i < 4; i++)
    assert_true(f->hits[i].at - f->hits[i - 1].at + 2 >= (15u << (i - 1)));
  const out *o = &f->outs[0];
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 4);
  assert_int_equal(o->status, 200);
  assert_string_equal(o->error, "");
}

static void test_400_is_permanent_and_not_retried(void **state) {
  fx *f = *state;
  start(f, true);
  f->then = 400;
  deliver(f, signed_msg("{}"), NULL);
  finish(f);
  assert_int_equal(f->nhits, 1);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_false(o->cancelled);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 400);
  assert_int_equal(o->err, RM_EHTTP);
  char want[128];
  snprintf(want, sizeof want, "HTTP 400 from 127.0.0.1:%d, not retried", f->port);
  assert_string_equal(o->error, want);
}

static void test_5xx_until_attempts_run_out(void **state) {
  fx *f = *state;
  start(f, true);
  f->then = 500;
  rm_webhook_msg m = signed_msg("{}");
  m.max_attempts = 0; /* the default: 5 */
  deliver(f, m, NULL);
  finish(f);
  assert_int_equal(f->nhits, 5);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_int_equal(o->attempts, 5);
  assert_int_equal(o->status, 500);
  assert_int_equal(o->err, RM_EHTTP);
  char want[128];
  snprintf(want, sizeof want, "HTTP 500 from 127.0.0.1:%d after 5 attempts", f->port);
  assert_string_equal(o->error, want);
}

static void test_receiver_down_fails_after_max_attempts(void **state) {
  fx *f = *state;
  start(f, false);
  int port = closed_port();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/T0KEN-IN-PATH?sig=Q5ECRET", port);
  rm_webhook_msg m = signed_msg("{}");
  m.url = url;
  m.max_attempts = 3;
  deliver(f, m, NULL);
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_int_equal(o->attempts, 3);
  assert_int_equal(o->status, 0);
  assert_int_equal(o->err, RM_EHTTP);
  char want[128];
  snprintf(want, sizeof want, "could not connect to 127.0.0.1:%d after 3 attempts", port);
  assert_string_equal(o->error, want);
  assert_null(strstr(o->error, "T0KEN"));
  assert_null(strstr(o->error, "Q5ECRET"));
  assert_null(strstr(o->error, KEY));
}

static void test_timeouts_are_retried_then_reported(void **state) {
  fx *f = *state;
  start(f, true);
  rm_webhook_msg m = signed_msg("{}");
  m.max_attempts = 2;
  m.timeout_ms = 150;
  deliver(f, m, "/hang");
  finish(f);
  assert_int_equal(f->nhits, 2);
  assert_string_equal(f->hits[1].event_id, "evt-1");
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_int_equal(o->attempts, 2);
  assert_int_equal(o->status, 0);
  assert_int_equal(o->err, RM_ETIMEOUT);
  char want[128];
  snprintf(want, sizeof want, "no answer from 127.0.0.1:%d within 150 ms after 2 attempts", f->port);
  assert_string_equal(o->error, want);
}

static void test_timed_out_attempt_is_retried_and_delivered(void **state) {
  fx *f = *state;
  start(f, true);
  f->script[0] = 0, f->nscript = 1; /* the first attempt gets no answer */
  rm_webhook_msg m = signed_msg("{}");
  m.timeout_ms = 150;
  deliver(f, m, NULL);
  finish(f);
  assert_int_equal(f->nhits, 2);
  assert_true(f->outs[0].delivered);
  assert_int_equal(f->outs[0].attempts, 2);
  assert_int_equal(f->outs[0].status, 200);
}

static void test_429_honours_retry_after(void **state) {
  fx *f = *state;
  start(f, true);
  f->script[0] = 429, f->nscript = 1;
  f->retry_after = "1";
  deliver(f, signed_msg("{}"), NULL); /* backoff 2 ms: the wait is the server's */
  finish(f);
  assert_int_equal(f->nhits, 2);
  assert_true(f->hits[1].at - f->hits[0].at >= 990);
  assert_true(f->outs[0].delivered);
  assert_int_equal(f->outs[0].attempts, 2);
}

static void test_retry_after_is_capped_by_max_delay(void **state) {
  fx *f = *state;
  start(f, true);
  f->script[0] = 503, f->nscript = 1;
  f->retry_after = "3600";
  rm_webhook_msg m = signed_msg("{}");
  m.max_delay_ms = 40;
  deliver(f, m, NULL);
  finish(f);
  assert_int_equal(f->nhits, 2);
  uint64_t gap = f->hits[1].at - f->hits[0].at;
  assert_true(gap + 2 >= 40 && gap < 1000);
  assert_true(f->outs[0].delivered);
}

static void test_no_key_no_signature_and_generated_event_id(void **state) {
  fx *f = *state;
  start(f, true);
  json_t *body = json_pack("{s:b}", "ok", 1);
  deliver(f, (rm_webhook_msg){.json = body}, NULL);
  json_decref(body);
  finish(f);
  assert_int_equal(f->nhits, 1);
  const hit *h = &f->hits[0];
  assert_false(h->has_sig);
  assert_int_equal(strlen(h->event_id), 36); /* a UUID */
  assert_standard_headers(h, f->outs[0].event_id);
  assert_true(f->outs[0].delivered);
}

/* Polls until the receiver saw the three first attempts, then leaves the
 * 500 answers time to come back (those deliveries wait 10 s to retry). */
static void on_poll(uv_timer_t *t) {
  fx *f = (fx *)((char *)t - offsetof(fx, poll));
  if (f->nhits < 3) return;
  if (uv_timer_get_repeat(t) != SETTLE_MS) {
    uv_timer_start(t, on_poll, SETTLE_MS, SETTLE_MS);
    return;
  }
  uv_close((uv_handle_t *)t, NULL);
  close_sender(f);
  rm_webhook_msg m = signed_msg("{}");
  m.url = "http://127.0.0.1:1/";
  assert_int_equal(rm_webhook_send(&f->sender, &m, on_done, f), RM_ECANCELED);
}

static void test_close_cancels_waiting_retries_and_requests_in_flight(void **state) {
  fx *f = *state;
  start(f, true);
  f->then = 500;
  rm_webhook_msg m = signed_msg("{}");
  m.backoff_ms = 10000;
  deliver(f, m, NULL);
  deliver(f, m, NULL);
  m.timeout_ms = 5000;
  deliver(f, m, "/hang");
  f->expect = MAX_OUTS; /* close from the poll, not from the last callback */
  uv_timer_init(&f->loop, &f->poll);
  uv_timer_start(&f->poll, on_poll, 5, 5);
  finish(f);
  assert_int_equal(f->nhits, 3);
  assert_int_equal(f->nouts, 3);
  size_t waiting = 0, cut = 0;
  char want_wait[160], want_cut[160];
  snprintf(want_wait, sizeof want_wait,
           "cancelled: the sender closed after 1 attempt (last: HTTP 500 from 127.0.0.1:%d)", f->port);
  snprintf(want_cut, sizeof want_cut, "cancelled: the sender closed during attempt 1 to 127.0.0.1:%d",
           f->port);
  for (size_t i = 0; i < 3; i++) {
    const out *o = &f->outs[i];
    assert_true(o->cancelled);
    assert_false(o->delivered);
    assert_false(o->during_close); /* reported from the loop, not inside close */
    assert_int_equal(o->err, RM_ECANCELED);
    assert_int_equal(o->attempts, 1);
    if (o->status == 500 && strcmp(o->error, want_wait) == 0) waiting++;
    if (o->status == 0 && strcmp(o->error, want_cut) == 0) cut++;
  }
  assert_int_equal(waiting, 2);
  assert_int_equal(cut, 1);
}

static void test_bad_messages_are_refused_without_callback(void **state) {
  fx *f = *state;
  start(f, false);
  const char *body = "{}";
  rm_webhook_header crlf[] = {{"X-Ok", "a\r\nX-Evil: 1"}}, own[] = {{"x-restmon-signature", "x"}},
                    ua[] = {{"User-Agent", "x"}}, badname[] = {{"X Bad", "x"}};
  json_t *j = json_object();
  const rm_webhook_msg bad[] = {
      {.body = body, .body_len = 2},                                      /* no URL */
      {.url = "ftp://127.0.0.1/x", .body = body, .body_len = 2},          /* not HTTP */
      {.url = "not a url", .body = body, .body_len = 2},
      {.url = "http://127.0.0.1/"},                                       /* no body */
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .json = j}, /* two bodies */
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .headers = crlf, .nheaders = 1},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .headers = own, .nheaders = 1},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .headers = ua, .nheaders = 1},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .headers = badname, .nheaders = 1},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .event_id = "has space"},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .event_id = ""},
      {.url = "http://127.0.0.1/", .body = body, .body_len = 2, .max_attempts = 1000},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rm_webhook_send(&f->sender, &bad[i], on_done, f), RM_EINVAL);
  json_decref(j);
  assert_int_equal(f->sender.active, 0);
  close_sender(f);
  finish(f);
  assert_int_equal(f->nouts, 0);
}

static void test_backoff_doubles_with_jitter_and_cap(void **state) {
  (void)state;
  /* rnd 0 is the low end (75 %), rnd = d/2 the high end (125 %) */
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 1, 0), 750);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 1, 500), 1250);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 2, 0), 1500);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 3, 1000), 4000);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 4, 0), 6000);
  /* capped before and after the jitter, and no overflow far out */
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 10, 0), 45000);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 10, 30000), 60000);
  assert_int_equal(rm_webhook_backoff_ms(1000, 60000, 99, UINT32_MAX), 60000);
  for (uint32_t r = 0; r < 2000; r += 7) {
    uint64_t d = rm_webhook_backoff_ms(1000, 60000, 2, r);
    assert_true(d >= 1500 && d <= 2500);
  }
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rm_log_configure(RM_LOG_WARN, RM_LOG_TEXT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_doubles_with_jitter_and_cap),
      cmocka_unit_test_setup_teardown(test_delivers_first_time_with_valid_signature, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retries_5xx_and_408_with_same_event_id_and_backoff, setup, teardown),
      cmocka_unit_test_setup_teardown(test_400_is_permanent_and_not_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_5xx_until_attempts_run_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_receiver_down_fails_after_max_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeouts_are_retried_then_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timed_out_attempt_is_retried_and_delivered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_429_honours_retry_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_after_is_capped_by_max_delay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_key_no_signature_and_generated_event_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_cancels_waiting_retries_and_requests_in_flight, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_messages_are_refused_without_callback, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
