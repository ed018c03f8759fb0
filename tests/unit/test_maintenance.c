/* core/serve/maintenance.c: when a maintenance window is in force (one-off
 * local times across a DST gap, recurring cron windows in a zone, disabled
 * windows, bad stored values) and which window covers an object for
 * notifications or checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "serve/notify_int.h"

#define MIN_MS 60000LL

static json_t *window(const char *text) {
  json_error_t e;
  json_t *w = json_loads(text, 0, &e);
  assert_non_null(w);
  return w;
}

static void test_one_off_window_is_open_from_start_to_end(void **state) {
  (void)state;
  rm_tz_registry *tz = rm_tz_registry_new(NULL);
  json_t *w = window("{\"start\": \"2026-01-10T12:00:00Z\", \"end\": \"2026-01-10T13:00:00Z\"}");
  int64_t start = 1768046400000LL, end = start + 60 * MIN_MS;
  assert_int_equal(rm__maint_until(tz, w, start - 1), 0);
  assert_int_equal(rm__maint_until(tz, w, start), end);
  assert_int_equal(rm__maint_until(tz, w, end - 1), end);
  assert_int_equal(rm__maint_until(tz, w, end), 0);
  json_object_set_new(w, "enabled", json_false());
  assert_false(rm__maint_active(tz, w, start));
  json_decref(w);
  rm_tz_registry_free(tz);
}

/* 01:30 CET to 03:30 CEST on the night clocks go forward is one hour. */
static void test_local_times_follow_the_windows_zone_across_dst(void **state) {
  (void)state;
  rm_tz_registry *tz = rm_tz_registry_new(NULL);
  json_t *w = window("{\"start\": \"2026-03-29T01:30\", \"end\": \"2026-03-29 03:30\", \"timezone\": \"Europe/Paris\"}");
  int64_t start = 1774744200000LL, end = 1774747800000LL;
  assert_int_equal(end - start, 60 * MIN_MS);
  assert_int_equal(rm__maint_until(tz, w, start - 1), 0);
  assert_int_equal(rm__maint_until(tz, w, start + 30 * MIN_MS), end);
  assert_int_equal(rm__maint_until(tz, w, end), 0);
  json_decref(w);
  rm_tz_registry_free(tz);
}

/* Sundays 02:00 Paris time for 90 minutes: 2026-11-01 02:00 CET is 01:00Z. */
static void test_recurring_window_opens_at_each_fire_for_its_duration(void **state) {
  (void)state;
  rm_tz_registry *tz = rm_tz_registry_new(NULL);
  json_t *w = window("{\"cron\": \"0 2 * * SUN\", \"duration_min\": 90, \"timezone\": \"Europe/Paris\"}");
  int64_t fire = 1793494800000LL, end = fire + 90 * MIN_MS;
  assert_int_equal(rm__maint_until(tz, w, fire - 1000), 0);
  assert_int_equal(rm__maint_until(tz, w, fire), end);
  assert_int_equal(rm__maint_until(tz, w, end - 1000), end);
  assert_int_equal(rm__maint_until(tz, w, end), 0);
  assert_int_equal(rm__maint_until(tz, w, fire + 7 * 24 * 60 * MIN_MS), end + 7 * 24 * 60 * MIN_MS);
  assert_int_equal(rm__maint_until(tz, w, fire + 3 * 24 * 60 * MIN_MS), 0);
  json_decref(w);
  rm_tz_registry_free(tz);
}

/* A stored window this version cannot read holds nothing back. */
static void test_unreadable_windows_are_never_in_force(void **state) {
  (void)state;
  rm_tz_registry *tz = rm_tz_registry_new(NULL);
  const char *bad[] = {
      "{\"cron\": \"0 25 * * *\", \"duration_min\": 60}",
      "{\"cron\": \"* * * * *\", \"duration_min\": 0}",
      "{\"cron\": \"* * * * *\", \"duration_min\": 60, \"timezone\": \"Mars/Olympus\"}",
      "{\"start\": \"soon\", \"end\": \"2026-01-10T13:00:00Z\"}",
      "{\"start\": \"2026-01-10T12:00:00Z\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *w = window(bad[i]);
    assert_false(rm__maint_active(tz, w, 1768048200000LL));
    json_decref(w);
  }
  rm_tz_registry_free(tz);
}

static void test_covering_window_matches_ids_tags_and_what_it_suppresses(void **state) {
  (void)state;
  rm_tz_registry *tz = rm_tz_registry_new(NULL);
  json_t *ws = window("["
                      "{\"id\": \"w-tags\", \"cron\": \"* * * * *\", \"duration_min\": 10, \"object_tags\": [\"db\"],"
                      " \"suppress_notifications\": false, \"suppress_checks\": true},"
                      "{\"id\": \"w-ids\", \"cron\": \"* * * * *\", \"duration_min\": 10, \"monitors\": [\"m1\"],"
                      " \"workflows\": [\"wf1\"]},"
                      "{\"id\": \"w-off\", \"enabled\": false, \"cron\": \"* * * * *\", \"duration_min\": 10,"
                      " \"object_tags\": [\"web\"]}]");
  json_t *m1 = window("{\"id\": \"m1\", \"tags\": [\"db\"]}"), *m2 = window("{\"id\": \"m2\", \"tags\": [\"db\", \"x\"]}");
  json_t *wf1 = window("{\"id\": \"wf1\"}"), *web = window("{\"id\": \"m3\", \"tags\": [\"web\"]}");
  int64_t now = 1768046400000LL;
  const json_t *w = rm__maint_covering(tz, ws, m1, "notifications", now);
  assert_string_equal(json_string_value(json_object_get(w, "id")), "w-ids");
  w = rm__maint_covering(tz, ws, m1, "checks", now);
  assert_string_equal(json_string_value(json_object_get(w, "id")), "w-tags");
  assert_null(rm__maint_covering(tz, ws, m2, "notifications", now));
  assert_non_null(rm__maint_covering(tz, ws, m2, "checks", now));
  assert_non_null(rm__maint_covering(tz, ws, wf1, "notifications", now));
  assert_null(rm__maint_covering(tz, ws, wf1, "checks", now)); /* suppress_checks defaults to false */
  assert_null(rm__maint_covering(tz, ws, web, "notifications", now));
  json_decref(ws);
  json_decref(m1);
  json_decref(m2);
  json_decref(wf1);
  json_decref(web);
  rm_tz_registry_free(tz);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_off_window_is_open_from_start_to_end),
      cmocka_unit_test(test_local_times_follow_the_windows_zone_across_dst),
      cmocka_unit_test(test_recurring_window_opens_at_each_fire_for_its_duration),
      cmocka_unit_test(test_unreadable_windows_are_never_in_force),
      cmocka_unit_test(test_covering_window_matches_ids_tags_and_what_it_suppresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
