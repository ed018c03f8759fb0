/* The users, for admins: GET/POST /users, GET/PUT/DELETE /users/{id},
 * POST /users/{id}/password.
 *
 * A user is a store document of kind "user": name (the login name,
 * unique, never changed), role, active, password_hash (argon2id, never
 * answered), display_name, email. DELETE deactivates: the document stays
 * so the audit trail keeps naming who did what. authn.c loads the user on
 * every request, so a deactivated user's sessions and API keys stop at
 * once and a role change applies to the next request. The last active
 * admin can be neither demoted nor deactivated (409); two admins demoting
 * each other at the same instant could both pass that check.
 *
 * Passwords are hashed on the libuv thread pool, at most
 * RM_SERVE_MAX_HASHING at once together with logins (more get a 429). A
 * password the server generates is answered once and kept nowhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "auth/token.h"
#include "serve/admin.h"
#include "util/err.h"

#define NAME_MAX_LEN 64
#define TEXT_MAX_LEN 254
#define GENERATED_PW_LEN 24 /* of a token's URL-safe base64: 144 bits */

/* c->doc: the stored user; c->doc2: the change asked for; c->text2: the
 * new password; c->text: its hash; c->verb "generated" when the server
 * made the password. */

static json_t *user_view(const json_t *u) {
  return json_pack("{s:O, s:O, s:O, s:b, s:O?, s:O?, s:O, s:O, s:O}", "id", json_object_get(u, "id"), "name",
                   json_object_get(u, "name"), "role", json_object_get(u, "role"), "active",
                   !json_is_false(json_object_get(u, "active")), "display_name", json_object_get(u, "display_name"),
                   "email", json_object_get(u, "email"), "version", json_object_get(u, "version"), "created_at",
                   json_object_get(u, "created_at"), "updated_at", json_object_get(u, "updated_at"));
}

static bool is_active_admin(const json_t *u) {
  const char *role = json_string_value(json_object_get(u, "role"));
  return rm__serve_live(u) && role && strcmp(role, "admin") == 0 && !json_is_false(json_object_get(u, "active"));
}

/* ---- checks ---- */

static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN) return false;
  for (; *s; s++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", *s)) return false;
  return true;
}

static void check_role(rm_api_details *d, const json_t *v, bool required) {
  enum rm_role r = RM_ROLE_NONE;
  if (!v && !required) return;
  if (!json_is_string(v) || rm_rbac_role_parse(json_string_value(v), &r) != 0 || r == RM_ROLE_NONE)
    rm_api_details_add(d, "$.role",
                       "%s: one of admin, full_designer, super_operator, read_only_operator, read_only_designer",
                       v ? "unknown role" : "required");
}

/* display_name and email: a string or null (clears it). */
static void check_profile(rm_api_details *d, const json_t *b) {
  static const char *const keys[] = {"display_name", "email"};
  for (int i = 0; i < 2; i++) {
    const json_t *v = json_object_get(b, keys[i]);
    char path[32];
    snprintf(path, sizeof path, "$.%s", keys[i]);
    if (!v || json_is_null(v)) continue;
    const char *s = json_string_value(v);
    const char *at = s ? strchr(s, '@') : NULL;
    if (!s) rm_api_details_add(d, path, "expected a string or null");
    else if (strlen(s) > TEXT_MAX_LEN) rm_api_details_add(d, path, "too long: at most %d bytes", TEXT_MAX_LEN);
    else if (i == 1 && (!at || at == s || !at[1] || strpbrk(s, " \t\r\n")))
      rm_api_details_add(d, path, "expected an address such as ops@example.com");
  }
}

/* The optional password of a body: checked against the policy for name. */
static void check_password(rm_api_details *d, const json_t *b, const char *name) {
  const json_t *v = json_object_get(b, "password");
  char why[200];
  if (!v || json_is_null(v)) return;
  if (!json_is_string(v)) rm_api_details_add(d, "$.password", "expected a string (or leave it out to get one)");
  else if (rm_pw_policy_check(name, json_string_value(v), why, sizeof why) != 0)
    rm_api_details_add(d, "$.password", "%s", why);
}

/* c->text2 = the body's password, or a generated one (c->verb says so). */
static bool take_password(rm_hctx *c, const json_t *b) {
  const char *pw = json_string_value(json_object_get(b, "password"));
  if (pw) return (c->text2 = strdup(pw)) != NULL;
  char tok[RM_TOKEN_LEN + 1];
  if (rm_token_new(tok) != 0) return false;
  tok[GENERATED_PW_LEN] = '\0';
  c->text2 = strdup(tok);
  memset(tok, 0, sizeof tok);
  c->verb = "generated";
  return c->text2 != NULL;
}

/* ---- hashing on the thread pool ---- */

static void hash_work(uv_work_t *w) {
  rm_hctx *c = w->data;
  rm_pw_params p = RM_PW_PARAMS_DEFAULT;
  char out[RM_PW_ENCODED_MAX];
  c->n = rm_pw_hash(&p, c->text2, out);
  if (c->n == 0 && !(c->text = strdup(out))) c->n = RM_ENOMEM;
}

static void hash_after(uv_work_t *w, int status) {
  rm_hctx *c = w->data;
  c->s->hashing--;
  if (!c->req || c->s->stopping) rm_hctx_free(c);
  else if (status != 0 || c->n != 0) rm_hctx_error(c, RM_API_INTERNAL, "hashing the password failed");
  else c->next(c);
}

/* Hashes c->text2 into c->text, then calls next. */
static void hash_then(rm_hctx *c, rm_hstep next) {
  if (c->s->hashing >= RM_SERVE_MAX_HASHING) {
    rm_api_resp_header(c->req, "Retry-After", "1");
    rm_hctx_error(c, RM_API_RATE_LIMITED, "the server is busy hashing passwords; retry in a second");
    return;
  }
  c->next = next;
  c->work.data = c;
  if (uv_queue_work(&c->s->loop, &c->work, hash_work, hash_after) != 0) {
    rm_hctx_error(c, RM_API_INTERNAL, "could not queue the password hashing");
    return;
  }
  c->s->hashing++;
}

/* ---- list, get, create ---- */

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm__serve_list_answer(c, err, errmsg, res, user_view);
}

static void h_list(rm_hctx *c) {
  static const char *const known[] = {"name", "sort", NULL};
  json_t *q = rm__serve_list_query(c, known, 50);
  if (!q) return;
  rm_store_doc_list(c->s->store, "user", q, listed, c);
  json_decref(q);
}

static void got(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, u)) return;
  json_t *v = rm__serve_live(u) ? user_view(u) : NULL;
  json_decref(u);
  if (v) rm_hctx_ok(c, 200, v);
  else rm_hctx_error(c, RM_API_NOT_FOUND, "no such user");
}

static void h_get(rm_hctx *c) { rm_store_doc_get(c->s->store, "user", c->id, got, c); }

static void created(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  if (!err) rm_hctx_audit(c, "user.create", "user", json_string_value(json_object_get(u, "id")), NULL, user_view(u));
  if (rm_hctx_done_if_failed(c, err, errmsg, u)) return;
  json_t *v = user_view(u);
  json_decref(u);
  if (c->verb) json_object_set_new(v, "password", json_string(c->text2));
  rm_hctx_ok(c, 201, v);
}

static void create_hashed(rm_hctx *c) {
  json_object_set_new(c->doc, "password_hash", json_string(c->text));
  rm_store_doc_put(c->s->store, "user", c->doc, created, c);
}

static void h_create(rm_hctx *c) {
  static const char *const allowed[] = {"name", "role", "password", "display_name", "email", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  const char *name = json_string_value(json_object_get(b, "name"));
  if (!name || !valid_name(name))
    rm_api_details_add(&d, "$.name", "required: 1-%d of letters, digits, '_', '.', '@', '-'", NAME_MAX_LEN);
  check_role(&d, json_object_get(b, "role"), true);
  check_profile(&d, b);
  check_password(&d, b, name);
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc = json_pack("{s:s, s:O, s:b, s:O?, s:O?, s:s?}", "name", name, "role", json_object_get(b, "role"), "active",
                     1, "display_name", json_object_get(b, "display_name"), "email", json_object_get(b, "email"),
                     "created_by", rm_hctx_user_name(c));
  if (!c->doc || !take_password(c, b)) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory or no randomness");
    return;
  }
  hash_then(c, create_hashed);
}

/* ---- the last active admin ---- */

static void list_admins(rm_hctx *c);

static void admins_listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  bool other = false;
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(res, "items"), i, u) {
    if (is_active_admin(u) && strcmp(json_string_value(json_object_get(u, "id")), c->id) != 0) other = true;
  }
  json_int_t pages = json_integer_value(json_object_get(res, "total_pages"));
  json_decref(res);
  if (other) {
    c->next(c);
  } else if (c->n < pages) {
    c->n++;
    list_admins(c);
  } else {
    rm_hctx_error(c, RM_API_CONFLICT,
                  "this is the last active admin: make another user an admin before demoting or deactivating it");
  }
}

static void list_admins(rm_hctx *c) {
  json_t *q = json_pack("{s:i, s:i}", "page", c->n, "page_size", 500);
  rm_store_doc_list(c->s->store, "user", q, admins_listed, c);
  json_decref(q);
}

/* Calls next when an active admin other than user c->id exists, else 409. */
static void unless_last_admin(rm_hctx *c, rm_hstep next) {
  c->next = next;
  c->n = 1;
  list_admins(c);
}

/* ---- update, deactivate ---- */

static void audit_if_changed(rm_hctx *c, const char *action, const json_t *before, const json_t *after,
                             const char *const *keys) {
  json_t *b = json_object(), *a = json_object();
  bool changed = false;
  for (size_t i = 0; keys[i]; i++) {
    json_t *x = json_object_get(before, keys[i]), *y = json_object_get(after, keys[i]);
    changed |= !json_equal(x ? x : json_null(), y ? y : json_null());
    json_object_set_new(b, keys[i], x ? json_incref(x) : json_null());
    json_object_set_new(a, keys[i], y ? json_incref(y) : json_null());
  }
  if (changed) rm_hctx_audit(c, action, "user", c->id, b, a);
  else {
    json_decref(b);
    json_decref(a);
  }
}

static void updated(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  rm_serve_auth_changed(c->s); /* cached callers may have changed */
  if (err) {
    rm_hctx_done_if_failed(c, err, errmsg, u);
    return;
  }
  json_t *before = user_view(c->doc), *after = user_view(u);
  json_decref(u);
  static const char *const role[] = {"role", NULL}, *const active[] = {"active", NULL};
  static const char *const profile[] = {"display_name", "email", NULL};
  audit_if_changed(c, "user.role_change", before, after, role);
  bool on = json_is_true(json_object_get(after, "active"));
  audit_if_changed(c, on ? "user.activate" : "user.deactivate", before, after, active);
  audit_if_changed(c, "user.update", before, after, profile);
  json_decref(before);
  rm_hctx_ok(c, 200, after);
}

/* Applies c->doc2 (role, active, display_name, email) to c->doc. */
static void update_write(rm_hctx *c) {
  static const char *const keys[] = {"role", "active", "display_name", "email"};
  json_t *u = json_deep_copy(c->doc);
  bool changed = false;
  for (int i = 0; i < 4; i++) {
    json_t *v = json_object_get(c->doc2, keys[i]), *had = json_object_get(u, keys[i]);
    if (!v || json_equal(v, had ? had : json_null())) continue;
    changed = true;
    json_object_set(u, keys[i], v);
  }
  if (!changed) {
    json_decref(u);
    rm_hctx_ok(c, 200, user_view(c->doc));
    return;
  }
  rm_store_doc_put(c->s->store, "user", u, updated, c);
  json_decref(u);
}

/* Whether applying c->doc2 takes an active admin's powers away. */
static bool loses_admin(const rm_hctx *c) {
  const char *role = json_string_value(json_object_get(c->doc2, "role"));
  return is_active_admin(c->doc) &&
         ((role && strcmp(role, "admin") != 0) || json_is_false(json_object_get(c->doc2, "active")));
}

static void update_got(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, u)) return;
  c->doc = u;
  if (!rm__serve_live(u)) {
    rm_hctx_error(c, RM_API_NOT_FOUND, "no such user");
    return;
  }
  json_t *want = json_object_get(c->doc2, "version");
  if (!want) json_object_set(c->doc2, "version", json_object_get(u, "version"));
  else if (!json_equal(want, json_object_get(u, "version"))) {
    char msg[160];
    snprintf(msg, sizeof msg, "user %s: version %" JSON_INTEGER_FORMAT " is not the current version %" JSON_INTEGER_FORMAT
             " (it was changed meanwhile)", c->id, json_integer_value(want), json_integer_value(json_object_get(u, "version")));
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  if (loses_admin(c)) unless_last_admin(c, update_write);
  else update_write(c);
}

static void h_update(rm_hctx *c) {
  static const char *const allowed[] = {"role", "active", "display_name", "email", "version", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  json_t *v = json_object_get(b, "version"), *active = json_object_get(b, "active");
  if (!json_is_integer(v) || json_integer_value(v) < 1)
    rm_api_details_add(&d, "$.version", "required: the version you read (an integer from 1)");
  check_role(&d, json_object_get(b, "role"), false);
  if (active && !json_is_boolean(active)) rm_api_details_add(&d, "$.active", "expected true or false");
  check_profile(&d, b);
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc2 = json_deep_copy(b);
  rm_store_doc_get(c->s->store, "user", c->id, update_got, c);
}

static void h_deactivate(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  c->doc2 = json_pack("{s:b}", "active", 0);
  rm_store_doc_get(c->s->store, "user", c->id, update_got, c);
}

/* ---- password reset ---- */

static void password_saved(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  rm_serve_auth_changed(c->s); /* cached callers may have changed */
  if (!err) rm_hctx_audit(c, "user.password_reset", "user", c->id, NULL, json_pack("{s:b}", "generated", c->verb != NULL));
  if (rm_hctx_done_if_failed(c, err, errmsg, u)) return;
  json_decref(u);
  json_t *data = json_pack("{s:s, s:b}", "id", c->id, "changed", 1);
  if (c->verb) json_object_set_new(data, "password", json_string(c->text2));
  rm_hctx_ok(c, 200, data);
}

/* The reset also ends the user's open sessions (authn.c). */
static void password_hashed(rm_hctx *c) {
  json_t *u = json_deep_copy(c->doc);
  json_object_set_new(u, "password_hash", json_string(c->text));
  json_object_set_new(u, "sessions_after", json_integer((json_int_t)rm__serve_now_ms()));
  rm_store_doc_put(c->s->store, "user", u, password_saved, c);
  json_decref(u);
}

static void password_got(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, u)) return;
  c->doc = u;
  if (!rm__serve_live(u)) {
    rm_hctx_error(c, RM_API_NOT_FOUND, "no such user");
    return;
  }
  rm_api_details d = RM_API_DETAILS_INIT;
  check_password(&d, c->doc2, json_string_value(json_object_get(u, "name")));
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  if (!take_password(c, c->doc2)) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory or no randomness");
    return;
  }
  hash_then(c, password_hashed);
}

/* {password?}: sets it, or generates one and answers it once. */
static void h_password(rm_hctx *c) {
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  json_t *b = NULL;
  if (len) {
    static const char *const allowed[] = {"password", NULL};
    if (!(b = rm_hctx_body(c, allowed))) return;
  }
  c->doc2 = b ? json_incref(b) : json_object();
  rm_store_doc_get(c->s->store, "user", c->id, password_got, c);
}

int rm_serve_user_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/users", h_list, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_VIEW},
      {"POST", "/api/v1/users", h_create, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_CREATE},
      {"GET", "/api/v1/users/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_VIEW},
      {"PUT", "/api/v1/users/{id}", h_update, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_EDIT},
      {"DELETE", "/api/v1/users/{id}", h_deactivate, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_DELETE},
      {"POST", "/api/v1/users/{id}/password", h_password, RM_ACCESS_ROLE, RM_MOD_USERS, RM_ACT_EDIT},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
