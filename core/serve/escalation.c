/* Escalation: a Failed signal that nobody acknowledges in time notifies
 * the next channel of its monitor's policy,
 *   "notify": {"escalation": [{"after_min": 15, "channel_id": A},
 *                             {"after_min": 60, "channel_id": B}]}
 * ("after_s" instead of "after_min" for short delays). Each delay counts
 * from the transition to Failed. The policy stops when the signal leaves
 * Failed, when it is acknowledged (rm_serve_notify_acknowledged here, or
 * seen in the stored signal before each step: another server may have
 * taken the acknowledgement), or after its last step. Pending policies live in this process's memory:
 * a restart forgets them (the Failed transition was notified already). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/notify_int.h"
#include "util/err.h"
#include "util/log.h"

static json_int_t step_delay_ms(const json_t *step) {
  const json_t *m = json_object_get(step, "after_min"), *sec = json_object_get(step, "after_s");
  if (json_is_integer(m)) return json_integer_value(m) * 60000;
  return json_integer_value(sec) * 1000;
}

void rm__notify_escalation_track(rm_serve *s, const json_t *monitor, const json_t *tr) {
  struct rm_serve_notify *ns = s->notify;
  const char *id = json_string_value(json_object_get(monitor, "id"));
  const char *to = json_string_value(json_object_get(tr, "to"));
  const json_t *steps = json_object_get(json_object_get(monitor, "notify"), "escalation");
  if (!id || !to) return;
  if (strcmp(to, "failed") != 0 || !json_array_size(steps)) {
    json_object_del(ns->esc, id);
    return;
  }
  json_object_set_new(ns->esc, id,
                      json_pack("{s:O, s:O, s:I, s:i}", "monitor", monitor, "transition", tr, "since",
                                (json_int_t)uv_now(&s->loop), "next", 0));
}

void rm_serve_notify_acknowledged(rm_serve *s, const char *monitor_id) {
  if (!s->notify || !monitor_id || !json_object_get(s->notify->esc, monitor_id)) return;
  rm_log_info("notify", "monitor %s acknowledged: its escalation stops", monitor_id);
  json_object_del(s->notify->esc, monitor_id);
}

/* Notifies step number n of entry e; true when it was the last. */
static bool escalate(rm_serve *s, const json_t *e, size_t n) {
  const json_t *monitor = json_object_get(e, "monitor");
  const json_t *steps = json_object_get(json_object_get(monitor, "notify"), "escalation");
  const json_t *step = json_array_get(steps, n);
  char extra[200];
  json_int_t ms = step_delay_ms(step);
  if (ms % 60000 == 0) snprintf(extra, sizeof extra, "Not acknowledged after %lld min (escalation step %zu of %zu).",
                                (long long)(ms / 60000), n + 1, json_array_size(steps));
  else snprintf(extra, sizeof extra, "Not acknowledged after %lld s (escalation step %zu of %zu).",
                (long long)(ms / 1000), n + 1, json_array_size(steps));
  json_t *meta = json_pack("{s:s, s:s}", "event", "escalation.failed", "object_kind", "monitor");
  json_t *msg = rm__notify_transition_message(monitor, json_object_get(e, "transition"), "escalation", extra);
  json_object_set_new(json_object_get(msg, "fields"), "escalation_step", json_integer((json_int_t)n + 1));
  rm_log_info("notify", "monitor %s: %s", json_string_value(json_object_get(monitor, "id")), extra);
  rm__notify_dispatch(s, monitor, meta, msg, json_pack("[O]", json_object_get(step, "channel_id")));
  return n + 1 >= json_array_size(steps);
}

/* A due step, after the signal was read: the signal must still be
 * Failed (the same transition) and unacknowledged. */
typedef struct due {
  rm_serve *s;
  char *id;
  json_int_t seq;
} due;

static void signal_read(void *ud, int err, const char *errmsg, json_t *row) {
  due *d = ud;
  struct rm_serve_notify *ns = d->s->notify;
  json_t *e = json_object_get(ns->esc, d->id);
  const json_t *last = json_object_get(row, "last_transition");
  const char *state = json_string_value(json_object_get(row, "state"));
  if (!e || ns->closing || json_integer_value(json_object_get(json_object_get(e, "transition"), "seq")) != d->seq) {
    /* stopped meanwhile, or a newer failure took its place */
  } else if (err && err != RM_ENOTFOUND) {
    rm_log_warn("notify", "escalation of monitor %s: reading its signal failed (trying again): %s", d->id, errmsg);
    json_object_del(e, "checking");
  } else if (err || !state || strcmp(state, "failed") != 0 || json_is_string(json_object_get(row, "acknowledged_by")) ||
             (json_is_integer(json_object_get(last, "seq")) && json_integer_value(json_object_get(last, "seq")) != d->seq)) {
    json_object_del(ns->esc, d->id); /* recovered, acknowledged (maybe elsewhere) or failed anew */
  } else {
    size_t next = (size_t)json_integer_value(json_object_get(e, "next"));
    if (escalate(d->s, e, next)) json_object_del(ns->esc, d->id);
    else {
      json_object_set_new(e, "next", json_integer((json_int_t)next + 1));
      json_object_del(e, "checking");
    }
  }
  json_decref(row);
  free(d->id);
  free(d);
}

void rm__notify_escalation_tick(uv_timer_t *t) {
  rm_serve *s = t->data;
  struct rm_serve_notify *ns = s->notify;
  if (s->stopping || ns->closing) return;
  rm__maint_tick(s);
  uint64_t now = uv_now(&s->loop);
  const char *id;
  json_t *e;
  json_object_foreach(ns->esc, id, e) {
    json_int_t since = json_integer_value(json_object_get(e, "since"));
    size_t next = (size_t)json_integer_value(json_object_get(e, "next"));
    const json_t *steps = json_object_get(json_object_get(json_object_get(e, "monitor"), "notify"), "escalation");
    if (json_object_get(e, "checking") || next >= json_array_size(steps) ||
        (json_int_t)now - since < step_delay_ms(json_array_get(steps, next)))
      continue;
    due *d = calloc(1, sizeof *d);
    if (!d || !(d->id = strdup(id))) {
      free(d);
      return;
    }
    d->s = s;
    d->seq = json_integer_value(json_object_get(json_object_get(e, "transition"), "seq"));
    json_object_set_new(e, "checking", json_true());
    rm_store_signal_get(s->store, id, signal_read, d);
  }
}
