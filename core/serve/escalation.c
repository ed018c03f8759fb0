/* Escalation: a Failed signal that nobody acknowledges in time notifies
 * the next channel of its monitor's policy,
 *   "notify": {"escalation": [{"after_min": 15, "channel_id": A},
 *                             {"after_min": 60, "channel_id": B}]}
 * ("after_s" instead of "after_min" for short delays). Each delay counts
 * from the transition to Failed, by the wall clock (the transition's
 * at_ms). The policy stops when the signal leaves Failed, when it is
 * acknowledged (rm_serve_notify_acknowledged here, or seen in the stored
 * signal before each step: another server may have taken the
 * acknowledgement), or after its last step.
 *
 * It survives restarts: the store is the truth, this process's table of
 * policies (ns->esc) a cache of it.
 *  - A step's delivery has an id derived from the monitor, the
 *    transition's seq and the step (step_id): a step is recorded once,
 *    whichever process -- or which life of this one -- gets there first,
 *    and a step found recorded is not sent again. A recorded step whose
 *    send a crash cut short is sent by the delivery pick-up
 *    (notify_leases.c).
 *  - At the first tick, and every RM_NOTIFY_RESTORE_TICKS after, the
 *    Failed, unacknowledged signals are read back from the store: after a
 *    restart the steps that fell due while the server was down are sent
 *    at once (each once) and the others on time; in a cluster, a server
 *    takes over the escalations of one that died. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "serve/notify_int.h"
#include "store/deliveries.h"
#include "util/err.h"
#include "util/log.h"

#define RESTORE_PAGE 100

static json_int_t step_delay_ms(const json_t *step) {
  const json_t *m = json_object_get(step, "after_min"), *sec = json_object_get(step, "after_s");
  if (json_is_integer(m)) return json_integer_value(m) * 60000;
  return json_integer_value(sec) * 1000;
}

static const json_t *steps_of(const json_t *monitor) {
  return json_object_get(json_object_get(monitor, "notify"), "escalation");
}

static json_int_t seq_of(const json_t *e) {
  return json_integer_value(json_object_get(json_object_get(e, "transition"), "seq"));
}

/* The delivery id of step n of the escalation of transition seq of
 * monitor_id: a UUID (version 8) made of the SHA-256 of the three. */
static void step_id(char out[37], const char *monitor_id, json_int_t seq, size_t n) {
  char key[300];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  int k = snprintf(key, sizeof key, "escalation\n%.200s\n%lld\n%zu", monitor_id, (long long)seq, n);
  if (EVP_Digest(key, (size_t)k, md, &len, EVP_sha256(), NULL) != 1 || len < 16) memset(md, 0, 16);
  md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
  md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
           md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
}

void rm__notify_escalation_track(rm_serve *s, const json_t *monitor, const json_t *tr) {
  struct rm_serve_notify *ns = s->notify;
  const char *id = json_string_value(json_object_get(monitor, "id"));
  const char *to = json_string_value(json_object_get(tr, "to"));
  if (!id || !to) return;
  if (strcmp(to, "failed") != 0 || !json_array_size(steps_of(monitor))) {
    json_object_del(ns->esc, id);
    return;
  }
  const json_t *e = json_object_get(ns->esc, id), *at = json_object_get(tr, "at_ms");
  if (e && seq_of(e) == json_integer_value(json_object_get(tr, "seq"))) return; /* tracked already */
  json_int_t since = json_is_integer(at) ? json_integer_value(at) : (json_int_t)rm__serve_now_ms();
  json_object_set_new(ns->esc, id,
                      json_pack("{s:O, s:O, s:I, s:i, s:I}", "monitor", monitor, "transition", tr, "since", since,
                                "next", 0, "tracked", (json_int_t)rm__serve_now_ms()));
}

void rm_serve_notify_acknowledged(rm_serve *s, const char *monitor_id) {
  if (!s->notify || !monitor_id || !json_object_get(s->notify->esc, monitor_id)) return;
  rm_log_info("notify", "monitor %s acknowledged: its escalation stops", monitor_id);
  json_object_del(s->notify->esc, monitor_id);
}

/* Notifies step number n of entry e as delivery id. */
static void escalate(rm_serve *s, const json_t *e, size_t n, const char *id) {
  const json_t *monitor = json_object_get(e, "monitor");
  const json_t *steps = steps_of(monitor);
  const json_t *step = json_array_get(steps, n);
  char extra[200];
  json_int_t ms = step_delay_ms(step);
  if (ms % 60000 == 0) snprintf(extra, sizeof extra, "Not acknowledged after %lld min (escalation step %zu of %zu).",
                                (long long)(ms / 60000), n + 1, json_array_size(steps));
  else snprintf(extra, sizeof extra, "Not acknowledged after %lld s (escalation step %zu of %zu).",
                (long long)(ms / 1000), n + 1, json_array_size(steps));
  json_t *meta = json_pack("{s:s, s:s, s:s}", "event", "escalation.failed", "object_kind", "monitor", "id", id);
  json_t *msg = rm__notify_transition_message(monitor, json_object_get(e, "transition"), "escalation", extra);
  json_object_set_new(json_object_get(msg, "fields"), "escalation_step", json_integer((json_int_t)n + 1));
  json_object_set_new(json_object_get(msg, "event"), "escalation",
                      json_pack("{s:I, s:I}", "step", (json_int_t)n + 1, "steps", (json_int_t)json_array_size(steps)));
  rm_log_info("notify", "monitor %s: %s", json_string_value(json_object_get(monitor, "id")), extra);
  rm__notify_dispatch(s, monitor, meta, msg, json_pack("[O]", json_object_get(step, "channel_id")));
}

/* ---- a due step: the signal is read (still Failed, the same
 * transition, unacknowledged?), then whether the step is recorded ---- */

typedef struct due {
  rm_serve *s;
  char *id;
  json_int_t seq;
  size_t step;
  char delivery[37];
} due;

static void due_free(due *d) {
  free(d->id);
  free(d);
}

/* The entry d is about, when it is still the same failure at the same step. */
static json_t *entry_of(const due *d) {
  json_t *e = json_object_get(d->s->notify->esc, d->id);
  if (!e || d->s->notify->closing || seq_of(e) != d->seq ||
      (size_t)json_integer_value(json_object_get(e, "next")) != d->step)
    return NULL;
  return e;
}

static void step_looked_up(void *ud, int err, const char *errmsg, json_t *row) {
  due *d = ud;
  json_t *e = entry_of(d);
  if (e && err && err != RM_ENOTFOUND) {
    rm_log_warn("notify", "escalation of monitor %s: looking its step up failed (trying again): %s", d->id, errmsg);
    json_object_del(e, "checking");
  } else if (e) {
    if (!err) rm_log_info("notify", "monitor %s: escalation step %zu was recorded before (delivery %s)", d->id,
                          d->step + 1, d->delivery);
    else escalate(d->s, e, d->step, d->delivery);
    json_object_set_new(e, "next", json_integer((json_int_t)d->step + 1));
    json_object_del(e, "checking");
  }
  json_decref(row);
  due_free(d);
}

static void signal_read(void *ud, int err, const char *errmsg, json_t *row) {
  due *d = ud;
  json_t *e = entry_of(d);
  const json_t *last = json_object_get(row, "last_transition");
  const char *state = json_string_value(json_object_get(row, "state"));
  if (!e) {
    /* stopped meanwhile, or a newer failure took its place */
  } else if (err && err != RM_ENOTFOUND) {
    rm_log_warn("notify", "escalation of monitor %s: reading its signal failed (trying again): %s", d->id, errmsg);
    json_object_del(e, "checking");
  } else if (err || !state || strcmp(state, "failed") != 0 || json_is_string(json_object_get(row, "acknowledged_by")) ||
             (json_is_integer(json_object_get(last, "seq")) && json_integer_value(json_object_get(last, "seq")) != d->seq)) {
    json_object_del(d->s->notify->esc, d->id); /* recovered, acknowledged (maybe elsewhere) or failed anew */
  } else {
    json_decref(row);
    rm_store_delivery_get(d->s->store, d->delivery, step_looked_up, d);
    return;
  }
  json_decref(row);
  due_free(d);
}

static void check_due(rm_serve *s, const char *id, json_t *e, int64_t now) {
  json_int_t since = json_integer_value(json_object_get(e, "since"));
  size_t next = (size_t)json_integer_value(json_object_get(e, "next"));
  const json_t *steps = steps_of(json_object_get(e, "monitor"));
  if (json_object_get(e, "checking") || next >= json_array_size(steps) ||
      now - since < step_delay_ms(json_array_get(steps, next)))
    return;
  due *d = calloc(1, sizeof *d);
  if (!d || !(d->id = strdup(id))) {
    free(d);
    return;
  }
  d->s = s;
  d->seq = seq_of(e);
  d->step = next;
  step_id(d->delivery, id, d->seq, next);
  json_object_set_new(e, "checking", json_true());
  rm_store_signal_get(s->store, id, signal_read, d);
}

void rm__notify_escalation_tick(uv_timer_t *t) {
  rm_serve *s = t->data;
  struct rm_serve_notify *ns = s->notify;
  if (s->stopping || ns->closing) return;
  rm__maint_tick(s);
  /* the first tick (rm__maint_tick counts it), then each minute */
  if (ns->ticks % RM_NOTIFY_RESTORE_TICKS == 1) rm__notify_escalation_restore(s);
  int64_t now = rm__serve_now_ms();
  const char *id;
  json_t *e;
  json_object_foreach(ns->esc, id, e) check_due(s, id, e, now);
}

/* ---- reading the policies back from the store ---- */

typedef struct restore {
  rm_serve *s;
  int page, pages;
  json_t *items; /* the page's signal rows */
  size_t at;     /* the next of items */
  json_t *seen;  /* {monitor id: true}: Failed and unacknowledged */
  json_t *monitor;
  int64_t started;
} restore;

static void next_row(restore *r);

static void restore_end(restore *r, bool complete) {
  struct rm_serve_notify *ns = r->s->notify;
  const char *id;
  json_t *e, *tmp;
  /* what the store no longer holds Failed (recovered or acknowledged on
   * another server) is forgotten; what was tracked during the pass stays */
  if (complete && !ns->closing)
    json_object_foreach_safe(ns->esc, tmp, id, e) if (!json_object_get(r->seen, id) &&
                                                      json_integer_value(json_object_get(e, "tracked")) < r->started)
        json_object_del(ns->esc, id);
  ns->restoring = false;
  json_decref(r->items);
  json_decref(r->seen);
  json_decref(r->monitor);
  free(r);
}

static void restore_signal(void *ud, int err, const char *errmsg, json_t *row) {
  restore *r = ud;
  const json_t *last = json_object_get(row, "last_transition");
  const char *state = json_string_value(json_object_get(row, "state"));
  if (err && err != RM_ENOTFOUND) rm_log_warn("notify", "reading a Failed signal back failed: %s", errmsg);
  else if (!err && state && strcmp(state, "failed") == 0 && !json_is_string(json_object_get(row, "acknowledged_by")) &&
           json_is_object(last))
    rm__notify_escalation_track(r->s, r->monitor, last);
  json_decref(row);
  json_decref(r->monitor);
  r->monitor = NULL;
  next_row(r);
}

static void restore_monitor(void *ud, int err, const char *errmsg, json_t *doc) {
  restore *r = ud;
  const char *id = json_string_value(json_object_get(doc, "id"));
  if (err && err != RM_ENOTFOUND) rm_log_warn("notify", "reading a monitor back for its escalation failed: %s", errmsg);
  if (!err && id && json_is_null(json_object_get(doc, "deleted_at")) && json_array_size(steps_of(doc))) {
    r->monitor = doc;
    rm_store_signal_get(r->s->store, id, restore_signal, r);
    return;
  }
  json_decref(doc);
  next_row(r);
}

static void restore_list(restore *r);

/* The next signal of the page that may need tracking, or the next page. */
static void next_row(restore *r) {
  struct rm_serve_notify *ns = r->s->notify;
  while (!ns->closing && r->at < json_array_size(r->items)) {
    const json_t *row = json_array_get(r->items, r->at++);
    const char *id = json_string_value(json_object_get(row, "object_id"));
    const json_t *e = id ? json_object_get(ns->esc, id) : NULL;
    if (!id || json_is_string(json_object_get(row, "acknowledged_by"))) continue; /* forgotten at the end */
    json_object_set_new(r->seen, id, json_true());
    if (e && seq_of(e) == json_integer_value(json_object_get(row, "transitions"))) continue; /* tracked */
    rm_store_doc_get(r->s->store, "monitor", id, restore_monitor, r);
    return;
  }
  if (!ns->closing && r->page < r->pages) {
    r->page++;
    restore_list(r);
  } else {
    restore_end(r, !ns->closing);
  }
}

static void restore_listed(void *ud, int err, const char *errmsg, json_t *res) {
  restore *r = ud;
  if (err) {
    rm_log_warn("notify", "reading Failed signals back for their escalations failed: %s", errmsg);
    json_decref(res);
    restore_end(r, false);
    return;
  }
  json_decref(r->items);
  r->items = json_incref(json_object_get(res, "items"));
  r->pages = (int)json_integer_value(json_object_get(res, "total_pages"));
  r->at = 0;
  json_decref(res);
  next_row(r);
}

static void restore_list(restore *r) {
  json_t *q = json_pack("{s:s, s:i, s:i, s:s}", "state", "failed", "page", r->page, "page_size", RESTORE_PAGE, "sort",
                        "object_id");
  rm_store_signal_list(r->s->store, q, restore_listed, r);
  json_decref(q);
}

void rm__notify_escalation_restore(rm_serve *s) {
  struct rm_serve_notify *ns = s->notify;
  if (ns->restoring || ns->closing) return;
  restore *r = calloc(1, sizeof *r);
  if (!r || !(r->seen = json_object())) {
    free(r);
    return;
  }
  r->s = s;
  r->page = 1;
  r->started = rm__serve_now_ms();
  ns->restoring = true;
  restore_list(r);
}
