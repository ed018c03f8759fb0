/* Sending notifications and recording their deliveries.
 *
 * A notice (notify_int.h) goes through these steps, each a store or send
 * callback:
 *   1. the maintenance windows are listed; one that covers the object and
 *      suppresses notifications now holds every delivery back;
 *   2. per item, its channel's document is read: a missing (or deleted)
 *      channel makes a "dead" delivery, a disabled one or a window a
 *      "suppressed" one, otherwise a "queued" one, leased to this
 *      process, is recorded first (nothing when the notice names a
 *      delivery id that is recorded already);
 *   3. the queued delivery is sent with rm_notify_send (its retries and
 *      backoff), its id as the message id (webhook event id, e-mail
 *      Message-ID), so receivers can deduplicate a re-send;
 *   4. the outcome is recorded: delivered, dead (attempts exhausted or a
 *      permanent refusal: the dead-letter list) or failed (it could not
 *      start). A send a shutdown cuts short is handed back instead: it
 *      stays queued for the next server (notify_leases.c).
 * The message is scrubbed of every vault secret value before any of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/notify_int.h"
#include "store/deliveries.h"
#include "util/err.h"
#include "util/log.h"
#include "util/text.h"

typedef struct notice {
  rm_serve *s;
  json_t *object, *meta, *items;
} notice;

/* One delivery on its way: through the channel lookup, then the send. */
typedef struct one {
  rm_serve *s;
  json_t *d;       /* the row to add, then the row added */
  json_t *channel; /* the channel document */
  char *window;    /* the suppressing window's id, or NULL */
} one;

static void one_free(one *o) {
  json_decref(o->d);
  json_decref(o->channel);
  free(o->window);
  free(o);
}

const char *rm__notify_owner(rm_serve *s) { return s->ex ? rm_executor_owner(s->ex) : NULL; }

static void count(rm_serve *s, const char *outcome) {
  const char *v[] = {outcome};
  if (s->notify && s->notify->m_sent) rm_metric_add(s->notify->m_sent, v, 1);
}

/* ---- 4. the outcome ---- */

static void ended(void *ud, int err, const char *errmsg, json_t *row) {
  char *id = ud;
  if (err) rm_log_warn("notify", "recording the outcome of delivery %s failed: %s", id, errmsg);
  json_decref(row);
  free(id);
}

static void end_row(rm_serve *s, const char *id, json_t *o) {
  char *copy = strdup(id);
  if (copy) rm_store_delivery_end(s->store, id, o, ended, copy);
  json_decref(o);
}

void rm__notify_end_unsent(rm_serve *s, const char *id, const char *status, const char *why) {
  count(s, status);
  end_row(s, id, json_pack("{s:s, s:i, s:s}", "status", status, "attempts", 0, "last_error", why));
}

void rm__notify_record_outcome(rm_serve *s, const char *id, const rm_notify_outcome *out, rm_store_cb done,
                               void *ud) {
  if (out->cancelled) { /* the shutdown: the next server sends it */
    rm__notify_hand_back(s, id, out->attempts, out->status, out->error);
    if (done) done(ud, RM_ECANCELED, "the server is stopping: the delivery is handed back", NULL);
    return;
  }
  const char *st = out->delivered ? "delivered" : "dead";
  count(s, st);
  if (out->delivered)
    rm_log_info("notify", "delivery %s through %s channel %s: delivered after %u attempt(s)", id, out->type,
                out->channel, out->attempts);
  else
    rm_log_warn("notify", "delivery %s through %s channel %s: %s: %s", id, out->type, out->channel, st, out->error);
  json_t *rec = json_pack("{s:s, s:i, s:I, s:s?}", "status", st, "attempts", (int)out->attempts, "last_status",
                          (json_int_t)out->status, "last_error", out->delivered ? NULL : out->error);
  if (rec) rm_secrets_scrub_json(s->secrets, rec);
  if (!done) {
    end_row(s, id, rec);
    return;
  }
  if (rec) rm_store_delivery_end(s->store, id, rec, done, ud);
  else done(ud, RM_ENOMEM, "out of memory", NULL);
  json_decref(rec);
}

static void sent(const rm_notify_outcome *out, void *ud) {
  one *o = ud;
  const char *id = json_string_value(json_object_get(o->d, "id"));
  json_object_del(o->s->notify->sending, id);
  rm__notify_record_outcome(o->s, id, out, NULL, NULL);
  one_free(o);
}

/* ---- 3. the send ---- */

void rm__notify_send_row(rm_serve *s, const json_t *channel, json_t *row) {
  struct rm_serve_notify *ns = s->notify;
  const char *id = json_string_value(json_object_get(row, "id"));
  if (id && json_object_get(ns->sending, id)) { /* already on its way here (a claim of our own lapsed lease) */
    json_decref(row);
    return;
  }
  one *o = calloc(1, sizeof *o);
  json_t *msg = json_deep_copy(json_object_get(row, "body"));
  int rc = !o || !msg || !id ? RM_ENOMEM : ns->closing ? RM_ECANCELED : 0;
  if (!rc) {
    o->s = s;
    o->d = row;
    o->channel = json_deep_copy(channel);
    json_object_set_new(msg, "id", json_string(id));
    rc = rm_notify_send(&ns->n, o->channel, msg, sent, o);
  }
  json_decref(msg);
  if (!rc) {
    json_object_set_new(ns->sending, id, json_true());
    return;
  }
  if (id && rc == RM_ECANCELED) rm__notify_hand_back(s, id, 0, 0, "the server was stopping");
  else if (id) rm__notify_end_unsent(s, id, "failed", rm_strerror(rc));
  if (o && o->d) one_free(o);
  else {
    free(o);
    json_decref(row);
  }
}

/* ---- 2. per channel ---- */

static void added(void *ud, int err, const char *errmsg, json_t *row) {
  one *o = ud;
  if (err) {
    rm_log_error("notify", "recording a delivery to channel %s failed: %s",
                 json_string_value(json_object_get(o->d, "channel_id")), errmsg);
    json_decref(row);
    one_free(o);
    return;
  }
  if (!row) { /* its id is recorded already: another process (or our previous life) took it */
    rm_log_debug("notify", "delivery %s is recorded already", json_string_value(json_object_get(o->d, "id")));
    one_free(o);
    return;
  }
  const char *st = json_string_value(json_object_get(row, "status"));
  if (strcmp(st, "queued") == 0) rm__notify_send_row(o->s, o->channel, row);
  else {
    count(o->s, st);
    json_decref(row);
  }
  one_free(o);
}

/* The status a delivery starts with, and why, from its channel. */
static void initial_status(one *o, const json_t *ch, int err, bool live) {
  json_t *d = o->d;
  if (!live) {
    json_object_set_new(d, "status", json_string("dead"));
    json_object_set_new(d, "last_error", json_string(err && err != RM_ENOTFOUND ? "the channel could not be read"
                                                                                 : "no such channel (deleted?)"));
  } else if (o->window) {
    json_object_set_new(d, "status", json_string("suppressed"));
    json_object_set_new(d, "suppressed_by", json_string(o->window));
    json_object_set_new(d, "last_error", json_string("held back by a maintenance window"));
  } else if (json_is_false(json_object_get(ch, "enabled"))) {
    json_object_set_new(d, "status", json_string("suppressed"));
    json_object_set_new(d, "last_error", json_string("the channel is disabled"));
  } else {
    const char *owner = rm__notify_owner(o->s);
    json_object_set_new(d, "status", json_string("queued"));
    if (owner) json_object_set_new(d, "lease_owner", json_string(owner));
    json_object_set_new(d, "lease_ms", json_integer((json_int_t)rm__notify_lease_ms(o->s)));
  }
}

static void got_channel(void *ud, int err, const char *errmsg, json_t *ch) {
  one *o = ud;
  json_t *d = o->d;
  bool live = !err && ch && json_is_null(json_object_get(ch, "deleted_at"));
  if (err && err != RM_ENOTFOUND) rm_log_warn("notify", "reading a channel failed: %s", errmsg);
  if (live) {
    json_object_set(d, "channel_name", json_object_get(ch, "name"));
    json_object_set(d, "channel_type", json_object_get(ch, "type"));
    json_t *event = json_object_get(json_object_get(d, "body"), "event");
    if (json_is_object(event)) json_object_set(event, "channel", json_object_get(ch, "name"));
  }
  initial_status(o, ch, err, live);
  o->channel = live ? ch : NULL;
  if (!live) json_decref(ch);
  rm_store_delivery_add(o->s->store, d, added, o);
}

/* ---- 1. the windows ---- */

static void notice_free(notice *n) {
  json_decref(n->object);
  json_decref(n->meta);
  json_decref(n->items);
  free(n);
}

static void per_channel(notice *n, const json_t *window) {
  size_t i;
  json_t *item;
  const char *wid = json_string_value(json_object_get(window, "id"));
  json_array_foreach(n->items, i, item) {
    one *o = calloc(1, sizeof *o);
    if (!o) break;
    o->s = n->s;
    o->window = wid ? strdup(wid) : NULL;
    o->d = json_deep_copy(n->meta);
    json_object_set(o->d, "channel_id", json_object_get(item, "channel_id"));
    json_object_set(o->d, "object_id", json_object_get(n->object, "id"));
    json_object_set_new(o->d, "body", json_deep_copy(json_object_get(item, "message")));
    rm_store_doc_get(n->s->store, "channel", json_string_value(json_object_get(item, "channel_id")), got_channel, o);
  }
}

static void windows_listed(void *ud, int err, const char *errmsg, json_t *res) {
  notice *n = ud;
  const json_t *w = NULL;
  if (err) rm_log_warn("notify", "listing maintenance windows failed (notifying anyway): %s", errmsg);
  else w = rm__maint_covering(n->s->notify->tz, json_object_get(res, "items"), n->object, "notifications",
                              rm__serve_now_ms());
  if (w)
    rm_log_info("notify", "%s of %s held back by maintenance window %s",
                json_string_value(json_object_get(n->meta, "event")),
                json_string_value(json_object_get(n->object, "id")), json_string_value(json_object_get(w, "name")));
  per_channel(n, w);
  json_decref(res);
  notice_free(n);
}

void rm__notify_dispatch_each(rm_serve *s, const json_t *object, json_t *meta, json_t *items) {
  notice *n = calloc(1, sizeof *n);
  if (!n || !meta || !json_array_size(items) || !s->notify || s->notify->closing) {
    json_decref(meta);
    json_decref(items);
    free(n);
    return;
  }
  size_t i;
  json_t *item;
  json_array_foreach(items, i, item) rm_secrets_scrub_json(s->secrets, json_object_get(item, "message"));
  n->s = s;
  n->object = json_deep_copy(object);
  n->meta = meta;
  n->items = items;
  json_t *q = json_pack("{s:i}", "page_size", 500);
  rm_store_doc_list(s->store, "maintenance", q, windows_listed, n);
  json_decref(q);
}

void rm__notify_dispatch(rm_serve *s, const json_t *object, json_t *meta, json_t *message, json_t *channels) {
  json_t *items = json_array();
  size_t i;
  json_t *cid;
  json_array_foreach(channels, i, cid)
      json_array_append_new(items, json_pack("{s:O, s:O}", "channel_id", cid, "message", message));
  json_decref(message);
  json_decref(channels);
  rm__notify_dispatch_each(s, object, meta, items);
}

/* ---- lifecycle ---- */

int rm_serve_notify_init(rm_serve *s) {
  static const char *const outcome[] = {"outcome", NULL};
  struct rm_serve_notify *ns = calloc(1, sizeof *ns);
  if (!ns) return -1;
  ns->s = s;
  s->notify = ns;
  ns->esc = json_object();
  ns->held = json_object();
  ns->sending = json_object();
  ns->tz = rm_tz_registry_new(NULL);
  ns->m_sent = rm_metrics_counter(&s->metrics, "restmon_notification_deliveries_total",
                                  "Notification deliveries ended, by outcome (delivered, dead, failed, suppressed).",
                                  outcome);
  unsigned attempts = s->st.notify_attempts > RM_WEBHOOK_MAX_ATTEMPTS ? RM_WEBHOOK_MAX_ATTEMPTS
                                                                      : (unsigned)s->st.notify_attempts;
  rm_notify_opts no = {.secret = rm_notify_vault_secret, .secret_ud = s->secrets, .max_attempts = attempts,
                       .backoff_ms = (unsigned)s->st.notify_backoff_ms, .max_delay_ms = (unsigned)s->st.notify_max_delay_ms,
                       .lua = &s->host}; /* channel plugins */
  uv_timer_init(&s->loop, &ns->tick);
  uv_timer_init(&s->loop, &ns->lease_tick);
  ns->tick.data = ns->lease_tick.data = s;
  if (!ns->esc || !ns->held || !ns->sending || !ns->tz || rm_notify_init(&ns->n, &s->http, &no) != 0) {
    ns->closing = true; /* nothing to close but the timers */
    return -1;
  }
  uv_timer_start(&ns->tick, rm__notify_escalation_tick, RM_NOTIFY_TICK_MS, RM_NOTIFY_TICK_MS);
  rm__notify_leases_start(s);
  return 0;
}

void rm_serve_notify_stop(rm_serve *s) {
  struct rm_serve_notify *ns = s->notify;
  if (!ns) return;
  if (!uv_is_closing((uv_handle_t *)&ns->tick)) uv_close((uv_handle_t *)&ns->tick, NULL);
  if (!uv_is_closing((uv_handle_t *)&ns->lease_tick)) uv_close((uv_handle_t *)&ns->lease_tick, NULL);
}

static void notifier_closed(rm_notifier *n) {
  struct rm_serve_notify *ns = (struct rm_serve_notify *)(void *)((char *)n - offsetof(struct rm_serve_notify, n));
  ns->closed(ns->s);
}

void rm_serve_notify_close(rm_serve *s, void (*done)(rm_serve *s)) {
  struct rm_serve_notify *ns = s->notify;
  rm_serve_notify_stop(s);
  if (!ns || ns->closing) {
    done(s);
    return;
  }
  ns->closing = true;
  ns->closed = done;
  rm_notify_close(&ns->n, notifier_closed);
}

void rm_serve_notify_free(rm_serve *s) {
  if (!s->notify) return;
  json_decref(s->notify->esc);
  json_decref(s->notify->held);
  json_decref(s->notify->sending);
  json_decref(s->notify->hooks);
  if (s->notify->tz) rm_tz_registry_free(s->notify->tz);
  free(s->notify);
  s->notify = NULL;
}
