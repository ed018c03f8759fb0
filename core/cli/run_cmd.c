/* restmon run FILE: runs a workflow (once, or --repeat N times with
 * --concurrency C at once) and reports it as a timeline, JSON or JUnit. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "engine/executor.h"
#include "engine/run.h"
#include "lua/host.h"
#include "report/report.h"
#include "util/log.h"

typedef struct run_cmd {
  uv_loop_t loop;
  rm_http_client http;
  rm_lua_host host;
  uv_signal_t sigint, sigterm;
  const char *store_url; /* --store: runs are recorded (and durable) there */
  rm_store *store;
  rm_executor *ex;
  rm_secrets *secrets;
  json_t *workflow;
  json_t *inputs;
  const char *file;
  /* options */
  bool json, dry_run, verbose, quiet, color, progress;
  const char *junit;
  size_t repeat, concurrency;
  /* batch state */
  rm_run **active;
  size_t started, finished, failed, degraded, cancelled;
  double *durations;
  json_t *records; /* kept for --junit and --json */
  uint64_t batch_start_ns, last_progress_ns;
  int signals;
} run_cmd;

static void usage(FILE *f) {
  fputs("usage: restmon run FILE [options]\n"
        "  --var NAME=VALUE        set an input (JSON or text); repeatable\n"
        "  --secrets-file FILE     secrets as NAME=value lines\n"
        "  --secret-env NAME=ENV   a secret from an environment variable; repeatable\n"
        "  --dry-run               use each task's sample_response; send nothing\n"
        "  --json                  print the run record as JSON\n"
        "  --junit FILE            write JUnit XML for CI systems\n"
        "  --repeat N              run N times and print a summary\n"
        "  --concurrency C         with --repeat: C runs at once (default 1)\n"
        "  --store URL             record the runs in a store (sqlite:PATH or\n"
        "                          postgresql://...); a run cut short is resumed by\n"
        "                          `restmon executor` on the same store\n"
        "  --plugins DIR           extra task types (one folder each)\n"
        "  --cpu-budget N          Lua instructions per attempt (default 50000000)\n"
        "  --memory-limit MB       Lua memory per attempt (default 64)\n"
        "  -v, --verbose           show requests and responses\n"
        "  -q, --quiet             print only the verdict\n"
        "  --no-color              plain output\n"
        "  --log-level LEVEL       debug, info, warn, error (default warn)\n"
        "  --log-format FORMAT     text or json\n"
        "exit status: 0 succeeded (or degraded), 1 failed, 2 invalid definition or usage\n",
        f);
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static void start_next(run_cmd *c);

static void print_single(run_cmd *c, rm_run *r) {
  json_t *rec = rm_run_record(r);
  if (c->json) {
    json_dumpf(rec, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else if (c->quiet) {
    printf("%s: %s\n", rm_run_status(r), json_string_value(json_object_get(rec, "reason")));
  } else {
    rm_report_opts o = {c->color, c->verbose, 400};
    rm_report_timeline(stdout, rec, &o);
  }
  fflush(stdout);
}

static void run_finished(run_cmd *c, rm_run *r) {
  const char *st = rm_run_status(r);
  size_t slot = 0;
  if (c->ex)
    while (slot < c->concurrency && !c->active[slot]) slot++;
  else
    while (slot < c->concurrency && c->active[slot] != r) slot++;
  if (slot < c->concurrency) c->active[slot] = NULL;
  c->durations[c->finished++] = rm_run_duration_ms(r);
  if (strcmp(st, "failed") == 0) c->failed++;
  if (strcmp(st, "degraded") == 0) c->degraded++;
  if (strcmp(st, "cancelled") == 0) c->cancelled++;
  if (c->repeat == 1) print_single(c, r);
  if (c->junit || (c->json && c->repeat > 1)) {
    json_t *rec = rm_run_record(r);
    if (c->repeat == 1 || c->junit || strcmp(st, "succeeded") != 0) json_array_append(c->records, rec);
  }
  if (c->progress) {
    uint64_t now = uv_hrtime();
    if (now - c->last_progress_ns > 100000000ULL || c->finished == c->repeat) {
      c->last_progress_ns = now;
      rm_report_progress(stderr, c->finished, c->repeat, c->failed, (double)(now - c->batch_start_ns) / 1e6);
    }
  }
  start_next(c);
  if (c->ex && c->finished == c->repeat) rm_executor_stop(c->ex, NULL, NULL);
}

static void on_run_done(rm_run *r, void *ud) {
  run_finished(ud, r);
  rm_run_free(r);
}

static void on_stored_run_done(rm_run *r, const json_t *row, void *ud) {
  (void)row;
  run_finished(ud, r);
}

static void on_submit_failed(void *ud, int err, const char *errmsg) {
  run_cmd *c = ud;
  (void)err;
  fprintf(stderr, "could not record the run: %s\n", errmsg);
  c->repeat = c->finished; /* start nothing more */
  c->failed++;
  rm_executor_stop(c->ex, NULL, NULL);
}

/* With --store the executor creates the run in the store and runs it. */
static void submit(run_cmd *c) {
  json_t *spec = json_pack("{s:s?, s:O, s:s, s:{s:s}, s:O, s:b}", "workflow_name",
                           json_string_value(json_object_get(c->workflow, "name")), "definition", c->workflow,
                           "source", c->file, "trigger", "type", "cli", "inputs", c->inputs, "dry_run",
                           c->dry_run);
  rm_executor_submit(c->ex, spec, on_submit_failed, c);
  json_decref(spec);
}

static void start_next(run_cmd *c) {
  while (c->started < c->repeat && !c->signals) {
    size_t slot = 0;
    while (slot < c->concurrency && c->active[slot]) slot++;
    if (slot == c->concurrency) return;
    if (c->ex) {
      c->started++;
      c->active[slot] = (rm_run *)c; /* the executor tracks the run itself */
      submit(c);
      continue;
    }
    rm_run_opts o = {.workflow = c->workflow, .source = c->file, .inputs = c->inputs,
                     .secrets = c->secrets, .dry_run = c->dry_run, .trigger = "cli"};
    rm_run *r = NULL;
    c->started++;
    if (rm_run_start(&c->host, &o, on_run_done, c, &r) != 0) {
      fprintf(stderr, "could not start a run: out of memory\n");
      c->repeat = c->started - 1;
      return;
    }
    /* A run can finish inside rm_run_start (a definition whose tasks all
     * fail at once); it has then already been counted and freed. */
    if (c->finished < c->started) c->active[slot] = r;
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  run_cmd *c = s->data;
  c->signals++;
  if (c->signals > 1) {
    fprintf(stderr, "\nsecond signal: exiting now\n");
    _exit(130);
  }
  rm_log_warn("cli", "signal %d: cancelling %zu running run(s); press again to exit at once", signum,
              c->started - c->finished);
  if (c->ex) {
    c->repeat = c->started;
    rm_executor_cancel_all(c->ex);
    return;
  }
  for (size_t i = 0; i < c->concurrency; i++)
    if (c->active[i]) rm_run_cancel(c->active[i]);
}

static void on_http_closed(rm_http_client *h) { (void)h; }
static void on_store_closed(void *ud) { (void)ud; }

static void print_batch(run_cmd *c, double wall_ms, double used_cpu_ms) {
  rm_repeat_stats s = {c->finished, c->finished - c->failed - c->degraded - c->cancelled, c->degraded,
                       c->failed, c->cancelled, wall_ms, used_cpu_ms, c->durations};
  if (c->json) {
    json_t *doc = json_pack("{s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:O}", "runs", (int)c->finished,
                            "succeeded", (int)s.succeeded, "degraded", (int)c->degraded, "failed",
                            (int)c->failed, "wall_ms", wall_ms, "cpu_ms", used_cpu_ms, "p50_ms",
                            rm_report_percentile(c->durations, c->finished, 50), "p95_ms",
                            rm_report_percentile(c->durations, c->finished, 95), "p99_ms",
                            rm_report_percentile(c->durations, c->finished, 99), "runs_per_s",
                            wall_ms > 0 ? (double)c->finished * 1000.0 / wall_ms : 0.0,
                            "not_succeeded", c->records);
    json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
  } else {
    rm_report_repeat_summary(stdout, &s, c->color);
  }
}

static int parse_size(const char *opt, const char *s, size_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v == 0) {
    fprintf(stderr, "%s %s: expected a positive whole number\n", opt, s);
    return -1;
  }
  *out = (size_t)v;
  return 0;
}

int rm_cmd_run(int argc, char **argv) {
  enum { O_VAR = 256, O_SECRETS, O_SECRET_ENV, O_DRY, O_JSON, O_JUNIT, O_REPEAT, O_CONC, O_PLUGINS,
         O_CPU, O_MEM, O_NOCOLOR, O_LOGLEVEL, O_LOGFMT, O_STORE };
  static const struct option opts[] = {
      {"var", required_argument, NULL, O_VAR}, {"secrets-file", required_argument, NULL, O_SECRETS},
      {"secret-env", required_argument, NULL, O_SECRET_ENV}, {"dry-run", no_argument, NULL, O_DRY},
      {"json", no_argument, NULL, O_JSON}, {"junit", required_argument, NULL, O_JUNIT},
      {"repeat", required_argument, NULL, O_REPEAT}, {"concurrency", required_argument, NULL, O_CONC},
      {"plugins", required_argument, NULL, O_PLUGINS}, {"cpu-budget", required_argument, NULL, O_CPU},
      {"memory-limit", required_argument, NULL, O_MEM}, {"no-color", no_argument, NULL, O_NOCOLOR},
      {"store", required_argument, NULL, O_STORE}, {"log-level", required_argument, NULL, O_LOGLEVEL}, {"log-format", required_argument, NULL, O_LOGFMT},
      {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  run_cmd c = {0};
  c.repeat = 1;
  c.concurrency = 1;
  c.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
  c.inputs = json_object();
  c.secrets = rm_secrets_new();
  const char *plugin_dir = getenv("RESTMON_PLUGINS");
  rm_lua_limits limits = {0};
  int level = RM_LOG_WARN, format = RM_LOG_TEXT, rc = RM_EXIT_INVALID, ch;
  bool usage_error = false;
  optind = 1;
  while (!usage_error && (ch = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
    char err[512];
    size_t n;
    switch (ch) {
      case O_VAR: usage_error = rm_cli_add_var(c.inputs, optarg) != 0; break;
      case O_SECRETS:
        if (rm_secrets_load_file(c.secrets, optarg, err, sizeof err) != 0) {
          fprintf(stderr, "--secrets-file: %s\n", err);
          usage_error = true;
        }
        break;
      case O_SECRET_ENV: usage_error = rm_cli_add_secret_env(c.secrets, optarg) != 0; break;
      case O_DRY: c.dry_run = true; break;
      case O_JSON: c.json = true; break;
      case O_JUNIT: c.junit = optarg; break;
      case O_REPEAT: usage_error = parse_size("--repeat", optarg, &c.repeat) != 0; break;
      case O_CONC: usage_error = parse_size("--concurrency", optarg, &c.concurrency) != 0; break;
      case O_PLUGINS: plugin_dir = optarg; break;
      case O_STORE: c.store_url = optarg; break;
      case O_CPU:
        usage_error = parse_size("--cpu-budget", optarg, &n) != 0;
        limits.cpu_instructions = n;
        break;
      case O_MEM:
        usage_error = parse_size("--memory-limit", optarg, &n) != 0;
        limits.memory_bytes = n << 20;
        break;
      case O_NOCOLOR: c.color = false; break;
      case O_LOGLEVEL:
        level = rm_log_level_parse(optarg);
        if (level < 0) {
          fprintf(stderr, "--log-level %s: use debug, info, warn, error or off\n", optarg);
          usage_error = true;
        }
        break;
      case O_LOGFMT:
        if (strcmp(optarg, "json") == 0) format = RM_LOG_JSON;
        else if (strcmp(optarg, "text") == 0) format = RM_LOG_TEXT;
        else {
          fprintf(stderr, "--log-format %s: use text or json\n", optarg);
          usage_error = true;
        }
        break;
      case 'v': c.verbose = true; break;
      case 'q': c.quiet = true; break;
      case 'h':
        usage(stdout);
        rc = RM_EXIT_OK;
        goto out;
      default: usage_error = true;
    }
  }
  if (usage_error || optind != argc - 1) {
    if (!usage_error) fprintf(stderr, "restmon run: expected one workflow file\n");
    usage(stderr);
    goto out;
  }
  rm_log_configure((enum rm_log_level)level, (enum rm_log_format)format);
  rm_log_set_scrubber(rm_secrets_log_scrub, c.secrets);
  c.file = argv[optind];
  if (!(c.workflow = rm_cli_load_json(c.file))) goto out;
  if (rm_cli_validate(c.file, c.workflow, plugin_dir, c.inputs, c.secrets, c.json) != 0) goto out;
  if (c.concurrency > c.repeat) c.concurrency = c.repeat;
  c.progress = c.repeat > 1 && isatty(STDERR_FILENO);

  char err[512];
  /* restmon.conf (when there is one): the record body cap and the lease. */
  rm_config *cfg = NULL;
  uint64_t lease = 0, body_cap = 0;
  if (rm_config_load(&cfg, NULL, err, sizeof err) != 0 ||
      rm_config_u64(cfg, "executor.lease_ms", &lease, err, sizeof err) != 0 ||
      rm_config_u64(cfg, "runs.record_body_bytes", &body_cap, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    rm_config_free(cfg);
    goto out;
  }
  rm_config_free(cfg);
  limits.record_body_bytes = (size_t)body_cap;
  uv_loop_init(&c.loop);
  rm_http_client_init(&c.http, &c.loop);
  if (rm_lua_host_init(&c.host, &c.loop, &c.http, &limits, plugin_dir, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    rm_http_client_close(&c.http, on_http_closed);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    goto out;
  }
  uv_signal_init(&c.loop, &c.sigint);
  uv_signal_init(&c.loop, &c.sigterm);
  c.sigint.data = c.sigterm.data = &c;
  uv_signal_start(&c.sigint, on_signal, SIGINT);
  uv_signal_start(&c.sigterm, on_signal, SIGTERM);
  /* Signal watchers alone must not keep the loop alive. */
  uv_unref((uv_handle_t *)&c.sigint);
  uv_unref((uv_handle_t *)&c.sigterm);
  if (c.store_url) {
    rm_store_opts so = {.migrate = true};
    if (rm_store_open(&c.store, &c.loop, c.store_url, &so, err, sizeof err) != 0) {
      fprintf(stderr, "--store %s: %s\n", c.store_url, err);
      rc = RM_EXIT_INVALID;
      goto close_host;
    }
    rm_executor_opts eo = {.concurrency = (int)c.concurrency, .lease_ms = lease, .secrets = c.secrets,
                           .finished = on_stored_run_done, .ud = &c};
    rm_executor_new(&c.ex, &c.loop, c.store, &c.host, &eo);
  }
  c.active = calloc(c.concurrency, sizeof *c.active);
  c.durations = calloc(c.repeat, sizeof *c.durations);
  c.records = json_array();
  double cpu0 = cpu_ms();
  c.batch_start_ns = uv_hrtime();
  start_next(&c);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  double wall = (double)(uv_hrtime() - c.batch_start_ns) / 1e6, cpu = cpu_ms() - cpu0;
  if (c.progress) fputc('\n', stderr);
  if (c.repeat > 1) print_batch(&c, wall, cpu);
  if (c.junit) {
    FILE *f = fopen(c.junit, "w");
    if (!f || rm_report_junit(f, c.records) != 0) fprintf(stderr, "--junit %s: cannot write the report\n", c.junit);
    if (f) fclose(f);
  }
  rc = c.failed || c.cancelled || c.finished < c.repeat ? RM_EXIT_FAILED : RM_EXIT_OK;

  if (c.store) {
    rm_store_close(c.store, on_store_closed, NULL);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    rm_executor_free(c.ex);
  }
close_host:
  uv_close((uv_handle_t *)&c.sigint, NULL);
  uv_close((uv_handle_t *)&c.sigterm, NULL);
  rm_lua_host_close(&c.host);
  rm_http_client_close(&c.http, on_http_closed);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  uv_loop_close(&c.loop);
  free(c.active);
  free(c.durations);
  json_decref(c.records);
out:
  rm_log_set_scrubber(NULL, NULL);
  json_decref(c.workflow);
  json_decref(c.inputs);
  rm_secrets_free(c.secrets);
  return rc;
}
