/* Secrets: GET/POST /secrets, GET/PUT/DELETE /secrets/{id}, and their
 * load into the executor's rm_secrets at start.
 *
 * A secret is a store document of kind "secret": name (what workflows
 * write as {{secrets.NAME}}; case-insensitive, as rm_secrets treats it),
 * description, tags, scope (private unless the creator says global),
 * owner (the creator's user id), created_by, and the value only as
 * "ciphertext" (rm_vault_encrypt with the document id as the additional
 * data, so a ciphertext copied onto another secret does not decrypt) with
 * the "key_id" that made it. No answer carries the value, not even
 * masked; audit entries say "value": "***".
 *
 * s->secrets is what the executor injects and what every run record and
 * log line is scrubbed with: every stored secret is decrypted into it at
 * start, a create or replacement updates it at once, a deletion takes the
 * name away from injection (rm_secrets_remove) while its old value, like
 * a replaced one, stays masked until the server stops. A change made
 * through another server on the store comes through def_sync.c
 * (rm__serve_secret_sync) within seconds. Every secret is
 * injectable into every run: scope only decides who sees the metadata.
 * A deleted secret keeps no ciphertext: it is stripped before the soft
 * delete, so a later key rotation has nothing to leave behind. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "util/err.h"
#include "util/log.h"
#include "util/text.h"

#define NAME_MAX_LEN 128
#define VALUE_MAX_BYTES 65536
#define DESC_MAX_LEN 1000
#define TAGS_MAX 50
#define TAG_MAX_LEN 64

/* c->doc: the stored secret; c->doc2: the body (create, replace);
 * c->text2: the new value, zeroed when the context is freed. */

static json_t *secret_view(const json_t *d) {
  return json_pack("{s:O, s:O, s:O?, s:O?, s:O?, s:O?, s:O?, s:O, s:O, s:O}", "id", json_object_get(d, "id"), "name",
                   json_object_get(d, "name"), "description", json_object_get(d, "description"), "tags",
                   json_object_get(d, "tags"), "scope", json_object_get(d, "scope"), "owner",
                   json_object_get(d, "owner"), "created_by", json_object_get(d, "created_by"), "version",
                   json_object_get(d, "version"), "created_at", json_object_get(d, "created_at"), "updated_at",
                   json_object_get(d, "updated_at"));
}

/* The view for the audit trail: the metadata and "value": "***". */
static json_t *audit_view(const json_t *d, bool with_value) {
  json_t *v = json_pack("{s:O, s:O?, s:O?, s:O?}", "name", json_object_get(d, "name"), "description",
                        json_object_get(d, "description"), "tags", json_object_get(d, "tags"), "scope",
                        json_object_get(d, "scope"));
  if (v && with_value) json_object_set_new(v, "value", json_string("***"));
  return v;
}

static bool visible(const rm_hctx *c, const json_t *d) {
  enum rm_scope scope = RM_SCOPE_PRIVATE;
  rm_rbac_scope_parse(json_string_value(json_object_get(d, "scope")), &scope);
  return rm__serve_live(d) &&
         rm_rbac_visible(c->role, rm_hctx_user_id(c), json_string_value(json_object_get(d, "owner")), scope);
}

/* ---- checks ---- */

/* What {{secrets.NAME}} accepts (engine/template.c), starting with a
 * letter or '_'. */
static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN || !(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("_.-", *s)) return false;
  return true;
}

static void check_value(rm_api_details *d, const json_t *v, bool required) {
  if (!v && !required) return;
  size_t n = json_string_length(v);
  if (!json_is_string(v)) rm_api_details_add(d, "$.value", "required: a string");
  else if (n < 3) rm_api_details_add(d, "$.value", "too short: at least 3 bytes (shorter ones cannot be masked)");
  else if (n > VALUE_MAX_BYTES) rm_api_details_add(d, "$.value", "too long: at most %d bytes", VALUE_MAX_BYTES);
  else if (strlen(json_string_value(v)) != n) rm_api_details_add(d, "$.value", "must not contain NUL characters");
}

static void check_meta(rm_api_details *d, const json_t *b) {
  const json_t *desc = json_object_get(b, "description"), *tags = json_object_get(b, "tags");
  const json_t *scope = json_object_get(b, "scope"), *t;
  if (desc && !json_is_null(desc) && (!json_is_string(desc) || json_string_length(desc) > DESC_MAX_LEN))
    rm_api_details_add(d, "$.description", "expected a string of at most %d bytes, or null", DESC_MAX_LEN);
  if (tags && !json_is_array(tags)) rm_api_details_add(d, "$.tags", "expected an array of strings");
  else if (json_array_size(tags) > TAGS_MAX) rm_api_details_add(d, "$.tags", "at most %d tags", TAGS_MAX);
  size_t i;
  json_array_foreach(tags, i, t) {
    if (!json_is_string(t) || !json_string_length(t) || json_string_length(t) > TAG_MAX_LEN)
      rm_api_details_add(d, "$.tags", "tag %zu: expected a string of 1-%d bytes", i, TAG_MAX_LEN);
  }
  const char *sc = json_string_value(scope);
  if (scope && (!sc || (strcmp(sc, "global") && strcmp(sc, "private"))))
    rm_api_details_add(d, "$.scope", "expected \"global\" or \"private\"");
}

/* Sets "ciphertext" and "key_id" of doc (its "id" is the additional
 * data) from c->text2. false: answered 500 and freed. */
static bool seal(rm_hctx *c, json_t *doc) {
  char *ct = NULL;
  const char *id = json_string_value(json_object_get(doc, "id"));
  int rc = rm_vault_encrypt(c->s->vault, c->text2, strlen(c->text2), id, &ct);
  if (rc == 0) {
    json_object_set_new(doc, "ciphertext", json_string(ct));
    json_object_set_new(doc, "key_id", json_string(rm_vault_key_id(c->s->vault)));
  }
  free(ct);
  if (rc) rm_hctx_error(c, RM_API_INTERNAL, "encrypting the value failed");
  return rc == 0;
}

/* Makes the value of secret name the one runs get (c->text2). */
static void inject(rm_hctx *c, const char *name) {
  char err[200];
  rm_secrets_remove(c->s->secrets, name); /* the old value stays masked */
  if (rm_secrets_set(c->s->secrets, name, c->text2, err, sizeof err) != 0)
    rm_log_error("secrets", "secret %s cannot be injected: %s", name, err);
}

/* The stored d is in force on this server: the change feed skips it. */
static void note(rm_hctx *c, const json_t *d, bool deleted) {
  rm_serve_sync_note(c->s, "secret", json_string_value(json_object_get(d, "id")),
                     json_integer_value(json_object_get(d, "version")), deleted);
}

/* ---- list, get ---- */

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  rm__serve_list_answer(c, err, errmsg, res, secret_view);
}

static void h_list(rm_hctx *c) {
  static const char *const known[] = {"name", "tag", "scope", "owner", "sort", NULL};
  json_t *q = rm__serve_list_query(c, known, 50);
  if (!q) return;
  if (!rm__serve_is_admin(c)) json_object_set_new(q, "visible_to", json_string(rm_hctx_user_id(c)));
  rm_store_doc_list(c->s->store, "secret", q, listed, c);
  json_decref(q);
}

static void got(void *ud, int err, const char *errmsg, json_t *d) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, d)) return;
  json_t *v = visible(c, d) ? secret_view(d) : NULL;
  json_decref(d);
  if (v) rm_hctx_ok(c, 200, v);
  else rm_hctx_error(c, RM_API_NOT_FOUND, "no such secret");
}

static void h_get(rm_hctx *c) { rm_store_doc_get(c->s->store, "secret", c->id, got, c); }

/* ---- create ---- */

static void created(void *ud, int err, const char *errmsg, json_t *d) {
  rm_hctx *c = ud;
  if (!err) { /* stored: runs may use it, and it is audited even if the client left */
    inject(c, json_string_value(json_object_get(d, "name")));
    note(c, d, false);
    rm_hctx_audit(c, "secret.create", "secret", json_string_value(json_object_get(d, "id")), NULL, audit_view(d, true));
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, d)) return;
  rm_hctx_ok(c, 201, secret_view(d));
  json_decref(d);
}

/* Names are unique ignoring case: rm_secrets (and so {{secrets.NAME}})
 * does not tell "Token" from "token". */
static void clash_checked(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  const char *name = json_string_value(json_object_get(c->doc2, "name"));
  size_t i;
  json_t *d;
  bool taken = false;
  json_array_foreach(json_object_get(res, "items"), i, d) taken |=
      strcasecmp(json_string_value(json_object_get(d, "name")), name) == 0;
  json_decref(res);
  if (taken) {
    char msg[300];
    snprintf(msg, sizeof msg, "a secret named '%s' already exists (secret names ignore case)", name);
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  char id[37];
  json_t *doc = json_pack("{s:O, s:O?, s:O?, s:O?, s:s, s:s?}", "name", json_object_get(c->doc2, "name"),
                          "description", json_object_get(c->doc2, "description"), "tags",
                          json_object_get(c->doc2, "tags"), "scope", json_object_get(c->doc2, "scope"), "owner",
                          rm_hctx_user_id(c), "created_by", rm_hctx_user_name(c));
  if (!doc || rm_uuid_v4(id) != 0) {
    json_decref(doc);
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory or no randomness");
    return;
  }
  json_object_set_new(doc, "id", json_string(id));
  if (seal(c, doc)) rm_store_doc_put(c->s->store, "secret", doc, created, c);
  json_decref(doc);
}

static void h_create(rm_hctx *c) {
  static const char *const allowed[] = {"name", "value", "description", "tags", "scope", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  const char *name = json_string_value(json_object_get(b, "name"));
  if (!name || !valid_name(name))
    rm_api_details_add(&d, "$.name", "required: 1-%d of letters, digits, '_', '.', '-', starting with a letter or '_'",
                       NAME_MAX_LEN);
  check_value(&d, json_object_get(b, "value"), true);
  check_meta(&d, b);
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc2 = json_deep_copy(b);
  c->text2 = strdup(json_string_value(json_object_get(b, "value")));
  if (!c->doc2 || !c->text2) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  json_object_del(c->doc2, "value");
  json_t *q = json_pack("{s:s, s:i}", "name", name, "page_size", 500);
  rm_store_doc_list(c->s->store, "secret", q, clash_checked, c);
  json_decref(q);
}

/* ---- replace ---- */

static void replaced(void *ud, int err, const char *errmsg, json_t *d) {
  rm_hctx *c = ud;
  if (!err && c->text2) inject(c, json_string_value(json_object_get(d, "name")));
  if (!err) note(c, d, false);
  if (!err) rm_hctx_audit(c, "secret.replace", "secret", c->id, audit_view(c->doc, true), audit_view(d, c->text2 != NULL));
  if (rm_hctx_done_if_failed(c, err, errmsg, d)) return;
  rm_hctx_ok(c, 200, secret_view(d));
  json_decref(d);
}

static void replace_got(void *ud, int err, const char *errmsg, json_t *d) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, d)) return;
  c->doc = d;
  if (!visible(c, d)) {
    rm_hctx_error(c, RM_API_NOT_FOUND, "no such secret");
    return;
  }
  const char *owner = json_string_value(json_object_get(d, "owner")), *me = rm_hctx_user_id(c);
  json_t *scope = json_object_get(c->doc2, "scope");
  if (scope && !json_equal(scope, json_object_get(d, "scope")) && !rm__serve_is_admin(c) &&
      !(owner && me && strcmp(owner, me) == 0)) {
    rm_hctx_error(c, RM_API_FORBIDDEN, "only the secret's owner or an admin may change its scope");
    return;
  }
  json_t *doc = json_deep_copy(d);
  static const char *const keys[] = {"description", "tags", "scope", "version"};
  for (int i = 0; i < 4; i++)
    if (json_object_get(c->doc2, keys[i])) json_object_set(doc, keys[i], json_object_get(c->doc2, keys[i]));
  if (!c->text2 || seal(c, doc)) rm_store_doc_put(c->s->store, "secret", doc, replaced, c);
  json_decref(doc);
}

static void h_replace(rm_hctx *c) {
  static const char *const allowed[] = {"value", "description", "tags", "scope", "version", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  json_t *v = json_object_get(b, "version");
  if (!json_is_integer(v) || json_integer_value(v) < 1)
    rm_api_details_add(&d, "$.version", "required: the version you read (an integer from 1)");
  check_value(&d, json_object_get(b, "value"), false);
  check_meta(&d, b);
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  const char *value = json_string_value(json_object_get(b, "value"));
  c->doc2 = json_deep_copy(b);
  if (!c->doc2 || (value && !(c->text2 = strdup(value)))) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  json_object_del(c->doc2, "value");
  rm_store_doc_get(c->s->store, "secret", c->id, replace_got, c);
}

/* ---- delete ---- */

static void deleted(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  const char *name = json_string_value(json_object_get(c->doc, "name"));
  if (!err) {
    rm_secrets_remove(c->s->secrets, name);
    rm_serve_sync_note(c->s, "secret", c->id, c->n, true);
    rm_hctx_audit(c, "secret.delete", "secret", c->id, audit_view(c->doc, true), NULL);
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  rm_hctx_ok(c, 200, json_pack("{s:s, s:b}", "id", c->id, "deleted", 1));
}

static void stripped(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  c->n = (int)json_integer_value(json_object_get(res, "version")); /* the delete keeps it */
  json_decref(res);
  if (err) rm_hctx_store_error(c, err, errmsg); /* also when the client left: nothing changed */
  else rm_store_doc_delete(c->s->store, "secret", c->id, deleted, c);
}

static void delete_got(void *ud, int err, const char *errmsg, json_t *d) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, d)) return;
  c->doc = d;
  if (!visible(c, d)) {
    rm_hctx_error(c, RM_API_NOT_FOUND, "no such secret");
    return;
  }
  json_t *doc = json_deep_copy(d);
  json_object_del(doc, "ciphertext");
  json_object_del(doc, "key_id");
  json_object_set_new(doc, "deleted_by", json_string(rm_hctx_user_name(c)));
  rm_store_doc_put(c->s->store, "secret", doc, stripped, c);
  json_decref(doc);
}

static void h_delete(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  rm_store_doc_get(c->s->store, "secret", c->id, delete_got, c);
}

/* ---- start-up ---- */

/* Decrypts one stored secret into s->secrets; 0 or -1 (logged). */
static int load_one(rm_serve *s, const json_t *d) {
  const char *id = json_string_value(json_object_get(d, "id")), *name = json_string_value(json_object_get(d, "name"));
  const char *ct = json_string_value(json_object_get(d, "ciphertext"));
  char *plain = NULL, err[300] = "";
  size_t len = 0;
  int rc = ct ? rm_vault_decrypt(s->vault, ct, id, &plain, &len, err, sizeof err) : RM_ENOTFOUND;
  if (!ct) snprintf(err, sizeof err, "it has no ciphertext");
  if (rc == 0 && strlen(plain) != len) {
    rc = RM_EINVAL;
    snprintf(err, sizeof err, "the value holds a NUL character");
  }
  if (rc == 0) rc = rm_secrets_set(s->secrets, name, plain, err, sizeof err);
  rm_vault_free_plain(plain, len);
  if (rc) rm_log_error("secrets", "secret %s (%s) is not available to runs: %s", name, id, err);
  return rc ? -1 : 0;
}

int rm__serve_secrets_load(rm_serve *s) {
  int loaded = 0, failed = 0;
  for (json_int_t page = 1, pages = 1; page <= pages; page++) {
    rm__serve_waiter w = {0};
    json_t *q = json_pack("{s:I, s:i, s:s}", "page", page, "page_size", 500, "sort", "created_at");
    rm_store_doc_list(s->store, "secret", q, rm__serve_wait_cb, &w);
    json_decref(q);
    rm__serve_wait(s, &w);
    if (w.err) {
      fprintf(stderr, "restmon serve: loading the secrets: %s\n", w.errmsg);
      return -1;
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(w.res, "items"), i, d) {
      if (load_one(s, d) == 0) loaded++;
      else failed++;
    }
    pages = json_integer_value(json_object_get(w.res, "total_pages"));
    json_decref(w.res);
  }
  if (loaded || failed)
    rm_log_info("secrets", "%d stored secret(s) loaded for runs%s", loaded, failed ? "; see the errors above" : "");
  return 0;
}

void rm__serve_secret_sync(rm_serve *s, const json_t *doc) {
  const char *name = json_string_value(json_object_get(doc, "name"));
  if (!name) return;
  rm_secrets_remove(s->secrets, name); /* the old value stays masked */
  if (rm__serve_live(doc) && json_object_get(doc, "ciphertext")) load_one(s, doc);
}

int rm_serve_secret_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/secrets", h_list, RM_ACCESS_ROLE, RM_MOD_SECRETS, RM_ACT_VIEW},
      {"POST", "/api/v1/secrets", h_create, RM_ACCESS_ROLE, RM_MOD_SECRETS, RM_ACT_CREATE},
      {"GET", "/api/v1/secrets/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_SECRETS, RM_ACT_VIEW},
      {"PUT", "/api/v1/secrets/{id}", h_replace, RM_ACCESS_ROLE, RM_MOD_SECRETS, RM_ACT_EDIT},
      {"DELETE", "/api/v1/secrets/{id}", h_delete, RM_ACCESS_ROLE, RM_MOD_SECRETS, RM_ACT_DELETE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
