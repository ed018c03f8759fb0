/* The signal routes:
 *   GET  /signals                       the health overview, worst first
 *   GET  /signals/{id}                  current state, and the last
 *                                       transition with its evidence
 *   GET  /signals/{id}/transitions      the timeline (paged, from/to)
 *   POST /signals/{id}/acknowledge      a Degraded or Failed signal seen
 *   POST /signals/{id}/transitions/{seq}/annotations
 *                                       an operator's note on a transition
 *   POST /monitors/{id}/metrics         a metric value pushed
 *   POST /monitors/{id}/events          an event pushed (state or severity)
 * A signal's id is its object's: a monitor, or a workflow for the event
 * signal of its runs started by hand or through the API. Whoever may not
 * see the object gets the same 404 as for an absent one. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "serve/sched_internal.h"
#include "serve/signals_int.h"
#include "signal/signal.h"
#include "util/err.h"

/* ---- the shape ---- */

static const char *severity_of(const char *state) {
  if (!state || strcmp(state, "healthy") == 0) return "info";
  return strcmp(state, "failed") == 0 ? "critical" : "warning";
}

json_t *rm__signals_view(const json_t *row) {
  const json_t *m = json_object_get(row, "machine");
  const char *state = json_string_value(json_object_get(row, "state"));
  const json_t *by = json_object_get(row, "acknowledged_by"), *pending = json_object_get(m, "pending");
  json_t *ack = json_is_string(by) ? json_pack("{s:O, s:O, s:O}", "by", by, "at", json_object_get(row, "acknowledged_at"),
                                               "text", json_object_get(row, "ack_text"))
                                   : json_null();
  json_t *v = json_pack("{s:O, s:O, s:O, s:O, s:s?, s:s, s:O, s:O, s:O, s:{s:O, s:I}, s:o, s:O?, s:O?}", "id",
                        json_object_get(row, "object_id"), "object_type", json_object_get(row, "object_type"), "name",
                        json_object_get(row, "name"), "tags", json_object_get(row, "tags"), "state", state, "severity",
                        severity_of(state), "since", json_object_get(row, "changed_at"), "observed_at",
                        json_object_get(row, "observed_at"), "transitions", json_object_get(row, "transitions"),
                        "incident", "open", json_object_get(m, "incident_open"), "count",
                        json_integer_value(json_object_get(m, "incidents")), "acknowledged", ack, "pending",
                        json_is_object(pending) ? pending : NULL, "recent", json_object_get(m, "recent"));
  return v;
}

/* ---- the object behind a signal, as the caller may see it ---- */

static void object_got(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  if (err == RM_ENOTFOUND && strcmp(c->verb, "monitor") == 0) {
    c->verb = "workflow";
    rm_store_doc_get(c->s->store, "workflow", c->id, object_got, c);
    return;
  }
  if (rm_hctx_done_if_failed(c, err == RM_ENOTFOUND ? 0 : err, errmsg, doc)) return;
  if (!doc || !json_is_null(json_object_get(doc, "deleted_at")) || !rm_defs_visible(c, doc)) {
    json_decref(doc);
    rm_defs_not_found(c, "signal");
    return;
  }
  c->doc2 = doc;
  c->next(c);
}

static void load_object(rm_hctx *c, rm_hstep next) {
  c->next = next;
  c->verb = "monitor";
  rm_store_doc_get(c->s->store, "monitor", c->id, object_got, c);
}

/* ---- query strings ---- */

/* ---- overview ---- */

static void list_got(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  json_t *items = json_object_get(res, "items"), *row;
  size_t i;
  json_array_foreach(items, i, row) json_array_set_new(items, i, rm__signals_view(row));
  rm_hctx_ok(c, 200, res);
}

/* ?sort: severity (the worst first by default), name, since, observed_at. */
static const char *store_sort(const char *v) {
  static const char *const api[] = {"-severity", "severity", "name", "-name", "since", "-since", "observed_at",
                                    "-observed_at", NULL};
  static const char *const col[] = {"-state_rank", "state_rank", "name", "-name", "changed_at", "-changed_at",
                                    "observed_at", "-observed_at"};
  for (int i = 0; api[i]; i++)
    if (strcmp(api[i], v) == 0) return col[i];
  return NULL;
}

static void list_param(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                       void *ud) {
  (void)ud;
  static const char *const multi[] = {"state", "object_type", NULL};
  if (strcmp(name, "sort") == 0) {
    const char *s = store_sort(value);
    if (s) json_object_set_new(q, "sort", json_string(s));
    else rm_api_details_add(d, path, "expected severity, name, since or observed_at ('-' for descending)");
  } else if (strcmp(name, "tag") == 0) {
    json_object_set_new(q, "tag", json_string(value));
  } else if (rm_dc_index(multi, name) >= 0) {
    static const char *const states[] = {"unknown", "healthy", "degraded", "failed", NULL};
    static const char *const types[] = {"check", "metric", "event", NULL};
    if (rm_dc_index(strcmp(name, "state") == 0 ? states : types, value) < 0) {
      rm_api_details_add(d, path, strcmp(name, "state") == 0 ? "expected healthy, degraded, failed or unknown"
                                                             : "expected check, metric or event");
      return;
    }
    if (!json_object_get(q, name)) json_object_set_new(q, name, json_array());
    json_array_append_new(json_object_get(q, name), json_string(value));
  } else {
    rm_api_details_add(d, path, "unknown query parameter");
  }
}

static void h_list(rm_hctx *c) {
  json_t *q = rm_hctx_list_query(c, 50, list_param, NULL);
  if (!q) return;
  if (c->role != RM_ROLE_ADMIN) json_object_set_new(q, "visible_to", json_string(rm_hctx_user_id(c)));
  rm_store_signal_list(c->s->store, q, list_got, c);
  json_decref(q);
}

/* ---- one signal ---- */

static void signal_got(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, row)) return;
  json_t *v = rm__signals_view(row);
  json_object_set(v, "last_transition", json_object_get(row, "last_transition"));
  json_decref(row);
  rm_hctx_ok(c, 200, v);
}

static void get_loaded(rm_hctx *c) { rm_store_signal_get(c->s->store, c->id, signal_got, c); }

static void h_get(rm_hctx *c) { load_object(c, get_loaded); }

/* ---- timeline ---- */

static void transitions_got(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  json_t *items = json_object_get(res, "items"), *row;
  size_t i;
  json_array_foreach(items, i, row) json_array_set(items, i, json_object_get(row, "body"));
  rm_hctx_ok(c, 200, res);
}

static void transitions_loaded(rm_hctx *c) {
  rm_store_signal_transitions(c->s->store, c->id, c->doc, transitions_got, c);
}

static void transition_param(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                             void *ud) {
  (void)ud;
  int64_t ms;
  if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0) {
    if (!rm__signals_iso_ms(value, &ms)) rm_api_details_add(d, path, "expected an ISO-8601 time with a zone");
    else json_object_set_new(q, strcmp(name, "from") == 0 ? "from" : "until", json_string(value));
  } else if (strcmp(name, "state") == 0) {
    static const char *const states[] = {"unknown", "healthy", "degraded", "failed", NULL};
    if (rm_dc_index(states, value) < 0) rm_api_details_add(d, path, "expected healthy, degraded, failed or unknown");
    else json_object_set_new(q, "to", json_string(value));
  } else if (strcmp(name, "sort") == 0) {
    if (strcmp(value, "at") && strcmp(value, "-at")) rm_api_details_add(d, path, "expected at or -at");
    else json_object_set_new(q, "sort", json_string(value[0] == '-' ? "-seq" : "seq"));
  } else {
    rm_api_details_add(d, path, "unknown query parameter");
  }
}

static void h_transitions(rm_hctx *c) {
  json_t *q = rm_hctx_list_query(c, 50, transition_param, NULL);
  if (!q) return; /* c was answered and freed */
  c->doc = q;
  load_object(c, transitions_loaded);
}

/* ---- acknowledge ---- */

static void acked(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, row)) return;
  json_t *v = rm__signals_view(row);
  json_decref(row);
  rm_hctx_audit(c, "signal.acknowledge", "signal", c->id, NULL, json_deep_copy(json_object_get(v, "acknowledged")));
  rm_serve_notify_acknowledged(c->s, c->id);
  rm_hctx_ok(c, 200, v);
}

static void ack_loaded(rm_hctx *c) {
  rm_store_signal_ack(c->s->store, c->id, rm_hctx_user_name(c), json_string_value(json_object_get(c->doc, "text")),
                      acked, c);
}

static void h_ack(rm_hctx *c) {
  static const char *const allowed[] = {"text", NULL};
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  json_t *b = len ? rm_hctx_body(c, allowed) : NULL;
  if (len && !b) return;
  c->doc = b ? json_deep_copy(b) : json_object();
  const json_t *t = json_object_get(c->doc, "text");
  if (t && (!json_is_string(t) || json_string_length(t) > 2000)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$.text", "expected a string of at most 2000 characters");
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  load_object(c, ack_loaded);
}

/* ---- notes on transitions ---- */

static void noted(void *ud, int err, const char *errmsg, json_t *body) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, body)) return;
  rm_hctx_audit(c, "signal.annotate", "signal", c->id, NULL,
                json_pack("{s:I, s:O}", "seq", (json_int_t)c->n, "text", json_object_get(c->doc, "text")));
  rm_hctx_ok(c, 201, body);
}

static void note_loaded(rm_hctx *c) {
  json_t *at = rm__sched_iso(rm__serve_now_ms());
  rm_store_signal_note(c->s->store, c->id, c->n, rm_hctx_user_name(c), json_string_value(json_object_get(c->doc, "text")),
                       json_string_value(at), noted, c);
  json_decref(at);
}

/* POST /signals/{id}/transitions/{seq}/annotations {text}. */
static void h_note(rm_hctx *c) {
  static const char *const allowed[] = {"text", NULL};
  const char *v = rm_api_req_param(c->req, "seq");
  char *end;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || n < 1 || n > INT_MAX) {
    rm_hctx_error(c, RM_API_BAD_REQUEST, "the transition number (seq) in the path must be a positive integer");
    return;
  }
  c->n = (int)n;
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  const json_t *t = json_object_get(b, "text");
  if (!json_is_string(t) || !json_string_length(t) || json_string_length(t) > 2000) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$.text", "required: a non-empty string of at most 2000 characters");
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc = json_deep_copy(b);
  load_object(c, note_loaded);
}

int rm_serve_signal_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/signals", h_list, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_VIEW},
      {"GET", "/api/v1/signals/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_VIEW},
      {"GET", "/api/v1/signals/{id}/transitions", h_transitions, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_VIEW},
      {"POST", "/api/v1/signals/{id}/transitions/{seq}/annotations", h_note, RM_ACCESS_ROLE, RM_MOD_SIGNALS,
       RM_ACT_ANNOTATE},
      {"POST", "/api/v1/signals/{id}/acknowledge", h_ack, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_ACKNOWLEDGE},
      {"POST", "/api/v1/monitors/{id}/metrics", rm__signals_h_metric, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_CREATE},
      {"POST", "/api/v1/monitors/{id}/events", rm__signals_h_event, RM_ACCESS_ROLE, RM_MOD_SIGNALS, RM_ACT_CREATE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
