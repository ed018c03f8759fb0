/* Definitions: JSON documents of a kind, with the metadata the store owns
 * (id, kind, name, owner, scope, tags, version, times) in columns and the
 * rest of the object kept as is in body. The change feed lists the
 * documents written or deleted since a time, for servers sharing the
 * store (a soft delete sets updated_at too, so it is a change). */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

#define DOC_COLS "id, kind, name, owner, scope, tags, version, created_at, updated_at, deleted_at, body"

static const char *const kinds[] = {"task",   "workflow", "schedule", "monitor", "channel", "secret",
                                    "user",   "config",   "mapping",  "session", "apikey",  "maintenance", NULL};
static const char *const meta[] = {"id",         "kind",       "name",       "owner",      "scope", "tags",
                                   "version",    "created_at", "updated_at", "deleted_at", NULL};

static int check_kind(rm__job *j, const char *kind) {
  if (rm__one_of(kind, kinds)) return 0;
  return rm__fail(j, RM_EINVAL,
                  "kind '%s': not one of task, workflow, schedule, monitor, channel, secret, user, config, mapping, "
                  "session, apikey, maintenance",
                  kind ? kind : "");
}

/* The document as callers see it: body plus the metadata columns. */
static json_t *doc_from_row(const json_t *row) {
  const json_t *body = json_object_get(row, "body");
  json_t *doc = json_is_object(body) ? json_deep_copy(body) : json_object();
  for (const char *const *m = meta; doc && *m; m++) json_object_set(doc, *m, json_object_get(row, *m));
  return doc;
}

/* The metadata of a document being written, checked field by field. */
typedef struct doc_meta {
  const char *id, *name, *owner, *scope;
  json_t *tags; /* borrowed from the document, or NULL for [] */
  bool has_version;
  json_int_t version;
} doc_meta;

static int tags_valid(const json_t *tags) {
  if (!json_is_array(tags)) return 0;
  size_t i;
  const json_t *t;
  json_array_foreach(tags, i, t) if (!json_is_string(t)) return 0;
  return 1;
}

static int read_meta(rm__job *j, const char *kind, const json_t *doc, doc_meta *m) {
  const json_t *id = json_object_get(doc, "id"), *owner = json_object_get(doc, "owner");
  const json_t *scope = json_object_get(doc, "scope"), *version = json_object_get(doc, "version");
  memset(m, 0, sizeof *m);
  m->name = rm__str(doc, "name");
  m->tags = json_object_get(doc, "tags");
  if (!m->name || !m->name[0]) return rm__fail(j, RM_EINVAL, "%s: name: required (a non-empty string)", kind);
  if (id && !json_is_null(id) && (!json_is_string(id) || !json_string_length(id)))
    return rm__fail(j, RM_EINVAL, "%s '%s': id: must be a non-empty string", kind, m->name);
  if (owner && !json_is_null(owner) && !json_is_string(owner))
    return rm__fail(j, RM_EINVAL, "%s '%s': owner: must be a string", kind, m->name);
  if (m->tags && !json_is_null(m->tags) && !tags_valid(m->tags))
    return rm__fail(j, RM_EINVAL, "%s '%s': tags: must be an array of strings", kind, m->name);
  if (version && !json_is_null(version) && !json_is_integer(version))
    return rm__fail(j, RM_EINVAL, "%s '%s': version: must be an integer", kind, m->name);
  m->id = json_string_value(id);
  m->owner = json_string_value(owner);
  /* secrets are private unless their creator says otherwise (DESIGN.md) */
  m->scope = scope && !json_is_null(scope) ? json_string_value(scope) : strcmp(kind, "secret") ? "global" : "private";
  if (!m->scope || (strcmp(m->scope, "global") && strcmp(m->scope, "private")))
    return rm__fail(j, RM_EINVAL, "%s '%s': scope: must be \"global\" or \"private\"", kind, m->name);
  if (json_is_null(m->tags)) m->tags = NULL;
  m->has_version = json_is_integer(version);
  m->version = json_integer_value(version);
  return 0;
}

static json_t *body_of(const json_t *doc) {
  json_t *body = json_deep_copy(doc);
  for (const char *const *m = meta; body && *m; m++) json_object_del(body, *m);
  return body;
}

/* An existing document with the id must be of the kind, live, and at the
 * version the writer read (when it says). *exists tells which. */
static int check_existing(rm__conn *c, rm__job *j, const char *kind, const doc_meta *m, bool *exists) {
  json_t *row = NULL;
  *exists = false;
  if (!m->id) return 0;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row, "SELECT kind, version, deleted_at FROM documents WHERE id = $1",
                             json_pack("[s]", m->id)));
  if (rc != 0 || !row) return rc;
  const char *had = rm__str(row, "kind");
  json_int_t cur = json_integer_value(json_object_get(row, "version"));
  *exists = true;
  if (strcmp(had, kind) != 0)
    rc = rm__fail(j, RM_ECONFLICT, "%s '%s': id %s already belongs to a %s", kind, m->name, m->id, had);
  else if (!json_is_null(json_object_get(row, "deleted_at")))
    rc = rm__fail(j, RM_ENOTFOUND, "%s %s: was deleted", kind, m->id);
  else if (m->has_version && m->version != cur)
    rc = rm__fail(j, RM_ECONFLICT,
                  "%s '%s': version %" JSON_INTEGER_FORMAT " is not the current version %" JSON_INTEGER_FORMAT
                  " (it was changed meanwhile)",
                  kind, m->name, m->version, cur);
  json_decref(row);
  return rc;
}

static int name_taken(rm__conn *c, rm__job *j, const char *kind, const doc_meta *m) {
  json_t *row = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row,
                             "SELECT id FROM documents WHERE kind = $1 AND name = $2 AND deleted_at IS NULL "
                             "AND id <> $3",
                             json_pack("[sss]", kind, m->name, m->id ? m->id : "")));
  if (rc == 0 && row)
    rc = rm__fail(j, RM_ECONFLICT, "%s name '%s' is already used by %s", kind, m->name, rm__str(row, "id"));
  json_decref(row);
  return rc;
}

static int write_doc(rm__conn *c, rm__job *j, const char *kind, const doc_meta *m, bool exists, json_t *body) {
  char id[37];
  json_t *row = NULL;
  json_t *tags = m->tags ? json_deep_copy(m->tags) : json_array();
  int rc;
  if (exists) {
    rc = rm__q1(c, &row,
                "UPDATE documents SET name = $2, owner = $3, scope = $4, tags = $5, body = $6, "
                "version = version + 1, updated_at = rm_now() WHERE id = $1 RETURNING " DOC_COLS,
                json_pack("[s s s? s o o]", m->id, m->name, m->owner, m->scope, tags, body));
  } else {
    if (!m->id && rm__uuid(id) != 0) return rm__fail(j, RM_EIO, "%s '%s': cannot make an id", kind, m->name);
    rc = rm__q1(c, &row,
                "INSERT INTO documents (id, kind, name, owner, scope, tags, version, created_at, updated_at, body) "
                "VALUES ($1, $2, $3, $4, $5, $6, 1, rm_now(), rm_now(), $7) RETURNING " DOC_COLS,
                json_pack("[s s s s? s o o]", m->id ? m->id : id, kind, m->name, m->owner, m->scope, tags, body));
  }
  if (rc == RM_ECONFLICT) /* a concurrent writer took the name after our check */
    return rm__fail(j, rc, "%s name '%s' is already used", kind, m->name);
  if ((rc = rm__dbfail(j, c, rc)) == 0) j->result = doc_from_row(row);
  json_decref(row);
  return rc;
}

static int doc_put_run(rm__conn *c, rm__job *j) {
  const char *kind = rm__str(j->args, "kind");
  const json_t *doc = json_object_get(j->args, "doc");
  doc_meta m;
  bool exists;
  int rc = check_kind(j, kind);
  if (rc == 0 && !json_is_object(doc)) rc = rm__fail(j, RM_EINVAL, "%s: the document must be a JSON object", kind);
  if (rc == 0) rc = read_meta(j, kind, doc, &m);
  if (rc == 0) rc = check_existing(c, j, kind, &m, &exists);
  if (rc == 0) rc = name_taken(c, j, kind, &m);
  if (rc != 0) return rc;
  json_t *body = body_of(doc);
  if (!body) return rm__fail(j, RM_ENOMEM, "out of memory");
  return write_doc(c, j, kind, &m, exists, body);
}

static int doc_get_run(rm__conn *c, rm__job *j) {
  const char *kind = rm__str(j->args, "kind"), *id = rm__str(j->args, "id");
  json_t *row = NULL;
  int rc = check_kind(j, kind);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, &row, "SELECT " DOC_COLS " FROM documents WHERE kind = $1 AND id = $2",
                           json_pack("[ss]", kind, id)));
  if (rc == 0 && !row) return rm__fail(j, RM_ENOTFOUND, "%s %s: not found", kind, id);
  if (rc == 0) j->result = doc_from_row(row);
  json_decref(row);
  return rc;
}

static int doc_delete_run(rm__conn *c, rm__job *j) {
  const char *kind = rm__str(j->args, "kind"), *id = rm__str(j->args, "id");
  int64_t n = 0;
  int rc = check_kind(j, kind);
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__qx(c, &n,
                           "UPDATE documents SET deleted_at = rm_now(), updated_at = rm_now() "
                           "WHERE kind = $1 AND id = $2 AND deleted_at IS NULL",
                           json_pack("[ss]", kind, id)));
  if (rc == 0 && n == 0) rc = rm__fail(j, RM_ENOTFOUND, "%s %s: not found (or already deleted)", kind, id);
  return rc;
}

/* "%x_y%" for LIKE, with the wildcards of the input taken literally. */
static json_t *like_pattern(const char *s) {
  rm_buf b = RM_BUF_INIT;
  rm_buf_putc(&b, '%');
  for (; *s; s++) {
    if (*s == '%' || *s == '_' || *s == '\\') rm_buf_putc(&b, '\\');
    rm_buf_putc(&b, *s);
  }
  rm_buf_putc(&b, '%');
  json_t *v = json_string(b.data);
  rm_buf_free(&b);
  return v;
}

/* Adds "AND <tags column contains tag>" on either backend. */
void rm__sql_tag(rm__sql *q, bool pg, const char *col, const char *tag) {
  char frag[200];
  if (pg) {
    snprintf(frag, sizeof frag, " AND %s @> CAST(? AS jsonb)", col);
    rm__sql_add(q, frag, json_pack("[s]", tag));
  } else {
    snprintf(frag, sizeof frag, " AND EXISTS (SELECT 1 FROM json_each(%s) WHERE value = ?)", col);
    rm__sql_add(q, frag, json_string(tag));
  }
}

static int doc_filters(rm__conn *c, rm__job *j, const char *kind, const json_t *query, rm__sql *q) {
  static const char *const strs[] = {"name", "name_is", "owner", "scope", "tag", "visible_to", NULL};
  for (const char *const *k = strs; *k; k++) {
    const json_t *v = json_object_get(query, *k);
    if (v && !json_is_null(v) && !json_is_string(v)) return rm__fail(j, RM_EINVAL, "%s: must be a string", *k);
  }
  const char *name = rm__str(query, "name"), *owner = rm__str(query, "owner");
  const char *scope = rm__str(query, "scope"), *tag = rm__str(query, "tag");
  rm__sql_add(q, "FROM documents WHERE kind = ?", json_string(kind));
  if (!json_is_true(json_object_get(query, "include_deleted"))) rm__sql_add(q, " AND deleted_at IS NULL");
  if (name && *name) rm__sql_add(q, " AND lower(name) LIKE lower(?) ESCAPE '\\'", like_pattern(name));
  if (owner) rm__sql_add(q, " AND owner = ?", json_string(owner));
  if (scope) rm__sql_add(q, " AND scope = ?", json_string(scope));
  if (tag) rm__sql_tag(q, rm__conn_pg(c), "tags", tag);
  const char *exact = rm__str(query, "name_is");
  if (exact) rm__sql_add(q, " AND name = ?", json_string(exact));
  /* in the WHERE clause, not after the query: totals count only these */
  const char *viewer = rm__str(query, "visible_to");
  if (viewer) rm__sql_add(q, " AND (scope = 'global' OR owner = ?)", json_string(viewer));
  return 0;
}

static int doc_list_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"name", "created_at", "updated_at", "version", "owner", "scope", NULL};
  const char *kind = rm__str(j->args, "kind");
  const json_t *query = json_object_get(j->args, "query");
  rm__page p;
  rm__sql q;
  int rc = check_kind(j, kind);
  if (rc == 0) rc = rm__page_parse(j, query, sorts, "name", "id", &p);
  if (rc != 0) return rc;
  rm__sql_init(&q);
  if ((rc = doc_filters(c, j, kind, query, &q)) != 0) {
    rm__sql_free(&q);
    return rc;
  }
  if ((rc = rm__page_run(c, j, DOC_COLS, &q, &p)) != 0) return rc;
  json_t *items = json_object_get(j->result, "items"), *row;
  size_t i;
  json_array_foreach(items, i, row) json_array_set_new(items, i, doc_from_row(row));
  return 0;
}

/* ---- the change feed ---- */

#define CHANGES_MAX 100000

/* "kind IN (...)" of the job's kinds, each checked. */
static int changes_kinds(rm__job *j, const json_t *kinds, rm__sql *q) {
  size_t i;
  const json_t *k;
  if (!json_array_size(kinds)) return rm__fail(j, RM_EINVAL, "document changes: kinds: at least one is needed");
  rm__sql_add(q, "FROM documents WHERE kind IN (");
  json_array_foreach(kinds, i, k) {
    int rc = check_kind(j, json_string_value(k));
    if (rc != 0) return rc;
    rm__sql_add(q, i ? ", ?" : "?", json_string(json_string_value(k)));
  }
  rm__sql_add(q, ")");
  return 0;
}

static int doc_changes_run(rm__conn *c, rm__job *j) {
  json_int_t limit = json_integer_value(json_object_get(j->args, "limit"));
  json_t *rows = NULL;
  rm__sql q;
  if (limit < 1 || limit > CHANGES_MAX)
    return rm__fail(j, RM_EINVAL, "document changes: limit: must be from 1 to %d", CHANGES_MAX);
  rm__sql_init(&q);
  int rc = changes_kinds(j, json_object_get(j->args, "kinds"), &q);
  if (rc == 0) rc = rm__sql_time(j, &q, j->args, "since", " AND updated_at >= ?");
  if (rc == 0) {
    rm__sql_add(&q, " ORDER BY updated_at, id LIMIT ?", json_integer(limit));
    rc = q.err ? rm__fail(j, RM_ENOMEM, "out of memory") : 0;
  }
  rm_buf sql = RM_BUF_INIT;
  if (rc == 0 && rm_buf_printf(&sql, "SELECT " DOC_COLS " %s", q.b.data)) rc = rm__fail(j, RM_ENOMEM, "out of memory");
  if (rc == 0) rc = rm__dbfail(j, c, rm__q(c, &rows, sql.data, json_incref(q.params)));
  rm_buf_free(&sql);
  rm__sql_free(&q);
  if (rc != 0) return rc;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) json_array_set_new(rows, i, doc_from_row(row));
  j->result = rows;
  return 0;
}

static const rm__op doc_put_op = {"doc_put", RM__OP_WRITE, doc_put_run};
static const rm__op doc_get_op = {"doc_get", RM__OP_READ, doc_get_run};
static const rm__op doc_delete_op = {"doc_delete", RM__OP_WRITE, doc_delete_run};
static const rm__op doc_list_op = {"doc_list", RM__OP_READ, doc_list_run};
static const rm__op doc_changes_op = {"doc_changes", RM__OP_READ, doc_changes_run};

void rm_store_doc_put(rm_store *s, const char *kind, const json_t *doc, rm_store_cb cb, void *ud) {
  rm__submit(s, &doc_put_op, json_pack("{s:s?, s:o}", "kind", kind, "doc", rm__copy(doc)), cb, ud);
}

void rm_store_doc_get(rm_store *s, const char *kind, const char *id, rm_store_cb cb, void *ud) {
  rm__submit(s, &doc_get_op, json_pack("{s:s?, s:s}", "kind", kind, "id", id), cb, ud);
}

void rm_store_doc_delete(rm_store *s, const char *kind, const char *id, rm_store_cb cb, void *ud) {
  rm__submit(s, &doc_delete_op, json_pack("{s:s?, s:s}", "kind", kind, "id", id), cb, ud);
}

void rm_store_doc_list(rm_store *s, const char *kind, const json_t *query, rm_store_cb cb, void *ud) {
  json_t *q = query ? json_deep_copy(query) : json_object();
  rm__submit(s, &doc_list_op, json_pack("{s:s?, s:o}", "kind", kind, "query", q), cb, ud);
}

void rm_store_doc_changes(rm_store *s, const char *const *kinds, const char *since, int limit, rm_store_cb cb,
                          void *ud) {
  json_t *k = json_array();
  for (size_t i = 0; k && kinds && kinds[i]; i++) json_array_append_new(k, json_string(kinds[i]));
  rm__submit(s, &doc_changes_op, json_pack("{s:o?, s:s?, s:i}", "kinds", k, "since", since, "limit", limit), cb, ud);
}
