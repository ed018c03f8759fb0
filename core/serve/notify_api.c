/* The delivery routes: what was notified through which channel, the
 * dead-letter list and re-sends.
 *   GET  /api/v1/deliveries            list: status (one, or a comma
 *                                      list: ?status=dead,failed),
 *                                      channel_id, object_id, event,
 *                                      run_id, from, to, page, page_size,
 *                                      sort (-created_at by default)
 *   GET  /api/v1/deliveries/{id}       one
 *   POST /api/v1/deliveries/{id}/resend  sends a dead or failed delivery
 *                                      again through its channel as it is
 *                                      now -> 202 with the delivery, queued
 * A delivery shows its message as "message" (scrubbed when it was made).
 * Seeing deliveries is seeing channels; re-sending is the channels'
 * "send a test notification" permission. Re-sends are audited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "serve/notify_int.h"
#include "store/deliveries.h"
#include "util/err.h"

/* The row as the API shows it (a new reference). */
static json_t *view(const json_t *row) {
  json_t *v = json_deep_copy(row);
  json_object_set(v, "message", json_object_get(v, "body"));
  json_object_del(v, "body");
  return v;
}

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm__serve_list_answer(ud, err, errmsg, res, view);
}

static void h_list(rm_hctx *c) {
  static const char *const known[] = {"status", "channel_id", "object_id", "event", "run_id", "from", "to", "sort",
                                      NULL};
  json_t *q = rm__serve_list_query(c, known, 50);
  if (!q) return;
  const char *st = json_string_value(json_object_get(q, "status"));
  if (st) {
    json_t *list = json_array();
    for (const char *p = st; *p;) {
      size_t n = strcspn(p, ",");
      if (n) json_array_append_new(list, json_stringn(p, n));
      p += n + (p[n] == ',');
    }
    json_object_set_new(q, "status", list);
  }
  rm_store_delivery_list(c->s->store, q, listed, c);
  json_decref(q);
}

static void got(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, row)) return;
  rm_hctx_ok(c, 200, view(row));
  json_decref(row);
}

static void h_get(rm_hctx *c) { rm_store_delivery_get(c->s->store, c->id, got, c); }

/* ---- resend: requeue (so two at once send once), the channel, send ---- */

static void resend_channel(void *ud, int err, const char *errmsg, json_t *ch) {
  rm_hctx *c = ud;
  const char *id = json_string_value(json_object_get(c->doc, "id"));
  bool live = !err && ch && json_is_null(json_object_get(ch, "deleted_at"));
  if (!live || c->s->notify->closing) {
    const char *why = c->s->notify->closing ? "the server is stopping"
                      : err && err != RM_ENOTFOUND ? "the channel could not be read"
                                                   : "no such channel (deleted?)";
    if (c->s->notify->closing) rm__notify_hand_back(c->s, id, 0, 0, why); /* the next server sends it */
    else rm__notify_end_unsent(c->s, id, "dead", why);
    json_decref(ch);
    if (err && err != RM_ENOTFOUND) rm_hctx_store_error(c, err, errmsg);
    else rm_hctx_error(c, RM_API_CONFLICT, why);
    return;
  }
  rm_hctx_audit(c, "delivery.resend", "delivery", id, NULL,
                json_pack("{s:O, s:O}", "channel_id", json_object_get(c->doc, "channel_id"), "resends",
                          json_object_get(c->doc, "resends")));
  json_t *answer = view(c->doc);
  rm__notify_send_row(c->s, ch, json_incref(c->doc));
  json_decref(ch);
  rm_hctx_ok(c, 202, answer);
}

static void requeued(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (err && c->req) {
    json_decref(row);
    rm_hctx_store_error(c, err, errmsg);
    return;
  }
  if (err) { /* the client went away before anything changed */
    json_decref(row);
    rm_hctx_free(c);
    return;
  }
  c->doc = row; /* queued (and leased) now: it is sent even if the client goes away */
  rm_store_doc_get(c->s->store, "channel", json_string_value(json_object_get(row, "channel_id")), resend_channel, c);
}

static void h_resend(rm_hctx *c) {
  const char *owner = rm__notify_owner(c->s);
  if (rm_hctx_empty_body(c))
    rm_store_delivery_requeue(c->s->store, c->id, owner ? owner : "-", rm__notify_lease_ms(c->s), requeued, c);
}

int rm_serve_notify_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/deliveries", h_list, RM_ACCESS_ROLE, RM_MOD_CHANNELS, RM_ACT_VIEW},
      {"GET", "/api/v1/deliveries/{id}", h_get, RM_ACCESS_ROLE, RM_MOD_CHANNELS, RM_ACT_VIEW},
      {"POST", "/api/v1/deliveries/{id}/resend", h_resend, RM_ACCESS_ROLE, RM_MOD_CHANNELS, RM_ACT_EXECUTE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
