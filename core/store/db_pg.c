/* The PostgreSQL backend, on libpq's blocking calls: each store worker
 * thread owns one connection, so the loop never waits on the network.
 *
 * The URL is used as given; the store only adds defaults the URL may
 * override (a connect timeout, application_name "restmon"). Sessions run
 * in UTC with ISO dates, and timestamps are returned as the same ISO text
 * SQLite stores. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/err.h"

/* Type OIDs from pg_type (stable since forever; libpq-dev ships no header
 * with them). */
enum {
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_JSON = 114,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_TIMESTAMP = 1114,
  OID_TIMESTAMPTZ = 1184,
  OID_NUMERIC = 1700,
  OID_JSONB = 3802,
};

typedef struct pg_conn {
  rm__conn base; /* first: a pg_conn is its rm__conn */
  PGconn *pg;
} pg_conn;

static pg_conn *pgc(rm__conn *c) { return (pg_conn *)c; }

/* libpq's messages end in a newline and may continue on tab-indented
 * lines ("...: Connection refused\n\tIs the server running..."): make
 * them one line, the parts joined by "; ". */
static void one_line(char *out, size_t outlen, const char *msg) {
  size_t n = 0;
  for (const char *p = msg ? msg : "unknown error"; *p && n + 3 < outlen; p++) {
    if (*p != '\n' && *p != '\t') {
      out[n++] = *p;
      continue;
    }
    while (p[1] == '\n' || p[1] == '\t') p++;
    if (n > 0 && p[1]) {
      out[n++] = ';';
      out[n++] = ' ';
    }
  }
  while (n > 0 && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

/* Connection failures are retried unless they cannot heal by waiting
 * (wrong password, no such database or role, a bad URL). */
static bool connect_error_is_permanent(const char *msg) {
  static const char *const permanent[] = {"authentication failed", "does not exist", "no pg_hba.conf entry",
                                          "invalid", "unrecognized", "missing", NULL};
  for (const char *const *p = permanent; *p; p++)
    if (strstr(msg, *p)) return true;
  return false;
}

/* libpq prints notices ("table already exists, skipping") to stderr by
 * default; they are not errors and say nothing an operator needs. */
static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void pg_disconnect(rm__conn *base) {
  if (!base) return;
  if (base->memo_free) base->memo_free(base->memo);
  PQfinish(pgc(base)->pg);
  free(base);
}

static int pg_connect(rm__conn **out, const char *url, const rm__connopts *o, char *err, size_t errlen) {
  char timeout[32];
  uint64_t secs = o->retry_ms / 1000;
  snprintf(timeout, sizeof timeout, "%u", (unsigned)(secs < 2 ? 2 : secs > 10 ? 10 : secs));
  /* With expand_dbname the URL's own settings override the defaults
   * listed before it. */
  const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
  const char *vals[] = {timeout, "restmon", url, NULL};
  pg_conn *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "postgresql: out of memory");
    return RM_ENOMEM;
  }
  c->base.be = &rm__pg_backend;
  c->pg = PQconnectdbParams(keys, vals, 1);
  if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
    char msg[RM__ERRLEN - 16];
    one_line(msg, sizeof msg, c->pg ? PQerrorMessage(c->pg) : "out of memory");
    snprintf(err, errlen, "postgresql: %s", msg);
    pg_disconnect(&c->base);
    return connect_error_is_permanent(msg) ? RM_EDB : RM__ERETRY;
  }
  PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
  PGresult *r = PQexec(c->pg, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) {
    char msg[RM__ERRLEN - 16];
    one_line(msg, sizeof msg, PQerrorMessage(c->pg));
    snprintf(err, errlen, "postgresql: %s", msg);
    pg_disconnect(&c->base);
    return RM__ERETRY;
  }
  *out = &c->base;
  return 0;
}

/* Lost connections, shutdowns, serialization failures and deadlocks heal
 * on a new attempt; a unique violation is a conflict. */
static int map_error(pg_conn *c, const PGresult *r) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  char msg[RM__ERRLEN - 16];
  one_line(msg, sizeof msg, primary ? primary : PQerrorMessage(c->pg));
  rm__conn_err(&c->base, "%s", msg);
  if (PQstatus(c->pg) == CONNECTION_BAD) return RM__ERETRY;
  if (!state) return RM_EDB;
  if (strcmp(state, "23505") == 0) return RM_ECONFLICT;
  static const char *const transient[] = {"08", "57P01", "57P02", "57P03", "40001", "40P01", "53300", NULL};
  for (const char *const *p = transient; *p; p++)
    if (strncmp(state, *p, strlen(*p)) == 0) return RM__ERETRY;
  return RM_EDB;
}

static int pg_exec(rm__conn *base, const char *script) {
  pg_conn *c = pgc(base);
  PGresult *r = PQexec(c->pg, script);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : map_error(c, r);
  PQclear(r);
  return rc;
}

/* "2026-01-02 03:04:05.12+00" (UTC session, ISO style) becomes
 * "2026-01-02T03:04:05.120Z"; anything else (infinity) stays as is. */
static json_t *iso_time(const char *s) {
  size_t len = strlen(s);
  if (len < 19 || s[10] != ' ') return json_string(s);
  char out[32];
  memcpy(out, s, 10);
  out[10] = 'T';
  memcpy(out + 11, s + 11, 8);
  out[19] = '.';
  const char *f = s[19] == '.' ? s + 20 : "";
  for (int i = 0; i < 3; i++) out[20 + i] = (*f >= '0' && *f <= '9') ? *f++ : '0';
  out[23] = 'Z';
  out[24] = '\0';
  return json_string(out);
}

static json_t *column_value(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col)) return json_null();
  const char *s = PQgetvalue(r, row, col);
  switch (PQftype(r, col)) {
  case OID_BOOL:
    return json_boolean(s[0] == 't');
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
    return json_integer(strtoll(s, NULL, 10));
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    return json_real(strtod(s, NULL));
  case OID_JSON:
  case OID_JSONB: {
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
  }
  case OID_TIMESTAMP:
  case OID_TIMESTAMPTZ:
    return iso_time(s);
  default:
    return json_string(s);
  }
}

static json_t *rows_of(const PGresult *r) {
  json_t *rows = json_array();
  int nr = PQntuples(r), nc = PQnfields(r);
  for (int i = 0; rows && i < nr; i++) {
    json_t *row = json_object();
    for (int k = 0; row && k < nc; k++) {
      json_t *v = column_value(r, i, k);
      json_object_set_new(row, PQfname(r, k), v ? v : json_null());
    }
    if (!row || json_array_append_new(rows, row)) {
      json_decref(rows);
      return NULL;
    }
  }
  return rows;
}

static int pg_query(rm__conn *base, const char *sql, const json_t *params, json_t **rows, int64_t *changes) {
  pg_conn *c = pgc(base);
  size_t n = json_array_size(params);
  char **vals = calloc(n ? n : 1, sizeof *vals);
  if (rows) *rows = NULL;
  if (!vals) return RM_ENOMEM;
  for (size_t i = 0; i < n; i++) vals[i] = rm__param_text(json_array_get(params, i));
  PGresult *r = PQexecParams(c->pg, sql, (int)n, NULL, (const char *const *)vals, NULL, NULL, 0);
  for (size_t i = 0; i < n; i++) free(vals[i]);
  free(vals);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : map_error(c, r);
  if (rc == 0 && rows && !(*rows = rows_of(r))) {
    rm__conn_err(base, "out of memory");
    rc = RM_ENOMEM;
  }
  if (rc == 0 && changes) *changes = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return rc;
}

static bool pg_broken(const rm__conn *base) { return PQstatus(((const pg_conn *)base)->pg) != CONNECTION_OK; }

static int pg_backup(rm__conn *c, int from) {
  (void)c;
  (void)from;
  return 0; /* PostgreSQL backups are the operator's (pg_dump); migrations are transactional */
}

const rm__backend rm__pg_backend = {
    .name = "postgresql",
    .pg = true,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .query = pg_query,
    .broken = pg_broken,
    .backup = pg_backup,
};
