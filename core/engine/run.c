#include "engine/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/attempt.h"
#include "engine/template.h"
#include "util/err.h"
#include "util/log.h"
#include "util/text.h"
#include "util/iso_time.h"

/* Stored in records as strings; the numbers are pinned. */
enum node_state {
  NODE_PENDING = 0,
  NODE_RUNNING = 1,
  NODE_RETRY_WAIT = 2,
  NODE_DONE = 3,
  NODE_SKIPPED = 4,
  NODE_SAVING = 5, /* its step is being stored; it goes on after */
};

/* What a node does once its step is stored. */
enum node_next { NEXT_RETRY = 1, NEXT_FOLLOW = 2 };

typedef struct node {
  const char *name;
  const json_t *def;
  struct rm_run *run;
  size_t *ok_edges, n_ok;     /* targets of on_success */
  size_t *fail_edges, n_fail; /* targets of on_failure */
  size_t incoming, resolved, taken;
  enum node_state state;
  int outcome; /* RM_OUTCOME_* once done */
  int attempt;
  json_t *step;             /* its step record (owned by the run record) */
  json_t *rendered;         /* task definition with templates rendered */
  rm_lua_task_spec spec;
  rm_lua_task *task;        /* attempt in flight */
  uint64_t attempt_start_ns;
  char attempt_started_at[40];
  uint64_t step_start_ns;
  uv_timer_t retry_timer;
  enum node_next next;      /* while NODE_SAVING */
  int retry_delay;
  bool succ_taken, fail_taken; /* edges, once closed */
} node;

struct rm_run {
  rm_lua_host *host;
  rm_run_opts opts;
  json_t *record;
  json_t *steps;
  json_t *vars;
  json_t *inputs;
  char run_id[37];
  node *nodes;
  size_t n;
  size_t running;     /* attempts in flight or retry timers pending */
  size_t handles;     /* uv handles not yet closed */
  bool stopping;      /* no new task starts */
  bool cancelled;
  bool finished;
  bool starting;      /* roots are being started: do not finish yet */
  bool abandoned;     /* a persist failed: stopped without a record of its own */
  const char *stop_reason_task;
  const char *status;
  uint64_t start_ns;
  double duration_ms;
  rm_run_cb cb;
  void *ud;
};

void rm_run_iso_time(char *out, size_t n) {
  char text[32];
  rm_iso_now(text);
  snprintf(out, n, "%s", text);
}

void rm_run_new_uuid(char out[37]) {
  if (rm_uuid_v7(out) != 0) {
    unsigned char b[16];
    for (int i = 0; i < 16; i++) b[i] = (unsigned char)rand();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    rm_uuid_format(b, out);
  }
}

static double ms_since(uint64_t ns) { return (double)(uv_hrtime() - ns) / 1e6; }

static size_t index_of(rm_run *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->nodes[i].name, name) == 0) return i;
  return (size_t)-1;
}

/* Resolves an edge list into node indices (the definition is validated,
 * so every name exists). */
static size_t *edges(rm_run *r, const json_t *list, size_t *count) {
  size_t n = json_array_size(list);
  size_t *out = calloc(n ? n : 1, sizeof *out);
  size_t k = 0;
  for (size_t i = 0; out && i < n; i++) {
    size_t j = index_of(r, json_string_value(json_array_get(list, i)));
    if (j != (size_t)-1) out[k++] = j;
  }
  *count = k;
  return out;
}

/* A task's setting, else the workflow's defaults, else NULL. */
static const json_t *setting(rm_run *r, const json_t *def, const char *key) {
  const json_t *v = json_object_get(def, key);
  return v ? v : json_object_get(json_object_get(r->opts.workflow, "defaults"), key);
}

static void on_handle_closed(uv_handle_t *h);
static void start_node(rm_run *r, node *n);
static void resolve_edges(rm_run *r, node *n, bool success_taken, bool failure_taken);

static void maybe_finish(rm_run *r) {
  if (r->finished || r->starting || r->running > 0) return;
  for (size_t i = 0; i < r->n; i++)
    if (r->nodes[i].state == NODE_PENDING) {
      node *n = &r->nodes[i];
      n->state = NODE_SKIPPED;
      char why[300];
      if (r->cancelled)
        snprintf(why, sizeof why, "not run: the run was cancelled");
      else if (r->stop_reason_task)
        snprintf(why, sizeof why, "not run: the run stopped after '%s' failed", r->stop_reason_task);
      else
        snprintf(why, sizeof why, "not run: no path to it was taken");
      json_array_append_new(r->steps, rm_attempt_skipped_step(n->name, json_string_value(json_object_get(n->def, "type")), why));
    }
  r->finished = true;
  r->duration_ms = ms_since(r->start_ns);
  static const char *const shown[] = {"vars", "inputs"};
  for (size_t i = 0; i < 2; i++) {
    json_t *copy = json_deep_copy(json_object_get(r->record, shown[i]));
    rm_secrets_scrub_json(r->opts.secrets, copy);
    json_object_set_new(r->record, shown[i], copy);
  }
  r->status = rm_attempt_finish_record(r->record, r->cancelled, r->duration_ms);
  for (size_t i = 0; i < r->n; i++) {
    r->handles++;
    uv_close((uv_handle_t *)&r->nodes[i].retry_timer, on_handle_closed);
  }
  if (r->n == 0 && r->cb) r->cb(r, r->ud);
}

static void handle_closed(rm_run *r) {
  r->handles--;
  if (r->finished && r->handles == 0 && r->cb) {
    rm_run_cb cb = r->cb;
    r->cb = NULL;
    cb(r, r->ud);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  node *n = h->data;
  handle_closed(n->run);
}

static void on_task_closed(uv_handle_t *h) {
  rm_lua_task *t = h->data;
  node *n = t->data;
  free(t);
  handle_closed(n->run);
}

/* Skips n: its outgoing edges are all not taken. */
static void skip_node(rm_run *r, node *n, const char *why) {
  n->state = NODE_SKIPPED;
  json_array_append_new(r->steps, rm_attempt_skipped_step(n->name, json_string_value(json_object_get(n->def, "type")), why));
  resolve_edges(r, n, false, false);
}

/* A predecessor resolved one edge into target. */
static void edge_resolved(rm_run *r, size_t target, bool taken, const char *from) {
  node *t = &r->nodes[target];
  t->resolved++;
  if (taken) t->taken++;
  if (t->resolved < t->incoming || t->state != NODE_PENDING) return;
  const char *join = json_string_value(setting(r, t->def, "join"));
  bool all = join && strcmp(join, "all") == 0;
  bool go = all ? t->taken == t->incoming : t->taken > 0;
  if (r->stopping) return; /* reported when the run finishes */
  if (go) {
    start_node(r, t);
  } else {
    char why[300];
    if (all && t->taken > 0)
      snprintf(why, sizeof why, "join is \"all\" and %zu of %zu incoming edges were not taken",
               t->incoming - t->taken, t->incoming);
    else
      snprintf(why, sizeof why, "no incoming edge was taken (last resolved by '%s')", from);
    skip_node(r, t, why);
  }
}

static void resolve_edges(rm_run *r, node *n, bool success_taken, bool failure_taken) {
  for (size_t i = 0; i < n->n_ok; i++) edge_resolved(r, n->ok_edges[i], success_taken, n->name);
  for (size_t i = 0; i < n->n_fail; i++) edge_resolved(r, n->fail_edges[i], failure_taken, n->name);
}

/* The node's final attempt is in: complete its step record. */
static void node_close(rm_run *r, node *n, int outcome) {
  n->state = NODE_DONE;
  n->outcome = outcome;
  bool failed = outcome == RM_OUTCOME_FAILED || outcome == RM_OUTCOME_CANCELLED;
  bool cont = json_is_true(setting(r, n->def, "continue_on_failure"));
  n->succ_taken = !failed || (n->n_fail == 0 && cont);
  n->fail_taken = failed && outcome != RM_OUTCOME_CANCELLED;
  json_t *next = json_array();
  const char *edge = "none";
  if (n->succ_taken && !r->cancelled) {
    edge = "success";
    for (size_t i = 0; i < n->n_ok; i++) json_array_append_new(next, json_string(r->nodes[n->ok_edges[i]].name));
  } else if (n->fail_taken && n->n_fail > 0 && !r->cancelled) {
    edge = "failure";
    for (size_t i = 0; i < n->n_fail; i++) json_array_append_new(next, json_string(r->nodes[n->fail_edges[i]].name));
  }
  rm_attempt_close_step(n->step, outcome, edge, next, ms_since(n->step_start_ns));
}

/* Follows the edges of a closed node (or stops the run). */
static void node_follow(rm_run *r, node *n) {
  bool failed = n->outcome == RM_OUTCOME_FAILED || n->outcome == RM_OUTCOME_CANCELLED;
  bool cont = json_is_true(setting(r, n->def, "continue_on_failure"));
  if (failed && n->n_fail == 0 && !cont && !r->stopping) {
    r->stopping = true;
    r->stop_reason_task = n->name;
  }
  if (!r->cancelled) resolve_edges(r, n, n->succ_taken, n->fail_taken && n->n_fail > 0);
}

static void node_done(rm_run *r, node *n, int outcome) {
  node_close(r, n, outcome);
  node_follow(r, n);
}

static void on_retry_timer(uv_timer_t *timer);

/* The node's step is stored (or nothing stores steps): go on. */
static void node_saved(rm_run *r, node *n) {
  if (n->next == NEXT_RETRY) {
    if (r->stopping) {
      node_done(r, n, r->cancelled ? RM_OUTCOME_CANCELLED : RM_OUTCOME_FAILED);
    } else {
      n->state = NODE_RETRY_WAIT;
      r->running++;
      uv_timer_start(&n->retry_timer, on_retry_timer, (uint64_t)n->retry_delay, 0);
    }
  } else {
    node_follow(r, n);
  }
  maybe_finish(r);
}

/* Stores the node's step, then node_saved. The run counts the wait as
 * work in flight so it cannot finish meanwhile. */
static void save_node(rm_run *r, node *n, enum node_next next) {
  n->next = next;
  if (!r->opts.persist || r->abandoned) {
    node_saved(r, n);
    return;
  }
  n->state = NODE_SAVING;
  r->running++;
  json_t *step = json_deep_copy(n->step);
  json_t *vars = json_deep_copy(r->vars);
  rm_secrets_scrub_json(r->opts.secrets, step);
  rm_secrets_scrub_json(r->opts.secrets, vars);
  r->opts.persist(r, step, vars, r->opts.persist_ud, n);
  json_decref(step);
  json_decref(vars);
}

void rm_run_persisted(rm_run *r, void *token, int err) {
  node *n = token;
  r->running--;
  n->state = n->next == NEXT_RETRY ? NODE_RUNNING : NODE_DONE;
  if (err && !r->abandoned) {
    r->abandoned = true;
    rm_log_warn("engine", "run %s: step '%s' could not be stored (%s); leaving the run to be resumed",
                r->run_id, n->name, rm_strerror(err));
    rm_run_cancel(r);
  }
  if (r->abandoned) {
    if (n->next == NEXT_RETRY) node_done(r, n, RM_OUTCOME_CANCELLED);
    maybe_finish(r);
    return;
  }
  node_saved(r, n);
}

bool rm_run_abandoned(const rm_run *r) { return r->abandoned; }

void rm_run_abandon(rm_run *r) {
  if (r->finished || r->abandoned) return;
  r->abandoned = true;
  rm_run_cancel(r);
}
const char *rm_run_id(const rm_run *r) { return r->run_id; }

static void on_retry_timer(uv_timer_t *timer) {
  node *n = timer->data;
  rm_run *r = n->run;
  r->running--;
  if (r->stopping) {
    node_done(r, n, RM_OUTCOME_FAILED);
    maybe_finish(r);
    return;
  }
  start_node(r, n);
}

static void on_attempt_done(rm_lua_task *t) {
  node *n = t->data;
  rm_run *r = n->run;
  n->task = NULL;
  r->running--;
  rm_attempt_info info;
  json_t *attempt = rm_attempt_build(t, n->attempt, n->attempt_started_at, ms_since(n->attempt_start_ns),
                                     r->opts.secrets, &info);
  /* Variables keep their real values for later requests; the record
   * holds the scrubbed copy. */
  json_t *extracted = json_object_get(t->result, "extracted");
  if (json_is_object(extracted)) json_object_update(r->vars, extracted);
  json_array_append_new(json_object_get(n->step, "attempts"), attempt);
  rm_lua_task_cleanup(t, on_task_closed);
  r->handles++;

  int delay = -1;
  if (info.outcome != RM_OUTCOME_SUCCEEDED && !r->stopping && !r->cancelled)
    delay = rm_attempt_retry_delay(n->def, json_object_get(r->opts.workflow, "defaults"), n->attempt, &info, attempt);
  if (delay >= 0) {
    n->retry_delay = delay;
    save_node(r, n, NEXT_RETRY);
    return;
  }
  node_close(r, n, info.outcome);
  save_node(r, n, NEXT_FOLLOW);
}

static char *secret_token(void *ud, const char *name) {
  rm_run *r = ud;
  return r->opts.secrets ? rm_secrets_token(r->opts.secrets, name) : NULL;
}

/* Renders the fields that may hold templates, for this attempt. */
static json_t *render_task(rm_run *r, node *n, char *err, size_t errlen) {
  rm_template_ctx c = {r->inputs, r->vars, secret_token, r, r->run_id, n->name, n->attempt};
  json_t *out = json_deep_copy(n->def);
  static const char *const templated[] = {"request", "sample_response"};
  char path[300];
  for (size_t i = 0; out && i < sizeof templated / sizeof templated[0]; i++) {
    json_t *v = json_object_get(out, templated[i]);
    if (!v) continue;
    snprintf(path, sizeof path, "tasks.%s.%s", n->name, templated[i]);
    json_t *rv = rm_template_render(v, path, &c, err, errlen);
    if (!rv) {
      json_decref(out);
      return NULL;
    }
    json_object_set_new(out, templated[i], rv);
  }
  /* Workflow defaults that belong in the request. */
  const json_t *tls = json_object_get(json_object_get(r->opts.workflow, "defaults"), "tls_verify");
  json_t *req = json_object_get(out, "request");
  if (json_is_boolean(tls) && json_is_object(req) && !json_object_get(req, "tls_verify"))
    json_object_set(req, "tls_verify", (json_t *)tls);
  json_t *asserts = json_object_get(out, "assert");
  size_t i;
  json_t *a;
  json_array_foreach(asserts, i, a) {
    json_t *v = json_object_get(a, "value");
    if (!v) continue;
    snprintf(path, sizeof path, "tasks.%s.assert[%zu].value", n->name, i);
    json_t *rv = rm_template_render(v, path, &c, err, errlen);
    if (!rv) {
      json_decref(out);
      return NULL;
    }
    json_object_set_new(a, "value", rv);
  }
  return out;
}

static int outcome_of(const char *status) {
  if (!status) return -1;
  if (strcmp(status, "succeeded") == 0) return RM_OUTCOME_SUCCEEDED;
  if (strcmp(status, "degraded") == 0) return RM_OUTCOME_DEGRADED;
  if (strcmp(status, "failed") == 0) return RM_OUTCOME_FAILED;
  if (strcmp(status, "cancelled") == 0) return RM_OUTCOME_CANCELLED;
  return -1;
}

/* The stored step of a resumed run for this node, or NULL. */
static const json_t *stored_step(rm_run *r, node *n) {
  size_t i;
  const json_t *st;
  json_array_foreach(r->opts.resume_steps, i, st) {
    const char *task = json_string_value(json_object_get(st, "task"));
    if (task && strcmp(task, n->name) == 0) return st;
  }
  return NULL;
}

/* Resuming: a node whose step was stored takes it instead of running
 * again. Returns true when the node is settled (it had finished). */
static bool replay_node(rm_run *r, node *n) {
  const json_t *st = stored_step(r, n);
  if (!st) return false;
  n->step = json_deep_copy(st);
  json_array_append_new(r->steps, n->step);
  n->step_start_ns = uv_hrtime();
  n->attempt = (int)json_array_size(json_object_get(st, "attempts"));
  int outcome = outcome_of(json_string_value(json_object_get(st, "status")));
  if (outcome < 0 || outcome == RM_OUTCOME_CANCELLED) {
    /* It was between attempts (or cut by a cancel that did not end the
     * run): the next attempt runs. */
    json_object_set_new(n->step, "status", json_string("running"));
    return false;
  }
  n->state = NODE_DONE;
  n->outcome = outcome;
  bool failed = outcome == RM_OUTCOME_FAILED;
  bool cont = json_is_true(setting(r, n->def, "continue_on_failure"));
  n->succ_taken = !failed || (n->n_fail == 0 && cont);
  n->fail_taken = failed;
  rm_log_debug("engine", "run %s: '%s' %s before the resume; not run again", r->run_id, n->name,
               json_string_value(json_object_get(st, "status")));
  node_follow(r, n);
  return true;
}

static void start_node(rm_run *r, node *n) {
  if (n->state == NODE_PENDING && r->opts.resume_steps && replay_node(r, n)) return;
  if (n->state == NODE_PENDING && !n->step) {
    n->step = rm_attempt_new_step(n->name, json_string_value(json_object_get(n->def, "type")));
    json_array_append_new(r->steps, n->step);
    n->step_start_ns = uv_hrtime();
  }
  n->state = NODE_RUNNING;
  n->attempt++;
  n->attempt_start_ns = uv_hrtime();
  rm_run_iso_time(n->attempt_started_at, sizeof n->attempt_started_at);
  char err[512];
  json_decref(n->rendered);
  n->rendered = render_task(r, n, err, sizeof err);
  if (!n->rendered) {
    json_array_append_new(json_object_get(n->step, "attempts"),
                          rm_attempt_error(n->attempt, "E_TEMPLATE", err, r->opts.secrets));
    node_done(r, n, RM_OUTCOME_FAILED);
    return;
  }
  const json_t *timeout = setting(r, n->def, "timeout_ms");
  n->spec = (rm_lua_task_spec){
      .task_name = n->name,
      .type = json_string_value(json_object_get(n->def, "type")),
      .task = n->rendered,
      .vars = r->vars,
      .inputs = r->inputs,
      .attempt = n->attempt,
      .timeout_ms = timeout ? (uint64_t)json_integer_value(timeout) : 10000,
      .dry_run = r->opts.dry_run,
      .secrets = r->opts.secrets,
  };
  rm_lua_task *t = calloc(1, sizeof *t);
  if (!t) {
    json_array_append_new(json_object_get(n->step, "attempts"),
                          rm_attempt_error(n->attempt, "E_NOMEM", "out of memory", NULL));
    node_done(r, n, RM_OUTCOME_FAILED);
    return;
  }
  n->task = t;
  r->running++;
  t->data = n; /* the attempt may end before start returns */
  int rc = rm_lua_task_start(r->host, t, &n->spec, on_attempt_done);
  if (rc) {
    r->running--;
    n->task = NULL;
    json_array_append_new(json_object_get(n->step, "attempts"),
                          rm_attempt_error(n->attempt, rm_errname(rc), t->errmsg, r->opts.secrets));
    rm_lua_task_cleanup(t, on_task_closed);
    r->handles++;
    node_done(r, n, RM_OUTCOME_FAILED);
  }
}

/* Inputs: declared defaults, then what was given. */
static json_t *merge_inputs(const json_t *wf, const json_t *given) {
  json_t *in = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(wf, "inputs"), k, v) {
    json_t *d = json_object_get(v, "default");
    if (d) json_object_set(in, k, d);
  }
  if (given) json_object_update(in, (json_t *)given);
  return in;
}

int rm_run_start(rm_lua_host *host, const rm_run_opts *o, rm_run_cb cb, void *ud, rm_run **out) {
  rm_run *r = calloc(1, sizeof *r);
  if (!r) return RM_ENOMEM;
  r->host = host;
  r->opts = *o;
  r->cb = cb;
  r->ud = ud;
  r->start_ns = uv_hrtime();
  if (o->run_id && strlen(o->run_id) < sizeof r->run_id)
    snprintf(r->run_id, sizeof r->run_id, "%s", o->run_id);
  else
    rm_run_new_uuid(r->run_id);
  r->vars = json_is_object(o->resume_vars) ? json_deep_copy(o->resume_vars) : json_object();
  r->inputs = merge_inputs(o->workflow, o->inputs);
  r->steps = json_array();
  char now[40];
  rm_run_iso_time(now, sizeof now);
  r->record = json_pack("{s:s, s:{s:s, s:s}, s:{s:s}, s:s, s:b, s:s, s:O, s:O, s:O}",
                        "run_id", r->run_id, "workflow", "name",
                        json_string_value(json_object_get(o->workflow, "name")), "source",
                        o->source ? o->source : "", "trigger", "type", o->trigger ? o->trigger : "cli",
                        "status", "running", "dry_run", o->dry_run, "started_at", now, "inputs",
                        r->inputs, "vars", r->vars, "steps", r->steps);
  json_decref(r->steps); /* the record holds them */
  json_t *tasks = json_object_get(o->workflow, "tasks");
  r->n = json_object_size(tasks);
  r->nodes = calloc(r->n ? r->n : 1, sizeof *r->nodes);
  if (!r->record || !r->nodes) {
    rm_run_free(r);
    return RM_ENOMEM;
  }
  const char *name;
  json_t *def;
  size_t i = 0;
  json_object_foreach(tasks, name, def) {
    node *n = &r->nodes[i++];
    n->name = name;
    n->def = def;
    n->run = r;
    uv_timer_init(host->loop, &n->retry_timer);
    n->retry_timer.data = n;
  }
  for (i = 0; i < r->n; i++) {
    node *n = &r->nodes[i];
    n->ok_edges = edges(r, json_object_get(n->def, "on_success"), &n->n_ok);
    n->fail_edges = edges(r, json_object_get(n->def, "on_failure"), &n->n_fail);
    for (size_t k = 0; k < n->n_ok; k++) r->nodes[n->ok_edges[k]].incoming++;
    for (size_t k = 0; k < n->n_fail; k++) r->nodes[n->fail_edges[k]].incoming++;
  }
  *out = r;
  rm_log_debug("engine", "run %s of %s started", r->run_id, json_string_value(json_object_get(o->workflow, "name")));
  r->starting = true;
  for (i = 0; i < r->n && !r->stopping; i++)
    if (r->nodes[i].incoming == 0 && r->nodes[i].state == NODE_PENDING) start_node(r, &r->nodes[i]);
  r->starting = false;
  maybe_finish(r);
  return 0;
}

void rm_run_cancel(rm_run *r) {
  if (r->finished) return;
  r->cancelled = true;
  r->stopping = true;
  for (size_t i = 0; i < r->n; i++) {
    node *n = &r->nodes[i];
    if (n->state == NODE_RETRY_WAIT) {
      uv_timer_stop(&n->retry_timer);
      r->running--;
      node_done(r, n, RM_OUTCOME_CANCELLED);
    } else if (n->task) {
      rm_lua_task_cancel(n->task);
    }
  }
  maybe_finish(r);
}

json_t *rm_run_record(rm_run *r) { return r->record; }
const char *rm_run_status(rm_run *r) { return r->status ? r->status : "running"; }
double rm_run_duration_ms(rm_run *r) { return r->duration_ms; }

void rm_run_free(rm_run *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->nodes[i].ok_edges);
    free(r->nodes[i].fail_edges);
    json_decref(r->nodes[i].rendered);
  }
  free(r->nodes);
  json_decref(r->record);
  json_decref(r->vars);
  json_decref(r->inputs);
  free(r);
}
