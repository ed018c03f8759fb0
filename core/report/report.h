/* Renders run records (docs/run-record.md) for people and CI systems.
 * Every function reads the record (borrowed) and writes to f; values in a
 * record are already scrubbed of secrets by the engine. */
#ifndef RM_REPORT_H
#define RM_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct rm_report_opts {
  bool color;         /* ANSI colours (when f is a terminal) */
  bool verbose;       /* also print request/response heads and bodies */
  int body_preview;   /* characters of bodies shown when verbose (e.g. 400) */
} rm_report_opts;

/* The readable timeline: header line, one block per step and attempt
 * (HTTP status, duration, extracted variables, assertions, decision and
 * why, retry reason), and a closing verdict line. 0 or a negative RM_E*. */
int rm_report_timeline(FILE *f, const json_t *run, const rm_report_opts *o);

/* JUnit XML: one <testsuite> per run in runs (a JSON array of run
 * records), one <testcase> per step; failed steps carry <failure> with the
 * decision reason, skipped steps <skipped/>; attempts and extracted
 * variables go to <system-out>. 0 or a negative RM_E*. */
int rm_report_junit(FILE *f, const json_t *runs);

/* Aggregate figures of a --repeat batch. */
typedef struct rm_repeat_stats {
  size_t total, succeeded, degraded, failed, errors;
  double wall_ms;      /* whole batch */
  double cpu_ms;       /* user+system CPU of the process over the batch */
  const double *durations_ms; /* one per run, any order; n == total */
} rm_repeat_stats;

/* Prints counts, runs per second, CPU ms per run and latency p50/p90/p95/
 * p99/max. Does not modify durations (NULL, or non-finite entries, count
 * as runs without a duration). 0, RM_ENOMEM or RM_EIO. */
int rm_report_repeat_summary(FILE *f, const rm_repeat_stats *s, bool color);

/* Computes the p-th percentile (0..100, nearest-rank) of n values; the
 * array is copied, not modified. Non-finite values are left out. Returns 0
 * when no value is left, NaN when the copy cannot be allocated. */
double rm_report_percentile(const double *v, size_t n, double p);

/* Overwrites the current terminal line with "  37/1000 runs  12 failed
 * 412.3 runs/s  ETA 2s". */
void rm_report_progress(FILE *f, size_t done, size_t total, size_t failed, double elapsed_ms);

#endif
