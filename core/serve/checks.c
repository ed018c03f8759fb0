/* Running a check monitor: one queued run of what it names.
 *
 * A workflow check runs the workflow's latest published version (never
 * the draft: what runs unattended is what was published, as for the
 * execute route; a workflow not yet published is a clear error). A task
 * check runs the stored task's definition as a one-task workflow whose
 * only task is called "check". The monitor's timeout_ms becomes every
 * task's per-attempt timeout, and retries > 0 every task's max_attempts
 * (retries + 1, the rest of its retry policy kept); retries 0 leaves the
 * definition's own retry policy. */
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "serve/sched_internal.h"
#include "util/err.h"

typedef struct check_job {
  rm_serve *s;
  json_t *mon, *trigger;
  rm_store_cb done;
  void *ud;
} check_job;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void finish(check_job *j, int err, const char *errmsg, json_t *run) {
  j->done(j->ud, err, errmsg, run);
  json_decref(j->mon);
  json_decref(j->trigger);
  free(j);
}

static void created(void *ud, int err, const char *errmsg, json_t *run) { finish(ud, err, errmsg, run); }

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

/* def, wid and name: borrowed. */
static void create(check_job *j, json_t *def, const char *wid, const char *name, json_int_t version) {
  apply_limits(def, j->mon);
  bool manual = strcmp(str(j->trigger, "type"), "schedule") != 0;
  json_t *spec = json_pack("{s:s?, s:s, s:I, s:O, s:s, s:O, s:{}, s:[s]}", "workflow_id", wid, "workflow_name", name,
                           "workflow_version", version, "definition", def, "source", manual ? "api" : "schedule",
                           "trigger", j->trigger, "inputs", "tags", "check");
  if (!spec) {
    finish(j, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  rm_store_run_create(j->s->store, spec, created, j);
  json_decref(spec);
}

static void got_version(void *ud, int err, const char *errmsg, json_t *v) {
  check_job *j = ud;
  char msg[400];
  if (err == RM_ENOTFOUND) {
    snprintf(msg, sizeof msg, "workflow %s has no published version: publish it for the check to run",
             str(j->mon, "workflow_id"));
    errmsg = msg;
  }
  json_t *def = err ? NULL : json_deep_copy(json_object_get(v, "definition"));
  if (!err && !json_is_object(def)) err = RM_EINVAL, errmsg = "the published version has no definition";
  if (err) finish(j, err, errmsg, NULL);
  else
    create(j, def, str(j->mon, "workflow_id"), str(def, "name") ? str(def, "name") : "workflow",
           json_integer_value(json_object_get(v, "version")));
  json_decref(def);
  json_decref(v);
}

static void got_task(void *ud, int err, const char *errmsg, json_t *task) {
  check_job *j = ud;
  char msg[400];
  const json_t *tdef = json_object_get(task, "definition");
  if (!err && (!json_is_null(json_object_get(task, "deleted_at")) || !json_is_object(tdef))) err = RM_ENOTFOUND;
  if (err == RM_ENOTFOUND) {
    snprintf(msg, sizeof msg, "task %s: not found (deleted?)", str(j->mon, "task_id"));
    errmsg = msg;
  }
  if (err) {
    json_decref(task);
    finish(j, err, errmsg, NULL);
    return;
  }
  const char *name = str(task, "name");
  const char *wname = rm_defs_workflow_name_ok(name) ? name : "task-check";
  json_t *def = json_pack("{s:s, s:{s:O}}", "name", wname, "tasks", "check", tdef);
  create(j, def, NULL, name, 0);
  json_decref(def);
  json_decref(task);
}

void rm__check_queue(rm_serve *s, const json_t *mon, json_t *trigger, rm_store_cb done, void *ud) {
  check_job *j = calloc(1, sizeof *j);
  if (!j) {
    json_decref(trigger);
    done(ud, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  j->s = s;
  j->mon = json_incref((json_t *)mon);
  j->trigger = trigger;
  j->done = done;
  j->ud = ud;
  const char *wid = str(mon, "workflow_id"), *tid = str(mon, "task_id");
  if (wid) rm_store_workflow_version(s->store, wid, 0, got_version, j);
  else if (tid) rm_store_doc_get(s->store, "task", tid, got_task, j);
  else finish(j, RM_EINVAL, "the monitor names neither a workflow_id nor a task_id", NULL);
}
