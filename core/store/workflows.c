/* Workflow versions: publishing freezes the draft's definition (or one
 * derived from it) as the next immutable version (the table refuses
 * UPDATE and DELETE), and the versions are read one at a time or listed. */
#include "store/store_internal.h"
#include "util/err.h"

#define VERSION_COLS "workflow_id, version, definition, published_at, published_by"

/* The draft must still be at the document version the caller read when
 * it says which (it froze a definition derived from that draft). */
static int draft_unchanged(rm__job *j, const json_t *doc) {
  const json_t *want = json_object_get(j->args, "draft_version");
  json_int_t cur = json_integer_value(json_object_get(doc, "version"));
  if (!json_is_integer(want) || json_integer_value(want) == cur) return 0;
  return rm__fail(j, RM_ECONFLICT,
                  "workflow '%s': the draft changed meanwhile (version %" JSON_INTEGER_FORMAT
                  " was read, the current version is %" JSON_INTEGER_FORMAT ")",
                  rm__str(doc, "name"), json_integer_value(want), cur);
}

static int publish_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "workflow_id"), *actor = rm__str(j->args, "actor");
  json_t *doc = NULL, *last = NULL, *row = NULL;
  /* PostgreSQL: the draft row locked, so an edit cannot land between
   * reading the draft and freezing it (SQLite's one writer already). */
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &doc,
                             rm__conn_pg(c) ? "SELECT name, version, body FROM documents WHERE id = $1 AND kind = "
                                              "'workflow' AND deleted_at IS NULL FOR UPDATE"
                                            : "SELECT name, version, body FROM documents WHERE id = $1 AND kind = "
                                              "'workflow' AND deleted_at IS NULL",
                             json_pack("[s]", id)));
  if (rc == 0 && !doc) rc = rm__fail(j, RM_ENOTFOUND, "workflow %s: not found", id);
  if (rc == 0) rc = draft_unchanged(j, doc);
  const json_t *def = json_object_get(j->args, "definition");
  if (!def) def = json_object_get(json_object_get(doc, "body"), "definition");
  if (rc == 0 && !json_is_object(def))
    rc = rm__fail(j, RM_EINVAL, "workflow '%s': definition: required (an object) to publish", rm__str(doc, "name"));
  if (rc == 0)
    rc = rm__dbfail(j, c,
                    rm__q1(c, &last, "SELECT COALESCE(max(version), 0) AS v FROM workflow_versions WHERE workflow_id = $1",
                           json_pack("[s]", id)));
  if (rc == 0) {
    json_int_t next = json_integer_value(json_object_get(last, "v")) + 1;
    rc = rm__q1(c, &row,
                "INSERT INTO workflow_versions (workflow_id, version, definition, published_at, published_by) "
                "VALUES ($1, $2, $3, rm_now(), $4) RETURNING workflow_id, version, published_at",
                json_pack("[s I O s?]", id, next, def, actor));
    if (rc == RM_ECONFLICT) rc = RM__ERETRY; /* published concurrently: take the next number */
    rc = rm__dbfail(j, c, rc);
  }
  /* The document's updated_at moves (its version, the draft's, does not):
   * the change feed tells other servers that checks of this workflow now
   * run another version. */
  if (rc == 0)
    rc = rm__dbfail(j, c, rm__qx(c, NULL, "UPDATE documents SET updated_at = rm_now() WHERE id = $1", json_pack("[s]", id)));
  if (rc == 0) j->result = json_incref(row);
  json_decref(doc);
  json_decref(last);
  json_decref(row);
  return rc;
}

static int version_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "workflow_id");
  json_int_t v = json_integer_value(json_object_get(j->args, "version"));
  json_t *row = NULL;
  int rc = v > 0 ? rm__q1(c, &row, "SELECT " VERSION_COLS " FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
                          json_pack("[sI]", id, v))
                 : rm__q1(c, &row,
                          "SELECT " VERSION_COLS " FROM workflow_versions WHERE workflow_id = $1 "
                          "ORDER BY version DESC LIMIT 1",
                          json_pack("[s]", id));
  if ((rc = rm__dbfail(j, c, rc)) != 0) return rc;
  if (!row) {
    if (v > 0) return rm__fail(j, RM_ENOTFOUND, "workflow %s: no version %" JSON_INTEGER_FORMAT, id, v);
    return rm__fail(j, RM_ENOTFOUND, "workflow %s: no published version", id);
  }
  j->result = row;
  return 0;
}

static int versions_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"version", "published_at", "published_by", NULL};
  const json_t *query = json_object_get(j->args, "query");
  rm__page p;
  rm__sql q;
  int rc = rm__page_parse(j, query, sorts, "-version", "version", &p);
  if (rc != 0) return rc;
  rm__sql_init(&q);
  rm__sql_add(&q, "FROM workflow_versions WHERE workflow_id = ?", json_string(rm__str(j->args, "workflow_id")));
  return rm__page_run(c, j, "workflow_id, version, published_at, published_by", &q, &p);
}

static const rm__op publish_op = {"workflow_publish", RM__OP_WRITE, publish_run};
static const rm__op version_op = {"workflow_version", RM__OP_READ, version_run};
static const rm__op versions_op = {"workflow_versions", RM__OP_READ, versions_run};

void rm_store_workflow_publish(rm_store *s, const char *workflow_id, const char *actor, rm_store_cb cb, void *ud) {
  rm__submit(s, &publish_op, json_pack("{s:s, s:s?}", "workflow_id", workflow_id, "actor", actor), cb, ud);
}

void rm_store_workflow_publish_def(rm_store *s, const char *workflow_id, const char *actor, const json_t *definition,
                                   json_int_t draft_version, rm_store_cb cb, void *ud) {
  rm__submit(s, &publish_op,
             json_pack("{s:s, s:s?, s:o, s:I}", "workflow_id", workflow_id, "actor", actor, "definition",
                       rm__copy(definition), "draft_version", draft_version),
             cb, ud);
}

void rm_store_workflow_versions(rm_store *s, const char *workflow_id, const json_t *query, rm_store_cb cb,
                                void *ud) {
  json_t *q = query ? json_deep_copy(query) : json_object();
  rm__submit(s, &versions_op, json_pack("{s:s, s:o}", "workflow_id", workflow_id, "query", q), cb, ud);
}

void rm_store_workflow_version(rm_store *s, const char *workflow_id, int version, rm_store_cb cb, void *ud) {
  rm__submit(s, &version_op, json_pack("{s:s, s:i}", "workflow_id", workflow_id, "version", version), cb, ud);
}
