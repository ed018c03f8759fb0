#include "engine/attempt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "engine/run.h"
#include "util/buf.h"
#include "util/err.h"

static const char *const outcome_names[] = {"succeeded", "degraded", "failed", "cancelled"};

const char *rm_outcome_name(int outcome) {
  return outcome >= 0 && outcome <= RM_OUTCOME_CANCELLED ? outcome_names[outcome] : "failed";
}

static int outcome_from_name(const char *s) {
  for (int i = 0; s && i <= RM_OUTCOME_CANCELLED; i++)
    if (strcmp(s, outcome_names[i]) == 0) return i;
  return RM_OUTCOME_FAILED;
}

/* Retry categories for an attempt that died outside the runtime. */
static json_t *categories_for_error(int err) {
  switch (err) {
    case RM_ETIMEOUT: return json_pack("[s, s]", "timeout", "failed");
    case RM_ECANCELED: return json_array();
    case RM_EBUDGET:
    case RM_EMEMLIMIT: return json_pack("[s]", "limit");
    default: return json_pack("[s]", "failed");
  }
}

json_t *rm_attempt_build(rm_lua_task *t, int attempt, const char *started_at, double duration_ms,
                         const rm_secrets *secrets, rm_attempt_info *info) {
  json_t *a = json_pack("{s:i, s:s, s:f}", "attempt", attempt, "started_at", started_at, "duration_ms", duration_ms);
  json_t *res = t->result;
  if (res) {
    static const char *const copied[] = {"reason", "error", "extracted", "assertions", "output", "categories"};
    json_object_set_new(a, "status",
                        json_string(rm_outcome_name(outcome_from_name(json_string_value(json_object_get(res, "status"))))));
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
      json_t *v = json_object_get(res, copied[i]);
      if (v) json_object_set_new(a, copied[i], json_deep_copy(v));
    }
  } else {
    int outcome = t->err == RM_ECANCELED ? RM_OUTCOME_CANCELLED : RM_OUTCOME_FAILED;
    json_object_set_new(a, "status", json_string(rm_outcome_name(outcome)));
    json_object_set_new(a, "reason", json_string(t->errmsg));
    json_object_set_new(a, "error", json_pack("{s:s, s:s}", "code", rm_errname(t->err), "message", t->errmsg));
    json_object_set_new(a, "categories", categories_for_error(t->err));
  }
  json_object_set(a, "exchanges", t->exchanges);
  if (json_array_size(t->logs)) json_object_set(a, "logs", t->logs);
  rm_secrets_scrub_json(secrets, a);

  info->outcome = outcome_from_name(json_string_value(json_object_get(a, "status")));
  info->categories = json_object_get(a, "categories");
  info->error_code = json_string_value(json_object_get(json_object_get(a, "error"), "code"));
  info->response_received = false;
  size_t i;
  json_t *ex;
  json_array_foreach(t->exchanges, i, ex) if (json_object_get(ex, "response")) info->response_received = true;
  return a;
}

json_t *rm_attempt_error(int attempt, const char *code, const char *message, const rm_secrets *secrets) {
  char now[40];
  rm_run_iso_time(now, sizeof now);
  json_t *a = json_pack("{s:i, s:s, s:f, s:s, s:s, s:{s:s, s:s}, s:[s], s:[]}", "attempt", attempt,
                        "started_at", now, "duration_ms", 0.0, "status", "failed", "reason", message,
                        "error", "code", code, "message", message, "categories", "failed", "exchanges");
  rm_secrets_scrub_json(secrets, a);
  return a;
}

json_t *rm_attempt_new_step(const char *task, const char *type) {
  char now[40];
  rm_run_iso_time(now, sizeof now);
  return json_pack("{s:s, s:s, s:s, s:s, s:[]}", "task", task, "type", type ? type : "", "status",
                   "running", "started_at", now, "attempts");
}

json_t *rm_attempt_skipped_step(const char *task, const char *type, const char *why) {
  return json_pack("{s:s, s:s, s:s, s:s, s:[], s:s, s:[]}", "task", task, "type", type ? type : "",
                   "status", "skipped", "reason", why, "next", "edge", "none", "attempts");
}

void rm_attempt_close_step(json_t *step, int outcome, const char *edge, json_t *next, double duration_ms) {
  json_t *attempts = json_object_get(step, "attempts");
  json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
  json_object_set_new(step, "status", json_string(rm_outcome_name(outcome)));
  json_t *reason = json_object_get(last, "reason");
  json_object_set_new(step, "reason", reason ? json_incref(reason) : json_string(""));
  json_object_set_new(step, "duration_ms", json_real(duration_ms));
  json_object_set_new(step, "edge", json_string(edge));
  json_object_set_new(step, "next", next);
}

static bool has_string(const json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return true;
  return false;
}

static double num(const json_t *obj, const char *key, double def) {
  const json_t *v = json_object_get(obj, key);
  return json_is_number(v) ? json_number_value(v) : def;
}

/* Whether repeating the request is safe: the task says so, or its method
 * is idempotent by definition. */
static bool idempotent(const json_t *task, const char **method) {
  const json_t *flag = json_object_get(task, "idempotent");
  const char *m = json_string_value(json_object_get(json_object_get(task, "request"), "method"));
  *method = m ? m : "GET";
  if (json_is_boolean(flag)) return json_is_true(flag);
  return strcasecmp(*method, "POST") != 0 && strcasecmp(*method, "PATCH") != 0;
}

static json_t *default_retry_on(void) { return json_pack("[s, s, s]", "error", "timeout", "5xx"); }

int rm_attempt_retry_delay(const json_t *task, const json_t *defaults, int attempt_no,
                           const rm_attempt_info *info, json_t *attempt) {
  const json_t *retry = json_object_get(task, "retry");
  if (!retry) retry = json_object_get(defaults, "retry");
  int max = (int)num(retry, "max_attempts", 1);
  if (max <= 1) return -1;
  char why[400];
  if (attempt_no >= max) {
    snprintf(why, sizeof why, "all %d attempts used", max);
    json_object_set_new(attempt, "not_retried", json_string(why));
    return -1;
  }
  if (has_string(info->categories, "limit")) {
    json_object_set_new(attempt, "not_retried", json_string("sandbox limits are never retried"));
    return -1;
  }
  json_t *own = NULL;
  const json_t *retry_on = json_object_get(retry, "retry_on");
  if (!retry_on) retry_on = own = default_retry_on();
  const char *matched = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(info->categories, i, c) if (has_string(retry_on, json_string_value(c))) {
    matched = json_string_value(c);
    break;
  }
  char *on = json_dumps(retry_on, JSON_COMPACT);
  json_decref(own);
  if (!matched) {
    char *cats = json_dumps(info->categories, JSON_COMPACT);
    snprintf(why, sizeof why, "outcome %s is not in retry_on %s", cats ? cats : "[]", on ? on : "[]");
    free(cats);
    free(on);
    json_object_set_new(attempt, "not_retried", json_string(why));
    return -1;
  }
  const char *method;
  /* A request that may have reached the server is repeated only when
   * repeating it is harmless. */
  bool maybe_sent = info->response_received || (info->error_code && strcmp(info->error_code, "E_TIMEOUT") == 0);
  if (!idempotent(task, &method) && maybe_sent) {
    snprintf(why, sizeof why,
             "%s is not idempotent and the request may have reached the server (set \"idempotent\": "
             "true to allow retries)",
             method);
    free(on);
    json_object_set_new(attempt, "not_retried", json_string(why));
    return -1;
  }
  double base = num(retry, "backoff_ms", 200), mult = num(retry, "multiplier", 2);
  double cap = num(retry, "max_backoff_ms", 10000), jitter = num(retry, "jitter", 0.2);
  double delay = base * pow(mult, attempt_no - 1);
  if (delay > cap) delay = cap;
  uint32_t rnd = 0;
  if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint32_t)rand();
  delay *= 1.0 + jitter * (2.0 * ((double)rnd / 4294967295.0) - 1.0);
  if (delay < 0) delay = 0;
  snprintf(why, sizeof why, "%s (retry_on %s); attempt %d of %d next", matched, on ? on : "[]",
           attempt_no + 1, max);
  free(on);
  json_object_set_new(attempt, "retry", json_pack("{s:i, s:s}", "delay_ms", (int)delay, "reason", why));
  return (int)delay;
}

const char *rm_attempt_finish_record(json_t *record, bool cancelled, double duration_ms) {
  json_t *steps = json_object_get(record, "steps");
  size_t counts[5] = {0}, attempts = 0, requests = 0;
  const char *first_failed = NULL, *first_failed_reason = NULL;
  const char *first_degraded = NULL, *first_degraded_reason = NULL;
  size_t i;
  json_t *s;
  json_array_foreach(steps, i, s) {
    const char *st = json_string_value(json_object_get(s, "status"));
    const char *name = json_string_value(json_object_get(s, "task"));
    const char *reason = json_string_value(json_object_get(s, "reason"));
    if (!st) continue;
    if (strcmp(st, "skipped") == 0) {
      counts[4]++;
    } else {
      int o = outcome_from_name(st);
      counts[o]++;
      if (o == RM_OUTCOME_FAILED && !first_failed) {
        first_failed = name;
        first_failed_reason = reason;
      }
      if (o == RM_OUTCOME_DEGRADED && !first_degraded) {
        first_degraded = name;
        first_degraded_reason = reason;
      }
    }
    json_t *as = json_object_get(s, "attempts");
    attempts += json_array_size(as);
    size_t k;
    json_t *a;
    json_array_foreach(as, k, a) requests += json_array_size(json_object_get(a, "exchanges"));
  }
  const char *status;
  rm_buf reason = RM_BUF_INIT;
  if (cancelled) {
    status = "cancelled";
    rm_buf_puts(&reason, "the run was cancelled");
  } else if (first_failed) {
    status = "failed";
    rm_buf_printf(&reason, "task '%s' failed: %s", first_failed, first_failed_reason ? first_failed_reason : "");
  } else if (first_degraded) {
    status = "degraded";
    rm_buf_printf(&reason, "task '%s' degraded: %s", first_degraded,
                  first_degraded_reason ? first_degraded_reason : "");
  } else {
    status = "succeeded";
    rm_buf_printf(&reason, "all %zu tasks that ran succeeded", counts[0]);
    if (counts[4]) rm_buf_printf(&reason, " (%zu skipped)", counts[4]);
  }
  char now[40];
  rm_run_iso_time(now, sizeof now);
  json_object_set_new(record, "status", json_string(status));
  json_object_set_new(record, "reason", json_string(reason.data));
  json_object_set_new(record, "finished_at", json_string(now));
  json_object_set_new(record, "duration_ms", json_real(duration_ms));
  json_object_set_new(record, "summary",
                      json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "tasks", (int)json_array_size(steps),
                                "succeeded", (int)counts[0], "degraded", (int)counts[1], "failed",
                                (int)counts[2], "cancelled", (int)counts[3], "skipped", (int)counts[4],
                                "attempts", (int)attempts, "requests", (int)requests));
  rm_buf_free(&reason);
  return status;
}
