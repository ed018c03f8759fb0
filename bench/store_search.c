/* `search`: latencies of rm_store_run_search for each filter the run
 * list offers (the newest-first page, workflow, status, tag, a time
 * range, any step's HTTP status, an extracted variable's value), one
 * query in flight, measured from the call to its callback on the loop:
 * what a caller of the store waits. Each query runs once to warm up, then
 * up to K times or until BUDGET_S seconds have gone on it (at least once;
 * a warm-up slower than half of BUDGET_S counts as the first time).
 * `drop-indexes`: drops the secondary indexes of runs, steps and (SQLite,
 * schema v2) step_vars, all but the primary keys, so the same searches can
 * be measured without them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "store_bench.h"
#include "util/err.h"

#define DAY_MS 86400000LL

typedef struct search_ctx {
  uv_loop_t loop;
  rm_store *s;
  long runs; /* runs in the store: the fill's N */
  int64_t now_ms;
  sb_rng r;
} search_ctx;

typedef struct query_def {
  const char *name;
  const char *what;
  json_t *(*make)(search_ctx *x, int iter);
} query_def;

static json_t *q_newest(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_object();
}

static json_t *q_workflow(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_pack("{s:s}", "workflow", sb_workflow_name(10));
}

static json_t *q_status(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_pack("{s:s}", "status", "failed");
}

static json_t *q_tag(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_pack("{s:s}", "tag", "env:staging");
}

/* One day, 15 days back, moved by an hour each time. */
static json_t *q_time(search_ctx *x, int iter) {
  char from[32], to[32];
  int64_t start = x->now_ms - 15 * DAY_MS + (int64_t)iter * 3600000;
  rm__ts_format(start, from);
  rm__ts_format(start + DAY_MS, to);
  return json_pack("{s:s, s:s}", "from", from, "to", to);
}

static json_t *q_http(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_pack("{s:i}", "http_status", 503);
}

/* An order id the fill gave one run, a different one each time. */
static json_t *q_var_order(search_ctx *x, int iter) {
  char order[24];
  (void)iter;
  snprintf(order, sizeof order, "ord-%08ld", (long)sb_below(&x->r, (uint64_t)(x->runs > 0 ? x->runs : 1)));
  return json_pack("{s:{s:s, s:s}}", "var", "name", "order_id", "value", order);
}

static json_t *q_var_region(search_ctx *x, int iter) {
  (void)x;
  (void)iter;
  return json_pack("{s:{s:s, s:s}}", "var", "name", "region", "value", "us-west-2");
}

static const query_def queries[] = {
    {"newest_page", "newest first, no filter (the run list's first page)", q_newest},
    {"workflow", "workflow by name (one of 20, ~5% of runs)", q_workflow},
    {"status_failed", "status failed (~6%)", q_status},
    {"tag", "tag env:staging (~11%)", q_tag},
    {"time_range_1d", "created_at in one day (~3%)", q_time},
    {"http_status_503", "any step's last HTTP status 503 (~2.4%)", q_http},
    {"var_order_id", "extracted order_id equals a value (1 run)", q_var_order},
    {"var_region", "extracted region equals us-west-2 (~15%)", q_var_region},
};

typedef struct waiter {
  bool done;
  int err;
  char msg[512];
  json_t *res;
} waiter;

static void on_result(void *ud, int err, const char *msg, json_t *res) {
  waiter *w = ud;
  w->done = true;
  w->err = err;
  snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
  w->res = res;
}

/* One search; its time in ms, or -1 after printing why it failed. */
static double search_once(search_ctx *x, const query_def *q, json_t *query, json_int_t *total, size_t *items,
                          bool *capped) {
  waiter w = {0};
  uint64_t t0 = uv_hrtime();
  rm_store_run_search(x->s, query, on_result, &w);
  while (!w.done) uv_run(&x->loop, UV_RUN_ONCE);
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  if (w.err) {
    fprintf(stderr, "store_bench: search %s: %s: %s\n", q->name, rm_errname(w.err), w.msg);
    return -1;
  }
  *total = json_integer_value(json_object_get(w.res, "total"));
  *items = json_array_size(json_object_get(w.res, "items"));
  *capped = json_is_true(json_object_get(w.res, "total_capped"));
  json_decref(w.res);
  return ms;
}

/* Runs q (warm-up, then up to k timed runs within budget_s); its result
 * object, or NULL when a search failed. */
static json_t *measure(search_ctx *x, const query_def *q, int k, double budget_s, bool warmup) {
  double *ms = calloc((size_t)k, sizeof *ms), warm_ms = 0, sum = 0;
  json_int_t total = 0, t;
  size_t items = 0, it;
  bool capped = false, c;
  json_t *first = q->make(x, 0);
  double t_warm = sb_now_s();
  if (!ms || !first || (warmup && (warm_ms = search_once(x, q, first, &total, &items, &capped)) < 0)) {
    free(ms);
    json_decref(first);
    return NULL;
  }
  int n = 0;
  double t0 = sb_now_s();
  /* a query slower than half the budget would only run once more: its
   * warm-up counts as that run, and as time spent */
  bool warm_counted = warmup && warm_ms > budget_s * 500.0;
  if (warm_counted) {
    ms[n++] = warm_ms;
    sum = warm_ms;
    t0 = t_warm;
  }
  for (; n < k && (n == 0 || sb_now_s() - t0 < budget_s); n++) {
    json_t *query = n == 0 ? json_incref(first) : q->make(x, n);
    double v = search_once(x, q, query, n == 0 ? &total : &t, n == 0 ? &items : &it, n == 0 ? &capped : &c);
    json_decref(query);
    if (v < 0) {
      free(ms);
      json_decref(first);
      return NULL;
    }
    ms[n] = v;
    sum += v;
  }
  json_t *out = json_pack("{s:s, s:s, s:o, s:i, s:f, s:f, s:f, s:f, s:f, s:b, s:I, s:b, s:i}", "name", q->name,
                          "what", q->what, "query", first, "n", n, "mean_ms", sum / n, "p50_ms",
                          sb_pct(ms, (size_t)n, 50), "p95_ms", sb_pct(ms, (size_t)n, 95), "max_ms",
                          sb_pct(ms, (size_t)n, 100), "warmup_ms", warm_ms, "warmup_counted", warm_counted, "total",
                          total, "total_capped", capped, "items", (int)items);
  fprintf(stderr, "search: %-16s n=%-3d p50 %8.2f ms  p95 %8.2f ms  max %8.2f ms  total %lld%s\n", q->name, n,
          json_real_value(json_object_get(out, "p50_ms")), json_real_value(json_object_get(out, "p95_ms")),
          json_real_value(json_object_get(out, "max_ms")), (long long)total, capped ? "+" : "");
  free(ms);
  return out;
}

int sb_search(const char *url, int k, double budget_s, bool warmup) {
  search_ctx x = {.now_ms = rm__wall_ms(), .r = {.s = 7}};
  rm__conn *c;
  /* counted behind the store's back: its lists cap their totals */
  if (sb_db_open(url, &c) != 0) return 1;
  x.runs = (long)sb_count(c, "SELECT count(*) AS n FROM runs");
  sb_db_close(c);
  if (x.runs <= 0) {
    fprintf(stderr, "store_bench: search: the store holds no runs (fill it first)\n");
    return 1;
  }
  uv_loop_init(&x.loop);
  if (sb_store_open(&x.s, &x.loop, url) != 0) return 1;
  json_t *results = json_array();
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof queries / sizeof *queries; i++) {
    json_t *r = measure(&x, &queries[i], k, budget_s, warmup);
    if (!r) {
      rc = 1;
      break;
    }
    json_array_append_new(results, r);
  }
  sb_store_close(x.s, &x.loop);
  uv_loop_close(&x.loop);
  if (rc != 0) {
    json_decref(results);
    return rc;
  }
  sb_print(json_pack("{s:s, s:s, s:I, s:i, s:f, s:b, s:o}", "mode", "search", "backend",
                     strncmp(url, "sqlite:", 7) == 0 ? "sqlite" : "postgresql", "runs", (json_int_t)x.runs, "k", k,
                     "budget_s", budget_s, "warmup", warmup, "queries", results));
  return 0;
}

json_t *sb_secondary_indexes(rm__conn *c) {
  const char *sql = rm__conn_pg(c) ? "SELECT indexname AS name, indexdef AS sql FROM pg_indexes WHERE schemaname = "
                                     "current_schema() AND tablename IN ('runs', 'steps', 'step_vars') AND "
                                     "indexname NOT LIKE '%\\_pkey' ORDER BY indexname"
                                   : "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                                     "('runs', 'steps', 'step_vars') AND sql IS NOT NULL ORDER BY name";
  json_t *rows = NULL;
  if (rm__q(c, &rows, sql, NULL) == 0) return rows;
  fprintf(stderr, "store_bench: listing the indexes: %s\n", c->err);
  return NULL;
}

int sb_drop_index_list(rm__conn *c, const json_t *indexes) {
  const json_t *ix;
  size_t i;
  json_array_foreach(indexes, i, ix) {
    char sql[160];
    snprintf(sql, sizeof sql, "DROP INDEX %s", json_string_value(json_object_get(ix, "name")));
    if (sb_exec(c, sql) != 0) return -1;
  }
  return 0;
}

int sb_drop_indexes(const char *url) {
  rm__conn *c;
  if (sb_db_open(url, &c) != 0) return 1;
  json_t *indexes = sb_secondary_indexes(c), *names = json_array(), *ix;
  size_t i;
  int rc = indexes ? sb_drop_index_list(c, indexes) : -1;
  sb_db_close(c);
  json_array_foreach(indexes, i, ix) json_array_append(names, json_object_get(ix, "name"));
  json_decref(indexes);
  if (rc != 0) {
    json_decref(names);
    return 1;
  }
  sb_print(json_pack("{s:s, s:o}", "mode", "drop-indexes", "dropped", names));
  return 0;
}
