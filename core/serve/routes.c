/* The route table: every API route enters here, gets its context and,
 * unless public, its authenticated caller before the handler runs. */
#include <stdlib.h>
#include <string.h>

#include "api/response.h"
#include "serve/serve.h"
#include "util/err.h"

struct rm_serve_route {
  rm_serve *s;
  const rm_route_def *def;
};

static void ctx_aborted(rm_api_req *r, void *ud) {
  (void)r;
  ((rm_hctx *)ud)->req = NULL;
}

static void enter(rm_api_req *req, void *ud) {
  struct rm_serve_route *rt = ud;
  rm_hctx *c = calloc(1, sizeof *c);
  if (!c) {
    rm_api_respond_error(req, RM_API_INTERNAL, "out of memory");
    return;
  }
  c->s = rt->s;
  c->req = req;
  c->route = rt->def;
  rm_api_req_on_abort(req, ctx_aborted, c);
  const char *id = rm_api_req_param(req, "id");
  if (id && !(c->id = strdup(id))) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  if (rt->def->access == RM_ACCESS_PUBLIC) rt->def->fn(c);
  else rm_serve_authenticate(c, rt->def->fn);
}

int rm_serve_add_routes(rm_serve *s, const rm_route_def *defs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s->nroutes == s->caproutes) {
      size_t cap = s->caproutes ? s->caproutes * 2 : 64;
      struct rm_serve_route **r = realloc(s->routes, cap * sizeof *r);
      if (!r) return RM_ENOMEM;
      s->routes = r;
      s->caproutes = cap;
    }
    struct rm_serve_route *slot = malloc(sizeof *slot);
    if (!slot) return RM_ENOMEM;
    slot->s = s;
    slot->def = &defs[i];
    int rc = rm_api_server_route(&s->srv, defs[i].method, defs[i].pattern, enter, slot);
    if (rc) {
      free(slot);
      return rc;
    }
    s->routes[s->nroutes++] = slot;
  }
  return 0;
}

json_t *rm_serve_routes_json(const rm_serve *s) {
  json_t *a = json_array();
  static const char *const access[] = {"public", "user", "role"};
  for (size_t i = 0; a && i < rm_api_router_count(&s->srv.router); i++) {
    const rm_api_route *rt = rm_api_router_at(&s->srv.router, i);
    const rm_route_def *d = rt->fn == enter ? ((const struct rm_serve_route *)rt->ud)->def : NULL;
    json_t *r = json_pack("{s:s, s:s, s:s}", "method", rt->method, "path", rt->pattern, "access",
                          access[d ? d->access : RM_ACCESS_PUBLIC]);
    if (r && d && d->access == RM_ACCESS_ROLE) {
      json_object_set_new(r, "module", json_string(rm_rbac_module_name(d->module)));
      json_object_set_new(r, "action", json_string(rm_rbac_action_name(d->action)));
    }
    json_array_append_new(a, r);
  }
  return a;
}

void rm_serve_routes_free(rm_serve *s) {
  for (size_t i = 0; i < s->nroutes; i++) free(s->routes[i]);
  free(s->routes);
  s->routes = NULL;
  s->nroutes = s->caproutes = 0;
}
