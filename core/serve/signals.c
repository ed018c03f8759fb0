/* The signal engine of the server: turns observations of a monitoring
 * object -- check runs, pushed metric values and events, metric values
 * extracted from runs (metric_source.c), runs started by hand or through
 * the API -- into its signal (core/signal, stored by
 * rm_store_signal_apply), and runs the clock that moves silent objects to
 * Unknown and applies verdicts a cooldown held back.
 *
 * The rules of a monitor's signal come from its document: "criteria"
 * {failures_to_fail, successes_to_recover, cooldown_s, unknown_after,
 * interval_s} (docs/api.md) and, for metrics, its thresholds. The
 * expected interval of a check is its schedule's (the longest gap among
 * its next fires), of a metric or event monitor criteria.interval_s; an
 * object with none never turns Unknown.
 *
 * The clock does not read every signal each second: the outcome of each
 * write says when a tick could next change that signal (its silence
 * reaches Unknown, or its cooldown ends), and only those objects are
 * ticked, the store deciding. At start every stored signal is due once. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/cron.h"
#include "serve/sched_internal.h"
#include "serve/signals_int.h"
#include "signal/signal.h"
#include "util/err.h"
#include "util/log.h"

#define CLOCK_MS 1000
#define RETRY_MS 30000 /* a tick in flight, or failed: look again then */
#define LOAD_PAGE 500

/* ---- rules from the document ---- */

static json_int_t crit(const json_t *cr, const char *key, json_int_t dflt) {
  const json_t *v = json_object_get(cr, key);
  return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static json_t *metric_rule(const json_t *m) {
  json_t *r = json_pack("{s:O?, s:s, s:O?, s:I}", "direction", json_object_get(m, "direction"), "aggregate", "mean",
                        "window_s", json_object_get(m, "window_s"), "breach_s", crit(m, "breach_s", 0));
  if (r && json_is_number(json_object_get(m, "degraded"))) json_object_set(r, "degraded", json_object_get(m, "degraded"));
  if (r && json_is_number(json_object_get(m, "failed"))) json_object_set(r, "failed", json_object_get(m, "failed"));
  return r;
}

/* rm_signal_config_parse's form for a monitor (or, kind "workflow", the
 * event signal of a workflow's runs). */
static json_t *signal_config(const json_t *obj, const char *kind) {
  bool wf = strcmp(kind, "workflow") == 0;
  const char *type = wf ? "event" : json_string_value(json_object_get(obj, "type"));
  const json_t *cr = json_object_get(obj, "criteria"), *tags = json_object_get(obj, "tags");
  if (!type) return NULL;
  bool check = strcmp(type, "check") == 0, timed = check || json_is_integer(json_object_get(cr, "interval_s"));
  json_int_t fail = crit(cr, "failures_to_fail", 1);
  json_t *c = json_pack("{s:O, s:s, s:O, s:I, s:I, s:I, s:I, s:b, s:I}", "id", json_object_get(obj, "id"), "type",
                        type, "tags", json_is_array(tags) ? tags : json_array(), "failures_to_fail", fail,
                        "degradations_to_degrade", fail, "successes_to_recover", crit(cr, "successes_to_recover", 1),
                        "cooldown_s", crit(cr, "cooldown_s", 0), "escalate_during_cooldown", 1, "unknown_after",
                        crit(cr, "unknown_after", timed ? 3 : 0));
  if (c && strcmp(type, "metric") == 0) json_object_set_new(c, "metric", metric_rule(obj));
  return c;
}

/* The longest gap among the next fires of a schedule document; 0 for
 * none (dates, paused, unreadable). */
static int64_t schedule_interval(const json_t *sc) {
  static const char *const units[] = {"seconds", "minutes", "hours", "days"};
  static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000};
  const json_t *every = json_object_get(sc, "every");
  const char *expr = json_string_value(json_object_get(sc, "cron"));
  const char *tzname = json_string_value(json_object_get(sc, "timezone"));
  if (json_is_false(json_object_get(sc, "enabled"))) return 0;
  for (int i = 0; every && i < 4; i++)
    if (json_is_integer(json_object_get(every, units[i])))
      return json_integer_value(json_object_get(every, units[i])) * unit_ms[i];
  rm_schedule sched;
  rm_tz *tz = NULL;
  char err[300];
  int64_t next[4], gap = 0;
  if (!expr || rm_cron_parse(&sched, expr, tzname, err, sizeof err) != 0) return 0;
  if (rm_tz_load(NULL, tzname ? tzname : "UTC", &tz, err, sizeof err) == 0) {
    int n = rm_cron_next_n(&sched, tz, rm__serve_now_ms(), next, 4);
    for (int i = 1; i < n; i++)
      if (next[i] - next[i - 1] > gap) gap = next[i] - next[i - 1];
    rm_tz_free(tz);
  }
  rm_cron_free(&sched);
  return gap;
}

/* ---- feeding ---- */

typedef struct feed_req {
  rm_serve *s;
  json_t *object, *obs, *config;
  char kind[16];
  int64_t interval_ms;
  rm__sig_done done;
  void *ud;
} feed_req;

static void feed_end(feed_req *r, int err, const char *errmsg, json_t *res) {
  if (r->done) r->done(r->ud, err, errmsg, res);
  else json_decref(res);
  json_decref(r->object);
  json_decref(r->obs);
  json_decref(r->config);
  free(r);
}

static void set_due(rm_serve *s, const char *id, int64_t due) {
  if (!s->signals || !id) return;
  if (due < 0) json_object_del(s->signals->due, id);
  else json_object_set_new(s->signals->due, id, json_integer(due));
}

static void applied(void *ud, int err, const char *errmsg, json_t *res) {
  feed_req *r = ud;
  const char *id = json_string_value(json_object_get(r->object, "id"));
  if (err) {
    feed_end(r, err, errmsg, res);
    return;
  }
  /* the store worked out when a tick could next change it */
  const json_t *row = json_object_get(res, "signal");
  if (json_is_object(row)) set_due(r->s, id, json_integer_value(json_object_get(res, "due_ms")));
  else if (!r->obs) set_due(r->s, id, -1);
  size_t i;
  json_t *tr;
  json_array_foreach(json_object_get(res, "transitions"), i, tr) {
    rm_log_info("signal", "%s %s: %s -> %s", r->kind, id, json_string_value(json_object_get(tr, "from")),
                json_string_value(json_object_get(tr, "to")));
    if (strcmp(r->kind, "monitor") == 0) rm_serve_notify_transition(r->s, r->object, tr);
    rm__signals_map(r->s, r->object, tr);
  }
  feed_end(r, 0, NULL, res);
}

static void submit(feed_req *r) {
  r->config = signal_config(r->object, r->kind);
  json_t *spec = json_pack("{s:O, s:O, s:O, s:I}", "object_id", json_object_get(r->object, "id"), "name",
                           json_object_get(r->object, "name"), "config", r->config, "now_ms", (json_int_t)rm__serve_now_ms());
  if (!r->config || !spec) {
    json_decref(spec);
    feed_end(r, RM_EINVAL, "the object's signal rules are unreadable", NULL);
    return;
  }
  if (r->obs) {
    json_object_set(spec, "obs", r->obs);
    json_object_set_new(spec, "interval_ms", json_integer(r->interval_ms));
  } else {
    json_object_set_new(spec, "tick", json_pack("{s:I}", "interval_ms", (json_int_t)r->interval_ms));
  }
  rm_store_signal_apply(r->s->store, spec, applied, r);
  json_decref(spec);
}

static void schedule_got(void *ud, int err, const char *errmsg, json_t *sc) {
  feed_req *r = ud;
  if (err) rm_log_debug("signal", "schedule of monitor %s: %s", json_string_value(json_object_get(r->object, "id")),
                        errmsg);
  else if (json_is_null(json_object_get(sc, "deleted_at"))) r->interval_ms = schedule_interval(sc);
  json_decref(sc);
  submit(r);
}

void rm__signals_feed(rm_serve *s, const json_t *object, const char *kind, const json_t *obs, rm__sig_done done,
                      void *ud) {
  feed_req *r = calloc(1, sizeof *r);
  if (!r) {
    if (done) done(ud, RM_ENOMEM, "out of memory", NULL);
    return;
  }
  *r = (feed_req){.s = s, .object = json_deep_copy(object), .obs = obs ? json_deep_copy(obs) : NULL, .done = done,
                  .ud = ud};
  snprintf(r->kind, sizeof r->kind, "%s", kind);
  const json_t *cr = json_object_get(object, "criteria");
  if (json_is_integer(json_object_get(cr, "interval_s")))
    r->interval_ms = json_integer_value(json_object_get(cr, "interval_s")) * 1000;
  const char *sched = json_string_value(json_object_get(object, "schedule_id"));
  const json_t *held = sched && !r->interval_ms ? rm__sched_schedule(s, sched) : NULL;
  if (held) r->interval_ms = schedule_interval(held); /* the scheduler's copy: no store read */
  if (sched && !r->interval_ms && !held) rm_store_doc_get(s->store, "schedule", sched, schedule_got, r);
  else submit(r);
}

/* ---- finished runs ---- */

typedef struct run_obs {
  rm_serve *s;
  json_t *obs;
  char kind[16];
} run_obs;

static void run_fed(void *ud, int err, const char *errmsg, json_t *res) {
  (void)ud;
  if (err) rm_log_warn("signal", "a run's result was not recorded: %s", errmsg);
  json_decref(res);
}

static void run_object_got(void *ud, int err, const char *errmsg, json_t *doc) {
  run_obs *ro = ud;
  if (err) rm_log_warn("signal", "a finished run names %s: %s", ro->kind, errmsg);
  else if (json_is_null(json_object_get(doc, "deleted_at"))) rm__signals_feed(ro->s, doc, ro->kind, ro->obs, run_fed, NULL);
  json_decref(doc);
  json_decref(ro->obs);
  free(ro);
}

void rm_serve_signals_run(rm_serve *s, const json_t *row, const json_t *record, const char *status) {
  const json_t *trig = json_object_get(row, "trigger");
  const char *type = json_string_value(json_object_get(trig, "type"));
  const char *monitor = json_string_value(json_object_get(trig, "monitor_id"));
  const char *wf = json_string_value(json_object_get(row, "workflow_id"));
  int64_t at;
  if (!s->signals || json_is_true(json_object_get(row, "dry_run")) || json_is_true(json_object_get(record, "dry_run")))
    return;
  rm__msources_run(s, row, record);
  if (!type || strcmp(status, "cancelled") == 0) return;
  /* a run a signal started is not a signal again: one hop per event */
  bool by_hand = !monitor && wf && (strcmp(type, "api") == 0 || strcmp(type, "manual") == 0);
  if (!monitor && !by_hand) return;
  if (!rm__signals_iso_ms(json_string_value(json_object_get(record, "finished_at")), &at)) at = rm__serve_now_ms();
  run_obs *ro = calloc(1, sizeof *ro);
  if (!ro) return;
  ro->s = s;
  ro->obs = json_pack("{s:I, s:O?, s:s}", "at_ms", (json_int_t)at, "id", json_object_get(row, "run_id"), "level",
                      strcmp(status, "succeeded") == 0 ? "healthy" : status);
  snprintf(ro->kind, sizeof ro->kind, "%s", monitor ? "monitor" : "workflow");
  const json_t *held = monitor ? rm__sched_monitor(s, monitor) : NULL;
  if (held) { /* a check this server schedules: its document is at hand */
    rm__signals_feed(s, held, "monitor", ro->obs, run_fed, NULL);
    json_decref(ro->obs);
    free(ro);
    return;
  }
  rm_store_doc_get(s->store, ro->kind, monitor ? monitor : wf, run_object_got, ro);
}

/* ---- the clock ---- */

static void tick_fed(void *ud, int err, const char *errmsg, json_t *res) {
  (void)ud;
  if (err) rm_log_warn("signal", "a clock tick failed: %s", errmsg);
  json_decref(res);
}

/* A due object: a monitor, or else a workflow (its run events). */
typedef struct tick_req {
  rm_serve *s;
  char *id;
} tick_req;

static void tick_object_got(void *ud, int err, const char *errmsg, json_t *doc) {
  tick_req *t = ud;
  if (!err && json_is_null(json_object_get(doc, "deleted_at")))
    rm__signals_feed(t->s, doc, json_string_value(json_object_get(doc, "kind")), NULL, tick_fed, NULL);
  else set_due(t->s, t->id, -1);
  if (err && err != RM_ENOTFOUND) rm_log_warn("signal", "ticking %s: %s", t->id, errmsg);
  json_decref(doc);
  free(t->id);
  free(t);
}

static void tick_monitor_got(void *ud, int err, const char *errmsg, json_t *doc) {
  tick_req *t = ud;
  if (err == RM_ENOTFOUND) rm_store_doc_get(t->s->store, "workflow", t->id, tick_object_got, t);
  else tick_object_got(t, err, errmsg, doc);
}

static void clock_tick(uv_timer_t *h) {
  rm_serve *s = h->data;
  int64_t now = rm__serve_now_ms();
  const char *id;
  json_t *v;
  if (s->stopping) return;
  rm__msources_tick(s);
  json_object_foreach(s->signals->due, id, v) {
    if (json_integer_value(v) > now) continue;
    json_integer_set(v, now + RETRY_MS); /* until the store has decided */
    tick_req *t = malloc(sizeof *t);
    if (!t || !(t->id = strdup(id))) {
      free(t);
      continue;
    }
    t->s = s;
    rm_store_doc_get(s->store, "monitor", id, tick_monitor_got, t);
  }
}

/* At start every stored signal is due once: the store decides. */
static void load_page(rm_serve *s, int page);

static void loaded(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve *s = ud;
  size_t i;
  json_t *row;
  if (err) rm_log_warn("signal", "loading the signals: %s", errmsg);
  json_array_foreach(json_object_get(res, "items"), i, row)
      set_due(s, json_string_value(json_object_get(row, "object_id")), 0);
  json_int_t page = json_integer_value(json_object_get(res, "page"));
  bool more = !err && page < json_integer_value(json_object_get(res, "total_pages"));
  json_decref(res);
  if (more && !s->stopping) load_page(s, (int)page + 1);
  else s->signals->loading = false;
}

static void load_page(rm_serve *s, int page) {
  json_t *q = json_pack("{s:i, s:i, s:s}", "page", page, "page_size", LOAD_PAGE, "sort", "object_id");
  rm_store_signal_list(s->store, q, loaded, s);
  json_decref(q);
}

int rm_serve_signals_start(rm_serve *s) {
  struct rm_serve_signals *g = calloc(1, sizeof *g);
  if (!g || !(g->due = json_object())) {
    free(g);
    return -1;
  }
  g->s = s;
  s->signals = g;
  uv_timer_init(&s->loop, &g->clock);
  g->clock.data = s;
  uv_timer_start(&g->clock, clock_tick, CLOCK_MS, CLOCK_MS);
  g->loading = true;
  load_page(s, 1);
  return rm__msources_start(s);
}

void rm_serve_signals_stop(rm_serve *s) {
  if (s->signals && !uv_is_closing((uv_handle_t *)&s->signals->clock))
    uv_close((uv_handle_t *)&s->signals->clock, NULL);
}

void rm_serve_signals_free(rm_serve *s) {
  if (!s->signals) return;
  rm__msources_free(s);
  json_decref(s->signals->due);
  free(s->signals);
  s->signals = NULL;
}
