/* What the server does when a run changes state: the run and step
 * metrics, and the gauges of queued and running runs counted in the store
 * (every RM_SERVE_COUNT_MS, so a scrape never waits on the database). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/log.h"

#define RM_SERVE_COUNT_MS 10000

static const double step_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

int rm_serve_events_init(rm_serve *s) {
  static const char *const status[] = {"status", NULL};
  s->m_runs_finished = rm_metrics_counter(&s->metrics, "restmon_runs_finished_total",
                                          "Runs this process finished, by final status.", status);
  s->m_run_seconds = rm_metrics_histogram(&s->metrics, "restmon_run_duration_seconds",
                                          "Duration of the runs this process finished, by final status.", status,
                                          step_bounds, sizeof step_bounds / sizeof step_bounds[0]);
  s->m_step_seconds = rm_metrics_histogram(&s->metrics, "restmon_step_duration_seconds",
                                           "Duration of each step (all its attempts) of finished runs, by status.",
                                           status, step_bounds, sizeof step_bounds / sizeof step_bounds[0]);
  s->m_runs = rm_metrics_gauge(&s->metrics, "restmon_runs", "Runs in the store by status (queued, running).", status);
  s->g_exec = rm_metrics_gauge(&s->metrics, "restmon_runs_executing", "Runs this process is executing (executor slots in use).", NULL);
  s->g_slots = rm_metrics_gauge(&s->metrics, "restmon_executor_slots", "Runs this process may execute at once.", NULL);
  if (!s->m_runs_finished || !s->m_run_seconds || !s->m_step_seconds || !s->m_runs || !s->g_exec || !s->g_slots)
    return -1;
  uv_timer_init(&s->loop, &s->count_timer);
  s->count_timer.data = s;
  return 0;
}

static void counted(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve *s = ud;
  s->counting--;
  if (err) rm_log_debug("serve", "counting runs failed: %s", errmsg);
  else {
    const char *st = json_string_value(json_object_get(res, "status"));
    const char *v[] = {st ? st : "?"};
    rm_metric_set(s->m_runs, v, (double)json_integer_value(json_object_get(res, "total")));
  }
  json_decref(res);
}

/* The store's answer lacks the status asked for: keep it beside. */
typedef struct count_req {
  rm_serve *s;
  const char *status;
} count_req;

static void count_answer(void *ud, int err, const char *errmsg, json_t *res) {
  count_req *cr = ud;
  rm_serve *s = cr->s;
  const char *st = cr->status;
  free(cr);
  if (!err) json_object_set_new(res, "status", json_string(st));
  counted(s, err, errmsg, res);
}

static void count_tick(uv_timer_t *t) {
  rm_serve *s = t->data;
  static const char *const sts[] = {"queued", "running"};
  if (s->stopping || s->counting) return;
  for (int i = 0; i < 2; i++) {
    count_req *cr = malloc(sizeof *cr);
    json_t *q = json_pack("{s:s, s:i}", "status", sts[i], "page_size", 1);
    if (!cr || !q) {
      free(cr);
      json_decref(q);
      return;
    }
    cr->s = s;
    cr->status = sts[i];
    s->counting++;
    rm_store_run_search(s->store, q, count_answer, cr);
    json_decref(q);
  }
}

void rm_serve_events_start(rm_serve *s) { uv_timer_start(&s->count_timer, count_tick, 0, RM_SERVE_COUNT_MS); }

void rm_serve_events_stop(rm_serve *s) {
  if (!uv_is_closing((uv_handle_t *)&s->count_timer)) uv_close((uv_handle_t *)&s->count_timer, NULL);
}

void rm_serve_run_finished(rm_run *r, const json_t *row, void *ud) {
  rm_serve *s = ud;
  const char *st = rm_run_status(r);
  if (!st || rm_run_abandoned(r)) return; /* another executor finishes it */
  rm_serve_notify_run(s, row, rm_run_record(r), st); /* the workflow's notifications and the run webhooks */
  rm_serve_sched_run_finished(s, row);
  rm_serve_signals_run(s, row, rm_run_record(r), st);
  const char *v[] = {st};
  rm_metric_add(s->m_runs_finished, v, 1);
  rm_metric_observe(s->m_run_seconds, v, rm_run_duration_ms(r) / 1000.0);
  size_t i;
  json_t *step;
  json_array_foreach(json_object_get(rm_run_record(r), "steps"), i, step) {
    const char *ss = json_string_value(json_object_get(step, "status"));
    json_t *d = json_object_get(step, "duration_ms");
    if (!ss || !json_is_number(d)) continue;
    const char *sv[] = {ss};
    rm_metric_observe(s->m_step_seconds, sv, json_number_value(d) / 1000.0);
  }
}
