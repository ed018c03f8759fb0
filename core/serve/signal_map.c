/* Mapping rules: a signal transition starts workflows. A rule (kind
 * "mapping", docs/api.md) matches a transition when it is enabled, its
 * "to" (and "from", when given) are the transition's states, and its
 * selector -- at most one of object_id, tag (of the object) or severity
 * (of the transition) -- holds. Each matching rule queues a run of the
 * latest published version of its workflow with the rule's inputs plus
 * "signal": the transition, and the trigger
 *   {"type": "signal", "mapping_id", "object_id", "seq", "from", "to",
 *    "severity", "correlation_id"}.
 * Workflows never poll signal state: the transition is their input. Such
 * a run's outcome feeds no signal (rm_serve_signals_run), so one
 * transition starts at most one hop of runs. */
#include <stdlib.h>
#include <string.h>

#include "serve/signals_int.h"
#include "util/err.h"
#include "util/log.h"

#define MAP_PAGE 500

static bool has_tag(const json_t *tags, const char *tag) {
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0) return true;
  return false;
}

static bool same(const json_t *a, const json_t *b) { return json_is_string(a) && json_equal(a, b); }

static bool rule_matches(const json_t *rule, const json_t *object, const json_t *tr) {
  const json_t *m = json_object_get(rule, "match");
  const json_t *from = json_object_get(m, "from"), *oid = json_object_get(m, "object_id");
  const json_t *tag = json_object_get(m, "tag"), *sev = json_object_get(m, "severity");
  if (json_is_false(json_object_get(rule, "enabled")) || !same(json_object_get(m, "to"), json_object_get(tr, "to")))
    return false;
  if (from && !same(from, json_object_get(tr, "from"))) return false;
  if (oid && !same(oid, json_object_get(object, "id"))) return false;
  if (tag && !has_tag(json_object_get(object, "tags"), json_string_value(tag))) return false;
  return !sev || same(sev, json_object_get(tr, "severity"));
}

/* One rule being carried out: the workflow's document, then its version. */
typedef struct map_run {
  rm_serve *s;
  json_t *rule, *tr, *wf;
} map_run;

static void map_run_free(map_run *m) {
  json_decref(m->rule);
  json_decref(m->tr);
  json_decref(m->wf);
  free(m);
}

static const char *rule_id(const map_run *m) { return json_string_value(json_object_get(m->rule, "id")); }

static void run_created(void *ud, int err, const char *errmsg, json_t *run) {
  map_run *m = ud;
  if (err) {
    rm_log_warn("signal", "mapping %s: queueing a run failed: %s", rule_id(m), errmsg);
  } else {
    rm_log_info("signal", "mapping %s: queued run %s", rule_id(m), json_string_value(json_object_get(run, "run_id")));
    rm_serve_audit(m->s, "restmon", "mapping.trigger", "mapping", rule_id(m), NULL, NULL,
                   json_pack("{s:O, s:O, s:O, s:O}", "run_id", json_object_get(run, "run_id"), "workflow_id",
                             json_object_get(m->wf, "id"), "object_id", json_object_get(m->tr, "source_id"), "seq",
                             json_object_get(m->tr, "seq")));
  }
  json_decref(run);
  map_run_free(m);
}

static json_t *run_spec(const map_run *m, const json_t *version) {
  const json_t *tr = m->tr, *given = json_object_get(m->rule, "inputs");
  json_t *inputs = json_is_object(given) ? json_deep_copy(given) : json_object();
  json_object_set_new(inputs, "signal", json_deep_copy(tr));
  return json_pack("{s:O, s:O, s:O, s:O, s:s, s:{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O}, s:o}", "workflow_id",
                   json_object_get(m->wf, "id"), "workflow_name", json_object_get(m->wf, "name"), "workflow_version",
                   json_object_get(version, "version"), "definition", json_object_get(version, "definition"), "source",
                   "signal", "trigger", "type", "signal", "mapping_id", json_object_get(m->rule, "id"), "object_id",
                   json_object_get(tr, "source_id"), "seq", json_object_get(tr, "seq"), "from",
                   json_object_get(tr, "from"), "to", json_object_get(tr, "to"), "severity",
                   json_object_get(tr, "severity"), "correlation_id", json_object_get(tr, "correlation_id"), "inputs",
                   inputs);
}

static void version_got(void *ud, int err, const char *errmsg, json_t *version) {
  map_run *m = ud;
  json_t *spec = err ? NULL : run_spec(m, version);
  json_decref(version);
  if (!spec) {
    rm_log_warn("signal", "mapping %s: workflow %s has no published version to run%s%s", rule_id(m),
                json_string_value(json_object_get(m->wf, "id")), err ? ": " : "", err ? errmsg : "");
    map_run_free(m);
    return;
  }
  rm_store_run_create(m->s->store, spec, run_created, m);
  json_decref(spec);
}

static void workflow_got(void *ud, int err, const char *errmsg, json_t *wf) {
  map_run *m = ud;
  if (err || !json_is_null(json_object_get(wf, "deleted_at"))) {
    rm_log_warn("signal", "mapping %s: its workflow is gone%s%s", rule_id(m), err ? ": " : "", err ? errmsg : "");
    json_decref(wf);
    map_run_free(m);
    return;
  }
  m->wf = wf;
  rm_store_workflow_version(m->s->store, json_string_value(json_object_get(wf, "id")), 0, version_got, m);
}

static void start_rule(rm_serve *s, const json_t *rule, const json_t *tr) {
  map_run *m = calloc(1, sizeof *m);
  if (!m) return;
  *m = (map_run){.s = s, .rule = json_deep_copy(rule), .tr = json_deep_copy(tr)};
  rm_store_doc_get(s->store, "workflow", json_string_value(json_object_get(rule, "workflow_id")), workflow_got, m);
}

/* The rules, a page at a time. */
typedef struct map_scan {
  rm_serve *s;
  json_t *object, *tr;
  int page;
} map_scan;

static void scan_page(map_scan *sc);

static void rules_got(void *ud, int err, const char *errmsg, json_t *res) {
  map_scan *sc = ud;
  size_t i;
  json_t *rule;
  if (err) rm_log_warn("signal", "reading the mapping rules: %s", errmsg);
  json_array_foreach(json_object_get(res, "items"), i, rule) if (rule_matches(rule, sc->object, sc->tr))
      start_rule(sc->s, rule, sc->tr);
  bool more = !err && sc->page < json_integer_value(json_object_get(res, "total_pages"));
  json_decref(res);
  if (more) {
    sc->page++;
    scan_page(sc);
    return;
  }
  json_decref(sc->object);
  json_decref(sc->tr);
  free(sc);
}

static void scan_page(map_scan *sc) {
  json_t *q = json_pack("{s:i, s:i, s:s}", "page", sc->page, "page_size", MAP_PAGE, "sort", "created_at");
  rm_store_doc_list(sc->s->store, "mapping", q, rules_got, sc);
  json_decref(q);
}

void rm__signals_map(rm_serve *s, const json_t *object, const json_t *transition) {
  map_scan *sc = calloc(1, sizeof *sc);
  if (!sc) return;
  *sc = (map_scan){.s = s, .object = json_deep_copy(object), .tr = json_deep_copy(transition), .page = 1};
  scan_page(sc);
}
