/* Deliveries that outlive the process sending them.
 *
 * A queued delivery is leased to the process that sends it (the
 * executor's lease owner name, for executor.lease_ms, by the database's
 * clock: store/deliveries.h). While its sends retry, this clock renews
 * the leases every third of a lease. A process killed mid-send leaves its
 * deliveries queued with a lease that lapses; a shutdown cuts its sends
 * short and hands them back at once (rm__notify_hand_back). Either way
 * the next server that looks -- this clock runs at start and every third
 * of a lease -- claims them (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
 * servers never take the same one), reads their channel as it is now and
 * sends them again under the same id: the webhook event id and e-mail
 * Message-ID receivers deduplicate on. Delivery is at-least-once. */
#include <stdlib.h>
#include <string.h>

#include "serve/notify_int.h"
#include "store/deliveries.h"
#include "util/err.h"
#include "util/log.h"

#define DEFAULT_LEASE_MS 15000

uint64_t rm__notify_lease_ms(const rm_serve *s) { return s->st.lease_ms ? s->st.lease_ms : DEFAULT_LEASE_MS; }

/* ---- handing back ---- */

static void handed_back(void *ud, int err, const char *errmsg, json_t *row) {
  char *id = ud;
  if (err) rm_log_warn("notify", "handing delivery %s back failed (it is picked up when its lease lapses): %s", id,
                       errmsg);
  else rm_log_info("notify", "delivery %s handed back: the next server sends it", id);
  json_decref(row);
  free(id);
}

void rm__notify_hand_back(rm_serve *s, const char *id, unsigned attempts, long last_status, const char *why) {
  char *copy = strdup(id);
  json_t *o = json_pack("{s:s, s:i, s:I, s:s?}", "status", "queued", "attempts", (int)attempts, "last_status",
                        (json_int_t)last_status, "last_error", why && *why ? why : NULL);
  if (o) rm_secrets_scrub_json(s->secrets, o);
  if (copy && o) rm_store_delivery_end(s->store, id, o, handed_back, copy);
  else free(copy);
  json_decref(o);
}

/* ---- renewing ---- */

static void renewed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve *s = ud;
  s->notify->renewing = false;
  if (err) rm_log_warn("notify", "renewing delivery leases failed: %s", errmsg);
  json_decref(res);
}

/* ---- picking up ---- */

typedef struct pickup {
  rm_serve *s;
  json_t *row;
} pickup;

static void pickup_channel(void *ud, int err, const char *errmsg, json_t *ch) {
  pickup *p = ud;
  const char *id = json_string_value(json_object_get(p->row, "id"));
  if (!err && json_is_null(json_object_get(ch, "deleted_at"))) {
    rm__notify_send_row(p->s, ch, p->row);
  } else if (err && err != RM_ENOTFOUND) { /* the lease lapses again and the next claim retries */
    rm_log_warn("notify", "delivery %s: reading its channel failed: %s", id, errmsg);
    json_decref(p->row);
  } else {
    rm__notify_end_unsent(p->s, id, "dead", "no such channel (deleted?)");
    json_decref(p->row);
  }
  json_decref(ch);
  free(p);
}

static void claimed(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve *s = ud;
  s->notify->claiming = false;
  if (err) rm_log_warn("notify", "picking up deliveries left queued failed: %s", errmsg);
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(res, "items"), i, row) {
    if (s->notify->closing) { /* claimed as the server stops: left to the next one */
      rm__notify_hand_back(s, json_string_value(json_object_get(row, "id")), 0, 0, NULL);
      continue;
    }
    pickup *p = calloc(1, sizeof *p);
    if (!p) break;
    p->s = s;
    p->row = json_incref(row);
    rm_log_info("notify", "delivery %s (%s, left queued) picked up: sending it again",
                json_string_value(json_object_get(row, "id")), json_string_value(json_object_get(row, "event")));
    rm_store_doc_get(s->store, "channel", json_string_value(json_object_get(row, "channel_id")), pickup_channel, p);
  }
  json_decref(res);
}

static void lease_tick(uv_timer_t *t) {
  rm_serve *s = t->data;
  struct rm_serve_notify *ns = s->notify;
  const char *owner = rm__notify_owner(s);
  if (s->stopping || ns->closing || !owner) return;
  if (json_object_size(ns->sending) && !ns->renewing) {
    ns->renewing = true;
    rm_store_delivery_renew(s->store, owner, rm__notify_lease_ms(s), renewed, s);
  }
  if (!ns->claiming) {
    ns->claiming = true;
    rm_store_delivery_claim(s->store, owner, rm__notify_lease_ms(s), RM_NOTIFY_CLAIM_BATCH, claimed, s);
  }
}

void rm__notify_leases_start(rm_serve *s) {
  uint64_t every = rm__notify_lease_ms(s) / 3 ? rm__notify_lease_ms(s) / 3 : 1;
  uv_timer_start(&s->notify->lease_tick, lease_tick, 0, every);
}
