/* rm__conn: one database connection, SQLite or PostgreSQL, behind the few
 * calls the store needs. Private to core/store.
 *
 * SQL is written once with PostgreSQL-style numbered parameters ($1, $2);
 * SQLite binds them by name, so the same text runs on both. Where the
 * dialects differ the caller picks the text with rm__conn_pg(). Results
 * come back as a JSON array of row objects keyed by column name:
 * timestamps as ISO-8601 UTC text with milliseconds, JSON columns parsed,
 * booleans as true/false, on both backends.
 *
 * A connection is used by one thread at a time and never by the loop. */
#ifndef RM_STORE_DB_H
#define RM_STORE_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal result: the database is unreachable, busy or the connection
 * broke; the job is retried on a fresh transaction. Never seen by callers
 * of the public interface (it becomes RM_EDB once opts.retry_ms passed). */
#define RM__ERETRY (-1000)

/* Size of rm__conn.err: room for the backend's message and the target. */
#define RM__ERRLEN 600

typedef struct rm__backend rm__backend;

typedef struct rm__conn {
  const rm__backend *be;
  char err[RM__ERRLEN]; /* the last failure, "sqlite: PATH: cause" or "postgresql: cause" */
  /* What an operation keeps between its jobs on this connection (see
   * signal_memo.c); memo_free(memo) runs when the connection closes. */
  void *memo;
  void (*memo_free)(void *memo);
} rm__conn;

typedef struct rm__connopts {
  bool writer;       /* SQLite: the one connection that writes (WAL set-up, migrations) */
  uint64_t retry_ms; /* bounds the SQLite busy timeout and the PostgreSQL connect timeout */
} rm__connopts;

struct rm__backend {
  const char *name; /* "sqlite" | "postgresql" */
  bool pg;
  /* target: the file path (SQLite) or the URL (PostgreSQL). 0, RM__ERETRY
   * (worth retrying) or RM_EDB, with the cause in err. */
  int (*connect)(rm__conn **out, const char *target, const rm__connopts *o, char *err, size_t errlen);
  void (*disconnect)(rm__conn *c);
  /* Runs a script of statements without parameters. */
  int (*exec)(rm__conn *c, const char *script);
  /* One statement; params: an array or NULL. rows (may be NULL): a new
   * array of row objects; changes (may be NULL): rows affected. 0,
   * RM_ECONFLICT (a unique constraint), RM__ERETRY or RM_EDB. */
  int (*query)(rm__conn *c, const char *sql, const json_t *params, json_t **rows, int64_t *changes);
  /* True when the connection must be replaced before the next job. */
  bool (*broken)(const rm__conn *c);
  /* Before migrating from schema version from: keep a copy (SQLite); 0 or RM_EDB. */
  int (*backup)(rm__conn *c, int from);
  /* What rm_now() (plus plus_ms) gives inside the open transaction, when
   * the client knows it without asking (SQLite: the host's time taken at
   * BEGIN); false when only the database can say (PostgreSQL: NULL). */
  bool (*tx_now)(const rm__conn *c, int64_t plus_ms, char out[32]);
};

extern const rm__backend rm__sqlite_backend;
extern const rm__backend rm__pg_backend;

/* The backend for url and its target (a pointer into url for SQLite's
 * path, the url itself for PostgreSQL); NULL when the scheme is unknown. */
const rm__backend *rm__backend_for(const char *url, const char **target);

/* The error for a URL of no known scheme (its rest is not shown: it may
 * hold a password). */
void rm__bad_url(const char *url, char *err, size_t errlen);

static inline bool rm__conn_pg(const rm__conn *c) { return c->be->pg; }

/* rm_now() + plus_ms of the open transaction without a query, when the
 * backend knows it (see rm__backend.tx_now). */
static inline bool rm__tx_now(const rm__conn *c, int64_t plus_ms, char out[32]) {
  return c->be->tx_now && c->be->tx_now(c, plus_ms, out);
}

/* Shorthands; each steals params (a new array, may be NULL). */
int rm__q(rm__conn *c, json_t **rows, const char *sql, json_t *params);
/* The first row (a new object) or NULL when there is none. */
int rm__q1(rm__conn *c, json_t **row, const char *sql, json_t *params);
int rm__qx(rm__conn *c, int64_t *changes, const char *sql, json_t *params);
/* Transaction control: BEGIN (IMMEDIATE for SQLite writes), COMMIT,
 * ROLLBACK, and savepoints for one job inside a group commit. */
int rm__begin(rm__conn *c, bool write);
int rm__commit(rm__conn *c);
void rm__rollback(rm__conn *c);
int rm__savepoint(rm__conn *c);
int rm__release(rm__conn *c);
void rm__rollback_to(rm__conn *c);

/* Sets c->err to "BACKEND: " + formatted text. */
void rm__conn_err(rm__conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How a result column is decoded where the backend cannot say (SQLite):
 * the schema's JSON and boolean columns, by name. */
enum rm__coltype { RM__COL_PLAIN, RM__COL_JSON, RM__COL_BOOL };
enum rm__coltype rm__coltype(const char *name);

/* A parameter as text, for PostgreSQL (caller frees; NULL for JSON null). */
char *rm__param_text(const json_t *v);

#endif
