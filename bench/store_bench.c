/* store_bench: main, the helpers every mode shares, and `steps`: step
 * write throughput through rm_store_step_put with C writes in flight, the
 * way C executors each running one step at a time would write them.
 *
 * Usage (bench/bench_store.py is the caller):
 *   store_bench steps URL N C       N step records, C in flight
 *   store_bench sample              one step record and vars as `steps` writes them
 *   store_bench fill URL N          N finished runs with their steps
 *   store_bench runs URL N PREFIX   N running runs leased to "bench" (for peers)
 *   store_bench search URL K BUDGET_S [--no-warmup]
 *   store_bench drop-indexes URL
 * URL: sqlite:PATH or postgresql://... as restmon takes it. */
#include "store_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store/store_internal.h"
#include "util/err.h"

/* Steps each run gets before its executor moves on to a new run. */
#define STEPS_PER_RUN 4
#define CONC_MAX 4096

/* ---- shared helpers --------------------------------------------------- */

uint64_t sb_rand(sb_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t sb_below(sb_rng *r, uint64_t n) { return sb_rand(r) % n; }

double sb_unit(sb_rng *r) { return (double)(sb_rand(r) >> 11) / 9007199254740992.0; }

void sb_uuid(sb_rng *r, char out[37]) {
  unsigned char u[16];
  uint64_t a = sb_rand(r), b = sb_rand(r);
  memcpy(u, &a, 8);
  memcpy(u + 8, &b, 8);
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
           u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int sb_db_open(const char *url, rm__conn **out) {
  const char *target;
  const rm__backend *be = rm__backend_for(url, &target);
  char err[RM__ERRLEN];
  *out = NULL;
  if (!be) {
    rm__bad_url(url, err, sizeof err);
    fprintf(stderr, "store_bench: %s\n", err);
    return -1;
  }
  rm__connopts o = {.writer = true, .retry_ms = 30000};
  if (rm__open_db(be, target, &o, true, out, NULL, NULL, err, sizeof err) != 0) {
    fprintf(stderr, "store_bench: %s\n", err);
    return -1;
  }
  return 0;
}

void sb_db_close(rm__conn *c) {
  if (c) c->be->disconnect(c);
}

int sb_exec(rm__conn *c, const char *sql) {
  if (c->be->exec(c, sql) == 0) return 0;
  fprintf(stderr, "store_bench: %.80s: %s\n", sql, c->err);
  return -1;
}

int sb_query(rm__conn *c, const char *sql, json_t *params) {
  if (rm__qx(c, NULL, sql, params) == 0) return 0;
  fprintf(stderr, "store_bench: %.80s: %s\n", sql, c->err);
  return -1;
}

int64_t sb_count(rm__conn *c, const char *sql) {
  json_t *row = NULL;
  if (rm__q1(c, &row, sql, NULL) != 0 || !row) {
    fprintf(stderr, "store_bench: %.80s: %s\n", sql, row ? "" : c->err);
    json_decref(row);
    return -1;
  }
  int64_t n = json_integer_value(json_object_get(row, "n"));
  json_decref(row);
  return n;
}

int sb_store_open(rm_store **out, uv_loop_t *loop, const char *url) {
  rm_store_opts o = {.threads = 2, .migrate = true};
  char err[RM__ERRLEN];
  if (rm_store_open(out, loop, url, &o, err, sizeof err) == 0) return 0;
  fprintf(stderr, "store_bench: rm_store_open: %s\n", err);
  return -1;
}

static void on_closed(void *ud) { *(bool *)ud = true; }

void sb_store_close(rm_store *s, uv_loop_t *loop) {
  bool closed = false;
  rm_store_close(s, on_closed, &closed);
  while (!closed) uv_run(loop, UV_RUN_ONCE);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double sb_pct(double *v, size_t n, double p) {
  if (n == 0) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  return v[rank == 0 ? 0 : rank > n ? n - 1 : rank - 1];
}

double sb_now_s(void) { return (double)uv_hrtime() / 1e9; }

double sb_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void sb_print(json_t *o) {
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  printf("%s\n", text ? text : "{\"error\": \"out of memory\"}");
  fflush(stdout);
  free(text);
  json_decref(o);
}

/* ---- steps -------------------------------------------------------------- */

/* Step record k of a run, the i-th written overall: one HTTP exchange
 * with headers, bodies, timings, extracted values and assertions, about
 * 1.5 KB as JSON, like the records of docs/run-record.md. */
static json_t *make_step(long i, int k, json_t **vars) {
  static const char *const regions[] = {"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"};
  char task[24], next[24], order[32], url[128], reqid[40], req_body[160], resp_body[320], at[32];
  int status = k == 0 ? 201 : 200;
  double total = 10.0 + (double)(i % 97) * 0.73;
  const char *region = regions[i % 5];
  snprintf(task, sizeof task, "step-%d", k);
  snprintf(next, sizeof next, "step-%d", k + 1);
  snprintf(order, sizeof order, "ord-%08ld", i / STEPS_PER_RUN);
  snprintf(url, sizeof url, "https://api.example.com/v2/orders/%s/items?expand=prices&trace=%ld", order, i);
  snprintf(reqid, sizeof reqid, "req-%016lx", (unsigned long)i * 2654435761UL);
  snprintf(req_body, sizeof req_body, "{\"sku\":\"A-%ld\",\"qty\":%ld,\"customer\":\"c-%ld\",\"note\":\"bench order\"}",
           i % 1000, 1 + i % 5, i % 50000);
  snprintf(resp_body, sizeof resp_body,
           "{\"id\":\"%s\",\"status\":\"created\",\"region\":\"%s\",\"items\":[{\"sku\":\"A-%ld\",\"qty\":%ld,"
           "\"price\":19.99}],\"total\":%.2f,\"currency\":\"EUR\",\"created_at\":\"2026-11-23T10:00:00Z\"}",
           order, region, i % 1000, 1 + i % 5, total);
  rm__ts_format(rm__wall_ms(), at);
  json_t *extracted = json_pack("{s:s, s:s, s:f}", "order_id", order, "region", region, "total", total);
  *vars = json_pack("{s:s, s:s, s:f, s:s, s:i}", "order_id", order, "region", region, "total", total, "customer",
                    "c-bench", "last_step", k);
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:[s],"
      " s:[{s:i, s:s, s:s, s:s, s:f,"
      "  s:[{s:{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s},"
      "      s:{s:i, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:i},"
      "      s:{s:f, s:f, s:f, s:f, s:f}}],"
      "  s:o,"
      "  s:[{s:s, s:s, s:s, s:i, s:b, s:s}, {s:s, s:s, s:s, s:s, s:b, s:s}, {s:s, s:s, s:f, s:f, s:b, s:s}],"
      "  s:[{s:s, s:s}]}]}",
      "task", task, "type", "http", "status", "succeeded", "reason", "HTTP 2xx; 3 assertions passed", "started_at", at,
      "duration_ms", total, "edge", "success", "next", next,
      "attempts", "attempt", 1, "status", "succeeded", "reason", "HTTP 2xx; 3 assertions passed", "started_at", at,
      "duration_ms", total,
      "exchanges", "request", "method", k == 0 ? "POST" : "GET", "url", url, "headers", "content-type",
      "application/json", "accept", "application/json", "authorization", "{{secrets.API_TOKEN}}", "user-agent",
      "restmon/0.1", "x-request-id", reqid, "body", req_body,
      "response", "status", status, "http_version", "1.1", "headers", "content-type", "application/json", "date",
      "Mon, 23 Nov 2026 10:00:00 GMT", "server", "nginx", "x-request-id", reqid, "cache-control", "no-store",
      "vary", "accept-encoding", "body", resp_body, "size", (int)strlen(resp_body),
      "timings", "dns_ms", 0.04, "connect_ms", 0.31, "tls_ms", 2.2, "first_byte_ms", total - 1.5, "total_ms", total,
      "extracted", extracted,
      "assertions", "subject", "status", "op", "in", "expected", "2xx", "actual", status, "passed", 1, "message",
      "status in 2xx", "subject", "json $.status", "op", "eq", "expected", "created", "actual", "created", "passed", 1,
      "message", "$.status eq created", "subject", "duration_ms", "op", "lt", "expected", 2000.0, "actual", total,
      "passed", 1, "message", "duration_ms lt 2000",
      "logs", "level", "info", "message", "order created");
}

typedef struct steps_ctx steps_ctx;

/* One executor: writes STEPS_PER_RUN steps to a run, one at a time (the
 * next only once the last is durable), then takes a new run. */
typedef struct slot {
  steps_ctx *x;
  int run, k;
  uint64_t t0;
} slot;

struct steps_ctx {
  rm_store *s;
  long n, issued, done, failed;
  int nruns, next_run;
  double *lat_ms, t_end;
  char first_err[512];
};

static void issue(slot *sl);

static void on_put(void *ud, int err, const char *msg, json_t *res) {
  slot *sl = ud;
  steps_ctx *x = sl->x;
  x->lat_ms[x->done++] = (double)(uv_hrtime() - sl->t0) / 1e6;
  if (err) {
    if (!x->failed++) snprintf(x->first_err, sizeof x->first_err, "%s: %s", rm_errname(err), msg);
  }
  json_decref(res);
  if (x->done == x->n) x->t_end = sb_now_s();
  issue(sl);
}

static void issue(slot *sl) {
  steps_ctx *x = sl->x;
  if (x->issued >= x->n) return;
  if (sl->run < 0 || sl->k == STEPS_PER_RUN) {
    sl->run = x->next_run++;
    sl->k = 0;
  }
  char id[40];
  json_t *vars = NULL, *step = make_step(x->issued++, sl->k++, &vars);
  snprintf(id, sizeof id, "s-%d", sl->run + 1);
  sl->t0 = uv_hrtime();
  rm_store_step_put(x->s, id, SB_OWNER, step, vars, on_put, sl);
  json_decref(step);
  json_decref(vars);
}

int sb_steps(const char *url, long n, int conc) {
  steps_ctx x = {.n = n};
  uv_loop_t loop;
  rm__conn *c = NULL;
  /* a run per STEPS_PER_RUN steps, plus the runs executors leave unfinished */
  x.nruns = (int)((n + STEPS_PER_RUN - 1) / STEPS_PER_RUN) + conc;
  fprintf(stderr, "steps: creating %d running runs\n", x.nruns);
  if (sb_db_open(url, &c) != 0) return 1;
  int rc = sb_insert_running_runs(c, x.nruns, "s-");
  sb_db_close(c);
  if (rc != 0) return 1;
  uv_loop_init(&loop);
  if (sb_store_open(&x.s, &loop, url) != 0) return 1;
  slot *slots = calloc((size_t)conc, sizeof *slots);
  x.lat_ms = calloc((size_t)n, sizeof *x.lat_ms);
  if (!slots || !x.lat_ms) {
    fprintf(stderr, "store_bench: out of memory\n");
    return 1;
  }
  uint64_t tx0, jobs0, tx1, jobs1;
  rm__store_step_stats(x.s, &tx0, &jobs0);
  fprintf(stderr, "steps: writing %ld step records, %d in flight\n", n, conc);
  double cpu0 = sb_cpu_s(), t0 = sb_now_s();
  for (int i = 0; i < conc; i++) {
    slots[i] = (slot){.x = &x, .run = -1};
    issue(&slots[i]);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* the store holds the loop while writes are outstanding */
  double secs = x.t_end - t0, cpu = sb_cpu_s() - cpu0;
  rm__store_step_stats(x.s, &tx1, &jobs1);
  sb_store_close(x.s, &loop);
  uv_loop_close(&loop);

  int64_t stored = -1;
  if (sb_db_open(url, &c) == 0) stored = sb_count(c, "SELECT count(*) AS n FROM steps");
  sb_db_close(c);
  uint64_t txs = tx1 - tx0, jobs = jobs1 - jobs0;
  json_t *out = json_pack("{s:s, s:I, s:i, s:i, s:I, s:I, s:f, s:f, s:f, s:I, s:f, s:f, s:f, s:f, s:f}", "mode",
                          "steps", "records", (json_int_t)n, "concurrency", conc, "steps_per_run", STEPS_PER_RUN,
                          "failed", (json_int_t)x.failed, "stored", (json_int_t)stored, "seconds", secs,
                          "records_per_s", secs > 0 ? (double)n / secs : 0.0, "cpu_s", cpu, "transactions",
                          (json_int_t)txs, "records_per_tx", txs ? (double)jobs / (double)txs : 0.0, "cpu_us_per_record",
                          cpu * 1e6 / (double)n, "latency_p50_ms", sb_pct(x.lat_ms, (size_t)n, 50),
                          "latency_p95_ms", sb_pct(x.lat_ms, (size_t)n, 95), "latency_max_ms",
                          sb_pct(x.lat_ms, (size_t)n, 100));
  if (x.failed) json_object_set_new(out, "first_error", json_string(x.first_err));
  sb_print(out);
  free(slots);
  free(x.lat_ms);
  return x.failed == 0 && stored == n ? 0 : 1;
}

/* The record and vars of the steps mode's 1000th write: the peers write
 * the same text. */
int sb_sample(void) {
  json_t *vars = NULL, *step = make_step(1000, 0, &vars);
  char *text = json_dumps(step, JSON_COMPACT);
  json_t *out = json_pack("{s:O, s:O, s:O, s:i}", "step", step, "vars", vars, "extracted",
                          json_object_get(json_array_get(json_object_get(step, "attempts"), 0), "extracted"),
                          "record_bytes", text ? (int)strlen(text) : 0);
  free(text);
  json_decref(step);
  json_decref(vars);
  sb_print(out);
  return 0;
}

static long arg_long(const char *s, long lo, long hi, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "store_bench: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
    exit(2);
  }
  return v;
}

static int usage(void) {
  fprintf(stderr, "usage: store_bench steps URL N C | sample | fill URL N | runs URL N PREFIX |\n"
                  "                   search URL K BUDGET_S [--no-warmup] | drop-indexes URL\n");
  return 2;
}

int main(int argc, char **argv) {
  setvbuf(stderr, NULL, _IOLBF, 0);
  if (argc < 2) return usage();
  const char *mode = argv[1];
  if (strcmp(mode, "steps") == 0 && argc == 5)
    return sb_steps(argv[2], arg_long(argv[3], 1, 100000000, "N"), (int)arg_long(argv[4], 1, CONC_MAX, "C"));
  if (strcmp(mode, "sample") == 0 && argc == 2) return sb_sample();
  if (strcmp(mode, "fill") == 0 && argc == 4) return sb_fill(argv[2], arg_long(argv[3], 1, 100000000, "N"));
  if (strcmp(mode, "runs") == 0 && argc == 5) return sb_runs(argv[2], arg_long(argv[3], 1, 10000000, "N"), argv[4]);
  if (strcmp(mode, "search") == 0 && (argc == 5 || (argc == 6 && strcmp(argv[5], "--no-warmup") == 0)))
    return sb_search(argv[2], (int)arg_long(argv[3], 1, 100000, "K"), (double)arg_long(argv[4], 1, 3600, "BUDGET_S"),
                     argc == 5);
  if (strcmp(mode, "drop-indexes") == 0 && argc == 3) return sb_drop_indexes(argv[2]);
  return usage();
}
