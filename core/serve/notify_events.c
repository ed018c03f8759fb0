/* What is notified, and with which message:
 *
 *  - Workflow-level notifications. A workflow document may hold
 *    "notifications": [{"on": ["failure", "degraded", "success",
 *    "cancelled"], "channel_id", "variables": {"name": "{{vars.x}}"}}].
 *    When a run of it ends (not a dry run) each entry whose "on" names
 *    the run's outcome notifies its channel. The variables are rendered
 *    with the run's inputs and variables (engine/template.h) and become
 *    the message's fields; one that cannot be rendered is null, and why
 *    is in event.variable_errors.
 *  - Signal transitions. A monitor document may hold "notify":
 *    {"channels": [ids], "on"?: [states], "escalation"?: [...]}: each
 *    transition to a state in "on" (all when absent) notifies the
 *    channels; a transition to failed also starts the escalation policy
 *    (escalation.c), any other stops it.
 *
 * Messages follow notify/notify.h: {title, text, severity, fields,
 * event}; the event is what webhook channels receive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template.h"
#include "serve/notify_int.h"
#include "util/err.h"
#include "util/log.h"

/* ---- workflow-level ---- */

typedef struct run_end {
  rm_serve *s;
  json_t *event;   /* rm_serve_run_event's, scrubbed */
  json_t *inputs, *vars;
  char status[16]; /* succeeded, failed, ... */
} run_end;

static void run_end_free(run_end *e) {
  json_decref(e->event);
  json_decref(e->inputs);
  json_decref(e->vars);
  free(e);
}

/* The "on" word of a run status. */
static const char *outcome_word(const char *status) {
  static const char *const map[][2] = {
      {"succeeded", "success"}, {"failed", "failure"}, {"degraded", "degraded"}, {"cancelled", "cancelled"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], status) == 0) return map[i][1];
  return NULL;
}

static const char *run_severity(const char *status) {
  return strcmp(status, "failed") == 0 ? "critical" : strcmp(status, "degraded") == 0 ? "warning" : "info";
}

static bool lists(const json_t *arr, const char *word) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (word && json_is_string(v) && strcmp(json_string_value(v), word) == 0) return true;
  return false;
}

/* The variables rendered one by one into fields; problems into errors. */
static json_t *render_variables(const run_end *e, const json_t *vars, json_t *errors) {
  const json_t *run = json_object_get(e->event, "run");
  rm_template_ctx ctx = {.inputs = e->inputs, .vars = e->vars,
                         .run_id = json_string_value(json_object_get(run, "run_id"))};
  json_t *fields = json_object();
  const char *name;
  json_t *tmpl;
  json_object_foreach((json_t *)vars, name, tmpl) {
    char err[400] = "", path[160];
    snprintf(path, sizeof path, "variables.%.100s", name);
    json_t *v = rm_template_render(tmpl, path, &ctx, err, sizeof err);
    if (!v) json_array_append_new(errors, json_string(err));
    json_object_set_new(fields, name, v ? v : json_null());
  }
  return fields;
}

static json_t *run_message(const run_end *e, const json_t *wf, const json_t *entry) {
  const json_t *run = json_object_get(e->event, "run");
  const char *name = json_string_value(json_object_get(wf, "name"));
  const char *reason = json_string_value(json_object_get(run, "reason"));
  char title[300], text[1200];
  snprintf(title, sizeof title, "Workflow %.200s %s", name ? name : "?", e->status);
  snprintf(text, sizeof text, "Run %s of workflow %.200s (version %lld) ended %s%s%.700s",
           json_string_value(json_object_get(run, "run_id")), name ? name : "?",
           (long long)json_integer_value(json_object_get(run, "workflow_version")), e->status, reason ? ": " : ".",
           reason ? reason : "");
  json_t *errors = json_array();
  json_t *fields = render_variables(e, json_object_get(entry, "variables"), errors);
  json_t *event = json_deep_copy(e->event);
  json_object_set(event, "variables", fields);
  if (json_array_size(errors)) json_object_set(event, "variable_errors", errors);
  json_decref(errors);
  return json_pack("{s:s, s:s, s:s, s:o, s:o}", "title", title, "text", text, "severity", run_severity(e->status),
                   "fields", fields, "event", event);
}

static void workflow_got(void *ud, int err, const char *errmsg, json_t *wf) {
  run_end *e = ud;
  if (err && err != RM_ENOTFOUND) rm_log_warn("notify", "reading a workflow for its notifications failed: %s", errmsg);
  const char *word = outcome_word(e->status);
  size_t i;
  json_t *entry;
  bool live = !err && json_is_null(json_object_get(wf, "deleted_at"));
  json_array_foreach(live ? json_object_get(wf, "notifications") : NULL, i, entry) {
    if (!lists(json_object_get(entry, "on"), word)) continue;
    const json_t *run = json_object_get(e->event, "run");
    json_t *meta = json_pack("{s:s, s:s, s:O}", "event", json_string_value(json_object_get(e->event, "event")),
                             "object_kind", "workflow", "run_id", json_object_get(run, "run_id"));
    rm__notify_dispatch(e->s, wf, meta, run_message(e, wf, entry),
                        json_pack("[O]", json_object_get(entry, "channel_id")));
  }
  json_decref(wf);
  run_end_free(e);
}

void rm_serve_notify_run(rm_serve *s, const json_t *row, const json_t *record, const char *status) {
  const char *wf = json_string_value(json_object_get(row, "workflow_id"));
  if (s->stopping || !s->notify || !wf || !status || !outcome_word(status) ||
      json_is_true(json_object_get(row, "dry_run")))
    return;
  run_end *e = calloc(1, sizeof *e);
  if (!e || !(e->event = rm_serve_run_event(row, record, status))) {
    free(e);
    return;
  }
  rm_secrets_scrub_json(s->secrets, e->event);
  e->s = s;
  snprintf(e->status, sizeof e->status, "%s", status);
  const json_t *in = json_object_get(record, "inputs"), *vars = json_object_get(record, "vars");
  e->inputs = json_is_object(in) ? json_deep_copy(in) : json_deep_copy(json_object_get(row, "inputs"));
  e->vars = json_is_object(vars) ? json_deep_copy(vars) : json_object();
  if (!json_is_object(e->inputs)) {
    json_decref(e->inputs);
    e->inputs = json_object();
  }
  rm_store_doc_get(s->store, "workflow", wf, workflow_got, e);
}

/* ---- signal transitions ---- */

/* "failed" -> "Failed". */
static void state_title(char *out, size_t n, const char *state) {
  snprintf(out, n, "%s", state ? state : "?");
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = (char)(out[0] - 'a' + 'A');
}

json_t *rm__notify_transition_message(const json_t *monitor, const json_t *tr, const char *kind, const char *extra) {
  const char *name = json_string_value(json_object_get(monitor, "name"));
  const char *reason = json_string_value(json_object_get(tr, "reason"));
  const char *to = json_string_value(json_object_get(tr, "to")), *from = json_string_value(json_object_get(tr, "from"));
  char title[300], text[1400], ft[32], tt[32], ev[64];
  state_title(ft, sizeof ft, from);
  state_title(tt, sizeof tt, to);
  snprintf(title, sizeof title, "%s%.200s is %s", extra ? "[escalation] " : "", name ? name : "?", tt);
  snprintf(text, sizeof text, "Monitor %.200s went from %s to %s%s%.700s%s%.300s", name ? name : "?", ft, tt,
           reason ? ": " : ".", reason ? reason : "", extra ? " " : "", extra ? extra : "");
  snprintf(ev, sizeof ev, "%s.%.40s", kind, to ? to : "?");
  json_t *fields = json_pack("{s:s?, s:s?, s:s?, s:s?, s:O?}", "monitor", name, "from", from, "to", to, "reason",
                             reason, "correlation_id", json_object_get(tr, "correlation_id"));
  json_t *event = json_pack("{s:s, s:O?, s:{s:O?, s:O?, s:O?, s:O?}, s:O}", "event", ev, "at", json_object_get(tr, "at"),
                            "monitor", "id", json_object_get(monitor, "id"), "name", json_object_get(monitor, "name"),
                            "type", json_object_get(monitor, "type"), "tags", json_object_get(monitor, "tags"),
                            "transition", tr);
  const char *sev = json_string_value(json_object_get(tr, "severity"));
  return json_pack("{s:s, s:s, s:s, s:o, s:o}", "title", title, "text", text, "severity", sev ? sev : "warning",
                   "fields", fields, "event", event);
}

void rm_serve_notify_transition(rm_serve *s, const json_t *monitor, const json_t *tr) {
  if (s->stopping || !s->notify || !json_is_object(monitor) || !json_is_object(tr)) return;
  const json_t *notify = json_object_get(monitor, "notify");
  const json_t *on = json_object_get(notify, "on");
  const char *to = json_string_value(json_object_get(tr, "to"));
  if (json_array_size(json_object_get(notify, "channels")) && to && (!on || lists(on, to))) {
    char ev[64];
    snprintf(ev, sizeof ev, "signal.%.40s", to);
    json_t *meta = json_pack("{s:s, s:s}", "event", ev, "object_kind", "monitor");
    rm__notify_dispatch(s, monitor, meta, rm__notify_transition_message(monitor, tr, "signal", NULL),
                        json_deep_copy(json_object_get(notify, "channels")));
  }
  rm__notify_escalation_track(s, monitor, tr);
}
