/* ISO-8601 times by arithmetic (core/util/iso_time): the same text as
 * gmtime_r and printf give, at every kind of date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/iso_time.h"

static void same_as_libc(int64_t ms) {
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  time_t t = (time_t)secs;
  struct tm tm;
  assert_non_null(gmtime_r(&t, &tm));
  char want[64], got[32];
  snprintf(want, sizeof want, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
           (unsigned)(tm.tm_mon + 1), (unsigned)tm.tm_mday, (unsigned)tm.tm_hour, (unsigned)tm.tm_min,
           (unsigned)tm.tm_sec, (unsigned)(ms - secs * 1000));
  rm_iso_ms(ms, got);
  if (strcmp(want, got) != 0) print_error("ms %lld: libc %s, ours %s\n", (long long)ms, want, got);
  assert_string_equal(got, want);
}

static void test_known_dates(void **state) {
  (void)state;
  char out[32];
  rm_iso_ms(0, out);
  assert_string_equal(out, "1970-01-01T00:00:00.000Z");
  rm_iso_ms(1795461902356, out);
  assert_string_equal(out, "2026-11-23T19:25:02.356Z");
  rm_iso_ms(951782400000, out); /* a leap day of a year divisible by 400 */
  assert_string_equal(out, "2000-02-29T00:00:00.000Z");
  rm_iso_ms(-1, out);
  assert_string_equal(out, "1969-12-31T23:59:59.999Z");
}

static void test_edges_match_libc(void **state) {
  (void)state;
  const int64_t day = 86400000;
  /* month ends, leap days (2000, 2024, not 1900 or 2100), year ends, the epoch */
  const char *const dates[] = {"1900-02-28", "1900-03-01", "1999-12-31", "2000-02-29", "2000-03-01",
                               "2024-02-29", "2100-02-28", "2100-03-01", "9999-12-31", "1969-12-31"};
  for (size_t i = 0; i < sizeof dates / sizeof *dates; i++) {
    struct tm tm = {0};
    assert_non_null(strptime(dates[i], "%Y-%m-%d", &tm));
    int64_t base = (int64_t)timegm(&tm) * 1000;
    for (int64_t d = -1; d <= 1; d++)
      for (int64_t off = -1; off <= 1; off++) same_as_libc(base + d * day + off);
  }
  for (int64_t ms = -3 * day; ms <= 3 * day; ms += 999) same_as_libc(ms);
}

static void test_random_times_match_libc(void **state) {
  (void)state;
  unsigned seed = 1123;
  for (int i = 0; i < 200000; i++) {
    /* years 1800 to 2600 */
    int64_t ms = ((int64_t)rand_r(&seed) << 20 ^ rand_r(&seed)) % 25000000000000LL - 5364662400000LL;
    same_as_libc(ms);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_dates),
      cmocka_unit_test(test_edges_match_libc),
      cmocka_unit_test(test_random_times_match_libc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
