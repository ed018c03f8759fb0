/* Finding definitions as the caller may see them: one by the route's id
 * (absent, deleted and someone else's private object all answer the same
 * 404, so nothing reveals that a private object exists), and the objects
 * a body refers to, one after the other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "util/err.h"

bool rm_defs_visible(const rm_hctx *c, const json_t *doc) {
  enum rm_scope scope = RM_SCOPE_PRIVATE; /* an unknown scope counts as private */
  rm_rbac_scope_parse(json_string_value(json_object_get(doc, "scope")), &scope);
  return rm_rbac_visible(c->role, rm_hctx_user_id(c), json_string_value(json_object_get(doc, "owner")), scope);
}

static bool live(const json_t *doc) { return doc && json_is_null(json_object_get(doc, "deleted_at")); }

void rm_defs_not_found(rm_hctx *c, const char *kind) {
  char msg[300];
  snprintf(msg, sizeof msg, "%s %.200s: not found", kind, c->id ? c->id : "");
  rm_hctx_error(c, RM_API_NOT_FOUND, msg);
}

void rm_defs_answer(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  rm_hctx_ok(c, 200, res);
}

/* ---- one object by the route's id ---- */

static void loaded(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  const char *kind = c->text2;
  if (rm_hctx_done_if_failed(c, err == RM_ENOTFOUND ? 0 : err, errmsg, doc)) return;
  if (!live(doc) || !rm_defs_visible(c, doc)) {
    json_decref(doc);
    char k[32];
    snprintf(k, sizeof k, "%s", kind ? kind : "object");
    rm_defs_not_found(c, k);
    return;
  }
  json_decref(c->doc2);
  c->doc2 = doc;
  c->next(c);
}

void rm_defs_load(rm_hctx *c, const char *kind, rm_hstep next) {
  c->next = next;
  free(c->text2);
  if (!(c->text2 = strdup(kind))) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_store_doc_get(c->s->store, kind, c->id, loaded, c);
}

/* ---- the objects a body refers to ---- */

typedef struct lookup {
  rm_hctx *c;
  json_t *wanted, *found;
  size_t i;
  rm_defs_found_cb done;
  void *ud;
  void (*ud_free)(void *);
} lookup;

static void lookup_free(lookup *l) {
  json_decref(l->wanted);
  json_decref(l->found);
  if (l->ud_free) l->ud_free(l->ud);
  free(l);
}

/* Frees l and answers (or just frees) c when the client has gone or the
 * store failed; true then. */
static bool lookup_failed(lookup *l, int err, const char *errmsg, json_t *res) {
  if (!err && l->c->req) return false;
  rm_hctx *c = l->c;
  lookup_free(l);
  rm_hctx_done_if_failed(c, err, errmsg, res);
  return true;
}

static bool usable(const lookup *l, const json_t *doc) {
  const char *kind = json_string_value(json_object_get(json_array_get(l->wanted, l->i), "kind"));
  return live(doc) && (strcmp(kind, "user") == 0 || rm_defs_visible(l->c, doc));
}

static void next_item(lookup *l);

static void found_one(lookup *l, json_t *doc) {
  json_array_append_new(l->found, doc ? doc : json_null());
  l->i++;
  next_item(l);
}

static void got_by_name(void *ud, int err, const char *errmsg, json_t *res) {
  lookup *l = ud;
  if (lookup_failed(l, err, errmsg, res)) return;
  json_t *doc = json_array_get(json_object_get(res, "items"), 0);
  doc = doc && usable(l, doc) ? json_incref(doc) : NULL;
  json_decref(res);
  found_one(l, doc);
}

static void got_by_id(void *ud, int err, const char *errmsg, json_t *doc) {
  lookup *l = ud;
  if (lookup_failed(l, err == RM_ENOTFOUND ? 0 : err, errmsg, doc)) return;
  if (doc && usable(l, doc)) {
    found_one(l, doc);
    return;
  }
  json_decref(doc);
  const json_t *item = json_array_get(l->wanted, l->i);
  if (!json_is_true(json_object_get(item, "by_name"))) {
    found_one(l, NULL);
    return;
  }
  json_t *q = json_pack("{s:O, s:i}", "name_is", json_object_get(item, "id"), "page_size", 1);
  if (l->c->role != RM_ROLE_ADMIN) json_object_set_new(q, "visible_to", json_string(rm_hctx_user_id(l->c)));
  rm_store_doc_list(l->c->s->store, json_string_value(json_object_get(item, "kind")), q, got_by_name, l);
  json_decref(q);
}

static void next_item(lookup *l) {
  if (l->i < json_array_size(l->wanted)) {
    const json_t *item = json_array_get(l->wanted, l->i);
    rm_store_doc_get(l->c->s->store, json_string_value(json_object_get(item, "kind")),
                     json_string_value(json_object_get(item, "id")), got_by_id, l);
    return;
  }
  rm_defs_found_cb done = l->done;
  json_t *wanted = l->wanted, *found = l->found;
  void *ud = l->ud;
  void (*ud_free)(void *) = l->ud_free;
  rm_hctx *c = l->c;
  free(l);
  done(c, wanted, found, ud);
  json_decref(wanted);
  json_decref(found);
  if (ud_free) ud_free(ud);
}

void rm_defs_lookup(rm_hctx *c, json_t *wanted, rm_defs_found_cb done, void *ud, void (*ud_free)(void *)) {
  lookup *l = calloc(1, sizeof *l);
  json_t *found = json_array();
  if (!l || !found || !wanted) {
    free(l);
    json_decref(found);
    json_decref(wanted);
    if (ud_free) ud_free(ud);
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  *l = (lookup){c, wanted, found, 0, done, ud, ud_free};
  next_item(l);
}
