/* rm_store against real databases: every test runs on SQLite (a temp
 * file) and, when RESTMON_TEST_PG names a server (scripts/run-tests starts
 * one), on PostgreSQL in a schema of its own. Each test drives a real uv
 * loop and waits for the callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <uv.h>

#include "store/deliveries.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "util/embedded.h"
#include "util/err.h"

/* ---- fixture -------------------------------------------------------- */

typedef struct cfg {
  bool pg;
  bool open; /* setup opens the store */
} cfg;

typedef struct fx {
  bool pg;
  uv_loop_t loop;
  rm_store *s;
  char url[1024];
  char dir[256];    /* SQLite: the temp folder */
  char path[512];   /* SQLite: the database file */
  char schema[64];  /* PostgreSQL: this test's schema */
  char pgraw[1024]; /* PostgreSQL: URL for raw access to the schema */
} fx;

static const char *pg_base(void) {
  const char *u = getenv("RESTMON_TEST_PG");
  return u && *u ? u : NULL;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int pg_raw(const char *url, const char *sql, long *count, char *err, size_t errlen) {
  PGconn *c = PQconnectdb(url);
  int rc = -1;
  PQsetNoticeProcessor(c, quiet, NULL);
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      rc = 0;
      if (count) *count = PQntuples(r) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    }
    if (rc && err) snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
  } else if (err) {
    snprintf(err, errlen, "%s", PQerrorMessage(c));
  }
  PQfinish(c);
  return rc;
}

static int count_cb(void *ud, int n, char **vals, char **names) {
  (void)n;
  (void)names;
  *(long *)ud = vals[0] ? strtol(vals[0], NULL, 10) : 0;
  return 0;
}

/* Runs sql on the test's database behind the store's back; with count,
 * the first column of the first row. 0 or -1 (err says why). */
static int raw(fx *f, const char *sql, long *count, char *err, size_t errlen) {
  if (f->pg) return pg_raw(f->pgraw, sql, count, err, errlen);
  sqlite3 *db;
  char *msg = NULL;
  int rc = sqlite3_open(f->path, &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, count ? count_cb : NULL, count, &msg);
  if (rc != SQLITE_OK && err) snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

static long raw_count(fx *f, const char *sql) {
  long n = -1;
  char err[512] = "";
  if (raw(f, sql, &n, err, sizeof err) != 0) fail_msg("raw query failed: %s: %s", sql, err);
  return n;
}

static int open_store(fx *f, uint64_t retry_ms, char *err, size_t errlen) {
  rm_store_opts o = {.threads = 2, .retry_ms = retry_ms, .migrate = true};
  return rm_store_open(&f->s, &f->loop, f->url, &o, err, errlen);
}

static unsigned test_seq;

static int setup(void **state) {
  const cfg *c = *state;
  fx *f = calloc(1, sizeof *f);
  f->pg = c->pg;
  uv_loop_init(&f->loop);
  if (f->pg) {
    const char *base = pg_base();
    const char *sep = strchr(base, '?') ? "&" : "?";
    char sql[128], err[512];
    snprintf(f->schema, sizeof f->schema, "rmtest_%d_%u", (int)getpid(), ++test_seq);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
    if (pg_raw(base, sql, NULL, err, sizeof err) != 0) fail_msg("cannot create schema: %s", err);
    snprintf(f->url, sizeof f->url, "%s%soptions=-csearch_path%%3D%s&application_name=%s", base, sep, f->schema,
             f->schema);
    snprintf(f->pgraw, sizeof f->pgraw, "%s%soptions=-csearch_path%%3D%s", base, sep, f->schema);
  } else {
    snprintf(f->dir, sizeof f->dir, "/tmp/rmstore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/var/restmon.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
  }
  if (c->open) {
    char err[512] = "";
    int rc = open_store(f, 5000, err, sizeof err);
    if (rc != 0) fail_msg("rm_store_open(%s): %s", f->url, err);
  }
  *state = f;
  return 0;
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void close_store(fx *f) {
  if (!f->s) return;
  bool done = false;
  rm_store_close(f->s, on_closed, &done);
  while (!done) uv_run(&f->loop, UV_RUN_ONCE);
  f->s = NULL;
}

static int teardown(void **state) {
  fx *f = *state;
  close_store(f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  if (f->pg) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    pg_raw(pg_base(), sql, NULL, NULL, 0);
  } else {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
  }
  free(f);
  return 0;
}

/* ---- waiting for callbacks ------------------------------------------ */

typedef struct waiter {
  bool done;
  int err;
  char msg[1024];
  json_t *res;
} waiter;

static void on_result(void *ud, int err, const char *msg, json_t *res) {
  waiter *w = ud;
  w->done = true;
  w->err = err;
  snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
  if (err) assert_non_null(msg);
  w->res = res;
}

static void on_timeout(uv_timer_t *t) { (void)t; fail_msg("timed out waiting for a store callback"); }

static void spin(fx *f, waiter *w) {
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, on_timeout, 30000, 0);
  while (!w->done) uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Waits for w; its error must be want; returns the result (caller owns). */
static json_t *expect(fx *f, waiter *w, int want) {
  spin(f, w);
  if (w->err != want) fail_msg("want %s, got %s: %s", rm_errname(want), rm_errname(w->err), w->msg);
  return w->res;
}

static json_t *put_doc(fx *f, const char *kind, json_t *doc, int want) {
  waiter w = {0};
  rm_store_doc_put(f->s, kind, doc, on_result, &w);
  json_decref(doc);
  return expect(f, &w, want);
}

static json_t *get_doc(fx *f, const char *kind, const char *id, int want) {
  waiter w = {0};
  rm_store_doc_get(f->s, kind, id, on_result, &w);
  return expect(f, &w, want);
}

static json_t *list_docs(fx *f, const char *kind, json_t *query, int want) {
  waiter w = {0};
  rm_store_doc_list(f->s, kind, query, on_result, &w);
  json_decref(query);
  return expect(f, &w, want);
}

static json_t *create_run(fx *f, json_t *spec) {
  waiter w = {0};
  rm_store_run_create(f->s, spec, on_result, &w);
  json_decref(spec);
  return expect(f, &w, 0);
}

static json_t *queued_run(fx *f, const char *wf, const char *tag) {
  return create_run(f, json_pack("{s:s, s:{s:{}}, s:{s:s}, s:{s:s}, s:[s]}", "workflow_name", wf, "definition",
                                 "tasks", "trigger", "type", "manual", "inputs", "base", "x", "tags", tag));
}

static json_t *running_run(fx *f, const char *wf, const char *owner, int lease_ms) {
  return create_run(f, json_pack("{s:s, s:{s:{}}, s:{s:s}, s:s, s:s, s:i}", "workflow_name", wf, "definition",
                                 "tasks", "trigger", "type", "schedule", "status", "running", "lease_owner", owner,
                                 "lease_ms", lease_ms));
}

static json_t *claim(fx *f, const char *owner, int lease_ms, int limit) {
  waiter w = {0};
  rm_store_run_claim(f->s, owner, (uint64_t)lease_ms, limit, on_result, &w);
  return expect(f, &w, 0);
}

static json_t *run_get(fx *f, const char *id, int want) {
  waiter w = {0};
  rm_store_run_get(f->s, id, on_result, &w);
  return expect(f, &w, want);
}

static json_t *step(const char *task, int http, const char *var, json_t *value) {
  return json_pack("{s:s, s:s, s:[{s:i, s:s, s:[{s:{s:i}}], s:{s:o}}]}", "task", task, "status", "succeeded",
                   "attempts", "attempt", 1, "status", "succeeded", "exchanges", "response", "status", http,
                   "extracted", var, value);
}

static void put_step(fx *f, const char *run, const char *owner, json_t *st, json_t *vars, int want) {
  waiter w = {0};
  rm_store_step_put(f->s, run, owner, st, vars, on_result, &w);
  json_decref(st);
  json_decref(vars);
  json_decref(expect(f, &w, want));
}

static json_t *finish(fx *f, const char *run, const char *owner, json_t *record, int want) {
  waiter w = {0};
  rm_store_run_finish(f->s, run, owner, record, on_result, &w);
  json_decref(record);
  return expect(f, &w, want);
}

static json_t *search(fx *f, json_t *query, int want) {
  waiter w = {0};
  rm_store_run_search(f->s, query, on_result, &w);
  json_decref(query);
  return expect(f, &w, want);
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static json_int_t num(const json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void assert_iso_ms(const char *ts) {
  assert_non_null(ts);
  char norm[32];
  assert_int_equal(strlen(ts), 24);
  assert_int_equal(ts[23], 'Z');
  assert_int_equal(rm__ts_normalize(ts, norm), 0);
  assert_string_equal(norm, ts);
}

/* Search result total. */
static json_int_t total(fx *f, json_t *query) {
  json_t *r = search(f, query, 0);
  json_int_t n = num(r, "total");
  json_decref(r);
  return n;
}

/* ---- migrations ----------------------------------------------------- */

static void test_migrations_applied_once_and_recorded(void **state) {
  fx *f = *state;
  int v = rm_store_schema_version(), from = -1, to = -1;
  char err[512] = "";
  assert_true(v >= 1);
  assert_int_equal(raw_count(f, "SELECT max(version) FROM schema_migrations"), v);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM schema_migrations"), v);
  /* applying again is a no-op */
  assert_int_equal(rm_store_migrate(f->url, &from, &to, err, sizeof err), 0);
  assert_int_equal(from, v);
  assert_int_equal(to, v);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM schema_migrations"), v);
  close_store(f);
  assert_int_equal(open_store(f, 2000, err, sizeof err), 0);
  assert_string_equal(rm_store_backend(f->s), f->pg ? "postgresql" : "sqlite");
}

static void test_newer_schema_is_refused(void **state) {
  fx *f = *state;
  char err[512] = "";
  close_store(f);
  assert_int_equal(raw(f, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', "
                          "'2030-01-01T00:00:00.000Z')",
                       NULL, err, sizeof err),
                   0);
  assert_int_equal(open_store(f, 2000, err, sizeof err), RM_EVERSION);
  assert_null(f->s);
  assert_non_null(strstr(err, "999"));
  char known[32];
  snprintf(known, sizeof known, "binary's %d", rm_store_schema_version());
  assert_non_null(strstr(err, known));
  int from, to;
  assert_int_equal(rm_store_migrate(f->url, &from, &to, err, sizeof err), RM_EVERSION);
}

static void test_migrations_exist_for_both_backends(void **state) {
  (void)state;
  /* one schema: the same numbered migrations for each backend */
  int n[2] = {0, 0};
  const char *dirs[2] = {"core/store/migrations/sqlite/", "core/store/migrations/postgresql/"};
  for (int d = 0; d < 2; d++)
    for (const rm_embedded_file *e = rm_embedded_files; e->path; e++)
      if (strncmp(e->path, dirs[d], strlen(dirs[d])) == 0) {
        char other[256];
        snprintf(other, sizeof other, "%s%s", dirs[1 - d], e->path + strlen(dirs[d]));
        if (!rm_embedded_find(other)) fail_msg("%s has no counterpart %s", e->path, other);
        n[d]++;
      }
  assert_int_equal(n[0], n[1]);
  assert_int_equal(n[0], rm_store_schema_version());
}

static void test_sqlite_backup_before_migrating_an_older_file(void **state) {
  fx *f = *state;
  char err[512] = "", bak[540];
  mkdir(f->dir, 0700);
  snprintf(f->path, sizeof f->path, "%s/old.db", f->dir);
  snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
  assert_int_equal(raw(f, "CREATE TABLE keep_me (x); INSERT INTO keep_me VALUES (42)", NULL, err, sizeof err), 0);
  /* without migrate an older schema is refused, not silently used */
  rm_store_opts o = {.retry_ms = 1000, .migrate = false};
  assert_int_equal(rm_store_open(&f->s, &f->loop, f->url, &o, err, sizeof err), RM_EDB);
  assert_non_null(strstr(err, "restmon migrate"));
  assert_int_equal(open_store(f, 2000, err, sizeof err), 0);
  snprintf(bak, sizeof bak, "%s.bak-v0", f->path);
  assert_int_equal(access(bak, F_OK), 0);
  snprintf(f->path, sizeof f->path, "%.500s", bak);
  assert_int_equal(raw_count(f, "SELECT x FROM keep_me"), 42);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'"), 0);
}

static void test_corrupt_sqlite_file_is_refused_clearly(void **state) {
  fx *f = *state;
  char err[512] = "";
  mkdir(f->dir, 0700);
  snprintf(f->path, sizeof f->path, "%s/x.db", f->dir);
  snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
  FILE *fp = fopen(f->path, "w");
  for (int i = 0; i < 200; i++) fputs("this is not a database. ", fp);
  fclose(fp);
  assert_int_equal(open_store(f, 500, err, sizeof err), RM_EDB);
  char want[600];
  snprintf(want, sizeof want, "sqlite: %s: file is not a database", f->path);
  assert_string_equal(err, want);
}

static void test_locked_sqlite_waits_then_fails_clearly(void **state) {
  fx *f = *state;
  char err[512] = "";
  close_store(f);
  assert_int_equal(open_store(f, 300, err, sizeof err), 0);
  sqlite3 *other;
  assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  uint64_t t0 = uv_hrtime();
  waiter w = {0};
  json_t *d = json_pack("{s:s}", "name", "t");
  rm_store_doc_put(f->s, "task", d, on_result, &w);
  json_decref(d);
  spin(f, &w);
  json_decref(w.res);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_true(ms >= 300);
  assert_int_equal(w.err, RM_EDB);
  assert_non_null(strstr(w.msg, "sqlite: "));
  assert_non_null(strstr(w.msg, "database is locked"));
  assert_non_null(strstr(w.msg, "gave up after"));
  assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  json_decref(put_doc(f, "task", json_pack("{s:s}", "name", "t"), 0));
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* bound, never listening, now closed: connections are refused */
  return ntohs(a.sin_port);
}

static void test_pg_unreachable_fails_after_retry(void **state) {
  fx *f = *state;
  char err[512] = "";
  snprintf(f->url, sizeof f->url, "postgresql://postgres@127.0.0.1:%d/restmon_test", closed_port());
  uint64_t t0 = uv_hrtime();
  assert_int_equal(open_store(f, 400, err, sizeof err), RM_EDB);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_true(ms >= 400);
  assert_true(ms < 10000);
  assert_null(f->s);
  assert_non_null(strstr(err, "postgresql: "));
  assert_non_null(strstr(err, "127.0.0.1"));
  assert_non_null(strstr(err, "refused"));
  assert_non_null(strstr(err, "gave up after"));
}

static void test_pg_broken_connection_is_reestablished(void **state) {
  fx *f = *state;
  waiter w = {0};
  rm_store_ping(f->s, on_result, &w);
  assert_null(expect(f, &w, 0));
  char sql[300];
  long n = 0;
  snprintf(sql, sizeof sql,
           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '%s'", f->schema);
  assert_int_equal(pg_raw(pg_base(), sql, &n, NULL, 0), 0);
  assert_true(n >= 1);
  for (int i = 0; i < 4; i++) { /* every pool connection was cut; each job heals its own */
    waiter p = {0};
    rm_store_ping(f->s, on_result, &p);
    assert_null(expect(f, &p, 0));
  }
  json_decref(put_doc(f, "task", json_pack("{s:s}", "name", "after-reconnect"), 0));
}

static void test_bad_url_is_refused(void **state) {
  fx *f = *state;
  char err[512] = "";
  rm_store *s = NULL;
  assert_int_equal(rm_store_open(&s, &f->loop, "mysql://root:hunter2@db/x", NULL, err, sizeof err), RM_EINVAL);
  assert_null(s);
  assert_non_null(strstr(err, "'mysql:...'"));
  assert_null(strstr(err, "hunter2")); /* a URL may hold a password: never echoed */
  assert_int_equal(rm_store_open(&s, &f->loop, "sqlite:", NULL, err, sizeof err), RM_EINVAL);
}

/* ---- documents ------------------------------------------------------ */

static void test_doc_put_get_round_trip(void **state) {
  fx *f = *state;
  json_t *d = put_doc(f, "workflow",
                      json_pack("{s:s, s:s, s:[s,s], s:{s:{s:{}, s:{}, s:{}}}, s:s}", "name", "orders", "owner",
                                "alice", "tags", "prod", "eu", "definition", "tasks", "zeta", "alpha", "mid", "notes",
                                "n"),
                      0);
  const char *id = str(d, "id");
  assert_int_equal(strlen(id), 36);
  assert_string_equal(str(d, "kind"), "workflow");
  assert_string_equal(str(d, "scope"), "global");
  assert_int_equal(num(d, "version"), 1);
  assert_iso_ms(str(d, "created_at"));
  assert_string_equal(str(d, "created_at"), str(d, "updated_at"));
  assert_true(json_is_null(json_object_get(d, "deleted_at")));
  json_t *g = get_doc(f, "workflow", id, 0);
  assert_true(json_equal(d, g));
  /* the spec comes back as given, key order included (tasks run in order) */
  char *tasks = json_dumps(json_object_get(json_object_get(g, "definition"), "tasks"), JSON_COMPACT);
  assert_string_equal(tasks, "{\"zeta\":{},\"alpha\":{},\"mid\":{}}");
  free(tasks);
  json_t *want = json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:i, s:{s:{s:{}, s:{}, s:{}}}, s:s, s:n}", "id", id, "kind",
                           "workflow", "name", "orders", "owner", "alice", "tags", "prod", "eu", "version", 1,
                           "definition", "tasks", "zeta", "alpha", "mid", "notes", "n", "deleted_at");
  json_object_set(want, "created_at", json_object_get(g, "created_at"));
  json_object_set(want, "updated_at", json_object_get(g, "updated_at"));
  json_object_set_new(want, "scope", json_string("global"));
  assert_true(json_equal(want, g));
  json_decref(want);
  json_decref(get_doc(f, "workflow", "no-such-id", RM_ENOTFOUND));
  json_decref(get_doc(f, "task", id, RM_ENOTFOUND));
  /* secrets default to private */
  json_t *sec = put_doc(f, "secret", json_pack("{s:s, s:s}", "name", "api", "ciphertext", "AAAA"), 0);
  assert_string_equal(str(sec, "scope"), "private");
  assert_string_equal(str(sec, "ciphertext"), "AAAA");
  json_decref(sec);
  json_decref(d);
  json_decref(g);
}

static void test_doc_update_checks_version(void **state) {
  fx *f = *state;
  json_t *d = put_doc(f, "task", json_pack("{s:s, s:i}", "name", "login", "timeout_ms", 100), 0);
  json_t *u = json_deep_copy(d);
  json_object_set_new(u, "timeout_ms", json_integer(200));
  json_t *d2 = put_doc(f, "task", json_incref(u), 0);
  assert_int_equal(num(d2, "version"), 2);
  assert_int_equal(num(d2, "timeout_ms"), 200);
  assert_string_equal(str(d2, "created_at"), str(d, "created_at"));
  /* a writer that read version 1 lost the race */
  json_t *stale = put_doc(f, "task", json_incref(u), RM_ECONFLICT);
  assert_null(stale);
  json_object_del(u, "version");
  json_t *d3 = put_doc(f, "task", json_incref(u), 0);
  assert_int_equal(num(d3, "version"), 3);
  /* an id not yet used creates, with that id */
  json_t *n = put_doc(f, "task", json_pack("{s:s, s:s}", "id", "my-id", "name", "other"), 0);
  assert_string_equal(str(n, "id"), "my-id");
  assert_int_equal(num(n, "version"), 1);
  /* an id of another kind is not taken over */
  json_decref(put_doc(f, "workflow", json_pack("{s:s, s:s}", "id", "my-id", "name", "w"), RM_ECONFLICT));
  json_decref(put_doc(f, "nonsense", json_pack("{s:s}", "name", "w"), RM_EINVAL));
  json_decref(put_doc(f, "task", json_pack("{s:i}", "timeout_ms", 1), RM_EINVAL));
  json_decref(put_doc(f, "task", json_pack("{s:s, s:[i]}", "name", "x", "tags", 1), RM_EINVAL));
  json_decref(put_doc(f, "task", json_pack("{s:s, s:s}", "name", "x", "scope", "public"), RM_EINVAL));
  json_decref(d);
  json_decref(d2);
  json_decref(d3);
  json_decref(n);
  json_decref(u);
}

static void test_doc_names_unique_among_live_documents(void **state) {
  fx *f = *state;
  json_t *a = put_doc(f, "task", json_pack("{s:s}", "name", "dup"), 0);
  waiter w = {0};
  json_t *dup = json_pack("{s:s}", "name", "dup");
  rm_store_doc_put(f->s, "task", dup, on_result, &w);
  json_decref(dup);
  json_decref(expect(f, &w, RM_ECONFLICT));
  assert_non_null(strstr(w.msg, "dup"));
  assert_non_null(strstr(w.msg, str(a, "id")));
  json_decref(put_doc(f, "workflow", json_pack("{s:s}", "name", "dup"), 0)); /* other kind: fine */
  waiter del = {0};
  rm_store_doc_delete(f->s, "task", str(a, "id"), on_result, &del);
  assert_null(expect(f, &del, 0));
  json_decref(put_doc(f, "task", json_pack("{s:s}", "name", "dup"), 0)); /* the name is free again */
  json_decref(a);
}

static void test_doc_soft_delete(void **state) {
  fx *f = *state;
  json_t *a = put_doc(f, "schedule", json_pack("{s:s, s:s}", "name", "hourly", "every", "1h"), 0);
  const char *id = str(a, "id");
  waiter w = {0};
  rm_store_doc_delete(f->s, "schedule", id, on_result, &w);
  assert_null(expect(f, &w, 0));
  json_t *g = get_doc(f, "schedule", id, 0);
  assert_iso_ms(str(g, "deleted_at"));
  assert_string_equal(str(g, "every"), "1h");
  waiter again = {0};
  rm_store_doc_delete(f->s, "schedule", id, on_result, &again);
  assert_null(expect(f, &again, RM_ENOTFOUND));
  json_t *l = list_docs(f, "schedule", json_object(), 0);
  assert_int_equal(num(l, "total"), 0);
  json_decref(l);
  l = list_docs(f, "schedule", json_pack("{s:b}", "include_deleted", 1), 0);
  assert_int_equal(num(l, "total"), 1);
  /* updating a deleted document does not bring it back */
  json_decref(put_doc(f, "schedule", json_pack("{s:s, s:s}", "id", id, "name", "hourly"), RM_ENOTFOUND));
  json_decref(l);
  json_decref(g);
  json_decref(a);
}

static void test_doc_list_pages_sorts_and_filters(void **state) {
  fx *f = *state;
  const char *names[] = {"Orders-EU", "orders-us", "billing", "100%_sure", "auth", "search", "catalog"};
  for (int i = 0; i < 7; i++) {
    json_decref(put_doc(f, "task",
                        json_pack("{s:s, s:s, s:s, s:[s]}", "name", names[i], "owner", i % 2 ? "bob" : "alice",
                                  "scope", i == 6 ? "private" : "global", "tags", i < 2 ? "orders" : "misc"),
                        0));
    uv_sleep(2); /* distinct creation times for the created_at sort */
  }
  json_t *l = list_docs(f, "task", json_pack("{s:i, s:i}", "page", 3, "page_size", 3), 0);
  assert_int_equal(num(l, "total"), 7);
  assert_int_equal(num(l, "total_pages"), 3);
  assert_int_equal(num(l, "page"), 3);
  assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s, s:i}", "sort", "-name", "page_size", 2), 0);
  json_t *items = json_object_get(l, "items");
  assert_string_equal(str(json_array_get(items, 0), "name"), "search");
  assert_string_equal(str(json_array_get(items, 1), "name"), "orders-us");
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "name", "ORDERS"), 0);
  assert_int_equal(num(l, "total"), 2);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "name", "0%_"), 0); /* wildcards taken literally */
  assert_int_equal(num(l, "total"), 1);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "owner", "bob"), 0);
  assert_int_equal(num(l, "total"), 3);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "scope", "private"), 0);
  assert_int_equal(num(l, "total"), 1);
  json_decref(l);
  /* visible_to hides others' private documents from the items and the total */
  l = list_docs(f, "task", json_pack("{s:s, s:s}", "visible_to", "bob", "name", "cat"), 0);
  assert_int_equal(num(l, "total"), 0);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "visible_to", "bob"), 0);
  assert_int_equal(num(l, "total"), 6);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "visible_to", "alice"), 0);
  assert_int_equal(num(l, "total"), 7);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s}", "name_is", "orders-us"), 0);
  assert_int_equal(num(l, "total"), 1);
  json_decref(l);
  l = list_docs(f, "task", json_pack("{s:s, s:s}", "tag", "orders", "sort", "created_at"), 0);
  assert_int_equal(num(l, "total"), 2);
  assert_string_equal(str(json_array_get(json_object_get(l, "items"), 0), "name"), "Orders-EU");
  json_decref(l);
  json_decref(list_docs(f, "task", json_pack("{s:s}", "sort", "name; DROP TABLE documents"), RM_EINVAL));
  json_decref(list_docs(f, "task", json_pack("{s:i}", "page", 0), RM_EINVAL));
  l = list_docs(f, "task", json_pack("{s:i}", "page_size", 100000), 0);
  assert_int_equal(num(l, "page_size"), 500);
  json_decref(l);
}

/* ---- workflow versions ---------------------------------------------- */

static json_t *publish(fx *f, const char *id, int want) {
  waiter w = {0};
  rm_store_workflow_publish(f->s, id, "alice", on_result, &w);
  return expect(f, &w, want);
}

static json_t *wf_version(fx *f, const char *id, int v, int want) {
  waiter w = {0};
  rm_store_workflow_version(f->s, id, v, on_result, &w);
  return expect(f, &w, want);
}

static void test_workflow_versions_are_immutable(void **state) {
  fx *f = *state;
  json_t *d = put_doc(f, "workflow", json_pack("{s:s, s:{s:i}}", "name", "wf", "definition", "rev", 1), 0);
  const char *id = str(d, "id");
  json_decref(wf_version(f, id, 0, RM_ENOTFOUND));
  json_t *p1 = publish(f, id, 0);
  assert_int_equal(num(p1, "version"), 1);
  assert_string_equal(str(p1, "workflow_id"), id);
  assert_iso_ms(str(p1, "published_at"));
  json_t *draft = json_deep_copy(d);
  json_object_set_new(draft, "definition", json_pack("{s:i}", "rev", 2));
  json_decref(put_doc(f, "workflow", draft, 0));
  json_t *p2 = publish(f, id, 0);
  assert_int_equal(num(p2, "version"), 2);
  json_t *v1 = wf_version(f, id, 1, 0);
  assert_int_equal(num(json_object_get(v1, "definition"), "rev"), 1);
  assert_string_equal(str(v1, "published_by"), "alice");
  json_t *latest = wf_version(f, id, 0, 0);
  assert_int_equal(num(latest, "version"), 2);
  assert_int_equal(num(json_object_get(latest, "definition"), "rev"), 2);
  json_decref(wf_version(f, id, 3, RM_ENOTFOUND));
  /* a derived definition is frozen only while the draft is unchanged */
  waiter w = {0};
  json_t *derived = json_pack("{s:i}", "rev", 3);
  rm_store_workflow_publish_def(f->s, id, "bob", derived, num(d, "version"), on_result, &w);
  json_decref(expect(f, &w, RM_ECONFLICT));
  memset(&w, 0, sizeof w);
  rm_store_workflow_publish_def(f->s, id, "bob", derived, num(d, "version") + 1, on_result, &w);
  json_decref(expect(f, &w, 0));
  json_decref(derived);
  json_t *v3 = wf_version(f, id, 3, 0);
  assert_int_equal(num(json_object_get(v3, "definition"), "rev"), 3);
  json_decref(v3);
  memset(&w, 0, sizeof w);
  json_t *vq = json_pack("{s:i}", "page_size", 2);
  rm_store_workflow_versions(f->s, id, vq, on_result, &w);
  json_decref(vq);
  json_t *vl = expect(f, &w, 0);
  assert_int_equal(num(vl, "total"), 3);
  assert_int_equal(num(json_array_get(json_object_get(vl, "items"), 0), "version"), 3);
  assert_null(json_object_get(json_array_get(json_object_get(vl, "items"), 0), "definition"));
  json_decref(vl);
  char err[512] = "";
  assert_int_equal(raw(f, "UPDATE workflow_versions SET definition = '{}'", NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "immutable"));
  assert_int_equal(raw(f, "DELETE FROM workflow_versions", NULL, err, sizeof err), -1);
  json_decref(publish(f, "nope", RM_ENOTFOUND));
  json_t *empty = put_doc(f, "workflow", json_pack("{s:s}", "name", "empty"), 0);
  json_decref(publish(f, str(empty, "id"), RM_EINVAL));
  json_decref(empty);
  json_decref(d);
  json_decref(p1);
  json_decref(p2);
  json_decref(v1);
  json_decref(latest);
}

/* ---- runs and leases ------------------------------------------------ */

static void test_run_create_and_get_shape(void **state) {
  fx *f = *state;
  json_t *r = create_run(f, json_pack("{s:s, s:s, s:i, s:{s:{s:{}, s:{}}}, s:s, s:{s:s, s:s}, s:{s:i}, s:b, s:[s]}",
                                      "workflow_id", "wf-1", "workflow_name", "orders", "workflow_version", 3,
                                      "definition", "tasks", "b", "a", "source", "api", "trigger", "type", "api",
                                      "by", "ci", "inputs", "n", 1, "dry_run", 1, "tags", "smoke"));
  const char *id = str(r, "run_id");
  assert_int_equal(strlen(id), 36);
  assert_string_equal(str(r, "status"), "queued");
  assert_true(json_is_true(json_object_get(r, "dry_run")));
  assert_true(json_is_false(json_object_get(r, "cancel_requested")));
  assert_true(json_is_null(json_object_get(r, "lease_owner")));
  assert_iso_ms(str(r, "created_at"));
  json_t *g = run_get(f, id, 0);
  static const char *const keys[] = {
      "run_id",     "workflow_id",  "workflow_name",   "workflow_version", "definition",  "source",
      "trigger",    "inputs",       "status",          "reason",           "vars",        "dry_run",
      "rerun_of",   "resumed_from", "created_at",      "started_at",       "finished_at", "duration_ms",
      "summary",    "tags",         "lease_owner",     "lease_expires_at", "cancel_requested",
      "acknowledged_by", "acknowledged_at", "steps", "annotations", "workflow", NULL};
  for (const char *const *k = keys; *k; k++)
    if (!json_object_get(g, *k)) fail_msg("run_get lacks %s", *k);
  assert_int_equal(json_object_size(g), 28);
  json_t *wf = json_pack("{s:s, s:s, s:i, s:s}", "id", "wf-1", "name", "orders", "version", 3, "source", "api");
  assert_true(json_equal(json_object_get(g, "workflow"), wf));
  json_decref(wf);
  assert_int_equal(json_array_size(json_object_get(g, "steps")), 0);
  assert_string_equal(str(json_object_get(g, "trigger"), "by"), "ci");
  char *def = json_dumps(json_object_get(g, "definition"), JSON_COMPACT);
  assert_string_equal(def, "{\"tasks\":{\"b\":{},\"a\":{}}}");
  free(def);
  json_decref(run_get(f, "missing", RM_ENOTFOUND));
  waiter w = {0};
  json_t *bad = json_pack("{s:s}", "workflow_name", "x");
  rm_store_run_create(f->s, bad, on_result, &w);
  json_decref(bad);
  json_decref(expect(f, &w, RM_EINVAL));
  assert_non_null(strstr(w.msg, "definition"));
  json_decref(r);
  json_decref(g);
}

static void test_claim_is_exclusive_until_the_lease_expires(void **state) {
  fx *f = *state;
  json_decref(queued_run(f, "a", "t"));
  uv_sleep(3); /* distinct creation times: claims go oldest first */
  json_decref(queued_run(f, "b", "t"));
  /* leases are generous against a loaded machine; expiry waits past them */
  json_t *c1 = claim(f, "exec-1", 1000, 5);
  assert_int_equal(json_array_size(c1), 2);
  json_t *first = json_array_get(c1, 0);
  assert_string_equal(str(first, "workflow_name"), "a"); /* oldest first */
  assert_string_equal(str(first, "status"), "running");
  assert_string_equal(str(first, "lease_owner"), "exec-1");
  assert_iso_ms(str(first, "lease_expires_at"));
  assert_iso_ms(str(first, "started_at"));
  assert_true(json_is_array(json_object_get(first, "steps")));
  assert_true(json_is_object(json_object_get(first, "vars")));
  json_t *c2 = claim(f, "exec-2", 1000, 5);
  assert_int_equal(json_array_size(c2), 0);
  json_decref(c2);
  uv_sleep(1100);
  c2 = claim(f, "exec-2", 10000, 1);
  assert_int_equal(json_array_size(c2), 1);
  assert_string_equal(str(json_array_get(c2, 0), "lease_owner"), "exec-2");
  /* the started_at of the first claim stays */
  assert_string_equal(str(json_array_get(c2, 0), "started_at"), str(first, "started_at"));
  json_decref(c2);
  c2 = claim(f, "exec-2", 10000, 5);
  assert_int_equal(json_array_size(c2), 1);
  json_decref(c2);
  c2 = claim(f, "exec-3", 10000, 5);
  assert_int_equal(json_array_size(c2), 0);
  json_decref(c2);
  json_decref(c1);
}

static void test_takeover_claim_returns_stored_steps_and_vars(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 1000);
  const char *id = str(r, "run_id");
  put_step(f, id, "exec-1", step("login", 200, "token", json_string("abc")), json_pack("{s:s}", "token", "abc"), 0);
  put_step(f, id, "exec-1", step("order", 201, "order_id", json_integer(17)),
           json_pack("{s:s, s:i}", "token", "abc", "order_id", 17), 0);
  uv_sleep(1100);
  json_t *c = claim(f, "exec-2", 5000, 5);
  assert_int_equal(json_array_size(c), 1);
  json_t *run = json_array_get(c, 0);
  json_t *steps = json_object_get(run, "steps");
  assert_int_equal(json_array_size(steps), 2);
  assert_string_equal(str(json_array_get(steps, 0), "task"), "login");
  assert_string_equal(str(json_array_get(steps, 1), "task"), "order");
  assert_int_equal(num(json_object_get(run, "vars"), "order_id"), 17);
  json_decref(c);
  json_decref(r);
}

static json_t *renew(fx *f, const char *owner, json_t *ids, int lease_ms) {
  waiter w = {0};
  rm_store_run_renew(f->s, owner, ids, (uint64_t)lease_ms, on_result, &w);
  json_decref(ids);
  return expect(f, &w, 0);
}

static bool has(const json_t *arr, const char *id) {
  size_t i;
  const json_t *v;
  json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), id) == 0) return true;
  return false;
}

static void test_renew_reports_lost_and_cancelled_runs(void **state) {
  fx *f = *state;
  json_t *a = running_run(f, "w", "exec-1", 600), *b = running_run(f, "w", "exec-1", 600);
  const char *ia = str(a, "run_id"), *ib = str(b, "run_id");
  json_t *r = renew(f, "exec-1", json_pack("[sss]", ia, ib, "unknown"), 600);
  assert_int_equal(json_array_size(json_object_get(r, "renewed")), 2);
  assert_true(has(json_object_get(r, "lost"), "unknown"));
  assert_int_equal(json_array_size(json_object_get(r, "cancel")), 0);
  json_decref(r);
  waiter w = {0};
  rm_store_run_cancel(f->s, ib, "op", on_result, &w);
  json_t *cb = expect(f, &w, 0);
  assert_true(json_is_true(json_object_get(cb, "cancel_requested")));
  assert_string_equal(str(cb, "status"), "running");
  json_decref(cb);
  r = renew(f, "exec-1", json_pack("[ss]", ia, ib), 600);
  assert_true(has(json_object_get(r, "cancel"), ib));
  assert_false(has(json_object_get(r, "cancel"), ia));
  json_decref(r);
  /* a renewal keeps the lease alive past its first expiry */
  uv_sleep(300);
  r = renew(f, "exec-1", json_pack("[s]", ia), 600);
  assert_true(has(json_object_get(r, "renewed"), ia));
  json_decref(r);
  uv_sleep(800);
  json_t *c = claim(f, "exec-2", 5000, 5);
  assert_int_equal(json_array_size(c), 2);
  json_decref(c);
  r = renew(f, "exec-1", json_pack("[ss]", ia, ib), 600);
  assert_int_equal(json_array_size(json_object_get(r, "renewed")), 0);
  assert_true(has(json_object_get(r, "lost"), ia));
  assert_true(has(json_object_get(r, "lost"), ib));
  json_decref(r);
  /* a lease of 0 releases the run: another executor claims it at once */
  json_t *d = running_run(f, "w", "exec-3", 60000);
  r = renew(f, "exec-3", json_pack("[s]", str(d, "run_id")), 0);
  assert_true(has(json_object_get(r, "renewed"), str(d, "run_id")));
  json_decref(r);
  c = claim(f, "exec-4", 5000, 5);
  assert_int_equal(json_array_size(c), 1);
  json_decref(c);
  json_decref(d);
  json_decref(a);
  json_decref(b);
}

typedef struct many {
  int done, failed, conflicts;
} many;

static void on_many(void *ud, int err, const char *msg, json_t *res) {
  many *m = ud;
  (void)msg;
  m->done++;
  if (err == RM_ECONFLICT) m->conflicts++;
  else if (err) m->failed++;
  json_decref(res);
}

static void test_step_puts_are_group_committed(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 60000), *other = running_run(f, "w", "exec-9", 60000);
  const char *id = str(r, "run_id");
  many m = {0};
  uint64_t tx0, jobs0, tx1, jobs1;
  rm__store_step_stats(f->s, &tx0, &jobs0);
  enum { N = 60 };
  for (int i = 0; i < N; i++) {
    char task[16];
    snprintf(task, sizeof task, "t%02d", i);
    json_t *st = step(task, 200 + i, "i", json_integer(i)), *vars = json_pack("{s:i}", "last", i);
    rm_store_step_put(f->s, id, "exec-1", st, vars, on_many, &m);
    json_decref(st);
    json_decref(vars);
    if (i == N / 2) { /* not this owner's run: refused alone, the others commit */
      st = step("intruder", 200, "x", json_integer(1));
      rm_store_step_put(f->s, str(other, "run_id"), "exec-1", st, NULL, on_many, &m);
      json_decref(st);
    }
  }
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, on_timeout, 30000, 0);
  while (m.done < N + 1) uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  assert_int_equal(m.failed, 0);
  assert_int_equal(m.conflicts, 1);
  rm__store_step_stats(f->s, &tx1, &jobs1);
  assert_int_equal(jobs1 - jobs0, N + 1);
  assert_true(tx1 - tx0 < N / 4); /* many writes per transaction */
  json_t *g = run_get(f, id, 0);
  json_t *steps = json_object_get(g, "steps");
  assert_int_equal(json_array_size(steps), N);
  for (int i = 0; i < N; i++) {
    char task[16];
    snprintf(task, sizeof task, "t%02d", i);
    assert_string_equal(str(json_array_get(steps, (size_t)i), "task"), task);
  }
  assert_int_equal(num(json_object_get(g, "vars"), "last"), N - 1);
  json_decref(g);
  g = run_get(f, str(other, "run_id"), 0);
  assert_int_equal(json_array_size(json_object_get(g, "steps")), 0);
  json_decref(g);
  json_decref(r);
  json_decref(other);
}

static void test_step_put_replaces_the_task_record(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 60000);
  const char *id = str(r, "run_id");
  put_step(f, id, "exec-1", step("a", 503, "v", json_integer(1)), NULL, 0);
  put_step(f, id, "exec-1", step("b", 200, "v", json_integer(2)), NULL, 0);
  put_step(f, id, "exec-1", step("a", 200, "v", json_integer(3)), NULL, 0);
  json_t *g = run_get(f, id, 0);
  json_t *steps = json_object_get(g, "steps");
  assert_int_equal(json_array_size(steps), 2);
  assert_string_equal(str(json_array_get(steps, 0), "task"), "a"); /* keeps its place */
  json_t *att = json_array_get(json_object_get(json_array_get(steps, 0), "attempts"), 0);
  assert_int_equal(num(json_object_get(att, "extracted"), "v"), 3);
  assert_int_equal(total(f, json_pack("{s:i}", "http_status", 503)), 0);
  waiter w = {0};
  json_t *nameless = json_pack("{s:s}", "status", "x");
  rm_store_step_put(f->s, id, "exec-1", nameless, NULL, on_result, &w);
  json_decref(nameless);
  json_decref(expect(f, &w, RM_EINVAL));
  json_decref(g);
  json_decref(r);
}

static void test_step_put_and_finish_refused_after_lease_loss(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 500);
  const char *id = str(r, "run_id");
  put_step(f, id, "exec-1", step("a", 200, "v", json_integer(1)), NULL, 0);
  uv_sleep(600);
  /* expired but not taken over: the owner may still go on */
  put_step(f, id, "exec-1", step("b", 200, "v", json_integer(1)), NULL, 0);
  json_decref(claim(f, "exec-2", 5000, 1));
  waiter w = {0};
  json_t *st = step("b", 200, "v", json_integer(1));
  rm_store_step_put(f->s, id, "exec-1", st, NULL, on_result, &w);
  json_decref(st);
  json_decref(expect(f, &w, RM_ECONFLICT));
  assert_non_null(strstr(w.msg, "exec-2"));
  put_step(f, id, "exec-2", step("b", 200, "v", json_integer(2)), NULL, 0);
  json_decref(finish(f, id, "exec-1", json_pack("{s:s}", "status", "succeeded"), RM_ECONFLICT));
  put_step(f, "no-such-run", "exec-2", step("b", 200, "v", json_integer(2)), NULL, RM_ENOTFOUND);
  json_decref(r);
}

static void test_run_finish_records_the_outcome(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 60000);
  const char *id = str(r, "run_id");
  json_decref(finish(f, id, "exec-1", json_pack("{s:s}", "status", "running"), RM_EINVAL));
  json_decref(finish(f, id, "exec-1", json_pack("{s:s, s:s}", "status", "failed", "finished_at", "yesterday"),
                     RM_EINVAL));
  json_t *done = finish(f, id, "exec-1",
                        json_pack("{s:s, s:s, s:s, s:f, s:{s:i}, s:{s:s}}", "status", "failed", "reason",
                                  "login failed", "finished_at", "2026-01-02T03:04:05.5+01:00", "duration_ms", 12.5,
                                  "summary", "tasks", 2, "vars", "token", "***"),
                        0);
  assert_string_equal(str(done, "status"), "failed");
  assert_string_equal(str(done, "reason"), "login failed");
  assert_string_equal(str(done, "finished_at"), "2026-01-02T02:04:05.500Z");
  assert_true(json_real_value(json_object_get(done, "duration_ms")) == 12.5);
  assert_int_equal(num(json_object_get(done, "summary"), "tasks"), 2);
  assert_string_equal(str(json_object_get(done, "vars"), "token"), "***");
  assert_true(json_is_null(json_object_get(done, "lease_owner")));
  assert_true(json_is_null(json_object_get(done, "lease_expires_at")));
  json_decref(finish(f, id, "exec-1", json_pack("{s:s}", "status", "succeeded"), RM_ECONFLICT));
  json_t *c = claim(f, "exec-2", 1000, 5);
  assert_int_equal(json_array_size(c), 0);
  json_decref(c);
  json_decref(done);
  json_decref(r);
}

/* ---- search --------------------------------------------------------- */

static void finish_run(fx *f, json_t *run, const char *status, double duration) {
  json_decref(finish(f, str(run, "run_id"), str(run, "lease_owner"),
                     json_pack("{s:s, s:f}", "status", status, "duration_ms", duration), 0));
}

static void test_run_search_by_each_filter(void **state) {
  fx *f = *state;
  json_t *a = running_run(f, "alpha", "x", 60000);
  json_t *b = running_run(f, "alpha", "x", 60000);
  put_step(f, str(a, "run_id"), "x", step("login", 200, "user", json_string("ann")), NULL, 0);
  put_step(f, str(a, "run_id"), "x", step("order", 201, "order_id", json_integer(17)), NULL, 0);
  put_step(f, str(b, "run_id"), "x", step("login", 503, "user", json_string("bob")), NULL, 0);
  put_step(f, str(b, "run_id"), "x", step("list", 200, "ids", json_pack("[ii]", 1, 2)), NULL, 0);
  finish_run(f, a, "succeeded", 30);
  finish_run(f, b, "failed", 10);
  uv_sleep(20);
  json_t *c = queued_run(f, "beta", "nightly");
  json_t *wfdoc = put_doc(f, "workflow", json_pack("{s:s}", "name", "gamma"), 0);
  uv_sleep(3);
  json_t *d = create_run(f, json_pack("{s:s, s:s, s:{}, s:{s:s}}", "workflow_id", str(wfdoc, "id"), "workflow_name",
                                      "gamma", "definition", "trigger", "type", "signal"));
  const char *later = str(c, "created_at");

  assert_int_equal(total(f, json_object()), 4);
  assert_int_equal(total(f, json_pack("{s:s}", "workflow", "alpha")), 2);
  assert_int_equal(total(f, json_pack("{s:s}", "workflow", str(wfdoc, "id"))), 1);
  assert_int_equal(total(f, json_pack("{s:s}", "status", "failed")), 1);
  assert_int_equal(total(f, json_pack("{s:[ss]}", "status", "failed", "queued")), 3);
  assert_int_equal(total(f, json_pack("{s:s}", "tag", "nightly")), 1);
  assert_int_equal(total(f, json_pack("{s:s}", "tag", "night")), 0);
  assert_int_equal(total(f, json_pack("{s:s}", "from", later)), 2);
  assert_int_equal(total(f, json_pack("{s:s}", "to", later)), 2);
  assert_int_equal(total(f, json_pack("{s:s, s:s}", "from", "2000-01-01", "to", "2999-01-01T00:00:00+02:00")), 4);
  assert_int_equal(total(f, json_pack("{s:i}", "http_status", 503)), 1);
  assert_int_equal(total(f, json_pack("{s:i}", "http_status", 200)), 2);
  assert_int_equal(total(f, json_pack("{s:{s:s, s:s}}", "var", "name", "user", "value", "ann")), 1);
  assert_int_equal(total(f, json_pack("{s:{s:s, s:i}}", "var", "name", "order_id", "value", 17)), 1);
  assert_int_equal(total(f, json_pack("{s:{s:s, s:s}}", "var", "name", "order_id", "value", "17")), 0);
  assert_int_equal(total(f, json_pack("{s:{s:s, s:[ii]}}", "var", "name", "ids", "value", 1, 2)), 1);
  assert_int_equal(total(f, json_pack("{s:{s:s, s:[i]}}", "var", "name", "ids", "value", 1)), 0);
  assert_int_equal(total(f, json_pack("{s:s}", "trigger", "signal")), 1);
  assert_int_equal(total(f, json_pack("{s:s, s:s}", "workflow", "alpha", "status", "succeeded")), 1);

  json_t *r = search(f, json_pack("{s:s, s:s}", "workflow", "alpha", "sort", "duration_ms"), 0);
  json_t *items = json_object_get(r, "items");
  assert_string_equal(str(json_array_get(items, 0), "run_id"), str(b, "run_id"));
  assert_null(json_object_get(json_array_get(items, 0), "definition")); /* lists leave the definition out */
  json_decref(r);
  r = search(f, json_pack("{s:i}", "page_size", 3), 0); /* newest first by default */
  assert_string_equal(str(json_array_get(json_object_get(r, "items"), 0), "run_id"), str(d, "run_id"));
  assert_int_equal(num(r, "total_pages"), 2);
  json_decref(r);
  json_decref(search(f, json_pack("{s:s}", "status", "done"), RM_EINVAL));
  json_decref(search(f, json_pack("{s:s}", "from", "last week"), RM_EINVAL));
  json_decref(search(f, json_pack("{s:s}", "sort", "lease_owner"), RM_EINVAL));
  json_decref(search(f, json_pack("{s:{s:s}}", "var", "name", "x"), RM_EINVAL));
  json_decref(a);
  json_decref(b);
  json_decref(c);
  json_decref(d);
  json_decref(wfdoc);
}

/* ---- operators: cancel, annotate, retention, audit ------------------- */

static json_t *cancel(fx *f, const char *id, int want) {
  waiter w = {0};
  rm_store_run_cancel(f->s, id, "op", on_result, &w);
  return expect(f, &w, want);
}

static void test_cancel_queued_and_running_runs(void **state) {
  fx *f = *state;
  json_t *q = queued_run(f, "w", "t"), *r = running_run(f, "w", "exec-1", 60000);
  json_t *cq = cancel(f, str(q, "run_id"), 0);
  assert_string_equal(str(cq, "status"), "cancelled");
  assert_iso_ms(str(cq, "finished_at"));
  assert_non_null(strstr(str(cq, "reason"), "op"));
  json_t *c = claim(f, "exec-2", 1000, 5); /* a cancelled run is never claimed */
  assert_int_equal(json_array_size(c), 0);
  json_decref(c);
  json_t *cr = cancel(f, str(r, "run_id"), 0);
  assert_string_equal(str(cr, "status"), "running");
  assert_true(json_is_true(json_object_get(cr, "cancel_requested")));
  json_decref(cancel(f, str(q, "run_id"), RM_ECONFLICT));
  json_decref(cancel(f, "nope", RM_ENOTFOUND));
  json_decref(q);
  json_decref(r);
  json_decref(cq);
  json_decref(cr);
}

static json_t *annotate(fx *f, const char *id, const char *kind, const char *text, int want) {
  waiter w = {0};
  rm_store_run_annotate(f->s, id, kind, "carol", text, on_result, &w);
  return expect(f, &w, want);
}

static void test_annotate_and_acknowledge(void **state) {
  fx *f = *state;
  json_t *r = running_run(f, "w", "exec-1", 60000);
  const char *id = str(r, "run_id");
  json_t *n = annotate(f, id, "note", "looking into it", 0);
  assert_string_equal(str(n, "kind"), "note");
  assert_string_equal(str(n, "author"), "carol");
  assert_string_equal(str(n, "run_id"), id);
  assert_int_equal(strlen(str(n, "id")), 36);
  assert_iso_ms(str(n, "created_at"));
  finish_run(f, r, "failed", 5);
  json_decref(annotate(f, id, "ack", NULL, 0));
  json_t *g = run_get(f, id, 0);
  assert_string_equal(str(g, "acknowledged_by"), "carol");
  assert_iso_ms(str(g, "acknowledged_at"));
  json_t *notes = json_object_get(g, "annotations");
  assert_int_equal(json_array_size(notes), 2);
  assert_true(json_equal(json_array_get(notes, 0), n));
  json_decref(annotate(f, id, "like", "x", RM_EINVAL));
  json_decref(annotate(f, "nope", "note", "x", RM_ENOTFOUND));
  json_decref(g);
  json_decref(n);
  json_decref(r);
}

static json_t *retention(fx *f, uint64_t ok_ms, uint64_t bad_ms, int batch) {
  waiter w = {0};
  rm_store_retention(f->s, ok_ms, bad_ms, batch, on_result, &w);
  return expect(f, &w, 0);
}

static void old_run(fx *f, const char *status) {
  json_t *r = running_run(f, "old", "x", 60000);
  put_step(f, str(r, "run_id"), "x", step("a", 200, "v", json_integer(1)), NULL, 0);
  json_decref(annotate(f, str(r, "run_id"), "note", "n", 0));
  json_decref(finish(f, str(r, "run_id"), "x",
                     json_pack("{s:s, s:s}", "status", status, "finished_at", "2000-01-01T00:00:00Z"), 0));
  json_decref(r);
}

static void test_retention_deletes_old_runs_in_batches(void **state) {
  fx *f = *state;
  const uint64_t day = 86400000;
  for (int i = 0; i < 3; i++) old_run(f, "succeeded");
  old_run(f, "failed");
  old_run(f, "cancelled");
  json_t *recent = running_run(f, "new", "x", 60000);
  finish_run(f, recent, "succeeded", 1);
  json_t *r = retention(f, day, 0, 2);
  assert_int_equal(num(r, "deleted"), 2);
  assert_true(json_is_true(json_object_get(r, "more")));
  json_decref(r);
  r = retention(f, day, 0, 2);
  assert_int_equal(num(r, "deleted"), 1);
  assert_true(json_is_false(json_object_get(r, "more")));
  json_decref(r);
  assert_int_equal(total(f, json_object()), 3); /* failed ones are kept (0 = keep) */
  r = retention(f, day, day, 10);
  assert_int_equal(num(r, "deleted"), 2);
  json_decref(r);
  assert_int_equal(total(f, json_object()), 1);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM steps"), 0);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM annotations"), 0);
  r = retention(f, 0, 0, 10);
  assert_int_equal(num(r, "deleted"), 0);
  json_decref(r);
  json_decref(recent);
}

static void audit(fx *f, json_t *entry, int want) {
  waiter w = {0};
  rm_store_audit(f->s, entry, on_result, &w);
  json_decref(entry);
  assert_null(expect(f, &w, want));
}

static void test_audit_entries_are_recorded(void **state) {
  fx *f = *state;
  audit(f, json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:s}", "actor", "alice", "action", "update",
                     "object_kind", "task", "object_id", "t1", "before", "name", "a", "after", "name", "b", "ip",
                     "127.0.0.1"),
        0);
  audit(f, json_pack("{s:s, s:s, s:s, s:s, s:s}", "actor", "bob", "action", "delete", "object_kind", "task",
                     "object_id", "t2", "before", "plain text"),
        0);
  audit(f, json_pack("{s:s, s:s}", "actor", "bob", "action", "login"), 0);
  audit(f, json_pack("{s:s}", "action", "x"), RM_EINVAL);
  waiter w = {0};
  json_t *q = json_pack("{s:s}", "actor", "bob");
  rm_store_audit_list(f->s, q, on_result, &w);
  json_decref(q);
  json_t *l = expect(f, &w, 0);
  assert_int_equal(num(l, "total"), 2);
  json_decref(l);
  w = (waiter){0};
  q = json_pack("{s:s, s:s}", "object_kind", "task", "sort", "actor");
  rm_store_audit_list(f->s, q, on_result, &w);
  json_decref(q);
  l = expect(f, &w, 0);
  json_t *first = json_array_get(json_object_get(l, "items"), 0), *second = json_array_get(json_object_get(l, "items"), 1);
  assert_string_equal(str(first, "actor"), "alice");
  assert_string_equal(str(json_object_get(first, "after"), "name"), "b");
  assert_string_equal(str(first, "ip"), "127.0.0.1");
  assert_iso_ms(str(first, "at"));
  assert_string_equal(str(second, "before"), "plain text");
  assert_true(json_is_null(json_object_get(second, "after")));
  json_decref(l);
}

static json_int_t audit_total(fx *f) {
  waiter w = {0};
  rm_store_audit_list(f->s, NULL, on_result, &w);
  json_t *l = expect(f, &w, 0);
  json_int_t n = num(l, "total");
  json_decref(l);
  return n;
}

static json_t *audit_retention(fx *f, uint64_t older_ms, int batch) {
  waiter w = {0};
  rm_store_audit_retention(f->s, older_ms, batch, on_result, &w);
  return expect(f, &w, 0);
}

static void test_audit_retention_deletes_old_entries_in_batches(void **state) {
  fx *f = *state;
  const uint64_t day = 86400000;
  for (int i = 0; i < 5; i++) audit(f, json_pack("{s:s, s:s}", "actor", "old", "action", "x"), 0);
  audit(f, json_pack("{s:s, s:s}", "actor", "new", "action", "x"), 0);
  char err[512] = "";
  if (raw(f, "UPDATE audit SET at = '2001-02-03T04:05:06.000Z' WHERE actor = 'old'", NULL, err, sizeof err) != 0)
    fail_msg("backdating: %s", err);
  json_t *r = audit_retention(f, 0, 10); /* 0 keeps everything */
  assert_int_equal(num(r, "deleted"), 0);
  json_decref(r);
  r = audit_retention(f, 30 * day, 3);
  assert_int_equal(num(r, "deleted"), 3);
  assert_true(json_is_true(json_object_get(r, "more")));
  json_decref(r);
  r = audit_retention(f, 30 * day, 3);
  assert_int_equal(num(r, "deleted"), 2);
  assert_true(json_is_false(json_object_get(r, "more")));
  json_decref(r);
  assert_int_equal(audit_total(f), 1);
  r = audit_retention(f, 30 * day, 3);
  assert_int_equal(num(r, "deleted"), 0);
  json_decref(r);
  waiter w = {0};
  rm_store_audit_retention(f->s, day, 0, on_result, &w);
  assert_null(expect(f, &w, RM_EINVAL));
}

/* ---- transition retention and delivery leases ------------------------- */

static void raw_ok(fx *f, const char *sql) {
  char err[512] = "";
  if (raw(f, sql, NULL, err, sizeof err) != 0) fail_msg("%s: %s", sql, err);
}

/* Transition seq of object at time at (an SQL expression). */
static void add_transition(fx *f, const char *object, int seq, const char *at) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO signal_transitions (object_id, seq, at, from_state, to_state, severity, source_type, body) "
           "VALUES ('%s', %d, %s, 'healthy', 'failed', 'critical', 'event', '{}')",
           object, seq, at);
  raw_ok(f, sql);
}

static long transitions_of(fx *f, const char *object) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM signal_transitions WHERE object_id = '%s'", object);
  return raw_count(f, sql);
}

static json_t *transition_retention(fx *f, uint64_t older_ms, int batch, int want) {
  waiter w = {0};
  rm_store_transition_retention(f->s, older_ms, batch, on_result, &w);
  return expect(f, &w, want);
}

static void test_transition_retention_keeps_each_signals_latest(void **state) {
  fx *f = *state;
  const uint64_t day = 86400000;
  const char *old = "'2001-02-03T04:05:06.000Z'";
  const char *now = f->pg ? "now()" : "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
  for (int i = 1; i <= 3; i++) add_transition(f, "a", i, old);
  add_transition(f, "a", 4, now);
  add_transition(f, "b", 1, old);
  add_transition(f, "b", 2, old); /* b's latest is old: it stays */
  add_transition(f, "c", 1, old);
  json_t *r = transition_retention(f, 0, 10, 0); /* 0 keeps everything */
  assert_int_equal(num(r, "deleted"), 0);
  json_decref(r);
  for (int pass = 0; pass < 2; pass++) { /* 4 to delete, 2 at a time */
    r = transition_retention(f, 30 * day, 2, 0);
    assert_int_equal(num(r, "deleted"), 2);
    assert_true(json_is_true(json_object_get(r, "more")) == (pass == 0));
    json_decref(r);
  }
  assert_int_equal(transitions_of(f, "a"), 1);
  assert_int_equal(raw_count(f, "SELECT seq FROM signal_transitions WHERE object_id = 'a'"), 4);
  assert_int_equal(raw_count(f, "SELECT seq FROM signal_transitions WHERE object_id = 'b'"), 2);
  assert_int_equal(transitions_of(f, "b"), 1);
  assert_int_equal(transitions_of(f, "c"), 1);
  assert_null(transition_retention(f, day, 0, RM_EINVAL));
}

static json_t *delivery(fx *f, const char *id, const char *owner, int lease_ms, int want) {
  json_t *d = json_pack("{s:s?, s:s, s:s, s:s, s:{s:s}, s:s?, s:i}", "id", id, "channel_id", "ch", "event",
                        "run.failed", "status", "queued", "body", "title", "t", "lease_owner", owner, "lease_ms",
                        lease_ms);
  waiter w = {0};
  rm_store_delivery_add(f->s, d, on_result, &w);
  json_decref(d);
  return expect(f, &w, want);
}

/* The ids claim hands owner (sorted). */
static char *claimed_ids(fx *f, const char *owner, int lease_ms) {
  waiter w = {0};
  rm_store_delivery_claim(f->s, owner, (uint64_t)lease_ms, 10, on_result, &w);
  json_t *r = expect(f, &w, 0), *row;
  size_t i;
  char buf[512] = "";
  json_array_foreach(json_object_get(r, "items"), i, row) {
    assert_null(json_object_get(row, "lease_owner")); /* internal */
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", str(row, "id"));
  }
  json_decref(r);
  return strdup(buf);
}

static json_int_t renew_deliveries(fx *f, const char *owner) {
  waiter w = {0};
  rm_store_delivery_renew(f->s, owner, 60000, on_result, &w);
  json_t *r = expect(f, &w, 0);
  json_int_t n = num(r, "renewed");
  json_decref(r);
  return n;
}

static json_t *delivery_retention(fx *f, uint64_t older_ms, int batch, int want) {
  waiter w = {0};
  rm_store_delivery_retention(f->s, older_ms, batch, on_result, &w);
  return expect(f, &w, want);
}

static void test_delivery_retention_prunes_only_ended_deliveries(void **state) {
  fx *f = *state;
  const uint64_t day = 86400000;
  static const char *const ids[] = {"d-delivered", "d-dead", "d-queued", "d-recent"};
  for (int i = 0; i < 4; i++) json_decref(delivery(f, ids[i], NULL, 0, 0));
  raw_ok(f, "UPDATE deliveries SET status = 'delivered', updated_at = '2001-02-03T04:05:06.000Z' WHERE id = 'd-delivered'");
  raw_ok(f, "UPDATE deliveries SET status = 'dead', updated_at = '2001-02-03T04:05:06.000Z' WHERE id = 'd-dead'");
  raw_ok(f, "UPDATE deliveries SET updated_at = '2001-02-03T04:05:06.000Z' WHERE id = 'd-queued'");
  raw_ok(f, "UPDATE deliveries SET status = 'delivered' WHERE id = 'd-recent'");
  json_t *r = delivery_retention(f, 0, 10, 0); /* 0 keeps everything */
  assert_int_equal(num(r, "deleted"), 0);
  json_decref(r);
  for (int pass = 0; pass < 2; pass++) { /* 2 to delete, 1 at a time */
    r = delivery_retention(f, 30 * day, 1, 0);
    assert_int_equal(num(r, "deleted"), 1);
    assert_true(json_is_true(json_object_get(r, "more")) == (pass == 0));
    json_decref(r);
  }
  assert_int_equal(raw_count(f, "SELECT count(*) FROM deliveries"), 2);
  assert_int_equal(raw_count(f, "SELECT count(*) FROM deliveries WHERE id IN ('d-queued', 'd-recent')"), 2);
  assert_null(delivery_retention(f, day, 0, RM_EINVAL));
}

static void test_delivery_leases_hand_queued_deliveries_over(void **state) {
  fx *f = *state;
  json_t *d = delivery(f, "d1", "A", 60000, 0);
  assert_string_equal(str(d, "status"), "queued");
  json_decref(d);
  assert_null(delivery(f, "d1", "A", 60000, 0)); /* recorded once: the second add writes nothing */
  d = delivery(f, "d2", NULL, 0, 0);                /* unleased, as an older binary wrote it */
  json_decref(d);
  char *got = claimed_ids(f, "B", 60000);
  assert_string_equal(got, ""); /* A's lease holds, d2 changed just now */
  free(got);

  waiter w = {0};
  json_t *o = json_pack("{s:s, s:i, s:s}", "status", "queued", "attempts", 2, "last_error", "cut short");
  rm_store_delivery_end(f->s, "d1", o, on_result, &w); /* A stops: hands d1 back */
  d = expect(f, &w, 0);
  assert_string_equal(str(d, "status"), "queued");
  assert_int_equal(num(d, "attempts"), 2);
  json_decref(d);
  got = claimed_ids(f, "B", 60000);
  assert_string_equal(got, "d1");
  free(got);
  got = claimed_ids(f, "C", 60000);
  assert_string_equal(got, ""); /* B holds it now */
  free(got);
  assert_int_equal(renew_deliveries(f, "B"), 1);
  assert_int_equal(renew_deliveries(f, "A"), 0);

  raw_ok(f, "UPDATE deliveries SET updated_at = '2001-02-03T04:05:06.000Z' WHERE id = 'd2'");
  raw_ok(f, "UPDATE deliveries SET lease_expires_at = '2001-02-03T04:05:06.000Z' WHERE id = 'd1'"); /* B died */
  got = claimed_ids(f, "C", 60000);
  assert_true(strcmp(got, "d1,d2") == 0 || strcmp(got, "d2,d1") == 0);
  free(got);
  json_decref(o);
  o = json_pack("{s:s, s:i}", "status", "lost", "attempts", 1);
  w = (waiter){0};
  rm_store_delivery_end(f->s, "d1", o, on_result, &w);
  assert_null(expect(f, &w, RM_EINVAL));
  json_decref(o);
  o = json_pack("{s:s, s:i}", "status", "dead", "attempts", 1);
  w = (waiter){0};
  rm_store_delivery_end(f->s, "d1", o, on_result, &w);
  json_decref(expect(f, &w, 0));
  json_decref(o);
  assert_int_equal(renew_deliveries(f, "C"), 1); /* d2 only: an ended delivery holds no lease */
  w = (waiter){0};
  rm_store_delivery_requeue(f->s, "d1", "D", 60000, on_result, &w);
  d = expect(f, &w, 0);
  assert_int_equal(num(d, "resends"), 1);
  json_decref(d);
  got = claimed_ids(f, "E", 60000);
  assert_string_equal(got, ""); /* the re-send is D's */
  free(got);
  assert_int_equal(renew_deliveries(f, "D"), 1);
  w = (waiter){0};
  rm_store_delivery_claim(f->s, "E", 0, 10, on_result, &w);
  assert_null(expect(f, &w, RM_EINVAL));
}

/* ---- lifecycle ------------------------------------------------------ */

static void test_close_finishes_queued_jobs(void **state) {
  fx *f = *state;
  many m = {0};
  for (int i = 0; i < 20; i++) {
    char name[16];
    snprintf(name, sizeof name, "n%d", i);
    json_t *d = json_pack("{s:s}", "name", name);
    rm_store_doc_put(f->s, "task", d, on_many, &m);
    json_decref(d);
  }
  close_store(f);
  assert_int_equal(m.done, 20);
  assert_int_equal(m.failed, 0);
  char err[512];
  assert_int_equal(open_store(f, 2000, err, sizeof err), 0);
  json_t *l = list_docs(f, "task", json_object(), 0);
  assert_int_equal(num(l, "total"), 20);
  json_decref(l);
}

static void test_ping(void **state) {
  fx *f = *state;
  waiter w = {0};
  rm_store_ping(f->s, on_result, &w);
  assert_null(expect(f, &w, 0));
}

static void test_time_text_is_normalized_to_utc_ms(void **state) {
  (void)state;
  char out[32];
  assert_int_equal(rm__ts_normalize("2026-01-02", out), 0);
  assert_string_equal(out, "2026-01-02T00:00:00.000Z");
  assert_int_equal(rm__ts_normalize("2026-01-02T03:04Z", out), 0);
  assert_string_equal(out, "2026-01-02T03:04:00.000Z");
  assert_int_equal(rm__ts_normalize("2026-01-02T03:04:05.123456-05:30", out), 0);
  assert_string_equal(out, "2026-01-02T08:34:05.123Z");
  assert_int_equal(rm__ts_normalize("2026-01-01T00:30:00+01", out), 0);
  assert_string_equal(out, "2025-12-31T23:30:00.000Z");
  assert_int_equal(rm__ts_normalize("2026-13-02", out), RM_EINVAL);
  assert_int_equal(rm__ts_normalize("2026-01-02T03:04:05Zjunk", out), RM_EINVAL);
  assert_int_equal(rm__ts_normalize("now", out), RM_EINVAL);
}

/* ---- checks: fires, last steps, signal machines ----------------------- */

static json_t *check_fire(fx *f, const char *item, int64_t at_ms, const char *owner) {
  json_t *spec = json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}, s:[s]}", "workflow_name", "chk", "definition", "tasks",
                           "trigger", "type", "schedule", "monitor_id", item, "tags", "check");
  if (owner) {
    json_object_set_new(spec, "status", json_string("running"));
    json_object_set_new(spec, "lease_owner", json_string(owner));
    json_object_set_new(spec, "lease_ms", json_integer(60000));
  }
  waiter w = {0};
  rm_store_check_fire(f->s, item, at_ms, spec, on_result, &w);
  json_decref(spec);
  return expect(f, &w, 0);
}

static void test_check_fire_claims_each_time_once(void **state) {
  fx *f = *state;
  json_t *run = check_fire(f, "mon-1", 1000, "ex-a");
  assert_non_null(run);
  assert_string_equal(str(run, "status"), "running");
  assert_string_equal(str(run, "lease_owner"), "ex-a");
  assert_string_equal(str(json_object_get(run, "trigger"), "monitor_id"), "mon-1");
  assert_null(json_object_get(run, "definition"));
  assert_iso_ms(str(run, "created_at"));
  assert_iso_ms(str(run, "lease_expires_at"));
  json_t *full = run_get(f, str(run, "run_id"), 0); /* the row as stored matches the one returned */
  assert_string_equal(str(full, "created_at"), str(run, "created_at"));
  assert_true(json_equal(json_object_get(full, "trigger"), json_object_get(run, "trigger")));
  json_decref(full);
  json_decref(run);
  assert_null(check_fire(f, "mon-1", 1000, "ex-b")); /* the same time again: taken */
  assert_null(check_fire(f, "mon-1", 999, "ex-b"));  /* an earlier one: taken too */
  run = check_fire(f, "mon-2", 1000, NULL);          /* another item; created queued */
  assert_string_equal(str(run, "status"), "queued");
  json_decref(run);
  json_decref(check_fire(f, "mon-1", 2000, "ex-b"));
  assert_int_equal(raw_count(f, "SELECT count(*) FROM runs"), 3);
  waiter w = {0};
  rm_store_sched_state_all(f->s, on_result, &w);
  json_t *last = expect(f, &w, 0);
  assert_int_equal(num(last, "mon-1"), 2000);
  assert_int_equal(num(last, "mon-2"), 1000);
  json_decref(last);
}

static void test_run_finish_last_stores_the_step_with_the_outcome(void **state) {
  fx *f = *state;
  json_t *run = running_run(f, "wf", "ex-a", 60000);
  json_t *rec = json_pack("{s:s, s:s, s:f, s:{}}", "status", "succeeded", "reason", "ok", "duration_ms", 3.0, "summary");
  waiter w = {0};
  rm_store_run_finish_last(f->s, str(run, "run_id"), "ex-a", step("only", 200, "x", json_integer(1)), rec, on_result,
                           &w);
  assert_null(expect(f, &w, 0));
  json_t *got = run_get(f, str(run, "run_id"), 0);
  assert_string_equal(str(got, "status"), "succeeded");
  assert_int_equal(json_array_size(json_object_get(got, "steps")), 1);
  assert_string_equal(str(json_array_get(json_object_get(got, "steps"), 0), "task"), "only");
  json_decref(got);
  json_decref(run);
  /* without the lease: neither the step nor the outcome */
  run = running_run(f, "wf", "ex-b", 60000);
  w = (waiter){0};
  rm_store_run_finish_last(f->s, str(run, "run_id"), "ex-a", step("only", 200, "x", json_integer(1)), rec, on_result,
                           &w);
  json_decref(expect(f, &w, RM_ECONFLICT));
  got = run_get(f, str(run, "run_id"), 0);
  assert_string_equal(str(got, "status"), "running");
  assert_int_equal(json_array_size(json_object_get(got, "steps")), 0);
  json_decref(got);
  json_decref(run);
  json_decref(rec);
}

static json_t *observe(fx *f, const char *id, int64_t at_ms) {
  json_t *spec = json_pack("{s:s, s:{s:s, s:s}, s:I, s:{s:I, s:s}}", "object_id", id, "config", "id", id, "type",
                           "check", "now_ms", (json_int_t)at_ms, "obs", "at_ms", (json_int_t)at_ms, "level", "healthy");
  waiter w = {0};
  rm_store_signal_apply(f->s, spec, on_result, &w);
  json_decref(spec);
  return expect(f, &w, 0);
}

static json_int_t observations(const json_t *res) {
  return num(json_object_get(json_object_get(res, "signal"), "machine"), "observations");
}

/* A connection remembers the machines it wrote (SQLite); a machine changed
 * behind its back is read again, never the remembered one. */
static void test_signal_machine_changed_elsewhere_is_read_again(void **state) {
  fx *f = *state;
  json_t *r = observe(f, "sig-1", 1000);
  json_decref(r);
  r = observe(f, "sig-1", 2000);
  assert_int_equal(observations(r), 2);
  assert_int_equal(num(r, "due_ms"), -1); /* no interval: never Unknown */
  json_decref(r);
  char sql[200];
  snprintf(sql, sizeof sql, "UPDATE signals SET machine = %s WHERE object_id = 'sig-1'",
           f->pg ? "jsonb_set(machine, '{observations}', '40')" : "json_set(machine, '$.observations', 40)");
  char err[512] = "";
  if (raw(f, sql, NULL, err, sizeof err) != 0) fail_msg("%s", err);
  r = observe(f, "sig-1", 3000);
  assert_int_equal(observations(r), 41);
  json_decref(r);
}

/* ---- the change feed ----------------------------------------------- */

static json_t *changes(fx *f, const char *const *kinds, const char *since, int limit, int want) {
  waiter w = {0};
  rm_store_doc_changes(f->s, kinds, since, limit, on_result, &w);
  return expect(f, &w, want);
}

/* The change list holds exactly the documents expect_ids (NULL-terminated), in order. */
static void assert_ids(const json_t *list, const char *const *expect_ids) {
  size_t n = 0;
  while (expect_ids[n]) n++;
  assert_int_equal(json_array_size(list), n);
  for (size_t i = 0; i < n; i++) assert_string_equal(str(json_array_get(list, i), "id"), expect_ids[i]);
}

static void test_doc_changes_list_writes_and_soft_deletes_in_order(void **state) {
  fx *f = *state;
  static const char *const both[] = {"task", "schedule", NULL}, *const tasks[] = {"task", NULL};
  json_t *a = put_doc(f, "task", json_pack("{s:s, s:s}", "id", "feed-a", "name", "feed-a"), 0);
  uv_sleep(5);
  json_t *b = put_doc(f, "schedule", json_pack("{s:s, s:s}", "id", "feed-b", "name", "feed-b"), 0);
  json_decref(put_doc(f, "user", json_pack("{s:s}", "name", "not-in-the-feed"), 0));
  uv_sleep(5);
  json_t *c = put_doc(f, "task", json_pack("{s:s, s:s, s:i}", "id", "feed-c", "name", "feed-c", "n", 1), 0);
  json_t *l = changes(f, both, NULL, 100, 0);
  assert_ids(l, (const char *const[]){"feed-a", "feed-b", "feed-c", NULL});
  assert_int_equal(num(json_array_get(l, 2), "n"), 1); /* whole documents */
  assert_true(json_is_null(json_object_get(json_array_get(l, 0), "deleted_at")));
  json_decref(l);
  l = changes(f, tasks, NULL, 100, 0);
  assert_ids(l, (const char *const[]){"feed-a", "feed-c", NULL});
  json_decref(l);
  l = changes(f, both, NULL, 2, 0); /* the oldest first, up to the limit */
  assert_ids(l, (const char *const[]){"feed-a", "feed-b", NULL});
  json_decref(l);
  l = changes(f, both, str(c, "updated_at"), 100, 0); /* since is inclusive */
  assert_ids(l, (const char *const[]){"feed-c", NULL});
  json_decref(l);
  uv_sleep(5);
  waiter del = {0};
  rm_store_doc_delete(f->s, "task", "feed-a", on_result, &del);
  assert_null(expect(f, &del, 0));
  l = changes(f, both, str(c, "updated_at"), 100, 0); /* the delete is a change, after c */
  assert_ids(l, (const char *const[]){"feed-c", "feed-a", NULL});
  const json_t *gone = json_array_get(l, 1);
  assert_iso_ms(str(gone, "deleted_at"));
  assert_string_equal(str(gone, "updated_at"), str(gone, "deleted_at"));
  assert_int_equal(num(gone, "version"), num(a, "version")); /* a delete keeps the version */
  json_decref(l);
  json_decref(changes(f, (const char *const[]){"task", "nope", NULL}, NULL, 10, RM_EINVAL));
  json_decref(changes(f, (const char *const[]){NULL}, NULL, 10, RM_EINVAL));
  json_decref(changes(f, tasks, "yesterday", 10, RM_EINVAL));
  json_decref(changes(f, tasks, NULL, 0, RM_EINVAL));
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

/* ---- groups --------------------------------------------------------- */

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)c)
#define COMMON_TESTS                                                                                                   \
  T(test_migrations_applied_once_and_recorded), T(test_newer_schema_is_refused), T(test_bad_url_is_refused),          \
      T(test_doc_put_get_round_trip), T(test_doc_update_checks_version),                                              \
      T(test_doc_names_unique_among_live_documents), T(test_doc_soft_delete),                                         \
      T(test_doc_list_pages_sorts_and_filters), T(test_workflow_versions_are_immutable),                              \
      T(test_run_create_and_get_shape), T(test_claim_is_exclusive_until_the_lease_expires),                           \
      T(test_takeover_claim_returns_stored_steps_and_vars), T(test_renew_reports_lost_and_cancelled_runs),            \
      T(test_step_puts_are_group_committed), T(test_step_put_replaces_the_task_record),                              \
      T(test_step_put_and_finish_refused_after_lease_loss), T(test_run_finish_records_the_outcome),                   \
      T(test_run_search_by_each_filter), T(test_cancel_queued_and_running_runs), T(test_annotate_and_acknowledge),    \
      T(test_retention_deletes_old_runs_in_batches), T(test_audit_entries_are_recorded), T(test_audit_retention_deletes_old_entries_in_batches), T(test_transition_retention_keeps_each_signals_latest), T(test_delivery_retention_prunes_only_ended_deliveries),                                     \
      T(test_delivery_leases_hand_queued_deliveries_over),                              \
      T(test_check_fire_claims_each_time_once), T(test_run_finish_last_stores_the_step_with_the_outcome),          \
      T(test_signal_machine_changed_elsewhere_is_read_again), T(test_close_finishes_queued_jobs), T(test_ping),      \
      T(test_doc_changes_list_writes_and_soft_deletes_in_order)

static int run_sqlite(void) {
  static const cfg open = {.pg = false, .open = true}, closed = {.pg = false, .open = false};
  const cfg *c = &open;
  const struct CMUnitTest tests[] = {
      COMMON_TESTS,
      T(test_locked_sqlite_waits_then_fails_clearly),
      cmocka_unit_test_prestate_setup_teardown(test_sqlite_backup_before_migrating_an_older_file, setup, teardown,
                                               (void *)&closed),
      cmocka_unit_test_prestate_setup_teardown(test_corrupt_sqlite_file_is_refused_clearly, setup, teardown,
                                               (void *)&closed),
      cmocka_unit_test(test_migrations_exist_for_both_backends),
      cmocka_unit_test(test_time_text_is_normalized_to_utc_ms),
  };
  return cmocka_run_group_tests_name("store on sqlite", tests, NULL, NULL);
}

static int run_pg(void) {
  static const cfg open = {.pg = true, .open = true}, closed = {.pg = true, .open = false};
  const cfg *c = &open;
  const struct CMUnitTest tests[] = {
      COMMON_TESTS,
      T(test_pg_broken_connection_is_reestablished),
      cmocka_unit_test_prestate_setup_teardown(test_pg_unreachable_fails_after_retry, setup, teardown, (void *)&closed),
  };
  return cmocka_run_group_tests_name("store on postgresql", tests, NULL, NULL);
}

int main(void) {
  int failed = run_sqlite();
  if (pg_base()) failed += run_pg();
  else printf("RESTMON_TEST_PG is not set: the PostgreSQL half of test_store was skipped "
              "(scripts/run-tests sets it)\n");
  return failed ? 1 : 0;
}
