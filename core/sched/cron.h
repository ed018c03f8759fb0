/* rm_schedule: when a schedule fires, as a value (no I/O, no global
 * state; thread-safe as long as each value is not freed while in use).
 *
 * Three kinds, each with a time zone (an IANA name, loaded by the caller,
 * usually with rm_tz_registry_get(reg, sched.tz, ...)):
 *
 *   every  N seconds/minutes/hours/days of real time from a start instant:
 *          start + k*N for k >= 0. "Every 1 day" is 86400 s, so its local
 *          time moves by an hour across DST; use cron "0 9 * * *" for a
 *          fixed local time. The zone is kept only for display.
 *   cron   Vixie cron, 5 fields (minute hour day-of-month month
 *          day-of-week) or 6 (second first). Each field: "*", a value, a
 *          range "1-5", a step "S/15" (S stands for '*' here: a star and a
 *          slash would end this comment), "10-50/10" or "10/10" (=
 *          10-max/10), or a comma list of those. Months JAN-DEC and days
 *          SUN-SAT by name, any case; day of week 0 and 7 are Sunday.
 *          Macros @yearly @annually @monthly @weekly @daily @midnight
 *          @hourly. Day rule as Vixie/cronie: if the day-of-month or
 *          day-of-week field starts with '*', a day must match both;
 *          otherwise either ("0 0 1,15 * MON": the 1st, the 15th and every
 *          Monday; but "0 0 S/2 * MON": odd days that are Mondays). An
 *          expression that can never fire ("0 0 30 2 *") is a parse error.
 *   dates  a list of ISO-8601 date-times: local in the zone
 *          ("2026-05-01T09:30", "2026-05-01 09:30:15.250", "2026-05-01"
 *          = midnight) or with "Z" / "+02:00" / "-0530".
 *
 * DST, as cronie (Vixie cron 4) does it; its "wildcard" jobs, whose
 * minute or hour field starts with '*', are our periodic ones (a seconds
 * field starting with '*' counts too):
 *  - A local time skipped by a spring-forward gap fires once, at the first
 *    instant after the gap (Berlin "30 2 * * *" on 2026-03-29 fires at
 *    03:00 CEST), for cron schedules whose second, minute and hour fields
 *    are all fixed (none starts with '*') and for local dates. Periodic
 *    schedules ("S/15 * * * *", "0 * * * *", "S/10 2 * * *") do not: the
 *    skipped ticks never happen and the next tick after the gap fires as
 *    usual, so they keep their real-time spacing. Unlike cronie this holds
 *    for gaps of any size (cronie takes a jump of more than 3 h for a
 *    clock correction and runs nothing it skipped); systemd timers skip
 *    nonexistent times altogether.
 *  - A local time repeated by a fall-back fold fires once, at its first
 *    occurrence, for fixed schedules and local dates ("30 2 * * *" on
 *    2026-10-25 Berlin: 02:30 CEST only). Periodic schedules keep firing
 *    in real time through the repeated hour ("S/15 2 * * *": 02:00 ...
 *    02:45 CEST, then 02:00 ... 02:45 CET; "0 * * * *" fires every real
 *    hour). systemd timers do not fire in the repeated hour at all.
 *
 * Instants are UTC milliseconds since the epoch within years 1-9999
 * (RM_CRON_MIN_MS..RM_CRON_MAX_MS). Cron fire times are whole seconds. */
#ifndef RM_SCHED_CRON_H
#define RM_SCHED_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/tz.h"

#define RM_CRON_MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define RM_CRON_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
/* How far rm_cron_next looks for a cron match: 8 years of 366 days, which
 * holds the longest wait between leap days (2096-02-29 to 2104-02-29). */
#define RM_CRON_HORIZON_DAYS 2928
#define RM_CRON_DATES_MAX 10000

/* Stored: the numbers are pinned; rm_cron_kind_name gives the string. */
enum rm_sched_kind {
  RM_SCHED_EVERY = 1,
  RM_SCHED_CRON = 2,
  RM_SCHED_DATES = 3,
};

enum rm_sched_unit {
  RM_SCHED_SECONDS = 1,
  RM_SCHED_MINUTES = 2,
  RM_SCHED_HOURS = 3,
  RM_SCHED_DAYS = 4,
};

/* rm_cron_expr.flags */
#define RM_CRON_DOM_STAR 1u /* the day-of-month field starts with '*' */
#define RM_CRON_DOW_STAR 2u /* the day-of-week field starts with '*' */
#define RM_CRON_PERIODIC 4u /* a second, minute or hour field starts with '*' */

/* A parsed cron expression: bit v set when value v matches. */
typedef struct rm_cron_expr {
  uint64_t sec, min; /* 0-59 */
  uint64_t hour;     /* 0-23 */
  uint64_t dom;      /* 1-31 */
  uint64_t mon;      /* 1-12 */
  uint64_t dow;      /* 0-6, 0 = Sunday */
  unsigned flags;
} rm_cron_expr;

typedef struct rm_cron_date {
  int64_t ms; /* local wall time read as if UTC (local), or a UTC instant */
  bool local;
} rm_cron_date;

typedef struct rm_schedule {
  enum rm_sched_kind kind;
  char tz[RM_TZ_NAME_MAX + 1];
  union {
    struct {
      int64_t every_ms, start_ms;
    } every;
    rm_cron_expr cron;
    struct {
      rm_cron_date *items; /* owned; rm_cron_free releases it */
      size_t n;
    } dates;
  } u;
} rm_schedule;

/* Each constructor fills *out (caller-owned; release with rm_cron_free
 * even though only dates allocate) and returns 0, or RM_EINVAL with err
 * saying what is wrong and *out left empty (safe to rm_cron_free). tz is
 * an IANA name (NULL: "UTC"), checked with rm_tz_name_valid only: whether
 * it exists is known when the caller loads it. */

/* Every n units from start_ms. n: 1-1000000000. */
int rm_cron_every(rm_schedule *out, int64_t n, enum rm_sched_unit unit, int64_t start_ms,
                  const char *tz, char *err, size_t errlen);

/* A cron expression or macro. Errors name the field, as in
 * "field 3 (day of month): 32 is out of range 1-31". */
int rm_cron_parse(rm_schedule *out, const char *expr, const char *tz, char *err, size_t errlen);

/* n (1-RM_CRON_DATES_MAX) ISO-8601 date-times, copied. RM_ENOMEM too. */
int rm_cron_dates(rm_schedule *out, const char *const *items, size_t n, const char *tz,
                  char *err, size_t errlen);

void rm_cron_free(rm_schedule *s);

/* The first fire time strictly after after_ms, in *next_ms. tz must be
 * the zone named by s->tz (it may be NULL for "every", which ignores it).
 * Returns 0; RM_ENOTFOUND when there is none (past the last date; no cron
 * match within RM_CRON_HORIZON_DAYS or before year 10000); RM_EINVAL when
 * after_ms is out of range or tz is missing. */
int rm_cron_next(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *next_ms);

/* Up to n successive fire times after after_ms into out[0..n) (a calendar
 * view). Returns how many were found (fewer than n: there are no more),
 * or RM_EINVAL. */
int rm_cron_next_n(const rm_schedule *s, const rm_tz *tz, int64_t after_ms, int64_t *out, int n);

/* "every", "cron", "dates" / "seconds" ... "days"; NULL if unknown. */
const char *rm_cron_kind_name(enum rm_sched_kind k);
const char *rm_cron_unit_name(enum rm_sched_unit u);

#endif
