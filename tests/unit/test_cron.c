/* core/sched: time zones (against Python's zoneinfo, tz_cases.h) and
 * schedules (expected fire times checked with an independent brute-force
 * search in Python when the table was written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "sched/cron.h"
#include "sched/tz.h"
#include "util/err.h"

struct tz_case {
  unsigned char zone;
  long long t;
  int offset;
  unsigned char dst;
  const char *abbr;
};
struct tz_blob {
  const char *footer;
  const unsigned char *data;
  size_t len;
};
struct tz_local_case {
  unsigned char zone;
  long long local;
  int kind;
  long long utc, late;
};
#include "tz_cases.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state) {
  *state = rm_tz_registry_new(NULL);
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  rm_tz_registry_free(*state);
  return 0;
}

static const rm_tz *zone(void **state, const char *name) {
  const rm_tz *z = NULL;
  char err[256] = "";
  int rc = rm_tz_registry_get(*state, name, &z, err, sizeof err);
  if (rc) fail_msg("loading %s: %s", name, err);
  return z;
}

/* "2026-03-29T03:00:00+02:00" / "...Z" / "...00.500Z" as UTC ms, with
 * libc's timegm: independent of the code under test. */
static int64_t ms_of(const char *iso) {
  struct tm tm = {0};
  int ms = 0, oh = 0, om = 0, n = 0;
  char sign = 'Z';
  if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec, &n) != 6)
    fail_msg("bad test time %s", iso);
  const char *p = iso + n;
  if (*p == '.') ms = atoi(p + 1), p += 4;
  if (*p == '+' || *p == '-') sign = *p, sscanf(p + 1, "%2d:%2d", &oh, &om);
  tm.tm_year -= 1900, tm.tm_mon -= 1;
  int64_t off = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
  return ((int64_t)timegm(&tm) - off) * 1000 + ms;
}

static void fmt_utc(int64_t ms, char *buf, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- time zones ---- */

static void test_offsets_match_python_zoneinfo_for_real_zones(void **state) {
  FILE *f = fopen(RM_TZ_DEFAULT_ROOT "/tzdata.zi", "r");
  char line[64] = "";
  if (f && !fgets(line, sizeof line, f)) line[0] = '\0';
  if (f) fclose(f);
  bool same_version = strstr(line, TZ_CASES_TZDATA) != NULL;
  if (!same_version)
    print_message("tzdata is not %s: comparing instants before %lld only\n", TZ_CASES_TZDATA, TZ_CASES_STABLE_BEFORE);
  size_t checked = 0;
  for (size_t i = 0; i < N_OF(TZ_CASES); i++) {
    const struct tz_case *c = &TZ_CASES[i];
    if (!same_version && c->t >= TZ_CASES_STABLE_BEFORE) continue;
    rm_tz_info got = rm_tz_offset(zone(state, TZ_CASE_ZONES[c->zone]), c->t);
    if (got.utc_offset != c->offset || got.is_dst != c->dst || strcmp(got.abbr, c->abbr) != 0)
      fail_msg("%s at %lld: got %d %d %s, want %d %d %s", TZ_CASE_ZONES[c->zone], c->t, got.utc_offset, got.is_dst,
               got.abbr, c->offset, c->dst, c->abbr);
    checked++;
  }
  assert_true(checked > 1000);
}

static void test_posix_footer_rules_match_python_zoneinfo(void **state) {
  (void)state;
  rm_tz *zones[N_OF(TZ_BLOBS)];
  char err[256] = "", name[32];
  for (size_t i = 0; i < N_OF(TZ_BLOBS); i++) {
    snprintf(name, sizeof name, "Test/Blob%zu", i);
    if (rm_tz_parse(name, TZ_BLOBS[i].data, TZ_BLOBS[i].len, &zones[i], err, sizeof err))
      fail_msg("%s: %s", TZ_BLOBS[i].footer, err);
  }
  for (size_t i = 0; i < N_OF(TZ_BLOB_CASES); i++) {
    const struct tz_case *c = &TZ_BLOB_CASES[i];
    rm_tz_info got = rm_tz_offset(zones[c->zone], c->t);
    if (got.utc_offset != c->offset || got.is_dst != c->dst || strcmp(got.abbr, c->abbr) != 0)
      fail_msg("\"%s\" at %lld: got %d %d %s, want %d %d %s", TZ_BLOBS[c->zone].footer, c->t, got.utc_offset,
               got.is_dst, got.abbr, c->offset, c->dst, c->abbr);
  }
  for (size_t i = 0; i < N_OF(TZ_BLOBS); i++) rm_tz_free(zones[i]);
}

static void test_local_times_resolve_gaps_and_folds_like_pep495(void **state) {
  static const char *const kinds[] = {"unique", "gap", "fold"};
  for (size_t i = 0; i < N_OF(TZ_LOCALS); i++) {
    const struct tz_local_case *c = &TZ_LOCALS[i];
    rm_tz_local got;
    rm_tz_local_to_utc(zone(state, TZ_CASE_ZONES[c->zone]), c->local, &got);
    if ((int)got.kind != c->kind || got.utc_s != c->utc || got.utc_s_late != c->late)
      fail_msg("%s local %lld: got %s %lld %lld, want %s %lld %lld", TZ_CASE_ZONES[c->zone], c->local,
               kinds[got.kind], (long long)got.utc_s, (long long)got.utc_s_late, kinds[c->kind], c->utc, c->late);
  }
}

static void test_span_reports_gap_and_fold_edges(void **state) {
  const rm_tz *berlin = zone(state, "Europe/Berlin");
  rm_tz_span sp;
  rm_tz_span_at(berlin, ms_of("2026-03-29T00:59:59Z") / 1000, &sp);
  assert_int_equal(sp.end, ms_of("2026-03-29T01:00:00Z") / 1000);
  assert_int_equal(sp.info.utc_offset, 3600);
  assert_int_equal(sp.next_offset, 7200);
  assert_string_equal(sp.info.abbr, "CET");
  rm_tz_span_at(berlin, sp.end, &sp);
  assert_int_equal(sp.start, ms_of("2026-03-29T01:00:00Z") / 1000);
  assert_int_equal(sp.end, ms_of("2026-10-25T01:00:00Z") / 1000);
  assert_int_equal(sp.prev_offset, 3600);
  assert_true(sp.info.is_dst);
  /* Past 2037 the footer rule gives the spans. */
  rm_tz_span_at(berlin, ms_of("2090-07-01T00:00:00Z") / 1000, &sp);
  assert_int_equal(sp.start, ms_of("2090-03-26T01:00:00Z") / 1000);
  assert_int_equal(sp.end, ms_of("2090-10-29T01:00:00Z") / 1000);
  rm_tz_span_at(zone(state, "UTC"), 0, &sp);
  assert_true(sp.start == INT64_MIN && sp.end == INT64_MAX);
}

static void test_fixed_zones_and_utc_without_files(void **state) {
  rm_tz_registry *empty = rm_tz_registry_new("/nonexistent-zoneinfo");
  const rm_tz *utc;
  char err[256];
  assert_int_equal(rm_tz_registry_get(empty, "UTC", &utc, err, sizeof err), 0);
  assert_int_equal(rm_tz_offset(utc, 1700000000).utc_offset, 0);
  assert_string_equal(rm_tz_offset(utc, -5000000000LL).abbr, "UTC");
  assert_int_equal(rm_tz_registry_get(empty, "Etc/UTC", &utc, err, sizeof err), RM_ENOTFOUND);
  rm_tz_registry_free(empty);
  const rm_tz *gmt5 = zone(state, "Etc/GMT+5");
  assert_int_equal(rm_tz_offset(gmt5, 1700000000).utc_offset, -5 * 3600);
  assert_string_equal(rm_tz_offset(gmt5, 1700000000).abbr, "-05");
  /* The registry hands out one zone per name. */
  assert_ptr_equal(zone(state, "Etc/GMT+5"), gmt5);
  /* Out-of-range instants are clamped, not undefined behaviour. */
  rm_tz_offset(zone(state, "Europe/Berlin"), INT64_MAX);
  rm_tz_offset(zone(state, "Europe/Berlin"), INT64_MIN);
  rm_tz_local loc;
  rm_tz_local_to_utc(zone(state, "America/New_York"), INT64_MIN, &loc);
  for (int64_t t = ((int64_t)1 << 50) - 400 * 86400; t < ((int64_t)1 << 50) + 86400; t += 3 * 3600)
    rm_tz_local_to_utc(zone(state, "Europe/Berlin"), t, &loc);
  rm_tz_local_to_utc(zone(state, "Europe/Berlin"), INT64_MAX, &loc);
}

static void test_bad_zone_names_are_refused(void **state) {
  static const struct {
    const char *name;
    int rc;
    const char *msg;
  } cases[] = {
      {"../etc/passwd", RM_EINVAL, "invalid time zone name \"../etc/passwd\""},
      {"/etc/passwd", RM_EINVAL, "invalid time zone name"},
      {"Europe/../../etc/passwd", RM_EINVAL, "invalid time zone name"},
      {"Europe//Berlin", RM_EINVAL, "invalid time zone name"},
      {"Europe/Berlin/", RM_EINVAL, "invalid time zone name"},
      {".hidden", RM_EINVAL, "invalid time zone name"},
      {"Europe/Berlin ", RM_EINVAL, "invalid time zone name"},
      {"", RM_EINVAL, "invalid time zone name"},
      {"Mars/Olympus_Mons", RM_ENOTFOUND, "unknown time zone \"Mars/Olympus_Mons\""},
      {"Europe", RM_ENOTFOUND, "unknown time zone \"Europe\""},
      {"zone.tab", RM_EPARSE, "time zone \"zone.tab\": it is not a TZif file"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    const rm_tz *z = NULL;
    char err[256] = "";
    int rc = rm_tz_registry_get(*state, cases[i].name, &z, err, sizeof err);
    if (rc != cases[i].rc || !strstr(err, cases[i].msg))
      fail_msg("\"%s\": got %d \"%s\", want %d \"%s\"", cases[i].name, rc, err, cases[i].rc, cases[i].msg);
  }
  char long_name[200];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  assert_false(rm_tz_name_valid(long_name));
  assert_false(rm_tz_name_valid(NULL));
  assert_true(rm_tz_name_valid("America/Argentina/Buenos_Aires"));
  assert_true(rm_tz_name_valid("Etc/GMT-14"));
}

/* Every prefix and many corrupted copies of a real file either parse or
 * fail cleanly (ASan watches the reads). */
static void test_truncated_and_corrupt_tzif_fail_cleanly(void **state) {
  (void)state;
  FILE *f = fopen(RM_TZ_DEFAULT_ROOT "/America/New_York", "rb");
  assert_non_null(f);
  unsigned char buf[8192];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(len > 100 && len < sizeof buf);
  char err[256];
  rm_tz *z;
  for (size_t n = 0; n < len; n++) {
    unsigned char *copy = malloc(n + 1);
    memcpy(copy, buf, n);
    if (rm_tz_parse("Test/Cut", copy, n, &z, err, sizeof err) == 0) fail_msg("a %zu-byte prefix parsed", n);
    free(copy);
  }
  uint32_t seed = 12345;
  for (int round = 0; round < 3000; round++) {
    unsigned char *copy = malloc(len);
    memcpy(copy, buf, len);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245u + 12345u;
      copy[(seed >> 8) % len] ^= (unsigned char)(1u << (seed >> 28) % 8);
    }
    if (rm_tz_parse("Test/Flip", copy, len, &z, err, sizeof err) == 0) {
      rm_tz_info info = rm_tz_offset(z, 1800000000);
      assert_non_null(info.abbr);
      rm_tz_local loc;
      rm_tz_local_to_utc(z, 1800000000, &loc);
      rm_tz_free(z);
    }
    free(copy);
  }
}

/* A TZif file (version '\0' or '2'): transitions t[i] -> type idx[i];
 * type i has offset offs[i], DST flag dst[i] and abbreviation "AAA",
 * "BBB", ...; leapcnt zeroed leap records; footer after version 2 data
 * (NULL: none at all, to test a missing one). Returns the length. */
static size_t build_tzif(unsigned char *out, char version, const int64_t *t, const unsigned char *idx, int nt,
                         const int32_t *offs, const unsigned char *dst, int ntypes, int leapcnt, const char *footer) {
  size_t n = 0;
  for (int pass = 0; pass < (version ? 2 : 1); pass++) {
    int tsize = pass ? 8 : 4;
    memcpy(out + n, "TZif", 4);
    out[n + 4] = (unsigned char)version;
    memset(out + n + 5, 0, 15);
    const uint32_t counts[6] = {0, 0, (uint32_t)leapcnt, (uint32_t)nt, (uint32_t)ntypes, (uint32_t)(4 * ntypes)};
    for (int i = 0; i < 6; i++)
      for (int b = 0; b < 4; b++) out[n + 20 + 4 * i + b] = (unsigned char)(counts[i] >> (24 - 8 * b));
    n += 44;
    for (int i = 0; i < nt; i++)
      for (int b = 0; b < tsize; b++) out[n++] = (unsigned char)((uint64_t)t[i] >> (8 * (tsize - 1 - b)));
    for (int i = 0; i < nt; i++) out[n++] = idx[i];
    for (int i = 0; i < ntypes; i++) {
      for (int b = 0; b < 4; b++) out[n++] = (unsigned char)((uint32_t)offs[i] >> (24 - 8 * b));
      out[n++] = dst[i];
      out[n++] = (unsigned char)(4 * i);
    }
    for (int i = 0; i < ntypes; i++) memset(out + n, 'A' + i, 3), out[n + 3] = 0, n += 4;
    memset(out + n, 0, (size_t)leapcnt * (tsize + 4));
    n += (size_t)leapcnt * (tsize + 4);
  }
  if (version && footer) n += (size_t)sprintf((char *)out + n, "\n%s\n", footer);
  return n;
}

static void test_tzif_versions_junction_and_refusals(void **state) {
  (void)state;
  unsigned char buf[512];
  char err[256];
  rm_tz *z;
  const int32_t offs[] = {0, 3600};
  const unsigned char dst[] = {0, 1}, idx[] = {1, 0};
  /* Version 1: 32-bit times, no footer; the last type stays. */
  const int64_t t1[] = {0, 1000000};
  size_t n = build_tzif(buf, '\0', t1, idx, 2, offs, dst, 2, 0, NULL);
  assert_int_equal(rm_tz_parse("Test/V1", buf, n, &z, err, sizeof err), 0);
  assert_int_equal(rm_tz_offset(z, -1).utc_offset, 0);
  assert_string_equal(rm_tz_offset(z, 0).abbr, "BBB");
  assert_true(rm_tz_offset(z, 999999).is_dst);
  assert_int_equal(rm_tz_offset(z, 5000000000LL).utc_offset, 0);
  rm_tz_free(z);
  /* Version 2 whose footer takes over after its last transition. */
  const int32_t cet[] = {3600, 7200};
  const int64_t t2[] = {ms_of("2020-03-29T01:00:00Z") / 1000, ms_of("2020-10-25T01:00:00Z") / 1000};
  n = build_tzif(buf, '2', t2, idx, 2, cet, dst, 2, 0, "CET-1CEST,M3.5.0,M10.5.0/3");
  assert_int_equal(rm_tz_parse("Test/Junction", buf, n, &z, err, sizeof err), 0);
  /* From the last transition on, the footer names the type. */
  assert_string_equal(rm_tz_offset(z, ms_of("2020-10-25T00:59:59Z") / 1000).abbr, "BBB");
  assert_string_equal(rm_tz_offset(z, ms_of("2020-11-01T00:00:00Z") / 1000).abbr, "CET");
  assert_string_equal(rm_tz_offset(z, ms_of("2021-03-28T01:00:00Z") / 1000).abbr, "CEST");
  rm_tz_span sp;
  rm_tz_span_at(z, ms_of("2020-11-01T00:00:00Z") / 1000, &sp);
  assert_int_equal(sp.start, t2[1]);
  assert_int_equal(sp.end, ms_of("2021-03-28T01:00:00Z") / 1000);
  assert_int_equal(sp.prev_offset, 7200);
  assert_int_equal(sp.next_offset, 7200);
  rm_tz_free(z);
  /* Refused: leap seconds, a missing or malformed footer. */
  static const struct {
    int leapcnt;
    const char *footer, *msg;
  } bad[] = {
      {1, "UTC0", "leap-second records"},
      {0, NULL, "footer is missing"},
      {0, "CET-1CEST,M3.5", "POSIX TZ footer is malformed"},
      {0, "CET-1CEST", "POSIX TZ footer is malformed"},
      {0, "C1", "POSIX TZ footer is malformed"},
      {0, "CET-1CEST,M3.5.0,M10.5.0/200", "POSIX TZ footer is malformed"},
  };
  for (size_t i = 0; i < N_OF(bad); i++) {
    n = build_tzif(buf, '2', t2, idx, 2, cet, dst, 2, bad[i].leapcnt, bad[i].footer);
    int rc = rm_tz_parse("Test/Bad", buf, n, &z, err, sizeof err);
    if (rc != RM_EPARSE || !strstr(err, bad[i].msg)) fail_msg("case %zu: got %d \"%s\"", i, rc, err);
  }
}

/* "EST5EDT,0/0,J365/25" is DST all year (RFC 8536 3.3.1): each year's
 * end coincides with the next one's start, which must not read as a
 * transition. glibc gets this wrong (an hour of EST each New Year). */
static void test_all_year_dst_footer_has_no_transitions(void **state) {
  (void)state;
  unsigned char buf[512];
  char err[256];
  rm_tz *z;
  const int32_t offs[] = {-18000};
  const unsigned char dst[] = {0};
  size_t n = build_tzif(buf, '2', NULL, NULL, 0, offs, dst, 1, 0, "EST5EDT,0/0,J365/25");
  assert_int_equal(rm_tz_parse("Test/AllYearDst", buf, n, &z, err, sizeof err), 0);
  static const char *const at[] = {"2020-12-31T23:59:59-05:00", "2021-01-01T04:59:59Z", "2021-01-01T05:00:00Z",
                                   "2024-02-29T12:00:00Z", "2030-12-31T12:00:00Z", "1975-01-01T05:00:00Z"};
  for (size_t i = 0; i < N_OF(at); i++) {
    rm_tz_info info = rm_tz_offset(z, ms_of(at[i]) / 1000);
    if (info.utc_offset != -14400 || !info.is_dst || strcmp(info.abbr, "EDT") != 0)
      fail_msg("%s: %d %d %s", at[i], info.utc_offset, info.is_dst, info.abbr);
  }
  rm_tz_span sp;
  rm_tz_span_at(z, ms_of("2021-01-01T05:00:00Z") / 1000, &sp);
  assert_true(sp.start == INT64_MIN && sp.end == INT64_MAX);
  rm_schedule s;
  assert_int_equal(rm_cron_parse(&s, "30 0 1 1 *", "Test/AllYearDst", err, sizeof err), 0);
  int64_t next;
  assert_int_equal(rm_cron_next(&s, z, ms_of("2026-06-01T00:00:00Z"), &next), 0);
  assert_int_equal(next, ms_of("2027-01-01T00:30:00-04:00"));
  rm_tz_free(z);
}

struct thread_arg {
  rm_tz_registry *reg;
  int64_t result;
};

static void *zone_worker(void *p) {
  struct thread_arg *a = p;
  static const char *const names[] = {"Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"};
  rm_schedule s;
  char err[256];
  a->result = 0;
  if (rm_cron_parse(&s, "30 2 * * *", "Europe/Berlin", err, sizeof err)) return NULL;
  for (int i = 0; i < 200; i++) {
    const rm_tz *z;
    int64_t next;
    if (rm_tz_registry_get(a->reg, names[i % 4], &z, err, sizeof err)) return NULL;
    if (rm_cron_next(&s, z, 1774699200000LL, &next) == 0) a->result += next % 1000003;
  }
  return NULL;
}

static void test_registry_is_shared_by_threads(void **state) {
  (void)state;
  rm_tz_registry *reg = rm_tz_registry_new(NULL);
  pthread_t th[4];
  struct thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i].reg = reg;
    assert_int_equal(pthread_create(&th[i], NULL, zone_worker, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 1; i < 4; i++) assert_true(args[i].result == args[0].result);
  assert_true(args[0].result != 0);
  rm_tz_registry_free(reg);
}

/* ---- cron ---- */

/* Successive fire times after `after`; "none" where there are no more. */
struct cron_case {
  const char *zone, *expr, *after;
  const char *want[8];
};

static const struct cron_case CRON_CASES[] = {
    /* basics */
    {"UTC", "* * * * *", "2026-01-01T00:00:00Z", {"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"}},
    {"UTC", "* * * * *", "2026-01-01T00:00:59.999Z", {"2026-01-01T00:01:00Z"}},
    {"UTC", "0 * * * *", "2026-01-01T00:00:00Z", {"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
    {"UTC", "0 0 * * *", "2026-12-31T23:59:59Z", {"2027-01-01T00:00:00Z"}},
    {"UTC", "0 0 1 1 *", "1969-06-01T00:00:00Z", {"1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z"}},
    /* lists, ranges, steps */
    {"UTC", "5,10,50 * * * *", "2026-01-01T00:10:00Z", {"2026-01-01T00:50:00Z", "2026-01-01T01:05:00Z"}},
    {"UTC", "*/15 * * * *", "2026-01-01T00:46:00Z", {"2026-01-01T01:00:00Z", "2026-01-01T01:15:00Z"}},
    {"UTC", "10-50/20 * * * *", "2026-01-01T00:31:00Z",
     {"2026-01-01T00:50:00Z", "2026-01-01T01:10:00Z", "2026-01-01T01:30:00Z"}},
    {"UTC", "30/15 * * * *", "2026-01-01T00:46:00Z", {"2026-01-01T01:30:00Z", "2026-01-01T01:45:00Z"}},
    {"UTC", "0 9-17/4 * * *", "2026-01-01T13:00:00Z", {"2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"}},
    {"UTC", "0 0 1-3,20 * *", "2026-01-03T00:00:00Z", {"2026-01-20T00:00:00Z", "2026-02-01T00:00:00Z"}},
    /* names, Sunday as 0 and 7 */
    {"UTC", "0 12 * JAN,jul MON-fri", "2026-02-01T00:00:00Z", {"2026-07-01T12:00:00Z", "2026-07-02T12:00:00Z"}},
    {"UTC", "0 0 * * SUN", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
    {"UTC", "0 0 * * 7", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z"}},
    {"UTC", "0 0 * * 5-7", "2026-01-03T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"}},
    /* day of month OR day of week when both are restricted... */
    {"UTC", "0 0 1 * MON", "2026-01-01T00:00:00Z", {"2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"}},
    {"UTC", "0 0 1 * MON", "2026-01-26T00:00:00Z", {"2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"}},
    /* ...AND when one starts with '*' (Vixie) */
    {"UTC", "0 0 */2 * MON", "2026-01-01T00:00:00Z", {"2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z"}},
    /* month ends and leap days */
    {"UTC", "0 0 31 * *", "2026-01-31T00:00:00Z",
     {"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"}},
    {"UTC", "0 12 29 2 *", "2025-01-01T00:00:00Z", {"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}},
    {"UTC", "0 12 29 2 *", "2096-03-01T00:00:00Z", {"2104-02-29T12:00:00Z"}},
    {"UTC", "0 0 29 2 *", "9996-03-01T00:00:00Z", {"none"}},
    /* 6 fields: seconds first */
    {"UTC", "*/10 * * * * *", "2026-01-01T00:00:05Z", {"2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z"}},
    {"UTC", "30 0 12 * * *", "2026-01-01T12:00:00Z", {"2026-01-01T12:00:30Z", "2026-01-02T12:00:30Z"}},
    {"UTC", "0,59 59 23 31 12 *", "2026-06-01T00:00:00Z", {"2026-12-31T23:59:00Z", "2026-12-31T23:59:59Z"}},
    /* macros */
    {"UTC", "@yearly", "2026-03-01T00:00:00Z", {"2027-01-01T00:00:00Z"}},
    {"UTC", "@annually", "2026-03-01T00:00:00Z", {"2027-01-01T00:00:00Z"}},
    {"UTC", "@monthly", "2026-01-31T12:00:00Z", {"2026-02-01T00:00:00Z"}},
    {"UTC", "@weekly", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z"}},
    {"UTC", "@daily", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}},
    {"UTC", "@midnight", "2026-01-01T10:00:00Z", {"2026-01-02T00:00:00Z"}},
    {"UTC", "@HOURLY", "2026-01-01T10:00:00Z", {"2026-01-01T11:00:00Z"}},
    /* odd offsets */
    {"Asia/Kathmandu", "0 9 * * *", "2026-01-01T00:00:00Z", {"2026-01-01T09:00:00+05:45", "2026-01-02T09:00:00+05:45"}},
    {"America/St_Johns", "0 0 * * *", "2026-07-01T00:00:00Z", {"2026-07-01T00:00:00-02:30"}},
    /* Berlin spring forward, 2026-03-29 02:00 -> 03:00: fixed times in the
     * gap fire once at 03:00 CEST; periodic ones skip the missing ticks. */
    {"Europe/Berlin", "30 2 * * *", "2026-03-28T12:00:00Z",
     {"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
    {"Europe/Berlin", "0 2 * * *", "2026-03-29T00:00:00+01:00", {"2026-03-29T03:00:00+02:00"}},
    {"Europe/Berlin", "0,30 2 * * *", "2026-03-29T00:00:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
    {"Europe/Berlin", "0 2,3 * * *", "2026-03-29T01:00:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
    {"Europe/Berlin", "0 2 * * *", "2026-03-29T01:59:59+01:00", {"2026-03-29T03:00:00+02:00"}},
    {"Europe/Berlin", "*/30 * * * *", "2026-03-29T01:00:00+01:00",
     {"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"}},
    {"Europe/Berlin", "0 * * * *", "2026-03-29T01:30:00+01:00", {"2026-03-29T03:00:00+02:00"}},
    {"Europe/Berlin", "*/15 2 * * *", "2026-03-28T03:00:00+01:00",
     {"2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"}},
    {"Europe/Berlin", "0 0 * * *", "2026-03-28T23:00:00+01:00",
     {"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
    /* Berlin fall back, 2026-10-25 03:00 CEST -> 02:00 CET: fixed times in
     * the fold fire at the first occurrence; periodic ones in real time. */
    {"Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00Z",
     {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
    {"Europe/Berlin", "30 2 * * *", "2026-10-25T02:10:00+01:00", {"2026-10-26T02:30:00+01:00"}},
    {"Europe/Berlin", "*/20 2 * * *", "2026-10-25T01:00:00+02:00",
     {"2026-10-25T02:00:00+02:00", "2026-10-25T02:20:00+02:00", "2026-10-25T02:40:00+02:00",
      "2026-10-25T02:00:00+01:00", "2026-10-25T02:20:00+01:00", "2026-10-25T02:40:00+01:00",
      "2026-10-26T02:00:00+01:00"}},
    {"Europe/Berlin", "0 * * * *", "2026-10-25T01:30:00+02:00",
     {"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
    {"Europe/Berlin", "0-59/30 2 * * *", "2026-10-25T01:00:00+02:00",
     {"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"}},
    /* New York, 2026-03-08 02:00 -> 03:00 and 2026-11-01 02:00 -> 01:00 */
    {"America/New_York", "30 2 * * *", "2026-03-07T12:00:00Z",
     {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
    {"America/New_York", "30 1 * * *", "2026-10-31T12:00:00Z",
     {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
    {"America/New_York", "*/30 1 * * *", "2026-11-01T00:50:00-04:00",
     {"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
      "2026-11-01T01:30:00-05:00", "2026-11-02T01:00:00-05:00"}},
    {"America/New_York", "*/20 30 1 * * *", "2026-11-01T01:29:59-04:00",
     {"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:20-04:00", "2026-11-01T01:30:40-04:00",
      "2026-11-01T01:30:00-05:00", "2026-11-01T01:30:20-05:00"}},
    {"America/New_York", "15 30 2 * * *", "2026-03-08T00:00:00-05:00", {"2026-03-08T03:00:00-04:00"}},
    /* Lord Howe: 30-minute DST, 2026-04-05 02:00 -> 01:30, 2026-10-04 02:00 -> 02:30 */
    {"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00:00Z",
     {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
    {"Australia/Lord_Howe", "*/15 1 * * *", "2026-04-04T13:50:00Z",
     {"2026-04-05T01:00:00+11:00", "2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00",
      "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30",
      "2026-04-06T01:00:00+10:30"}},
    {"Australia/Lord_Howe", "15 2 * * *", "2026-10-03T12:00:00Z",
     {"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
};

static void test_cron_next_fire_times(void **state) {
  for (size_t i = 0; i < N_OF(CRON_CASES); i++) {
    const struct cron_case *c = &CRON_CASES[i];
    rm_schedule s;
    char err[256] = "", got_s[32] = "";
    if (rm_cron_parse(&s, c->expr, c->zone, err, sizeof err)) fail_msg("\"%s\": %s", c->expr, err);
    const rm_tz *z = zone(state, c->zone);
    int64_t after = ms_of(c->after), got[8];
    int n = 0;
    while (n < 8 && c->want[n]) n++;
    int found = rm_cron_next_n(&s, z, after, got, n);
    for (int k = 0; k < n; k++) {
      bool none = strcmp(c->want[k], "none") == 0;
      if (k < found) fmt_utc(got[k], got_s, sizeof got_s);
      if (none ? found != k : k >= found || got[k] != ms_of(c->want[k]))
        fail_msg("%s \"%s\" after %s, fire %d: got %s, want %s", c->zone, c->expr, c->after, k + 1,
                 k < found ? got_s : "none", c->want[k]);
      if (none) break;
    }
    int64_t one;
    int rc = rm_cron_next(&s, z, after, &one);
    assert_true(found == 0 ? rc == RM_ENOTFOUND : rc == 0 && one == got[0]);
    rm_cron_free(&s);
  }
}

static void test_bad_expressions_name_field_and_problem(void **state) {
  (void)state;
  static const struct {
    const char *expr, *msg;
  } cases[] = {
      {"", "empty cron expression"},
      {"   ", "empty cron expression"},
      {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 4"},
      {"0 0 0 1 1 0 0", "got 7"},
      {"0 0 32 * *", "field 3 (day of month): 32 is out of range 1-31"},
      {"0 0 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
      {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
      {"* 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
      {"* * * 13 *", "field 4 (month): 13 is out of range 1-12"},
      {"* * * * 8", "field 5 (day of week): 8 is out of range 0-7"},
      {"61 * * * * *", "field 1 (second): 61 is out of range 0-59"},
      {"0 0 0 32 * *", "field 4 (day of month): 32 is out of range 1-31"},
      {"99999999999 * * * *", "field 1 (minute): 99999999999 is out of range 0-59"},
      {"* * * FOO *", "field 4 (month): unknown name \"FOO\""},
      {"* * * * MONDAY", "field 5 (day of week): unknown name \"MONDAY\""},
      {"MON * * * *", "field 1 (minute): \"MON\" is not a number"},
      {"*/0 * * * *", "field 1 (minute): step 0 is out of range 1-59"},
      {"*/60 * * * *", "field 1 (minute): step 60 is out of range 1-59"},
      {"*/ * * * *", "field 1 (minute): a step needs a number after '/'"},
      {"5-1 * * * *", "field 1 (minute): range 5-1 goes backwards"},
      {"5- * * * *", "field 1 (minute): a value is missing"},
      {"1,,2 * * * *", "field 1 (minute): empty list item"},
      {"1, * * * *", "field 1 (minute): empty list item"},
      {"1-2-3 * * * *", "field 1 (minute): unexpected \"-3\""},
      {"* * ? * *", "field 3 (day of month): \"?\" is not a number"},
      {"0 0 30 2 *", "field 3 (day of month): no selected day exists in the selected months"},
      {"0 0 0 31 4,6 *", "field 4 (day of month): no selected day exists in the selected months"},
      {"@reboot", "unknown macro \"@reboot\""},
      {"@daily 5", "unknown macro \"@daily 5\""},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    rm_schedule s;
    char err[256] = "";
    int rc = rm_cron_parse(&s, cases[i].expr, "UTC", err, sizeof err);
    if (rc != RM_EINVAL || !strstr(err, cases[i].msg))
      fail_msg("\"%s\": got %d \"%s\", want \"%s\"", cases[i].expr, rc, err, cases[i].msg);
    rm_cron_free(&s);
  }
  rm_schedule s;
  char err[256] = "";
  assert_int_equal(rm_cron_parse(&s, "* * * * *", "../etc/localtime", err, sizeof err), RM_EINVAL);
  assert_non_null(strstr(err, "invalid time zone name"));
  /* Accepted oddities: a day-of-month the month sometimes has, 0 + 31 in one list. */
  assert_int_equal(rm_cron_parse(&s, "0 0 29-31 2,4 *", NULL, err, sizeof err), 0);
  assert_string_equal(s.tz, "UTC");
  rm_cron_free(&s);
  assert_int_equal(rm_cron_parse(&s, " @Weekly \t", "UTC", err, sizeof err), 0);
  assert_true(s.u.cron.dow == 1 && s.u.cron.hour == 1 && s.u.cron.min == 1);
  rm_cron_free(&s);
}

static void test_every_keeps_real_time_spacing_across_dst(void **state) {
  const rm_tz *berlin = zone(state, "Europe/Berlin");
  static const struct {
    int64_t n;
    enum rm_sched_unit unit;
    const char *start, *after, *want[4];
  } cases[] = {
      {1, RM_SCHED_HOURS, "2026-03-29T00:00:00+01:00", "2026-03-28T00:00:00Z",
       {"2026-03-29T00:00:00+01:00", "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00"}},
      {1, RM_SCHED_DAYS, "2026-03-28T12:00:00+01:00", "2026-03-28T12:00:00+01:00",
       {"2026-03-29T13:00:00+02:00", "2026-03-30T13:00:00+02:00"}},
      {90, RM_SCHED_MINUTES, "2026-10-25T01:00:00+02:00", "2026-10-25T01:00:00+02:00",
       {"2026-10-25T02:30:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T04:30:00+01:00"}},
      {15, RM_SCHED_SECONDS, "2026-01-01T00:00:00Z", "2026-01-01T00:00:14.999Z",
       {"2026-01-01T00:00:15Z", "2026-01-01T00:00:30Z"}},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    rm_schedule s;
    char err[256];
    assert_int_equal(rm_cron_every(&s, cases[i].n, cases[i].unit, ms_of(cases[i].start), "Europe/Berlin", err, sizeof err), 0);
    int64_t got[4];
    int n = 0;
    while (n < 4 && cases[i].want[n]) n++;
    assert_int_equal(rm_cron_next_n(&s, berlin, ms_of(cases[i].after), got, n), n);
    for (int k = 0; k < n; k++) assert_int_equal(got[k], ms_of(cases[i].want[k]));
    rm_cron_free(&s);
  }
  rm_schedule s;
  char err[256];
  assert_int_equal(rm_cron_every(&s, 0, RM_SCHED_MINUTES, 0, "UTC", err, sizeof err), RM_EINVAL);
  assert_string_equal(err, "interval 0 is out of range 1-1000000000");
  assert_int_equal(rm_cron_every(&s, 5, (enum rm_sched_unit)9, 0, "UTC", err, sizeof err), RM_EINVAL);
  assert_int_equal(rm_cron_every(&s, 1, RM_SCHED_DAYS, RM_CRON_MAX_MS - 1000, "UTC", err, sizeof err), 0);
  int64_t next;
  assert_int_equal(rm_cron_next(&s, berlin, RM_CRON_MAX_MS - 1000, &next), RM_ENOTFOUND);
  assert_int_equal(rm_cron_next(&s, berlin, RM_CRON_MAX_MS + 1, &next), RM_EINVAL);
  assert_string_equal(rm_cron_kind_name(s.kind), "every");
  assert_string_equal(rm_cron_unit_name(RM_SCHED_HOURS), "hours");
  rm_cron_free(&s);
}

static void test_dates_resolve_in_zone_and_end(void **state) {
  const rm_tz *berlin = zone(state, "Europe/Berlin");
  static const char *const items[] = {
      "2026-05-01T09:30",       "2026-03-29T02:30",     "2026-10-25 02:30:00.250", "2026-01-01T00:00:00Z",
      "2026-06-01T12:00-04:00", "2026-07-01",           "2026-05-01T09:30:00+02:00",
  };
  static const char *const want[] = {
      "2026-01-01T00:00:00Z",      "2026-03-29T03:00:00+02:00", "2026-05-01T09:30:00+02:00",
      "2026-06-01T18:00:00+02:00", "2026-07-01T00:00:00+02:00", "2026-10-25T02:30:00.250+02:00",
  };
  rm_schedule s;
  char err[256];
  assert_int_equal(rm_cron_dates(&s, items, N_OF(items), "Europe/Berlin", err, sizeof err), 0);
  int64_t got[10];
  assert_int_equal(rm_cron_next_n(&s, berlin, ms_of("2025-12-31T00:00:00Z"), got, 10), (int)N_OF(want));
  for (size_t k = 0; k < N_OF(want); k++) assert_int_equal(got[k], ms_of(want[k]));
  int64_t next;
  assert_int_equal(rm_cron_next(&s, berlin, got[N_OF(want) - 1], &next), RM_ENOTFOUND);
  assert_string_equal(rm_cron_kind_name(s.kind), "dates");
  rm_cron_free(&s);

  static const struct {
    const char *item, *msg;
  } bad[] = {
      {"2026-02-30T10:00", "date 1 (\"2026-02-30T10:00\"): day 30 is out of range 1-28"},
      {"2026-13-01", "month 13 is out of range 1-12"},
      {"2026-01-01T24:00", "hour 24 is out of range 0-23"},
      {"2026-01-01T10:00:60", "second 60 is out of range 0-59"},
      {"2026-01-01T10:00+25:00", "offset hour 25 is out of range 0-23"},
      {"0000-01-01", "year 0 is out of range 1-9999"},
      {"26-01-01", "not an ISO-8601 date-time"},
      {"2026-01-01T10", "not an ISO-8601 date-time"},
      {"2026-01-01T10:00Zjunk", "not an ISO-8601 date-time"},
      {"tomorrow", "not an ISO-8601 date-time"},
  };
  for (size_t i = 0; i < N_OF(bad); i++) {
    const char *one[] = {bad[i].item};
    int rc = rm_cron_dates(&s, one, 1, "UTC", err, sizeof err);
    if (rc != RM_EINVAL || !strstr(err, bad[i].msg)) fail_msg("\"%s\": got %d \"%s\"", bad[i].item, rc, err);
    rm_cron_free(&s);
  }
  assert_int_equal(rm_cron_dates(&s, items, 0, "UTC", err, sizeof err), RM_EINVAL);
  rm_cron_free(&s);
}

/* A sparse expression jumps by field: thirty leap days (2000 .. 2116,
 * skipping 2100) in well under a millisecond each. */
static void test_sparse_expressions_jump_by_field(void **state) {
  rm_schedule s;
  char err[256];
  assert_int_equal(rm_cron_parse(&s, "0 0 29 2 *", "Europe/Berlin", err, sizeof err), 0);
  int64_t got[30];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(rm_cron_next_n(&s, zone(state, "Europe/Berlin"), ms_of("1999-12-31T00:00:00Z"), got, 30), 30);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_int_equal(got[0], ms_of("2000-02-29T00:00:00+01:00"));
  assert_int_equal(got[24], ms_of("2096-02-29T00:00:00+01:00"));
  assert_int_equal(got[25], ms_of("2104-02-29T00:00:00+01:00"));
  assert_int_equal(got[29], ms_of("2120-02-29T00:00:00+01:00"));
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  assert_true(ms < 300); /* under ASan; a minute-by-minute walk takes seconds */
  rm_cron_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offsets_match_python_zoneinfo_for_real_zones),
      cmocka_unit_test(test_posix_footer_rules_match_python_zoneinfo),
      cmocka_unit_test(test_local_times_resolve_gaps_and_folds_like_pep495),
      cmocka_unit_test(test_span_reports_gap_and_fold_edges),
      cmocka_unit_test(test_fixed_zones_and_utc_without_files),
      cmocka_unit_test(test_bad_zone_names_are_refused),
      cmocka_unit_test(test_truncated_and_corrupt_tzif_fail_cleanly),
      cmocka_unit_test(test_tzif_versions_junction_and_refusals),
      cmocka_unit_test(test_all_year_dst_footer_has_no_transitions),
      cmocka_unit_test(test_registry_is_shared_by_threads),
      cmocka_unit_test(test_cron_next_fire_times),
      cmocka_unit_test(test_bad_expressions_name_field_and_problem),
      cmocka_unit_test(test_every_keeps_real_time_spacing_across_dst),
      cmocka_unit_test(test_dates_resolve_in_zone_and_end),
      cmocka_unit_test(test_sparse_expressions_jump_by_field),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
