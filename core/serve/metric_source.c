/* Metric values extracted from runs: a metric monitor with
 *   "source": {"workflow_id", "variable", "task"?}
 * observes, each time a run of that workflow finishes (any trigger,
 * whatever its outcome, never a dry run), the run's extracted variable --
 * from the run's vars, or with "task" from the values that step extracted
 * -- when it is a number or a numeric string. The observation carries the
 * run id as its evidence id and the run's finished time; a missing or
 * non-numeric value is logged at warn and not observed.
 *
 * A finished run must not read every monitor: the monitors with a source
 * are kept here by workflow id, reloaded when a monitor is written or
 * deleted through this server's API and every RELOAD_TICKS clock ticks
 * (another server may have changed one). The monitor itself is read again
 * before it is fed, so a stale entry never feeds old rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serve/signals_int.h"
#include "util/err.h"
#include "util/log.h"

#define PAGE 500
#define RELOAD_TICKS 60 /* clock ticks (seconds) between reloads */

struct rm__msources {
  json_t *by_wf; /* workflow id -> [{"id": monitor id, "source": {...}}] */
  json_t *next;  /* the same, while a reload is under way */
  bool loading, again;
  unsigned ticks;
};

/* ---- the cache ---- */

static struct rm__msources *of(rm_serve *s) { return s->signals ? s->signals->sources : NULL; }

static void add_monitor(json_t *by_wf, const json_t *doc) {
  const json_t *src = json_object_get(doc, "source");
  const char *wf = json_string_value(json_object_get(src, "workflow_id"));
  const char *type = json_string_value(json_object_get(doc, "type"));
  if (!wf || !type || strcmp(type, "metric") != 0 || !json_is_null(json_object_get(doc, "deleted_at"))) return;
  json_t *list = json_object_get(by_wf, wf);
  if (!list) json_object_set_new(by_wf, wf, list = json_array());
  json_array_append_new(list, json_pack("{s:O, s:O}", "id", json_object_get(doc, "id"), "source", src));
}

static void load_page(rm_serve *s, int page);

static void load_end(rm_serve *s, struct rm__msources *m, bool ok) {
  if (ok) {
    json_decref(m->by_wf);
    m->by_wf = m->next;
  } else {
    json_decref(m->next);
  }
  m->next = NULL;
  m->loading = false;
  if (m->again && !s->stopping) {
    m->again = false;
    rm__msources_reload(s);
  }
}

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve *s = ud;
  struct rm__msources *m = of(s);
  size_t i;
  json_t *doc;
  if (!m) {
    json_decref(res);
    return;
  }
  if (err) rm_log_warn("signal", "loading the metric monitors with a source: %s", errmsg);
  json_array_foreach(json_object_get(res, "items"), i, doc) add_monitor(m->next, doc);
  json_int_t page = json_integer_value(json_object_get(res, "page"));
  bool more = !err && page < json_integer_value(json_object_get(res, "total_pages"));
  json_decref(res);
  if (more && !s->stopping) load_page(s, (int)page + 1);
  else load_end(s, m, !err && !s->stopping);
}

static void load_page(rm_serve *s, int page) {
  json_t *q = json_pack("{s:i, s:i, s:s}", "page", page, "page_size", PAGE, "sort", "created_at");
  rm_store_doc_list(s->store, "monitor", q, listed, s);
  json_decref(q);
}

void rm__msources_reload(rm_serve *s) {
  struct rm__msources *m = of(s);
  if (!m || s->stopping) return;
  if (m->loading) {
    m->again = true; /* the pass under way may have read the old document */
    return;
  }
  if (!(m->next = json_object())) return;
  m->loading = true;
  load_page(s, 1);
}

int rm__msources_start(rm_serve *s) {
  struct rm__msources *m = calloc(1, sizeof *m);
  if (!m || !(m->by_wf = json_object())) {
    free(m);
    return -1;
  }
  s->signals->sources = m;
  rm__msources_reload(s);
  return 0;
}

void rm__msources_tick(rm_serve *s) {
  struct rm__msources *m = of(s);
  if (m && ++m->ticks % RELOAD_TICKS == 0) rm__msources_reload(s);
}

void rm__msources_free(rm_serve *s) {
  struct rm__msources *m = of(s);
  if (!m) return;
  json_decref(m->by_wf);
  json_decref(m->next);
  free(m);
  s->signals->sources = NULL;
}

void rm_serve_signals_def_changed(rm_serve *s, const char *kind) {
  if (kind && strcmp(kind, "monitor") == 0) rm__msources_reload(s);
}

/* ---- reading a run ---- */

/* The value the task step extracted last as var (its latest attempt that
 * extracted it), or NULL. */
static const json_t *step_value(const json_t *record, const char *task, const char *var) {
  const json_t *steps = json_object_get(record, "steps");
  for (size_t i = json_array_size(steps); i-- > 0;) {
    const json_t *st = json_array_get(steps, i);
    const char *name = json_string_value(json_object_get(st, "task"));
    if (!name || strcmp(name, task) != 0) continue;
    const json_t *atts = json_object_get(st, "attempts");
    for (size_t a = json_array_size(atts); a-- > 0;) {
      const json_t *v = json_object_get(json_object_get(json_array_get(atts, a), "extracted"), var);
      if (v) return v;
    }
  }
  return NULL;
}

/* A number, or a string that is one whole ("42", " 3.5e2 "): true and
 * *out; false for anything else (booleans, "12ms", NaN, infinities). */
static bool numeric(const json_t *v, double *out) {
  if (json_is_number(v)) *out = json_number_value(v);
  else if (json_is_string(v)) {
    const char *str = json_string_value(v);
    char *end;
    *out = strtod(str, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == str || *end || !*str) return false;
  } else return false;
  return isfinite(*out);
}

/* ---- feeding ---- */

typedef struct src_obs {
  rm_serve *s;
  json_t *source, *obs;
  char *monitor_id;
} src_obs;

static void src_obs_free(src_obs *o) {
  json_decref(o->source);
  json_decref(o->obs);
  free(o->monitor_id);
  free(o);
}

static void fed(void *ud, int err, const char *errmsg, json_t *res) {
  src_obs *o = ud;
  if (err) rm_log_warn("signal", "metric monitor %s: the value of run %s was not recorded: %s", o->monitor_id,
                       json_string_value(json_object_get(o->obs, "id")), errmsg);
  json_decref(res);
  src_obs_free(o);
}

/* The monitor as stored now: still a live metric monitor with the same
 * source, or the cached entry was stale and nothing is observed. */
static void monitor_got(void *ud, int err, const char *errmsg, json_t *doc) {
  src_obs *o = ud;
  const char *type = json_string_value(json_object_get(doc, "type"));
  bool same = !err && json_is_null(json_object_get(doc, "deleted_at")) && type && strcmp(type, "metric") == 0 &&
              json_equal(json_object_get(doc, "source"), o->source);
  if (err && err != RM_ENOTFOUND) rm_log_warn("signal", "metric monitor %s: %s", o->monitor_id, errmsg);
  if (same) rm__signals_feed(o->s, doc, "monitor", o->obs, fed, o);
  else src_obs_free(o);
  json_decref(doc);
}

static void observe(rm_serve *s, const json_t *entry, const json_t *record, const char *run_id, int64_t at_ms) {
  const char *mid = json_string_value(json_object_get(entry, "id"));
  const json_t *src = json_object_get(entry, "source");
  const char *var = json_string_value(json_object_get(src, "variable"));
  const char *task = json_string_value(json_object_get(src, "task"));
  if (!mid || !var) return;
  const json_t *v = task ? step_value(record, task, var) : json_object_get(json_object_get(record, "vars"), var);
  double value;
  if (!numeric(v, &value)) {
    rm_log_warn("signal", "metric monitor %s: run %s has %s variable '%s'%s%s%s: no value observed", mid, run_id,
                v ? "a non-numeric" : "no", var, task ? " (step '" : "", task ? task : "", task ? "')" : "");
    return;
  }
  src_obs *o = calloc(1, sizeof *o);
  if (!o) return;
  *o = (src_obs){.s = s, .source = json_deep_copy(src), .monitor_id = strdup(mid),
                 .obs = json_pack("{s:I, s:s, s:f}", "at_ms", (json_int_t)at_ms, "id", run_id, "value", value)};
  if (!o->source || !o->monitor_id || !o->obs) {
    src_obs_free(o);
    return;
  }
  rm_store_doc_get(s->store, "monitor", mid, monitor_got, o);
}

void rm__msources_run(rm_serve *s, const json_t *row, const json_t *record) {
  struct rm__msources *m = of(s);
  const char *wf = json_string_value(json_object_get(row, "workflow_id"));
  const char *run_id = json_string_value(json_object_get(row, "run_id"));
  const json_t *list = m && wf ? json_object_get(m->by_wf, wf) : NULL;
  if (!json_array_size(list) || !run_id) return;
  int64_t at;
  if (!rm__signals_iso_ms(json_string_value(json_object_get(record, "finished_at")), &at)) at = rm__serve_now_ms();
  size_t i;
  const json_t *entry;
  json_array_foreach(list, i, entry) observe(s, entry, record, run_id, at);
}
