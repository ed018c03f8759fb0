/* Commands on a store: restmon migrate, restmon executor, restmon runs. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "engine/executor.h"
#include "report/report.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

/* ---- restmon migrate ---------------------------------------------------- */

int rm_cmd_migrate(int argc, char **argv) {
  static const struct option opts[] = {{"database", required_argument, NULL, 'd'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *db = NULL, *config = NULL;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch == 'd') db = optarg;
    else if (ch == 'c') config = optarg;
    else {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon migrate [--database URL] [--config FILE]\n"
              "applies the schema migrations this binary carries to the store\n");
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  const char *url = rm_cli_database_url(db, config, &cfg);
  if (!url) return RM_EXIT_INVALID;
  int from = 0, to = 0;
  char err[600];
  int rc = rm_store_migrate(url, &from, &to, err, sizeof err);
  if (rc) fprintf(stderr, "restmon migrate: %s\n", err);
  else if (from == to) printf("%s: schema is at version %d; nothing to do\n", url, to);
  else printf("%s: schema migrated from version %d to %d\n", url, from, to);
  rm_config_free(cfg);
  return rc ? RM_EXIT_FAILED : RM_EXIT_OK;
}

/* ---- restmon executor --------------------------------------------------- */

typedef struct exec_cmd {
  uv_loop_t loop;
  rm_http_client http;
  rm_lua_host host;
  rm_store *store;
  rm_executor *ex;
  uv_signal_t sigint, sigterm;
  bool until_idle, stopping, checking;
  size_t done, failed;
} exec_cmd;

static void exec_finished(rm_run *r, const json_t *row, void *ud) {
  exec_cmd *c = ud;
  (void)row;
  if (rm_run_abandoned(r)) return;
  c->done++;
  if (strcmp(rm_run_status(r), "failed") == 0) c->failed++;
  printf("%s %s %s\n", rm_run_id(r), rm_run_status(r),
         json_string_value(json_object_get(rm_run_record(r), "reason")));
  fflush(stdout);
}

static void exec_stop(exec_cmd *c) {
  if (c->stopping) return;
  c->stopping = true;
  rm_executor_stop(c->ex, NULL, NULL);
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
}

static void unfinished_counted(void *ud, int err, const char *errmsg, json_t *res) {
  exec_cmd *c = ud;
  c->checking = false;
  if (err) rm_log_warn("executor", "counting unfinished runs failed: %s", errmsg);
  else if (json_integer_value(json_object_get(res, "total")) == 0 && rm_executor_running(c->ex) == 0) exec_stop(c);
  json_decref(res);
}

/* Nothing to claim: with --until-idle, stop once no run in the store is
 * queued or running (runs held by others under a live lease still count). */
static void exec_idle(void *ud) {
  exec_cmd *c = ud;
  if (!c->until_idle || c->stopping || c->checking) return;
  c->checking = true;
  json_t *q = json_pack("{s:[s, s], s:i}", "status", "queued", "running", "page_size", 1);
  rm_store_run_search(c->store, q, unfinished_counted, c);
  json_decref(q);
}

static void exec_signal(uv_signal_t *s, int signum) {
  exec_cmd *c = s->data;
  rm_log_warn("executor", "signal %d: stopping; runs in flight are left to be resumed", signum);
  exec_stop(c);
}

static void closed_noop(void *ud) { (void)ud; }

/* A retention period as milliseconds; 0 ("keep") with a warning when the
 * setting is not a number of days >= 0. */
static uint64_t days_ms(const rm_config *cfg, const char *key) {
  uint64_t ms = 0;
  char err[400];
  if (rm_config_days_ms(cfg, key, &ms, err, sizeof err) != 0) rm_log_warn("executor", "%s; keeping runs", err);
  return ms;
}static void http_closed(rm_http_client *h) { (void)h; }

int rm_cmd_executor(int argc, char **argv) {
  enum { O_DB = 256, O_CONFIG, O_CONC, O_LEASE, O_IDLE, O_SECRETS, O_SECRET_ENV, O_PLUGINS, O_LOGLEVEL };
  static const struct option opts[] = {
      {"database", required_argument, NULL, O_DB}, {"config", required_argument, NULL, O_CONFIG},
      {"concurrency", required_argument, NULL, O_CONC}, {"lease-ms", required_argument, NULL, O_LEASE},
      {"until-idle", no_argument, NULL, O_IDLE}, {"secrets-file", required_argument, NULL, O_SECRETS},
      {"secret-env", required_argument, NULL, O_SECRET_ENV}, {"plugins", required_argument, NULL, O_PLUGINS},
      {"log-level", required_argument, NULL, O_LOGLEVEL}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  exec_cmd c = {0};
  const char *db = NULL, *config = NULL, *plugin_dir = getenv("RESTMON_PLUGINS");
  long conc = 0, lease = 0;
  int level = RM_LOG_INFO, ch, rc = RM_EXIT_INVALID;
  bool bad = false;
  rm_secrets *secrets = rm_secrets_new();
  char err[600];
  optind = 1;
  while (!bad && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case O_DB: db = optarg; break;
      case O_CONFIG: config = optarg; break;
      case O_CONC: bad = (conc = atol(optarg)) <= 0; break;
      case O_LEASE: bad = (lease = atol(optarg)) < 100; break;
      case O_IDLE: c.until_idle = true; break;
      case O_PLUGINS: plugin_dir = optarg; break;
      case O_SECRETS:
        if (rm_secrets_load_file(secrets, optarg, err, sizeof err) != 0) {
          fprintf(stderr, "--secrets-file: %s\n", err);
          bad = true;
        }
        break;
      case O_SECRET_ENV: bad = rm_cli_add_secret_env(secrets, optarg) != 0; break;
      case O_LOGLEVEL: bad = (level = rm_log_level_parse(optarg)) < 0; break;
      default: bad = true;
    }
    if (ch == 'h' || bad) {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon executor [options]\n"
              "executes the runs queued in the store, and takes over runs whose\n"
              "executor went away (their lease lapsed), resuming after their last stored step\n"
              "  --database URL          the store (default: `database` of restmon.conf)\n"
              "  --config FILE           settings file (default ./restmon.conf)\n"
              "  --concurrency N         runs at once (default executor.concurrency)\n"
              "  --lease-ms N            lease on each run, >= 100 (default executor.lease_ms)\n"
              "  --until-idle            exit once nothing is queued or running\n"
              "  --secrets-file FILE     secrets as NAME=value lines\n"
              "  --secret-env NAME=ENV   a secret from an environment variable; repeatable\n"
              "  --plugins DIR           extra task types\n"
              "  --log-level LEVEL       debug, info, warn, error (default info)\n");
      if (ch == 'h') rc = RM_EXIT_OK;
      rm_secrets_free(secrets);
      return rc;
    }
  }
  rm_log_configure((enum rm_log_level)level, RM_LOG_TEXT);
  rm_log_set_scrubber(rm_secrets_log_scrub, secrets);
  rm_config *cfg = NULL;
  const char *url = rm_cli_database_url(db, config, &cfg);
  uint64_t v;
  if (url && !conc && rm_config_u64(cfg, "executor.concurrency", &v, err, sizeof err) == 0) conc = (long)v;
  if (url && !lease && rm_config_u64(cfg, "executor.lease_ms", &v, err, sizeof err) == 0) lease = (long)v;
  if (!url) goto out;
  rm_lua_limits limits = {0};
  if (rm_config_u64(cfg, "runs.record_body_bytes", &v, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    goto out;
  }
  limits.record_body_bytes = (size_t)v;
  uv_loop_init(&c.loop);
  rm_http_client_init(&c.http, &c.loop);
  rm_store_opts so = {.migrate = true};
  if (rm_lua_host_init(&c.host, &c.loop, &c.http, &limits, plugin_dir, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    rm_http_client_close(&c.http, http_closed);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    goto out;
  }
  if (rm_store_open(&c.store, &c.loop, url, &so, err, sizeof err) != 0) {
    fprintf(stderr, "restmon executor: %s\n", err);
  } else {
    rm_executor_opts eo = {.concurrency = (int)conc, .lease_ms = (uint64_t)lease, .claim = true,
                           .secrets = secrets, .finished = exec_finished, .idle = exec_idle, .ud = &c,
                           .retention_every_ms = 10 * 60 * 1000,
                           .retention_success_ms = days_ms(cfg, "retention.succeeded_days"),
                           .retention_failed_ms = days_ms(cfg, "retention.failed_days")};
    rm_executor_new(&c.ex, &c.loop, c.store, &c.host, &eo);
    rm_log_info("executor", "%s executing runs of %s (%ld at once, lease %ld ms)", rm_executor_owner(c.ex),
                url, conc, lease);
    uv_signal_init(&c.loop, &c.sigint);
    uv_signal_init(&c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, exec_signal, SIGINT);
    uv_signal_start(&c.sigterm, exec_signal, SIGTERM);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    rm_store_close(c.store, closed_noop, NULL);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    rm_executor_free(c.ex);
    rc = c.failed ? RM_EXIT_FAILED : RM_EXIT_OK;
    fprintf(stderr, "executor: %zu run(s) finished, %zu failed\n", c.done, c.failed);
  }
  rm_lua_host_close(&c.host);
  rm_http_client_close(&c.http, http_closed);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  uv_loop_close(&c.loop);
out:
  rm_log_set_scrubber(NULL, NULL);
  rm_config_free(cfg);
  rm_secrets_free(secrets);
  return rc;
}
