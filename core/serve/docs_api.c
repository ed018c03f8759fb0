/* The API's description of itself, both public: GET /openapi.json, the
 * hand-written docs/openapi.json compiled into the binary, with each
 * operation's permission filled in from the route table and the role
 * table (so who may call an endpoint is what the code enforces, never a
 * copy); and GET /docs, an embedded HTML page (no outside resources) that
 * browses that document.
 *
 * Each operation gets:
 *   x-restmon-permission  {"module", "action"} for a role route, "any
 *                         signed-in user" for a route on one's own
 *                         account, "public" for a route without
 *                         credentials;
 *   x-restmon-roles       the role ids that may call it (absent when public);
 *   description           one more paragraph saying the same in words.
 * A route the document lacks stays undocumented here; the contract test
 * (tests/integration/test_api_contract.py) fails on it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/buf.h"
#include "util/embedded.h"
#include "util/log.h"

#define OPENAPI_FILE "docs/openapi.json"
#define DOCS_PAGE_FILE "docs/api-browser.html"
#define JSON_TYPE "application/json; charset=utf-8"
#define HTML_TYPE "text/html; charset=utf-8"
/* The page's script and style are inline; it only talks to this server. */
#define DOCS_CSP                                                                                             \
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "         \
  "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The role ids allowed action on module (new array), in role order. */
static json_t *roles_allowed(enum rm_module m, enum rm_action a) {
  json_t *roles = json_array();
  for (int r = RM_ROLE_NONE + 1; roles && r < RM_ROLE_COUNT; r++)
    if (rm_rbac_allowed((enum rm_role)r, m, a)) json_array_append_new(roles, json_string(rm_rbac_role_name(r)));
  return roles;
}

static json_t *every_role(void) {
  json_t *roles = json_array();
  for (int r = RM_ROLE_NONE + 1; roles && r < RM_ROLE_COUNT; r++)
    json_array_append_new(roles, json_string(rm_rbac_role_name(r)));
  return roles;
}

/* "admin, full_designer" into b; "no role" when roles is empty. */
static int join_roles(rm_buf *b, const json_t *roles) {
  size_t i;
  json_t *r;
  int rc = json_array_size(roles) ? 0 : rm_buf_puts(b, "no role");
  json_array_foreach(roles, i, r) rc |= rm_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(r));
  return rc;
}

/* Appends "\n\n" + text to op's description (or sets it). */
static int add_paragraph(json_t *op, const char *text) {
  const char *d = json_string_value(json_object_get(op, "description"));
  rm_buf b = RM_BUF_INIT;
  int rc = d && *d ? rm_buf_printf(&b, "%s\n\n", d) : 0;
  rc |= rm_buf_puts(&b, text);
  if (!rc) rc = json_object_set_new(op, "description", json_string(b.data));
  rm_buf_free(&b);
  return rc;
}

/* Fills in one operation from its route {method, path, access, module?,
 * action?}. 0, or -1 when out of memory. */
static int annotate(json_t *op, const json_t *route) {
  const char *access = json_string_value(json_object_get(route, "access"));
  const char *mod = json_string_value(json_object_get(route, "module"));
  const char *act = json_string_value(json_object_get(route, "action"));
  rm_buf text = RM_BUF_INIT;
  json_t *roles = NULL, *perm = NULL;
  int rc = 0;
  enum rm_module m;
  enum rm_action a;
  if (strcmp(access, "role") == 0 && mod && act && rm_rbac_module_parse(mod, &m) == 0 &&
      rm_rbac_action_parse(act, &a) == 0) {
    roles = roles_allowed(m, a);
    perm = json_pack("{s:s, s:s}", "module", mod, "action", act);
    rc |= rm_buf_printf(&text, "Permission: %s.%s. Roles allowed: ", mod, act);
    rc |= join_roles(&text, roles);
    rc |= rm_buf_puts(&text, ".");
  } else if (strcmp(access, "user") == 0) {
    roles = every_role();
    perm = json_string("any signed-in user");
    rc |= rm_buf_puts(&text, "Permission: any signed-in user (it acts on the caller's own account). Roles allowed: ");
    rc |= join_roles(&text, roles);
    rc |= rm_buf_puts(&text, ".");
  } else {
    perm = json_string("public");
    rc |= rm_buf_puts(&text, "Permission: public (no credentials needed).");
  }
  if (!perm || rc || (strcmp(access, "public") != 0 && !roles)) rc = -1;
  if (!rc) rc = json_object_set(op, "x-restmon-permission", perm);
  if (!rc && roles) rc = json_object_set(op, "x-restmon-roles", roles);
  if (!rc) rc = add_paragraph(op, text.data);
  json_decref(perm);
  json_decref(roles);
  rm_buf_free(&text);
  return rc ? -1 : 0;
}

/* The embedded document with every routed operation annotated (new
 * reference), or NULL with why in err. */
static json_t *served_document(const rm_serve *s, const char **err) {
  const rm_embedded_file *f = rm_embedded_find(OPENAPI_FILE);
  json_error_t jerr;
  json_t *doc = f ? json_loadb(f->data, f->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
  json_t *routes = doc ? rm_serve_routes_json(s) : NULL;
  json_t *paths = json_object_get(doc, "paths");
  *err = !f ? "the binary holds no " OPENAPI_FILE : !doc ? "the embedded " OPENAPI_FILE " is not valid JSON" : NULL;
  size_t i;
  json_t *rt;
  json_array_foreach(routes, i, rt) {
    char method[16];
    const char *m = json_string_value(json_object_get(rt, "method"));
    size_t n = 0;
    for (; m && m[n] && n < sizeof method - 1; n++) method[n] = (char)tolower((unsigned char)m[n]);
    method[n] = '\0';
    json_t *op = json_object_get(json_object_get(paths, json_string_value(json_object_get(rt, "path"))), method);
    if (json_is_object(op) && annotate(op, rt) != 0) *err = "out of memory";
  }
  if (doc && !routes) *err = "out of memory";
  json_decref(routes);
  if (*err) {
    json_decref(doc);
    return NULL;
  }
  return doc;
}

static void h_openapi(rm_hctx *c) {
  const char *err = NULL;
  json_t *doc = served_document(c->s, &err);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (!text) {
    rm_log_error("api", "GET /openapi.json: %s", err ? err : "out of memory");
    rm_hctx_error(c, RM_API_INTERNAL, err ? err : "out of memory");
    return;
  }
  rm_api_req *req = c->req;
  c->req = NULL;
  rm_hctx_free(c);
  if (req) rm_api_respond_raw(req, 200, JSON_TYPE, text, strlen(text));
  free(text);
}

static void h_docs(rm_hctx *c) {
  const rm_embedded_file *f = rm_embedded_find(DOCS_PAGE_FILE);
  if (!f) {
    rm_hctx_error(c, RM_API_INTERNAL, "the binary holds no " DOCS_PAGE_FILE);
    return;
  }
  rm_api_req *req = c->req;
  c->req = NULL;
  rm_hctx_free(c);
  if (!req) return;
  rm_api_resp_header(req, "Content-Security-Policy", DOCS_CSP);
  rm_api_resp_header(req, "Referrer-Policy", "no-referrer");
  rm_api_respond_raw(req, 200, HTML_TYPE, f->data, f->len);
}

int rm_serve_docs_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/openapi.json", h_openapi, RM_ACCESS_PUBLIC, 0, 0},
      {"GET", "/docs", h_docs, RM_ACCESS_PUBLIC, 0, 0},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
