/* The SQLite backend: one file in WAL mode. The store gives it one writer
 * connection and reader connections on other threads; each is opened
 * without SQLite's own mutex because only its thread uses it.
 *
 * Time: SQLite has no server clock, so rm_now() and rm_now_plus_ms(ms)
 * are SQL functions defined here on the host's wall clock; every
 * timestamp and lease comparison goes through them, as on PostgreSQL. */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "store/store_internal.h"
#include "util/err.h"
#include "util/json_dump.h"
#include "util/text.h"

/* Prepared statements kept per connection, by SQL text: preparing costs
 * as much as running a small query (a tenth of a run list's CPU). A
 * statement is reset after each use, so a cached one holds no lock. */
#define SQ_CACHE 64

typedef struct sq_stmt {
  char *sql;
  uint64_t hash;
  sqlite3_stmt *st;
} sq_stmt;

typedef struct sq_conn {
  rm__conn base; /* first: a sq_conn is its rm__conn */
  sqlite3 *db;
  sq_stmt cache[SQ_CACHE];
  unsigned next_victim;
  char *path;
  bool existed;  /* the file had content before this connection opened it */
  int64_t tx_ms; /* when the open transaction began; 0 outside one */
} sq_conn;

static sq_conn *sq(rm__conn *c) { return (sq_conn *)c; }

/* BUSY and LOCKED after the busy timeout mean another connection holds
 * the file: worth retrying. A unique or primary key violation is a
 * conflict the caller can act on. */
static int map_rc(sq_conn *c, int rc) {
  rm__conn_err(&c->base, "%s: %s", c->path, sqlite3_errmsg(c->db));
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return RM__ERETRY;
  case SQLITE_CONSTRAINT:
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return RM_ECONFLICT;
    return RM_EDB;
  default:
    return RM_EDB;
  }
}

/* Like PostgreSQL's now(), the time the transaction began: the timestamps
 * one transaction writes are equal. */
static void fn_now(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const sq_conn *c = sqlite3_user_data(ctx);
  int64_t delta = argc == 1 ? sqlite3_value_int64(argv[0]) : 0;
  char ts[32];
  rm__ts_format((c->tx_ms ? c->tx_ms : rm__wall_ms()) + delta, ts);
  sqlite3_result_text(ctx, ts, -1, SQLITE_TRANSIENT);
}

static bool sq_tx_now(const rm__conn *base, int64_t plus_ms, char out[32]) {
  const sq_conn *c = (const sq_conn *)(const void *)base;
  rm__ts_format((c->tx_ms ? c->tx_ms : rm__wall_ms()) + plus_ms, out);
  return true;
}

/* Creates the folders above path, like mkdir -p. */
static int make_parents(const char *path) {
  char *p = strdup(path);
  if (!p) return -1;
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      free(p);
      return -1;
    }
    *s = '/';
  }
  free(p);
  return 0;
}

static int setup(sq_conn *c, const rm__connopts *o) {
  uint64_t busy = o->retry_ms < 2000 ? o->retry_ms : 2000;
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, (int)busy);
  int rc = sqlite3_create_function(c->db, "rm_now", 0, SQLITE_UTF8, c, fn_now, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(c->db, "rm_now_plus_ms", 1, SQLITE_UTF8, c, fn_now, NULL, NULL);
  if (rc != SQLITE_OK) return map_rc(c, rc);
  /* journal_mode reads the header first: a file that is not a database
   * fails here, at open, with SQLite's own words. */
  /* The writer: savepoints' journals (one per group-committed job) in
   * memory, and a page cache that holds a group commit's pages. */
  const char *pragmas = o->writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                                    "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
                                  : "PRAGMA foreign_keys=ON; PRAGMA query_only=ON; SELECT count(*) FROM sqlite_master;";
  rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : map_rc(c, rc);
}

static void cache_clear(sq_conn *c) {
  for (size_t i = 0; i < SQ_CACHE; i++) {
    sqlite3_finalize(c->cache[i].st);
    free(c->cache[i].sql);
    c->cache[i] = (sq_stmt){0};
  }
}

static void sq_disconnect(rm__conn *base) {
  if (!base) return;
  sq_conn *c = sq(base);
  if (base->memo_free) base->memo_free(base->memo);
  cache_clear(c);
  sqlite3_close_v2(c->db);
  free(c->path);
  free(c);
}

static int sq_connect(rm__conn **out, const char *path, const rm__connopts *o, char *err, size_t errlen) {
  sq_conn *c = calloc(1, sizeof *c);
  if (!c || !(c->path = strdup(path))) {
    free(c);
    snprintf(err, errlen, "sqlite: %s: out of memory", path);
    return RM_ENOMEM;
  }
  c->base.be = &rm__sqlite_backend;
  struct stat st;
  c->existed = stat(path, &st) == 0 && st.st_size > 0;
  if (make_parents(path) != 0) {
    snprintf(err, errlen, "sqlite: %s: cannot create its folder: %s", path, strerror(errno));
    sq_disconnect(&c->base);
    return RM_EDB;
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
  rc = rc == SQLITE_OK ? setup(c, o) : map_rc(c, rc);
  if (rc != 0) {
    snprintf(err, errlen, "%s", c->base.err);
    sq_disconnect(&c->base);
    return rc;
  }
  *out = &c->base;
  return 0;
}

static int sq_query(rm__conn *base, const char *sql, const json_t *params, json_t **rows, int64_t *changes);

/* One statement (BEGIN, COMMIT, SAVEPOINT ... of every transaction) runs
 * prepared from the cache: parsing it each time costs as much as running it. */
static int sq_exec(rm__conn *base, const char *script) {
  sq_conn *c = sq(base);
  int rc = 0;
  if (strchr(script, ';')) {
    int src = sqlite3_exec(c->db, script, NULL, NULL, NULL);
    if (src != SQLITE_OK) rc = map_rc(c, src);
  } else {
    rc = sq_query(base, script, NULL, NULL, NULL);
  }
  if (rc != 0) return rc;
  if (strncmp(script, "BEGIN", 5) == 0) c->tx_ms = rm__wall_ms();
  else if (sqlite3_get_autocommit(c->db)) c->tx_ms = 0;
  return 0;
}

/* Binds $N to params[N-1]: the SQL names its parameters $1, $2 ... */
static int bind_params(sq_conn *c, sqlite3_stmt *st, const json_t *params) {
  int n = sqlite3_bind_parameter_count(st);
  for (int i = 1; i <= n; i++) {
    const char *name = sqlite3_bind_parameter_name(st, i);
    long k = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : 0;
    const json_t *v = k > 0 ? json_array_get(params, (size_t)k - 1) : NULL;
    if (!v) {
      rm__conn_err(&c->base, "%s: parameter %s has no value", c->path, name ? name : "?");
      return RM_EDB;
    }
    int rc;
    switch (json_typeof(v)) {
    case JSON_NULL: rc = sqlite3_bind_null(st, i); break;
    case JSON_TRUE: rc = sqlite3_bind_int(st, i, 1); break;
    case JSON_FALSE: rc = sqlite3_bind_int(st, i, 0); break;
    case JSON_INTEGER: rc = sqlite3_bind_int64(st, i, json_integer_value(v)); break;
    case JSON_REAL: rc = sqlite3_bind_double(st, i, json_real_value(v)); break;
    case JSON_STRING:
      rc = sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
      break;
    default: {
      char *s = rm_json_dumps(v, 0);
      rc = s ? sqlite3_bind_text(st, i, s, -1, free) : SQLITE_NOMEM;
    }
    }
    if (rc != SQLITE_OK) return map_rc(c, rc);
  }
  return 0;
}

static json_t *column_value(sqlite3_stmt *st, int i) {
  const char *name = sqlite3_column_name(st, i);
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_INTEGER: {
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    return rm__coltype(name) == RM__COL_BOOL ? json_boolean(v) : json_integer(v);
  }
  case SQLITE_FLOAT:
    return json_real(sqlite3_column_double(st, i));
  case SQLITE_TEXT: {
    const char *s = (const char *)sqlite3_column_text(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    json_t *v = rm__coltype(name) == RM__COL_JSON ? json_loadb(s, len, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_stringn(s, len);
  }
  default:
    return json_null();
  }
}

static json_t *row_object(sqlite3_stmt *st) {
  json_t *row = json_object();
  int n = sqlite3_column_count(st);
  for (int i = 0; row && i < n; i++) {
    json_t *v = column_value(st, i);
    if (json_object_set_new(row, sqlite3_column_name(st, i), v ? v : json_null())) {
      json_decref(row);
      return NULL;
    }
  }
  return row;
}

/* The statement for sql: a cached one, or newly prepared and cached
 * (evicting round-robin). *slot is its cache entry (NULL when it could
 * not be cached: finalize it after use). */
static int stmt_for(sq_conn *c, const char *sql, sqlite3_stmt **out, sq_stmt **slot) {
  uint64_t h = rm_fnv1a(sql, strlen(sql));
  for (size_t i = 0; i < SQ_CACHE; i++)
    if (c->cache[i].st && c->cache[i].hash == h && strcmp(c->cache[i].sql, sql) == 0) {
      *out = c->cache[i].st;
      *slot = &c->cache[i];
      return 0;
    }
  int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
  if (rc != SQLITE_OK) return map_rc(c, rc);
  *slot = NULL;
  char *copy = strdup(sql);
  if (!copy) return 0;
  sq_stmt *e = &c->cache[c->next_victim++ % SQ_CACHE];
  sqlite3_finalize(e->st);
  free(e->sql);
  *e = (sq_stmt){copy, h, *out};
  *slot = e;
  return 0;
}

static int sq_query(rm__conn *base, const char *sql, const json_t *params, json_t **rows, int64_t *changes) {
  sq_conn *c = sq(base);
  sqlite3_stmt *st = NULL;
  sq_stmt *slot = NULL;
  if (rows) *rows = NULL;
  int rc = stmt_for(c, sql, &st, &slot);
  if (rc != 0) return rc;
  int out = bind_params(c, st, params);
  json_t *acc = rows ? json_array() : NULL;
  while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (acc && json_array_append_new(acc, row_object(st))) {
      rm__conn_err(&c->base, "%s: out of memory", c->path);
      out = RM_ENOMEM;
    }
  }
  if (out == 0 && rc != SQLITE_DONE) out = map_rc(c, rc);
  if (out == 0 && changes) *changes = sqlite3_changes64(c->db);
  if (slot) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
  if (out == 0 && rows) *rows = acc;
  else json_decref(acc);
  return out;
}

static bool sq_broken(const rm__conn *c) {
  (void)c;
  return false;
}

/* A consistent copy through VACUUM INTO (the WAL is included, unlike a
 * plain file copy), written aside and renamed into place. */
static int sq_backup(rm__conn *base, int from) {
  sq_conn *c = sq(base);
  if (!c->existed) return 0;
  char bak[4096], tmp[4200];
  snprintf(bak, sizeof bak, "%s.bak-v%d", c->path, from);
  snprintf(tmp, sizeof tmp, "%s.tmp", bak);
  unlink(tmp);
  int rc = rm__qx(base, NULL, "VACUUM INTO $1", json_pack("[s]", tmp));
  if (rc == 0 && rename(tmp, bak) != 0) {
    rm__conn_err(base, "%s: cannot keep the backup %s: %s", c->path, bak, strerror(errno));
    rc = RM_EDB;
  }
  return rc;
}

const rm__backend rm__sqlite_backend = {
    .name = "sqlite",
    .pg = false,
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .exec = sq_exec,
    .query = sq_query,
    .broken = sq_broken,
    .backup = sq_backup,
    .tx_now = sq_tx_now,
};
