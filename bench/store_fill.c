/* `fill`: a store of N finished runs shaped like a month of monitoring,
 * written behind the store's back through its db layer in multi-row
 * INSERTs and big transactions (minutes, not hours, for 1,000,000 runs).
 * `runs`: running runs leased to SB_OWNER, for the step writers.
 *
 * The shape (what the searches of store_search.c filter on):
 *   20 workflows, run counts skewed (workflow i has weight 20 - i);
 *   created_at in order over the 30 days before the fill;
 *   status: 6% failed, 4% degraded, 0.5% cancelled, the rest succeeded;
 *   2-4 steps (by workflow), a failed or cancelled run stops at its bad
 *   step (never the first); HTTP 201/200, failures 503/500/502/504/404,
 *   degraded steps 429 or a slow 200;
 *   extracted: step 1 order_id "ord-%08ld" (the run's fill index, unique)
 *   and region (5 values, weighted), then order_status, payment_id,
 *   verified; tags team:*, env:prod or env:staging (workflows 5, 12, 19),
 *   canary on 2%; triggers 85% schedule, 10% api, 5% cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "store_bench.h"
#include "util/buf.h"

/* Runs per INSERT statement. SQLite looks up each $N parameter by name
 * in a list (sqlite3VListNumToName), which makes a statement's binding
 * quadratic in its parameters: short statements there. */
#define BATCH_PG 200
#define BATCH_SQLITE 4
#define TX_RUNS 10000   /* runs per transaction */
#define PROGRESS 100000 /* runs between progress lines */
#define DAY_MS 86400000LL
#define SPAN_MS (30 * DAY_MS)
#define MAX_TASKS 4

static const char *const wf_names[SB_WORKFLOWS] = {
    "checkout-eu",   "checkout-us",     "login-health", "search-api",       "payments-3ds",
    "inventory-sync", "orders-export",  "refunds",      "shipping-quotes",  "catalog-read",
    "partner-webhooks", "pricing-rules", "invoice-pdf", "loyalty-points",   "gift-cards",
    "tax-calc",      "fraud-check",     "returns-portal", "newsletter-signup", "status-page"};
static const char *const teams[] = {"team:checkout", "team:payments", "team:platform", "team:catalog", "team:growth"};
static const char *const tasks[MAX_TASKS] = {"create_order", "get_order", "pay", "verify"};
static const char *const methods[MAX_TASKS] = {"POST", "GET", "POST", "GET"};
static const char *const paths[MAX_TASKS] = {"/orders", "/orders/%s", "/orders/%s/pay", "/orders/%s/verify"};
static const char *const regions[] = {"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"};
static const int region_weight[] = {35, 20, 25, 15, 5};

const char *sb_workflow_name(int i) { return wf_names[i % SB_WORKFLOWS]; }

static int wf_tasks(int wf) { return 2 + wf % 3; }
static bool wf_staging(int wf) { return wf % 7 == 5; }

/* The workflow definition every run of workflow wf snapshots. */
static void make_definition(int wf, char *out, size_t len) {
  rm_buf b = RM_BUF_INIT;
  rm_buf_printf(&b,
                "{\"name\":\"%s\",\"version\":%d,\"description\":\"synthetic monitor %d\",\"defaults\":"
                "{\"timeout_ms\":10000,\"retry\":{\"max\":2,\"backoff_ms\":200,\"retry_on\":[\"5xx\",\"E_TIMEOUT\"]}},"
                "\"inputs\":{\"base_url\":{\"type\":\"string\"}},\"tasks\":[",
                wf_names[wf], 1 + wf % 3, wf);
  for (int k = 0; k < wf_tasks(wf); k++)
    rm_buf_printf(&b,
                  "%s{\"name\":\"%s\",\"type\":\"http\",\"request\":{\"method\":\"%s\",\"url\":\"{{inputs.base_url}}%s\","
                  "\"headers\":{\"authorization\":\"Bearer {{secrets.API_TOKEN}}\"}},\"success\":[\"2xx\"],"
                  "\"extract\":{\"order_id\":\"$.id\",\"region\":\"$.region\"},\"assert\":[{\"subject\":\"duration_ms\","
                  "\"op\":\"lt\",\"expected\":2000}],\"next\":{\"success\":\"%s\"}}",
                  k ? "," : "", tasks[k], methods[k], k ? "/orders/{{vars.order_id}}" : "/orders",
                  k + 1 < wf_tasks(wf) ? tasks[k + 1] : "");
  rm_buf_puts(&b, "]}");
  snprintf(out, len, "%s", b.data ? b.data : "{}");
  rm_buf_free(&b);
}

/* ---- running runs ------------------------------------------------------- */

#define RUNNING_BATCH 50 /* few parameters per statement: see BATCH_SQLITE */

int sb_insert_running_runs(rm__conn *c, int count, const char *prefix) {
  char def[4096];
  make_definition(0, def, sizeof def);
  int rc = rm__begin(c, true) == 0 ? 0 : -1;
  for (int i = 0; rc == 0 && i < count; i += RUNNING_BATCH) {
    int rows = count - i < RUNNING_BATCH ? count - i : RUNNING_BATCH;
    rm_buf sql = RM_BUF_INIT;
    json_t *params = json_array();
    rm_buf_puts(&sql, "INSERT INTO runs (run_id, workflow_id, workflow_name, workflow_version, definition, source, "
                      "trigger, trigger_type, inputs, vars, tags, status, lease_owner, created_at, started_at, "
                      "lease_expires_at) VALUES ");
    for (int r = 0; r < rows; r++) {
      char id[64];
      int p = r * 3;
      snprintf(id, sizeof id, "%s%d", prefix, i + r + 1);
      rm_buf_printf(&sql,
                    "%s($%d, 'wf-0', '%s', 1, $%d, 'store', '{\"type\":\"schedule\"}', 'schedule', '{}', '{}', $%d, "
                    "'running', '" SB_OWNER "', rm_now(), rm_now(), rm_now_plus_ms(3600000))",
                    r ? ", " : "", p + 1, wf_names[0], p + 2, p + 3);
      json_array_append_new(params, json_string(id));
      json_array_append_new(params, json_string(def));
      json_array_append_new(params, json_string("[\"team:checkout\",\"env:prod\"]"));
    }
    rc = sql.data ? sb_query(c, sql.data, params) : -1;
    rm_buf_free(&sql);
  }
  if (rc == 0 && rm__commit(c) != 0) {
    fprintf(stderr, "store_bench: COMMIT: %s\n", c->err);
    rc = -1;
  }
  if (rc != 0) rm__rollback(c);
  return rc;
}

int sb_runs(const char *url, long n, const char *prefix) {
  rm__conn *c;
  if (sb_db_open(url, &c) != 0) return 1;
  int rc = sb_insert_running_runs(c, (int)n, prefix);
  sb_db_close(c);
  if (rc == 0) sb_print(json_pack("{s:s, s:I, s:s}", "mode", "runs", "runs", (json_int_t)n, "prefix", prefix));
  return rc == 0 ? 0 : 1;
}

/* ---- fill ------------------------------------------------------------- */

typedef struct fill {
  rm__conn *c;
  sb_rng r;
  long n, lo, hi; /* this writer's runs: [lo, hi) of n */
  int batch, rc;
  int64_t t0_ms;
  int wf_cum[SB_WORKFLOWS]; /* cumulative weights */
  char defs[SB_WORKFLOWS][4096];
  rm_buf run_sql, step_sql;
  json_t *run_params, *step_params;
  int run_rows, step_rows;
  long steps;
} fill;

static int pick_weighted(sb_rng *r, const int *w, int n) {
  int total = 0;
  for (int i = 0; i < n; i++) total += w[i];
  int x = (int)sb_below(r, (uint64_t)total);
  for (int i = 0; i < n; i++)
    if ((x -= w[i]) < 0) return i;
  return n - 1;
}

static int pick_http_failure(sb_rng *r) {
  static const int codes[] = {503, 500, 502, 504, 404}, w[] = {40, 25, 15, 10, 10};
  return codes[pick_weighted(r, w, 5)];
}

static void add(json_t *params, json_t *v) { json_array_append_new(params, v ? v : json_null()); }

/* One step row and its record text. */
static void add_step(fill *f, const char *run_id, int k, const char *status, int http, const char *extracted,
                     const char *order, int64_t start_ms, double dur, const char *reason) {
  char at[32], end[32], path[64], rec[2048], resp[320];
  rm__ts_format(start_ms, at);
  rm__ts_format(start_ms + (int64_t)dur, end);
  snprintf(path, sizeof path, paths[k], order);
  if (http)
    snprintf(resp, sizeof resp,
             "{\"status\":%d,\"http_version\":\"1.1\",\"headers\":{\"content-type\":\"application/json\","
             "\"server\":\"nginx\"},\"body\":\"{\\\"id\\\":\\\"%s\\\",\\\"state\\\":\\\"%s\\\"}\",\"size\":%d}",
             http, order, http < 400 ? "ok" : "error", 28 + (int)strlen(order));
  else
    snprintf(resp, sizeof resp, "null");
  snprintf(rec, sizeof rec,
           "{\"task\":\"%s\",\"type\":\"http\",\"status\":\"%s\",\"reason\":\"%s\",\"started_at\":\"%s\","
           "\"duration_ms\":%.1f,\"edge\":\"%s\",\"attempts\":[{\"attempt\":1,\"status\":\"%s\",\"started_at\":\"%s\","
           "\"duration_ms\":%.1f,\"exchanges\":[{\"request\":{\"method\":\"%s\",\"url\":\"https://api.example.com%s\","
           "\"headers\":{\"accept\":\"application/json\",\"authorization\":\"Bearer {{secrets.API_TOKEN}}\"}},"
           "\"response\":%s,\"timings\":{\"dns_ms\":0.1,\"connect_ms\":0.4,\"tls_ms\":2.0,\"first_byte_ms\":%.1f,"
           "\"total_ms\":%.1f}}],\"extracted\":%s,\"assertions\":[{\"subject\":\"status\",\"op\":\"in\","
           "\"expected\":\"2xx\",\"actual\":%d,\"passed\":%s}]}]}",
           tasks[k], status, reason, at, dur, strcmp(status, "failed") == 0 ? "failure" : "success", status, at, dur,
           methods[k], path, resp, dur * 0.9, dur, extracted, http, http && http < 400 ? "true" : "false");
  if (f->step_rows)
    rm_buf_puts(&f->step_sql, ", ");
  int p = (int)json_array_size(f->step_params);
  rm_buf_printf(&f->step_sql, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6,
                p + 7, p + 8);
  add(f->step_params, json_string(run_id));
  add(f->step_params, json_integer(k + 1));
  add(f->step_params, json_string(tasks[k]));
  add(f->step_params, json_string(status));
  add(f->step_params, http ? json_integer(http) : json_null());
  add(f->step_params, json_string(extracted));
  add(f->step_params, json_string(rec));
  add(f->step_params, json_string(end));
  f->step_rows++;
  f->steps++;
}

/* Run i of the fill with its steps, appended to the current batch. */
static void add_run(fill *f, long i) {
  sb_rng *r = &f->r;
  char id[37], order[24], created[32], started[32], finished[32], vars[512], summary[256], reason[160],
      trigger[160], tags[128];
  sb_uuid(r, id);
  int wf = 0, x = (int)sb_below(r, (uint64_t)f->wf_cum[SB_WORKFLOWS - 1]);
  while (x >= f->wf_cum[wf]) wf++;
  int ntasks = wf_tasks(wf), nsteps = ntasks, bad = -1;
  double u = sb_unit(r);
  const char *status = u < 0.06 ? "failed" : u < 0.10 ? "degraded" : u < 0.105 ? "cancelled" : "succeeded";
  if (strcmp(status, "succeeded") != 0) bad = 1 + (int)sb_below(r, (uint64_t)(ntasks - 1));
  if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) nsteps = bad + 1;
  const char *region = regions[pick_weighted(r, region_weight, 5)];
  snprintf(order, sizeof order, "ord-%08ld", i);
  int64_t created_ms = f->t0_ms + (int64_t)((double)SPAN_MS * (double)i / (double)f->n) +
                       (int64_t)sb_below(r, (uint64_t)(SPAN_MS / f->n) + 1);
  int64_t t = created_ms + 5 + (int64_t)sb_below(r, 200);
  rm__ts_format(created_ms, created);
  rm__ts_format(t, started);

  rm_buf v = RM_BUF_INIT;
  int ok = 0, degraded = 0, failed = 0, cancelled = 0;
  rm_buf_printf(&v, "{\"order_id\":\"%s\",\"region\":\"%s\"", order, region);
  for (int k = 0; k < nsteps; k++) {
    double dur = 15.0 + (double)sb_below(r, 120) + (double)sb_below(r, 10) / 10.0;
    int http = k == 0 ? 201 : 200;
    const char *st = "succeeded", *why = "HTTP 2xx; 1 assertion passed";
    char ex[160];
    if (k == bad && strcmp(status, "failed") == 0) {
      http = pick_http_failure(r);
      st = "failed";
      why = "HTTP status not in success codes [2xx]";
      failed++;
    } else if (k == bad && strcmp(status, "cancelled") == 0) {
      http = 0;
      st = "cancelled";
      why = "the run was cancelled";
      cancelled++;
    } else if (k == bad) {
      st = "degraded";
      if (sb_below(r, 2)) {
        http = 429;
        why = "HTTP 429 accepted as degraded";
      } else {
        dur += 2500;
        why = "duration_ms lt 2000 failed (soft)";
      }
      degraded++;
    } else {
      ok++;
    }
    bool extracts = strcmp(st, "succeeded") == 0 || strcmp(st, "degraded") == 0;
    switch (extracts ? k : -1) {
    case 0: snprintf(ex, sizeof ex, "{\"order_id\":\"%s\",\"region\":\"%s\"}", order, region); break;
    case 1:
      snprintf(ex, sizeof ex, "{\"order_status\":\"%s\"}", sb_below(r, 10) ? "confirmed" : "pending");
      rm_buf_printf(&v, ",\"order_status\":\"confirmed\"");
      break;
    case 2:
      snprintf(ex, sizeof ex, "{\"payment_id\":\"pay-%08ld\"}", i);
      rm_buf_printf(&v, ",\"payment_id\":\"pay-%08ld\"", i);
      break;
    case 3: snprintf(ex, sizeof ex, "{\"verified\":true}"); break;
    default: snprintf(ex, sizeof ex, "{}");
    }
    add_step(f, id, k, st, http, ex, order, t, dur, why);
    t += (int64_t)dur + 1;
  }
  rm_buf_puts(&v, "}");
  snprintf(vars, sizeof vars, "%s", v.data ? v.data : "{}");
  rm_buf_free(&v);
  rm__ts_format(t, finished);
  snprintf(summary, sizeof summary,
           "{\"tasks\":%d,\"succeeded\":%d,\"degraded\":%d,\"failed\":%d,\"cancelled\":%d,\"skipped\":%d,"
           "\"attempts\":%d,\"requests\":%d}",
           ntasks, ok, degraded, failed, cancelled, ntasks - nsteps, nsteps, nsteps);
  if (bad < 0) snprintf(reason, sizeof reason, "all %d tasks succeeded", ntasks);
  else snprintf(reason, sizeof reason, "task %s %s", tasks[bad], status);
  u = sb_unit(r);
  const char *ttype = u < 0.85 ? "schedule" : u < 0.95 ? "api" : "cli";
  if (u < 0.85) snprintf(trigger, sizeof trigger, "{\"type\":\"schedule\",\"schedule_id\":\"sch-%02d\"}", wf);
  else if (u < 0.95) snprintf(trigger, sizeof trigger, "{\"type\":\"api\",\"user\":\"ops@example.com\"}");
  else snprintf(trigger, sizeof trigger, "{\"type\":\"cli\",\"host\":\"build-7\"}");
  snprintf(tags, sizeof tags, "[\"%s\",\"%s\"%s]", teams[wf % 5], wf_staging(wf) ? "env:staging" : "env:prod",
           sb_below(r, 50) == 0 ? ",\"canary\"" : "");

  char wf_id[16];
  snprintf(wf_id, sizeof wf_id, "wf-%d", wf);
  int p = (int)json_array_size(f->run_params);
  rm_buf_printf(&f->run_sql, "%s($%d", f->run_rows ? ", " : "", p + 1);
  for (int k = 2; k <= 18; k++) rm_buf_printf(&f->run_sql, ", $%d", p + k);
  rm_buf_puts(&f->run_sql, ")");
  json_t *ps = f->run_params;
  add(ps, json_string(id));
  add(ps, json_string(wf_id));
  add(ps, json_string(wf_names[wf]));
  add(ps, json_integer(1 + wf % 3));
  add(ps, json_string(f->defs[wf]));
  add(ps, json_string("store"));
  add(ps, json_string(trigger));
  add(ps, json_string(ttype));
  add(ps, json_string("{\"base_url\":\"https://api.example.com\"}"));
  add(ps, json_string(status));
  add(ps, json_string(reason));
  add(ps, json_string(vars));
  add(ps, json_string(created));
  add(ps, json_string(started));
  add(ps, json_string(finished));
  add(ps, json_real((double)(t - created_ms)));
  add(ps, json_string(summary));
  add(ps, json_string(tags));
  f->run_rows++;
}

static void batch_reset(fill *f) {
  rm_buf_reset(&f->run_sql);
  rm_buf_reset(&f->step_sql);
  rm_buf_puts(&f->run_sql, "INSERT INTO runs (run_id, workflow_id, workflow_name, workflow_version, definition, "
                           "source, trigger, trigger_type, inputs, status, reason, vars, created_at, started_at, "
                           "finished_at, duration_ms, summary, tags) VALUES ");
  rm_buf_puts(&f->step_sql, "INSERT INTO steps (run_id, seq, task, status, http_status, extracted, record, "
                            "updated_at) VALUES ");
  json_decref(f->run_params);
  json_decref(f->step_params);
  f->run_params = json_array();
  f->step_params = json_array();
  f->run_rows = f->step_rows = 0;
}

/* Inserts the batch: runs first (steps reference them). */
static int batch_flush(fill *f) {
  if (!f->run_sql.data || !f->step_sql.data || !f->run_params || !f->step_params) return -1;
  int rc = sb_query(f->c, f->run_sql.data, json_incref(f->run_params));
  if (rc == 0) rc = sb_query(f->c, f->step_sql.data, json_incref(f->step_params));
  batch_reset(f);
  return rc;
}

/* One writer's share of the runs, in transactions of TX_RUNS. */
static void fill_main(void *arg) {
  fill *f = arg;
  double t0 = sb_now_s(), last = t0;
  int rc = 0;
  batch_reset(f);
  for (long i = f->lo; rc == 0 && i < f->hi; i++) {
    long done = i - f->lo;
    if (done % TX_RUNS == 0 && (rc = rm__begin(f->c, true)) != 0) break;
    add_run(f, i);
    bool end_tx = (done + 1) % TX_RUNS == 0 || i + 1 == f->hi;
    if (f->run_rows == f->batch || end_tx) rc = batch_flush(f);
    if (rc == 0 && end_tx) rc = rm__commit(f->c);
    if ((done + 1) % PROGRESS == 0) {
      double now = sb_now_s();
      fprintf(stderr, "fill: runs %ld-%ld: %ld done, %.0f runs/s (last %d: %.0f/s)\n", f->lo, f->hi, done + 1,
              (double)(done + 1) / (now - t0), PROGRESS, PROGRESS / (now - last));
      last = now;
    }
  }
  if (rc != 0) {
    fprintf(stderr, "store_bench: fill: %s\n", f->c->err);
    rm__rollback(f->c);
  }
  json_decref(f->run_params);
  json_decref(f->step_params);
  rm_buf_free(&f->run_sql);
  rm_buf_free(&f->step_sql);
  f->run_params = f->step_params = NULL;
  f->rc = rc;
}

/* Writers: SQLite has one; on PostgreSQL the server does most of the
 * work per row, so two connections fill about twice as fast here. */
#define FILL_WRITERS_PG 2

/* The fill's own connections only, and the benchmark's own data: no
 * waiting for syncs; on SQLite no WAL either (each page is written once,
 * not to the WAL and again at the checkpoint), and a bigger page cache
 * for the random inserts into the run_id indexes. The store's connections
 * put the file back in WAL mode when they open it. */
static int fill_session(rm__conn *c) {
  return sb_exec(c, rm__conn_pg(c) ? "SET synchronous_commit = off"
                                   : "PRAGMA journal_mode = DELETE; PRAGMA journal_mode = OFF; "
                                     "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144");
}

static int fill_all(const char *url, long n, rm__conn *first, long *steps) {
  bool pg = rm__conn_pg(first);
  int nw = pg ? FILL_WRITERS_PG : 1, rc = 0;
  fill *w = calloc((size_t)nw, sizeof *w);
  uv_thread_t tid[FILL_WRITERS_PG];
  int64_t t0_ms = rm__wall_ms() - SPAN_MS;
  if (!w) return -1;
  for (int k = 0; k < nw; k++) {
    fill *f = &w[k];
    *f = (fill){.n = n, .lo = n * k / nw, .hi = n * (k + 1) / nw, .r = {.s = 20261123 + (uint64_t)k},
                .batch = pg ? BATCH_PG : BATCH_SQLITE, .t0_ms = t0_ms, .c = k == 0 ? first : NULL};
    for (int i = 0, cum = 0; i < SB_WORKFLOWS; i++) {
      f->wf_cum[i] = cum += SB_WORKFLOWS - i;
      make_definition(i, f->defs[i], sizeof f->defs[i]);
    }
    if (rc == 0 && !f->c) rc = sb_db_open(url, &f->c);
    if (rc == 0) rc = fill_session(f->c);
  }
  int started = 0;
  for (; rc == 0 && started < nw; started++)
    if (uv_thread_create(&tid[started], fill_main, &w[started]) != 0) rc = -1;
  for (int k = 0; k < started; k++) {
    uv_thread_join(&tid[k]);
    if (w[k].rc != 0) rc = -1;
    *steps += w[k].steps;
  }
  for (int k = 1; k < nw; k++) sb_db_close(w[k].c);
  free(w);
  return rc;
}

int sb_fill(const char *url, long n) {
  rm__conn *c;
  long steps = 0;
  if (sb_db_open(url, &c) != 0) return 1;
  bool pg = rm__conn_pg(c);
  fprintf(stderr, "fill: %ld runs into %s\n", n, c->be->name);
  double t0 = sb_now_s();
  /* Secondary indexes are built once at the end, from sorted data, rather
   * than grown by random inserts: the same indexes (their own CREATE
   * statements), minutes sooner. */
  json_t *indexes = sb_secondary_indexes(c);
  int rc = indexes ? sb_drop_index_list(c, indexes) : -1;
  if (rc == 0) rc = fill_all(url, n, c, &steps);
  double t_insert = sb_now_s() - t0;
  if (rc == 0) fprintf(stderr, "fill: inserted in %.1f s; building %zu indexes\n", t_insert, json_array_size(indexes));
  if (rc == 0 && pg) rc = sb_exec(c, "SET maintenance_work_mem = '512MB'");
  const json_t *ix;
  size_t i;
  json_array_foreach(indexes, i, ix) if (rc == 0) rc = sb_exec(c, json_string_value(json_object_get(ix, "sql")));
  double t_index = sb_now_s() - t0 - t_insert;
  /* What a store that has been running a while has: PostgreSQL's
   * autovacuum has analyzed the tables; SQLite is in WAL mode. */
  if (rc == 0) fprintf(stderr, "fill: indexes built in %.1f s; %s\n", t_index, pg ? "VACUUM ANALYZE" : "back to WAL");
  if (rc == 0) rc = sb_exec(c, pg ? "VACUUM ANALYZE runs" : "PRAGMA journal_mode = WAL");
  if (rc == 0 && pg) rc = sb_exec(c, "VACUUM ANALYZE steps");
  json_decref(indexes);
  double secs = sb_now_s() - t0;
  int64_t bytes = rc == 0 ? sb_count(c, pg ? "SELECT pg_database_size(current_database()) AS n"
                                           : "SELECT page_count * page_size AS n FROM pragma_page_count(), "
                                             "pragma_page_size()")
                          : -1;
  sb_db_close(c);
  if (rc != 0) return 1;
  sb_print(json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:I}", "mode", "fill", "runs", (json_int_t)n, "steps",
                     (json_int_t)steps, "seconds", secs, "insert_seconds", t_insert, "index_seconds", t_index,
                     "runs_per_s", (double)n / secs, "db_bytes", (json_int_t)bytes));
  return 0;
}
