/* The compact JSON writer (core/util/json_dump): the same bytes as
 * jansson's json_dumps for every kind of value, at both precisions the
 * server uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_dump.h"

static void same_as_jansson(const json_t *v, int precision) {
  size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | (precision ? JSON_REAL_PRECISION(precision) : 0);
  char *want = json_dumps(v, flags), *got = rm_json_dumps(v, precision);
  assert_non_null(want);
  assert_non_null(got);
  if (strcmp(want, got) != 0) print_error("jansson: %s\nours:    %s\n", want, got);
  assert_string_equal(got, want);
  free(want);
  free(got);
}

static void both_precisions(json_t *v) {
  assert_non_null(v);
  same_as_jansson(v, 0);
  same_as_jansson(v, 15);
  same_as_jansson(v, 17);
  json_decref(v);
}

static void test_scalars_match_jansson(void **state) {
  (void)state;
  both_precisions(json_null());
  both_precisions(json_true());
  both_precisions(json_false());
  const json_int_t ints[] = {0, 1, -1, 9, 10, -10, 123456789, INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) both_precisions(json_integer(ints[i]));
  const double reals[] = {0.0,     -0.0,   0.1,     1.0,      -2.5,    1e20,    1e21,   1e-5,     1.5e-7,
                          1e300,   -1e300, 5e-324,  DBL_MAX,  DBL_MIN, 1e16,    1e17,   123456.789, 2.0 / 3.0,
                          0.008,   6.948,  10.432632, 1795461900338.0, 1e100, 3.14159e-100};
  for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) both_precisions(json_real(reals[i]));
}

static void test_strings_escape_as_jansson(void **state) {
  (void)state;
  const char *const texts[] = {"", "plain", "quote \" and backslash \\", "slash / stays", "tab\tnew\nline\rret",
                               "bell\x07 bs\b ff\f esc\x1b us\x1f del\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                               "<script>&amp;</script>", "\"", "\\"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    both_precisions(json_string(texts[i]));
    both_precisions(json_pack("{s:i}", texts[i], 1)); /* as a key */
  }
  /* a NUL inside a string */
  both_precisions(json_stringn("a\0b", 3));
}

static void test_nested_values_keep_insertion_order(void **state) {
  (void)state;
  json_t *v = json_loads("{\"z\":1,\"a\":[1,2.5,\"x\",null,true,false,{},[]],\"m\":{\"k\":{\"deep\":[[[]]]}},"
                         "\"float\":0.0080000000000000002,\"e\":1e-05}",
                         0, NULL);
  both_precisions(v);
  both_precisions(json_object());
  both_precisions(json_array());
  /* a record shaped like a stored step */
  both_precisions(json_pack("{s:s, s:[{s:i, s:f, s:{s:{s:s}, s:{s:f, s:f}}}], s:s}", "task", "check", "attempts",
                            "attempt", 1, "duration_ms", 10.432632, "exchanges", "request", "method", "GET",
                            "timings", "dns_ms", 0.008, "total_ms", 6.977, "reason", "HTTP 200 in success codes [2xx]"));
}

/* Many random documents, built from a fixed seed. */
static json_t *random_value(unsigned *seed, int depth) {
  int kind = rand_r(seed) % (depth > 4 ? 5 : 7);
  switch (kind) {
  case 0: return json_integer((json_int_t)rand_r(seed) * (rand_r(seed) % 2 ? -1 : 1) * 1000003LL);
  case 1: return json_real((double)rand_r(seed) / (double)(rand_r(seed) + 1) * pow(10, rand_r(seed) % 40 - 20));
  case 2: {
    char s[24];
    int n = rand_r(seed) % (int)sizeof s;
    for (int i = 0; i < n; i++) s[i] = (char)(1 + rand_r(seed) % 127);
    return json_stringn(s, (size_t)n);
  }
  case 3: return json_boolean(rand_r(seed) % 2);
  case 4: return json_null();
  case 5: {
    json_t *a = json_array();
    for (int i = rand_r(seed) % 5; i > 0; i--) json_array_append_new(a, random_value(seed, depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (int i = rand_r(seed) % 5; i > 0; i--) {
      char k[8];
      snprintf(k, sizeof k, "k%d", rand_r(seed) % 100);
      json_object_set_new(o, k, random_value(seed, depth + 1));
    }
    return o;
  }
  }
}

static void test_random_documents_match_jansson(void **state) {
  (void)state;
  unsigned seed = 20261123;
  for (int i = 0; i < 2000; i++) both_precisions(random_value(&seed, 0));
}

static void test_too_deep_is_an_error_not_a_crash(void **state) {
  (void)state;
  json_t *top = json_array(), *cur = top;
  for (int i = 0; i < 3000; i++) {
    json_t *next = json_array();
    json_array_append_new(cur, next);
    cur = next;
  }
  rm_buf b = RM_BUF_INIT;
  assert_int_equal(rm_json_dump(&b, top, 0), RM_EINVAL);
  rm_buf_free(&b);
  assert_null(rm_json_dumps(top, 0));
  assert_null(rm_json_dumps(NULL, 0));
  json_decref(top);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars_match_jansson),
      cmocka_unit_test(test_strings_escape_as_jansson),
      cmocka_unit_test(test_nested_values_keep_insertion_order),
      cmocka_unit_test(test_random_documents_match_jansson),
      cmocka_unit_test(test_too_deep_is_an_error_not_a_crash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
