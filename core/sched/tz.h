/* rm_tz: IANA time zones read from TZif files, without the C library's
 * process-global TZ (setenv("TZ") + tzset() is neither thread-safe nor
 * able to hold two zones at once).
 *
 * A zone is the TZif file's transition table (version 1, or the 64-bit
 * section of version 2+) plus its POSIX TZ footer ("CET-1CEST,M3.5.0,
 * M10.5.0/3"), which gives the offsets after the last transition. A loaded
 * zone is immutable, so any number of threads may use it at once.
 *
 * Instants are seconds since 1970-01-01T00:00:00Z ("utc_s"). A local wall
 * time is written the same way as if the wall clock were UTC ("local_s":
 * 2026-03-29T02:30 local is the number of seconds from 1970-01-01T00:00 to
 * it on the same calendar). Leap seconds are not counted (POSIX time).
 * Instants beyond +-2^50 s (+-35 million years) take the offset of those
 * bounds. */
#ifndef RM_SCHED_TZ_H
#define RM_SCHED_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_TZ_NAME_MAX 127
#define RM_TZ_DEFAULT_ROOT "/usr/share/zoneinfo"

typedef struct rm_tz rm_tz;

/* The local time type in effect at an instant. */
typedef struct rm_tz_info {
  int32_t utc_offset; /* seconds east of UTC (Berlin in summer: 7200) */
  bool is_dst;
  const char *abbr;   /* "CEST"; borrowed, lives as long as the zone */
} rm_tz_info;

/* Whether name may name a zone: 1-127 characters of [A-Za-z0-9_+-./],
 * relative ("Europe/Berlin", not "/etc/x"), no empty component and no
 * component starting with '.' (so no "..", no hidden files). */
bool rm_tz_name_valid(const char *name);

/* Parses the TZif bytes data[0..len) as the zone called name. On success
 * *out is a new zone (caller frees with rm_tz_free). Returns 0, RM_EINVAL
 * (bad name), RM_EPARSE (malformed file: err says what) or RM_ENOMEM.
 * Files with leap-second records ("right/...") are refused: their
 * instants are not POSIX time. */
int rm_tz_parse(const char *name, const void *data, size_t len, rm_tz **out,
                char *err, size_t errlen);

/* Loads root/name (root NULL: RM_TZ_DEFAULT_ROOT). "UTC" is built in and
 * needs no file; "Etc/UTC", "Etc/GMT+5" and the rest are read from files.
 * Returns 0 (*out: caller frees with rm_tz_free), RM_EINVAL (invalid
 * name), RM_ENOTFOUND (no such zone), RM_EIO, RM_EPARSE or RM_ENOMEM; err
 * names the zone. */
int rm_tz_load(const char *root, const char *name, rm_tz **out, char *err, size_t errlen);
void rm_tz_free(rm_tz *z);

/* The name the zone was loaded under; borrowed from the zone. */
const char *rm_tz_name(const rm_tz *z);

/* UTC offset, DST flag and abbreviation at the instant utc_s. Before the
 * first transition the zone's first local time type applies (RFC 8536). */
rm_tz_info rm_tz_offset(const rm_tz *z, int64_t utc_s);

/* The longest stretch of constant local time type around an instant:
 * [start, end) holds utc_s; start is the transition that began it
 * (INT64_MIN if none), end the next one (INT64_MAX if none). prev_offset
 * and next_offset are the UTC offsets before start and from end on (equal
 * to info.utc_offset where there is no such transition). A spring-forward
 * transition at end has next_offset > info.utc_offset: the local times
 * [end + utc_offset, end + next_offset) never happen. A fall-back one has
 * next_offset < utc_offset: [end + next_offset, end + utc_offset) happen
 * twice. */
typedef struct rm_tz_span {
  int64_t start, end;
  rm_tz_info info;
  int32_t prev_offset, next_offset;
} rm_tz_span;
void rm_tz_span_at(const rm_tz *z, int64_t utc_s, rm_tz_span *out);

/* What a local wall time is. Pinned numbers. */
enum rm_tz_local_kind {
  RM_TZ_LOCAL_UNIQUE = 0, /* happens once */
  RM_TZ_LOCAL_GAP = 1,    /* skipped by a forward jump (02:30 on a spring-forward night) */
  RM_TZ_LOCAL_FOLD = 2,   /* happens twice (02:30 on a fall-back night) */
};

/* A local wall time resolved to instants:
 *   UNIQUE: utc_s is the instant; utc_s_late == utc_s.
 *   FOLD:   utc_s is the first occurrence, utc_s_late the second.
 *   GAP:    utc_s is the transition that skipped it, the first instant
 *           after the gap (Berlin 2026-03-29 02:30 -> 01:00Z = 03:00 CEST);
 *           utc_s_late reads it with the offset from before the gap, which
 *           lands as far past the gap as it was into it (-> 01:30Z = 03:30
 *           CEST), as mktime() and Python's fold=0 do. */
typedef struct rm_tz_local {
  enum rm_tz_local_kind kind;
  int64_t utc_s, utc_s_late;
} rm_tz_local;
void rm_tz_local_to_utc(const rm_tz *z, int64_t local_s, rm_tz_local *out);

/* A cache of loaded zones, so a schedule's zone is read once. Owned by
 * the caller; no global state. rm_tz_registry_get may be called from
 * several threads at once (a mutex guards the cache). */
typedef struct rm_tz_registry rm_tz_registry;

/* A new empty registry reading zones under root (NULL:
 * RM_TZ_DEFAULT_ROOT; copied). Caller frees with rm_tz_registry_free.
 * NULL when out of memory. */
rm_tz_registry *rm_tz_registry_new(const char *root);
/* Frees the registry and every zone it handed out. */
void rm_tz_registry_free(rm_tz_registry *r);

/* The zone called name, loaded on first use. *out is borrowed from the
 * registry until rm_tz_registry_free. Returns as rm_tz_load. A failed
 * load is not cached: a zone installed later is found. */
int rm_tz_registry_get(rm_tz_registry *r, const char *name, const rm_tz **out,
                       char *err, size_t errlen);

/* Proleptic Gregorian calendar: days since 1970-01-01 of y-m-d (m 1-12,
 * d 1-31) and back. Exact for any year that fits. */
int64_t rm_tz_days_from_civil(int64_t y, unsigned m, unsigned d);
void rm_tz_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* 28-31: the length of month m of year y. */
unsigned rm_tz_month_days(int64_t y, unsigned m);
/* The day of the week of a day since 1970-01-01: 0 = Sunday .. 6. */
unsigned rm_tz_weekday(int64_t days);
/* a / b rounded towards minus infinity (b > 0): the day of a second. */
int64_t rm_tz_floor_div(int64_t a, int64_t b);

/* Internal to core/sched: writes the message into err (when err is not
 * NULL) and returns code. */
int rm__sched_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
