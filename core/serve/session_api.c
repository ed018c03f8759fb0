/* Signing in and out, and one's own account: POST /auth/login, POST
 * /auth/logout, GET /me, POST /me/password.
 *
 * Sessions are store documents of kind "session" whose id is the SHA-256
 * of the token (the token itself is never stored). Password hashing
 * (argon2id, tens of milliseconds) runs on the libuv thread pool, at most
 * RM_SERVE_MAX_HASHING at once; more concurrent logins get a 429. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/response.h"
#include "auth/password.h"
#include "auth/token.h"
#include "serve/serve.h"
#include "util/err.h"
#include "util/log.h"

/* ---- login ---- */

/* c->text: the username; c->text2: the password; c->doc: the user. */

static void login_fail(rm_hctx *c, const char *why) {
  rm_serve *s = c->s;
  const char *peer = rm_hctx_peer(c);
  rm_login_guard_failed(&s->guard, c->text, peer ? peer : "", uv_now(&s->loop));
  rm_serve_audit(s, c->text, "auth.login_failed", "user", NULL, peer, NULL, json_pack("{s:s}", "reason", why));
  if (c->req) rm_api_resp_header(c->req, "WWW-Authenticate", "Bearer");
  rm_hctx_error(c, RM_API_UNAUTHENTICATED, "wrong username or password");
}

static void session_put(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  json_decref(doc);
  if (rm_hctx_done_if_failed(c, err, errmsg, NULL)) return;
  rm_serve *s = c->s;
  char cookie[256];
  const char *tok = json_string_value(json_object_get(c->doc2, "token"));
  rm_auth_session_set_cookie(cookie, sizeof cookie, tok, (long)s->st.session_ttl_s, s->tls);
  rm_api_resp_header(c->req, "Set-Cookie", cookie);
  json_t *data = json_pack("{s:O, s:s, s:O, s:I, s:I}", "token", json_object_get(c->doc2, "token"), "username",
                           c->text, "role", json_object_get(c->doc, "role"), "expires_in_s",
                           (json_int_t)s->st.session_ttl_s, "expires_at",
                           (json_int_t)(time(NULL) + (time_t)s->st.session_ttl_s));
  rm_hctx_ok(c, 200, data);
}

static void login_work(uv_work_t *w) {
  rm_hctx *c = w->data;
  const char *hash = c->doc ? json_string_value(json_object_get(c->doc, "password_hash")) : NULL;
  if (hash) c->n = rm_pw_verify(hash, c->text2);
  else {
    rm_pw_params p = RM_PW_PARAMS_DEFAULT;
    rm_pw_verify_dummy(&p, c->text2);
    c->n = RM_EDENIED;
  }
}

static void login_after(uv_work_t *w, int status) {
  rm_hctx *c = w->data;
  rm_serve *s = c->s;
  s->hashing--;
  if (!c->req || s->stopping) {
    rm_hctx_free(c);
    return;
  }
  if (status != 0 || c->n != 0) {
    login_fail(c, c->doc ? "wrong password" : "unknown or inactive user");
    return;
  }
  rm_login_guard_succeeded(&s->guard, c->text);
  char tok[RM_TOKEN_LEN + 1], hash[RM_TOKEN_HASH_LEN + 1];
  if (rm_token_new(tok) != 0 || rm_token_hash(tok, RM_TOKEN_LEN, hash) != 0) {
    rm_hctx_error(c, RM_API_INTERNAL, "no randomness for a session token");
    return;
  }
  const char *uid = json_string_value(json_object_get(c->doc, "id"));
  rm_serve_audit(s, c->text, "auth.login", "user", uid, rm_hctx_peer(c), NULL, NULL);
  json_t *doc = json_pack("{s:s, s:s, s:s?, s:s, s:I, s:I, s:s}", "id", hash, "name", hash, "user_id", uid,
                          "username", c->text, "expires_at", (json_int_t)(time(NULL) + (time_t)s->st.session_ttl_s),
                          "issued_at_ms", (json_int_t)rm__serve_now_ms(), "scope", "private");
  c->doc2 = json_pack("{s:s}", "token", tok);
  memset(tok, 0, sizeof tok);
  if (!c->doc2 || !doc) {
    json_decref(doc);
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_store_doc_put(s->store, "session", doc, session_put, c);
  json_decref(doc);
}

static void users_listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(res, "items"), i, u) {
    const char *name = json_string_value(json_object_get(u, "name"));
    if (name && strcmp(name, c->text) == 0 && json_is_null(json_object_get(u, "deleted_at")) &&
        !json_is_false(json_object_get(u, "active"))) {
      c->doc = json_incref(u);
      break;
    }
  }
  json_decref(res);
  if (c->s->hashing >= RM_SERVE_MAX_HASHING) {
    rm_api_resp_header(c->req, "Retry-After", "1");
    rm_hctx_error(c, RM_API_RATE_LIMITED, "too many logins at once; retry in a second");
    return;
  }
  c->s->hashing++;
  c->work.data = c;
  uv_queue_work(&c->s->loop, &c->work, login_work, login_after);
}

static void h_login(rm_hctx *c) {
  rm_serve *s = c->s;
  static const char *const allowed[] = {"username", "password", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  const char *user = json_string_value(json_object_get(b, "username"));
  const char *pw = json_string_value(json_object_get(b, "password"));
  rm_api_details d = RM_API_DETAILS_INIT;
  if (!user || !*user) rm_api_details_add(&d, "$.username", "required: a non-empty string");
  if (!pw) rm_api_details_add(&d, "$.password", "required: a string");
  else if (strlen(pw) > RM_PW_MAX_BYTES) rm_api_details_add(&d, "$.password", "too long");
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  unsigned retry = 0;
  if (rm_login_guard_check(&s->guard, user, rm_api_req_peer(c->req), uv_now(&s->loop), &retry) != 0) {
    char msg[120], ra[24];
    snprintf(ra, sizeof ra, "%u", retry);
    rm_api_resp_header(c->req, "Retry-After", ra);
    rm_hctx_audit(c, "auth.login_refused", "user", NULL, NULL, json_pack("{s:s}", "username", user));
    rm_hctx_error(c, RM_API_RATE_LIMITED, rm_login_guard_message(retry, msg, sizeof msg));
    return;
  }
  c->text = strdup(user);
  c->text2 = strdup(pw);
  if (!c->text || !c->text2) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  json_t *q = json_pack("{s:s, s:i}", "name", user, "page_size", 500);
  rm_store_doc_list(s->store, "user", q, users_listed, c);
  json_decref(q);
}

/* ---- logout, me ---- */

static void logout_done(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm_serve_auth_changed(c->s); /* cached callers may have changed */
  json_decref(res);
  if (err && err != RM_ENOTFOUND) {
    rm_hctx_store_error(c, err, errmsg);
    return;
  }
  rm_hctx_audit(c, "auth.logout", "user", rm_hctx_user_id(c), NULL, NULL);
  char cookie[256];
  rm_auth_session_set_cookie(cookie, sizeof cookie, NULL, 0, c->s->tls);
  if (c->req) rm_api_resp_header(c->req, "Set-Cookie", cookie);
  rm_hctx_ok(c, 200, json_pack("{s:b}", "logged_out", 1));
}

static void h_logout(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  if (json_object_get(c->cred, "key_hash")) {
    rm_hctx_error(c, RM_API_CONFLICT, "an API key has no session to end; revoke the key instead");
    return;
  }
  rm_store_doc_delete(c->s->store, "session", json_string_value(json_object_get(c->cred, "id")), logout_done, c);
}

static void h_me(rm_hctx *c) {
  json_t *d = json_pack("{s:O, s:O, s:O, s:s, s:O?}", "user_id", json_object_get(c->user, "id"), "username",
                        json_object_get(c->user, "name"), "role", json_object_get(c->user, "role"), "auth",
                        json_object_get(c->cred, "key_hash") ? "api_key" : "session", "expires_at",
                        json_object_get(c->cred, "expires_at"));
  rm_hctx_ok(c, 200, d);
}

/* ---- change own password ---- */

static void password_saved(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm_serve_auth_changed(c->s); /* cached callers may have changed */
  json_decref(res);
  if (rm_hctx_done_if_failed(c, err, errmsg, NULL)) return;
  rm_hctx_audit(c, "user.password_change", "user", rm_hctx_user_id(c), NULL, NULL);
  rm_hctx_ok(c, 200, json_pack("{s:b}", "changed", 1));
}

static void password_work(uv_work_t *w) {
  rm_hctx *c = w->data;
  const char *hash = json_string_value(json_object_get(c->user, "password_hash"));
  c->n = hash ? rm_pw_verify(hash, c->text) : RM_EDENIED;
  if (c->n != 0) return;
  rm_pw_params p = RM_PW_PARAMS_DEFAULT;
  char out[RM_PW_ENCODED_MAX];
  c->n = rm_pw_hash(&p, c->text2, out);
  if (c->n == 0) c->doc = json_pack("{s:s}", "password_hash", out);
}

static void password_after(uv_work_t *w, int status) {
  rm_hctx *c = w->data;
  c->s->hashing--;
  if (!c->req || c->s->stopping) {
    rm_hctx_free(c);
    return;
  }
  if (status != 0 || c->n == RM_EDENIED) {
    rm_hctx_audit(c, "user.password_change_failed", "user", rm_hctx_user_id(c), NULL,
                  json_pack("{s:s}", "reason", "wrong current password"));
    rm_hctx_error(c, RM_API_FORBIDDEN, "the current password is wrong");
    return;
  }
  if (c->n != 0 || !c->doc) {
    rm_hctx_error(c, RM_API_INTERNAL, "hashing the new password failed");
    return;
  }
  json_t *u = json_deep_copy(c->user);
  json_object_set(u, "password_hash", json_object_get(c->doc, "password_hash"));
  json_object_del(u, "version");
  rm_store_doc_put(c->s->store, "user", u, password_saved, c);
  json_decref(u);
}

static void h_password(rm_hctx *c) {
  static const char *const allowed[] = {"current_password", "new_password", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  const char *cur = json_string_value(json_object_get(b, "current_password"));
  const char *pw = json_string_value(json_object_get(b, "new_password"));
  rm_api_details d = RM_API_DETAILS_INIT;
  if (!cur) rm_api_details_add(&d, "$.current_password", "required: a string");
  if (!pw) rm_api_details_add(&d, "$.new_password", "required: a string");
  else if (strlen(pw) < 8) rm_api_details_add(&d, "$.new_password", "too short: at least 8 characters");
  else if (strlen(pw) > RM_PW_MAX_BYTES) rm_api_details_add(&d, "$.new_password", "too long");
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  if (c->s->hashing >= RM_SERVE_MAX_HASHING) {
    rm_api_resp_header(c->req, "Retry-After", "1");
    rm_hctx_error(c, RM_API_RATE_LIMITED, "the server is busy hashing passwords; retry in a second");
    return;
  }
  c->text = strdup(cur);
  c->text2 = strdup(pw);
  if (!c->text || !c->text2) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  c->s->hashing++;
  c->work.data = c;
  uv_queue_work(&c->s->loop, &c->work, password_work, password_after);
}

int rm_serve_session_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"POST", "/api/v1/auth/login", h_login, RM_ACCESS_PUBLIC, 0, 0},
      {"POST", "/api/v1/auth/logout", h_logout, RM_ACCESS_USER, 0, 0},
      {"GET", "/api/v1/me", h_me, RM_ACCESS_USER, 0, 0},
      {"POST", "/api/v1/me/password", h_password, RM_ACCESS_USER, 0, 0},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
