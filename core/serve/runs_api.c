/* The run routes: list/search, detail, steps, logs, cancel, rerun,
 * resume, annotations, acknowledgement and delete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/err.h"

static void store_answer(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  int status = 200;
  if (c->verb) {
    const char *rid = json_string_value(json_object_get(res, "run_id"));
    rm_hctx_audit(c, c->verb, "run", c->id, NULL,
                  rid && strcmp(rid, c->id) != 0 ? json_pack("{s:s}", "run_id", rid) : NULL);
    if (strcmp(c->verb, "run.rerun") == 0 || strcmp(c->verb, "run.annotate") == 0 ||
        strcmp(c->verb, "run.acknowledge") == 0)
      status = 201;
  }
  rm_hctx_ok(c, status, res);
}

static bool known_run_query(const char *n) {
  static const char *const k[] = {"workflow", "status", "tag", "from", "to", "http_status", "trigger", "sort", NULL};
  for (size_t i = 0; k[i]; i++)
    if (strcmp(k[i], n) == 0) return true;
  return strncmp(n, "var.", 4) == 0 && n[4];
}

/* One query parameter into the store query q (or a detail into d). */
static void run_query_param(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                            void *ud) {
  (void)ud;
  if (!known_run_query(name)) {
    rm_api_details_add(d, path, "unknown query parameter");
  } else if (strcmp(name, "status") == 0) { /* repeatable: any of them */
    if (!json_object_get(q, "status")) json_object_set_new(q, "status", json_array());
    json_array_append_new(json_object_get(q, "status"), json_string(value));
  } else if (strcmp(name, "http_status") == 0) {
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < 100 || v > 599) rm_api_details_add(d, path, "expected an HTTP status 100-599");
    else json_object_set_new(q, "http_status", json_integer(v));
  } else if (strncmp(name, "var.", 4) == 0) {
    if (json_object_get(q, "var")) {
      rm_api_details_add(d, path, "only one var.NAME filter is supported");
      return;
    }
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    if (!v) v = json_string(value);
    json_object_set_new(q, "var", json_pack("{s:s, s:o}", "name", name + 4, "value", v));
  } else {
    json_object_set_new(q, name, json_string(value));
  }
}

static void h_list(rm_hctx *c) {
  json_t *q = rm_hctx_list_query(c, 50, run_query_param, NULL);
  if (!q) return;
  rm_store_run_search(c->s->store, q, store_answer, c);
  json_decref(q);
}

static void h_get(rm_hctx *c) { rm_store_run_get(c->s->store, c->id, store_answer, c); }

static void steps_got(void *ud, int err, const char *errmsg, json_t *run) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, run)) return;
  json_t *steps = json_incref(json_object_get(run, "steps"));
  json_decref(run);
  rm_hctx_ok(c, 200, json_pack("{s:s, s:o}", "run_id", c->id, "items", steps ? steps : json_array()));
}

static void h_steps(rm_hctx *c) { rm_store_run_get(c->s->store, c->id, steps_got, c); }

/* ---- logs: the run's story as lines, step by step ---- */

static void log_line(json_t *out, const json_t *at, const char *task, json_int_t attempt, const char *level,
                     const char *kind, const char *msg) {
  json_t *l = json_pack("{s:O?, s:s?, s:s, s:s, s:s}", "at", at, "task", task, "level", level, "kind", kind, "message",
                        msg ? msg : "");
  if (l && attempt > 0) json_object_set_new(l, "attempt", json_integer(attempt));
  json_array_append_new(out, l);
}

static void attempt_lines(json_t *out, const char *task, const json_t *a) {
  json_int_t n = json_integer_value(json_object_get(a, "attempt"));
  const json_t *at = json_object_get(a, "started_at");
  char msg[600];
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(a, "exchanges"), i, x) {
    const json_t *rq = json_object_get(x, "request"), *rs = json_object_get(x, "response");
    const char *e = json_string_value(json_object_get(json_object_get(x, "error"), "message"));
    if (rs)
      snprintf(msg, sizeof msg, "%s %s -> HTTP %lld in %.1f ms", json_string_value(json_object_get(rq, "method")),
               json_string_value(json_object_get(rq, "url")), (long long)json_integer_value(json_object_get(rs, "status")),
               json_number_value(json_object_get(json_object_get(x, "timings"), "total_ms")));
    else
      snprintf(msg, sizeof msg, "%s %s -> %s", json_string_value(json_object_get(rq, "method")),
               json_string_value(json_object_get(rq, "url")), e ? e : "no response");
    log_line(out, at, task, n, rs ? "info" : "error", "exchange", msg);
  }
  json_array_foreach(json_object_get(a, "logs"), i, x)
      log_line(out, at, task, n, json_string_value(json_object_get(x, "level")), "plugin",
               json_string_value(json_object_get(x, "message")));
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)json_object_get(a, "extracted"), key, v) {
    char *val = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(msg, sizeof msg, "extracted %s = %.400s", key, val ? val : "?");
    free(val);
    log_line(out, at, task, n, "info", "extract", msg);
  }
  json_array_foreach(json_object_get(a, "assertions"), i, x)
      log_line(out, at, task, n, json_is_true(json_object_get(x, "passed")) ? "info" : "warn", "assertion",
               json_string_value(json_object_get(x, "message")));
  const char *err = json_string_value(json_object_get(json_object_get(a, "error"), "message"));
  if (err) log_line(out, at, task, n, "error", "error", err);
  snprintf(msg, sizeof msg, "attempt %lld %s: %.500s", (long long)n, json_string_value(json_object_get(a, "status")),
           json_string_value(json_object_get(a, "reason")));
  log_line(out, at, task, n, "info", "attempt", msg);
  const json_t *retry = json_object_get(a, "retry");
  if (retry) {
    snprintf(msg, sizeof msg, "retrying in %lld ms: %.500s", (long long)json_integer_value(json_object_get(retry, "delay_ms")),
             json_string_value(json_object_get(retry, "reason")));
    log_line(out, at, task, n, "warn", "retry", msg);
  }
}

static void logs_got(void *ud, int err, const char *errmsg, json_t *run) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, run)) return;
  json_t *out = json_array();
  char msg[700];
  size_t i, j;
  json_t *st, *a;
  json_array_foreach(json_object_get(run, "steps"), i, st) {
    const char *task = json_string_value(json_object_get(st, "task"));
    json_array_foreach(json_object_get(st, "attempts"), j, a) attempt_lines(out, task, a);
    json_t *next = json_object_get(st, "next");
    char *nx = next ? json_dumps(next, JSON_COMPACT) : NULL;
    snprintf(msg, sizeof msg, "step %s: %.400s; edge %s%s%s", json_string_value(json_object_get(st, "status")),
             json_string_value(json_object_get(st, "reason")), json_string_value(json_object_get(st, "edge")),
             nx ? " -> " : "", nx ? nx : "");
    free(nx);
    log_line(out, json_object_get(st, "started_at"), task, 0, "info", "decision", msg);
  }
  snprintf(msg, sizeof msg, "run %s: %.600s", json_string_value(json_object_get(run, "status")),
           json_string_value(json_object_get(run, "reason")));
  log_line(out, json_object_get(run, "finished_at"), NULL, 0, "info", "run", msg);
  json_decref(run);
  rm_hctx_ok(c, 200, json_pack("{s:s, s:o}", "run_id", c->id, "items", out));
}

static void h_logs(rm_hctx *c) { rm_store_run_get(c->s->store, c->id, logs_got, c); }

/* ---- operator actions ---- */

static void h_cancel(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  c->verb = "run.cancel";
  rm_store_run_cancel(c->s->store, c->id, rm_hctx_user_name(c), store_answer, c);
}

static void h_resume(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  c->verb = "run.resume";
  rm_store_run_resume(c->s->store, c->id, rm_hctx_user_name(c), store_answer, c);
}

static void rerun_got(void *ud, int err, const char *errmsg, json_t *orig) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, orig)) return;
  const char *st = json_string_value(json_object_get(orig, "status"));
  if (!st || strcmp(st, "queued") == 0 || strcmp(st, "running") == 0) {
    json_decref(orig);
    rm_hctx_error(c, RM_API_CONFLICT, "only a finished run can be rerun");
    return;
  }
  json_t *spec = json_pack("{s:O?, s:O?, s:O?, s:O, s:s?, s:{s:s, s:s?, s:O?}, s:O, s:O?, s:s}", "workflow_id",
                           json_object_get(orig, "workflow_id"), "workflow_name", json_object_get(orig, "workflow_name"),
                           "workflow_version", json_object_get(orig, "workflow_version"), "definition",
                           json_object_get(orig, "definition"), "source",
                           json_string_value(json_object_get(orig, "source")), "trigger", "type", "rerun", "by",
                           rm_hctx_user_name(c), "run_id", json_object_get(orig, "run_id"), "inputs",
                           json_object_get(orig, "inputs"), "dry_run", json_object_get(orig, "dry_run"), "rerun_of",
                           c->id);
  json_decref(orig);
  if (!spec) {
    rm_hctx_error(c, RM_API_CONFLICT, "the stored run lacks its definition or inputs");
    return;
  }
  c->verb = "run.rerun";
  rm_store_run_create(c->s->store, spec, store_answer, c);
  json_decref(spec);
}

static void h_rerun(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  rm_store_run_get(c->s->store, c->id, rerun_got, c);
}

/* DELETE: the record goes for good (Admin); the audit entry keeps what
 * the run was. */
static void deleted(void *ud, int err, const char *errmsg, json_t *run) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, run)) return;
  json_t *before = json_pack("{s:O?, s:O?, s:O?, s:O?}", "workflow_id", json_object_get(run, "workflow_id"),
                             "workflow_name", json_object_get(run, "workflow_name"), "status",
                             json_object_get(run, "status"), "finished_at", json_object_get(run, "finished_at"));
  json_decref(run);
  rm_hctx_audit(c, "run.delete", "run", c->id, before, NULL);
  rm_hctx_ok(c, 200, json_pack("{s:s, s:b}", "run_id", c->id, "deleted", 1));
}

static void h_delete(rm_hctx *c) {
  if (!rm_hctx_empty_body(c)) return;
  rm_store_run_delete(c->s->store, c->id, deleted, c);
}

/* {text} (required for annotations, optional for acknowledge). */
static void h_note(rm_hctx *c) {
  bool ack = c->route->action == RM_ACT_ACKNOWLEDGE;
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  const char *text = NULL;
  if (len || !ack) {
    static const char *const allowed[] = {"text", NULL};
    json_t *b = rm_hctx_body(c, allowed);
    if (!b) return;
    rm_api_details d = RM_API_DETAILS_INIT;
    json_t *t = json_object_get(b, "text");
    text = json_string_value(t);
    if (t && !text) rm_api_details_add(&d, "$.text", "expected a string");
    else if (!ack && (!text || !*text)) rm_api_details_add(&d, "$.text", "required: a non-empty string");
    if (rm_api_details_count(&d)) {
      rm_hctx_invalid(c, RM_API_INVALID, &d);
      return;
    }
  }
  c->verb = ack ? "run.acknowledge" : "run.annotate";
  rm_store_run_annotate(c->s->store, c->id, ack ? "ack" : "note", rm_hctx_user_name(c), text, store_answer, c);
}

int rm_serve_run_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/runs", h_list, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_VIEW},
      {"GET", "/api/v1/runs/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_VIEW},
      {"GET", "/api/v1/runs/{id}/steps", h_steps, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_VIEW},
      {"GET", "/api/v1/runs/{id}/logs", h_logs, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_VIEW},
      {"DELETE", "/api/v1/runs/{id}", h_delete, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_DELETE},
      {"POST", "/api/v1/runs/{id}/cancel", h_cancel, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_CANCEL},
      {"POST", "/api/v1/runs/{id}/rerun", h_rerun, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_RERUN},
      {"POST", "/api/v1/runs/{id}/resume", h_resume, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_RESUME},
      {"POST", "/api/v1/runs/{id}/retry", h_resume, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_RESUME},
      {"POST", "/api/v1/runs/{id}/annotations", h_note, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_ANNOTATE},
      {"POST", "/api/v1/runs/{id}/acknowledge", h_note, RM_ACCESS_ROLE, RM_MOD_RUNS, RM_ACT_ACKNOWLEDGE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
