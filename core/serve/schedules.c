/* The server's scheduler: schedules and check monitors on an rm_sched.
 *
 * At start the schedule documents, the check monitors and the stored last
 * fire time of each monitor are loaded; each check monitor becomes an item
 * following its schedule, with the schedule's missed-fire policy for the
 * fires that passed while the server was down. The API's write hook, and
 * the change feed for writes through other servers (def_sync.c), keep
 * them current: a changed schedule re-plans every check that follows it
 * (the monitors are not touched), a disabled or deleted one stops them.
 *
 * A fire starts a run of the check (checks.c) with trigger {"type":
 * "schedule", monitor_id, schedule_id, scheduled_at, fired_at,
 * lateness_ms, catch_up}. It is skipped, and counted, while the monitor's
 * previous scheduled run has not finished (a slow target does not pile
 * up runs; a run unfinished for longer than it could take is forgotten)
 * and while a maintenance window suppresses the check.
 *
 * Several servers on one store: each runs every check's schedule, and
 * each fire claims (monitor, scheduled time) in the store together with
 * creating its run (rm_store_check_fire, a compare-and-set of the last
 * fire time), so exactly one server runs it; the others count it as
 * "elsewhere". The claim is also the fire's last fire time; only the
 * fires a maintenance window suppressed are written apart, in one batch
 * per FLUSH_MS and at stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/admin.h"
#include "serve/sched_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/iso_time.h"

#define FLUSH_MS 1000
#define LOAD_PAGE 500
#define STALE_BASE_MS (10 * 60 * 1000)

/* ---- small helpers ---- */

json_t *rm__sched_iso(int64_t ms) {
  char b[32];
  rm_iso_ms(ms, b);
  return json_string(b);
}

static uint64_t mono_ms(const rm_serve_sched *ss) { return uv_now(&ss->s->loop); }

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void count(rm_serve_sched *ss, const char *outcome) {
  const char *v[] = {outcome};
  if (ss->m_checks) rm_metric_add(ss->m_checks, v, 1);
}

/* ---- schedule documents ---- */

/* "every" counts from the schedule's creation, so its phase is stable
 * across restarts and edits. */
static int64_t every_start_ms(const json_t *doc) {
  int64_t t = 0;
  const char *at = str(doc, "created_at");
  return at && rm__serve_iso_to_unix(at, &t) == 0 ? t * 1000 : 0;
}

static int dates_from_doc(const json_t *at, const char *tz, rm_schedule *out, char *err, size_t errlen) {
  size_t n = json_array_size(at);
  const char **v = calloc(n ? n : 1, sizeof *v);
  if (!v) return RM_ENOMEM;
  for (size_t i = 0; i < n; i++) v[i] = json_string_value(json_array_get(at, i));
  int rc = rm_cron_dates(out, v, n, tz, err, errlen);
  free(v);
  return rc;
}

int rm__sched_from_doc(const json_t *doc, rm_schedule *out, char *err, size_t errlen) {
  static const char *const units[] = {"seconds", "minutes", "hours", "days"};
  const char *tz = str(doc, "timezone"), *cron = str(doc, "cron");
  const json_t *every = json_object_get(doc, "every"), *at = json_object_get(doc, "at");
  memset(out, 0, sizeof *out);
  if (cron) return rm_cron_parse(out, cron, tz, err, errlen);
  if (json_is_array(at)) return dates_from_doc(at, tz, out, err, errlen);
  for (int u = 0; json_is_object(every) && u < 4; u++) {
    const json_t *n = json_object_get(every, units[u]);
    if (json_is_integer(n))
      return rm_cron_every(out, json_integer_value(n), (enum rm_sched_unit)(u + 1), every_start_ms(doc), tz, err,
                           errlen);
  }
  snprintf(err, errlen, "the schedule has none of every, cron and at");
  return RM_EINVAL;
}

static enum rm_sched_missed policy_of(const rm_serve_sched *ss, const char *schedule_id) {
  int p = rm_sched_missed_parse(str(json_object_get(ss->schedules, schedule_id), "missed_policy"));
  return p > 0 ? (enum rm_sched_missed)p : RM_SCHED_MISSED_ONCE;
}

/* Sets the schedule on the scheduler (re-planning its checks), or removes
 * it while it is disabled or cannot be read. */
static void schedule_apply(rm_serve_sched *ss, const char *id, const json_t *doc) {
  char err[300] = "";
  rm_schedule sc;
  bool on = !json_is_false(json_object_get(doc, "enabled"));
  int rc = on ? rm__sched_from_doc(doc, &sc, err, sizeof err) : RM_ENOTFOUND;
  if (rc == 0) rc = rm_sched_set_schedule(ss->sched, id, &sc, err, sizeof err);
  if (on) rm_cron_free(&sc);
  if (rc == 0) return;
  if (on) rm_log_warn("sched", "schedule %s ('%s'): %s: its checks do not fire", id, str(doc, "name"), err);
  rm_sched_remove_schedule(ss->sched, id);
}

/* ---- check monitors ---- */

static bool is_check(const json_t *doc) {
  const char *t = str(doc, "type");
  return t && strcmp(t, "check") == 0 && str(doc, "schedule_id");
}

static void monitor_drop(rm_serve_sched *ss, const char *id, bool forget) {
  rm__check_forget(ss, "monitor", id);
  if (!json_object_get(ss->monitors, id)) return;
  rm_sched_remove(ss->sched, id);
  json_object_del(ss->monitors, id);
  json_object_del(ss->inflight, id);
  json_object_del(ss->dirty, id);
  if (forget) rm_store_sched_state_delete(ss->s->store, id, NULL, NULL); /* the store runs it before it closes */
}

/* A new item fires from its schedule; one whose schedule changed has
 * missed nothing; at start the stored last fire decides what was missed. */
static void monitor_apply(rm_serve_sched *ss, const char *id, const json_t *doc, const json_t *old) {
  const char *sid = str(doc, "schedule_id");
  bool moved = old && strcmp(str(old, "schedule_id"), sid) != 0;
  json_object_set_new(ss->monitors, id, json_deep_copy(doc));
  if (old && !moved) return;
  if (moved) rm_sched_remove(ss->sched, id);
  const json_t *last = json_object_get(ss->last, id);
  int64_t last_ms = moved ? rm__serve_now_ms() : json_is_integer(last) ? json_integer_value(last) : -1;
  int rc = rm_sched_add(ss->sched, id, sid, true, last_ms, policy_of(ss, sid));
  if (rc) rm_log_warn("sched", "monitor %s: cannot be scheduled: %s", id, rm_strerror(rc));
}

static json_int_t version_of(const json_t *doc) { return json_integer_value(json_object_get(doc, "version")); }

/* Idempotent: a document already known at this or a later version is
 * left alone (the start-up listing may read one the API just changed). */
static void sync_doc(rm_serve_sched *ss, const char *kind, const json_t *doc) {
  const char *id = str(doc, "id");
  bool sched = strcmp(kind, "schedule") == 0;
  json_t *old = json_object_get(sched ? ss->schedules : ss->monitors, id);
  if (!id || (old && version_of(old) >= version_of(doc))) return;
  if (sched) {
    json_object_set_new(ss->schedules, id, json_deep_copy(doc));
    schedule_apply(ss, id, doc);
  } else if (!is_check(doc)) {
    monitor_drop(ss, id, false);
  } else {
    json_incref(old);
    monitor_apply(ss, id, doc, old);
    json_decref(old);
  }
}

void rm_serve_sched_def_changed(rm_serve *s, const char *kind, const char *id, const json_t *doc) {
  rm_serve_sched *ss = s->sched;
  if (!ss || ss->stopped || !kind || !id) return;
  if (strcmp(kind, "task") == 0 || strcmp(kind, "workflow") == 0) {
    rm__check_forget(ss, kind, id);
    return;
  }
  bool sched = strcmp(kind, "schedule") == 0;
  if (!sched && strcmp(kind, "monitor") != 0) return;
  if (doc) {
    sync_doc(ss, kind, doc);
  } else if (sched) {
    json_object_del(ss->schedules, id);
    rm_sched_remove_schedule(ss->sched, id);
  } else {
    monitor_drop(ss, id, true);
  }
}

/* ---- firing ---- */

/* Whether the monitor's previous scheduled run is still unfinished and
 * young enough to be alive: every attempt of a few tasks, plus margin. */
static bool busy(rm_serve_sched *ss, const char *id, const json_t *mon) {
  const json_t *f = json_object_get(ss->inflight, id);
  if (!f) return false;
  json_int_t timeout = json_integer_value(json_object_get(mon, "timeout_ms"));
  json_int_t tries = json_integer_value(json_object_get(mon, "retries")) + 1;
  uint64_t stale = STALE_BASE_MS + (uint64_t)(timeout > 0 ? timeout : 10000) * (uint64_t)tries;
  if (mono_ms(ss) - (uint64_t)json_integer_value(json_object_get(f, "since")) < stale) return true;
  rm_log_warn("sched", "monitor %s: its run %s never reported back; firing again", id, str(f, "run_id"));
  json_object_del(ss->inflight, id);
  return false;
}

static bool suppressed(rm_serve_sched *ss, const char *id, int64_t now_ms) {
  const json_t *u = json_object_get(ss->suppressed, id);
  if (!u) return false;
  if (now_ms < json_integer_value(u)) return true;
  json_object_del(ss->suppressed, id);
  return false;
}

static void maybe_free(rm_serve_sched *ss);

typedef struct fire_job {
  rm_serve_sched *ss;
  bool tracked; /* an on-time fire: its run is the monitor's in-flight one */
  char id[];
} fire_job;

static void queued(void *ud, int err, const char *errmsg, json_t *run) {
  fire_job *fj = ud;
  rm_serve_sched *ss = fj->ss;
  json_t *f = fj->tracked ? json_object_get(ss->inflight, fj->id) : NULL;
  ss->pending--;
  if (err || !run) {
    if (err) rm_log_warn("sched", "monitor %s: the check was not queued: %s", fj->id, errmsg);
    count(ss, err ? "failed" : "elsewhere");
    if (f) json_object_del(ss->inflight, fj->id);
  } else {
    count(ss, "queued");
    if (f) json_object_set(f, "run_id", json_object_get(run, "run_id"));
  }
  json_decref(run);
  free(fj);
  maybe_free(ss);
}

static json_t *fire_trigger(const rm_sched_fire *f, const json_t *mon) {
  return json_pack("{s:s, s:s, s:O, s:o, s:o, s:f, s:b}", "type", "schedule", "monitor_id", f->key, "schedule_id",
                   json_object_get(mon, "schedule_id"), "scheduled_at", rm__sched_iso(f->scheduled_ms), "fired_at",
                   rm__sched_iso(f->actual_ms), "lateness_ms", (double)f->lateness_us / 1000.0, "catch_up",
                   f->catch_up);
}

static void on_fire(const rm_sched_fire *f, void *ud) {
  rm_serve_sched *ss = ud;
  const json_t *mon = json_object_get(ss->monitors, f->key);
  if (!mon || ss->stopped) return;
  if (suppressed(ss, f->key, f->actual_ms)) {
    json_object_set_new(ss->dirty, f->key, json_integer(f->catch_up ? f->actual_ms : f->scheduled_ms));
    count(ss, "suppressed");
    return;
  }
  if (!f->catch_up && busy(ss, f->key, mon)) { /* catch-ups neither wait nor hold up on-time fires */
    count(ss, "overlap");
    return;
  }
  size_t n = strlen(f->key);
  fire_job *fj = malloc(sizeof *fj + n + 1);
  json_t *trigger = fire_trigger(f, mon);
  if (!fj || !trigger) {
    free(fj);
    json_decref(trigger);
    count(ss, "failed");
    return;
  }
  fj->ss = ss;
  fj->tracked = !f->catch_up;
  memcpy(fj->id, f->key, n + 1);
  if (fj->tracked) json_object_set_new(ss->inflight, f->key, json_pack("{s:I}", "since", (json_int_t)mono_ms(ss)));
  ss->pending++;
  rm__check_start(ss->s, mon, trigger, f->scheduled_ms, queued, fj);
}

void rm_serve_sched_run_finished(rm_serve *s, const json_t *row) {
  rm_serve_sched *ss = s->sched;
  const json_t *tr = json_object_get(row, "trigger");
  const char *mid = str(tr, "monitor_id"), *type = str(tr, "type");
  if (!ss || !mid || !type || strcmp(type, "schedule") != 0) return;
  const char *want = str(json_object_get(ss->inflight, mid), "run_id"), *got = str(row, "run_id");
  if (want && got && strcmp(want, got) == 0) json_object_del(ss->inflight, mid);
}

const json_t *rm__sched_monitor(rm_serve *s, const char *id) {
  return s->sched && id ? json_object_get(s->sched->monitors, id) : NULL;
}

const json_t *rm__sched_schedule(rm_serve *s, const char *id) {
  return s->sched && id ? json_object_get(s->sched->schedules, id) : NULL;
}

void rm_serve_sched_suppress(rm_serve *s, const char *monitor_id, int64_t until_ms) {
  rm_serve_sched *ss = s->sched;
  if (!ss || !monitor_id) return;
  if (until_ms > 0) json_object_set_new(ss->suppressed, monitor_id, json_integer(until_ms));
  else json_object_del(ss->suppressed, monitor_id);
}

int rm_serve_sched_metrics(rm_serve *s, rm_buf *out) {
  return s->sched && s->sched->sched ? rm_sched_metrics_render(s->sched->sched, out) : 0;
}

/* ---- last fire times ---- */

static void flushed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve_sched *ss = ud;
  json_decref(res);
  ss->flushing = false;
  ss->pending--;
  if (err) rm_log_warn("sched", "writing the last fire times: %s", errmsg);
  maybe_free(ss);
}

static void flush(rm_serve_sched *ss) {
  if (ss->flushing || json_object_size(ss->dirty) == 0) return;
  json_t *items = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(ss->dirty, k, v) json_array_append_new(items, json_pack("{s:s, s:O}", "item", k, "last_fire_ms", v));
  json_object_clear(ss->dirty);
  ss->flushing = true;
  ss->pending++;
  rm_store_sched_state_put(ss->s->store, items, flushed, ss);
  json_decref(items);
}

static void flush_tick(uv_timer_t *t) { flush(t->data); }

/* ---- start and stop ---- */

static int load_wait(rm_serve_sched *ss, rm__serve_waiter *w, const char *what) {
  rm__serve_wait(ss->s, w);
  if (!w->err) return 0;
  fprintf(stderr, "restmon serve: scheduler: reading %s: %s\n", what, w->errmsg);
  return -1;
}

static int load_kind(rm_serve_sched *ss, const char *kind) {
  for (int page = 1;; page++) {
    rm__serve_waiter w = {0};
    json_t *q = json_pack("{s:i, s:i, s:s}", "page", page, "page_size", LOAD_PAGE, "sort", "created_at");
    rm_store_doc_list(ss->s->store, kind, q, rm__serve_wait_cb, &w);
    json_decref(q);
    if (load_wait(ss, &w, kind) != 0) return -1;
    const json_t *items = json_object_get(w.res, "items"), *d;
    size_t i, n = json_array_size(items);
    json_array_foreach(items, i, d) sync_doc(ss, kind, d);
    json_decref(w.res);
    if (n < LOAD_PAGE) return 0;
  }
}

static int load(rm_serve_sched *ss) {
  rm__serve_waiter w = {0};
  rm_store_sched_state_all(ss->s->store, rm__serve_wait_cb, &w);
  if (load_wait(ss, &w, "the last fire times") != 0) return -1;
  ss->last = w.res;
  int rc = load_kind(ss, "schedule");
  if (rc == 0) rc = load_kind(ss, "monitor");
  json_decref(ss->last);
  ss->last = NULL;
  return rc;
}

static void sched_free(rm_serve_sched *ss) {
  json_decref(ss->sources);
  json_decref(ss->specs);
  json_decref(ss->schedules);
  json_decref(ss->monitors);
  json_decref(ss->last);
  json_decref(ss->dirty);
  json_decref(ss->inflight);
  json_decref(ss->suppressed);
  rm_tz_registry_free(ss->tzs);
  free(ss);
}

static void maybe_free(rm_serve_sched *ss) {
  if (!ss->stopped || ss->pending > 0) return;
  if (ss->s->sched == ss) ss->s->sched = NULL;
  sched_free(ss);
}

void rm__sched_pending_done(rm_serve_sched *ss) {
  ss->pending--;
  maybe_free(ss);
}

static void timer_closed(uv_handle_t *h) { rm__sched_pending_done(h->data); }
static void sched_closed(void *ud) { rm__sched_pending_done(ud); }

static rm_serve_sched *sched_new(rm_serve *s) {
  static const char *const outcome[] = {"outcome", NULL};
  rm_serve_sched *ss = calloc(1, sizeof *ss);
  if (!ss) return NULL;
  ss->s = s;
  ss->schedules = json_object(), ss->monitors = json_object(), ss->dirty = json_object();
  ss->inflight = json_object(), ss->suppressed = json_object();
  ss->sources = json_object(), ss->specs = json_object();
  ss->tzs = rm_tz_registry_new(NULL);
  ss->m_checks = rm_metrics_counter(&s->metrics, "restmon_checks_total",
                                    "Scheduled check fires by outcome: queued (this server took the fire and "
                                    "created its run), elsewhere (another server on the store took it), overlap "
                                    "(the previous run had not finished), suppressed (maintenance), failed (not "
                                    "queued).",
                                    outcome);
  if (!ss->schedules || !ss->monitors || !ss->dirty || !ss->inflight || !ss->suppressed || !ss->sources ||
      !ss->specs || !ss->tzs ||
      rm_sched_new(&ss->sched, &s->loop, ss->tzs, on_fire, ss) != 0) {
    sched_free(ss);
    return NULL;
  }
  uv_timer_init(&s->loop, &ss->flush);
  ss->flush.data = ss;
  return ss;
}

int rm_serve_sched_start(rm_serve *s) {
  rm_serve_sched *ss = sched_new(s);
  if (!ss) {
    fprintf(stderr, "restmon serve: scheduler: out of memory\n");
    return -1;
  }
  s->sched = ss;
  if (load(ss) != 0) {
    rm_serve_sched_stop(s);
    return -1;
  }
  uv_timer_start(&ss->flush, flush_tick, FLUSH_MS, FLUSH_MS);
  rm_sched_stats st;
  rm_sched_get_stats(ss->sched, &st);
  rm_log_info("sched", "%zu check(s) on %zu schedule(s), %zu planned", st.items, st.schedules, st.planned);
  return 0;
}

void rm_serve_sched_stop(rm_serve *s) {
  rm_serve_sched *ss = s->sched;
  if (!ss || ss->stopped) return;
  ss->stopped = true;
  ss->flushing = false; /* one last write, beside one in flight */
  flush(ss);
  ss->pending += 2;
  uv_close((uv_handle_t *)&ss->flush, timer_closed);
  rm_sched_close(ss->sched, sched_closed);
  ss->sched = NULL;
}
