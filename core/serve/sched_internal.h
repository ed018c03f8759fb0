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
  json_t *dirty;      /* id -> last fire ms not yet written to the store */
  json_t *inflight;   /* monitor id -> {"since": mono ms, "run_id"?}: its scheduled run not yet finished */
  json_t *suppressed; /* monitor id -> until ms (maintenance) */
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
/* The wall clock, UTC ms. */
int64_t rm__sched_now_ms(void);

/* Queues a run of the check monitor mon (borrowed): its workflow's latest
 * published version, or its task wrapped as a one-task workflow, with the
 * monitor's timeout_ms and retries applied to every task, and trigger
 * (stolen) as the run's trigger. done(ud, err, errmsg, run row) runs on
 * the loop; RM_ENOTFOUND with a message saying what is missing (no
 * published version, the task or workflow deleted). */
void rm__check_queue(rm_serve *s, const json_t *mon, json_t *trigger, rm_store_cb done, void *ud);

#endif
