/* rm_metrics: a small Prometheus registry (counters, gauges, histograms)
 * rendered in the text exposition format 0.0.4.
 *
 * A metric family has a fixed list of label names, given when it is
 * created; each distinct list of label values is one series, created on
 * first use. Label values should come from bounded sets (route patterns,
 * status codes), never from raw input. Loop thread only: no locking. */
#ifndef RM_API_METRICS_H
#define RM_API_METRICS_H

#include <stddef.h>

#include "util/buf.h"

#define RM_METRICS_MAX_LABELS 8
/* The Content-Type of rm_metrics_render's output. */
#define RM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum rm_metric_type { RM_METRIC_COUNTER = 0, RM_METRIC_GAUGE = 1, RM_METRIC_HISTOGRAM = 2 };

typedef struct rm_metric rm_metric; /* one family; owned by the registry */

typedef struct rm_metrics {
  rm_metric *first, *last; /* families in registration order */
} rm_metrics;

#define RM_METRICS_INIT {NULL, NULL}

/* Frees every family and series; the registry is left empty. */
void rm_metrics_free(rm_metrics *m);

/* Registers a family. name matches [a-zA-Z_:][a-zA-Z0-9_:]*; labels is a
 * NULL-terminated list of names matching [a-zA-Z_][a-zA-Z0-9_]* (not
 * starting with "__"; "le" is reserved in histograms), or NULL for none.
 * help is free text. bounds are a histogram's bucket upper bounds,
 * strictly increasing (+Inf is implied); NULL/0 gives the Prometheus
 * client defaults (5 ms to 10 s). Returns the family (borrowed until
 * rm_metrics_free), or NULL for an invalid or duplicate name or no
 * memory. */
rm_metric *rm_metrics_counter(rm_metrics *m, const char *name, const char *help,
                              const char *const *labels);
rm_metric *rm_metrics_gauge(rm_metrics *m, const char *name, const char *help,
                            const char *const *labels);
rm_metric *rm_metrics_histogram(rm_metrics *m, const char *name, const char *help,
                                const char *const *labels, const double *bounds,
                                size_t nbounds);

/* values: one per label name, in order (NULL when the family has none).
 * Each returns 0, RM_EINVAL (wrong type, a negative counter increment,
 * a NULL value) or RM_ENOMEM. */
int rm_metric_add(rm_metric *f, const char *const *values, double v); /* counter, gauge */
int rm_metric_set(rm_metric *f, const char *const *values, double v); /* gauge */
int rm_metric_observe(rm_metric *f, const char *const *values, double v); /* histogram */

/* The current value of a counter or gauge series (0 when it does not
 * exist yet), or the observation count of a histogram series. */
double rm_metric_get(const rm_metric *f, const char *const *values);

/* Appends the exposition text of every family to out. 0 or RM_ENOMEM. */
int rm_metrics_render(const rm_metrics *m, rm_buf *out);

#endif
