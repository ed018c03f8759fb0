/* The channel routes beyond create/read/update/delete (defs_api.c):
 *
 *   GET  /api/v1/channel-types       any signed-in user: every channel type
 *                                    -- the built-in webhook and email, then
 *                                    the channel plugins loaded -- with the
 *                                    fields of its settings, for a form:
 *                                    {items: [{type, builtin, label,
 *                                    description, version, fields}], page,
 *                                    page_size, total, total_pages}
 *   POST /api/v1/channels/{id}/test  channels: execute. Sends a test message
 *                                    now, one attempt, and answers with how
 *                                    it went: {delivered, permanent, status,
 *                                    attempts, error, delivery_id, delivery}.
 *                                    Body: {} or {title?, text?, severity?}.
 *
 * A test is a delivery like any other (event "channel.test", object_kind
 * "channel", object_id the channel's id): recorded queued before it is
 * sent, ended with the outcome (so it shows in the dead letters when it
 * fails, and can be re-sent), counted, and audited. It goes out whatever
 * the channel's enabled flag or a maintenance window say: trying a
 * channel before turning it on is what it is for. Its error is scrubbed
 * of every vault secret value, as every delivery's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/admin.h"
#include "serve/defs.h"
#include "serve/notify_int.h"
#include "store/deliveries.h"
#include "util/err.h"

#define TEXT_MAX 2000

/* ---- GET /api/v1/channel-types ---- */

static void no_params(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                      void *ud) {
  (void)q, (void)name, (void)value, (void)ud;
  rm_api_details_add(d, path, "unknown parameter (page and page_size are the only ones)");
}

static void h_types(rm_hctx *c) {
  json_t *q = rm_hctx_list_query(c, 50, no_params, NULL);
  if (!q) return;
  rm_api_page pg = {.page = (long)json_integer_value(json_object_get(q, "page")),
                    .page_size = (long)json_integer_value(json_object_get(q, "page_size"))};
  json_decref(q);
  json_t *all = rm_defs_channel_types(c->s), *items = json_array();
  size_t total = json_array_size(all), first = (size_t)((pg.page - 1) * pg.page_size);
  for (size_t i = first; items && i < total && i < first + (size_t)pg.page_size; i++)
    json_array_append(items, json_array_get(all, i));
  bool ok = all && items;
  json_decref(all);
  json_t *data = ok ? rm_api_page_data(items, &pg, (long)total) : NULL; /* steals items */
  if (!ok) json_decref(items);
  if (!data) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_hctx_ok(c, 200, data);
}

/* ---- POST /api/v1/channels/{id}/test ---- */

/* The test message (a new reference): the body's title, text and
 * severity, or a text that says what it is. */
static json_t *test_message(rm_hctx *c, const json_t *ch) {
  const json_t *b = c->doc;
  const char *name = json_string_value(json_object_get(ch, "name")), *user = rm_hctx_user_name(c);
  const char *title = json_string_value(json_object_get(b, "title"));
  const char *text = json_string_value(json_object_get(b, "text"));
  const char *sev = json_string_value(json_object_get(b, "severity"));
  char dflt[400], at[32];
  snprintf(dflt, sizeof dflt, "A test of the channel %.150s, sent by %.100s from RestMon.", name ? name : "",
           user ? user : "");
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *m = json_pack("{s:s, s:s, s:s, s:{s:s?, s:s?}, s:{s:s, s:s, s:s?, s:{s:O, s:O, s:O}}}", "title",
                        title ? title : "RestMon test notification", "text", text ? text : dflt, "severity",
                        sev ? sev : "info", "fields", "channel", name, "sent_by", user, "event", "event",
                        "channel.test", "at", at, "by", user, "channel", "id", json_object_get(ch, "id"), "name",
                        json_object_get(ch, "name"), "type", json_object_get(ch, "type"));
  if (m) rm_secrets_scrub_json(c->s->secrets, m);
  return m;
}

/* The delivery as the deliveries routes show it (a new reference). */
static json_t *delivery_view(const json_t *row) {
  json_t *v = json_deep_copy(row);
  json_object_set(v, "message", json_object_get(v, "body"));
  json_object_del(v, "body");
  return v;
}

/* The outcome is recorded (row), or the shutdown handed the test back. */
static void recorded(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (err == RM_ECANCELED) {
    rm_hctx_error(c, RM_API_UNAVAILABLE, errmsg);
    return;
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, row)) return;
  json_t *answer = c->doc; /* the outcome */
  c->doc = NULL;
  json_object_set_new(answer, "delivery_id", json_string(json_string_value(json_object_get(row, "id"))));
  json_object_set_new(answer, "delivery", delivery_view(row));
  rm_hctx_audit(c, "channel.test", "channel", c->id, NULL,
                json_pack("{s:O, s:O, s:O, s:O, s:O}", "delivery_id", json_object_get(answer, "delivery_id"),
                          "delivered", json_object_get(answer, "delivered"), "status",
                          json_object_get(answer, "status"), "attempts", json_object_get(answer, "attempts"),
                          "error", json_object_get(answer, "error")));
  json_decref(row);
  rm_hctx_ok(c, 200, answer);
}

static void tested(const rm_notify_outcome *out, void *ud) {
  rm_hctx *c = ud;
  json_object_del(c->s->notify->sending, c->text);
  json_t *o = rm_notify_outcome_json(out);
  if (o) rm_secrets_scrub_json(c->s->secrets, o);
  json_decref(c->doc);
  c->doc = o;
  rm__notify_record_outcome(c->s, c->text, out, recorded, c);
}

/* The delivery is recorded, queued and leased to this process: send it. */
static void added(void *ud, int err, const char *errmsg, json_t *row) {
  rm_hctx *c = ud;
  if (!err && !row) err = RM_EEXIST, errmsg = "a delivery with this id exists already";
  if (err) {
    json_decref(row);
    rm_hctx_store_error(c, err, errmsg);
    return;
  }
  struct rm_serve_notify *ns = c->s->notify;
  const char *id = json_string_value(json_object_get(row, "id"));
  json_t *msg = json_deep_copy(json_object_get(row, "body"));
  free(c->text);
  c->text = id ? strdup(id) : NULL;
  int rc = !msg || !c->text ? RM_ENOMEM : ns->closing ? RM_ECANCELED : 0;
  if (!rc) {
    json_object_set_new(msg, "id", json_string(c->text));
    rc = rm_notify_send_attempts(&ns->n, c->doc2, msg, 1, tested, c);
  }
  json_decref(msg);
  json_decref(row);
  if (!rc) {
    json_object_set_new(ns->sending, c->text, json_true());
    return;
  }
  if (c->text) rm__notify_end_unsent(c->s, c->text, "failed", rm_strerror(rc));
  rm_hctx_error(c, rc == RM_ECANCELED ? RM_API_UNAVAILABLE : RM_API_INTERNAL,
                rc == RM_ECANCELED ? "the server is stopping" : rm_strerror(rc));
}

/* The channel is loaded (c->doc2): record the test delivery. */
static void test_loaded(rm_hctx *c) {
  rm_serve *s = c->s;
  if (!s->notify || s->notify->closing) {
    rm_hctx_error(c, RM_API_UNAVAILABLE, "notifications are not running (the server is stopping?)");
    return;
  }
  const char *owner = rm__notify_owner(s);
  json_t *d = json_pack("{s:O, s:O, s:O, s:s, s:s, s:s, s:s, s:o, s:s?, s:I}", "channel_id",
                        json_object_get(c->doc2, "id"), "channel_name", json_object_get(c->doc2, "name"),
                        "channel_type", json_object_get(c->doc2, "type"), "event", "channel.test", "object_kind",
                        "channel", "object_id", c->id, "status", "queued", "body", test_message(c, c->doc2),
                        "lease_owner", owner, "lease_ms", (json_int_t)rm__notify_lease_ms(s));
  if (!d) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_store_delivery_add(s->store, d, added, c);
  json_decref(d);
}

/* title, text: non-empty strings of at most TEXT_MAX bytes; severity. */
static bool test_body_ok(rm_hctx *c, const json_t *b) {
  static const char *const sevs[] = {"info", "warning", "critical", NULL};
  rm_api_details d = RM_API_DETAILS_INIT;
  static const char *const texts[] = {"title", "text", NULL};
  for (size_t i = 0; texts[i]; i++) {
    const json_t *v = json_object_get(b, texts[i]);
    char path[16];
    snprintf(path, sizeof path, "$.%s", texts[i]);
    if (v && (!json_is_string(v) || !*json_string_value(v) || json_string_length(v) > TEXT_MAX))
      rm_api_details_add(&d, path, "must be a non-empty string of at most 2000 bytes");
  }
  const json_t *sev = json_object_get(b, "severity");
  if (sev && rm_dc_index(sevs, json_string_value(sev)) < 0)
    rm_api_details_add(&d, "$.severity", "must be one of info, warning, critical");
  if (!rm_api_details_count(&d)) return true;
  rm_hctx_invalid(c, RM_API_INVALID, &d);
  return false;
}

static void h_test(rm_hctx *c) {
  static const char *const allowed[] = {"title", "text", "severity", NULL};
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  json_t *b = len ? rm_hctx_body(c, allowed) : NULL;
  if (len && !b) return;
  if (b && !test_body_ok(c, b)) return;
  c->doc = b ? json_deep_copy(b) : json_object();
  rm_defs_load(c, "channel", test_loaded);
}

int rm_serve_channel_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/channel-types", h_types, RM_ACCESS_USER, 0, 0},
      {"POST", "/api/v1/channels/{id}/test", h_test, RM_ACCESS_ROLE, RM_MOD_CHANNELS, RM_ACT_EXECUTE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
