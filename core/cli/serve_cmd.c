/* restmon serve: the REST API server (core/serve/) with its in-process
 * executor -- settings, start-up, the first admin and shutdown;
 * restmon check-config: validates and prints every setting. */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/endpoints.h"
#include "api/metrics.h"
#include "api/request.h"
#include "api/response.h"
#include "api/server.h"
#include "auth/password.h"
#include "auth/ratelimit.h"
#include "auth/rbac.h"
#include "auth/token.h"
#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "engine/executor.h"
#include "secret/vault.h"
#include "serve/admin.h"
#include "serve/serve.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"


/* ---- settings ------------------------------------------------------------ */

typedef rm_serve_settings settings;

static const char *const number_keys[] = {"database.threads",  "database.retry_ms", "executor.concurrency",
                                          "executor.lease_ms", "runs.record_body_bytes",
                                          "auth.session_ttl_s", "notify.attempts", "notify.backoff_ms",
                                          "notify.max_delay_ms", "serve.sync_ms", NULL};

static int parse_listen(const char *v, char *host, size_t hn, int *port) {
  const char *colon;
  const char *h = v;
  size_t hl;
  if (*v == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':') return RM_EINVAL;
    h = v + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(v, ':');
    if (!colon || strchr(v, ':') != colon) return RM_EINVAL;
    hl = (size_t)(colon - v);
  }
  if (hl == 0 || hl >= hn) return RM_EINVAL;
  const char *p = colon + 1;
  if (!*p || strlen(p) > 5) return RM_EINVAL;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return RM_EINVAL;
  long n = atol(p);
  if (n > 65535) return RM_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)n;
  return 0;
}

/* Validates every setting; each problem goes to stderr. Returns the count. */
static int check_settings(const rm_config *cfg, settings *st) {
  int problems = 0;
  char err[600];
  memset(st, 0, sizeof *st);
  uint64_t *dst[] = {&st->threads, &st->retry_ms, &st->concurrency, &st->lease_ms, &st->body_bytes,
                     &st->session_ttl_s, &st->notify_attempts, &st->notify_backoff_ms,
                     &st->notify_max_delay_ms, &st->sync_ms};
  for (size_t i = 0; number_keys[i]; i++)
    if (rm_config_u64(cfg, number_keys[i], dst[i], err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      problems++;
    }
  if (st->concurrency == 0 && !problems) {
    fprintf(stderr, "executor.concurrency (%s): must be at least 1\n", rm_config_source(cfg, "executor.concurrency"));
    problems++;
  }
  if (st->lease_ms && st->lease_ms < 100) {
    fprintf(stderr, "executor.lease_ms (%s): must be at least 100\n", rm_config_source(cfg, "executor.lease_ms"));
    problems++;
  }
  if (rm_config_u64(cfg, "auth.session_ttl_s", &st->session_ttl_s, err, sizeof err) == 0 && st->session_ttl_s == 0) {
    fprintf(stderr, "auth.session_ttl_s (%s): must be at least 1\n", rm_config_source(cfg, "auth.session_ttl_s"));
    problems++;
  }
  static const char *const day_keys[] = {"retention.succeeded_days", "retention.failed_days"};
  uint64_t *ddst[] = {&st->retention_success_ms, &st->retention_failed_ms};
  for (int i = 0; i < 2; i++)
    if (rm_config_days_ms(cfg, day_keys[i], ddst[i], err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      problems++;
    }
  if ((st->log_level = rm_log_level_parse(rm_config_str(cfg, "log.level"))) < 0) {
    fprintf(stderr, "log.level = \"%s\" (%s): expected debug, info, warn or error\n", rm_config_str(cfg, "log.level"),
            rm_config_source(cfg, "log.level"));
    problems++;
  }
  const char *fmt = rm_config_str(cfg, "log.format");
  if (strcmp(fmt, "text") == 0) st->log_format = RM_LOG_TEXT;
  else if (strcmp(fmt, "json") == 0) st->log_format = RM_LOG_JSON;
  else {
    fprintf(stderr, "log.format = \"%s\" (%s): expected text or json\n", fmt, rm_config_source(cfg, "log.format"));
    problems++;
  }
  const char *db = rm_config_str(cfg, "database");
  if (strncmp(db, "sqlite:", 7) != 0 && strncmp(db, "postgresql://", 13) != 0 && strncmp(db, "postgres://", 11) != 0) {
    fprintf(stderr, "database = \"%s\" (%s): expected sqlite:PATH or postgresql://...\n", db,
            rm_config_source(cfg, "database"));
    problems++;
  }
  const char *listen = rm_config_str(cfg, "listen");
  if (parse_listen(listen, st->host, sizeof st->host, &st->port) != 0) {
    fprintf(stderr, "listen = \"%s\" (%s): expected HOST:PORT (port 0-65535; [v6addr]:PORT)\n", listen,
            rm_config_source(cfg, "listen"));
    problems++;
  }
  static const char *const files[] = {"tls.cert_file", "tls.key_file", "tls.client_ca_file"};
  for (int i = 0; i < 3; i++) {
    const char *f = rm_config_str(cfg, files[i]);
    if (*f && access(f, R_OK) != 0) {
      fprintf(stderr, "%s = \"%s\" (%s): cannot read the file\n", files[i], f, rm_config_source(cfg, files[i]));
      problems++;
    }
  }
  bool cert = *rm_config_str(cfg, "tls.cert_file"), key = *rm_config_str(cfg, "tls.key_file");
  if (cert != key) {
    fprintf(stderr, "tls.cert_file and tls.key_file: set both or neither\n");
    problems++;
  }
  if (*rm_config_str(cfg, "tls.client_ca_file") && !cert) {
    fprintf(stderr, "tls.client_ca_file needs tls.cert_file and tls.key_file\n");
    problems++;
  }
  const char *web = rm_config_str(cfg, "web.dir");
  struct stat sb;
  if (*web && stat(web, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "web.dir = \"%s\" (%s): not a folder\n", web, rm_config_source(cfg, "web.dir"));
    problems++;
  }
  if (!*rm_config_str(cfg, "vault.key_file") && !getenv(RM_VAULT_KEY_ENV)) {
    fprintf(stderr, "vault.key_file: must be set (or %s)\n", RM_VAULT_KEY_ENV);
    problems++;
  }
  return problems;
}

int rm_cmd_check_config(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    if (ch == 'c') config = optarg;
    else {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon check-config [-c FILE]\n"
              "loads and validates every setting and prints each as key = value (source)\n");
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  char err[600];
  if (rm_config_load(&cfg, config, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return RM_EXIT_INVALID;
  }
  settings st;
  int problems = check_settings(cfg, &st);
  for (size_t i = 0; rm_config_key_at(i); i++) {
    const char *k = rm_config_key_at(i);
    printf("%s = %s (%s)\n", k, rm_config_str(cfg, k), rm_config_source(cfg, k));
  }
  if (problems) fprintf(stderr, "%d problem(s) in the configuration\n", problems);
  rm_config_free(cfg);
  return problems ? RM_EXIT_INVALID : RM_EXIT_OK;
}

/* ---- lifecycle ---- */

static void store_closed(void *ud) { (void)ud; }

static void notify_closed(rm_serve *s) { rm_store_close(s->store, store_closed, NULL); }

static void executor_stopped(void *ud) {
  rm_serve *s = ud;
  rm_serve_notify_close(s, notify_closed);
}

static void server_stopped(rm_api_server *srv, int status) {
  rm_serve *s = srv->loop->data;
  if (status) rm_log_warn("serve", "some requests were cut at the shutdown deadline");
  rm_executor_stop(s->ex, executor_stopped, s);
}

static void on_signal(uv_signal_t *h, int signum) {
  rm_serve *s = h->data;
  if (s->stopping) return;
  s->stopping = true;
  rm_log_info("serve", "signal %d: stopping (runs in flight are handed back)", signum);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  rm_serve_events_stop(s);
  rm_serve_admin_stop(s);
  rm_serve_sync_stop(s);
  rm_serve_sched_stop(s);
  rm_serve_notify_stop(s);
  rm_serve_signals_stop(s);
  rm_api_server_stop(&s->srv, 5000, server_stopped);
}

/* Creates the admin user when the store has no user at all. */
static int bootstrap_admin(rm_serve *s) {
  rm__serve_waiter w = {0};
  json_t *q = json_pack("{s:b, s:i}", "include_deleted", 1, "page_size", 1);
  rm_store_doc_list(s->store, "user", q, rm__serve_wait_cb, &w);
  json_decref(q);
  rm__serve_wait(s, &w);
  if (w.err) {
    fprintf(stderr, "restmon serve: listing users: %s\n", w.errmsg);
    return RM_EXIT_FAILED;
  }
  json_int_t total = json_integer_value(json_object_get(w.res, "total"));
  json_decref(w.res);
  if (total > 0) return 0;
  const char *env = getenv("RESTMON_ADMIN_PASSWORD");
  char pw[RM_TOKEN_LEN + 1];
  bool generated = !env || !*env;
  if (generated) {
    if (rm_token_new(pw) != 0) {
      fprintf(stderr, "restmon serve: no randomness for the admin password\n");
      return RM_EXIT_FAILED;
    }
    pw[20] = '\0';
  }
  rm_pw_params p = RM_PW_PARAMS_DEFAULT;
  char hash[RM_PW_ENCODED_MAX];
  int rc = rm_pw_hash(&p, generated ? pw : env, hash);
  if (rc) {
    memset(pw, 0, sizeof pw);
    fprintf(stderr, "restmon serve: hashing the admin password: %s\n", rm_strerror(rc));
    return RM_EXIT_FAILED;
  }
  json_t *doc = json_pack("{s:s, s:s, s:s, s:b}", "name", "admin", "role", "admin", "password_hash", hash,
                          "active", 1);
  memset(&w, 0, sizeof w);
  rm_store_doc_put(s->store, "user", doc, rm__serve_wait_cb, &w);
  json_decref(doc);
  rm__serve_wait(s, &w);
  if (w.err) {
    memset(pw, 0, sizeof pw);
    fprintf(stderr, "restmon serve: creating the admin user: %s\n", w.errmsg);
    return RM_EXIT_FAILED;
  }
  rm_serve_audit(s, "restmon", "user.create", "user", json_string_value(json_object_get(w.res, "id")), NULL, NULL,
                 json_pack("{s:s, s:s}", "name", "admin", "role", "admin"));
  json_decref(w.res);
  if (generated) printf("admin user created; admin password: %s\n", pw);
  else printf("admin user created with the password of RESTMON_ADMIN_PASSWORD\n");
  fflush(stdout);
  memset(pw, 0, sizeof pw);
  return 0;
}

static void http_closed(rm_http_client *h) { (void)h; }

static int add_routes(rm_serve *s) {
  int (*const mods[])(rm_serve *) = {rm_serve_health_routes, rm_serve_session_routes, rm_serve_run_routes,
                                      rm_serve_docs_routes, rm_serve_user_routes, rm_serve_apikey_routes,
                                      rm_serve_secret_routes, rm_serve_config_routes, rm_serve_audit_routes,
                                      rm_serve_def_routes, rm_serve_workflow_routes, rm_serve_sched_routes,
                                      rm_serve_notify_routes, rm_serve_signal_routes, rm_serve_channel_routes};
  int rc = 0;
  for (size_t i = 0; !rc && i < sizeof mods / sizeof mods[0]; i++) rc = mods[i](s);
  return rc;
}

static void routes_stopped(rm_api_server *srv, int status) {
  (void)srv, (void)status;
}

/* --print-routes: the route table without a store or a listener. */
static int print_routes_json(void) {
  rm_serve *s = calloc(1, sizeof *s);
  if (!s) return RM_EXIT_FAILED;
  uv_loop_init(&s->loop);
  rm_api_server_opts ao = {.host = "127.0.0.1"};
  int rc = rm_api_server_init(&s->srv, &s->loop, &ao);
  if (rc == 0) {
    rc = add_routes(s);
    json_t *r = rc ? NULL : rm_serve_routes_json(s);
    char *text = r ? json_dumps(r, JSON_INDENT(2)) : NULL;
    if (text) printf("%s\n", text);
    else rc = rc ? rc : RM_ENOMEM;
    free(text);
    json_decref(r);
    rm_api_server_stop(&s->srv, 0, routes_stopped);
    uv_run(&s->loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&s->loop);
  rm_serve_routes_free(s);
  free(s);
  if (rc) fprintf(stderr, "restmon serve --print-routes: %s\n", rm_strerror(rc));
  return rc ? RM_EXIT_FAILED : RM_EXIT_OK;
}

int rm_cmd_serve(int argc, char **argv) {
  enum { O_SECRETS = 256, O_SECRET_ENV, O_PLUGINS, O_DB, O_ROUTES };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"database", required_argument, NULL, O_DB},
                                       {"secrets-file", required_argument, NULL, O_SECRETS},
                                       {"secret-env", required_argument, NULL, O_SECRET_ENV},
                                       {"plugins", required_argument, NULL, O_PLUGINS},
                                       {"print-routes", no_argument, NULL, O_ROUTES},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL, *db = NULL, *plugin_dir = getenv("RESTMON_PLUGINS");
  rm_secrets *secrets = rm_secrets_new();
  char err[600];
  int ch, rc = RM_EXIT_INVALID;
  bool bad = false, print_routes = false;
  optind = 1;
  while (!bad && (ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (ch) {
      case 'c': config = optarg; break;
      case O_DB: db = optarg; break;
      case O_PLUGINS: plugin_dir = optarg; break;
      case O_ROUTES: print_routes = true; break;
      case O_SECRETS:
        if (rm_secrets_load_file(secrets, optarg, err, sizeof err) != 0) {
          fprintf(stderr, "--secrets-file: %s\n", err);
          bad = true;
        }
        break;
      case O_SECRET_ENV: bad = rm_cli_add_secret_env(secrets, optarg) != 0; break;
      default: bad = true;
    }
    if (ch == 'h' || bad) {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon serve [-c FILE] [options]\n"
              "serves the REST API and executes queued runs\n"
              "  -c, --config FILE       settings file (default ./restmon.conf)\n"
              "  --database URL          the store (default: `database` of the settings)\n"
              "  --secrets-file FILE     secrets for the executor as NAME=value lines\n"
              "  --secret-env NAME=ENV   a secret from an environment variable; repeatable\n"
              "  --plugins DIR           extra task and notification channel types (docs/plugins.md)\n"
              "  --print-routes          print every route with the permission it needs, as JSON, and exit\n");
      rm_secrets_free(secrets);
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  if (print_routes) {
    rm_secrets_free(secrets);
    return print_routes_json();
  }
  rm_config *cfg = NULL;
  if (rm_config_load(&cfg, config, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    rm_secrets_free(secrets);
    return RM_EXIT_INVALID;
  }
  rm_serve *s = calloc(1, sizeof *s);
  if (!s || check_settings(cfg, &s->st) != 0) {
    if (s) fprintf(stderr, "restmon serve: fix the configuration (restmon check-config lists every setting)\n");
    free(s);
    rm_config_free(cfg);
    rm_secrets_free(secrets);
    return s ? RM_EXIT_INVALID : RM_EXIT_FAILED;
  }
  rm_log_configure((enum rm_log_level)s->st.log_level, (enum rm_log_format)s->st.log_format);
  rm_log_set_scrubber(rm_secrets_log_scrub, secrets);
  s->secrets = secrets;
  const char *url = db ? db : rm_config_str(cfg, "database");
  rc = RM_EXIT_FAILED;
  if (rm_vault_open(&s->vault, rm_config_str(cfg, "vault.key_file"), err, sizeof err) != 0) {
    fprintf(stderr, "restmon serve: vault: %s\n", err);
    goto out_cfg;
  }
  if (rm_vault_other_key_id(s->vault))
    rm_log_warn("serve", "a key rotation is unfinished (key %s); run restmon rotate-key again",
                rm_vault_other_key_id(s->vault));
  rm_login_guard_params gp = RM_LOGIN_GUARD_DEFAULT;
  if (rm_login_guard_init(&s->guard, &gp) != 0) goto out_vault;
  uv_loop_init(&s->loop);
  s->loop.data = s;
  rm_http_client_init(&s->http, &s->loop);
  rm_lua_limits limits = {.record_body_bytes = (size_t)s->st.body_bytes};
  if (rm_lua_host_init(&s->host, &s->loop, &s->http, &limits, plugin_dir, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    goto out_http;
  }
  rm_store_opts so = {.threads = (int)s->st.threads, .retry_ms = s->st.retry_ms, .migrate = true};
  if (rm_store_open(&s->store, &s->loop, url, &so, err, sizeof err) != 0) {
    fprintf(stderr, "restmon serve: %s\n", err);
    goto out_host;
  }
  if (bootstrap_admin(s) != 0 || rm_serve_admin_load(s) != 0) {
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  const char *cert = rm_config_str(cfg, "tls.cert_file"), *key = rm_config_str(cfg, "tls.key_file"),
             *ca = rm_config_str(cfg, "tls.client_ca_file"), *web = rm_config_str(cfg, "web.dir");
  struct stat sb;
  s->tls = *cert != '\0';
  rm_api_server_opts ao = {.host = s->st.host, .port = s->st.port, .tls_cert_file = *cert ? cert : NULL,
                           .tls_key_file = *key ? key : NULL, .tls_client_ca_file = *ca ? ca : NULL,
                           .static_dir = *web && stat(web, &sb) == 0 && S_ISDIR(sb.st_mode) ? web : NULL,
                           .metrics = &s->metrics};
  rm_executor_opts eo = {.concurrency = (int)s->st.concurrency, .lease_ms = s->st.lease_ms, .claim = true,
                         .secrets = secrets, .finished = rm_serve_run_finished, .ud = s, .retention_every_ms = 10 * 60 * 1000,
                         .retention_success_ms = s->st.retention_success_ms,
                         .retention_failed_ms = s->st.retention_failed_ms};
  if (rm_api_server_init(&s->srv, &s->loop, &ao) != 0) {
    fprintf(stderr, "restmon serve: %s\n", s->srv.errmsg);
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  bool started = add_routes(s) == 0 && rm_api_server_start(&s->srv) == 0;
  if (!started) {
    fprintf(stderr, "restmon serve: %s\n", s->srv.errmsg[0] ? s->srv.errmsg : "could not add the routes");
    s->stopping = true;
    rm_api_server_stop(&s->srv, 0, NULL);
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  rm_serve_events_init(s);
  if (rm_serve_notify_init(s) != 0) rm_log_error("serve", "notifications could not be set up (out of memory?)");
  rm_serve_events_start(s);
  rm_serve_admin_start(s);
  if (rm_serve_signals_start(s) != 0) rm_log_error("serve", "signals could not be set up (out of memory?)");
  rm_executor_new(&s->ex, &s->loop, s->store, &s->host, &eo);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  bool sched_failed = rm_serve_sched_start(s) != 0;
  if (sched_failed) on_signal(&s->sigterm, SIGTERM);
  else if (rm_serve_sync_start(s) != 0) rm_log_error("serve", "other servers' changes cannot be followed (out of memory?)");
  int port = rm_api_server_port(&s->srv);
  bool v6 = strchr(s->st.host, ':') != NULL;
  printf("RestMon listening on %s://%s%s%s:%d\n", s->tls ? "https" : "http", v6 ? "[" : "", s->st.host, v6 ? "]" : "",
         port);
  fflush(stdout);
  rm_log_info("serve", "store %s, executor %s (%d at once, lease %llu ms)", rm_store_backend(s->store),
              rm_executor_owner(s->ex), (int)s->st.concurrency, (unsigned long long)s->st.lease_ms);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  rm_executor_free(s->ex);
  rc = sched_failed ? RM_EXIT_FAILED : RM_EXIT_OK;
out_host:
  rm_lua_host_close(&s->host);
out_http:
  rm_http_client_close(&s->http, http_closed);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  rm_login_guard_close(&s->guard);
out_vault:
  rm_vault_close(s->vault);
out_cfg:
  rm_metrics_free(&s->metrics);
  rm_log_set_scrubber(NULL, NULL);
  rm_config_free(cfg);
  rm_secrets_free(secrets);
  rm_serve_auth_cache_free(s);
  rm_serve_routes_free(s);
  rm_serve_admin_free(s);
  rm_serve_notify_free(s);
  rm_serve_signals_free(s);
  free(s);
  return rc;
}
