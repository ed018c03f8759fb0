/* What schedules.c, checks.c and schedules_api.c share: the server's
 * scheduler state and the check runner. Internal to core/serve.
 *
 * Items of the scheduler are check monitors, keyed by the monitor's id;
 * its schedules are the schedule documents, keyed by their id. The maps
 * below mirror the live documents (loaded at start, kept current by the
 * API's write hook), so a fire needs no store read to know its monitor. */
#ifndef RM_SERVE_SCHED_INTERNAL_H
#define RM_SERVE_SCHED_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/scheduler.h"
#include "serve/serve.h"

struct rm_serve_sched {
  rm_serve *s;
  rm_sched *sched;
  rm_tz_registry *tzs;
  json_t *schedules;  /* id -> schedule document */
  json_t *monitors;   /* id -> check monitor document */
  json_t *last;       /* id -> last fire ms read at start (freed once loaded) */
  json_t *dirty;      /* id -> last fire ms of a suppressed fire, not yet written (a fire that runs is its claim) */
  json_t *inflight;   /* monitor id -> {"since": mono ms, "run_id"?}: its scheduled run not yet finished */
  json_t *suppressed; /* monitor id -> until ms (maintenance) */
  json_t *sources;    /* "task:<id>" | "workflow:<id>" -> {"doc", "at": mono ms, "loading"?} (checks.c) */
  json_t *specs;      /* monitor id -> {"doc": the source it was built from, "monitor": its version, "spec"} */
  struct check_job *waiting; /* fires waiting for their source to be read, in order (checks.c) */
  uv_timer_t flush;
  rm_metric *m_checks; /* restmon_checks_total{outcome} */
  int pending;         /* store jobs and handles still to end before the state is freed */
  bool flushing, stopped;
};
typedef struct rm_serve_sched rm_serve_sched;

/* The schedule document's timing as an rm_schedule (*out: caller frees
 * with rm_cron_free). 0, or RM_EINVAL / RM_ENOMEM with err. */
int rm__sched_from_doc(const json_t *doc, rm_schedule *out, char *err, size_t errlen);
/* UTC ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (a new JSON string). */
json_t *rm__sched_iso(int64_t ms);

/* Starts a run of the check monitor mon (borrowed): its workflow's latest
 * published version, or its task wrapped as a one-task workflow, with the
 * monitor's timeout_ms and retries applied to every task, and trigger
 * (stolen) as the run's trigger. fire_ms >= 0: a scheduled fire, created
 * only if this server claims (monitor, fire_ms) in the store, and already
 * claimed by this server's executor when it has a free slot; fire_ms < 0:
 * a manual run, queued. done(ud, err, errmsg, run row) runs on the loop
 * before the run can end; a NULL row with err 0 means another server took
 * the fire. RM_ENOTFOUND with a message saying what is missing (no
 * published version, the task or workflow deleted). */
void rm__check_start(rm_serve *s, const json_t *mon, json_t *trigger, int64_t fire_ms, rm_store_cb done, void *ud);
/* A monitor, task or workflow (kind) changed or was published through
 * this server: the cached definitions built from it are dropped. */
void rm__check_forget(rm_serve_sched *ss, const char *kind, const char *id);
/* A store job or handle counted in ss->pending has ended. */
void rm__sched_pending_done(rm_serve_sched *ss);

/* For the signal engine, so a check's result needs no store read: the
 * check monitor or the schedule document called id as this server's
 * scheduler holds it (borrowed until the loop turns), or NULL. */
const json_t *rm__sched_monitor(rm_serve *s, const char *id);
const json_t *rm__sched_schedule(rm_serve *s, const char *id);

#endif
