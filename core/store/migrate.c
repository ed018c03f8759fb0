/* Schema migrations: numbered SQL files embedded in the binary
 * (core/store/migrations/<backend>/NNNN_name.sql), forward-only, each
 * recorded in schema_migrations. All pending ones are applied in one
 * transaction, so a failed upgrade leaves the previous schema intact; on
 * PostgreSQL an advisory lock makes processes starting together apply
 * them once. A database newer than this binary is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "store/store_internal.h"
#include "util/embedded.h"
#include "util/err.h"

#define MIGRATIONS_DIR "core/store/migrations/"
#define MAX_MIGRATIONS 256
/* Any constant shared by all RestMon processes: "rmmigr" in ASCII. */
#define PG_MIGRATION_LOCK "726d6d69677200"

typedef struct migration {
  int version;
  char name[64];
  const char *sql;
} migration;

/* The embedded migrations of one backend in version order; their count. */
static int list_migrations(const char *backend, migration *out, int max) {
  char prefix[96];
  int n = snprintf(prefix, sizeof prefix, MIGRATIONS_DIR "%s/", backend);
  int count = 0;
  for (const rm_embedded_file *f = rm_embedded_files; f->path && count < max; f++) {
    if (strncmp(f->path, prefix, (size_t)n) != 0) continue;
    const char *base = f->path + n;
    char *end;
    long v = strtol(base, &end, 10);
    size_t len = strlen(end);
    if (v <= 0 || *end != '_' || len < 5 || strcmp(end + len - 4, ".sql") != 0) continue;
    migration *m = &out[count++];
    m->version = (int)v;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(len - 5), end + 1);
    m->sql = f->data;
  }
  for (int i = 1; i < count; i++) /* the build lists them sorted; keep it true */
    for (int k = i; k > 0 && out[k - 1].version > out[k].version; k--) {
      migration t = out[k];
      out[k] = out[k - 1];
      out[k - 1] = t;
    }
  return count;
}

int rm_store_schema_version(void) {
  migration m[MAX_MIGRATIONS];
  int n = list_migrations("sqlite", m, MAX_MIGRATIONS);
  return n > 0 ? m[n - 1].version : 0;
}

static int current_version(rm__conn *c, int *version) {
  const char *exists =
      rm__conn_pg(c) ? "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema() "
                       "AND tablename = 'schema_migrations'"
                     : "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
  json_t *row = NULL;
  int rc = rm__q1(c, &row, exists, NULL);
  *version = 0;
  if (rc == 0 && json_integer_value(json_object_get(row, "n")) > 0) {
    json_decref(row);
    row = NULL;
    rc = rm__q1(c, &row, "SELECT COALESCE(max(version), 0) AS v FROM schema_migrations", NULL);
    *version = (int)json_integer_value(json_object_get(row, "v"));
  }
  json_decref(row);
  return rc;
}

static int refuse_newer(int found, int known, char *err, size_t errlen) {
  snprintf(err, errlen,
           "database schema version %d is newer than this binary's %d: run a newer restmon "
           "(or restore the backup taken before the upgrade)",
           found, known);
  return RM_EVERSION;
}

/* Inside the migration transaction: applies every migration above from. */
static int apply(rm__conn *c, int *from, char *err, size_t errlen) {
  migration m[MAX_MIGRATIONS];
  int n = list_migrations(c->be->name, m, MAX_MIGRATIONS), known = rm_store_schema_version();
  const char *bootstrap =
      rm__conn_pg(c) ? "SELECT pg_advisory_xact_lock(x'" PG_MIGRATION_LOCK "'::bigint);"
                       "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                       "name text NOT NULL, applied_at timestamptz NOT NULL)"
                     : "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                       "name TEXT NOT NULL, applied_at TEXT NOT NULL)";
  int rc = c->be->exec(c, bootstrap);
  if (rc == 0) rc = current_version(c, from); /* again: another process may have been first */
  if (rc == 0 && *from > known) return refuse_newer(*from, known, err, errlen);
  for (int i = 0; rc == 0 && i < n; i++) {
    if (m[i].version <= *from) continue;
    rc = c->be->exec(c, m[i].sql);
    if (rc == 0)
      rc = rm__qx(c, NULL, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, rm_now())",
                  json_pack("[is]", m[i].version, m[i].name));
    if (rc != 0 && rc != RM__ERETRY) {
      snprintf(err, errlen, "migration %04d_%s: %s", m[i].version, m[i].name, c->err);
      return RM_EDB;
    }
  }
  if (rc != 0) snprintf(err, errlen, "%s", c->err);
  return rc;
}

int rm__schema_prepare(rm__conn *c, bool migrate, int *from, int *to, char *err, size_t errlen) {
  int known = rm_store_schema_version(), cur = 0, dummy;
  if (!from) from = &dummy;
  if (!to) to = &dummy;
  int rc = current_version(c, &cur);
  if (rc != 0) {
    snprintf(err, errlen, "%s", c->err);
    return rc;
  }
  *from = *to = cur;
  if (cur > known) return refuse_newer(cur, known, err, errlen);
  if (cur == known) return 0;
  if (!migrate) {
    snprintf(err, errlen, "database schema version %d is older than this binary's %d: run `restmon migrate`", cur,
             known);
    return RM_EDB;
  }
  if ((rc = c->be->backup(c, cur)) != 0) {
    snprintf(err, errlen, "%s", c->err);
    return rc;
  }
  if ((rc = rm__begin(c, true)) != 0) {
    snprintf(err, errlen, "%s", c->err);
    return rc;
  }
  rc = apply(c, from, err, errlen);
  if (rc == 0 && (rc = rm__commit(c)) != 0) snprintf(err, errlen, "%s", c->err);
  if (rc != 0) {
    rm__rollback(c);
    return rc;
  }
  *to = known;
  return 0;
}

static void backoff_sleep(unsigned *ms, uint64_t deadline) {
  uint64_t now = rm__mono_ms();
  uint64_t wait = deadline > now ? deadline - now : 0;
  if (wait > *ms) wait = *ms;
  uv_sleep((unsigned)wait);
  *ms = *ms * 2 > 1000 ? 1000 : *ms * 2;
}

int rm__connect_retry(const rm__backend *be, const char *target, const rm__connopts *o, rm__conn **out,
                      char *err, size_t errlen) {
  uint64_t start = rm__mono_ms(), deadline = start + o->retry_ms;
  unsigned pause = 50;
  for (;;) {
    int rc = be->connect(out, target, o, err, errlen);
    if (rc != RM__ERETRY) return rc;
    if (rm__mono_ms() >= deadline) {
      size_t n = strlen(err);
      snprintf(err + n, errlen - n, " (gave up after %llu ms)", (unsigned long long)(rm__mono_ms() - start));
      return RM_EDB;
    }
    backoff_sleep(&pause, deadline);
  }
}

/* Connects and prepares the schema, retrying what may heal (an
 * unreachable server, a locked file) until o->retry_ms passed. */
int rm__open_db(const rm__backend *be, const char *target, const rm__connopts *o, bool migrate, rm__conn **out,
                int *from, int *to, char *err, size_t errlen) {
  uint64_t start = rm__mono_ms(), deadline = start + o->retry_ms;
  unsigned pause = 50;
  *out = NULL;
  for (;;) {
    rm__connopts left = *o;
    uint64_t now = rm__mono_ms();
    left.retry_ms = deadline > now ? deadline - now : 0;
    int rc = *out ? 0 : rm__connect_retry(be, target, &left, out, err, errlen);
    if (rc == 0) rc = rm__schema_prepare(*out, migrate, from, to, err, errlen);
    if (rc != RM__ERETRY) {
      if (rc != 0 && *out) {
        be->disconnect(*out);
        *out = NULL;
      }
      return rc;
    }
    if (be->broken(*out)) {
      be->disconnect(*out);
      *out = NULL;
    }
    if (rm__mono_ms() >= deadline) {
      size_t n = strlen(err);
      snprintf(err + n, errlen - n, " (gave up after %llu ms)", (unsigned long long)(rm__mono_ms() - start));
      if (*out) be->disconnect(*out);
      *out = NULL;
      return RM_EDB;
    }
    backoff_sleep(&pause, deadline);
  }
}

int rm_store_migrate(const char *url, int *from, int *to, char *err, size_t errlen) {
  const char *target;
  const rm__backend *be = url ? rm__backend_for(url, &target) : NULL;
  if (!be) {
    rm__bad_url(url, err, errlen);
    return RM_EINVAL;
  }
  rm__connopts o = {.writer = true, .retry_ms = 30000};
  rm__conn *c = NULL;
  int rc = rm__open_db(be, target, &o, true, &c, from, to, err, errlen);
  if (c) be->disconnect(c);
  return rc;
}
