/* restmon runs: look runs up and act on them in a store.
 *   restmon runs list [--workflow W] [--status S] [--tag T] [--from ISO] [--to ISO]
 *                     [--http-status N] [--var NAME=VALUE] [--page N] [--page-size N]
 *   restmon runs show ID [--json]
 *   restmon runs queue FILE [--var NAME=VALUE] [--count N]
 *   restmon runs cancel ID | annotate ID TEXT | ack ID [TEXT] | rerun ID | resume ID
 * Every form takes --database URL / --config FILE and --as NAME (author). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "report/report.h"
#include "store/store.h"
#include "util/err.h"

typedef struct call {
  int err;
  char errmsg[600];
  json_t *result;
  bool done;
} call;

static void on_result(void *ud, int err, const char *errmsg, json_t *result) {
  call *c = ud;
  c->err = err;
  if (err) snprintf(c->errmsg, sizeof c->errmsg, "%s", errmsg ? errmsg : rm_strerror(err));
  c->result = result;
  c->done = true;
}

static void closed(void *ud) { (void)ud; }

static void usage(FILE *f) {
  fputs("usage: restmon runs COMMAND [options]\n"
        "  list [--workflow W] [--status S] [--tag T] [--from ISO] [--to ISO]\n"
        "       [--http-status N] [--var NAME=VALUE] [--page N] [--page-size N]\n"
        "                         find runs (newest first)\n"
        "  show ID                the run's timeline (--json: its whole record)\n"
        "  queue FILE [--var NAME=VALUE] [--count N]\n"
        "                         queue runs of a workflow file for the executors\n"
        "  cancel ID              no further step starts\n"
        "  annotate ID TEXT       add a note\n"
        "  ack ID [TEXT]          acknowledge a failed run\n"
        "  rerun ID               queue a new run of the same definition and inputs\n"
        "  resume ID              continue a failed run from its failed step\n"
        "common options: --database URL, --config FILE, --as NAME (author, default $USER), --json\n"
        "queued runs are executed by `restmon executor` (or `restmon serve`)\n",
        f);
}

static void print_row(const json_t *row) {
  printf("%-36s  %-9s  %-24s  %-24s  %s\n", json_string_value(json_object_get(row, "run_id")),
         json_string_value(json_object_get(row, "status")),
         json_string_value(json_object_get(row, "workflow_name")) ? json_string_value(json_object_get(row, "workflow_name")) : "",
         json_string_value(json_object_get(row, "created_at")) ? json_string_value(json_object_get(row, "created_at")) : "",
         json_string_value(json_object_get(row, "reason")) ? json_string_value(json_object_get(row, "reason")) : "");
}

/* Rerun: a new queued run with the same definition and inputs. */
static void rerun(rm_store *s, uv_loop_t *loop, const json_t *orig, const char *actor, call *c) {
  json_t *spec = json_pack("{s:O?, s:O?, s:O?, s:O, s:s?, s:{s:s, s:s?, s:O?}, s:O, s:O?, s:s}",
                           "workflow_id", json_object_get(orig, "workflow_id"), "workflow_name",
                           json_object_get(orig, "workflow_name"), "workflow_version",
                           json_object_get(orig, "workflow_version"), "definition",
                           json_object_get(orig, "definition"), "source",
                           json_string_value(json_object_get(orig, "source")), "trigger", "type", "rerun",
                           "by", actor, "run_id", json_object_get(orig, "run_id"), "inputs",
                           json_object_get(orig, "inputs"), "dry_run", json_object_get(orig, "dry_run"),
                           "rerun_of", json_string_value(json_object_get(orig, "run_id")));
  if (!spec) {
    c->err = RM_EINVAL;
    snprintf(c->errmsg, sizeof c->errmsg, "the stored run lacks its definition or inputs");
    c->done = true;
    return;
  }
  rm_store_run_create(s, spec, on_result, c);
  json_decref(spec);
  while (!c->done) uv_run(loop, UV_RUN_ONCE);
}

/* Queues count runs of a workflow file. c->result: the rows. */
static void queue(rm_store *s, uv_loop_t *loop, const json_t *wf, const char *file, const json_t *inputs,
                  long count, const char *actor, call *c) {
  json_t *rows = json_array();
  for (long i = 0; i < count && !c->err; i++) {
    call one = {0};
    json_t *spec = json_pack("{s:s?, s:O, s:s, s:{s:s, s:s}, s:O}", "workflow_name",
                             json_string_value(json_object_get(wf, "name")), "definition", wf, "source", file,
                             "trigger", "type", "manual", "by", actor, "inputs", inputs);
    rm_store_run_create(s, spec, on_result, &one);
    json_decref(spec);
    while (!one.done) uv_run(loop, UV_RUN_ONCE);
    if (one.err) {
      c->err = one.err;
      snprintf(c->errmsg, sizeof c->errmsg, "%s", one.errmsg);
    } else {
      json_array_append_new(rows, one.result);
    }
  }
  c->result = rows;
  c->done = true;
}

int rm_cmd_runs(int argc, char **argv) {
  enum { O_DB = 256, O_CONFIG, O_AS, O_JSON, O_WF, O_STATUS, O_TAG, O_FROM, O_TO, O_HTTP, O_VAR, O_PAGE,
         O_SIZE, O_COUNT };
  static const struct option opts[] = {
      {"database", required_argument, NULL, O_DB}, {"config", required_argument, NULL, O_CONFIG},
      {"as", required_argument, NULL, O_AS}, {"json", no_argument, NULL, O_JSON},
      {"workflow", required_argument, NULL, O_WF}, {"status", required_argument, NULL, O_STATUS},
      {"tag", required_argument, NULL, O_TAG}, {"from", required_argument, NULL, O_FROM},
      {"to", required_argument, NULL, O_TO}, {"http-status", required_argument, NULL, O_HTTP},
      {"var", required_argument, NULL, O_VAR}, {"page", required_argument, NULL, O_PAGE},
      {"page-size", required_argument, NULL, O_SIZE}, {"count", required_argument, NULL, O_COUNT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? RM_EXIT_INVALID : RM_EXIT_OK;
  }
  const char *verb = argv[1];
  const char *db = NULL, *config = NULL, *actor = getenv("USER") ? getenv("USER") : "cli";
  bool as_json = false, bad = false;
  json_t *query = json_object();
  json_t *inputs = json_object();
  long count = 1;
  int ch;
  optind = 2;
  while (!bad && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case O_DB: db = optarg; break;
      case O_CONFIG: config = optarg; break;
      case O_AS: actor = optarg; break;
      case O_JSON: as_json = true; break;
      case O_WF: json_object_set_new(query, "workflow", json_string(optarg)); break;
      case O_STATUS: json_object_set_new(query, "status", json_string(optarg)); break;
      case O_TAG: json_object_set_new(query, "tag", json_string(optarg)); break;
      case O_FROM: json_object_set_new(query, "from", json_string(optarg)); break;
      case O_TO: json_object_set_new(query, "to", json_string(optarg)); break;
      case O_HTTP: json_object_set_new(query, "http_status", json_integer(atoi(optarg))); break;
      case O_PAGE: json_object_set_new(query, "page", json_integer(atoi(optarg))); break;
      case O_SIZE: json_object_set_new(query, "page_size", json_integer(atoi(optarg))); break;
      case O_COUNT: bad = (count = atol(optarg)) <= 0; break;
      case O_VAR:
        if (strcmp(verb, "queue") == 0) {
          bad = rm_cli_add_var(inputs, optarg) != 0;
          break;
        }
        {
        json_t *tmp = json_object();
        if (rm_cli_add_var(tmp, optarg) != 0) {
          bad = true;
        } else {
          const char *k;
          json_t *v;
          json_object_foreach(tmp, k, v) json_object_set_new(query, "var", json_pack("{s:s, s:O}", "name", k, "value", v));
        }
        json_decref(tmp);
        break;
      }
      default: bad = true;
    }
  }
  const char *id = optind < argc ? argv[optind] : NULL;
  const char *text = optind + 1 < argc ? argv[optind + 1] : NULL;
  bool needs_id = strcmp(verb, "list") != 0;
  if (bad || (needs_id && !id) || (strcmp(verb, "annotate") == 0 && !text)) {
    if (!bad) fprintf(stderr, "restmon runs %s: missing %s\n", verb, !id ? "the run id" : "the note text");
    usage(stderr);
    json_decref(query);
    json_decref(inputs);
    return RM_EXIT_INVALID;
  }
  json_t *wf = NULL;
  if (strcmp(verb, "queue") == 0) {
    const char *plugin_dir = getenv("RESTMON_PLUGINS");
    if (!(wf = rm_cli_load_json(id)) || rm_cli_validate(id, wf, plugin_dir, inputs, NULL, as_json) != 0) {
      json_decref(wf);
      json_decref(query);
      json_decref(inputs);
      return RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  char err[600];
  if (rm_config_load(&cfg, config, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    json_decref(query);
    return RM_EXIT_INVALID;
  }
  const char *url = db ? db : rm_config_str(cfg, "database");
  uv_loop_t loop;
  uv_loop_init(&loop);
  rm_store *s = NULL;
  rm_store_opts so = {.migrate = true};
  int rc = RM_EXIT_FAILED;
  call c = {0};
  if (rm_store_open(&s, &loop, url, &so, err, sizeof err) != 0) {
    fprintf(stderr, "restmon runs: %s\n", err);
    goto out;
  }
  if (strcmp(verb, "list") == 0) rm_store_run_search(s, query, on_result, &c);
  else if (strcmp(verb, "show") == 0 || strcmp(verb, "rerun") == 0) rm_store_run_get(s, id, on_result, &c);
  else if (strcmp(verb, "cancel") == 0) rm_store_run_cancel(s, id, actor, on_result, &c);
  else if (strcmp(verb, "annotate") == 0) rm_store_run_annotate(s, id, "note", actor, text, on_result, &c);
  else if (strcmp(verb, "ack") == 0) rm_store_run_annotate(s, id, "ack", actor, text ? text : "", on_result, &c);
  else if (strcmp(verb, "resume") == 0) rm_store_run_resume(s, id, actor, on_result, &c);
  else if (strcmp(verb, "queue") == 0) queue(s, &loop, wf, id, inputs, count, actor, &c);
  else {
    fprintf(stderr, "restmon runs: unknown command '%s'\n", verb);
    usage(stderr);
    rc = RM_EXIT_INVALID;
    c.done = true;
  }
  while (!c.done) uv_run(&loop, UV_RUN_ONCE);
  if (!c.err && strcmp(verb, "rerun") == 0) {
    json_t *orig = c.result;
    c = (call){0};
    rerun(s, &loop, orig, actor, &c);
    json_decref(orig);
  }
  if (c.err) {
    fprintf(stderr, "restmon runs %s%s%s: %s\n", verb, id ? " " : "", id ? id : "", c.errmsg);
  } else if (c.result || rc != RM_EXIT_INVALID) {
    rc = RM_EXIT_OK;
    if (as_json) {
      json_dumpf(c.result, stdout, JSON_INDENT(2));
      fputc('\n', stdout);
    } else if (strcmp(verb, "list") == 0) {
      size_t i;
      json_t *row;
      json_array_foreach(json_object_get(c.result, "items"), i, row) print_row(row);
      printf("page %lld of %lld, %lld run(s)\n", json_integer_value(json_object_get(c.result, "page")),
             json_integer_value(json_object_get(c.result, "total_pages")),
             json_integer_value(json_object_get(c.result, "total")));
    } else if (strcmp(verb, "show") == 0) {
      rm_report_opts o = {isatty(STDOUT_FILENO), true, 400};
      rm_report_timeline(stdout, c.result, &o);
      size_t i;
      json_t *a;
      json_array_foreach(json_object_get(c.result, "annotations"), i, a)
        printf("  %s %s by %s: %s\n", json_string_value(json_object_get(a, "created_at")),
               json_string_value(json_object_get(a, "kind")), json_string_value(json_object_get(a, "author")),
               json_string_value(json_object_get(a, "text")));
    } else if (strcmp(verb, "queue") == 0) {
      size_t i;
      json_t *run;
      json_array_foreach(c.result, i, run) printf("%s queued\n", json_string_value(json_object_get(run, "run_id")));
    } else if (strcmp(verb, "rerun") == 0 || strcmp(verb, "resume") == 0) {
      printf("run %s queued (%s of %s); `restmon executor` runs it\n",
             json_string_value(json_object_get(c.result, "run_id")), verb, id);
    } else {
      printf("run %s: %s done\n", id, verb);
    }
  }
  json_decref(c.result);
  rm_store_close(s, closed, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  uv_loop_close(&loop);
  rm_config_free(cfg);
  json_decref(query);
  json_decref(inputs);
  json_decref(wf);
  return rc;
}
