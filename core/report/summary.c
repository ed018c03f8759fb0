/* The figures of a --repeat batch: the live progress line while it runs
 * and the summary after it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/text.h"
#include "util/err.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The finite values of v, sorted, into *out (caller frees; NULL when there
 * are none) and their count into *m. 0 or RM_ENOMEM. */
static int sorted_finite(const double *v, size_t n, double **out, size_t *m) {
  size_t k = 0;
  *out = NULL;
  *m = 0;
  for (size_t i = 0; v && i < n; i++) k += isfinite(v[i]) != 0;
  if (k == 0) return 0;
  double *s = malloc(k * sizeof *s);
  if (!s) return RM_ENOMEM;
  k = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i])) s[k++] = v[i];
  qsort(s, k, sizeof *s, cmp_double);
  *out = s;
  *m = k;
  return 0;
}

/* Nearest rank: the smallest value with at least p% of the values at or
 * below it. The tiny slack keeps p*n/100 from landing a rank too high
 * through rounding. */
static double nearest_rank(const double *sorted, size_t n, double p) {
  if (n == 0) return 0;
  if (!(p > 0)) return sorted[0];
  if (p >= 100) return sorted[n - 1];
  double r = ceil(p * (double)n / 100.0 - 1e-9);
  size_t k = r < 1 ? 1 : (size_t)r;
  return sorted[(k > n ? n : k) - 1];
}

double rm_report_percentile(const double *v, size_t n, double p) {
  double *s;
  size_t m;
  if (sorted_finite(v, n, &s, &m)) return NAN;
  double r = nearest_rank(s, m, p);
  free(s);
  return r;
}

/* "  failed             12", coloured when the count is not zero. */
static void count_line(rm__report_out *o, const char *label, size_t n, const char *sgr) {
  rm__report_printf(o, "  %-12s", label);
  if (n) rm__report_sgr(o, sgr);
  rm__report_printf(o, "%10zu", n);
  if (n) rm__report_sgr(o, "0");
  rm__report_newline(o);
}

static void latency(rm__report_out *o, const rm_repeat_stats *s, const double *sorted, size_t m) {
  static const double ps[] = {50, 90, 95, 99, 100};
  static const char *labels[] = {"p50", "p90", "p95", "p99", "max"};
  enum { N = sizeof ps / sizeof ps[0] };
  if (m == 0) {
    rm__report_printf(o, "  %-12s%10s", "latency", "-");
    rm__report_newline(o);
    return;
  }
  rm__report_printf(o, "  %-12s", "latency ms");
  for (size_t i = 0; i < N; i++) rm__report_printf(o, "%10s", labels[i]);
  rm__report_newline(o);
  rm__report_printf(o, "  %-12s", "");
  for (size_t i = 0; i < N; i++) rm__report_printf(o, "%10.2f", nearest_rank(sorted, m, ps[i]));
  rm__report_newline(o);
  if (m < s->total) {
    rm__report_printf(o, "  %-12s%10zu runs without a duration", "", s->total - m);
    rm__report_newline(o);
  }
}

int rm_report_repeat_summary(FILE *f, const rm_repeat_stats *s, bool color) {
  if (!f || !s) return RM_EINVAL;
  rm__report_out o = {RM_BUF_INIT, 0, color};
  double *sorted;
  size_t m;
  int rc = sorted_finite(s->durations_ms, s->total, &sorted, &m);
  if (rc) return rc;
  bool timed = isfinite(s->wall_ms) && s->wall_ms > 0;
  rm__report_sgr(&o, "1");
  rm__report_printf(&o, "%zu run%s", s->total, s->total == 1 ? "" : "s");
  rm__report_sgr(&o, "0");
  if (isfinite(s->wall_ms) && s->wall_ms >= 0) {
    rm__report_puts(&o, " in ");
    rm__report_duration(&o, s->wall_ms);
  }
  rm__report_newline(&o);
  count_line(&o, "succeeded", s->succeeded, "32");
  count_line(&o, "degraded", s->degraded, "33");
  count_line(&o, "failed", s->failed, "31");
  count_line(&o, "errors", s->errors, "31");
  if (timed && s->total)
    rm__report_printf(&o, "  %-12s%10.1f runs/s", "throughput",
                      (double)s->total * 1000.0 / s->wall_ms);
  else rm__report_printf(&o, "  %-12s%10s", "throughput", "-");
  rm__report_newline(&o);
  if (s->total && isfinite(s->cpu_ms) && s->cpu_ms >= 0)
    rm__report_printf(&o, "  %-12s%10.2f ms/run", "cpu", s->cpu_ms / (double)s->total);
  else rm__report_printf(&o, "  %-12s%10s", "cpu", "-");
  rm__report_newline(&o);
  latency(&o, s, sorted, m);
  rc = rm__report_flush(&o, f);
  rm_buf_free(&o.buf);
  free(sorted);
  return rc;
}

/* "3s", "4m05s", "2h07m": an ETA needs no more precision than that. */
static void eta(FILE *f, double secs) {
  if (!isfinite(secs) || secs < 0) fputs("-", f);
  else if (secs < 60) fprintf(f, "%.0fs", ceil(secs));
  else if (secs < 3600) fprintf(f, "%dm%02ds", (int)(secs / 60), (int)fmod(secs, 60));
  else if (secs < 100 * 3600.0)
    fprintf(f, "%dh%02dm", (int)(secs / 3600), (int)fmod(secs / 60, 60));
  else fputs(">99h", f);
}

void rm_report_progress(FILE *f, size_t done, size_t total, size_t failed, double elapsed_ms) {
  if (!f) return;
  double rate = isfinite(elapsed_ms) && elapsed_ms > 0 ? (double)done * 1000.0 / elapsed_ms : 0;
  fprintf(f, "\r  %zu/%zu runs  %zu failed  %.1f runs/s  ETA ", done, total, failed, rate);
  if (done >= total) fputs("0s", f);
  else if (rate > 0) eta(f, (double)(total - done) / rate);
  else fputs("-", f);
  fputs("\033[K", f);
  fflush(f);
}
