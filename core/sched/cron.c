/* rm_schedule: parsing cron expressions, intervals and date lists, and
 * finding the next fire time (DST rules in cron.h). */
#include "sched/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

#define EXPR_MAX 1024
#define DAY_S 86400

/* Clears *out and sets its kind and zone; RM_EINVAL for a bad zone name. */
static int sched_init(rm_schedule *out, enum rm_sched_kind kind, const char *tz, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  if (!tz) tz = "UTC";
  if (!rm_tz_name_valid(tz)) return rm__sched_errf(err, errlen, RM_EINVAL, "invalid time zone name \"%.64s\"", tz);
  strcpy(out->tz, tz);
  return 0;
}

void rm_cron_free(rm_schedule *s) {
  if (s && s->kind == RM_SCHED_DATES) free(s->u.dates.items);
  if (s) memset(s, 0, sizeof *s);
}

const char *rm_cron_kind_name(enum rm_sched_kind k) {
  return k == RM_SCHED_EVERY ? "every" : k == RM_SCHED_CRON ? "cron" : k == RM_SCHED_DATES ? "dates" : NULL;
}

static const int64_t UNIT_MS[] = {0, 1000, 60000, 3600000, 86400000};
static const char *const UNIT_NAMES[] = {NULL, "seconds", "minutes", "hours", "days"};

const char *rm_cron_unit_name(enum rm_sched_unit u) {
  return u >= RM_SCHED_SECONDS && u <= RM_SCHED_DAYS ? UNIT_NAMES[u] : NULL;
}

/* ---- every ---- */

int rm_cron_every(rm_schedule *out, int64_t n, enum rm_sched_unit unit, int64_t start_ms,
                  const char *tz, char *err, size_t errlen) {
  int rc = sched_init(out, RM_SCHED_EVERY, tz, err, errlen);
  if (rc) return rc;
  if (!rm_cron_unit_name(unit)) return rm__sched_errf(err, errlen, RM_EINVAL, "unknown interval unit %d", (int)unit);
  if (n < 1 || n > 1000000000)
    return rm__sched_errf(err, errlen, RM_EINVAL, "interval %lld is out of range 1-1000000000", (long long)n);
  if (start_ms < RM_CRON_MIN_MS || start_ms > RM_CRON_MAX_MS)
    return rm__sched_errf(err, errlen, RM_EINVAL, "start time is outside years 1-9999");
  out->u.every.every_ms = n * UNIT_MS[unit];
  out->u.every.start_ms = start_ms;
  return 0;
}

static int every_next(const rm_schedule *s, int64_t after_ms, int64_t *next_ms) {
  int64_t start = s->u.every.start_ms, every = s->u.every.every_ms;
  int64_t next = after_ms < start ? start : start + ((after_ms - start) / every + 1) * every;
  if (next > RM_CRON_MAX_MS) return RM_ENOTFOUND;
  *next_ms = next;
  return 0;
}

/* ---- cron: parsing ---- */

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field_spec {
  const char *name;
  int min, max;
  const char *const *names; /* names[i] stands for min + i */
  int nnames;
};

/* Second first; a 5-field expression uses FIELDS + 1. */
static const struct field_spec FIELDS[6] = {
    {"second", 0, 59, NULL, 0},      {"minute", 0, 59, NULL, 0},   {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0}, {"month", 1, 12, MONTHS, 12}, {"day of week", 0, 7, DAYS, 7},
};

static const struct {
  const char *name, *expansion;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

/* One value: a number or (where the field has them) a name. */
static bool parse_value(const char **pp, const struct field_spec *f, int *out, char *why, size_t wl) {
  const char *p = *pp;
  size_t n = 0;
  if (isdigit((unsigned char)*p)) {
    long v = 0;
    for (; isdigit((unsigned char)p[n]); n++) v = v < 100000 ? v * 10 + (p[n] - '0') : v;
    *out = (int)v;
    if (v < f->min || v > f->max)
      return snprintf(why, wl, "%.*s is out of range %d-%d", (int)n, p, f->min, f->max), false;
  } else {
    while (isalpha((unsigned char)p[n])) n++;
    int i = 0;
    while (i < f->nnames && !(n == 3 && strncasecmp(p, f->names[i], 3) == 0)) i++;
    if (n == 0 || i == f->nnames) {
      if (n == 0) n = *p ? 1 : 0;
      if (n == 0) return snprintf(why, wl, "a value is missing"), false;
      return snprintf(why, wl, f->nnames ? "unknown name \"%.*s\"" : "\"%.*s\" is not a number", (int)n, p), false;
    }
    *out = f->min + i;
  }
  *pp = p + n;
  return true;
}

/* One list item: "*", "v", "a-b", each optionally "/step". */
static bool parse_item(const char **pp, const struct field_spec *f, uint64_t *bits, char *why, size_t wl) {
  const char *p = *pp;
  int lo = f->min, hi = f->max, step = 1;
  if (*p == '*') {
    p++;
  } else {
    if (!parse_value(&p, f, &lo, why, wl)) return false;
    bool range = *p == '-';
    hi = range ? f->max : lo;
    if (range && (p++, !parse_value(&p, f, &hi, why, wl))) return false;
    if (*p == '/' && !range) hi = f->max; /* "10/10" is 10-max/10 */
    if (hi < lo) return snprintf(why, wl, "range %d-%d goes backwards", lo, hi), false;
  }
  if (*p == '/') {
    p++;
    const char *s = p;
    long v = 0;
    for (; isdigit((unsigned char)*p); p++) v = v < 100000 ? v * 10 + (*p - '0') : v;
    if (p == s) return snprintf(why, wl, "a step needs a number after '/'"), false;
    if (v < 1 || v > f->max - f->min)
      return snprintf(why, wl, "step %.*s is out of range 1-%d", (int)(p - s), s, f->max - f->min), false;
    step = (int)v;
  }
  for (int v = lo; v <= hi; v += step) *bits |= (uint64_t)1 << (f->max == 7 && v == 7 ? 0 : v);
  *pp = p;
  return true;
}

static bool parse_field(const char *text, const struct field_spec *f, uint64_t *bits, char *why, size_t wl) {
  const char *p = text;
  *bits = 0;
  for (;;) {
    if (*p == ',' || *p == '\0') return snprintf(why, wl, "empty list item"), false;
    if (!parse_item(&p, f, bits, why, wl)) return false;
    if (*p == '\0') return true;
    if (*p != ',') return snprintf(why, wl, "unexpected \"%.16s\"", p), false;
    p++;
  }
}

/* Whether some selected day of month exists in some selected month
 * (February counted with 29 days). */
static bool days_exist(const rm_cron_expr *e) {
  for (unsigned m = 1; m <= 12; m++) {
    uint64_t in_month = (((uint64_t)1 << (rm_tz_month_days(2000, m) + 1)) - 1) & ~(uint64_t)1;
    if ((e->mon >> m & 1) && (e->dom & in_month)) return true;
  }
  return false;
}

/* Splits expr at blanks into at most 7 fields (copied into buf). */
static int split_fields(const char *expr, char *buf, const char *fields[7]) {
  int n = 0;
  char *save = NULL;
  strcpy(buf, expr);
  for (char *p = strtok_r(buf, " \t\r\n", &save); p; p = strtok_r(NULL, " \t\r\n", &save)) {
    if (n == 7) return 8;
    fields[n++] = p;
  }
  return n;
}

/* "@daily" and the like (trailing blanks allowed) as their 5 fields. */
static const char *expand_macro(const char *expr, char *err, size_t errlen) {
  size_t n = strcspn(expr, " \t\r\n");
  for (size_t i = 0; expr[n + strspn(expr + n, " \t\r\n")] == '\0' && i < sizeof MACROS / sizeof MACROS[0]; i++)
    if (strlen(MACROS[i].name) == n && strncasecmp(expr, MACROS[i].name, n) == 0) return MACROS[i].expansion;
  rm__sched_errf(err, errlen, RM_EINVAL,
                 "unknown macro \"%.32s\" (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)", expr);
  return NULL;
}

static int parse_fields(rm_cron_expr *e, const char *const *fields, int n, char *err, size_t errlen) {
  const struct field_spec *specs = n == 6 ? FIELDS : FIELDS + 1;
  uint64_t *dest[6] = {&e->sec, &e->min, &e->hour, &e->dom, &e->mon, &e->dow};
  uint64_t **out = n == 6 ? dest : dest + 1;
  char why[128];
  e->sec = 1; /* 5 fields: second 0 */
  for (int i = 0; i < n; i++) {
    if (!parse_field(fields[i], &specs[i], out[i], why, sizeof why))
      return rm__sched_errf(err, errlen, RM_EINVAL, "field %d (%s): %s", i + 1, specs[i].name, why);
    bool star = fields[i][0] == '*';
    if (star && out[i] == &e->dom) e->flags |= RM_CRON_DOM_STAR;
    if (star && out[i] == &e->dow) e->flags |= RM_CRON_DOW_STAR;
    if (star && (out[i] == &e->sec || out[i] == &e->min || out[i] == &e->hour))
      e->flags |= RM_CRON_PERIODIC;
  }
  if ((e->flags & RM_CRON_DOW_STAR) && !days_exist(e))
    return rm__sched_errf(err, errlen, RM_EINVAL,
                          "field %d (day of month): no selected day exists in the selected months", n - 2);
  return 0;
}

int rm_cron_parse(rm_schedule *out, const char *expr, const char *tz, char *err, size_t errlen) {
  int rc = sched_init(out, RM_SCHED_CRON, tz, err, errlen);
  if (rc) return rc;
  while (expr && isspace((unsigned char)*expr)) expr++;
  if (!expr || !*expr) return rm__sched_errf(err, errlen, RM_EINVAL, "empty cron expression");
  if (strlen(expr) >= EXPR_MAX) return rm__sched_errf(err, errlen, RM_EINVAL, "cron expression longer than %d bytes", EXPR_MAX - 1);
  if (*expr == '@' && !(expr = expand_macro(expr, err, errlen))) return RM_EINVAL;
  char buf[EXPR_MAX];
  const char *fields[7];
  int n = split_fields(expr, buf, fields);
  if (n != 5 && n != 6)
    return rm__sched_errf(err, errlen, RM_EINVAL,
                          "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got %s%d",
                          n > 7 ? "more than " : "", n > 7 ? 7 : n);
  rc = parse_fields(&out->u.cron, fields, n, err, errlen);
  if (rc) memset(&out->u.cron, 0, sizeof out->u.cron);
  return rc;
}

/* ---- cron: next fire time ---- */

/* The lowest set bit at or above from, or -1. */
static int next_bit(uint64_t bits, unsigned from) {
  uint64_t m = from < 64 ? bits & (~(uint64_t)0 << from) : 0;
  return m ? __builtin_ctzll(m) : -1;
}

static bool day_matches(const rm_cron_expr *e, int64_t days, unsigned dom) {
  bool dom_ok = e->dom >> dom & 1, dow_ok = e->dow >> rm_tz_weekday(days) & 1;
  return e->flags & (RM_CRON_DOM_STAR | RM_CRON_DOW_STAR) ? dom_ok && dow_ok : dom_ok || dow_ok;
}

/* A position on the local calendar. */
struct cal {
  int64_t days, y;
  unsigned m, d;
  int h, mi, s;
};

static void cal_next_day(struct cal *c) {
  c->days++, c->h = c->mi = c->s = 0;
  if (++c->d <= rm_tz_month_days(c->y, c->m)) return;
  c->d = 1;
  if (++c->m > 12) c->m = 1, c->y++;
}

/* Day 1 of the next selected month after c's. */
static void cal_next_month(struct cal *c, uint64_t months) {
  int m = next_bit(months, c->m + 1);
  if (m < 0) m = next_bit(months, 1), c->y++;
  c->m = (unsigned)m, c->d = 1, c->h = c->mi = c->s = 0;
  c->days = rm_tz_days_from_civil(c->y, c->m, 1);
}

/* The first local time at or after from, and at or before limit, that
 * matches e. It jumps field by field (a month that does not match is
 * skipped whole), so a sparse expression costs at most a pass over the
 * days of its months. A field that runs out sets the next one up past
 * its range (hour 24, minute 60), which the next round carries. */
static bool next_local(const rm_cron_expr *e, int64_t from, int64_t limit, int64_t *out) {
  struct cal c = {.days = rm_tz_floor_div(from, DAY_S)};
  int64_t sod = from - c.days * DAY_S;
  rm_tz_civil_from_days(c.days, &c.y, &c.m, &c.d);
  c.h = (int)(sod / 3600), c.mi = (int)(sod / 60 % 60), c.s = (int)(sod % 60);
  while (c.days * DAY_S <= limit) {
    if (!(e->mon >> c.m & 1)) {
      cal_next_month(&c, e->mon);
      continue;
    }
    int h = day_matches(e, c.days, c.d) ? next_bit(e->hour, (unsigned)c.h) : -1;
    if (h < 0) {
      cal_next_day(&c);
      continue;
    }
    if (h != c.h) c.h = h, c.mi = c.s = 0;
    int mi = next_bit(e->min, (unsigned)c.mi);
    if (mi < 0) {
      c.h++, c.mi = c.s = 0;
      continue;
    }
    if (mi != c.mi) c.mi = mi, c.s = 0;
    int s = next_bit(e->sec, (unsigned)c.s);
    if (s < 0) {
      c.mi++, c.s = 0;
      continue;
    }
    int64_t t = c.days * DAY_S + c.h * 3600 + c.mi * 60 + s;
    if (t > limit) return false;
    *out = t;
    return true;
  }
  return false;
}

/* Walks the zone's spans of constant offset from after_s on. In each,
 * local times map to instants one to one; the DST rules of cron.h apply
 * at their edges: a fixed schedule skips the repeated local times at the
 * start of a span that follows a fall-back (they fired in the span
 * before), and fires at a spring-forward transition when a local time in
 * the gap matches. */
static int cron_next_s(const rm_cron_expr *e, const rm_tz *tz, int64_t after_s, int64_t horizon_s, int64_t *out) {
  bool fixed = !(e->flags & RM_CRON_PERIODIC);
  rm_tz_span sp;
  int64_t L;
  /* The first span is the one holding after_s itself, so that a gap
   * ending at after_s + 1 is seen. */
  for (int64_t u = after_s; u <= horizon_s; u = sp.end) {
    rm_tz_span_at(tz, u, &sp);
    int32_t off = sp.info.utc_offset;
    int64_t from = (u == after_s ? u + 1 : u) + off;
    if (fixed && sp.prev_offset > off && from < sp.start + sp.prev_offset) from = sp.start + sp.prev_offset;
    int64_t limit = horizon_s + off;
    if (sp.end != INT64_MAX && sp.end + off - 1 < limit) limit = sp.end + off - 1;
    if (next_local(e, from, limit, &L)) return *out = L - off, 0;
    if (sp.end == INT64_MAX || sp.end > horizon_s) break;
    if (fixed && sp.next_offset > off && next_local(e, sp.end + off, sp.end + sp.next_offset - 1, &L))
      return *out = sp.end, 0;
  }
  return RM_ENOTFOUND;
}

static int cron_next(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *next_ms) {
  int64_t after_s = rm_tz_floor_div(after_ms, 1000), t;
  int64_t horizon_s = after_s + (int64_t)RM_CRON_HORIZON_DAYS * DAY_S;
  if (horizon_s > RM_CRON_MAX_MS / 1000) horizon_s = RM_CRON_MAX_MS / 1000;
  int rc = cron_next_s(&s->u.cron, tz, after_s, horizon_s, &t);
  if (rc == 0) *next_ms = t * 1000;
  return rc;
}

/* ---- dates ---- */

struct iso {
  int y, mo, d, h, mi, s, ms, off_h, off_m;
  bool has_off, neg;
};

/* Exactly n digits. */
static bool digits(const char **pp, int n, int *out) {
  const char *p = *pp;
  int v = 0;
  for (int i = 0; i < n; i++, p++) {
    if (!isdigit((unsigned char)*p)) return false;
    v = v * 10 + (*p - '0');
  }
  *pp = p, *out = v;
  return true;
}

/* ".fff...": milliseconds, further digits ignored. */
static bool fraction(const char **pp, int *ms) {
  const char *p = *pp;
  int n = 0;
  for (; isdigit((unsigned char)*p); p++, n++)
    if (n < 3) *ms = *ms * 10 + (*p - '0');
  for (int k = n; k < 3; k++) *ms *= 10;
  *pp = p;
  return n > 0;
}

static bool iso_syntax(const char *p, struct iso *v) {
  if (!digits(&p, 4, &v->y) || *p++ != '-' || !digits(&p, 2, &v->mo) || *p++ != '-' || !digits(&p, 2, &v->d))
    return false;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (!digits(&p, 2, &v->h) || *p++ != ':' || !digits(&p, 2, &v->mi)) return false;
    if (*p == ':' && (p++, !digits(&p, 2, &v->s))) return false;
    if ((*p == '.' || *p == ',') && (p++, !fraction(&p, &v->ms))) return false;
  }
  if (*p == 'Z' || *p == 'z') {
    v->has_off = true, p++;
  } else if (*p == '+' || *p == '-') {
    v->has_off = true, v->neg = *p++ == '-';
    if (!digits(&p, 2, &v->off_h)) return false;
    p += *p == ':';
    if (*p && !digits(&p, 2, &v->off_m)) return false;
  }
  return *p == '\0';
}

static const char *iso_range(const struct iso *v, char *why, size_t wl) {
  const struct {
    const char *name;
    int val, lo, hi;
  } checks[] = {
      {"year", v->y, 1, 9999}, {"month", v->mo, 1, 12},
      {"day", v->d, 1, v->mo >= 1 && v->mo <= 12 ? (int)rm_tz_month_days(v->y, (unsigned)v->mo) : 31},
      {"hour", v->h, 0, 23}, {"minute", v->mi, 0, 59}, {"second", v->s, 0, 59},
      {"offset hour", v->off_h, 0, 23}, {"offset minute", v->off_m, 0, 59},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
    if (checks[i].val < checks[i].lo || checks[i].val > checks[i].hi) {
      snprintf(why, wl, "%s %d is out of range %d-%d", checks[i].name, checks[i].val, checks[i].lo, checks[i].hi);
      return why;
    }
  return NULL;
}

/* One ISO-8601 date-time into *out; NULL, or what is wrong. */
static const char *parse_date_item(const char *text, rm_cron_date *out, char *why, size_t wl) {
  struct iso v = {0};
  if (!iso_syntax(text, &v)) return "not an ISO-8601 date-time (YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM])";
  if (iso_range(&v, why, wl)) return why;
  int64_t days = rm_tz_days_from_civil(v.y, (unsigned)v.mo, (unsigned)v.d);
  int64_t ms = ((days * DAY_S + v.h * 3600 + v.mi * 60 + v.s) * 1000) + v.ms;
  int64_t off_ms = (v.neg ? -1 : 1) * (v.off_h * 3600 + v.off_m * 60) * (int64_t)1000;
  *out = (rm_cron_date){v.has_off ? ms - off_ms : ms, !v.has_off};
  if (v.has_off && (out->ms < RM_CRON_MIN_MS || out->ms > RM_CRON_MAX_MS)) return "the instant is outside years 1-9999";
  return NULL;
}

int rm_cron_dates(rm_schedule *out, const char *const *items, size_t n, const char *tz, char *err, size_t errlen) {
  int rc = sched_init(out, RM_SCHED_DATES, tz, err, errlen);
  if (rc) return rc;
  if (n < 1 || n > RM_CRON_DATES_MAX)
    return rm__sched_errf(err, errlen, RM_EINVAL, "a date list needs 1-%d dates, not %zu", RM_CRON_DATES_MAX, n);
  rm_cron_date *d = malloc(n * sizeof *d);
  if (!d) return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
  char why[96];
  for (size_t i = 0; i < n; i++) {
    const char *bad = items[i] ? parse_date_item(items[i], &d[i], why, sizeof why) : "missing";
    if (bad) {
      free(d);
      return rm__sched_errf(err, errlen, RM_EINVAL, "date %zu (\"%.40s\"): %s", i + 1, items[i] ? items[i] : "", bad);
    }
  }
  out->u.dates.items = d, out->u.dates.n = n;
  return 0;
}

/* A local date resolves as a fixed cron time does: the first occurrence
 * in a fold, the end of the gap in a gap. */
static int64_t date_instant(const rm_cron_date *d, const rm_tz *tz) {
  if (!d->local) return d->ms;
  int64_t s = rm_tz_floor_div(d->ms, 1000);
  rm_tz_local r;
  rm_tz_local_to_utc(tz, s, &r);
  return r.kind == RM_TZ_LOCAL_GAP ? r.utc_s * 1000 : r.utc_s * 1000 + (d->ms - s * 1000);
}

static int dates_next(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *next_ms) {
  int64_t best = INT64_MAX;
  for (size_t i = 0; i < s->u.dates.n; i++) {
    int64_t t = date_instant(&s->u.dates.items[i], tz);
    if (t > after_ms && t < best) best = t;
  }
  if (best == INT64_MAX) return RM_ENOTFOUND;
  *next_ms = best;
  return 0;
}

/* ---- dispatch ---- */

int rm_cron_next(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *next_ms) {
  if (after_ms < RM_CRON_MIN_MS || after_ms > RM_CRON_MAX_MS) return RM_EINVAL;
  if (!tz && s->kind != RM_SCHED_EVERY) return RM_EINVAL;
  switch (s->kind) {
  case RM_SCHED_EVERY: return every_next(s, after_ms, next_ms);
  case RM_SCHED_CRON: return cron_next(s, tz, after_ms, next_ms);
  case RM_SCHED_DATES: return dates_next(s, tz, after_ms, next_ms);
  }
  return RM_EINVAL;
}

int rm_cron_next_n(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *out, int n) {
  int found = 0;
  for (; found < n; found++) {
    int rc = rm_cron_next(s, tz, found ? out[found - 1] : after_ms, &out[found]);
    if (rc == RM_ENOTFOUND || (rc == RM_EINVAL && found > 0)) break;
    if (rc) return rc;
  }
  return found;
}
