/* store_bench: the C side of the store benchmark (bench/bench_store.py
 * runs it). It links against the core objects and drives core/store the
 * way restmon does, through store.h; bulk set-up (filling a database,
 * creating the runs to write steps to) goes through the store's own db
 * layer (core/store/db.h) so it takes seconds, not the benchmark's time.
 *
 * Modes, one file each:
 *   store_bench.c   main, shared helpers, `steps` (step write throughput)
 *   store_fill.c    `fill` (N finished runs), `runs` (leased runs)
 *   store_search.c  `search` (rm_store_run_search latencies), `drop-indexes`
 * Every mode prints one JSON object on stdout and progress on stderr. */
#ifndef RM_BENCH_STORE_BENCH_H
#define RM_BENCH_STORE_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/db.h"
#include "store/store.h"

/* The lease owner of every run the benchmark writes steps to. */
#define SB_OWNER "bench"

/* ---- deterministic randomness (splitmix64): fills are reproducible ---- */
typedef struct sb_rng {
  uint64_t s;
} sb_rng;

uint64_t sb_rand(sb_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t sb_below(sb_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double sb_unit(sb_rng *r);
/* A version-4-shaped UUID drawn from r. */
void sb_uuid(sb_rng *r, char out[37]);

/* ---- the database behind the store's back ---------------------------- */
/* Connects to url with the store's db layer and migrates it, as
 * rm_store_open would; 0, or -1 after printing why. */
int sb_db_open(const char *url, rm__conn **out);
void sb_db_close(rm__conn *c);
/* Runs a statement without parameters; 0, or -1 after printing why. */
int sb_exec(rm__conn *c, const char *sql);
/* The integer in column "n" of the first row of sql, or -1 after
 * printing why. */
int64_t sb_count(rm__conn *c, const char *sql);
/* Runs sql with params (stolen); 0, or -1 after printing why. */
int sb_query(rm__conn *c, const char *sql, json_t *params);
/* The secondary indexes of runs, steps and step_vars (SQLite's index
 * table of extracted variables) -- all but the primary keys -- as
 * the schema made them: a new array of {"name", "sql"} (the CREATE INDEX
 * statement), or NULL after printing why. */
json_t *sb_secondary_indexes(rm__conn *c);
/* Drops the indexes of such an array; 0, or -1 after printing why. */
int sb_drop_index_list(rm__conn *c, const json_t *indexes);

/* ---- the store ------------------------------------------------------- */
/* rm_store_open with migrate on loop; 0, or -1 after printing why. */
int sb_store_open(rm_store **out, uv_loop_t *loop, const char *url);
/* rm_store_close, running loop until the store has closed. */
void sb_store_close(rm_store *s, uv_loop_t *loop);

/* ---- numbers --------------------------------------------------------- */
/* The p-th percentile (0-100, nearest rank) of v[0..n); sorts v. */
double sb_pct(double *v, size_t n, double p);
/* Monotonic seconds. */
double sb_now_s(void);
/* User + system CPU seconds of this process so far. */
double sb_cpu_s(void);
/* Prints o (stolen) as one line of JSON on stdout. */
void sb_print(json_t *o);

/* ---- the data --------------------------------------------------------- */
#define SB_WORKFLOWS 20
/* The workflows the filled runs belong to: name i, id "wf-<i>". */
const char *sb_workflow_name(int i);
/* Inserts count runs that are running and leased to SB_OWNER for an
 * hour, as rm_store_run_create with status "running" makes them, with
 * ids prefix + 1..count; 0, or -1 after printing why. */
int sb_insert_running_runs(rm__conn *c, int count, const char *prefix);

/* ---- the modes: each returns the process exit code -------------------- */
int sb_steps(const char *url, long n, int conc);
int sb_sample(void);
int sb_fill(const char *url, long n);
int sb_runs(const char *url, long n, const char *prefix);
int sb_search(const char *url, int k, double budget_s, bool warmup);
int sb_drop_indexes(const char *url);

#endif
