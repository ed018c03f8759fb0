/* Running a check monitor: one run of what it names.
 *
 * A workflow check runs the workflow's latest published version (never
 * the draft: what runs unattended is what was published, as for the
 * execute route; a workflow not yet published is a clear error). A task
 * check runs the stored task's definition as a one-task workflow whose
 * only task is called "check". The monitor's timeout_ms becomes every
 * task's per-attempt timeout, and retries > 0 every task's max_attempts
 * (retries + 1, the rest of its retry policy kept); retries 0 leaves the
 * definition's own retry policy.
 *
 * Definitions are cached, so a fire reads nothing: the source (the task
 * document, or the workflow's latest published version) by its id, and
 * per monitor the run spec built from it. A change through this server's
 * API drops what it affects at once (rm__check_forget); a source older
 * than SOURCE_TTL_MS is read again in the background while the cached one
 * goes on serving, so a change made through another server is picked up
 * within that long. A source that cannot be used (deleted, unpublished)
 * is never cached: each fire reads it and fails with the reason.
 *
 * A scheduled fire goes to the store as one job that claims (monitor,
 * scheduled time) and creates the run (rm_store_check_fire): created
 * already claimed by this server's executor and started at once when it
 * has a free slot, else queued for whichever executor claims it. */
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "serve/sched_internal.h"
#include "util/err.h"
#include "util/log.h"

#define SOURCE_TTL_MS 10000
#define KEY_MAX 320

typedef struct check_job {
  struct check_job *next; /* in ss->waiting */
  rm_serve *s;
  json_t *mon, *trigger;
  char key[KEY_MAX]; /* its source: "task:<id>" or "workflow:<id>" */
  int64_t fire_ms;   /* the scheduled time claimed; < 0 for a manual run */
  bool reserved;     /* the run is created claimed by this server's executor */
  json_t *def;       /* the definition the run executes (its row comes without) */
  rm_store_cb done;
  void *ud;
} check_job;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static uint64_t now_ms(const rm_serve *s) { return uv_now((uv_loop_t *)&s->loop); }

static void finish(check_job *j, int err, const char *errmsg, json_t *run) {
  j->done(j->ud, err, errmsg, run);
  json_decref(j->mon);
  json_decref(j->trigger);
  json_decref(j->def);
  free(j);
}

/* ---- the run spec from a source ---- */

static void apply_limits(json_t *def, const json_t *mon) {
  const json_t *timeout = json_object_get(mon, "timeout_ms");
  json_int_t retries = json_integer_value(json_object_get(mon, "retries"));
  const json_t *dflt = json_object_get(json_object_get(def, "defaults"), "retry");
  const char *name;
  json_t *task;
  json_object_foreach(json_object_get(def, "tasks"), name, task) {
    if (!json_is_object(task)) continue;
    if (json_is_integer(timeout)) json_object_set(task, "timeout_ms", (json_t *)timeout);
    if (retries <= 0) continue;
    const json_t *own = json_object_get(task, "retry");
    json_t *retry = json_is_object(own) ? json_deep_copy(own) : json_is_object(dflt) ? json_deep_copy(dflt) : json_object();
    json_object_set_new(retry, "max_attempts", json_integer(retries + 1));
    json_object_set_new(task, "retry", retry);
  }
}

/* The spec without trigger and source (a new reference; NULL when out of
 * memory): src is a task document or a published version. */
static json_t *spec_of(const json_t *mon, const json_t *src, bool task) {
  json_t *def;
  const char *name;
  json_int_t version = 0;
  if (task) {
    name = str(src, "name");
    def = json_pack("{s:s, s:{s:o}}", "name", rm_defs_workflow_name_ok(name) ? name : "task-check", "tasks",
                    "check", json_deep_copy(json_object_get(src, "definition")));
  } else {
    def = json_deep_copy(json_object_get(src, "definition"));
    name = str(def, "name") ? str(def, "name") : "workflow";
    version = json_integer_value(json_object_get(src, "version"));
  }
  if (!def) return NULL;
  apply_limits(def, mon);
  return json_pack("{s:s?, s:s, s:I, s:o, s:{}, s:[s]}", "workflow_id", task ? NULL : str(mon, "workflow_id"),
                   "workflow_name", name ? name : "task-check", "workflow_version", version, "definition", def,
                   "inputs", "tags", "check");
}

/* 0 when src (a task document or published version, as read) can run;
 * else the error with its message in msg. */
static int source_usable(const check_job *j, const json_t *src, char *msg, size_t n) {
  bool task = strncmp(j->key, "task:", 5) == 0;
  if (task && (!json_is_null(json_object_get(src, "deleted_at")) || !json_is_object(json_object_get(src, "definition")))) {
    snprintf(msg, n, "task %s: not found (deleted?)", str(j->mon, "task_id"));
    return RM_ENOTFOUND;
  }
  if (!task && !json_is_object(json_object_get(src, "definition"))) {
    snprintf(msg, n, "the published version has no definition");
    return RM_EINVAL;
  }
  return 0;
}

/* ---- the caches ---- */

static json_t *stamp_of(const json_t *src) { return json_object_get(src, "version"); }

/* Keeps src (stolen) as the source of key, unless an equal version is
 * cached (whose document then stays, keeping the monitors' specs valid). */
static void source_keep(rm_serve_sched *ss, const char *key, json_t *src) {
  json_t *e = json_object_get(ss->sources, key);
  if (e && json_equal(stamp_of(json_object_get(e, "doc")), stamp_of(src))) {
    json_object_set_new(e, "at", json_integer((json_int_t)now_ms(ss->s)));
    json_decref(src);
    return;
  }
  json_object_set_new(ss->sources, key, json_pack("{s:o, s:I}", "doc", src, "at", (json_int_t)now_ms(ss->s)));
}

/* The cached spec of j's monitor when it was built from the cached
 * source and this version of the monitor; else built now (NULL when the
 * source is not cached). Borrowed. */
static const json_t *spec_cached(rm_serve_sched *ss, check_job *j) {
  const char *id = str(j->mon, "id");
  const json_t *src = json_object_get(json_object_get(ss->sources, j->key), "doc");
  json_t *e = id ? json_object_get(ss->specs, id) : NULL;
  if (!src) return NULL;
  if (e && json_object_get(e, "doc") == src && json_equal(json_object_get(e, "monitor"), stamp_of(j->mon)))
    return json_object_get(e, "spec");
  json_t *spec = spec_of(j->mon, src, strncmp(j->key, "task:", 5) == 0);
  if (!spec || !id) {
    json_decref(spec);
    return NULL;
  }
  e = json_pack("{s:O, s:O?, s:o}", "doc", src, "monitor", stamp_of(j->mon), "spec", spec);
  json_object_set_new(ss->specs, id, e);
  return spec;
}

void rm__check_forget(rm_serve_sched *ss, const char *kind, const char *id) {
  char key[KEY_MAX];
  if (!ss || !kind || !id) return;
  if (strcmp(kind, "monitor") == 0) {
    json_object_del(ss->specs, id);
    return;
  }
  snprintf(key, sizeof key, "%s:%s", kind, id);
  json_object_del(ss->sources, key); /* the specs built from it no longer match */
}

/* ---- reading a source ---- */

static void read_source(rm_serve *s, const check_job *j, rm_store_cb cb, void *ud) {
  const char *id = strchr(j->key, ':') + 1;
  if (strncmp(j->key, "task:", 5) == 0) rm_store_doc_get(s->store, "task", id, cb, ud);
  else rm_store_workflow_version(s->store, id, 0, cb, ud);
}

/* A read of the source named key under way (a refresh, or the one read
 * that fires waiting for a source share). */
typedef struct pending_read {
  rm_serve_sched *ss;
  char key[KEY_MAX];
} pending_read;

static void refreshed(void *ud, int err, const char *errmsg, json_t *src) {
  pending_read *r = ud;
  rm_serve_sched *ss = r->ss;
  bool gone = err == RM_ENOTFOUND || (!err && !json_is_null(json_object_get(src, "deleted_at")));
  if (err && !gone) rm_log_warn("sched", "reading %s again: %s (the cached definition goes on)", r->key, errmsg);
  if (gone) json_object_del(ss->sources, r->key);
  else if (!err && json_object_get(ss->sources, r->key)) source_keep(ss, r->key, json_incref(src));
  json_t *e = json_object_get(ss->sources, r->key); /* the next refresh may start */
  if (e) json_object_del(e, "loading");
  json_decref(src);
  free(r);
  rm__sched_pending_done(ss);
}

/* An old source is read again, once at a time; fires meanwhile use it. */
static void maybe_refresh(rm_serve_sched *ss, const check_job *j) {
  json_t *e = json_object_get(ss->sources, j->key);
  pending_read *r;
  if (!e || json_object_get(e, "loading") || ss->stopped ||
      now_ms(ss->s) - (uint64_t)json_integer_value(json_object_get(e, "at")) < SOURCE_TTL_MS ||
      !(r = malloc(sizeof *r)))
    return;
  r->ss = ss;
  snprintf(r->key, sizeof r->key, "%s", j->key);
  json_object_set_new(e, "loading", json_true());
  ss->pending++;
  read_source(ss->s, j, refreshed, r);
}

/* ---- creating the run ---- */

static void created(void *ud, int err, const char *errmsg, json_t *run) {
  check_job *j = ud;
  rm_executor *ex = j->reserved ? j->s->ex : NULL;
  if (run && j->def && !json_object_get(run, "definition")) json_object_set(run, "definition", j->def);
  finish(j, err, errmsg, json_incref(run)); /* the caller learns the run before it can end */
  if (ex) rm_executor_adopt(ex, err ? NULL : run);
  else json_decref(run);
}

static void create(check_job *j, const json_t *tmpl) {
  bool manual = j->fire_ms < 0;
  json_t *spec = json_copy((json_t *)tmpl);
  if (!spec || json_object_set(spec, "trigger", j->trigger) ||
      json_object_set_new(spec, "source", json_string(manual ? "api" : "schedule"))) {
    json_decref(spec);
    finish(j, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  j->def = json_incref(json_object_get(tmpl, "definition"));
  if (manual) {
    rm_store_run_create(j->s->store, spec, created, j);
  } else {
    j->reserved = j->s->ex && rm_executor_reserve(j->s->ex, spec);
    rm_store_check_fire(j->s->store, str(j->mon, "id"), j->fire_ms, spec, created, j);
  }
  json_decref(spec);
}

/* Goes on with j once its source was read: src (borrowed) or err. */
static void source_ready(check_job *j, int err, const char *errmsg, const json_t *src) {
  rm_serve_sched *ss = j->s->sched;
  char msg[400];
  if (err == RM_ENOTFOUND && strncmp(j->key, "workflow:", 9) == 0) {
    snprintf(msg, sizeof msg, "workflow %s has no published version: publish it for the check to run",
             str(j->mon, "workflow_id"));
    errmsg = msg;
  } else if (err == RM_ENOTFOUND) {
    snprintf(msg, sizeof msg, "task %s: not found (deleted?)", str(j->mon, "task_id"));
    errmsg = msg;
  } else if (!err && (err = source_usable(j, src, msg, sizeof msg)) != 0) {
    errmsg = msg;
  }
  const json_t *tmpl = NULL;
  if (!err && ss && !ss->stopped) {
    source_keep(ss, j->key, json_incref((json_t *)src));
    tmpl = spec_cached(ss, j);
  }
  json_t *own = !err && !tmpl ? spec_of(j->mon, src, strncmp(j->key, "task:", 5) == 0) : NULL;
  if (err) finish(j, err, errmsg, NULL);
  else if (!tmpl && !own) finish(j, RM_ENOMEM, "out of memory", NULL);
  else create(j, tmpl ? tmpl : own);
  json_decref(own);
}

static void source_read(void *ud, int err, const char *errmsg, json_t *src) {
  source_ready(ud, err, errmsg, src);
  json_decref(src);
}

/* ---- fires waiting for a source ----
 * The fires of one check must reach the store in the order they fired:
 * each claims its time with a compare-and-set that refuses a time earlier
 * than one claimed already. So fires whose source is not cached wait in
 * ss->waiting, in order, for one read of it, and go on in that order. */

static void waited_read(void *ud, int err, const char *errmsg, json_t *src) {
  pending_read *w = ud;
  rm_serve_sched *ss = w->ss;
  for (check_job **pp = &ss->waiting; *pp;) {
    check_job *j = *pp;
    if (strcmp(j->key, w->key) != 0) {
      pp = &j->next;
      continue;
    }
    *pp = j->next;
    source_ready(j, err, errmsg, src);
  }
  json_decref(src);
  free(w);
  rm__sched_pending_done(ss);
}

/* Queues j behind the fires already waiting for its source, or reads it. */
static void wait_source(rm_serve_sched *ss, check_job *j) {
  check_job **pp = &ss->waiting;
  bool reading = false;
  for (; *pp; pp = &(*pp)->next) reading = reading || strcmp((*pp)->key, j->key) == 0;
  pending_read *w = reading ? NULL : malloc(sizeof *w);
  if (!reading && !w) {
    finish(j, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  *pp = j;
  if (reading) return;
  *w = (pending_read){.ss = ss};
  snprintf(w->key, sizeof w->key, "%s", j->key);
  ss->pending++;
  read_source(ss->s, j, waited_read, w);
}

void rm__check_start(rm_serve *s, const json_t *mon, json_t *trigger, int64_t fire_ms, rm_store_cb done, void *ud) {
  const char *wid = str(mon, "workflow_id"), *tid = str(mon, "task_id");
  check_job *j = wid || tid ? calloc(1, sizeof *j) : NULL;
  if (!j) {
    json_decref(trigger);
    if (!wid && !tid) done(ud, RM_EINVAL, "the monitor names neither a workflow_id nor a task_id", NULL);
    else done(ud, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  *j = (check_job){.s = s, .mon = json_incref((json_t *)mon), .trigger = trigger, .fire_ms = fire_ms, .done = done,
                   .ud = ud};
  if ((size_t)snprintf(j->key, sizeof j->key, "%s:%s", wid ? "workflow" : "task", wid ? wid : tid) >= sizeof j->key) {
    finish(j, RM_EINVAL, "the monitor's workflow_id or task_id is too long", NULL);
    return;
  }
  rm_serve_sched *ss = s->sched && !s->sched->stopped ? s->sched : NULL;
  const json_t *tmpl = ss ? spec_cached(ss, j) : NULL;
  if (tmpl) {
    maybe_refresh(ss, j);
    create(j, tmpl);
  } else if (ss) {
    wait_source(ss, j);
  } else {
    read_source(s, j, source_read, j);
  }
}
