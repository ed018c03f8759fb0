/* The request context of the server's handlers: answering, store errors,
 * body checks and the audit trail. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/response.h"
#include "serve/serve.h"
#include "util/err.h"
#include "util/log.h"

void rm_hctx_free(rm_hctx *c) {
  if (!c) return;
  if (c->req) rm_api_req_on_abort(c->req, NULL, NULL);
  json_decref(c->user);
  json_decref(c->cred);
  json_decref(c->doc);
  json_decref(c->doc2);
  free(c->id);
  if (c->text) {
    memset(c->text, 0, strlen(c->text));
    free(c->text);
  }
  if (c->text2) {
    memset(c->text2, 0, strlen(c->text2));
    free(c->text2);
  }
  free(c);
}

void rm_hctx_error(rm_hctx *c, enum rm_api_code code, const char *msg) {
  rm_api_req *req = c->req;
  c->req = NULL;
  rm_hctx_free(c);
  if (req) rm_api_respond_error(req, code, msg);
}

void rm_hctx_ok(rm_hctx *c, int status, json_t *data) {
  rm_api_req *req = c->req;
  c->req = NULL;
  rm_hctx_free(c);
  if (req) rm_api_respond(req, status, data);
  else json_decref(data);
}

void rm_hctx_store_error(rm_hctx *c, int err, const char *errmsg) {
  if (err == RM_ENOTFOUND) rm_hctx_error(c, RM_API_NOT_FOUND, errmsg);
  else if (err == RM_ECONFLICT) rm_hctx_error(c, RM_API_CONFLICT, errmsg);
  else if (err == RM_EINVAL) rm_hctx_error(c, RM_API_INVALID, errmsg);
  else {
    rm_log_error("api", "store: %s", errmsg);
    rm_hctx_error(c, RM_API_INTERNAL, "the store failed");
  }
}

bool rm_hctx_done_if_failed(rm_hctx *c, int err, const char *errmsg, json_t *res) {
  if (!err && c->req) return false;
  json_decref(res);
  if (!c->req) rm_hctx_free(c);
  else rm_hctx_store_error(c, err, errmsg);
  return true;
}

const char *rm_hctx_user_name(const rm_hctx *c) { return json_string_value(json_object_get(c->user, "name")); }
const char *rm_hctx_user_id(const rm_hctx *c) { return json_string_value(json_object_get(c->user, "id")); }
const char *rm_hctx_peer(const rm_hctx *c) { return c->req ? rm_api_req_peer(c->req) : NULL; }

/* Answers with what a request handler's helper left in the request (it
 * answered already) and frees the context. */
static void gone(rm_hctx *c) {
  c->req = NULL;
  rm_hctx_free(c);
}

json_t *rm_hctx_body(rm_hctx *c, const char *const *allowed) {
  json_t *b = rm_api_req_json(c->req);
  if (!b) {
    gone(c);
    return NULL;
  }
  if (!json_is_object(b)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$", "expected an object");
    rm_api_respond_details(c->req, RM_API_INVALID, NULL, &d);
    gone(c);
    return NULL;
  }
  if (!rm_api_req_only_fields(c->req, b, "$", allowed)) {
    gone(c);
    return NULL;
  }
  return b;
}

bool rm_hctx_empty_body(rm_hctx *c) {
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  if (len == 0) return true;
  static const char *const none[] = {NULL};
  return rm_hctx_body(c, none) != NULL;
}

static void audit_done(void *ud, int err, const char *errmsg, json_t *res) {
  (void)ud;
  if (err) rm_log_warn("api", "audit write failed: %s", errmsg);
  json_decref(res);
}

void rm_serve_audit(rm_serve *s, const char *actor, const char *action, const char *kind, const char *id,
                    const char *ip, json_t *before, json_t *after) {
  json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:o?, s:o?}", "actor", actor ? actor : "", "action", action,
                        "object_kind", kind, "object_id", id, "ip", ip && *ip ? ip : NULL, "before", before, "after",
                        after);
  if (!e) return;
  rm_store_audit(s->store, e, audit_done, NULL);
  json_decref(e);
}

void rm_hctx_audit(rm_hctx *c, const char *action, const char *kind, const char *id, json_t *before,
                   json_t *after) {
  rm_serve_audit(c->s, rm_hctx_user_name(c), action, kind, id, rm_hctx_peer(c), before, after);
}

void rm_hctx_invalid(rm_hctx *c, enum rm_api_code code, rm_api_details *d) {
  if (c->req) rm_api_respond_details(c->req, code, NULL, d);
  else rm_api_details_free(d);
  c->req = NULL;
  rm_hctx_free(c);
}

bool rm_hctx_page(rm_hctx *c, long def_size, rm_api_page *pg) {
  if (rm_api_req_page(c->req, def_size, 500, pg)) return true;
  c->req = NULL; /* answered */
  rm_hctx_free(c);
  return false;
}

json_t *rm_hctx_list_query(rm_hctx *c, long def_size, rm_hctx_param_fn param, void *ud) {
  rm_api_page pg;
  if (!rm_hctx_page(c, def_size, &pg)) return NULL;
  json_t *q = json_pack("{s:I, s:I}", "page", (json_int_t)pg.page, "page_size", (json_int_t)pg.page_size);
  rm_api_details d = RM_API_DETAILS_INIT;
  for (size_t i = 0, n = rm_api_req_query_count(c->req); q && i < n; i++) {
    const char *name, *value;
    rm_api_req_query_at(c->req, i, &name, &value);
    if (strcmp(name, "page") == 0 || strcmp(name, "page_size") == 0) continue;
    char path[200];
    snprintf(path, sizeof path, "query.%.150s", name);
    param(q, &d, path, name, value, ud);
  }
  if (q && !rm_api_details_count(&d)) return q;
  json_decref(q);
  if (!rm_api_details_count(&d)) rm_api_details_add(&d, "query", "out of memory");
  rm_hctx_invalid(c, RM_API_INVALID_QUERY, &d);
  return NULL;
}

int64_t rm__serve_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
