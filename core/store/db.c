/* What both backends share: choosing one by URL, the query shorthands,
 * transactions, and how result columns and parameters are typed. */
#include "store/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_dump.h"

const rm__backend *rm__backend_for(const char *url, const char **target) {
  if (strncmp(url, "sqlite:", 7) == 0) {
    const char *p = url + 7;
    /* "sqlite:///abs/path" and "sqlite://rel" are accepted too */
    if (strncmp(p, "//", 2) == 0) p += 2;
    *target = p;
    return *p ? &rm__sqlite_backend : NULL;
  }
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
    *target = url;
    return &rm__pg_backend;
  }
  return NULL;
}

void rm__bad_url(const char *url, char *err, size_t errlen) {
  /* only the scheme: the rest may hold a password */
  size_t n = url ? strcspn(url, ":") : 0;
  snprintf(err, errlen, "database URL '%.*s%s': expected sqlite:PATH or postgresql://USER@HOST:PORT/DB", (int)n,
           url ? url : "", url && url[n] ? ":..." : "");
}

void rm__conn_err(rm__conn *c, const char *fmt, ...) {
  int n = snprintf(c->err, sizeof c->err, "%s: ", c->be->name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
  va_end(ap);
}

int rm__q(rm__conn *c, json_t **rows, const char *sql, json_t *params) {
  int rc = c->be->query(c, sql, params, rows, NULL);
  json_decref(params);
  return rc;
}

int rm__q1(rm__conn *c, json_t **row, const char *sql, json_t *params) {
  json_t *rows = NULL;
  *row = NULL;
  int rc = rm__q(c, &rows, sql, params);
  if (rc == 0 && json_array_size(rows) > 0) *row = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  return rc;
}

int rm__qx(rm__conn *c, int64_t *changes, const char *sql, json_t *params) {
  int rc = c->be->query(c, sql, params, NULL, changes);
  json_decref(params);
  return rc;
}

int rm__begin(rm__conn *c, bool write) {
  /* IMMEDIATE takes SQLite's write lock up front, so a write transaction
   * never fails half-way on a lock it could not upgrade. */
  return c->be->exec(c, write && !c->be->pg ? "BEGIN IMMEDIATE" : "BEGIN");
}

int rm__commit(rm__conn *c) { return c->be->exec(c, "COMMIT"); }

/* A failed ROLLBACK leaves nothing to do: the connection is then broken
 * and replaced, which ends the transaction anyway. */
void rm__rollback(rm__conn *c) {
  char keep[sizeof c->err];
  memcpy(keep, c->err, sizeof keep);
  c->be->exec(c, "ROLLBACK");
  memcpy(c->err, keep, sizeof keep);
}

int rm__savepoint(rm__conn *c) { return c->be->exec(c, "SAVEPOINT rm_job"); }

int rm__release(rm__conn *c) { return c->be->exec(c, "RELEASE SAVEPOINT rm_job"); }

void rm__rollback_to(rm__conn *c) {
  char keep[sizeof c->err];
  memcpy(keep, c->err, sizeof keep);
  if (c->be->exec(c, "ROLLBACK TO SAVEPOINT rm_job") == 0) c->be->exec(c, "RELEASE SAVEPOINT rm_job");
  memcpy(c->err, keep, sizeof keep);
}

/* Column names are unique in meaning across the schema, so one table says
 * which hold JSON text or 0/1 booleans on SQLite (PostgreSQL says it
 * itself through the column types). */
enum rm__coltype rm__coltype(const char *name) {
  static const char *const json_cols[] = {"body",   "tags",    "definition", "trigger", "inputs",
                                          "vars",   "summary", "extracted",  "record",  "before",
                                          "after",  "machine", NULL};
  static const char *const bool_cols[] = {"dry_run", "cancel_requested", "more", NULL};
  for (const char *const *p = json_cols; *p; p++)
    if (strcmp(*p, name) == 0) return RM__COL_JSON;
  for (const char *const *p = bool_cols; *p; p++)
    if (strcmp(*p, name) == 0) return RM__COL_BOOL;
  return RM__COL_PLAIN;
}

char *rm__param_text(const json_t *v) {
  char tmp[64];
  switch (json_typeof(v)) {
  case JSON_NULL:
    return NULL;
  case JSON_STRING:
    return strdup(json_string_value(v));
  case JSON_INTEGER:
    snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return strdup(tmp);
  case JSON_REAL:
    snprintf(tmp, sizeof tmp, "%.17g", json_real_value(v));
    return strdup(tmp);
  case JSON_TRUE:
    return strdup("true");
  case JSON_FALSE:
    return strdup("false");
  default:
    return rm_json_dumps(v, 0);
  }
}
