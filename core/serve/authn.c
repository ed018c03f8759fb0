/* Who is calling: a session (Bearer token or the browser's cookie) or an
 * API key (Bearer rmk_...), then the user behind it, which must still
 * exist and be active -- deactivating a user ends its sessions and keys
 * at once, and a role change applies to the next request. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/response.h"
#include "auth/token.h"
#include "serve/serve.h"
#include "util/err.h"
#include "util/log.h"

static void unauthenticated(rm_hctx *c, const char *challenge, const char *msg) {
  if (c->req) rm_api_resp_header(c->req, "WWW-Authenticate", challenge);
  rm_hctx_error(c, RM_API_UNAUTHENTICATED, msg);
}

static bool live(const json_t *doc) { return doc && json_is_null(json_object_get(doc, "deleted_at")); }

/* ---- the cache: credential hash -> (credential, user) ---- */

#define CACHE_SLOTS 1024

typedef struct cache_entry {
  char key[RM_SERVE_AUTH_KEY_LEN + 1];
  json_t *cred, *user;
  uint64_t gen, expires_ms;
} cache_entry;

struct rm_auth_cache {
  cache_entry slot[CACHE_SLOTS];
};

static size_t slot_of(const char *key) {
  size_t h = 0;
  for (int i = 0; i < 12 && key[i]; i++) h = h * 16 + (size_t)(key[i] <= '9' ? key[i] - '0' : key[i] - 'a' + 10);
  return h % CACHE_SLOTS;
}

static void entry_clear(cache_entry *e) {
  json_decref(e->cred);
  json_decref(e->user);
  memset(e, 0, sizeof *e);
}

void rm_serve_auth_changed(rm_serve *s) { s->auth_gen++; }

void rm_serve_auth_cache_free(rm_serve *s) {
  if (!s->auth_cache) return;
  for (size_t i = 0; i < CACHE_SLOTS; i++) entry_clear(&s->auth_cache->slot[i]);
  free(s->auth_cache);
  s->auth_cache = NULL;
}

/* A live cached result for c->auth_key, taken into c; false when none. */
static bool cache_take(rm_hctx *c) {
  rm_serve *s = c->s;
  if (!s->auth_cache) return false;
  cache_entry *e = &s->auth_cache->slot[slot_of(c->auth_key)];
  if (!e->cred || strcmp(e->key, c->auth_key) != 0) return false;
  if (e->gen != s->auth_gen || e->expires_ms <= uv_now(&s->loop)) {
    entry_clear(e);
    return false;
  }
  json_t *exp = json_object_get(e->cred, "expires_at");
  if (json_is_integer(exp) && json_integer_value(exp) <= (json_int_t)time(NULL)) {
    entry_clear(e);
    return false;
  }
  c->cred = json_incref(e->cred);
  c->user = json_incref(e->user);
  return true;
}

static void cache_put(rm_hctx *c) {
  rm_serve *s = c->s;
  if (c->auth_gen != s->auth_gen || !c->auth_key[0]) return; /* something changed meanwhile */
  if (!s->auth_cache && !(s->auth_cache = calloc(1, sizeof *s->auth_cache))) return;
  cache_entry *e = &s->auth_cache->slot[slot_of(c->auth_key)];
  entry_clear(e);
  memcpy(e->key, c->auth_key, sizeof e->key);
  e->cred = json_incref(c->cred);
  e->user = json_incref(c->user);
  e->gen = s->auth_gen;
  e->expires_ms = uv_now(&s->loop) + RM_SERVE_AUTH_CACHE_MS;
}

/* The caller is known (c->cred, c->user): check the route's permission. */
static void authorize(rm_hctx *c) {
  c->role = RM_ROLE_NONE;
  rm_rbac_role_parse(json_string_value(json_object_get(c->user, "role")), &c->role);
  const rm_route_def *r = c->route;
  if (r && r->access == RM_ACCESS_ROLE && !rm_rbac_allowed(c->role, r->module, r->action)) {
    char msg[160];
    snprintf(msg, sizeof msg, "your role (%s) may not %s %s", rm_rbac_role_name(c->role) ? rm_rbac_role_name(c->role) : "none",
             rm_rbac_action_name(r->action), rm_rbac_module_name(r->module));
    rm_hctx_error(c, RM_API_FORBIDDEN, msg);
    return;
  }
  c->next(c);
}

/* A session issued before an admin reset the user's password
 * (user.sessions_after, ms) ended with the reset; API keys do not. */
static bool ended_by_reset(const json_t *cred, const json_t *user) {
  const json_t *after = json_object_get(user, "sessions_after");
  if (!json_is_integer(after) || json_object_get(cred, "key_hash")) return false;
  return json_integer_value(json_object_get(cred, "issued_at_ms")) < json_integer_value(after);
}

static void user_got(void *ud, int err, const char *errmsg, json_t *user) {
  rm_hctx *c = ud;
  if (!c->req) {
    json_decref(user);
    rm_hctx_free(c);
    return;
  }
  if (err && err != RM_ENOTFOUND) {
    json_decref(user);
    rm_hctx_store_error(c, err, errmsg);
    return;
  }
  if (!live(user) || json_is_false(json_object_get(user, "active"))) {
    json_decref(user);
    unauthenticated(c, "Bearer", "the account is deactivated or no longer exists");
    return;
  }
  if (ended_by_reset(c->cred, user)) {
    json_decref(user);
    unauthenticated(c, "Bearer", "the session ended when an admin reset the password: sign in again");
    return;
  }
  c->user = user;
  cache_put(c);
  authorize(c);
}

static void load_user(rm_hctx *c, const char *user_id) {
  if (!user_id) {
    unauthenticated(c, "Bearer", "the credential belongs to no user");
    return;
  }
  rm_store_doc_get(c->s->store, "user", user_id, user_got, c);
}

static void session_got(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  if (!c->req) {
    json_decref(doc);
    rm_hctx_free(c);
    return;
  }
  json_t *exp = json_object_get(doc, "expires_at");
  if (err || !live(doc) || !json_is_integer(exp) || json_integer_value(exp) <= (json_int_t)time(NULL)) {
    json_decref(doc);
    if (err && err != RM_ENOTFOUND) rm_log_warn("api", "session lookup failed: %s", errmsg);
    unauthenticated(c, "Bearer", "the session is unknown or has expired");
    return;
  }
  c->cred = doc;
  load_user(c, json_string_value(json_object_get(doc, "user_id")));
}

typedef struct key_lookup {
  rm_hctx *c;
  rm_apikey key;
} key_lookup;

static void key_got(void *ud, int err, const char *errmsg, json_t *doc) {
  key_lookup *k = ud;
  rm_hctx *c = k->c;
  bool ok = !err && live(doc) && rm_apikey_verify(&k->key, json_string_value(json_object_get(doc, "key_hash"))) == 0;
  json_t *exp = json_object_get(doc, "expires_at");
  if (ok && json_is_integer(exp) && json_integer_value(exp) <= (json_int_t)time(NULL)) ok = false;
  memset(k, 0, sizeof *k);
  free(k);
  if (!c->req) {
    json_decref(doc);
    rm_hctx_free(c);
    return;
  }
  if (!ok) {
    json_decref(doc);
    if (err && err != RM_ENOTFOUND) rm_log_warn("api", "API key lookup failed: %s", errmsg);
    unauthenticated(c, "Bearer", "the API key is unknown, revoked or expired");
    return;
  }
  c->cred = doc;
  load_user(c, json_string_value(json_object_get(doc, "user_id")));
}

static void by_api_key(rm_hctx *c, const char *tok, size_t len) {
  if (rm_token_hash(tok, len, c->auth_key) != 0) c->auth_key[0] = '\0';
  c->auth_gen = c->s->auth_gen;
  if (c->auth_key[0] && cache_take(c)) {
    authorize(c);
    return;
  }
  key_lookup *k = calloc(1, sizeof *k);
  if (!k) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  k->c = c;
  if (rm_apikey_parse(tok, len, &k->key) != 0) {
    free(k);
    unauthenticated(c, "Bearer error=\"invalid_token\"", "the API key is malformed");
    return;
  }
  rm_store_doc_get(c->s->store, "apikey", k->key.id, key_got, k);
}

/* With the cookie, an unsafe method must come from our own origin: a
 * browser sends Origin on cross-site (and same-origin) POSTs. */
static bool same_origin(rm_hctx *c) {
  const char *origin = rm_api_req_header(c->req, "Origin"), *host = rm_api_req_header(c->req, "Host");
  const char *m = rm_api_req_method(c->req);
  if (!origin || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return true;
  const char *o = strstr(origin, "://");
  return host && o && strcmp(o + 3, host) == 0;
}

void rm_serve_authenticate(rm_hctx *c, rm_hstep next) {
  c->next = next;
  const char *tok = NULL;
  size_t len = 0;
  int rc = rm_auth_bearer(rm_api_req_header(c->req, "Authorization"), &tok, &len);
  if (rc == 0 && len > 4 && memcmp(tok, RM_APIKEY_PREFIX, 4) == 0) {
    by_api_key(c, tok, len);
    return;
  }
  if (rc == RM_ENOTFOUND) {
    const char *cookie = rm_api_req_header(c->req, "Cookie");
    rc = cookie ? rm_auth_session_cookie(cookie, &tok, &len) : RM_ENOTFOUND;
    if (rc == 0 && !same_origin(c)) {
      rm_hctx_error(c, RM_API_FORBIDDEN, "cross-site request refused (Origin does not match Host)");
      return;
    }
  }
  if (rc != 0 || !rm_token_well_formed(tok, len) || rm_token_hash(tok, len, c->auth_key) != 0) {
    unauthenticated(c, rc == RM_EPARSE ? "Bearer error=\"invalid_request\"" : "Bearer",
                    "sign in first: a Bearer token, an API key or the session cookie");
    return;
  }
  c->auth_gen = c->s->auth_gen;
  if (cache_take(c)) {
    authorize(c);
    return;
  }
  rm_store_doc_get(c->s->store, "session", c->auth_key, session_got, c);
}
