/* Several servers on one store: each applies what the others change.
 *
 * Every st.sync_ms a server reads the store's change feed
 * (rm_store_doc_changes) for the kinds something here keeps in memory:
 * schedules, monitors, tasks, workflows and maintenance windows (the
 * scheduler, the check definitions, the suppressed checks, the metric
 * monitors fed from runs), secrets (what runs inject), the global config
 * (session lifetime, retention) and users and API keys (the
 * authentication cache). Channels and mapping rules are read from the
 * store each time they are used, and sessions need nothing (the
 * authentication cache lives RM_SERVE_AUTH_CACHE_MS), so they are not read.
 * Each change not yet in force is handed to the hooks the API calls
 * after its own writes, so a change through any server acts the same.
 *
 * Watermark: updated_at is the database's clock when the writing
 * transaction began (PostgreSQL's now()), so a change may commit after a
 * later one was read. Each read therefore starts OVERLAP_MS before the
 * newest updated_at read so far, and what was seen is skipped: a change
 * is new when its rank, version * 2 + deleted, is above the one in force
 * for its (kind, id) (a soft delete keeps the version; a deleted document
 * never changes again). A transaction longer than OVERLAP_MS could be
 * missed. The first read goes START_BACK_MS back by this host's clock:
 * what changed while the server loaded, and some clock skew.
 *
 * The hooks are idempotent (the scheduler keeps a document it holds at
 * that version or later), so a change this server made itself is applied
 * a second time harmlessly; the secrets and config routes note theirs
 * (rm_serve_sync_note), which the feed then skips. A store that fails is
 * logged once until it answers again; the clock keeps going. */
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "serve/sched_internal.h"
#include "serve/signals_int.h"
#include "util/buf.h"
#include "util/log.h"

#define OVERLAP_MS 5000
#define START_BACK_MS 60000
#define BATCH 500
#define LIMIT_MAX 100000 /* rm_store_doc_changes' */

static const char *const kinds[] = {"schedule", "monitor", "task", "workflow", "maintenance",
                                    "secret",   "config",  "user", "apikey",   NULL};
enum { NKINDS = sizeof kinds / sizeof kinds[0] - 1 };

struct rm_serve_sync {
  rm_serve *s;
  uv_timer_t timer;
  json_t *seen;    /* "kind/id" -> [rank, updated_at ms] of what is in force */
  int64_t mark_ms; /* the newest updated_at read */
  int64_t from_ms; /* where the read in flight started */
  int64_t cont_ms; /* >= 0: a full page ended there; the next read goes on from it at once */
  int limit;
  rm_metric *m_applied, *g_lag;
  bool busy, failing, closed;
};
typedef struct rm_serve_sync rm_serve_sync;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int kind_index(const char *kind) {
  for (int i = 0; kind && i < NKINDS; i++)
    if (strcmp(kinds[i], kind) == 0) return i;
  return -1;
}

/* Records rank as in force for (kind, id) unless as much is already;
 * true when it was not (the change is to be applied). A workflow's
 * updated_at also moves when a version is published (its version is the
 * draft's and stays): a later updated_at at the same rank is new too. */
static bool remember(rm_serve_sync *y, const char *kind, const char *id, json_int_t rank, int64_t at_ms) {
  rm_buf key = RM_BUF_INIT;
  if (rm_buf_printf(&key, "%s/%s", kind, id) != 0) {
    rm_buf_free(&key);
    return true; /* out of memory: applied again, harmlessly */
  }
  json_t *e = json_object_get(y->seen, key.data);
  json_int_t had = json_integer_value(json_array_get(e, 0));
  bool fresh = !e || had < rank ||
               (had == rank && strcmp(kind, "workflow") == 0 && json_integer_value(json_array_get(e, 1)) < at_ms);
  if (fresh) json_object_set_new(y->seen, key.data, json_pack("[I, I]", rank, (json_int_t)at_ms));
  rm_buf_free(&key);
  return fresh;
}

void rm_serve_sync_note(rm_serve *s, const char *kind, const char *id, json_int_t version, bool deleted) {
  if (s->sync && kind && id) remember(s->sync, kind, id, version * 2 + deleted, rm__serve_now_ms());
}

/* Forgets what no read can return again (changed before the next one starts). */
static void prune(rm_serve_sync *y) {
  int64_t from = y->mark_ms - OVERLAP_MS;
  const char *k;
  json_t *e, *tmp;
  json_object_foreach_safe(y->seen, tmp, k, e) if (json_integer_value(json_array_get(e, 1)) < from)
      json_object_del(y->seen, k);
}

/* ---- applying ---- */

/* One change; what follows a batch's changes of a kind is done once, after it. */
static void apply_one(rm_serve *s, const char *kind, const char *id, const json_t *doc, bool live) {
  if (strcmp(kind, "secret") == 0) rm__serve_secret_sync(s, doc);
  else if (strcmp(kind, "config") == 0) rm__serve_config_sync(s, doc);
  else rm_serve_sched_def_changed(s, kind, id, live ? doc : NULL); /* definitions; ignores other kinds */
}

static void after_batch(rm_serve *s, const bool *changed) {
  for (int i = 0; i < NKINDS; i++) {
    if (!changed[i]) continue;
    rm_serve_maintenance_changed(s, kinds[i]);
    rm_serve_signals_def_changed(s, kinds[i]);
  }
  if (changed[kind_index("user")] || changed[kind_index("apikey")]) rm_serve_auth_changed(s);
}

/* Applies the changes in docs (in updated_at order) not yet in force. */
static void apply_batch(rm_serve_sync *y, const json_t *docs) {
  bool changed[NKINDS] = {false};
  int64_t newest = -1;
  size_t i;
  const json_t *d;
  json_array_foreach(docs, i, d) {
    const char *kind = str(d, "kind"), *id = str(d, "id");
    int64_t at = 0;
    int k = kind_index(kind);
    if (k < 0 || !id || !rm__signals_iso_ms(str(d, "updated_at"), &at)) continue;
    if (at > y->mark_ms) y->mark_ms = at;
    bool live = json_is_null(json_object_get(d, "deleted_at"));
    if (!remember(y, kind, id, json_integer_value(json_object_get(d, "version")) * 2 + !live, at)) continue;
    apply_one(y->s, kind, id, d, live);
    changed[k] = true;
    if (at > newest) newest = at;
    const char *v[] = {kind};
    if (y->m_applied) rm_metric_add(y->m_applied, v, 1);
  }
  after_batch(y->s, changed);
  if (newest >= 0 && y->g_lag) {
    int64_t lag = rm__serve_now_ms() - newest;
    rm_metric_set(y->g_lag, NULL, lag > 0 ? (double)lag / 1000.0 : 0);
  }
}

/* ---- reading ---- */

static void read_feed(rm_serve_sync *y);

static void maybe_free(rm_serve_sync *y) {
  if (!y->closed || y->busy) return;
  json_decref(y->seen);
  free(y);
}

/* After a full page: go on from its last change at once (a page that
 * did not get past its start takes twice as many, up to LIMIT_MAX). */
static void full_page(rm_serve_sync *y, const json_t *docs) {
  int64_t last = 0;
  rm__signals_iso_ms(str(json_array_get(docs, json_array_size(docs) - 1), "updated_at"), &last);
  y->cont_ms = last;
  if (last > y->from_ms) return;
  if (y->limit < LIMIT_MAX) {
    y->limit = y->limit * 2 < LIMIT_MAX ? y->limit * 2 : LIMIT_MAX;
    return;
  }
  rm_log_warn("sync", "more than %d definitions changed in one millisecond: some were skipped", LIMIT_MAX);
  y->cont_ms = -1;
}

static void got(void *ud, int err, const char *errmsg, json_t *res) {
  rm_serve_sync *y = ud;
  y->busy = false;
  if (y->s->sync != y) { /* stopped */
    json_decref(res);
    maybe_free(y);
    return;
  }
  if (err) {
    if (!y->failing) rm_log_warn("sync", "reading the changes in the store failed: %s (retrying every tick)", errmsg);
    y->failing = true;
    y->cont_ms = -1;
    json_decref(res);
    return;
  }
  if (y->failing) rm_log_info("sync", "reading the changes in the store works again");
  y->failing = false;
  apply_batch(y, res);
  y->cont_ms = -1;
  if ((int)json_array_size(res) >= y->limit) full_page(y, res);
  else y->limit = BATCH;
  json_decref(res);
  prune(y);
  if (y->cont_ms >= 0) read_feed(y);
}

static void read_feed(rm_serve_sync *y) {
  y->from_ms = y->cont_ms >= 0 ? y->cont_ms : y->mark_ms - OVERLAP_MS;
  json_t *since = rm__sched_iso(y->from_ms);
  if (!since) return;
  y->busy = true;
  rm_store_doc_changes(y->s->store, kinds, json_string_value(since), y->limit, got, y);
  json_decref(since);
}

static void tick(uv_timer_t *t) {
  rm_serve_sync *y = t->data;
  if (!y->busy && y->s->sync == y && !y->s->stopping) read_feed(y);
}

/* ---- start and stop ---- */

int rm_serve_sync_start(rm_serve *s) {
  static const char *const kind_label[] = {"kind", NULL};
  if (!s->st.sync_ms || s->stopping || s->sync) return 0;
  rm_serve_sync *y = calloc(1, sizeof *y);
  if (!y || !(y->seen = json_object())) {
    free(y);
    return -1;
  }
  y->s = s;
  y->m_applied = rm_metrics_counter(&s->metrics, "restmon_def_sync_applied_total",
                                    "Changes to definitions read from the store's change feed and applied here, "
                                    "by kind (made through another server, or first seen here).",
                                    kind_label);
  y->g_lag = rm_metrics_gauge(&s->metrics, "restmon_def_sync_lag_seconds",
                              "Age of the newest change applied from the change feed when it was applied.", NULL);
  y->mark_ms = rm__serve_now_ms() - START_BACK_MS + OVERLAP_MS;
  y->cont_ms = -1;
  y->limit = BATCH;
  uv_timer_init(&s->loop, &y->timer);
  y->timer.data = y;
  uv_timer_start(&y->timer, tick, s->st.sync_ms, s->st.sync_ms);
  s->sync = y;
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  rm_serve_sync *y = h->data;
  y->closed = true;
  maybe_free(y);
}

void rm_serve_sync_stop(rm_serve *s) {
  rm_serve_sync *y = s->sync;
  if (!y) return;
  s->sync = NULL;
  uv_close((uv_handle_t *)&y->timer, timer_closed);
}
