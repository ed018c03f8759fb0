/* The global configuration, GET/PUT /config, and what follows from it:
 * the lifetime of new sessions, the retention of finished runs (the
 * executor deletes them), of the audit trail, of signal transitions and
 * of ended notification deliveries (a timer here: one pass every
 * RETENTION_EVERY_MS, each in batches).
 *
 * It is one store document of kind "config", id and name "global", that
 * holds only what an admin set: session_ttl_s, audit_retention_days,
 * transition_retention_days, delivery_retention_days, run_retention {succeeded_days,
 * failed_days}. What it does not hold comes from restmon.conf
 * (auth.session_ttl_s, retention.succeeded_days, retention.failed_days);
 * audit entries are kept forever unless audit_retention_days is set;
 * signal transitions for TRANSITION_DAYS (a signal's latest transition is
 * always kept) and ended deliveries for DELIVERY_DAYS. A null in PUT goes
 * back to that default.
 * The stored values apply from the start (rm_serve_admin_load) and at
 * once after each change; other servers on the same store put a change
 * in force within seconds (def_sync.c calls rm__serve_config_sync). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "store/deliveries.h"
#include "util/err.h"
#include "util/log.h"

#define CONFIG_ID "global"
#define DAY_MS 86400000.0
#define MAX_DAYS 36500
#define TTL_MIN_S 60
#define TTL_MAX_S 31536000 /* a year */
#define RETENTION_EVERY_MS (10 * 60 * 1000)
#define RETENTION_BATCH 500
#define TRANSITION_DAYS 90 /* default: about a quarter of signal history */
#define DELIVERY_DAYS 30   /* default: a month of delivery records and dead letters */

/* What the retention timer prunes, in this order. */
enum { RET_AUDIT, RET_TRANSITIONS, RET_DELIVERIES, RET_N };

struct rm_serve_admin {
  rm_serve *s;
  uint64_t conf_ttl_s, conf_success_ms, conf_failed_ms; /* restmon.conf: the defaults */
  uint64_t keep_ms[RET_N];                              /* retention of each; 0 keeps */
  int stage;                                            /* of the current pass */
  uint64_t deleted;                                     /* by the current stage */
  json_int_t version;                                   /* of the stored document in force (0: none) */
  uv_timer_t timer;
  bool timer_on, busy, stopping;
};

/* The values in force. */
typedef struct gconf {
  double ttl_s, audit_days, trans_days, ok_days, bad_days, deliv_days;
} gconf;

/* v when it is a number in [lo, hi], else dflt (unset, or a stored value
 * this version would refuse). */
static double num_or(const json_t *v, double lo, double hi, double dflt) {
  if (!json_is_number(v)) return dflt;
  double n = json_number_value(v);
  return n >= lo && n <= hi ? n : dflt;
}

static gconf effective(const struct rm_serve_admin *a, const json_t *doc) {
  const json_t *rr = json_object_get(doc, "run_retention");
  gconf g = {num_or(json_object_get(doc, "session_ttl_s"), TTL_MIN_S, TTL_MAX_S, (double)a->conf_ttl_s),
             num_or(json_object_get(doc, "audit_retention_days"), 0, MAX_DAYS, 0),
             num_or(json_object_get(doc, "transition_retention_days"), 0, MAX_DAYS, TRANSITION_DAYS),
             num_or(json_object_get(rr, "succeeded_days"), 0, MAX_DAYS, (double)a->conf_success_ms / DAY_MS),
             num_or(json_object_get(rr, "failed_days"), 0, MAX_DAYS, (double)a->conf_failed_ms / DAY_MS),
             num_or(json_object_get(doc, "delivery_retention_days"), 0, MAX_DAYS, DELIVERY_DAYS)};
  return g;
}

/* A number of days as JSON: whole numbers as integers. */
static json_t *days_json(double d) {
  return d == (double)(json_int_t)d ? json_integer((json_int_t)d) : json_real(d);
}

static json_t *gconf_json(const gconf *g) {
  return json_pack("{s:I, s:o, s:o, s:o, s:{s:o, s:o}}", "session_ttl_s", (json_int_t)g->ttl_s,
                   "audit_retention_days", days_json(g->audit_days), "transition_retention_days",
                   days_json(g->trans_days), "delivery_retention_days", days_json(g->deliv_days), "run_retention",
                   "succeeded_days", days_json(g->ok_days), "failed_days", days_json(g->bad_days));
}

static uint64_t days_ms(double d) { return (uint64_t)(d * DAY_MS + 0.5); }

/* ---- audit and transition retention ---- */

typedef void (*prune_fn)(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud);
static const struct {
  const char *what;
  prune_fn fn;
} stages[RET_N] = {{"audit", rm_store_audit_retention},
                   {"signal transition", rm_store_transition_retention},
                   {"delivery", rm_store_delivery_retention}};

static void retention_step(uv_timer_t *t);

static void pruned(void *ud, int err, const char *errmsg, json_t *res) {
  struct rm_serve_admin *a = ud;
  a->busy = false;
  bool more = !err && json_is_true(json_object_get(res, "more"));
  a->deleted += (uint64_t)json_integer_value(json_object_get(res, "deleted"));
  json_decref(res);
  if (err) rm_log_warn("config", "%s retention cleanup failed: %s", stages[a->stage].what, errmsg);
  if (a->stopping) return;
  if (more) { /* the next batch after a pause, so the store serves other work between */
    uv_timer_start(&a->timer, retention_step, 20, 0);
    return;
  }
  if (a->deleted)
    rm_log_info("config", "%s retention: deleted %llu old entries", stages[a->stage].what,
                (unsigned long long)a->deleted);
  a->deleted = 0;
  a->stage++;
  uv_timer_start(&a->timer, retention_step, 0, 0);
}

/* The next batch of the current stage; after the last stage, the next
 * pass in RETENTION_EVERY_MS. */
static void retention_step(uv_timer_t *t) {
  struct rm_serve_admin *a = t->data;
  if (a->stopping || a->busy) return;
  while (a->stage < RET_N && !a->keep_ms[a->stage]) a->stage++;
  if (a->stage >= RET_N) {
    a->stage = 0;
    uv_timer_start(&a->timer, retention_step, RETENTION_EVERY_MS, 0);
    return;
  }
  a->busy = true;
  stages[a->stage].fn(a->s->store, a->keep_ms[a->stage], RETENTION_BATCH, pruned, a);
}

/* Puts g in force: new logins, the executor's retention and this one (a
 * pass at once when a period changed). */
static void apply(struct rm_serve_admin *a, const gconf *g) {
  rm_serve *s = a->s;
  uint64_t ok = days_ms(g->ok_days), bad = days_ms(g->bad_days);
  uint64_t keep[RET_N] = {days_ms(g->audit_days), days_ms(g->trans_days), days_ms(g->deliv_days)};
  s->st.session_ttl_s = (uint64_t)g->ttl_s;
  if ((ok != s->st.retention_success_ms || bad != s->st.retention_failed_ms) && s->ex)
    rm_executor_set_retention(s->ex, ok, bad);
  s->st.retention_success_ms = ok;
  s->st.retention_failed_ms = bad;
  bool kick = false;
  for (int i = 0; i < RET_N; i++) {
    kick = kick || (keep[i] != a->keep_ms[i] && keep[i]);
    a->keep_ms[i] = keep[i];
  }
  if (kick && a->timer_on && !a->stopping && !a->busy) {
    a->stage = 0;
    a->deleted = 0;
    uv_timer_start(&a->timer, retention_step, 0, 0);
  }
}

/* Puts the stored document doc (NULL: none) in force. */
static void apply_doc(struct rm_serve_admin *a, const json_t *doc) {
  gconf g = effective(a, doc);
  apply(a, &g);
  a->version = json_integer_value(json_object_get(doc, "version"));
}

void rm__serve_config_sync(rm_serve *s, const json_t *doc) {
  struct rm_serve_admin *a = s->admin;
  const char *id = json_string_value(json_object_get(doc, "id"));
  json_int_t v = json_integer_value(json_object_get(doc, "version"));
  if (!a || !id || strcmp(id, CONFIG_ID) != 0 || v <= a->version) return; /* in force already, or older */
  apply_doc(a, rm__serve_live(doc) ? doc : NULL);
  rm_log_info("config", "global configuration version %lld in force (changed through another server)", (long long)v);
}

/* ---- GET /config ---- */

/* The answer: the values in force, the stored document's version (0
 * before the first change), and the defaults. */
static json_t *config_view(const struct rm_serve_admin *a, const json_t *doc) {
  gconf g = effective(a, doc), d = effective(a, NULL);
  json_t *v = gconf_json(&g);
  json_object_set_new(v, "version", json_integer(json_integer_value(json_object_get(doc, "version"))));
  json_object_set(v, "updated_at", doc ? json_object_get(doc, "updated_at") : json_null());
  json_object_set(v, "updated_by", doc && json_object_get(doc, "updated_by") ? json_object_get(doc, "updated_by")
                                                                               : json_null());
  json_object_set_new(v, "defaults", gconf_json(&d));
  return v;
}

static void got(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err == RM_ENOTFOUND ? 0 : err, errmsg, doc)) return;
  rm_hctx_ok(c, 200, config_view(c->s->admin, doc));
  json_decref(doc);
}

static void h_get(rm_hctx *c) { rm_store_doc_get(c->s->store, "config", CONFIG_ID, got, c); }

/* ---- PUT /config ---- */

static void check_number(rm_api_details *d, const json_t *o, const char *key, const char *path, double lo,
                         double hi, bool integer) {
  const json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return;
  double n = json_number_value(v);
  if (!(integer ? json_is_integer(v) : json_is_number(v)) || n < lo || n > hi)
    rm_api_details_add(d, path, "expected %s from %.15g to %.15g, or null for the default",
                       integer ? "an integer" : "a number",
                       lo, hi);
}

static void check_body(rm_api_details *d, const json_t *b) {
  static const char *const rr_keys[] = {"succeeded_days", "failed_days", NULL};
  const json_t *v = json_object_get(b, "version"), *rr = json_object_get(b, "run_retention");
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    rm_api_details_add(d, "$.version", "required: the version you read (0 before the first change)");
  check_number(d, b, "session_ttl_s", "$.session_ttl_s", TTL_MIN_S, TTL_MAX_S, true);
  check_number(d, b, "audit_retention_days", "$.audit_retention_days", 0, MAX_DAYS, false);
  check_number(d, b, "transition_retention_days", "$.transition_retention_days", 0, MAX_DAYS, false);
  check_number(d, b, "delivery_retention_days", "$.delivery_retention_days", 0, MAX_DAYS, false);
  if (rr && !json_is_null(rr) && !json_is_object(rr)) {
    rm_api_details_add(d, "$.run_retention", "expected an object {succeeded_days, failed_days}, or null");
    return;
  }
  rm_api_details_unknown_fields(d, rr, "$.run_retention", rr_keys);
  check_number(d, rr, "succeeded_days", "$.run_retention.succeeded_days", 0, MAX_DAYS, false);
  check_number(d, rr, "failed_days", "$.run_retention.failed_days", 0, MAX_DAYS, false);
}

/* Sets key of o to v, or removes it when v is null. */
static void set_or_clear(json_t *o, const char *key, json_t *v) {
  if (!v) return;
  if (json_is_null(v)) json_object_del(o, key);
  else json_object_set(o, key, v);
}

/* The stored document after the change in body b. */
static json_t *changed_doc(const json_t *cur, const json_t *b, const char *by) {
  json_t *doc = cur ? json_deep_copy(cur) : json_pack("{s:s, s:s}", "id", CONFIG_ID, "name", CONFIG_ID);
  set_or_clear(doc, "session_ttl_s", json_object_get(b, "session_ttl_s"));
  set_or_clear(doc, "audit_retention_days", json_object_get(b, "audit_retention_days"));
  set_or_clear(doc, "transition_retention_days", json_object_get(b, "transition_retention_days"));
  set_or_clear(doc, "delivery_retention_days", json_object_get(b, "delivery_retention_days"));
  json_t *rr_in = json_object_get(b, "run_retention");
  if (json_is_object(rr_in)) {
    json_t *rr = json_object_get(doc, "run_retention");
    rr = json_is_object(rr) ? json_deep_copy(rr) : json_object();
    set_or_clear(rr, "succeeded_days", json_object_get(rr_in, "succeeded_days"));
    set_or_clear(rr, "failed_days", json_object_get(rr_in, "failed_days"));
    json_object_set_new(doc, "run_retention", rr);
  }
  if (json_is_null(rr_in) || json_object_size(json_object_get(doc, "run_retention")) == 0)
    json_object_del(doc, "run_retention");
  json_object_set(doc, "version", json_object_get(b, "version"));
  json_object_set_new(doc, "updated_by", json_string(by ? by : ""));
  return doc;
}

static void put_done(void *ud, int err, const char *errmsg, json_t *doc) {
  rm_hctx *c = ud;
  struct rm_serve_admin *a = c->s->admin;
  if (!err) {
    gconf before = effective(a, c->doc), after = effective(a, doc);
    if (json_integer_value(json_object_get(doc, "version")) > a->version) apply_doc(a, doc); /* not older than a synced one */
    rm_hctx_audit(c, "config.update", "config", CONFIG_ID, gconf_json(&before), gconf_json(&after));
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, doc)) return;
  rm_hctx_ok(c, 200, config_view(a, doc));
  json_decref(doc);
}

static void put_got(void *ud, int err, const char *errmsg, json_t *cur) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err == RM_ENOTFOUND ? 0 : err, errmsg, cur)) return;
  c->doc = cur;
  json_int_t have = json_integer_value(json_object_get(cur, "version"));
  json_int_t want = json_integer_value(json_object_get(c->doc2, "version"));
  if (have != want) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "config: version %" JSON_INTEGER_FORMAT " is not the current version %" JSON_INTEGER_FORMAT
             " (it was changed meanwhile)", want, have);
    rm_hctx_error(c, RM_API_CONFLICT, msg);
    return;
  }
  json_t *doc = changed_doc(cur, c->doc2, rm_hctx_user_name(c));
  rm_store_doc_put(c->s->store, "config", doc, put_done, c);
  json_decref(doc);
}

static void h_put(rm_hctx *c) {
  static const char *const allowed[] = {"session_ttl_s",           "audit_retention_days",
                                        "transition_retention_days", "delivery_retention_days",
                                        "run_retention",           "version",
                                        NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  rm_api_details d = RM_API_DETAILS_INIT;
  check_body(&d, b);
  if (rm_api_details_count(&d)) {
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  c->doc2 = json_incref(b);
  rm_store_doc_get(c->s->store, "config", CONFIG_ID, put_got, c);
}

int rm_serve_config_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/config", h_get, RM_ACCESS_ROLE, RM_MOD_CONFIG, RM_ACT_VIEW},
      {"PUT", "/api/v1/config", h_put, RM_ACCESS_ROLE, RM_MOD_CONFIG, RM_ACT_EDIT},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}

/* ---- life cycle ---- */

int rm_serve_admin_load(rm_serve *s) {
  struct rm_serve_admin *a = calloc(1, sizeof *a);
  if (!a) return -1;
  s->admin = a;
  a->s = s;
  a->conf_ttl_s = s->st.session_ttl_s;
  a->conf_success_ms = s->st.retention_success_ms;
  a->conf_failed_ms = s->st.retention_failed_ms;
  if (rm__serve_secrets_load(s) != 0) return -1;
  rm__serve_waiter w = {0};
  rm_store_doc_get(s->store, "config", CONFIG_ID, rm__serve_wait_cb, &w);
  rm__serve_wait(s, &w);
  if (w.err && w.err != RM_ENOTFOUND) {
    fprintf(stderr, "restmon serve: loading the global configuration: %s\n", w.errmsg);
    return -1;
  }
  apply_doc(a, w.res);
  if (w.res) rm_log_info("config", "global configuration version %lld in force",
                         (long long)json_integer_value(json_object_get(w.res, "version")));
  json_decref(w.res);
  return 0;
}

void rm_serve_admin_start(rm_serve *s) {
  struct rm_serve_admin *a = s->admin;
  if (!a || a->timer_on) return;
  uv_timer_init(&s->loop, &a->timer);
  a->timer.data = a;
  a->timer_on = true;
  uv_timer_start(&a->timer, retention_step, 0, 0);
}

void rm_serve_admin_stop(rm_serve *s) {
  struct rm_serve_admin *a = s->admin;
  if (!a || a->stopping) return;
  a->stopping = true;
  if (a->timer_on) {
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, NULL);
  }
}

void rm_serve_admin_free(rm_serve *s) {
  free(s->admin);
  s->admin = NULL;
}
