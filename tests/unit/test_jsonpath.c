/* JSONPath (core/jsonpath): the RFC 9535 Compliance Test Suite, plus the
 * behaviour the suite does not pin: error messages with offsets,
 * normalized path output, regex limits and very deep documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonpath/internal.h"
#include "jsonpath/jsonpath.h"
#include "util/buf.h"
#include "util/err.h"

#define CTS_PATH "tests/data/jsonpath-cts/cts.json"

/* CTS cases this implementation is known to fail, each with the reason.
 * A listed case that starts passing fails the test, so the list cannot go
 * stale. */
static const struct {
  const char *name;
  const char *reason;
} known_failures[] = {
    {NULL, NULL},
};

static const char *known_failure(const char *name) {
  for (size_t i = 0; known_failures[i].name; i++)
    if (!strcmp(known_failures[i].name, name)) return known_failures[i].reason;
  return NULL;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  rm_buf b = RM_BUF_INIT;
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    assert_int_equal(rm_buf_append(&b, chunk, n), 0);
  fclose(f);
  return rm_buf_steal(&b);
}

static json_t *load(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!v) print_error("bad JSON: %s at %d\n", e.text, e.position);
  assert_non_null(v);
  return v;
}

/* Runs one CTS case; on failure writes why into why. */
static int run_case(json_t *tc, char *why, size_t whylen) {
  const char *selector = json_string_value(json_object_get(tc, "selector"));
  int invalid = json_is_true(json_object_get(tc, "invalid_selector"));
  char err[256];
  rm_jsonpath *q = NULL;
  /* A selector with an embedded U+0000 reaches the C API cut short; the
   * suite only has such selectors as invalid ones, and the shortened text
   * is invalid too. */
  int rc = rm_jsonpath_compile(selector, &q, err, sizeof err);
  if (invalid) {
    if (rc == RM_EPARSE && err[0]) return 1;
    snprintf(why, whylen, "compiled an invalid selector (rc %d)", rc);
    rm_jsonpath_free(q);
    return 0;
  }
  if (rc) {
    snprintf(why, whylen, "rejected a valid selector: %s", err);
    return 0;
  }
  json_t *values = NULL, *paths = NULL;
  rc = rm_jsonpath_query(q, json_object_get(tc, "document"), &values, &paths);
  rm_jsonpath_free(q);
  if (rc) {
    snprintf(why, whylen, "query failed: %s", rm_strerror(rc));
    return 0;
  }
  int ok = 0;
  json_t *result = json_object_get(tc, "result");
  if (result) {
    ok = json_equal(values, result) && json_equal(paths, json_object_get(tc, "result_paths"));
  } else {
    json_t *results = json_object_get(tc, "results"),
           *rpaths = json_object_get(tc, "results_paths");
    for (size_t i = 0; i < json_array_size(results) && !ok; i++)
      ok = json_equal(values, json_array_get(results, i)) &&
           json_equal(paths, json_array_get(rpaths, i));
  }
  if (!ok) {
    char *v = json_dumps(values, JSON_COMPACT | JSON_ENCODE_ANY);
    char *p = json_dumps(paths, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(why, whylen, "got %.200s at %.200s", v ? v : "?", p ? p : "?");
    free(v);
    free(p);
  }
  json_decref(values);
  json_decref(paths);
  return ok;
}

static void test_cts_all_cases_pass(void **state) {
  (void)state;
  char *text = read_file(CTS_PATH);
  if (!text) fail_msg("cannot read %s (run from the repository root)", CTS_PATH);
  json_t *cts = load(text);
  free(text);
  json_t *tests = json_object_get(cts, "tests");
  size_t total = json_array_size(tests), passed = 0, unexpected = 0, stale = 0;
  for (size_t i = 0; i < total; i++) {
    json_t *tc = json_array_get(tests, i);
    const char *name = json_string_value(json_object_get(tc, "name"));
    char why[600] = "";
    int ok = run_case(tc, why, sizeof why);
    const char *reason = known_failure(name);
    passed += ok;
    if (!ok && !reason) {
      unexpected++;
      print_message("FAIL %s: %s\n", name, why);
    } else if (ok && reason) {
      stale++;
      print_message("listed as a known failure but passes: %s\n", name);
    }
  }
  printf("jsonpath CTS: %zu/%zu passed\n", passed, total);
  json_decref(cts);
  assert_int_equal(total, 703);
  assert_int_equal(unexpected, 0);
  assert_int_equal(stale, 0);
}

/* Compiles expr, which must fail, and checks the message. */
static void expect_error(const char *expr, const char *message) {
  char err[256];
  rm_jsonpath *q = NULL;
  assert_int_equal(rm_jsonpath_compile(expr, &q, err, sizeof err), RM_EPARSE);
  assert_null(q);
  assert_string_equal(err, message);
}

static void test_compile_errors_name_the_offset(void **state) {
  (void)state;
  expect_error("$[0 1]", "at offset 4: expected ']'");
  expect_error("$['a'", "at offset 5: expected ']' to close '[' at offset 1");
  expect_error("", "at offset 0: expected '$'");
  expect_error(" $", "at offset 0: blank space is not allowed before '$'");
  expect_error("$.a ", "at offset 3: blank space is not allowed after the query");
  expect_error("$. a", "at offset 2: blank space is not allowed after '.'");
  expect_error("$.1", "at offset 2: expected a member name or '*'");
  expect_error("$[01]", "at offset 2: integer with a leading zero");
  expect_error("$[-0]", "at offset 2: '-0' is not a valid integer here");
  expect_error("$[9007199254740992]", "at offset 2: integer out of range (magnitude above 2^53-1)");
  expect_error("$['\\x']", "at offset 3: invalid escape sequence in string literal");
  expect_error("$['\\uD800']", "at offset 3: unpaired high surrogate in string literal");
  expect_error("$['a", "at offset 2: unterminated string literal");
  expect_error("$[?@.a == @.*]", "at offset 10: a non-singular query cannot be compared");
  expect_error("$[?@[ 'a' ] == 1]", "at offset 3: a non-singular query cannot be compared");
  expect_error("$[?true]", "at offset 3: a literal must be compared");
  expect_error("$[?count(@.*)]",
               "at offset 3: the result of count() is a value and must be compared");
  expect_error("$[?match(@.a, 'x') == true]",
               "at offset 3: the result of match() is a logical value and cannot be compared");
  expect_error("$[?length(@.*) > 1]",
               "at offset 10: argument 1 of length() must be a singular query");
  expect_error("$[?count(1) > 1]", "at offset 9: argument 1 of count() must be nodes, not a value");
  expect_error("$[?length((@.a)) > 1]",
               "at offset 11: argument 1 of length() must be a value, not a logical value");
  expect_error("$[?match(@.a) ]", "at offset 3: match() takes 2 arguments, not 1");
  expect_error("$[?foo(@)]", "at offset 3: unknown function 'foo'");
  expect_error("$[?count (@.*) == 1]",
               "at offset 8: blank space is not allowed between count and '('");
  expect_error("$[?!@.a == 1]", "at offset 8: expected ']'");
  expect_error("$[?(@.a == 1]", "at offset 12: expected ')' to close '(' at offset 3");
}

static void test_compile_rejects_deep_nesting(void **state) {
  (void)state;
  rm_buf b = RM_BUF_INIT;
  assert_int_equal(rm_buf_puts(&b, "$"), 0);
  for (int i = 0; i < 200; i++) assert_int_equal(rm_buf_puts(&b, "[?@"), 0);
  for (int i = 0; i < 200; i++) assert_int_equal(rm_buf_puts(&b, "]"), 0);
  char err[128];
  rm_jsonpath *q = NULL;
  assert_int_equal(rm_jsonpath_compile(b.data, &q, err, sizeof err), RM_EPARSE);
  assert_non_null(strstr(err, "nesting deeper than 64 levels"));
  rm_buf_free(&b);

  /* 20 nested filters stay well inside the limit. */
  assert_int_equal(rm_buf_puts(&b, "$"), 0);
  for (int i = 0; i < 20; i++) assert_int_equal(rm_buf_puts(&b, "[?(@"), 0);
  for (int i = 0; i < 20; i++) assert_int_equal(rm_buf_puts(&b, ")]"), 0);
  assert_int_equal(rm_jsonpath_compile(b.data, &q, err, sizeof err), 0);
  rm_jsonpath_free(q);
  rm_buf_free(&b);
}

static void test_compile_error_fits_a_small_buffer(void **state) {
  (void)state;
  char err[12];
  rm_jsonpath *q = NULL;
  assert_int_equal(rm_jsonpath_compile("$[?@.a == @.*]", &q, err, sizeof err), RM_EPARSE);
  assert_string_equal(err, "at offset 1");
  assert_int_equal(rm_jsonpath_compile("$[", &q, NULL, 0), RM_EPARSE);
}

/* Runs expr on doc (JSON text) and compares values and paths (JSON text). */
static void expect_query(const char *expr, const char *doc, const char *values, const char *paths) {
  char err[256];
  rm_jsonpath *q = NULL;
  if (rm_jsonpath_compile(expr, &q, err, sizeof err)) fail_msg("%s: %s", expr, err);
  json_t *d = load(doc), *v = NULL, *p = NULL;
  assert_int_equal(rm_jsonpath_query(q, d, &v, paths ? &p : NULL), 0);
  json_t *want = load(values);
  if (!json_equal(v, want)) {
    char *got = json_dumps(v, JSON_COMPACT);
    fail_msg("%s: got %s, want %s", expr, got, values);
  }
  json_decref(want);
  if (paths) {
    json_t *want_paths = load(paths);
    if (!json_equal(p, want_paths)) {
      char *got = json_dumps(p, JSON_COMPACT);
      fail_msg("%s: got paths %s, want %s", expr, got, paths);
    }
    json_decref(want_paths);
  }
  json_decref(v);
  json_decref(p);
  json_decref(d);
  rm_jsonpath_free(q);
}

static void test_normalized_paths_escape_names_minimally(void **state) {
  (void)state;
  expect_query("$", "{\"a\":1}", "[{\"a\":1}]", "[\"$\"]");
  expect_query("$.a[1].*", "{\"a\":[0,{\"b'c\\\\\\n\\u0001\\u001f/\\\"\\u00e9\":2}]}", "[2]",
               "[\"$['a'][1]['b\\\\'c\\\\\\\\\\\\n\\\\u0001\\\\u001f/\\\"\u00e9']\"]");
  expect_query("$..b", "{\"b\":1,\"a\":[{\"b\":2}],\"c\":{\"b\":3}}", "[1,2,3]",
               "[\"$['b']\",\"$['a'][0]['b']\",\"$['c']['b']\"]");
  expect_query("$[-1, ::-2]", "[10,11,12]", "[12,12,10]", "[\"$[2]\",\"$[2]\",\"$[0]\"]");
}

/* jansson cannot decode a NUL in a key, but it can hold one. */
static void test_names_may_hold_nul(void **state) {
  (void)state;
  json_t *doc = json_object();
  assert_int_equal(json_object_setn_new(doc, "a\0b", 3, json_integer(7)), 0);
  rm_jsonpath *q = NULL;
  char err[128];
  assert_int_equal(rm_jsonpath_compile("$['a\\u0000b']", &q, err, sizeof err), 0);
  json_t *out = NULL, *paths = NULL;
  assert_int_equal(rm_jsonpath_query(q, doc, &out, &paths), 0);
  assert_int_equal(json_array_size(out), 1);
  assert_int_equal(json_integer_value(json_array_get(out, 0)), 7);
  assert_string_equal(json_string_value(json_array_get(paths, 0)), "$['a\\u0000b']");
  json_decref(out);
  json_decref(paths);
  rm_jsonpath_free(q);
  json_decref(doc);
}

static void test_objects_keep_insertion_order(void **state) {
  (void)state;
  expect_query("$.*", "{\"b\":1,\"a\":2,\"c\":3}", "[1,2,3]", "[\"$['b']\",\"$['a']\",\"$['c']\"]");
  expect_query("$..*", "{\"z\":[1],\"a\":2}", "[[1],2,1]", "[\"$['z']\",\"$['a']\",\"$['z'][0]\"]");
}

static void test_numbers_compare_by_value(void **state) {
  (void)state;
  expect_query("$[?@ == 1]", "[1, 1.0, \"1\", 2, true]", "[1, 1.0]", NULL);
  expect_query("$[?@ == 9007199254740993]", "[9007199254740993, 9007199254740992.0]",
               "[9007199254740993]", NULL);
  expect_query("$[?@ < 1.5]", "[1, 2, 1.25, \"a\", null]", "[1, 1.25]", NULL);
}

static void test_regex_match_is_anchored_and_search_is_not(void **state) {
  (void)state;
  expect_query("$[?match(@, 'b+')]", "[\"bb\", \"abba\", 1]", "[\"bb\"]", NULL);
  expect_query("$[?search(@, 'b+')]", "[\"bb\", \"abba\", \"a\"]", "[\"bb\", \"abba\"]", NULL);
  expect_query("$[?match(@, 'a.c')]", "[\"abc\", \"a\\nc\", \"a\\rc\", \"a\\u2028c\"]",
               "[\"abc\", \"a\\u2028c\"]", NULL);
  expect_query("$[?search(@, '\\\\d')]", "[\"1\"]", "[]", NULL);
  expect_query("$[?match(@.s, @.re)]", "[{\"s\":\"ab\",\"re\":\"a.\"},{\"s\":\"ab\",\"re\":\"(\"}]",
               "[{\"s\":\"ab\",\"re\":\"a.\"}]", NULL);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_regex_backtracking_stops_at_the_match_limit(void **state) {
  (void)state;
  /* (a|a)* over many a's explores 2^n ways to fail; the subject holds
   * every literal of the patterns so PCRE2 cannot reject it up front. */
  char subject[64];
  memset(subject, 'a', 48);
  memcpy(subject + 48, "!bc", 4);
  json_t *doc = json_pack("[s, s]", subject, "aab");
  const char *exprs[] = {"$[?match(@, '(a|a)*b')]", "$[?search(@, '(a|a)*!c|aab')]",
                         "$[?search(@, '^(a|a)*b')]"};
  for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
    rm_jsonpath *q = NULL;
    char err[128];
    assert_int_equal(rm_jsonpath_compile(exprs[i], &q, err, sizeof err), 0);
    json_t *out = NULL;
    double t0 = now();
    assert_int_equal(rm_jsonpath_query(q, doc, &out, NULL), 0);
    double elapsed = now() - t0;
    if (elapsed > 5.0) fail_msg("%s took %.1fs", exprs[i], elapsed);
    /* "aab" matches; the pathological subject gives up as no match. */
    assert_int_equal(json_array_size(out), 1);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "aab");
    json_decref(out);
    rm_jsonpath_free(q);
  }
  json_decref(doc);
}

static void expect_translation(const char *iregexp, const char *pcre2) {
  rm_buf b = RM_BUF_INIT;
  int rc = rm__jp_iregexp_translate(iregexp, strlen(iregexp), &b);
  if (!pcre2) {
    assert_int_equal(rc, RM_EPARSE);
  } else {
    assert_int_equal(rc, 0);
    assert_string_equal(b.data ? b.data : "", pcre2);
  }
  rm_buf_free(&b);
}

static void test_iregexp_translates_to_pcre2(void **state) {
  (void)state;
  expect_translation("a.b", "a[^\\n\\r]b");
  expect_translation("(ab)+|c{2,3}", "(?:ab)+|c{2,3}");
  expect_translation("[^a-z\\]-]", "[^a-z\\]\\-]");
  expect_translation("\\p{Lu}\\P{Nd}[\\p{L}_]", "\\p{Lu}\\P{Nd}[\\p{L}\\_]");
  expect_translation("\\n\\.\\t", "\\x{A}\\.\\x{9}");
  expect_translation("#\xc3\xa9 ", "\\#\\x{E9}\\x{20}");
  expect_translation("^ab$", "^ab$");
  expect_translation("", "");
  expect_translation("\\d", NULL); /* multi-character escapes are not I-Regexp */
  expect_translation("a*?", NULL); /* no lazy quantifiers */
  expect_translation("a**", NULL);
  expect_translation("(?:a)", NULL); /* no group modifiers */
  expect_translation("(a", NULL);
  expect_translation("a)", NULL);
  expect_translation("[]", NULL);
  expect_translation("[a-]b]", NULL);
  expect_translation("a{2,1}", NULL);
  expect_translation("a{,1}", NULL);
  expect_translation("\\p{Xx}", NULL);
  expect_translation("\\p{Cs}", NULL); /* not in the RFC 9485 category list */
  expect_translation("\\1", NULL);
}

/* A nested array as deep as jansson would never parse; freed level by
 * level because json_decref itself recurses. */
static json_t **deep_chain(size_t depth) {
  json_t **levels = malloc((depth + 1) * sizeof *levels);
  assert_non_null(levels);
  levels[depth] = json_integer(7);
  for (size_t i = depth; i-- > 0;) {
    levels[i] = json_array();
    assert_int_equal(json_array_append(levels[i], levels[i + 1]), 0);
  }
  return levels;
}

static void free_chain(json_t **levels, size_t depth) {
  for (size_t i = depth; i-- > 0;) json_array_clear(levels[i]);
  for (size_t i = 0; i <= depth; i++) json_decref(levels[i]);
  free(levels);
}

static void test_deep_documents_use_no_recursion(void **state) {
  (void)state;
  const size_t depth = 200000;
  json_t **a = deep_chain(depth), **b = deep_chain(depth);
  json_t *doc = json_array();
  json_array_append(doc, a[0]);
  json_array_append(doc, b[0]);
  rm_jsonpath *q = NULL;
  char err[128];
  json_t *out = NULL;

  assert_int_equal(rm_jsonpath_compile("$..[?@ == 7]", &q, err, sizeof err), 0);
  assert_int_equal(rm_jsonpath_query(q, doc, &out, NULL), 0);
  assert_int_equal(json_array_size(out), 2);
  json_decref(out);
  rm_jsonpath_free(q);

  assert_int_equal(rm_jsonpath_compile("$[0]..*", &q, err, sizeof err), 0);
  assert_int_equal(rm_jsonpath_query(q, doc, &out, NULL), 0);
  assert_int_equal(json_array_size(out), depth);
  json_decref(out);
  rm_jsonpath_free(q);

  /* The path of the deepest node: "$[0]" and one "[0]" per level. */
  json_t *paths = NULL;
  assert_int_equal(rm_jsonpath_compile("$[0]..[?@ == 7]", &q, err, sizeof err), 0);
  assert_int_equal(rm_jsonpath_query(q, doc, &out, &paths), 0);
  assert_int_equal(json_array_size(paths), 1);
  assert_int_equal(strlen(json_string_value(json_array_get(paths, 0))), 4 + 3 * depth);
  json_decref(out);
  json_decref(paths);
  rm_jsonpath_free(q);

  /* Deep equality of the two chains. */
  assert_int_equal(rm_jsonpath_compile("$[?@ == $[1]]", &q, err, sizeof err), 0);
  assert_int_equal(rm_jsonpath_query(q, doc, &out, NULL), 0);
  assert_int_equal(json_array_size(out), 2);
  json_decref(out);
  rm_jsonpath_free(q);

  json_array_clear(doc);
  json_decref(doc);
  free_chain(a, depth);
  free_chain(b, depth);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cts_all_cases_pass),
      cmocka_unit_test(test_compile_errors_name_the_offset),
      cmocka_unit_test(test_compile_rejects_deep_nesting),
      cmocka_unit_test(test_compile_error_fits_a_small_buffer),
      cmocka_unit_test(test_normalized_paths_escape_names_minimally),
      cmocka_unit_test(test_names_may_hold_nul),
      cmocka_unit_test(test_objects_keep_insertion_order),
      cmocka_unit_test(test_numbers_compare_by_value),
      cmocka_unit_test(test_regex_match_is_anchored_and_search_is_not),
      cmocka_unit_test(test_regex_backtracking_stops_at_the_match_limit),
      cmocka_unit_test(test_iregexp_translates_to_pcre2),
      cmocka_unit_test(test_deep_documents_use_no_recursion),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
