/* What is notified, and with which message:
 *
 *  - The end of a run (not a dry run), to two kinds of receivers, one
 *    delivery per channel: first the workflow-level notifications -- a
 *    workflow document may hold "notifications": [{"on": ["failure",
 *    "degraded", "success", "cancelled"], "channel_id", "variables":
 *    {"name": "{{vars.x}}"}}], and each entry whose "on" names the run's
 *    outcome notifies its channel; the variables are rendered with the
 *    run's inputs and variables (engine/template.h) and become the
 *    message's fields (one that cannot be rendered is null, and why is in
 *    event.variable_errors) -- then the run webhooks (webhooks.c): every
 *    webhook channel subscribed to "run.<status>" that no entry named
 *    gets the run event alone. A channel two entries name, or an entry
 *    and a subscription, gets the run end once.
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
  json_t *wf;      /* the workflow document, or {"id"?} when it cannot be read */
  bool live;       /* wf is the document, not deleted */
  char status[16]; /* succeeded, failed, ... */
} run_end;

static void run_end_free(run_end *e) {
  json_decref(e->event);
  json_decref(e->inputs);
  json_decref(e->vars);
  json_decref(e->wf);
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

/* The message of the run's end; entry (may be NULL: a run webhook) adds
 * its variables. */
static json_t *run_message(const run_end *e, const json_t *entry) {
  const json_t *run = json_object_get(e->event, "run");
  const char *name = json_string_value(json_object_get(e->wf, "name"));
  if (!name) name = json_string_value(json_object_get(run, "workflow_name"));
  const char *reason = json_string_value(json_object_get(run, "reason"));
  char title[300], text[1200];
  snprintf(title, sizeof title, "Workflow %.200s %s", name ? name : "?", e->status);
  snprintf(text, sizeof text, "Run %s of workflow %.200s (version %lld) ended %s%s%.700s",
           json_string_value(json_object_get(run, "run_id")), name ? name : "?",
           (long long)json_integer_value(json_object_get(run, "workflow_version")), e->status, reason ? ": " : ".",
           reason ? reason : "");
  json_t *event = json_deep_copy(e->event), *fields = json_object();
  if (entry) {
    json_t *errors = json_array();
    json_decref(fields);
    fields = render_variables(e, json_object_get(entry, "variables"), errors);
    json_object_set(event, "variables", fields);
    if (json_array_size(errors)) json_object_set(event, "variable_errors", errors);
    json_decref(errors);
  }
  return json_pack("{s:s, s:s, s:s, s:o, s:o}", "title", title, "text", text, "severity", run_severity(e->status),
                   "fields", fields, "event", event);
}

/* Whether items already has a delivery to channel id. */
static bool has_channel(const json_t *items, const json_t *id) {
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) if (json_equal(json_object_get(it, "channel_id"), id)) return true;
  return false;
}

static void add_item(json_t *items, const json_t *channel_id, json_t *message) {
  if (json_is_string(channel_id) && !has_channel(items, channel_id))
    json_array_append_new(items, json_pack("{s:O, s:o}", "channel_id", channel_id, "message", message));
  else json_decref(message);
}

static void subscribers_got(rm_serve *s, json_t *hooks, void *ud) {
  run_end *e = ud;
  const char *word = outcome_word(e->status);
  json_t *items = json_array(), *entry, *ch;
  size_t i;
  json_array_foreach(e->live ? json_object_get(e->wf, "notifications") : NULL, i, entry)
      if (lists(json_object_get(entry, "on"), word))
          add_item(items, json_object_get(entry, "channel_id"), run_message(e, entry));
  json_array_foreach(hooks, i, ch) if (!has_channel(items, json_object_get(ch, "id")))
      add_item(items, json_object_get(ch, "id"), run_message(e, NULL));
  json_decref(hooks);
  const json_t *run = json_object_get(e->event, "run");
  json_t *meta = json_pack("{s:s, s:s, s:O}", "event", json_string_value(json_object_get(e->event, "event")),
                           "object_kind", "workflow", "run_id", json_object_get(run, "run_id"));
  rm__notify_dispatch_each(s, e->wf, meta, items);
  run_end_free(e);
}

/* Then the run webhooks of the run's event. */
static void subscribers_of(run_end *e) {
  rm__webhooks_subscribers(e->s, json_string_value(json_object_get(e->event, "event")),
                           json_string_value(json_object_get(json_object_get(e->event, "run"), "workflow_id")),
                           subscribers_got, e);
}

static void workflow_got(void *ud, int err, const char *errmsg, json_t *wf) {
  run_end *e = ud;
  if (err && err != RM_ENOTFOUND) rm_log_warn("notify", "reading a workflow for its notifications failed: %s", errmsg);
  if (!err && json_is_object(wf)) {
    json_decref(e->wf);
    e->wf = wf;
    e->live = json_is_null(json_object_get(wf, "deleted_at"));
  } else {
    json_decref(wf);
  }
  subscribers_of(e);
}

void rm_serve_notify_run(rm_serve *s, const json_t *row, const json_t *record, const char *status) {
  const char *wf = json_string_value(json_object_get(row, "workflow_id"));
  if (s->stopping || !s->notify || !status || !outcome_word(status) || json_is_true(json_object_get(row, "dry_run")))
    return;
  /* A run of no workflow (a task check) with no webhook for its end, by
   * the fresh channel cache: nothing to build the event for. */
  if (!wf && rm__webhooks_none(s, status, NULL)) return;
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
  e->wf = json_pack("{s:s?}", "id", wf); /* until the document is read: maintenance windows by id */
  if (!json_is_object(e->inputs)) {
    json_decref(e->inputs);
    e->inputs = json_object();
  }
  if (wf) rm_store_doc_get(s->store, "workflow", wf, workflow_got, e);
  else subscribers_of(e);
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
