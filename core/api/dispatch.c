/* The h2o side of request handling: the dispatcher every request enters,
 * the filter that turns h2o's own plain-text errors (413, 400, 417) into
 * the JSON envelope, and the logger that writes the access line and
 * counts the request once h2o is done with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api/response.h"
#include "api/server_internal.h"
#include "util/log.h"

#define ENV_ROUTE "RM_ROUTE"
#define JSON_TYPE "application/json; charset=utf-8"

const char rm__route_static[] = "static";
const char rm__route_unmatched[] = "unmatched";

struct dispatcher {
  h2o_handler_t super;
  rm_api_server *srv;
};

struct access_logger {
  h2o_logger_t super;
  rm_api_server *srv;
};

struct error_filter {
  h2o_filter_t super;
  rm_api_server *srv;
};

/* Replaces the body of an h2o error with the envelope built beforehand. */
struct envelope_ostream {
  h2o_ostream_t super;
  h2o_iovec_t body;
  bool sent;
};

void rm__set_route_label(h2o_req_t *req, const char *label) {
  h2o_iovec_t *v = h2o_req_getenv(req, H2O_STRLIT(ENV_ROUTE), 1);
  *v = h2o_iovec_init(label, strlen(label));
}

static void on_hook_dispose(void *p) {
  struct rm__hook *h = p;
  if (h->ctx) { /* h2o dropped the request before it was answered */
    rm_api_req *r = h->ctx;
    r->h2o = NULL;
    rm__req_abort(r);
  }
  rm__conn_release(h->conn);
}

struct rm__hook *rm__hook_new(rm_api_server *s, h2o_req_t *req, struct rm__conn *conn) {
  struct rm__hook *h = h2o_mem_alloc_shared(&req->pool, sizeof *h, on_hook_dispose);
  h->srv = s;
  h->conn = conn;
  h->ctx = NULL;
  if (conn) conn->busy++;
  return h;
}

/* Answers a request that no handler takes (404, 405, 400) or that could
 * not get a context. */
static void answer_unrouted(rm_api_server *s, h2o_req_t *req, struct rm__hook *hook,
                            const char *id, enum rm_api_code code, const char *message,
                            const char *allow) {
  bool bad_query;
  rm__set_route_label(req, rm__route_unmatched);
  rm_api_req *r = rm__req_new(s, req, hook, id, &bad_query);
  if (!r) {
    h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
    return;
  }
  r->allow = allow ? rm__req_strndup(r, allow, strlen(allow)) : NULL;
  rm_api_respond_error(r, code, message);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  rm_api_server *s = ((struct dispatcher *)self)->srv;
  if (s->stopping) req->http1_is_persistent = 0;
  struct rm__hook *hook = rm__hook_new(s, req, rm__conn_of(req));
  char id[RM__REQUEST_ID_MAX + 1];
  rm__request_id(req, id);

  /* Longer than any route's method: matches none (405 or 404). */
  char method[17] = "";
  if (req->method.len < sizeof method) memcpy(method, req->method.base, req->method.len);
  method[req->method.len < sizeof method ? req->method.len : 0] = '\0';
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  if (plen == 0 || req->path.base[0] != '/') { /* "*", or absolute-form meant for a proxy */
    answer_unrouted(s, req, hook, id, RM_API_BAD_REQUEST, "the request target must be a path", NULL);
    return 0;
  }
  rm_api_match m;
  int res = rm_api_router_match(&s->router, method, req->path.base, plen, &m);
  if (res == RM_API_NO_MATCH && rm__static_wants(s, req->path.base, plen) &&
      (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
    /* h2o's file handler (next on this path) answers, or the fallback
     * after it; both keep the headers set here. */
    rm__set_route_label(req, rm__route_static);
    rm__add_header(req, "x-request-id", id);
    rm__add_header(req, "x-content-type-options", "nosniff");
    return -1;
  }
  if (res == RM_API_NO_MATCH) {
    answer_unrouted(s, req, hook, id, RM_API_NO_ROUTE, NULL, NULL);
    return 0;
  }
  if (res == RM_API_WRONG_METHOD) {
    answer_unrouted(s, req, hook, id, RM_API_METHOD_NOT_ALLOWED, NULL, m.allow);
    return 0;
  }
  if (res == RM_API_BAD_PATH || res < 0) {
    answer_unrouted(s, req, hook, id, res < 0 ? RM_API_INTERNAL : RM_API_BAD_REQUEST,
                    res < 0 ? NULL : "malformed percent-encoding in the path", NULL);
    return 0;
  }
  const rm_api_route *route = m.route;
  rm__set_route_label(req, route->pattern);
  bool bad_query;
  rm_api_req *r = rm__req_new(s, req, hook, id, &bad_query);
  if (!r) {
    rm_api_match_free(&m);
    h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
    return 0;
  }
  if (rm__req_take_params(r, &m) != 0) {
    rm_api_respond_error(r, RM_API_INTERNAL, "out of memory");
    return 0;
  }
  if (bad_query) {
    rm_api_respond_error(r, RM_API_INVALID_QUERY, "malformed percent-encoding in the query");
    return 0;
  }
  route->fn(r, route->ud);
  return 0;
}

/* ---- h2o's own errors ----------------------------------------------- */

static void envelope_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                          h2o_send_state_t state) {
  struct envelope_ostream *o = (struct envelope_ostream *)self;
  (void)bufs;
  (void)n;
  /* h2o's error answers come in one final call; should one come in
   * pieces, the envelope goes with the first and the rest is dropped. */
  bool first = !o->sent;
  o->sent = true;
  bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
  h2o_ostream_send_next(self, req, &o->body, first && !head ? 1 : 0, state);
}

/* Every answer carries X-Request-ID; the ones h2o makes on its own
 * (errors, the file handler's redirects) get it here, and its errors get
 * the envelope instead of their plain-text body. */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot) {
  rm_api_server *s = ((struct error_filter *)self)->srv;
  if (h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) >= 0) {
    h2o_setup_next_ostream(req, slot);
    return;
  }
  char id[RM__REQUEST_ID_MAX + 1];
  rm__request_id(req, id);
  if (!h2o_req_getenv(req, H2O_STRLIT(ENV_ROUTE), 0)) rm__set_route_label(req, rm__route_unmatched);
  if (req->res.status >= 400) {
    char msg[96];
    int status = req->res.status;
    enum rm_api_code code = rm_api_code_for_status(status);
    const char *message = rm_api_code_status(code) == status ? rm_api_code_message(code) : req->res.reason;
    if (status == 413) {
      snprintf(msg, sizeof msg, "request body is larger than %zu bytes", s->opts.max_body_bytes);
      message = msg;
    }
    size_t len = 0;
    char *body = rm_api_envelope(code, message, NULL, NULL, &len);
    if (body) {
      struct envelope_ostream *o = (void *)h2o_add_ostream(req, sizeof *o, slot);
      o->super.do_send = envelope_send;
      o->body = rm__pool_take(req, body, len);
      o->sent = false;
      slot = &o->super.next;
      memset(&req->res.headers, 0, sizeof req->res.headers);
      rm__add_header(req, "content-type", JSON_TYPE);
      req->res.content_length = len;
    }
  }
  rm__add_header(req, "x-request-id", id);
  rm__add_header(req, "x-content-type-options", "nosniff");
  h2o_setup_next_ostream(req, slot);
}

/* ---- access log and metrics ----------------------------------------- */

static const char *method_label(h2o_iovec_t m) {
  static const char *known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (h2o_memis(m.base, m.len, known[i], strlen(known[i]))) return known[i];
  return "OTHER";
}

static void log_access(h2o_logger_t *self, h2o_req_t *req) {
  rm_api_server *s = ((struct access_logger *)self)->srv;
  struct timeval now;
  gettimeofday(&now, NULL);
  double secs = h2o_timeval_is_null(&req->timestamps.request_begin_at)
                    ? 0
                    : (double)h2o_timeval_subtract(&req->timestamps.request_begin_at, &now) / 1e6;
  if (secs < 0) secs = 0;
  h2o_iovec_t *route = h2o_req_getenv(req, H2O_STRLIT(ENV_ROUTE), 0);
  char route_s[256], status_s[8], ms[32], id[RM__REQUEST_ID_MAX + 1] = "";
  snprintf(route_s, sizeof route_s, "%.*s", route ? (int)route->len : 9,
           route ? route->base : rm__route_unmatched);
  snprintf(status_s, sizeof status_s, "%d", req->res.status);
  snprintf(ms, sizeof ms, "%.3f", secs * 1000);
  ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
  if (i >= 0)
    snprintf(id, sizeof id, "%.*s", (int)req->res.headers.entries[i].value.len,
             req->res.headers.entries[i].value.base);
  const char *method = method_label(req->input.method);
  /* The path without its query, which may carry tokens. */
  size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
  char *path = h2o_mem_alloc_pool(&req->pool, plen + 1);
  memcpy(path, req->input.path.base, plen);
  path[plen] = '\0';
  const char *kv[] = {"method", method, "path", path, "status", status_s, "duration_ms", ms,
                      "request_id", id, "route", route_s, NULL};
  rm_logkv(RM_LOG_INFO, "http", "request", kv);
  if (s->m_requests) {
    const char *labels[] = {method, route_s, status_s};
    rm_metric_add(s->m_requests, labels, 1);
    rm_metric_observe(s->m_latency, labels, secs);
  }
}

int rm__dispatch_setup(rm_api_server *s, h2o_hostconf_t *host) {
  struct dispatcher *d = (void *)h2o_create_handler(s->pathconf, sizeof *d);
  d->super.on_req = on_req;
  d->srv = s;
  /* Errors h2o sends before a handler runs use the host's fallback path. */
  h2o_pathconf_t *paths[] = {s->pathconf, &host->fallback_path};
  for (size_t i = 0; i < 2; i++) {
    struct error_filter *f = (void *)h2o_create_filter(paths[i], sizeof *f);
    f->super.on_setup_ostream = on_setup_ostream;
    f->srv = s;
    struct access_logger *l = (void *)h2o_create_logger(paths[i], sizeof *l);
    l->super.log_access = log_access;
    l->srv = s;
  }
  return 0;
}
