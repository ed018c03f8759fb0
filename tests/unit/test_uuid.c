/* Time-ordered UUIDs (rm_uuid_v7, core/util/text.c): the layout of RFC
 * 9562's version 7, ordered by their millisecond, unique. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/text.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_layout_and_time(void **state) {
  (void)state;
  char id[37];
  int64_t before = now_ms();
  assert_int_equal(rm_uuid_v7(id), 0);
  int64_t after = now_ms();
  assert_int_equal(strlen(id), 36);
  assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
  assert_int_equal(id[14], '7');                    /* the version */
  assert_non_null(strchr("89ab", id[19]));          /* the variant */
  char hex[13];
  memcpy(hex, id, 8);
  memcpy(hex + 8, id + 9, 4);
  hex[12] = '\0';
  int64_t ms = (int64_t)strtoll(hex, NULL, 16);     /* the first 48 bits: its millisecond */
  assert_true(ms >= before && ms <= after);
}

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_ordered_by_time_and_unique(void **state) {
  (void)state;
  enum { N = 20000 };
  char(*ids)[37] = malloc(N * sizeof *ids);
  assert_non_null(ids);
  char first[37], later[37];
  assert_int_equal(rm_uuid_v7(first), 0);
  struct timespec pause = {0, 3 * 1000000};
  nanosleep(&pause, NULL);
  assert_int_equal(rm_uuid_v7(later), 0);
  assert_true(strcmp(first, later) < 0); /* a later millisecond sorts after */
  for (int i = 0; i < N; i++) assert_int_equal(rm_uuid_v7(ids[i]), 0);
  qsort(ids, N, sizeof *ids, cmp);
  for (int i = 1; i < N; i++) assert_true(strcmp(ids[i - 1], ids[i]) != 0);
  free(ids);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout_and_time),
      cmocka_unit_test(test_ordered_by_time_and_unique),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
