/* The design objects' CRUD routes, one handler set for every kind (tasks,
 * workflows, schedules, monitors, channels, mappings; defs.h):
 *   GET    /api/v1/X        list: name, tag, owner, scope, include_deleted
 *                           (admins), page, page_size, sort
 *   POST   /api/v1/X        create -> 201 with the stored document
 *   GET    /api/v1/X/{id}   one (include_deleted=true for admins)
 *   PUT    /api/v1/X/{id}   replace, with the "version" read -> 200
 *   DELETE /api/v1/X/{id}   soft delete -> 200
 * Private objects are seen only by their owner and admins: lists leave
 * them out (and out of the total), and every other route answers 404 as
 * if they did not exist. Writes are audited with before and after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "util/err.h"

static bool is_admin(const rm_hctx *c) { return c->role == RM_ROLE_ADMIN; }

void rm_defs_invalid(rm_hctx *c, rm_dcheck *k) {
  enum rm_api_code code =
      k->unknown == rm_api_details_count(&k->d) ? RM_API_UNKNOWN_FIELDS : RM_API_INVALID;
  rm_api_details d = k->d;
  k->d.list = NULL;
  rm_dc_free(k);
  rm_hctx_invalid(c, code, &d);
}

static void audit(rm_hctx *c, const rm_defkind *dk, const char *verb, json_t *before, json_t *after) {
  char action[64];
  snprintf(action, sizeof action, "%s.%s", dk->kind, verb);
  const char *id = json_string_value(json_object_get(after ? after : before, "id"));
  rm_hctx_audit(c, action, dk->kind, id ? id : c->id, before, after);
}

/* ---- query parameters ---- */

/* "true" / "false" into *out; false for anything else. */
static bool flag(const char *v, bool *out) {
  if (strcmp(v, "true") == 0) *out = true;
  else if (strcmp(v, "false") == 0) *out = false;
  else return false;
  return true;
}

static bool sort_ok(const char *s) {
  static const char *const cols[] = {"name", "created_at", "updated_at", "version", "owner", "scope", NULL};
  if (*s == '-') s++;
  for (size_t i = 0; cols[i]; i++)
    if (strcmp(cols[i], s) == 0) return true;
  return false;
}

/* One list parameter into q, or a detail into d. */
static void list_param(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                       void *ud) {
  bool b;
  (void)ud;
  if (strcmp(name, "include_deleted") == 0) {
    if (!flag(value, &b)) rm_api_details_add(d, path, "expected true or false");
    else json_object_set_new(q, name, json_boolean(b));
  } else if (strcmp(name, "scope") == 0 && strcmp(value, "global") && strcmp(value, "private")) {
    rm_api_details_add(d, path, "expected global or private");
  } else if (strcmp(name, "sort") == 0 && !sort_ok(value)) {
    rm_api_details_add(d, path, "expected one of name, created_at, updated_at, version, owner, scope (a leading "
                                "'-' sorts descending)");
  } else if (!strcmp(name, "name") || !strcmp(name, "tag") || !strcmp(name, "owner") || !strcmp(name, "scope") ||
             !strcmp(name, "sort")) {
    json_object_set_new(q, name, json_string(value));
  } else {
    rm_api_details_add(d, path, "unknown query parameter");
  }
}

/* ---- list, get ---- */

static void h_list(rm_hctx *c) {
  const rm_defkind *dk = rm_defs_kind_of(c);
  json_t *q = rm_hctx_list_query(c, 50, list_param, NULL);
  if (!q) return;
  if (!is_admin(c)) {
    if (json_is_true(json_object_get(q, "include_deleted"))) {
      json_decref(q);
      rm_hctx_error(c, RM_API_FORBIDDEN, "only an admin may list deleted objects (include_deleted)");
      return;
    }
    json_object_set_new(q, "visible_to", json_string(rm_hctx_user_id(c)));
  }
  rm_store_doc_list(c->s->store, dk->kind, q, rm_defs_answer, c);
  json_decref(q);
}

static void got_one(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err == RM_ENOTFOUND ? 0 : err, errmsg, doc)) return;
  bool deleted = doc && !json_is_null(json_object_get(doc, "deleted_at"));
  if (!doc || !rm_defs_visible(c, doc) || (deleted && !c->n)) {
    json_decref(doc);
    rm_defs_not_found(c, rm_defs_kind_of(c)->kind);
    return;
  }
  rm_hctx_ok(c, 200, doc);
}

static void h_get(rm_hctx *c) {
  rm_api_details d = RM_API_DETAILS_INIT;
  bool del = false;
  for (size_t i = 0, n = rm_api_req_query_count(c->req); i < n; i++) {
    const char *name, *value;
    rm_api_req_query_at(c->req, i, &name, &value);
    char path[200];
    snprintf(path, sizeof path, "query.%.150s", name);
    if (strcmp(name, "include_deleted") != 0) rm_api_details_add(&d, path, "unknown query parameter");
    else if (!flag(value, &del)) rm_api_details_add(&d, "query.include_deleted", "expected true or false");
  }
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID_QUERY, &d);
    return;
  }
  if (del && !is_admin(c)) {
    rm_hctx_error(c, RM_API_FORBIDDEN, "only an admin may read deleted objects (include_deleted)");
    return;
  }
  c->n = del;
  rm_store_doc_get(c->s->store, rm_defs_kind_of(c)->kind, c->id, got_one, c);
}

/* ---- the write path: checks, references, prepare, store ---- */

/* A name clash reveals no id (it may be someone's private object). */
static void write_failed(rm_hctx *c, const rm_defkind *dk, int err, const char *errmsg) {
  if (err == RM_ECONFLICT && strstr(errmsg, "is already used")) {
    char msg[400];
    snprintf(msg, sizeof msg, "a %s named '%.200s' already exists (names are unique per kind)", dk->kind,
             json_string_value(json_object_get(c->doc, "name")));
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  rm_hctx_store_error(c, err, errmsg);
}

static void written(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  const rm_defkind *dk = rm_defs_kind_of(c);
  if (err && c->req) {
    json_decref(doc);
    write_failed(c, dk, err, errmsg);
    return;
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, doc)) return;
  bool update = c->n == 1;
  audit(c, dk, c->verb ? c->verb : update ? "update" : "create", json_incref(c->doc2), json_incref(doc));
  rm_serve_sync_note(c->s, dk->kind, json_string_value(json_object_get(doc, "id")),
                     json_integer_value(json_object_get(doc, "version")), false); /* the feed skips it */
  rm_serve_sched_def_changed(c->s, dk->kind, json_string_value(json_object_get(doc, "id")), doc);
  rm_serve_maintenance_changed(c->s, dk->kind);
  rm_serve_signals_def_changed(c->s, dk->kind);
  rm_hctx_ok(c, update ? 200 : 201, doc);
}

static void refs_checked(rm_hctx *c, const json_t *wanted, const json_t *found, void *ud) {
  (void)ud;
  rm_dcheck k;
  rm_dc_init(&k, c);
  size_t i;
  const json_t *w;
  json_array_foreach(wanted, i, w) if (json_is_null(json_array_get(found, i)))
      rm_dc_add(&k, json_string_value(json_object_get(w, "path")), NULL, "no %s with id '%s' that you may use",
                json_string_value(json_object_get(w, "kind")), json_string_value(json_object_get(w, "id")));
  if (rm_api_details_count(&k.d)) {
    rm_defs_invalid(c, &k);
    return;
  }
  rm_dc_free(&k);
  const rm_defkind *dk = rm_defs_kind_of(c);
  rm_hstep write = c->next;
  if (dk->prepare) dk->prepare(c, write);
  else write(c);
}

/* Checks c->doc; then references, prepare and write(c). */
static void check_then(rm_hctx *c, const rm_defkind *dk, bool update, rm_hstep write) {
  rm_dcheck k;
  rm_dc_init(&k, c);
  rm_defs_check_body(&k, dk, c->doc, update);
  if (rm_api_details_count(&k.d)) {
    rm_defs_invalid(c, &k);
    return;
  }
  json_t *refs = json_incref(k.refs);
  rm_dc_free(&k);
  c->next = write;
  rm_defs_lookup(c, refs, refs_checked, NULL, NULL);
}

static void create_write(rm_hctx *c) {
  json_object_set_new(c->doc, "owner", json_string(rm_hctx_user_id(c)));
  rm_store_doc_put(c->s->store, rm_defs_kind_of(c)->kind, c->doc, written, c);
}

void rm_defs_create(rm_hctx *c, const rm_defkind *dk) { check_then(c, dk, false, create_write); }

/* The body as an object (a copy in c->doc); false: answered. */
static bool body_copy(rm_hctx *c) {
  json_t *b = rm_api_req_json(c->req);
  if (!b) {
    c->req = NULL;
    rm_hctx_free(c);
    return false;
  }
  if (!json_is_object(b)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$", "expected an object");
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return false;
  }
  c->doc = json_deep_copy(b);
  return true;
}

static void h_create(rm_hctx *c) {
  if (body_copy(c)) rm_defs_create(c, rm_defs_kind_of(c));
}

/* ---- update, delete ---- */

static void update_write(rm_hctx *c) {
  const rm_defkind *dk = rm_defs_kind_of(c);
  const json_t *old = c->doc2;
  const char *uid = rm_hctx_user_id(c), *owner = json_string_value(json_object_get(old, "owner"));
  const json_t *scope = json_object_get(c->doc, "scope");
  bool owns = owner && uid && strcmp(owner, uid) == 0;
  if (scope && !json_equal(scope, json_object_get(old, "scope")) && !owns && !is_admin(c)) {
    rm_hctx_error(c, RM_API_FORBIDDEN, "only the owner or an admin may change the scope");
    return;
  }
  if (!scope) json_object_set(c->doc, "scope", json_object_get(old, "scope"));
  if (!json_object_get(c->doc, "owner") && owner) json_object_set_new(c->doc, "owner", json_string(owner));
  json_object_set_new(c->doc, "id", json_string(c->id));
  c->n = 1;
  rm_store_doc_put(c->s->store, dk->kind, c->doc, written, c);
}

static void update_loaded(rm_hctx *c) { check_then(c, rm_defs_kind_of(c), true, update_write); }

static void h_update(rm_hctx *c) {
  if (body_copy(c)) rm_defs_load(c, rm_defs_kind_of(c)->kind, update_loaded);
}

static void deleted(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  audit(c, rm_defs_kind_of(c), "delete", json_incref(c->doc2), NULL);
  rm_serve_sync_note(c->s, rm_defs_kind_of(c)->kind, c->id, json_integer_value(json_object_get(c->doc2, "version")),
                     true); /* the feed skips it */
  rm_serve_sched_def_changed(c->s, rm_defs_kind_of(c)->kind, c->id, NULL);
  rm_serve_maintenance_changed(c->s, rm_defs_kind_of(c)->kind);
  rm_serve_signals_def_changed(c->s, rm_defs_kind_of(c)->kind);
  rm_hctx_ok(c, 200, json_pack("{s:s, s:b}", "id", c->id, "deleted", 1));
}

static void delete_loaded(rm_hctx *c) { rm_store_doc_delete(c->s->store, rm_defs_kind_of(c)->kind, c->id, deleted, c); }

static void h_delete(rm_hctx *c) {
  if (rm_hctx_empty_body(c)) rm_defs_load(c, rm_defs_kind_of(c)->kind, delete_loaded);
}

/* ---- routes ---- */

#define CRUD(plural, mod)                                                                                        \
  {"GET", "/api/v1/" plural, h_list, RM_ACCESS_ROLE, mod, RM_ACT_VIEW},                                          \
      {"POST", "/api/v1/" plural, h_create, RM_ACCESS_ROLE, mod, RM_ACT_CREATE},                                 \
      {"GET", "/api/v1/" plural "/{id}", h_get, RM_ACCESS_ROLE, mod, RM_ACT_VIEW},                               \
      {"PUT", "/api/v1/" plural "/{id}", h_update, RM_ACCESS_ROLE, mod, RM_ACT_EDIT},                            \
      {"DELETE", "/api/v1/" plural "/{id}", h_delete, RM_ACCESS_ROLE, mod, RM_ACT_DELETE}

int rm_serve_def_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      CRUD("tasks", RM_MOD_TASKS),         CRUD("workflows", RM_MOD_WORKFLOWS), CRUD("schedules", RM_MOD_SCHEDULES),
      CRUD("monitors", RM_MOD_MONITORS),   CRUD("channels", RM_MOD_CHANNELS),   CRUD("mappings", RM_MOD_MONITORS),
      CRUD("maintenance-windows", RM_MOD_MONITORS),
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
