/* API keys: GET/POST /api-keys, GET/DELETE /api-keys/{id}.
 *
 * A key "rmk_<id>_<secret>" (auth/token.h) is answered once, when it is
 * created. The store keeps a document of kind "apikey": id = the key id;
 * name = the key id too (names are unique per kind, and two users may
 * well both call their key "ci"); label = the name the user gave;
 * key_hash; user_id and owner (whose role the key acts with); username;
 * scope "private"; expires_at (Unix seconds, or null for no expiry);
 * created_by. authn.c finds a key by its id and checks key_hash,
 * expires_at and that the document is live.
 *
 * Everyone sees their own keys; admins see all of them, with the owner,
 * and may create a key for another user (a read-only one for a
 * dashboard, say). Which roles may create and revoke keys is the
 * api_keys row of the permission table. Revoking is a soft delete: the
 * key gets a 401 from then on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/token.h"
#include "serve/admin.h"
#include "util/err.h"

#define LABEL_MAX_LEN 100
#define MAX_DAYS 3650
#define ID_TRIES 3 /* fresh ids when one is taken (40 random bits: rare) */

/* c->doc: the user the key is for; c->doc2: the key document being
 * created; c->text: the key text to show once; c->n: tries left. */

static json_t *key_view(const json_t *k) {
  json_t *exp = json_object_get(k, "expires_at");
  bool expired = json_is_integer(exp) && json_integer_value(exp) <= (json_int_t)time(NULL);
  return json_pack("{s:O, s:O?, s:O?, s:O?, s:o, s:b, s:O?, s:O?, s:O?}", "id", json_object_get(k, "id"), "name",
                   json_object_get(k, "label"), "user_id", json_object_get(k, "user_id"), "username",
                   json_object_get(k, "username"), "expires_at",
                   json_is_integer(exp) ? rm__serve_unix_to_iso(json_integer_value(exp)) : json_null(), "expired",
                   expired, "created_at", json_object_get(k, "created_at"), "created_by",
                   json_object_get(k, "created_by"), "revoked_at", json_object_get(k, "deleted_at"));
}

/* Whether the caller may see and revoke key k. */
static bool mine(const rm_hctx *c, const json_t *k) {
  const char *owner = json_string_value(json_object_get(k, "user_id")), *me = rm_hctx_user_id(c);
  return rm__serve_live(k) && (rm__serve_is_admin(c) || (owner && me && strcmp(owner, me) == 0));
}

/* ---- list, get ---- */

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm__serve_list_answer(c, err, errmsg, res, key_view);
}

static void h_list(rm_hctx *c) {
  static const char *const known[] = {"user_id", "sort", NULL};
  json_t *q = rm__serve_list_query(c, known, 50);
  if (!q) return;
  const char *who = json_string_value(json_object_get(q, "user_id")), *me = rm_hctx_user_id(c);
  if (!rm__serve_is_admin(c) && who && strcmp(who, me) != 0) {
    json_decref(q);
    rm_hctx_error(c, RM_API_FORBIDDEN, "only an admin may list another user's API keys");
    return;
  }
  if (who || !rm__serve_is_admin(c)) json_object_set_new(q, "owner", json_string(who ? who : me));
  json_object_del(q, "user_id");
  if (!json_object_get(q, "sort")) json_object_set_new(q, "sort", json_string("-created_at"));
  rm_store_doc_list(c->s->store, "apikey", q, listed, c);
  json_decref(q);
}

static void got(void *ud, int err, const char *errmsg, json_t *k) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, k)) return;
  json_t *v = mine(c, k) ? key_view(k) : NULL;
  json_decref(k);
  if (v) rm_hctx_ok(c, 200, v);
  else rm_hctx_error(c, RM_API_NOT_FOUND, "no such API key");
}

static void h_get(rm_hctx *c) { rm_store_doc_get(c->s->store, "apikey", c->id, got, c); }

/* ---- create ---- */

static void key_put(void *ud, int err, const char *errmsg, json_t *k) {
  rm_hctx *c = ud;
  if (!err) rm_hctx_audit(c, "api_key.create", "apikey", json_string_value(json_object_get(k, "id")), NULL, key_view(k));
  if (rm_hctx_done_if_failed(c, err, errmsg, k)) return;
  json_t *v = key_view(k);
  json_decref(k);
  json_object_set_new(v, "key", json_string(c->text));
  rm_hctx_ok(c, 201, v);
}

static void new_key(rm_hctx *c);

/* The id must be new: a put with a used id would update that key. */
static void id_checked(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  json_decref(res);
  if (err != RM_ENOTFOUND) {
    if (rm_hctx_done_if_failed(c, err, errmsg, NULL)) return;
    if (--c->n > 0) new_key(c);
    else rm_hctx_error(c, RM_API_INTERNAL, "could not find an unused API key id");
    return;
  }
  if (!c->req) {
    rm_hctx_free(c);
    return;
  }
  rm_store_doc_put(c->s->store, "apikey", c->doc2, key_put, c);
}

static void new_key(rm_hctx *c) {
  char key[RM_APIKEY_LEN + 1], id[RM_APIKEY_ID_LEN + 1], hash[RM_TOKEN_HASH_LEN + 1];
  if (rm_apikey_new(key, id, hash) != 0) {
    rm_hctx_error(c, RM_API_INTERNAL, "no randomness for an API key");
    return;
  }
  free(c->text);
  c->text = strdup(key);
  memset(key, 0, sizeof key);
  json_object_set_new(c->doc2, "id", json_string(id));
  json_object_set_new(c->doc2, "name", json_string(id));
  json_object_set_new(c->doc2, "key_hash", json_string(hash));
  if (!c->text) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_store_doc_get(c->s->store, "apikey", id, id_checked, c);
}

/* c->doc is the user the key is for. */
static void for_user(rm_hctx *c) {
  json_object_set(c->doc2, "user_id", json_object_get(c->doc, "id"));
  json_object_set(c->doc2, "owner", json_object_get(c->doc, "id"));
  json_object_set(c->doc2, "username", json_object_get(c->doc, "name"));
  c->n = ID_TRIES;
  new_key(c);
}

static void user_got(void *ud, int err, const char *errmsg, json_t *u) {
  rm_hctx *c = ud;
  if (err && err != RM_ENOTFOUND) {
    rm_hctx_done_if_failed(c, err, errmsg, u);
    return;
  }
  if (!c->req || !rm__serve_live(u) || json_is_false(json_object_get(u, "active"))) {
    json_decref(u);
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$.user_id", "no active user has this id");
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc = u;
  for_user(c);
}

/* The expiry of a create body as Unix seconds (0: none); details on error. */
static int64_t expiry(rm_api_details *d, const json_t *b) {
  const json_t *at = json_object_get(b, "expires_at"), *days = json_object_get(b, "expires_in_days");
  int64_t t = 0, now = (int64_t)time(NULL);
  if (at && !json_is_null(at) && days && !json_is_null(days)) {
    rm_api_details_add(d, "$.expires_in_days", "give expires_at or expires_in_days, not both");
  } else if (at && !json_is_null(at)) {
    if (!json_is_string(at) || rm__serve_iso_to_unix(json_string_value(at), &t) != 0)
      rm_api_details_add(d, "$.expires_at", "expected an ISO-8601 time such as 2030-01-31T12:00:00Z");
    else if (t <= now) rm_api_details_add(d, "$.expires_at", "must be in the future");
  } else if (days && !json_is_null(days)) {
    double n = json_number_value(days);
    if (!json_is_number(days) || n <= 0 || n > MAX_DAYS)
      rm_api_details_add(d, "$.expires_in_days", "expected a number of days above 0, at most %d", MAX_DAYS);
    else t = now + (int64_t)(n * 86400);
  }
  return t;
}

static void h_create(rm_hctx *c) {
  static const char *const allowed[] = {"name", "expires_at", "expires_in_days", "user_id", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  const char *label = json_string_value(json_object_get(b, "name"));
  json_t *uid = json_object_get(b, "user_id");
  if (!label || !*label || strlen(label) > LABEL_MAX_LEN)
    rm_api_details_add(&d, "$.name", "required: a string of 1-%d bytes", LABEL_MAX_LEN);
  int64_t exp = expiry(&d, b);
  if (uid && !json_is_null(uid) && !json_is_string(uid)) rm_api_details_add(&d, "$.user_id", "expected a user id");
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  const char *who = json_string_value(uid);
  bool other = who && strcmp(who, rm_hctx_user_id(c)) != 0;
  if (other && !rm__serve_is_admin(c)) {
    rm_hctx_error(c, RM_API_FORBIDDEN, "only an admin may create an API key for another user");
    return;
  }
  c->doc2 = json_pack("{s:s, s:s, s:s?}", "label", label, "scope", "private", "created_by", rm_hctx_user_name(c));
  json_object_set_new(c->doc2, "expires_at", exp ? json_integer((json_int_t)exp) : json_null());
  if (other) {
    rm_store_doc_get(c->s->store, "user", who, user_got, c);
    return;
  }
  c->doc = json_incref(c->user);
  for_user(c);
}

/* ---- revoke ---- */

static void revoked(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm_serve_auth_changed(c->s); /* cached callers may have changed */
  if (!err) rm_hctx_audit(c, "api_key.revoke", "apikey", c->id, key_view(c->doc), NULL);
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  rm_hctx_ok(c, 200, json_pack("{s:s, s:b}", "id", c->id, "revoked", 1));
}

static void revoke_got(void *ud, int err, const char *errmsg, json_t *k) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, k)) return;
  c->doc = k;
  if (!mine(c, k)) rm_hctx_error(c, RM_API_NOT_FOUND, "no such API key");
  else rm_store_doc_delete(c->s->store, "apikey", c->id, revoked, c);
}

static void h_revoke(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  rm_store_doc_get(c->s->store, "apikey", c->id, revoke_got, c);
}

int rm_serve_apikey_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/api-keys", h_list, RM_ACCESS_ROLE, RM_MOD_API_KEYS, RM_ACT_VIEW},
      {"POST", "/api/v1/api-keys", h_create, RM_ACCESS_ROLE, RM_MOD_API_KEYS, RM_ACT_CREATE},
      {"GET", "/api/v1/api-keys/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_API_KEYS, RM_ACT_VIEW},
      {"DELETE", "/api/v1/api-keys/{id}", h_revoke, RM_ACCESS_ROLE, RM_MOD_API_KEYS, RM_ACT_DELETE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
