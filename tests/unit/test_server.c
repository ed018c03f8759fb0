/* The HTTP server (core/api) driven over real sockets: each test starts a
 * server on an ephemeral port in its own uv loop, a client thread makes
 * blocking libcurl requests and records the answers, then the loop stops
 * the server and the main thread checks what was recorded (cmocka asserts
 * only run on the main thread). The router and the metrics registry are
 * also tested on their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/endpoints.h"
#include "api/metrics.h"
#include "api/request.h"
#include "api/response.h"
#include "api/router.h"
#include "api/server.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

/* ---- client side (runs on the client thread) ------------------------ */

typedef struct resp {
  int rc; /* CURLcode */
  long status, http_version;
  rm_buf body;
  char id[160], ctype[128], allow[128], cache[64], conn[32];
  long clen; /* Content-Length header, -1 when none */
  double secs;
} resp;

typedef struct reqopt {
  const char *method, *path, *body;
  const char *target; /* request target instead of the path ("*", absolute-form) */
  long body_len; /* 0: strlen(body) */
  const char *hdr[4];
  long timeout_ms;
  bool client_cert, h2, chunked;
  CURL *reuse; /* keep this handle (and its connection) */
} reqopt;

typedef struct fx fx;
typedef void (*client_fn)(fx *f);

typedef struct later {
  uv_timer_t t; /* first: callbacks get &t */
  rm_api_req *r;
  fx *f;
} later;

struct fx {
  uv_loop_t loop;
  rm_api_server srv;
  rm_metrics metrics;
  uv_async_t done;
  pthread_t thread;
  client_fn client;
  char dir[128], base[64], cert[192], key[192];
  /* options of the run */
  bool tls, client_ca, http2, with_static, ipv6;
  size_t max_body;
  unsigned grace_ms, slow_ms;
  /* results */
  resp r[16];
  int late_rc[4], nlate, aborted, ready_calls, stop_status;
  bool stopped, loop_closed;
  uint64_t stop_at, stopped_at;
  CURL *kept;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  rm_buf_append(ud, p, sz * n);
  return sz * n;
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
  const char *v = line + nl + 1;
  while (*v == ' ') v++;
  size_t len = (size_t)(line + n - v);
  while (len && (v[len - 1] == '\r' || v[len - 1] == '\n')) len--;
  snprintf(out, cap, "%.*s", (int)len, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  size_t len = sz * n;
  char clen[32] = "";
  header_value(p, len, "x-request-id", r->id, sizeof r->id);
  header_value(p, len, "content-type", r->ctype, sizeof r->ctype);
  header_value(p, len, "allow", r->allow, sizeof r->allow);
  header_value(p, len, "cache-control", r->cache, sizeof r->cache);
  header_value(p, len, "connection", r->conn, sizeof r->conn);
  header_value(p, len, "content-length", clen, sizeof clen);
  if (*clen) r->clen = atol(clen);
  return len;
}

static void http(fx *f, resp *out, reqopt o) {
  CURL *c = o.reuse ? o.reuse : curl_easy_init();
  char url[512];
  struct curl_slist *h = NULL;
  snprintf(url, sizeof url, "%s%s", f->base, o.path);
  memset(out, 0, sizeof *out);
  out->clen = -1;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o.timeout_ms ? o.timeout_ms : 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, o.h2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  if (f->tls) curl_easy_setopt(c, CURLOPT_CAINFO, f->cert);
  if (o.client_cert) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, f->cert);
    curl_easy_setopt(c, CURLOPT_SSLKEY, f->key);
  }
  if (o.target) curl_easy_setopt(c, CURLOPT_REQUEST_TARGET, o.target);
  if (o.method && strcmp(o.method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (o.method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o.method);
  if (o.body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, o.body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, o.body_len ? o.body_len : (long)strlen(o.body));
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, o.chunked ? "Transfer-Encoding: chunked" : "Expect:");
  }
  for (size_t i = 0; i < 4 && o.hdr[i]; i++) h = curl_slist_append(h, o.hdr[i]);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  out->rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &out->http_version);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->secs);
  rm_buf_putc(&out->body, '\0'); /* a string even when empty */
  out->body.len--;
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(h);
  if (!o.reuse) curl_easy_cleanup(c);
}

/* ---- handlers (run on the loop) ------------------------------------- */

static void on_item(rm_api_req *r, void *ud) {
  (void)ud;
  const char *q = rm_api_req_query(r, "q"), *thing = rm_api_req_header(r, "x-thing");
  rm_api_respond(r, 200, json_pack("{s:s, s:s?, s:s?, s:s}", "id", rm_api_req_param(r, "id"), "q", q,
                                   "thing", thing, "route", rm_api_req_route(r)->pattern));
}

static void on_items(rm_api_req *r, void *ud) {
  (void)ud;
  rm_api_page p;
  if (!rm_api_req_page(r, 20, 100, &p)) return;
  rm_api_respond(r, 200, rm_api_page_data(json_pack("[i]", (int)p.page), &p, 45));
}

static void on_create(rm_api_req *r, void *ud) {
  (void)ud;
  static const char *allowed[] = {"name", "tags", NULL};
  json_t *body = rm_api_req_json(r);
  if (!body || !rm_api_req_only_fields(r, body, "$", allowed)) return;
  rm_api_resp_header(r, "Location", "/api/v1/items/1");
  rm_api_respond(r, 201, json_incref(body));
}

static void on_annotate(rm_api_req *r, void *ud) {
  (void)ud;
  static const char *top[] = {"text", "meta", NULL}, *meta[] = {"source", NULL};
  json_t *body = rm_api_req_json(r);
  if (!body) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  rm_api_details_unknown_fields(&d, body, "$", top);
  rm_api_details_unknown_fields(&d, json_object_get(body, "meta"), "$.meta", meta);
  if (rm_api_details_count(&d)) {
    rm_api_respond_details(r, RM_API_UNKNOWN_FIELDS, NULL, &d);
    return;
  }
  rm_api_respond(r, 201, NULL);
}

static void on_delete(rm_api_req *r, void *ud) {
  (void)ud;
  rm_api_respond_error(r, RM_API_CONFLICT, "item is in use");
}

static void on_search(rm_api_req *r, void *ud) {
  (void)ud;
  rm_api_respond(r, 200, json_string("search"));
}

static void later_closed(uv_handle_t *h) { free(h); }

static void later_fire(uv_timer_t *t) {
  later *l = (later *)t;
  l->f->late_rc[l->f->nlate++] = rm_api_respond(l->r, 200, json_pack("{s:s}", "slow", "done"));
  uv_close((uv_handle_t *)t, later_closed);
}

static void on_late_abort(rm_api_req *r, void *ud) {
  (void)r;
  later *l = ud;
  l->f->aborted++;
  uv_close((uv_handle_t *)&l->t, later_closed); /* never answers */
}

static void on_stopped(rm_api_server *s, int status) {
  fx *f = (fx *)((char *)s - offsetof(fx, srv));
  f->stopped = true;
  f->stop_status = status;
  f->stopped_at = uv_now(&f->loop);
}

static void stop_server(fx *f) {
  if (f->srv.stopping) return;
  f->stop_at = uv_now(&f->loop);
  rm_api_server_stop(&f->srv, f->grace_ms ? f->grace_ms : 3000, on_stopped);
}

/* /slow answers after slow_ms; /slow-stop first stops the server; /stuck
 * stops it and answers only if nothing gave up on it (abort hook);
 * /stuck-nohook answers after the deadline, without a hook. */
static void start_later(rm_api_req *r, fx *f, bool stop, bool hook) {
  later *l = calloc(1, sizeof *l);
  l->r = r;
  l->f = f;
  uv_timer_init(&f->loop, &l->t);
  uv_timer_start(&l->t, later_fire, f->slow_ms, 0);
  if (hook) rm_api_req_on_abort(r, on_late_abort, l);
  if (stop) stop_server(f);
}

static void on_slow(rm_api_req *r, void *ud) { start_later(r, ud, false, false); }
static void on_slow_stop(rm_api_req *r, void *ud) { start_later(r, ud, true, false); }
static void on_stuck(rm_api_req *r, void *ud) { start_later(r, ud, true, true); }

/* Not ready on the first call, ready on the next; answers from a timer. */
static void ready_fire(uv_timer_t *t) {
  later *l = (later *)t;
  rm_api_ready_answer(l->r, l->f->ready_calls > 1, "store unreachable");
  uv_close((uv_handle_t *)t, later_closed);
}

static void on_ready_check(rm_api_req *r, void *ud) {
  fx *f = ud;
  f->ready_calls++;
  later *l = calloc(1, sizeof *l);
  l->r = r;
  l->f = f;
  uv_timer_init(&f->loop, &l->t);
  uv_timer_start(&l->t, ready_fire, 10, 0);
}

/* ---- fixture -------------------------------------------------------- */

static void *client_main(void *ud) {
  fx *f = ud;
  f->client(f);
  uv_async_send(&f->done);
  return NULL;
}

static void on_client_done(uv_async_t *a) {
  fx *f = (fx *)((char *)a - offsetof(fx, done));
  uv_close((uv_handle_t *)a, NULL);
  stop_server(f);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *fp = fopen(p, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/restmon-server-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->cert, sizeof f->cert, "%s/cert.pem", f->dir);
  snprintf(f->key, sizeof f->key, "%s/key.pem", f->dir);
  f->slow_ms = 150;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  if (!f->loop_closed) assert_int_equal(uv_loop_close(&f->loop), 0);
  for (size_t i = 0; i < 16; i++) rm_buf_free(&f->r[i].body);
  rm_metrics_free(&f->metrics);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* Runs a server with every route until the client is done and the server
 * has stopped; asserts the loop ends with no handle left. */
static void run(fx *f, client_fn client) {
  static const char *assets[] = {"index.html", "<!doctype html><title>RestMon</title>\n",
                                 "assets/app.js", "console.log('app');\n", "style.css", "body{}\n"};
  if (f->with_static) {
    char sub[192];
    snprintf(sub, sizeof sub, "%s/web", f->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    for (size_t i = 0; i < 6; i += 2) {
      if (strchr(assets[i], '/')) {
        char d[256];
        snprintf(d, sizeof d, "%s/%.*s", sub, (int)(strchr(assets[i], '/') - assets[i]), assets[i]);
        assert_int_equal(mkdir(d, 0755), 0);
      }
      write_file(sub, assets[i], assets[i + 1]);
    }
  }
  char web[192];
  snprintf(web, sizeof web, "%s/web", f->dir);
  rm_api_server_opts o = {.host = f->ipv6 ? "::1" : "127.0.0.1", .max_body_bytes = f->max_body, .metrics = &f->metrics,
                          .static_dir = f->with_static ? web : NULL, .http2 = f->http2};
  if (f->tls) {
    o.tls_cert_file = f->cert;
    o.tls_key_file = f->key;
    if (f->client_ca) o.tls_client_ca_file = f->cert;
  }
  assert_int_equal(rm_api_server_init(&f->srv, &f->loop, &o), 0);
  static const struct {
    const char *method, *pattern;
    rm_api_handler_fn fn;
  } routes[] = {
      {"GET", "/api/v1/items", on_items},          {"POST", "/api/v1/items", on_create},
      {"GET", "/api/v1/items/{id}", on_item},      {"DELETE", "/api/v1/items/{id}", on_delete},
      {"POST", "/api/v1/items/{id}/annotations", on_annotate},
      {"GET", "/api/v1/runs/{id}", on_item},       {"GET", "/api/v1/runs/search", on_search},
      {"GET", "/api/v1/slow", on_slow},            {"GET", "/api/v1/slow-stop", on_slow_stop},
      {"GET", "/api/v1/stuck", on_stuck},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    assert_int_equal(rm_api_server_route(&f->srv, routes[i].method, routes[i].pattern, routes[i].fn, f), 0);
  assert_int_equal(rm_api_health_register(&f->srv, on_ready_check, f), 0);
  assert_int_equal(rm_api_metrics_register(&f->srv, "/metrics", &f->metrics), 0);
  int rc = rm_api_server_start(&f->srv);
  if (rc) fprintf(stderr, "start: %s\n", f->srv.errmsg);
  assert_int_equal(rc, 0);
  snprintf(f->base, sizeof f->base, "%s://%s:%d", f->tls ? "https" : "http",
           f->ipv6 ? "[::1]" : "127.0.0.1", rm_api_server_port(&f->srv));
  f->client = client;
  assert_int_equal(uv_async_init(&f->loop, &f->done, on_client_done), 0);
  assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  pthread_join(f->thread, NULL);
  if (f->kept) curl_easy_cleanup(f->kept);
  assert_true(f->stopped);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  f->loop_closed = true;
}

/* ---- checks --------------------------------------------------------- */

static json_t *parse(const resp *r) {
  json_error_t e;
  json_t *j = json_loads(r->body.data ? r->body.data : "", 0, &e);
  if (!j) fprintf(stderr, "not JSON (%s): %s\n", e.text, r->body.data ? r->body.data : "");
  assert_non_null(j);
  return j;
}

/* An answer in the envelope with status and code; returns it parsed. */
static json_t *envelope(const resp *r, long status, const char *code) {
  assert_int_equal(r->rc, CURLE_OK);
  assert_int_equal(r->status, status);
  assert_string_equal(r->ctype, "application/json; charset=utf-8");
  assert_int_equal(r->clen, (long)r->body.len);
  assert_true(strlen(r->id) > 0);
  json_t *j = parse(r);
  assert_string_equal(json_string_value(json_object_get(j, "code")), code);
  assert_non_null(json_string_value(json_object_get(j, "message")));
  assert_int_equal(json_object_size(j), 4);
  if (strcmp(code, "00000") == 0) {
    assert_true(json_is_null(json_object_get(j, "error")));
  } else {
    assert_true(json_is_null(json_object_get(j, "data")));
    assert_true(json_is_array(json_object_get(json_object_get(j, "error"), "details")));
  }
  return j;
}

static const char *detail(json_t *j, size_t i, const char *key) {
  json_t *d = json_array_get(json_object_get(json_object_get(j, "error"), "details"), i);
  return json_string_value(json_object_get(d, key));
}

static bool is_uuid(const char *s) {
  if (strlen(s) != 36 || s[14] != '4') return false;
  for (size_t i = 0; i < 36; i++)
    if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
      return false;
  return true;
}

/* promtool (Debian's prometheus package) checks the exposition text;
 * skipped with a note where it is not installed. */
static void promtool_accepts(const fx *f, const char *text) {
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    fprintf(stderr, "note: promtool not installed; exposition format not checked by it\n");
    return;
  }
  char path[192], cmd[512];
  snprintf(path, sizeof path, "%s/metrics.txt", f->dir);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
  snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 1>&2", path);
  assert_int_equal(system(cmd), 0);
}

/* ---- routing, parameters, errors ------------------------------------ */

static void client_routes(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/items/a%2Fb?q=x+y%21&q=2&flag", .hdr = {"X-Thing: hi"}});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/runs/search"});
  http(f, &f->r[2], (reqopt){.path = "/api/v1/runs/7"});
  http(f, &f->r[3], (reqopt){.method = "HEAD", .path = "/api/v1/items/1"});
  http(f, &f->r[4], (reqopt){.path = "/api/v1/items?page=2&page_size=20"});
  http(f, &f->r[5], (reqopt){.path = "/api/v1/items?page=0&page_size=500"});
  http(f, &f->r[6], (reqopt){.method = "DELETE", .path = "/api/v1/items/1"});
  http(f, &f->r[7], (reqopt){.path = "/api/v1/items/%zz"});
  http(f, &f->r[8], (reqopt){.path = "/api/v1/nope"});
  http(f, &f->r[9], (reqopt){.method = "PUT", .path = "/api/v1/items/1"});
  http(f, &f->r[10], (reqopt){.path = "/api/v1/items/"});
  http(f, &f->r[11], (reqopt){.path = "/api/v1/items/1?bad=%G1"});
  http(f, &f->r[12], (reqopt){.path = "/", .target = "http://x/api/v1/items/1"});
}

static void test_routes_params_query_and_pagination(void **state) {
  fx *f = *state;
  run(f, client_routes);
  json_t *j = envelope(&f->r[0], 200, "00000");
  assert_string_equal(json_string_value(json_object_get(j, "message")), "ok");
  json_t *d = json_object_get(j, "data");
  assert_string_equal(json_string_value(json_object_get(d, "id")), "a/b");
  assert_string_equal(json_string_value(json_object_get(d, "q")), "x y!");
  assert_string_equal(json_string_value(json_object_get(d, "thing")), "hi");
  assert_string_equal(json_string_value(json_object_get(d, "route")), "/api/v1/items/{id}");
  json_decref(j);
  /* a literal segment beats a parameter */
  j = envelope(&f->r[1], 200, "00000");
  assert_string_equal(json_string_value(json_object_get(j, "data")), "search");
  json_decref(j);
  j = envelope(&f->r[2], 200, "00000");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "id")), "7");
  json_decref(j);
  /* HEAD: the GET route's headers, no body */
  assert_int_equal(f->r[3].status, 200);
  assert_int_equal(f->r[3].body.len, 0);
  assert_true(f->r[3].clen > 20);
  j = envelope(&f->r[4], 200, "00000");
  d = json_object_get(j, "data");
  assert_int_equal(json_integer_value(json_object_get(d, "page")), 2);
  assert_int_equal(json_integer_value(json_object_get(d, "page_size")), 20);
  assert_int_equal(json_integer_value(json_object_get(d, "total")), 45);
  assert_int_equal(json_integer_value(json_object_get(d, "total_pages")), 3);
  assert_int_equal(json_array_size(json_object_get(d, "items")), 1);
  json_decref(j);
  j = envelope(&f->r[5], 400, "40002");
  assert_string_equal(detail(j, 0, "path"), "query.page");
  assert_string_equal(detail(j, 1, "path"), "query.page_size");
  json_decref(j);
  json_decref(envelope(&f->r[6], 409, "40900"));
  json_decref(envelope(&f->r[7], 400, "40000"));
  json_decref(envelope(&f->r[8], 404, "40401"));
  json_decref(envelope(&f->r[9], 405, "40500"));
  assert_string_equal(f->r[9].allow, "GET, HEAD, DELETE");
  json_decref(envelope(&f->r[10], 404, "40401"));
  json_decref(envelope(&f->r[11], 400, "40002"));
  json_decref(envelope(&f->r[12], 400, "40000"));
}

static void client_bodies(fx *f) {
  http(f, &f->r[0], (reqopt){.method = "POST", .path = "/api/v1/items",
                             .body = "{\"name\": \"disk\", \"tags\": [\"a\"]}"});
  http(f, &f->r[1], (reqopt){.method = "POST", .path = "/api/v1/items",
                             .body = "{\n  \"name\": \"x\",\n  oops\n}"});
  http(f, &f->r[2], (reqopt){.method = "POST", .path = "/api/v1/items", .body = ""});
  http(f, &f->r[3], (reqopt){.method = "POST", .path = "/api/v1/items",
                             .body = "{\"name\": \"a\", \"colour\": \"red\", \"x y\": 1}"});
  http(f, &f->r[4], (reqopt){.method = "POST", .path = "/api/v1/items/1/annotations",
                             .body = "{\"text\": \"t\", \"meta\": {\"source\": \"s\", \"bad\": 1}, \"extra\": true}"});
  http(f, &f->r[5], (reqopt){.method = "POST", .path = "/api/v1/items", .body = "{\"name\": 1, \"name\": 2}"});
}

static void test_json_bodies_malformed_and_unknown_fields(void **state) {
  fx *f = *state;
  run(f, client_bodies);
  json_t *j = envelope(&f->r[0], 201, "00000");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "name")), "disk");
  json_decref(j);
  /* malformed JSON: 400 with line and column */
  j = envelope(&f->r[1], 400, "40001");
  json_t *d0 = json_array_get(json_object_get(json_object_get(j, "error"), "details"), 0);
  assert_int_equal(json_integer_value(json_object_get(d0, "line")), 3);
  assert_true(json_integer_value(json_object_get(d0, "column")) >= 3);
  assert_string_equal(json_string_value(json_object_get(d0, "path")), "$");
  assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "line 3, column"));
  json_decref(j);
  json_decref(envelope(&f->r[2], 400, "40001"));
  /* unknown fields: 422 with the JSON path of each */
  j = envelope(&f->r[3], 422, "42201");
  assert_string_equal(detail(j, 0, "path"), "$.colour");
  assert_string_equal(detail(j, 1, "path"), "$['x y']");
  assert_non_null(strstr(detail(j, 0, "message"), "allowed: name, tags"));
  json_decref(j);
  j = envelope(&f->r[4], 422, "42201");
  assert_string_equal(detail(j, 0, "path"), "$.extra");
  assert_string_equal(detail(j, 1, "path"), "$.meta.bad");
  json_decref(j);
  json_decref(envelope(&f->r[5], 400, "40001")); /* duplicate keys */
}

static void client_big(fx *f) {
  char *big = malloc(4097);
  memset(big, 'x', 4096);
  big[4096] = '\0';
  http(f, &f->r[0], (reqopt){.method = "POST", .path = "/api/v1/items", .body = big});
  http(f, &f->r[1], (reqopt){.method = "POST", .path = "/api/v1/items", .body = big, .chunked = true});
  http(f, &f->r[2], (reqopt){.method = "POST", .path = "/api/v1/items", .body = "{\"name\":\"ok\"}"});
  free(big);
}

static void test_body_over_limit_gets_413_envelope(void **state) {
  fx *f = *state;
  f->max_body = 1024;
  run(f, client_big);
  for (int i = 0; i < 2; i++) {
    json_t *j = envelope(&f->r[i], 413, "41300");
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "1024 bytes"));
    json_decref(j);
  }
  json_decref(envelope(&f->r[2], 201, "00000"));
}

/* ---- asynchronous answers, request ids, access log ------------------ */

static void client_async(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/slow"});
  /* gives up before the answer: the handler answers a closed connection */
  http(f, &f->r[1], (reqopt){.path = "/api/v1/slow", .timeout_ms = 40});
}

static void test_async_answer_and_client_gone_before_it(void **state) {
  fx *f = *state;
  f->slow_ms = 300;
  run(f, client_async);
  json_t *j = envelope(&f->r[0], 200, "00000");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "slow")), "done");
  json_decref(j);
  assert_true(f->r[0].secs >= 0.25);
  assert_int_equal(f->r[1].rc, CURLE_OPERATION_TIMEDOUT);
  /* the stop waited for the late answer, which went nowhere harmlessly */
  assert_int_equal(f->nlate, 2);
  assert_int_equal(f->late_rc[1], 0);
  assert_int_equal(f->stop_status, 0);
}

static void client_ids(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/items/1", .hdr = {"X-Request-ID: abc-123"}});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/items/1", .hdr = {"RequestID: trace.42:x_y"}});
  http(f, &f->r[2], (reqopt){.path = "/api/v1/items/1", .hdr = {"X-Request-ID: has space"}});
  http(f, &f->r[3], (reqopt){.path = "/api/v1/nope"});
  http(f, &f->r[4], (reqopt){.path = "/api/v1/nope"});
  char big[300] = "X-Request-ID: ";
  memset(big + 14, 'a', 200);
  http(f, &f->r[5], (reqopt){.path = "/api/v1/items/1", .hdr = {big}});
}

static void test_request_id_echoed_or_generated_and_logged(void **state) {
  fx *f = *state;
  char logpath[192];
  snprintf(logpath, sizeof logpath, "%s/access.log", f->dir);
  fflush(stderr);
  int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  close(fd);
  rm_log_configure(RM_LOG_INFO, RM_LOG_TEXT);
  run(f, client_ids);
  rm_log_configure(RM_LOG_WARN, RM_LOG_TEXT);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  assert_string_equal(f->r[0].id, "abc-123");
  assert_string_equal(f->r[1].id, "trace.42:x_y");
  assert_true(is_uuid(f->r[2].id));
  assert_true(is_uuid(f->r[3].id));
  assert_true(is_uuid(f->r[5].id));
  assert_string_not_equal(f->r[3].id, f->r[4].id);
  /* one access line per request with method, path, status, duration, id */
  FILE *fp = fopen(logpath, "r");
  assert_non_null(fp);
  char line[1024];
  int seen = 0;
  while (fgets(line, sizeof line, fp)) {
    if (strstr(line, "[http] request") && strstr(line, "method=GET path=/api/v1/items/1 status=200") &&
        strstr(line, "request_id=abc-123") && strstr(line, "duration_ms=") &&
        strstr(line, "route=/api/v1/items/{id}"))
      seen++;
    if (strstr(line, "path=/api/v1/nope status=404") && strstr(line, "route=unmatched")) seen += 10;
  }
  fclose(fp);
  assert_int_equal(seen, 21);
}

/* ---- static files ---------------------------------------------------- */

static void client_static(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/"});
  http(f, &f->r[1], (reqopt){.path = "/assets/app.js"});
  http(f, &f->r[2], (reqopt){.path = "/runs/42?tab=steps"});
  http(f, &f->r[3], (reqopt){.path = "/missing.js"});
  http(f, &f->r[4], (reqopt){.path = "/api/v1/missing"});
  http(f, &f->r[5], (reqopt){.method = "HEAD", .path = "/runs/42"});
  http(f, &f->r[6], (reqopt){.path = "/style.css"});
  http(f, &f->r[7], (reqopt){.method = "POST", .path = "/somewhere", .body = "{}"});
  http(f, &f->r[8], (reqopt){.path = "/%2e%2e/%2e%2e/etc/passwd"});
  http(f, &f->r[9], (reqopt){.path = "/api"});
  http(f, &f->r[10], (reqopt){.path = "/assets"});
}

static void test_static_files_and_spa_fallback(void **state) {
  fx *f = *state;
  f->with_static = true;
  run(f, client_static);
  const char *index = "<!doctype html><title>RestMon</title>\n";
  assert_int_equal(f->r[0].status, 200);
  assert_string_equal(f->r[0].ctype, "text/html; charset=utf-8");
  assert_string_equal(f->r[0].body.data, index);
  assert_int_equal(f->r[1].status, 200);
  assert_string_equal(f->r[1].ctype, "text/javascript; charset=utf-8");
  assert_string_equal(f->r[1].body.data, "console.log('app');\n");
  assert_int_equal(f->r[2].status, 200);
  assert_string_equal(f->r[2].body.data, index);
  assert_string_equal(f->r[2].cache, "no-cache");
  json_t *j = envelope(&f->r[3], 404, "40400");
  assert_string_equal(json_string_value(json_object_get(j, "message")), "no such file");
  json_decref(j);
  json_decref(envelope(&f->r[4], 404, "40401"));
  assert_int_equal(f->r[5].status, 200);
  assert_int_equal(f->r[5].body.len, 0);
  assert_int_equal(f->r[5].clen, (long)strlen(index));
  assert_string_equal(f->r[6].ctype, "text/css; charset=utf-8");
  json_decref(envelope(&f->r[7], 404, "40401"));
  assert_null(strstr(f->r[8].body.data, "root:"));
  json_decref(envelope(&f->r[9], 404, "40401"));
  assert_int_equal(f->r[10].status, 301); /* h2o's redirect to the folder */
  for (int i = 0; i < 11; i++) assert_true(strlen(f->r[i].id) > 0);
}

/* ---- metrics and health ---------------------------------------------- */

static void client_metrics(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/items/1"});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/items/2"});
  http(f, &f->r[2], (reqopt){.path = "/api/v1/nope"});
  http(f, &f->r[3], (reqopt){.method = "POST", .path = "/api/v1/items", .body = "{"});
  http(f, &f->r[4], (reqopt){.path = "/health"});
  http(f, &f->r[5], (reqopt){.path = "/health/ready"});
  http(f, &f->r[6], (reqopt){.path = "/health/ready"});
  http(f, &f->r[7], (reqopt){.path = "/metrics"});
}

static void test_metrics_health_and_readiness(void **state) {
  fx *f = *state;
  run(f, client_metrics);
  assert_int_equal(f->r[4].status, 200);
  assert_string_equal(f->r[4].body.data, "{\"status\":\"ok\"}");
  assert_int_equal(f->r[5].status, 503);
  assert_string_equal(f->r[5].body.data, "{\"status\":\"not_ready\",\"reason\":\"store unreachable\"}");
  assert_int_equal(f->r[6].status, 200);
  assert_string_equal(f->r[6].body.data, "{\"status\":\"ready\"}");
  assert_int_equal(f->ready_calls, 2);
  const resp *m = &f->r[7];
  assert_int_equal(m->status, 200);
  assert_string_equal(m->ctype, RM_METRICS_CONTENT_TYPE);
  static const char *want[] = {
      "# TYPE restmon_http_requests_total counter\n",
      "restmon_http_requests_total{method=\"GET\",route=\"/api/v1/items/{id}\",status=\"200\"} 2\n",
      "restmon_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n",
      "restmon_http_requests_total{method=\"POST\",route=\"/api/v1/items\",status=\"400\"} 1\n",
      "restmon_http_requests_total{method=\"GET\",route=\"/health/ready\",status=\"503\"} 1\n",
      "# TYPE restmon_http_request_duration_seconds histogram\n",
      "restmon_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/items/{id}\"} 2\n",
      "restmon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/items/{id}\",le=\"+Inf\"} 2\n",
      "# TYPE restmon_http_connections gauge\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (!strstr(m->body.data, want[i])) fprintf(stderr, "missing: %s---\n%s", want[i], m->body.data);
    assert_non_null(strstr(m->body.data, want[i]));
  }
  promtool_accepts(f, m->body.data);
  /* the scrape itself was counted once it was written */
  const char *scrape[] = {"GET", "/metrics", "200"};
  assert_true(rm_metric_get(f->srv.m_requests, scrape) == 1);
}

/* ---- TLS ------------------------------------------------------------- */

static void make_cert(fx *f) {
  char cmd[768];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
           "-keyout '%s' -out '%s' >/dev/null 2>&1",
           f->key, f->cert);
  assert_int_equal(system(cmd), 0);
}

static void client_tls(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/items/1"});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/items/1", .h2 = true});
  char saved[64];
  memcpy(saved, f->base, sizeof saved);
  memcpy(f->base, "http", 4);
  memmove(f->base + 4, f->base + 5, strlen(f->base + 5) + 1);
  http(f, &f->r[2], (reqopt){.path = "/api/v1/items/1", .timeout_ms = 2000});
  memcpy(f->base, saved, sizeof saved);
  if (f->client_ca) http(f, &f->r[3], (reqopt){.path = "/api/v1/items/1", .client_cert = true});
}

static void test_tls_serves_http1_only_by_default(void **state) {
  fx *f = *state;
  make_cert(f);
  f->tls = true;
  run(f, client_tls);
  json_decref(envelope(&f->r[0], 200, "00000"));
  assert_int_equal(f->r[0].http_version, CURL_HTTP_VERSION_1_1);
  json_decref(envelope(&f->r[1], 200, "00000"));
  assert_int_equal(f->r[1].http_version, CURL_HTTP_VERSION_1_1);
  assert_int_not_equal(f->r[2].rc, CURLE_OK); /* plain HTTP on the TLS port */
}

static void test_tls_client_certificate_is_verified(void **state) {
  fx *f = *state;
  make_cert(f);
  f->tls = f->client_ca = true;
  run(f, client_tls);
  assert_int_not_equal(f->r[0].rc, CURLE_OK); /* no client certificate */
  json_decref(envelope(&f->r[3], 200, "00000"));
}

static void client_h2(fx *f) { http(f, &f->r[0], (reqopt){.path = "/api/v1/items/1", .h2 = true}); }

static void test_http2_only_when_asked(void **state) {
  fx *f = *state;
  make_cert(f);
  f->tls = f->http2 = true;
  run(f, client_h2);
  json_decref(envelope(&f->r[0], 200, "00000"));
  assert_int_equal(f->r[0].http_version, CURL_HTTP_VERSION_2_0);
}

/* ---- stopping -------------------------------------------------------- */

static void client_stop_in_flight(fx *f) {
  http(f, &f->r[0], (reqopt){.path = "/api/v1/slow-stop"});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/items/1"});
}

static void test_graceful_stop_finishes_request_in_flight(void **state) {
  fx *f = *state;
  run(f, client_stop_in_flight);
  json_decref(envelope(&f->r[0], 200, "00000"));
  assert_string_equal(f->r[0].conn, "close");
  assert_int_equal(f->r[1].rc, CURLE_COULDNT_CONNECT); /* no longer accepting */
  assert_int_equal(f->late_rc[0], 0);
  assert_int_equal(f->stop_status, 0);
}

static void client_stuck(fx *f) { http(f, &f->r[0], (reqopt){.path = "/api/v1/stuck"}); }

static void test_stop_deadline_aborts_stuck_request(void **state) {
  fx *f = *state;
  f->grace_ms = 100;
  f->slow_ms = 5000;
  run(f, client_stuck);
  json_t *j = envelope(&f->r[0], 503, "50300");
  json_decref(j);
  assert_int_equal(f->aborted, 1);
  assert_int_equal(f->nlate, 0);
  assert_int_equal(f->stop_status, RM_ETIMEOUT);
  assert_true(f->stopped_at - f->stop_at < 1000);
}

static void client_late(fx *f) { http(f, &f->r[0], (reqopt){.path = "/api/v1/slow-stop"}); }

static void test_answer_after_deadline_without_hook_is_dropped(void **state) {
  fx *f = *state;
  f->grace_ms = 50;
  f->slow_ms = 300;
  run(f, client_late);
  json_decref(envelope(&f->r[0], 503, "50300"));
  assert_int_equal(f->stop_status, RM_ETIMEOUT);
  assert_int_equal(f->nlate, 1); /* the loop ran on until the handler answered */
  assert_int_equal(f->late_rc[0], RM_ECANCELED);
}

static void client_keepalive(fx *f) {
  f->kept = curl_easy_init();
  http(f, &f->r[0], (reqopt){.path = "/api/v1/items/1", .reuse = f->kept});
  http(f, &f->r[1], (reqopt){.path = "/api/v1/items/2", .reuse = f->kept});
  /* the connection stays open and idle while the server stops */
}

static void test_stop_closes_idle_keepalive_connections_at_once(void **state) {
  fx *f = *state;
  run(f, client_keepalive);
  json_decref(envelope(&f->r[1], 200, "00000"));
  assert_string_equal(f->r[1].conn, "keep-alive");
  assert_int_equal(f->stop_status, 0);
  assert_true(f->stopped_at - f->stop_at < 1000); /* not the 10 s idle timeout */
}

static void client_one(fx *f) { http(f, &f->r[0], (reqopt){.path = "/api/v1/items/6"}); }

static void test_listens_on_ipv6(void **state) {
  fx *f = *state;
  f->ipv6 = true;
  run(f, client_one);
  json_decref(envelope(&f->r[0], 200, "00000"));
}

static void test_start_errors_name_the_option(void **state) {
  fx *f = *state;
  rm_api_server s;
  rm_api_server_opts o = {.tls_cert_file = "/nonexistent/cert.pem"};
  assert_int_equal(rm_api_server_init(&s, &f->loop, &o), RM_EINVAL);
  assert_non_null(strstr(s.errmsg, "tls_key_file"));
  o.tls_key_file = "/nonexistent/key.pem";
  assert_int_equal(rm_api_server_init(&s, &f->loop, &o), 0);
  assert_int_equal(rm_api_server_start(&s), RM_EINVAL);
  assert_non_null(strstr(s.errmsg, "tls_cert_file: cannot load /nonexistent/cert.pem"));
  f->stopped = false;
  assert_int_equal(rm_api_server_stop(&s, 0, NULL), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  rm_api_server_opts bad = {.host = "no-such-host.invalid"};
  assert_int_equal(rm_api_server_init(&s, &f->loop, &bad), 0);
  assert_int_not_equal(rm_api_server_start(&s), 0);
  assert_non_null(strstr(s.errmsg, "host: cannot resolve 'no-such-host.invalid'"));
  assert_int_equal(rm_api_server_stop(&s, 0, NULL), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  /* a port in use */
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t salen = sizeof sa;
  assert_int_equal(bind(busy, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(busy, 1), 0);
  getsockname(busy, (struct sockaddr *)&sa, &salen);
  rm_api_server_opts taken = {.port = ntohs(sa.sin_port)};
  assert_int_equal(rm_api_server_init(&s, &f->loop, &taken), 0);
  assert_int_equal(rm_api_server_start(&s), RM_EIO);
  assert_non_null(strstr(s.errmsg, "address already in use"));
  assert_int_equal(rm_api_server_stop(&s, 0, NULL), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  close(busy);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  f->loop_closed = true;
}

/* ---- router and registry on their own -------------------------------- */

static void nop(rm_api_req *r, void *ud) {
  (void)r;
  (void)ud;
}

static int match(rm_api_router *r, const char *method, const char *path, rm_api_match *m) {
  return rm_api_router_match(r, method, path, strlen(path), m);
}

static void test_router_patterns_precedence_and_listing(void **state) {
  (void)state;
  rm_api_router r;
  rm_api_router_init(&r);
  assert_int_equal(rm_api_router_add(&r, "GET", "/api/v1/runs/{id}/annotations", nop, NULL), 0);
  assert_int_equal(rm_api_router_add(&r, "POST", "/api/v1/runs/{id}/annotations", nop, NULL), 0);
  assert_int_equal(rm_api_router_add(&r, "GET", "/api/v1/runs/{run}/annotations", nop, NULL), RM_EEXIST);
  assert_int_equal(rm_api_router_add(&r, "GET", "/api/v1/runs/latest/annotations", nop, NULL), 0);
  assert_int_equal(rm_api_router_add(&r, "GET", "/", nop, NULL), 0);
  static const char *bad[] = {"api/x", "/a/{}", "/a/{1x}", "/a/{id}/{id}", "/a/b c", "/a//b", "/a/", "/a/{id"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rm_api_router_add(&r, "GET", bad[i], nop, NULL), RM_EINVAL);
  assert_int_equal(rm_api_router_add(&r, "get", "/x", nop, NULL), RM_EINVAL);
  assert_int_equal(rm_api_router_count(&r), 4);
  assert_string_equal(rm_api_router_at(&r, 1)->method, "POST");
  assert_string_equal(rm_api_router_at(&r, 1)->pattern, "/api/v1/runs/{id}/annotations");
  assert_null(rm_api_router_at(&r, 4));
  rm_api_match m;
  assert_int_equal(match(&r, "GET", "/api/v1/runs/r%201/annotations", &m), RM_API_MATCHED);
  assert_int_equal(m.nparams, 1);
  assert_string_equal(m.params[0].name, "id");
  assert_string_equal(m.params[0].value, "r 1");
  rm_api_match_free(&m);
  assert_int_equal(match(&r, "GET", "/api/v1/runs/latest/annotations", &m), RM_API_MATCHED);
  assert_int_equal(m.nparams, 0);
  rm_api_match_free(&m);
  assert_int_equal(match(&r, "POST", "/api/v1/runs/latest/annotations", &m), RM_API_MATCHED);
  assert_string_equal(m.params[0].value, "latest");
  rm_api_match_free(&m);
  assert_int_equal(match(&r, "HEAD", "/api/v1/runs/7/annotations", &m), RM_API_MATCHED);
  assert_string_equal(m.route->method, "GET");
  rm_api_match_free(&m);
  assert_int_equal(match(&r, "DELETE", "/api/v1/runs/7/annotations", &m), RM_API_WRONG_METHOD);
  assert_string_equal(m.allow, "GET, HEAD, POST");
  rm_api_match_free(&m);
  assert_int_equal(match(&r, "GET", "/api/v1/runs//annotations", &m), RM_API_NO_MATCH);
  assert_int_equal(match(&r, "GET", "/api/v1/runs/%00/annotations", &m), RM_API_BAD_PATH);
  assert_int_equal(match(&r, "GET", "/api/v1/runs/%4/annotations", &m), RM_API_BAD_PATH);
  assert_int_equal(match(&r, "GET", "/", &m), RM_API_MATCHED);
  assert_int_equal(match(&r, "GET", "/api", &m), RM_API_NO_MATCH);
  rm_api_router_free(&r);
}

static void test_metrics_text_format_and_validation(void **state) {
  fx *f = *state;
  rm_metrics m = RM_METRICS_INIT;
  rm_metric *c = rm_metrics_counter(&m, "jobs_total", "Jobs done.\nSecond \\ line",
                                    (const char *[]){"kind", NULL});
  rm_metric *g = rm_metrics_gauge(&m, "queue_depth", "Queued runs.", NULL);
  rm_metric *h = rm_metrics_histogram(&m, "step_seconds", "Step time.", (const char *[]){"route", NULL},
                                      (double[]){0.1, 1}, 2);
  assert_non_null(c);
  assert_non_null(g);
  assert_non_null(h);
  assert_int_equal(rm_metric_add(c, (const char *[]){"a\"b\\c\nd"}, 2), 0);
  assert_int_equal(rm_metric_add(c, (const char *[]){"plain"}, 1), 0);
  assert_int_equal(rm_metric_add(c, (const char *[]){"plain"}, 0.5), 0);
  assert_int_equal(rm_metric_set(g, NULL, 0.25), 0);
  assert_int_equal(rm_metric_observe(h, (const char *[]){"/x"}, 0.0625), 0);
  assert_int_equal(rm_metric_observe(h, (const char *[]){"/x"}, 0.5), 0);
  assert_int_equal(rm_metric_observe(h, (const char *[]){"/x"}, 3), 0);
  /* misuse */
  assert_int_equal(rm_metric_add(c, (const char *[]){"x"}, -1), RM_EINVAL);
  assert_int_equal(rm_metric_add(c, NULL, 1), RM_EINVAL);
  assert_int_equal(rm_metric_observe(c, (const char *[]){"x"}, 1), RM_EINVAL);
  assert_null(rm_metrics_counter(&m, "jobs_total", "again", NULL));
  assert_null(rm_metrics_counter(&m, "bad-name", "x", NULL));
  assert_null(rm_metrics_gauge(&m, "g2", "x", (const char *[]){"__reserved", NULL}));
  assert_null(rm_metrics_histogram(&m, "h2", "x", (const char *[]){"le", NULL}, NULL, 0));
  assert_null(rm_metrics_histogram(&m, "h3", "x", NULL, (double[]){1, 1}, 2));
  assert_true(rm_metric_get(c, (const char *[]){"plain"}) == 1.5);
  assert_true(rm_metric_get(h, (const char *[]){"/x"}) == 3);
  rm_buf out = RM_BUF_INIT;
  assert_int_equal(rm_metrics_render(&m, &out), 0);
  assert_string_equal(out.data,
                      "# HELP jobs_total Jobs done.\\nSecond \\\\ line\n"
                      "# TYPE jobs_total counter\n"
                      "jobs_total{kind=\"a\\\"b\\\\c\\nd\"} 2\n"
                      "jobs_total{kind=\"plain\"} 1.5\n"
                      "# HELP queue_depth Queued runs.\n"
                      "# TYPE queue_depth gauge\n"
                      "queue_depth 0.25\n"
                      "# HELP step_seconds Step time.\n"
                      "# TYPE step_seconds histogram\n"
                      "step_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"
                      "step_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
                      "step_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
                      "step_seconds_sum{route=\"/x\"} 3.5625\n"
                      "step_seconds_count{route=\"/x\"} 3\n");
  promtool_accepts(f, out.data);
  rm_buf_free(&out);
  rm_metrics_free(&m);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rm_log_configure(RM_LOG_WARN, RM_LOG_TEXT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_router_patterns_precedence_and_listing),
      cmocka_unit_test_setup_teardown(test_metrics_text_format_and_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_params_query_and_pagination, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_bodies_malformed_and_unknown_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_over_limit_gets_413_envelope, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_answer_and_client_gone_before_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_id_echoed_or_generated_and_logged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_static_files_and_spa_fallback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics_health_and_readiness, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_serves_http1_only_by_default, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_client_certificate_is_verified, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http2_only_when_asked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_graceful_stop_finishes_request_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_deadline_aborts_stuck_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_after_deadline_without_hook_is_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_closes_idle_keepalive_connections_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_listens_on_ipv6, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_errors_name_the_option, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
