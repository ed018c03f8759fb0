#include "api/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/text.h"

/* One series: a list of label values and its numbers. */
typedef struct series {
  struct series *next;  /* registration order, for rendering */
  struct series *hnext; /* hash chain */
  uint64_t hash;
  char *key; /* the values joined with '\0' */
  size_t keylen;
  double value;      /* counter, gauge */
  double sum;        /* histogram */
  uint64_t count;    /* histogram */
  uint64_t *buckets; /* histogram: observations per bound, not cumulative */
} series;

struct rm_metric {
  rm_metric *next;
  enum rm_metric_type type;
  char *name, *help;
  size_t nlabels;
  char *labels[RM_METRICS_MAX_LABELS];
  size_t nbounds;
  double *bounds;
  series *first, *last;
  size_t nseries;
  series **table; /* power-of-two buckets */
  size_t tcap;
};

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static void family_free(rm_metric *f) {
  for (series *s = f->first, *n; s; s = n) {
    n = s->next;
    free(s->key);
    free(s->buckets);
    free(s);
  }
  for (size_t i = 0; i < f->nlabels; i++) free(f->labels[i]);
  free(f->table);
  free(f->bounds);
  free(f->name);
  free(f->help);
  free(f);
}

void rm_metrics_free(rm_metrics *m) {
  for (rm_metric *f = m->first, *n; f; f = n) {
    n = f->next;
    family_free(f);
  }
  m->first = m->last = NULL;
}

static bool valid_name(const char *s, bool colon) {
  if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          (colon && c == ':')))
      return false;
  }
  return true;
}


static series *series_new(rm_metric *f, char *key, size_t keylen, uint64_t hash);

static rm_metric *family_new(rm_metrics *m, enum rm_metric_type type, const char *name,
                             const char *help, const char *const *labels) {
  if (!valid_name(name, true)) return NULL;
  for (rm_metric *f = m->first; f; f = f->next)
    if (strcmp(f->name, name) == 0) return NULL;
  rm_metric *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->type = type;
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  bool ok = f->name && f->help;
  for (size_t i = 0; ok && labels && labels[i]; i++) {
    ok = i < RM_METRICS_MAX_LABELS && valid_name(labels[i], false) && strncmp(labels[i], "__", 2) != 0 &&
         !(type == RM_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0);
    for (size_t j = 0; ok && j < i; j++) ok = strcmp(labels[i], labels[j]) != 0;
    if (ok) ok = (f->labels[f->nlabels++] = strdup(labels[i])) != NULL;
  }
  if (!ok) {
    family_free(f);
    return NULL;
  }
  return f;
}

/* Links f into m; a family without labels gets its one series now, so it
 * is rendered (as zero) before its first update. */
static rm_metric *family_add(rm_metrics *m, rm_metric *f) {
  if (f->nlabels == 0) {
    char *key = strdup("");
    if (!key || !series_new(f, key, 0, rm_fnv1a("", 0))) {
      family_free(f);
      return NULL;
    }
  }
  if (m->last) m->last->next = f;
  else m->first = f;
  m->last = f;
  return f;
}

rm_metric *rm_metrics_counter(rm_metrics *m, const char *name, const char *help,
                              const char *const *labels) {
  rm_metric *f = family_new(m, RM_METRIC_COUNTER, name, help, labels);
  return f ? family_add(m, f) : NULL;
}

rm_metric *rm_metrics_gauge(rm_metrics *m, const char *name, const char *help,
                            const char *const *labels) {
  rm_metric *f = family_new(m, RM_METRIC_GAUGE, name, help, labels);
  return f ? family_add(m, f) : NULL;
}

rm_metric *rm_metrics_histogram(rm_metrics *m, const char *name, const char *help,
                                const char *const *labels, const double *bounds,
                                size_t nbounds) {
  if (!bounds || nbounds == 0) {
    bounds = default_bounds;
    nbounds = sizeof default_bounds / sizeof default_bounds[0];
  }
  for (size_t i = 0; i < nbounds; i++)
    if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) return NULL;
  rm_metric *f = family_new(m, RM_METRIC_HISTOGRAM, name, help, labels);
  if (!f) return NULL;
  f->bounds = malloc(nbounds * sizeof *f->bounds);
  if (!f->bounds) {
    family_free(f);
    return NULL;
  }
  memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
  f->nbounds = nbounds;
  return family_add(m, f);
}

static int grow_table(rm_metric *f) {
  size_t cap = f->tcap ? f->tcap * 2 : 16;
  series **t = calloc(cap, sizeof *t);
  if (!t) return RM_ENOMEM;
  for (series *s = f->first; s; s = s->next) {
    size_t i = s->hash & (cap - 1);
    s->hnext = t[i];
    t[i] = s;
  }
  free(f->table);
  f->table = t;
  f->tcap = cap;
  return 0;
}

/* Takes key. NULL when out of memory (key is freed). */
static series *series_new(rm_metric *f, char *key, size_t keylen, uint64_t hash) {
  series *s = calloc(1, sizeof *s);
  if (s && f->type == RM_METRIC_HISTOGRAM) s->buckets = calloc(f->nbounds, sizeof *s->buckets);
  if (!s || (f->type == RM_METRIC_HISTOGRAM && !s->buckets) ||
      ((f->nseries + 1) * 4 > f->tcap * 3 && grow_table(f) != 0)) {
    if (s) free(s->buckets);
    free(s);
    free(key);
    return NULL;
  }
  s->key = key;
  s->keylen = keylen;
  s->hash = hash;
  size_t i = hash & (f->tcap - 1);
  s->hnext = f->table[i];
  f->table[i] = s;
  if (f->last) f->last->next = s;
  else f->first = s;
  f->last = s;
  f->nseries++;
  return s;
}

/* The key of a list of values into buf (values joined with '\0'). 0,
 * RM_EINVAL when a value is missing, RM_ENOMEM. */
static int make_key(const rm_metric *f, const char *const *values, rm_buf *buf) {
  for (size_t i = 0; i < f->nlabels; i++)
    if (!values || !values[i]) return RM_EINVAL;
  for (size_t i = 0; i < f->nlabels; i++)
    if (rm_buf_append(buf, values[i], strlen(values[i]) + 1) != 0) return RM_ENOMEM;
  return 0;
}

static series *lookup(const rm_metric *f, const char *key, size_t keylen, uint64_t hash) {
  if (!f->tcap) return NULL;
  for (series *s = f->table[hash & (f->tcap - 1)]; s; s = s->hnext)
    if (s->hash == hash && s->keylen == keylen && memcmp(s->key, key, keylen) == 0) return s;
  return NULL;
}

/* The series for values, created when missing; *err says why not. */
static series *find(rm_metric *f, const char *const *values, int *err) {
  rm_buf key = RM_BUF_INIT;
  if ((*err = make_key(f, values, &key)) != 0) {
    rm_buf_free(&key);
    return NULL;
  }
  const char *k = key.data ? key.data : "";
  uint64_t h = rm_fnv1a(k, key.len);
  series *s = lookup(f, k, key.len, h);
  if (s) {
    rm_buf_free(&key);
    return s;
  }
  size_t len = key.len;
  char *owned = key.data ? rm_buf_steal(&key) : strdup("");
  s = owned ? series_new(f, owned, len, h) : NULL;
  if (!s) *err = RM_ENOMEM;
  return s;
}

int rm_metric_add(rm_metric *f, const char *const *values, double v) {
  if (!f || f->type == RM_METRIC_HISTOGRAM || (f->type == RM_METRIC_COUNTER && !(v >= 0)))
    return RM_EINVAL;
  int err = 0;
  series *s = find(f, values, &err);
  if (!s) return err;
  s->value += v;
  return 0;
}

int rm_metric_set(rm_metric *f, const char *const *values, double v) {
  if (!f || f->type != RM_METRIC_GAUGE) return RM_EINVAL;
  int err = 0;
  series *s = find(f, values, &err);
  if (!s) return err;
  s->value = v;
  return 0;
}

int rm_metric_observe(rm_metric *f, const char *const *values, double v) {
  if (!f || f->type != RM_METRIC_HISTOGRAM || isnan(v)) return RM_EINVAL;
  int err = 0;
  series *s = find(f, values, &err);
  if (!s) return err;
  for (size_t i = 0; i < f->nbounds; i++) {
    if (v <= f->bounds[i]) {
      s->buckets[i]++;
      break;
    }
  }
  s->count++;
  s->sum += v;
  return 0;
}

double rm_metric_get(const rm_metric *f, const char *const *values) {
  rm_buf key = RM_BUF_INIT;
  double v = 0;
  if (f && make_key(f, values, &key) == 0) {
    const char *k = key.data ? key.data : "";
    const series *s = lookup(f, k, key.len, rm_fnv1a(k, key.len));
    if (s) v = f->type == RM_METRIC_HISTOGRAM ? (double)s->count : s->value;
  }
  rm_buf_free(&key);
  return v;
}

/* Shortest text that reads back as the same double; integers without an
 * exponent while they are exact. */
static int put_number(rm_buf *b, double v) {
  if (isnan(v)) return rm_buf_puts(b, "NaN");
  if (isinf(v)) return rm_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
  if (v == floor(v) && fabs(v) < 9007199254740992.0) return rm_buf_printf(b, "%.0f", v);
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v) break;
  }
  return rm_buf_puts(b, tmp);
}

/* HELP text escapes backslash and newline; label values also '"'. */
static int put_escaped(rm_buf *b, const char *s, bool quote) {
  int rc = 0;
  for (; *s && rc == 0; s++) {
    if (*s == '\\') rc = rm_buf_puts(b, "\\\\");
    else if (*s == '\n') rc = rm_buf_puts(b, "\\n");
    else if (quote && *s == '"') rc = rm_buf_puts(b, "\\\"");
    else rc = rm_buf_putc(b, *s);
  }
  return rc;
}

/* name{l1="v1",...,extra} with extra an already formatted pair or NULL. */
static int put_sample_name(rm_buf *b, const rm_metric *f, const series *s, const char *suffix,
                           const char *extra) {
  int rc = rm_buf_printf(b, "%s%s", f->name, suffix);
  if (f->nlabels == 0 && !extra) return rc;
  rc |= rm_buf_putc(b, '{');
  const char *v = s->key;
  for (size_t i = 0; i < f->nlabels; i++) {
    rc |= rm_buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
    rc |= put_escaped(b, v, true);
    rc |= rm_buf_putc(b, '"');
    v += strlen(v) + 1;
  }
  if (extra) rc |= rm_buf_printf(b, "%s%s", f->nlabels ? "," : "", extra);
  rc |= rm_buf_putc(b, '}');
  return rc;
}

static int render_histogram(rm_buf *b, const rm_metric *f, const series *s) {
  int rc = 0;
  uint64_t cum = 0;
  rm_buf le = RM_BUF_INIT;
  for (size_t i = 0; i <= f->nbounds && rc == 0; i++) {
    rm_buf_reset(&le);
    rc |= rm_buf_puts(&le, "le=\"");
    if (i < f->nbounds) {
      rc |= put_number(&le, f->bounds[i]);
      cum += s->buckets[i];
    } else {
      rc |= rm_buf_puts(&le, "+Inf");
      cum = s->count;
    }
    rc |= rm_buf_putc(&le, '"');
    rc |= put_sample_name(b, f, s, "_bucket", le.data);
    rc |= rm_buf_printf(b, " %llu\n", (unsigned long long)cum);
  }
  rm_buf_free(&le);
  rc |= put_sample_name(b, f, s, "_sum", NULL);
  rc |= rm_buf_putc(b, ' ');
  rc |= put_number(b, s->sum);
  rc |= rm_buf_putc(b, '\n');
  rc |= put_sample_name(b, f, s, "_count", NULL);
  rc |= rm_buf_printf(b, " %llu\n", (unsigned long long)s->count);
  return rc;
}

int rm_metrics_render(const rm_metrics *m, rm_buf *out) {
  static const char *type_names[] = {"counter", "gauge", "histogram"};
  int rc = 0;
  for (const rm_metric *f = m->first; f && rc == 0; f = f->next) {
    rc |= rm_buf_printf(out, "# HELP %s ", f->name);
    rc |= put_escaped(out, f->help, false);
    rc |= rm_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (const series *s = f->first; s && rc == 0; s = s->next) {
      if (f->type == RM_METRIC_HISTOGRAM) {
        rc |= render_histogram(out, f, s);
        continue;
      }
      rc |= put_sample_name(out, f, s, "", NULL);
      rc |= rm_buf_putc(out, ' ');
      rc |= put_number(out, s->value);
      rc |= rm_buf_putc(out, '\n');
    }
  }
  return rc ? RM_ENOMEM : 0;
}
