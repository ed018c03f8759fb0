/* The request context: a snapshot of the h2o request that outlives it
 * when needed (an async handler may read its parameters after the client
 * went away), and the helpers that read the body and query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api/response.h"
#include "api/server_internal.h"
#include "util/err.h"
#include "util/text.h"

/* The context's strings live in a list of chunks freed with it. */
struct rm__chunk {
  rm__chunk *next;
  size_t used, cap;
  char data[];
};

static void *arena_alloc(rm_api_req *r, size_t n) {
  n = (n + 15) & ~(size_t)15;
  rm__chunk *c = r->arena;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > 4000 ? n : 4000;
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->used = 0;
    c->cap = cap;
    c->next = r->arena;
    r->arena = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

char *rm__req_strndup(rm_api_req *r, const char *s, size_t n) {
  char *p = arena_alloc(r, n + 1);
  if (p) {
    if (n) memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static bool id_is_sane(const char *s, size_t n) {
  if (n == 0 || n > RM__REQUEST_ID_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == ':' || c == '-'))
      return false;
  }
  return true;
}

void rm__request_id(h2o_req_t *req, char out[RM__REQUEST_ID_MAX + 1]) {
  static const char *names[] = {"x-request-id", "requestid"};
  for (size_t k = 0; k < 2; k++) {
    ssize_t i = h2o_find_header_by_str(&req->headers, names[k], strlen(names[k]), -1);
    if (i < 0) continue;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (id_is_sane(v.base, v.len)) {
      memcpy(out, v.base, v.len);
      out[v.len] = '\0';
      return;
    }
  }
  if (rm_uuid_v4(out) != 0) /* no randomness: still unique in this process */
    snprintf(out, RM__REQUEST_ID_MAX + 1, "req-%016llx", (unsigned long long)uv_hrtime());
}

static void peer_name(h2o_req_t *req, char *out, size_t n) {
  struct sockaddr_storage ss;
  out[0] = '\0';
  if (!req->conn->callbacks->get_peername ||
      req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
    return;
  if (ss.ss_family == AF_INET) uv_ip4_name((struct sockaddr_in *)&ss, out, n);
  else if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, out, n);
}

/* Splits the query into decoded name/value pairs. RM_EPARSE for a broken
 * escape, RM_ENOMEM. */
static int parse_query(rm_api_req *r, const char *q, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i <= n; i++)
    if (i == n || q[i] == '&') count++;
  r->query = arena_alloc(r, count * sizeof *r->query);
  if (!r->query) return RM_ENOMEM;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && q[i] != '&') continue;
    const char *p = q + start;
    size_t len = i - start;
    start = i + 1;
    if (len == 0) continue;
    const char *eq = memchr(p, '=', len);
    size_t nlen = eq ? (size_t)(eq - p) : len;
    int oom = 0, oom2 = 0;
    char *name = rm_api_pct_decode(p, nlen, 1, &oom);
    char *value = eq ? rm_api_pct_decode(eq + 1, len - nlen - 1, 1, &oom2) : strdup("");
    bool no_memory = oom || oom2 || (!eq && !value); /* strdup("") only fails so */
    int rc = !name || !value ? (no_memory ? RM_ENOMEM : RM_EPARSE) : 0;
    if (rc == 0) {
      r->query[r->nquery].name = rm__req_strndup(r, name, strlen(name));
      r->query[r->nquery].value = rm__req_strndup(r, value, strlen(value));
      if (!r->query[r->nquery].name || !r->query[r->nquery].value) rc = RM_ENOMEM;
      else r->nquery++;
    }
    free(name);
    free(value);
    if (rc) return rc;
  }
  return 0;
}

static int copy_headers(rm_api_req *r, const h2o_headers_t *h) {
  r->headers = arena_alloc(r, (h->size ? h->size : 1) * sizeof *r->headers);
  if (!r->headers) return RM_ENOMEM;
  for (size_t i = 0; i < h->size; i++) {
    const h2o_header_t *e = &h->entries[i];
    rm__kv *kv = &r->headers[r->nheaders];
    kv->name = rm__req_strndup(r, e->name->base, e->name->len);
    kv->value = rm__req_strndup(r, e->value.base, e->value.len);
    if (!kv->name || !kv->value) return RM_ENOMEM;
    r->nheaders++;
  }
  return 0;
}

rm_api_req *rm__req_new(rm_api_server *s, h2o_req_t *req, struct rm__hook *hook,
                        const char *id, bool *bad_query) {
  *bad_query = false;
  rm_api_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  r->method = rm__req_strndup(r, req->method.base, req->method.len);
  r->path = rm__req_strndup(r, req->path.base, plen);
  r->id = rm__req_strndup(r, id, strlen(id));
  r->body = req->entity.base ? rm__req_strndup(r, req->entity.base, req->entity.len)
                             : rm__req_strndup(r, "", 0);
  r->body_len = req->entity.base ? req->entity.len : 0;
  int rc = r->method && r->path && r->id && r->body ? 0 : RM_ENOMEM;
  if (rc == 0) rc = copy_headers(r, &req->headers);
  if (rc == 0 && req->query_at != SIZE_MAX)
    rc = parse_query(r, req->path.base + plen + 1, req->path.len - plen - 1);
  if (rc == RM_EPARSE) {
    *bad_query = true;
    rc = 0;
  }
  if (rc) {
    rm__req_free(r);
    return NULL;
  }
  peer_name(req, r->peer, sizeof r->peer);
  r->srv = s;
  r->h2o = req;
  r->hook = hook;
  hook->ctx = r;
  r->next = s->pending;
  if (s->pending) s->pending->prev = r;
  s->pending = r;
  return r;
}

int rm__req_take_params(rm_api_req *r, rm_api_match *m) {
  int rc = 0;
  r->route = m->route;
  for (size_t i = 0; i < m->nparams; i++) {
    r->params[i].name = m->params[i].name;
    r->params[i].value = rm__req_strndup(r, m->params[i].value, strlen(m->params[i].value));
    if (!r->params[i].value) rc = RM_ENOMEM;
    else r->nparams++;
  }
  rm_api_match_free(m);
  return rc;
}

void rm__req_detach(rm_api_req *r) {
  if (r->srv) {
    if (r->prev) r->prev->next = r->next;
    else r->srv->pending = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
  }
  if (r->hook) r->hook->ctx = NULL;
  r->hook = NULL;
  r->h2o = NULL;
  r->srv = NULL;
}

void rm__req_abort(rm_api_req *r) {
  rm_api_abort_fn fn = r->abort_fn;
  if (fn) {
    r->aborting = true;
    fn(r, r->abort_ud);
    r->aborting = false;
  }
  bool ours = fn || r->answered; /* else the handler's answer frees r */
  if (!r->answered && r->h2o) {
    char *body = rm_api_envelope(RM_API_UNAVAILABLE, "the server gave up on this request", NULL,
                                 NULL, NULL);
    rm__send(r, 503, "application/json; charset=utf-8", body, body ? strlen(body) : 0);
    r->answered = false; /* the handler has yet to answer, which frees r */
  }
  rm__req_detach(r);
  if (ours) rm__req_free(r);
}

void rm__req_free(rm_api_req *r) {
  if (!r) return;
  rm__req_detach(r);
  if (r->user_free && r->user) r->user_free(r->user);
  json_decref(r->json);
  for (size_t i = 0; i < r->nresp; i++) {
    free((char *)r->resp_headers[i].name);
    free((char *)r->resp_headers[i].value);
  }
  free(r->resp_headers);
  for (rm__chunk *c = r->arena, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(r);
}

const char *rm_api_req_method(const rm_api_req *r) { return r->method; }
const char *rm_api_req_path(const rm_api_req *r) { return r->path; }
const char *rm_api_req_id(const rm_api_req *r) { return r->id; }
const char *rm_api_req_peer(const rm_api_req *r) { return r->peer; }
const rm_api_route *rm_api_req_route(const rm_api_req *r) { return r->route; }

const char *rm_api_req_param(const rm_api_req *r, const char *name) {
  for (size_t i = 0; i < r->nparams; i++)
    if (strcmp(r->params[i].name, name) == 0) return r->params[i].value;
  return NULL;
}

const char *rm_api_req_query(const rm_api_req *r, const char *name) {
  for (size_t i = 0; i < r->nquery; i++)
    if (strcmp(r->query[i].name, name) == 0) return r->query[i].value;
  return NULL;
}

size_t rm_api_req_query_count(const rm_api_req *r) { return r->nquery; }

void rm_api_req_query_at(const rm_api_req *r, size_t i, const char **name, const char **value) {
  *name = i < r->nquery ? r->query[i].name : NULL;
  *value = i < r->nquery ? r->query[i].value : NULL;
}

const char *rm_api_req_header(const rm_api_req *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
  return NULL;
}

const char *rm_api_req_body(const rm_api_req *r, size_t *len) {
  if (len) *len = r->body_len;
  return r->body;
}

json_t *rm_api_req_json(rm_api_req *r) {
  if (r->json) return r->json;
  rm_api_details d = RM_API_DETAILS_INIT;
  if (r->body_len == 0) {
    rm_api_details_add(&d, "$", "a JSON body is required");
    rm_api_respond_details(r, RM_API_MALFORMED_JSON, "request body is empty; expected JSON", &d);
    return NULL;
  }
  json_error_t e;
  r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (r->json) return r->json;
  char msg[JSON_ERROR_TEXT_LENGTH + 64];
  snprintf(msg, sizeof msg, "request body is not valid JSON: %s at line %d, column %d", e.text,
           e.line, e.column);
  if (rm_api_details_add(&d, "$", "%s", e.text) == 0) {
    json_t *last = json_array_get(d.list, json_array_size(d.list) - 1);
    json_object_set_new(last, "line", json_integer(e.line));
    json_object_set_new(last, "column", json_integer(e.column));
    json_object_set_new(last, "position", json_integer(e.position));
  }
  rm_api_respond_details(r, RM_API_MALFORMED_JSON, msg, &d);
  return NULL;
}

bool rm_api_req_only_fields(rm_api_req *r, const json_t *obj, const char *path,
                            const char *const *allowed) {
  rm_api_details d = RM_API_DETAILS_INIT;
  int n = rm_api_details_unknown_fields(&d, obj, path, allowed);
  if (n == 0) return true;
  if (n < 0) {
    rm_api_details_free(&d);
    rm_api_respond_error(r, RM_API_INTERNAL, NULL);
    return false;
  }
  rm_api_respond_details(r, RM_API_UNKNOWN_FIELDS, NULL, &d);
  return false;
}

/* A query integer in [min, max]; def when absent. false when malformed. */
static bool query_long(const rm_api_req *r, const char *name, long min, long max, long def,
                       long *out) {
  const char *v = rm_api_req_query(r, name);
  *out = def;
  if (!v) return true;
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < min || x > max) return false;
  *out = x;
  return true;
}

bool rm_api_req_page(rm_api_req *r, long def_size, long max_size, rm_api_page *out) {
  rm_api_details d = RM_API_DETAILS_INIT;
  if (!query_long(r, "page", 1, 1000000000L, 1, &out->page))
    rm_api_details_add(&d, "query.page", "must be an integer from 1");
  if (!query_long(r, "page_size", 1, max_size, def_size, &out->page_size))
    rm_api_details_add(&d, "query.page_size", "must be an integer from 1 to %ld", max_size);
  if (rm_api_details_count(&d) == 0) {
    rm_api_details_free(&d);
    return true;
  }
  rm_api_respond_details(r, RM_API_INVALID_QUERY, NULL, &d);
  return false;
}

void rm_api_req_set_user(rm_api_req *r, void *user, void (*free_fn)(void *)) {
  if (r->user_free && r->user && r->user != user) r->user_free(r->user);
  r->user = user;
  r->user_free = free_fn;
}

void *rm_api_req_user(const rm_api_req *r) { return r->user; }

void rm_api_req_on_abort(rm_api_req *r, rm_api_abort_fn fn, void *ud) {
  r->abort_fn = fn;
  r->abort_ud = ud;
}
