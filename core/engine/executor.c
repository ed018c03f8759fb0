#include "engine/executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/validate.h"
#include "util/err.h"
#include "util/log.h"

typedef struct exec_run {
  rm_executor *ex;
  rm_run *run;
  json_t *row; /* the stored run row (with steps and vars when claimed) */
  json_t *last_step; /* the last step, answered but stored with the finish */
  struct exec_run *next;
} exec_run;

#define VALID_MAX 256

struct rm_executor {
  uv_loop_t *loop;
  rm_store *store;
  rm_lua_host *host;
  rm_executor_opts opts;
  char owner[128];
  exec_run *runs;
  size_t running;
  size_t creating; /* submits waiting for their row */
  bool claiming, renewing, retaining, stopping;
  int handles;
  uv_timer_t poll_timer, renew_timer, retention_timer;
  uint64_t retention_deleted; /* in the current pass */
  void (*stopped)(void *ud);
  void *stopped_ud;
  /* Definitions that passed validation without inputs, by identity (a
   * reference each, so none is freed and its address reused), while the
   * secrets' names are valid_names: a check runs its cached definition
   * object each time and needs no second validation. A ring. */
  json_t *valid[VALID_MAX];
  size_t nvalid;
  json_t *valid_names;
};

static void claim(rm_executor *ex);
static void maybe_stopped(rm_executor *ex);

/* ---- one run ------------------------------------------------------------ */

typedef struct persist_ctx {
  exec_run *er;
  void *token;
} persist_ctx;

static void step_stored(void *ud, int err, const char *errmsg, json_t *result) {
  persist_ctx *p = ud;
  json_decref(result);
  if (err)
    rm_log_warn("executor", "run %s: storing a step failed: %s", rm_run_id(p->er->run), errmsg);
  rm_run_persisted(p->er->run, p->token, err);
  free(p);
}

/* Whether nothing can start after step: the closed step of a one-task
 * workflow. Its write can then go with the run's finish. */
static bool is_last_step(const exec_run *er, const json_t *step) {
  const char *st = json_string_value(json_object_get(step, "status"));
  const json_t *tasks = json_object_get(json_object_get(er->row, "definition"), "tasks");
  return st && strcmp(st, "running") != 0 && json_is_object(tasks) && json_object_size(tasks) == 1;
}

static void persist_step(rm_run *r, const json_t *step, const json_t *vars, void *ud, void *token) {
  exec_run *er = ud;
  if (!er->last_step && is_last_step(er, step)) {
    /* step is the engine's copy made for this call: ours is then the
     * only reference left (run_done checks). */
    er->last_step = json_incref((json_t *)step);
    rm_run_persisted(r, token, 0);
    return;
  }
  persist_ctx *p = malloc(sizeof *p);
  if (!p) {
    rm_run_persisted(r, token, RM_ENOMEM);
    return;
  }
  *p = (persist_ctx){er, token};
  rm_store_step_put(er->ex->store, rm_run_id(r), er->ex->owner, step, vars, step_stored, p);
}

static void unlink_run(exec_run *er) {
  rm_executor *ex = er->ex;
  for (exec_run **pp = &ex->runs; *pp; pp = &(*pp)->next)
    if (*pp == er) {
      *pp = er->next;
      break;
    }
  ex->running--;
}

static void run_over(exec_run *er) {
  rm_executor *ex = er->ex;
  unlink_run(er);
  if (ex->opts.finished) ex->opts.finished(er->run, er->row, ex->opts.ud);
  rm_run_free(er->run);
  json_decref(er->row);
  json_decref(er->last_step);
  free(er);
  if (ex->stopping) maybe_stopped(ex);
  else claim(ex);
}

static void finish_stored(void *ud, int err, const char *errmsg, json_t *result) {
  exec_run *er = ud;
  json_decref(result);
  if (err)
    rm_log_error("executor", "run %s finished %s but its record could not be stored: %s",
                 rm_run_id(er->run), rm_run_status(er->run), errmsg);
  run_over(er);
}

static void run_done(rm_run *r, void *ud) {
  exec_run *er = ud;
  if (rm_run_abandoned(r)) {
    rm_log_info("executor", "run %s left to be resumed", rm_run_id(r));
    run_over(er);
    return;
  }
  rm_log_info("executor", "run %s %s", rm_run_id(r), rm_run_status(r));
  json_t *last = er->last_step; /* handed over when nobody else holds it */
  er->last_step = NULL;
  if (last && last->refcount > 1) {
    json_t *copy = json_deep_copy(last);
    json_decref(last);
    last = copy;
  }
  if (last)
    rm_store_run_finish_last(er->ex->store, rm_run_id(r), er->ex->owner, last, rm_run_record(r), finish_stored, er);
  else
    rm_store_run_finish(er->ex->store, rm_run_id(r), er->ex->owner, rm_run_record(r), finish_stored, er);
}

static const json_t *host_plugin(void *ud, const char *type) { return rm_lua_host_plugin(ud, type); }

static void valid_forget(rm_executor *ex) {
  for (size_t i = 0; i < VALID_MAX; i++) json_decref(ex->valid[i]), ex->valid[i] = NULL;
  json_decref(ex->valid_names);
  ex->valid_names = NULL;
}

/* Whether wf (this very object) passed validation with these names. */
static bool known_valid(rm_executor *ex, const json_t *wf, const json_t *names) {
  if (!ex->valid_names || !json_equal(ex->valid_names, names)) return false;
  for (size_t i = 0; i < VALID_MAX; i++)
    if (ex->valid[i] == wf) return true;
  return false;
}

static void remember_valid(rm_executor *ex, const json_t *wf, const json_t *names) {
  if (!ex->valid_names || !json_equal(ex->valid_names, names)) {
    valid_forget(ex);
    ex->valid_names = json_deep_copy(names);
  }
  size_t i = ex->nvalid++ % VALID_MAX;
  json_decref(ex->valid[i]);
  ex->valid[i] = json_incref((json_t *)wf);
}

/* A stored definition is checked again: the plugins here may differ from
 * those of whoever queued it. NULL when fine, else the problems. */
static json_t *check_definition(rm_executor *ex, const json_t *wf, const json_t *inputs) {
  json_t *names = ex->opts.secrets ? rm_secrets_names(ex->opts.secrets) : json_array();
  bool plain = json_object_size(inputs) == 0; /* a validation then depends on nothing else */
  if (plain && known_valid(ex, wf, names)) {
    json_decref(names);
    return NULL;
  }
  rm_validate_opts o = {host_plugin, ex->host, inputs, names};
  json_t *problems = rm_workflow_validate(wf, &o);
  if (problems && json_array_size(problems) == 0) {
    if (plain) remember_valid(ex, wf, names);
    json_decref(names);
    json_decref(problems);
    return NULL;
  }
  json_decref(names);
  return problems ? problems : json_pack("[{s:s, s:s}]", "path", "", "message", "out of memory");
}

/* Records a run that cannot start as failed, with the reason. */
static void fail_unstartable(rm_executor *ex, json_t *row, const char *reason) {
  const char *id = json_string_value(json_object_get(row, "run_id"));
  rm_log_error("executor", "run %s cannot start: %s", id, reason);
  json_t *rec = json_pack("{s:s, s:s, s:s, s:f, s:{}}", "status", "failed", "reason", reason,
                          "finished_at", "", "duration_ms", 0.0, "summary");
  char now[40];
  rm_run_iso_time(now, sizeof now);
  json_object_set_new(rec, "finished_at", json_string(now));
  rm_store_run_finish(ex->store, id, ex->owner, rec, NULL, NULL);
  json_decref(rec);
  json_decref(row);
}

static void start_row(rm_executor *ex, json_t *row) {
  const json_t *wf = json_object_get(row, "definition");
  const json_t *inputs = json_object_get(row, "inputs");
  json_t *problems = check_definition(ex, wf, inputs);
  if (problems) {
    json_t *first = json_array_get(problems, 0);
    char reason[600];
    snprintf(reason, sizeof reason, "invalid definition: %s: %s",
             json_string_value(json_object_get(first, "path")),
             json_string_value(json_object_get(first, "message")));
    json_decref(problems);
    fail_unstartable(ex, row, reason);
    return;
  }
  exec_run *er = calloc(1, sizeof *er);
  if (!er) {
    fail_unstartable(ex, row, "out of memory");
    return;
  }
  er->ex = ex;
  er->row = row;
  er->next = ex->runs;
  ex->runs = er;
  ex->running++;
  const json_t *steps = json_object_get(row, "steps");
  rm_run_opts o = {
      .workflow = wf,
      .source = json_string_value(json_object_get(row, "source")),
      .inputs = inputs,
      .secrets = ex->opts.secrets,
      .dry_run = json_is_true(json_object_get(row, "dry_run")),
      .trigger = json_string_value(json_object_get(json_object_get(row, "trigger"), "type")),
      .run_id = json_string_value(json_object_get(row, "run_id")),
      .persist = persist_step,
      .persist_ud = er,
      .resume_steps = json_array_size(steps) ? steps : NULL,
      .resume_vars = json_object_get(row, "vars"),
  };
  if (o.resume_steps)
    rm_log_info("executor", "run %s resumes after %zu stored step(s)", o.run_id, json_array_size(steps));
  if (rm_run_start(ex->host, &o, run_done, er, &er->run) != 0) {
    unlink_run(er);
    free(er);
    fail_unstartable(ex, row, "could not start: out of memory");
  }
}

/* ---- claiming and leases ------------------------------------------------ */

static exec_run *find_run(rm_executor *ex, const char *id) {
  for (exec_run *er = ex->runs; er; er = er->next)
    if (strcmp(rm_run_id(er->run), id) == 0) return er;
  return NULL;
}

static void claimed(void *ud, int err, const char *errmsg, json_t *rows) {
  rm_executor *ex = ud;
  ex->claiming = false;
  if (err) rm_log_warn("executor", "looking for runs failed: %s", errmsg);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    if (ex->stopping) break;
    /* Our own lease lapsed (a slow renewal) and the claim gave the run
     * back to us: it is still running here; do not start it twice. */
    if (find_run(ex, json_string_value(json_object_get(row, "run_id")))) continue;
    start_row(ex, json_incref(row));
  }
  size_t got = json_array_size(rows);
  json_decref(rows);
  if (ex->stopping) {
    maybe_stopped(ex);
    return;
  }
  if (got == 0 && ex->running == 0 && ex->creating == 0 && !err && ex->opts.idle) ex->opts.idle(ex->opts.ud);
}

static void claim(rm_executor *ex) {
  if (!ex->opts.claim || ex->claiming || ex->stopping) return;
  size_t slots = (size_t)ex->opts.concurrency > ex->running ? (size_t)ex->opts.concurrency - ex->running : 0;
  if (slots == 0) return;
  ex->claiming = true;
  rm_store_run_claim(ex->store, ex->owner, ex->opts.lease_ms, (int)slots, claimed, ex);
}

static void on_poll(uv_timer_t *t) { claim(t->data); }

static void renewed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_executor *ex = ud;
  ex->renewing = false;
  if (err) rm_log_warn("executor", "renewing leases failed: %s", errmsg);
  size_t i;
  json_t *id;
  json_array_foreach(json_object_get(res, "lost"), i, id) {
    exec_run *er = find_run(ex, json_string_value(id));
    if (!er) continue;
    rm_log_warn("executor", "run %s: lease lost to another executor; stopping here", json_string_value(id));
    rm_run_abandon(er->run);
  }
  json_array_foreach(json_object_get(res, "cancel"), i, id) {
    exec_run *er = find_run(ex, json_string_value(id));
    if (!er) continue;
    rm_log_info("executor", "run %s: cancel requested", json_string_value(id));
    rm_run_cancel(er->run);
  }
  json_decref(res);
  if (ex->stopping) maybe_stopped(ex);
}

static void renew(rm_executor *ex, uint64_t lease_ms) {
  if (ex->renewing || !ex->runs) return;
  json_t *ids = json_array();
  for (exec_run *er = ex->runs; er; er = er->next) json_array_append_new(ids, json_string(rm_run_id(er->run)));
  ex->renewing = true;
  rm_store_run_renew(ex->store, ex->owner, ids, lease_ms, renewed, ex);
  json_decref(ids);
}

static void on_renew(uv_timer_t *t) { renew(t->data, ((rm_executor *)t->data)->opts.lease_ms); }

/* ---- retention ---------------------------------------------------------- */

enum { RETENTION_BATCH = 500 };

static void on_retention(uv_timer_t *t);

static void retention_done(void *ud, int err, const char *errmsg, json_t *res) {
  rm_executor *ex = ud;
  ex->retaining = false;
  bool more = !err && json_is_true(json_object_get(res, "more"));
  ex->retention_deleted += (uint64_t)json_integer_value(json_object_get(res, "deleted"));
  json_decref(res);
  if (err) rm_log_warn("executor", "retention cleanup failed: %s", errmsg);
  if (more && !ex->stopping) {
    /* The next batch after a pause, so the store serves other work between. */
    uv_timer_start(&ex->retention_timer, on_retention, 20, 0);
    return;
  }
  /* the pass ended, or was cut short by a stop: say what it deleted */
  if (ex->retention_deleted)
    rm_log_info("executor", "retention: deleted %llu finished run(s)", (unsigned long long)ex->retention_deleted);
  ex->retention_deleted = 0;
  if (ex->stopping) {
    maybe_stopped(ex);
    return;
  }
  uv_timer_start(&ex->retention_timer, on_retention, ex->opts.retention_every_ms, 0);
}

static void on_retention(uv_timer_t *t) {
  rm_executor *ex = t->data;
  if (ex->stopping || ex->retaining) return;
  ex->retaining = true;
  rm_store_retention(ex->store, ex->opts.retention_success_ms, ex->opts.retention_failed_ms, RETENTION_BATCH,
                     retention_done, ex);
}

void rm_executor_set_retention(rm_executor *ex, uint64_t success_ms, uint64_t failed_ms) {
  ex->opts.retention_success_ms = success_ms;
  ex->opts.retention_failed_ms = failed_ms;
  if (ex->stopping || ex->retaining || !ex->opts.retention_every_ms) return;
  uv_timer_start(&ex->retention_timer, on_retention, 0, 0);
}

/* ---- submit ------------------------------------------------------------- */

typedef struct submit_ctx {
  rm_executor *ex;
  void (*failed)(void *ud, int err, const char *errmsg);
  void *ud;
} submit_ctx;

static void set_lease(rm_executor *ex, json_t *spec) {
  json_object_set_new(spec, "status", json_string("running"));
  json_object_set_new(spec, "lease_owner", json_string(ex->owner));
  json_object_set_new(spec, "lease_ms", json_integer((json_int_t)ex->opts.lease_ms));
  ex->creating++;
}

bool rm_executor_reserve(rm_executor *ex, json_t *spec) {
  if (ex->stopping || ex->running + ex->creating >= (size_t)ex->opts.concurrency) return false;
  set_lease(ex, spec);
  return true;
}

void rm_executor_adopt(rm_executor *ex, json_t *row) {
  ex->creating--;
  if (row && ex->stopping) json_decref(row); /* left running-and-leased: resumed after the lease */
  else if (row) start_row(ex, row);
  if (ex->stopping) maybe_stopped(ex);
}

static void created(void *ud, int err, const char *errmsg, json_t *row) {
  submit_ctx *c = ud;
  if (err && c->failed) c->failed(c->ud, err, errmsg);
  rm_executor_adopt(c->ex, err ? NULL : row);
  free(c);
}

void rm_executor_submit(rm_executor *ex, const json_t *spec, void (*failed)(void *ud, int err, const char *errmsg),
                        void *ud) {
  submit_ctx *c = malloc(sizeof *c);
  json_t *s = json_deep_copy(spec);
  if (!c || !s) {
    free(c);
    json_decref(s);
    if (failed) failed(ud, RM_ENOMEM, "out of memory");
    return;
  }
  *c = (submit_ctx){ex, failed, ud};
  set_lease(ex, s);
  rm_store_run_create(ex->store, s, created, c);
  json_decref(s);
}

/* ---- life cycle --------------------------------------------------------- */

int rm_executor_new(rm_executor **out, uv_loop_t *loop, rm_store *store, rm_lua_host *host,
                    const rm_executor_opts *opts) {
  rm_executor *ex = calloc(1, sizeof *ex);
  if (!ex) return RM_ENOMEM;
  ex->loop = loop;
  ex->store = store;
  ex->host = host;
  ex->opts = *opts;
  if (ex->opts.concurrency <= 0) ex->opts.concurrency = 16;
  if (!ex->opts.lease_ms) ex->opts.lease_ms = 15000;
  if (!ex->opts.poll_ms) ex->opts.poll_ms = 500;
  char host_name[64] = "host";
  gethostname(host_name, sizeof host_name - 1);
  char id[37];
  rm_run_new_uuid(id);
  /* the id's last 8 digits: random (its first ones are the time) */
  snprintf(ex->owner, sizeof ex->owner, "%s-%d-%.8s", host_name, (int)getpid(), id + 28);
  uv_timer_init(loop, &ex->poll_timer);
  uv_timer_init(loop, &ex->renew_timer);
  uv_timer_init(loop, &ex->retention_timer);
  ex->poll_timer.data = ex->renew_timer.data = ex->retention_timer.data = ex;
  ex->handles = 3;
  if (ex->opts.retention_every_ms && (ex->opts.retention_success_ms || ex->opts.retention_failed_ms))
    uv_timer_start(&ex->retention_timer, on_retention, 0, 0);
  uint64_t every = ex->opts.lease_ms / 3 ? ex->opts.lease_ms / 3 : 1;
  uv_timer_start(&ex->renew_timer, on_renew, every, every);
  if (ex->opts.claim) {
    uv_timer_start(&ex->poll_timer, on_poll, 0, ex->opts.poll_ms);
  }
  *out = ex;
  return 0;
}

const char *rm_executor_owner(const rm_executor *ex) { return ex->owner; }
size_t rm_executor_running(const rm_executor *ex) { return ex->running; }

void rm_executor_cancel_all(rm_executor *ex) {
  for (exec_run *er = ex->runs; er; er = er->next) rm_run_cancel(er->run);
}

static void handle_closed(uv_handle_t *h) {
  rm_executor *ex = h->data;
  if (--ex->handles == 0 && ex->stopped) ex->stopped(ex->stopped_ud);
}

static void maybe_stopped(rm_executor *ex) {
  if (ex->running || ex->creating || ex->claiming || ex->renewing || ex->retaining) return;
  if (uv_is_closing((uv_handle_t *)&ex->poll_timer)) return;
  uv_close((uv_handle_t *)&ex->poll_timer, handle_closed);
  uv_close((uv_handle_t *)&ex->renew_timer, handle_closed);
  uv_close((uv_handle_t *)&ex->retention_timer, handle_closed);
}

void rm_executor_stop(rm_executor *ex, void (*done)(void *ud), void *ud) {
  ex->stopping = true;
  ex->stopped = done;
  ex->stopped_ud = ud;
  uv_timer_stop(&ex->poll_timer);
  uv_timer_stop(&ex->renew_timer);
  uv_timer_stop(&ex->retention_timer);
  /* Release the leases first so whoever comes next need not wait. */
  renew(ex, 0);
  for (exec_run *er = ex->runs; er; er = er->next) rm_run_abandon(er->run);
  maybe_stopped(ex);
}

void rm_executor_free(rm_executor *ex) {
  valid_forget(ex);
  free(ex);
}
