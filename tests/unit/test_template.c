#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/template.h"

typedef struct fixture {
  json_t *inputs;
  json_t *vars;
  rm_template_ctx ctx;
  char err[512];
} fixture;

static char *token_for(void *ud, const char *name) {
  (void)ud;
  if (strcmp(name, "api_password") != 0) return NULL;
  return strdup("\x01secret:api_password\x01");
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->inputs = json_loads("{\"base_url\": \"http://h:1\", \"qty\": 3, \"price\": 0.1,"
                         " \"ratio\": 2.0, \"flag\": true, \"none\": null,"
                         " \"user\": {\"name\": \"ann\", \"tags\": [\"a\", \"b\"],"
                         " \"dotted.key\": 7}}",
                         0, NULL);
  f->vars = json_loads("{\"token\": \"t0k\", \"order\": {\"id\": \"ord-17\"}, \"items\": [1, 2.5]}",
                       0, NULL);
  assert_non_null(f->inputs);
  assert_non_null(f->vars);
  f->ctx = (rm_template_ctx){f->inputs, f->vars, token_for, NULL, "run-1", "login", 2};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  json_decref(f->inputs);
  json_decref(f->vars);
  free(f);
  return 0;
}

/* Renders the JSON text src (a value) and returns the result. */
static json_t *render(fixture *f, const char *src) {
  json_t *v = json_loads(src, JSON_DECODE_ANY, NULL);
  assert_non_null(v);
  json_t *out = rm_template_render(v, "tasks.t.request", &f->ctx, f->err, sizeof f->err);
  json_decref(v);
  return out;
}

/* Renders a string and checks the text it gives. */
static void expect_text(fixture *f, const char *tmpl, const char *want) {
  json_t *v = json_string(tmpl);
  json_t *out = rm_template_render(v, "x", &f->ctx, f->err, sizeof f->err);
  json_decref(v);
  if (!out) fail_msg("%s: %s", tmpl, f->err);
  assert_true(json_is_string(out));
  assert_string_equal(json_string_value(out), want);
  json_decref(out);
}

/* Renders a string that must fail and checks the message. */
static void expect_error(fixture *f, const char *tmpl, const char *want) {
  json_t *v = json_string(tmpl);
  json_t *out = rm_template_render(v, "tasks.t.request.url", &f->ctx, f->err, sizeof f->err);
  json_decref(v);
  assert_null(out);
  assert_string_equal(f->err, want);
}

static void test_render_keeps_type_of_whole_placeholder(void **state) {
  fixture *f = *state;
  json_t *out = render(f, "{\"qty\": \"{{inputs.qty}}\", \"user\": \"{{ inputs.user }}\","
                          " \"flag\": \"{{inputs.flag}}\", \"none\": \"{{inputs.none}}\","
                          " \"attempt\": \"{{attempt}}\"}");
  assert_non_null(out);
  assert_true(json_is_integer(json_object_get(out, "qty")));
  assert_int_equal(json_integer_value(json_object_get(out, "qty")), 3);
  assert_true(json_is_object(json_object_get(out, "user")));
  assert_true(json_is_true(json_object_get(out, "flag")));
  assert_true(json_is_null(json_object_get(out, "none")));
  assert_int_equal(json_integer_value(json_object_get(out, "attempt")), 2);
  json_decref(out);
}

static void test_render_interpolates_text_around_placeholders(void **state) {
  fixture *f = *state;
  expect_text(f, "{{inputs.base_url}}/orders/{{vars.order.id}}?n={{inputs.qty}}",
              "http://h:1/orders/ord-17?n=3");
  expect_text(f, "no placeholders", "no placeholders");
  expect_text(f, "", "");
}

static void test_render_writes_integers_without_decimal_point(void **state) {
  fixture *f = *state;
  expect_text(f, "q={{inputs.qty}} a={{attempt}}", "q=3 a=2");
}

static void test_render_writes_reals_shortest_round_trip(void **state) {
  fixture *f = *state;
  expect_text(f, "p={{inputs.price}} r={{inputs.ratio}} i={{vars.items[1]}}", "p=0.1 r=2 i=2.5");
  json_t *in = json_pack("{s:f,s:f}", "third", 1.0 / 3.0, "sum", 0.1 + 0.2);
  f->ctx.inputs = in;
  expect_text(f, "{{inputs.third}} {{inputs.sum}}", "0.3333333333333333 0.30000000000000004");
  f->ctx.inputs = f->inputs;
  json_decref(in);
}

static void test_render_writes_containers_as_compact_json(void **state) {
  fixture *f = *state;
  expect_text(f, "u={{inputs.user}}",
              "u={\"name\":\"ann\",\"tags\":[\"a\",\"b\"],\"dotted.key\":7}");
  expect_text(f, "i={{vars.items}}", "i=[1,2.5]");
}

static void test_render_writes_booleans_and_null_as_json_words(void **state) {
  fixture *f = *state;
  expect_text(f, "{{inputs.flag}}/{{inputs.none}}", "true/null");
}

static void test_render_walks_keys_and_indexes(void **state) {
  fixture *f = *state;
  expect_text(f, "{{inputs.user.tags[1]}}{{inputs.user.name}}", "bann");
  expect_text(f, "{{inputs.user[\"dotted.key\"]}}-{{inputs.user['tags'][0]}}", "7-a");
}

static void test_render_escaped_braces_are_literal(void **state) {
  fixture *f = *state;
  expect_text(f, "\\{{inputs.qty}} is {{inputs.qty}}", "{{inputs.qty}} is 3");
  expect_text(f, "a } b }} c", "a } b }} c");
}

static void test_render_recurses_into_objects_and_arrays(void **state) {
  fixture *f = *state;
  json_t *out = render(f, "{\"headers\": {\"Authorization\": \"Bearer {{vars.token}}\"},"
                          " \"list\": [\"{{inputs.qty}}\", 5, false, null, [\"{{task}}\"]]}");
  assert_non_null(out);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(out, "headers"), "Authorization")),
      "Bearer t0k");
  json_t *expect = json_loads("[3, 5, false, null, [\"login\"]]", 0, NULL);
  assert_true(json_equal(json_object_get(out, "list"), expect));
  json_decref(expect);
  json_decref(out);
}

static void test_render_leaves_its_input_unchanged(void **state) {
  fixture *f = *state;
  json_t *v = json_loads("{\"a\": \"{{inputs.user}}\"}", 0, NULL);
  json_t *out = rm_template_render(v, "p", &f->ctx, f->err, sizeof f->err);
  assert_non_null(out);
  json_object_set_new(json_object_get(out, "a"), "name", json_string("changed"));
  assert_string_equal(json_string_value(json_object_get(v, "a")), "{{inputs.user}}");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(f->inputs, "user"), "name")), "ann");
  json_decref(out);
  json_decref(v);
}

static void test_render_reports_missing_input_with_path_and_expression(void **state) {
  fixture *f = *state;
  expect_error(f, "{{inputs.base}}/x", "tasks.t.request.url: {{inputs.base}}: no input 'base'");
}

static void test_render_reports_missing_variable(void **state) {
  fixture *f = *state;
  expect_error(f, "{{vars.tokn}}", "tasks.t.request.url: {{vars.tokn}}: no variable 'tokn'");
}

static void test_render_reports_missing_key_index_and_wrong_type(void **state) {
  fixture *f = *state;
  expect_error(f, "{{inputs.user.age}}",
               "tasks.t.request.url: {{inputs.user.age}}: inputs.user has no key 'age'");
  expect_error(f, "{{inputs.user.tags[5]}}",
               "tasks.t.request.url: {{inputs.user.tags[5]}}: inputs.user.tags has no index 5 "
               "(length 2)");
  expect_error(f, "{{inputs.qty.x}}",
               "tasks.t.request.url: {{inputs.qty.x}}: inputs.qty is not an object");
  expect_error(f, "{{inputs.user[0]}}",
               "tasks.t.request.url: {{inputs.user[0]}}: inputs.user is not an array");
}

static void test_render_reports_location_inside_nested_values(void **state) {
  fixture *f = *state;
  json_t *out = render(f, "{\"headers\": {\"X\": \"ok\", \"Y\": [\"{{vars.nope}}\"]}}");
  assert_null(out);
  assert_string_equal(f->err, "tasks.t.request.headers.Y[0]: {{vars.nope}}: no variable 'nope'");
}

static void test_render_rejects_unknown_helper(void **state) {
  fixture *f = *state;
  json_t *v = json_string("{{uid}}");
  assert_null(rm_template_render(v, "p", &f->ctx, f->err, sizeof f->err));
  assert_non_null(strstr(f->err, "p: {{uid}}: unknown helper 'uid'"));
  json_decref(v);
}

static void test_render_rejects_unterminated_placeholder(void **state) {
  fixture *f = *state;
  expect_error(f, "a {{inputs.qty",
               "tasks.t.request.url: {{inputs.qty: unterminated placeholder (no closing '}}')");
}

static void test_render_rejects_malformed_expressions(void **state) {
  fixture *f = *state;
  expect_error(f, "{{ vars. }}", "tasks.t.request.url: {{vars.}}: expected a name after 'vars.'");
  expect_error(f, "{{}}", "tasks.t.request.url: {{}}: empty placeholder");
  expect_error(f, "{{uuid.x}}", "tasks.t.request.url: {{uuid.x}}: unexpected '.x' after 'uuid'");
  expect_error(f, "{{inputs}}",
               "tasks.t.request.url: {{inputs}}: 'inputs' needs a name: "
               "{{inputs.NAME}}");
  expect_error(f, "{{inputs.user tags}}",
               "tasks.t.request.url: {{inputs.user tags}}: unexpected ' ' at offset 11");
}

static int is_hex(char c) { return strchr("0123456789abcdef", c) != NULL; }

/* Checks the canonical 8-4-4-4-12 form with the given version digit. */
static void assert_uuid(const char *s, char version) {
  assert_int_equal(strlen(s), 36);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(s[i], '-');
    else
      assert_true(is_hex(s[i]));
  }
  assert_int_equal(s[14], version);
  assert_non_null(strchr("89ab", s[19]));
}

static void test_render_uuid_is_random_v4(void **state) {
  fixture *f = *state;
  json_t *out = render(f, "[\"{{uuid}}\", \"{{uuid}}\"]");
  assert_non_null(out);
  const char *a = json_string_value(json_array_get(out, 0));
  const char *b = json_string_value(json_array_get(out, 1));
  assert_uuid(a, '4');
  assert_uuid(b, '4');
  assert_string_not_equal(a, b);
  json_decref(out);
}

static char *render_key(fixture *f, const char *run_id, const char *task, int attempt) {
  f->ctx.run_id = run_id;
  f->ctx.task = task;
  f->ctx.attempt = attempt;
  json_t *out = render(f, "\"{{idempotency_key}}\"");
  assert_non_null(out);
  char *s = strdup(json_string_value(out));
  json_decref(out);
  return s;
}

static void test_render_idempotency_key_is_stable_across_retries(void **state) {
  fixture *f = *state;
  char *k1 = render_key(f, "run-1", "create_order", 1);
  char *k2 = render_key(f, "run-1", "create_order", 2);
  char *other_task = render_key(f, "run-1", "create_orde", 1);
  char *other_run = render_key(f, "run-2", "create_order", 1);
  char *shifted = render_key(f, "run-1c", "reate_order", 1);
  assert_uuid(k1, '5');
  assert_string_equal(k1, k2);
  assert_string_not_equal(k1, other_task);
  assert_string_not_equal(k1, other_run);
  assert_string_not_equal(k1, shifted);
  free(k1);
  free(k2);
  free(other_task);
  free(other_run);
  free(shifted);
}

static void test_render_now_helpers_give_current_time(void **state) {
  fixture *f = *state;
  time_t before = time(NULL);
  json_t *out = render(f, "[\"{{now}}\", \"{{now_unix}}\", \"{{now_unix_ms}}\"]");
  time_t after = time(NULL);
  assert_non_null(out);
  const char *iso = json_string_value(json_array_get(out, 0));
  assert_int_equal(strlen(iso), 24); /* 2026-11-23T10:00:00.123Z */
  assert_int_equal(iso[10], 'T');
  assert_int_equal(iso[19], '.');
  assert_int_equal(iso[23], 'Z');
  json_int_t s = json_integer_value(json_array_get(out, 1));
  json_int_t ms = json_integer_value(json_array_get(out, 2));
  assert_true(s >= before && s <= after);
  assert_true(ms / 1000 >= before && ms / 1000 <= after);
  json_decref(out);
}

static void test_render_run_id_task_and_attempt(void **state) {
  fixture *f = *state;
  expect_text(f, "{{run_id}}/{{task}}/{{attempt}}", "run-1/login/2");
  f->ctx.run_id = NULL;
  expect_error(f, "{{run_id}}", "tasks.t.request.url: {{run_id}}: no run id is known here");
}

static void test_render_secret_becomes_opaque_token(void **state) {
  fixture *f = *state;
  expect_text(f, "pw={{secrets.api_password}}", "pw=\x01secret:api_password\x01");
  expect_error(f, "{{secrets.other}}", "tasks.t.request.url: {{secrets.other}}: no secret 'other'");
  expect_error(f, "{{secrets.api_password[0]}}",
               "tasks.t.request.url: {{secrets.api_password[0]}}: a secret has no fields: "
               "unexpected '[0]'");
  expect_error(f, "{{secrets.db.password}}",
               "tasks.t.request.url: {{secrets.db.password}}: no secret 'db.password'");
}

typedef struct seen {
  json_t *refs; /* [[location, expr or null, problem or null], ...] */
  int stop_after;
} seen;

static int collect(void *ud, const char *location, const char *expr, const char *problem) {
  seen *s = ud;
  json_array_append_new(s->refs, json_pack("[s,s?,s?]", location, expr, problem));
  return s->stop_after && (int)json_array_size(s->refs) >= s->stop_after ? 42 : 0;
}

static void test_scan_reports_every_placeholder_with_location(void **state) {
  (void)state;
  json_t *v = json_loads("{\"url\": \"{{inputs.base}}/o/{{ vars.id }}\","
                         " \"headers\": {\"Authorization\": \"Bearer {{secrets.tok}}\"},"
                         " \"json\": {\"items\": [1, \"\\\\{{not}}\", \"{{uuid}}\"]}}",
                         0, NULL);
  seen s = {json_array(), 0};
  assert_int_equal(rm_template_scan(v, "tasks.login.request", collect, &s), 0);
  json_t *want =
      json_loads("[[\"tasks.login.request.url\", \"inputs.base\", null],"
                 " [\"tasks.login.request.url\", \"vars.id\", null],"
                 " [\"tasks.login.request.headers.Authorization\", \"secrets.tok\", null],"
                 " [\"tasks.login.request.json.items[2]\", \"uuid\", null]]",
                 0, NULL);
  assert_true(json_equal(s.refs, want));
  json_decref(want);
  json_decref(s.refs);
  json_decref(v);
}

static void test_scan_reports_malformed_placeholders_as_problems(void **state) {
  (void)state;
  json_t *v = json_loads("[\"{{ vars. }}\", \"{{ nowz }}\", \"x {{inputs.a\"]", 0, NULL);
  seen s = {json_array(), 0};
  assert_int_equal(rm_template_scan(v, "", collect, &s), 0);
  assert_int_equal(json_array_size(s.refs), 3);
  json_t *first = json_array_get(s.refs, 0);
  assert_string_equal(json_string_value(json_array_get(first, 0)), "[0]");
  assert_true(json_is_null(json_array_get(first, 1)));
  assert_string_equal(json_string_value(json_array_get(first, 2)),
                      "{{vars.}}: expected a name after 'vars.'");
  const char *unknown = json_string_value(json_array_get(json_array_get(s.refs, 1), 2));
  assert_non_null(strstr(unknown, "{{nowz}}: unknown helper 'nowz'"));
  assert_string_equal(json_string_value(json_array_get(json_array_get(s.refs, 2), 2)),
                      "{{inputs.a: unterminated placeholder (no closing '}}')");
  json_decref(s.refs);
  json_decref(v);
}

static void test_scan_stops_when_callback_returns_nonzero(void **state) {
  (void)state;
  json_t *v = json_loads("[\"{{uuid}}\", \"{{now}}\", \"{{task}}\"]", 0, NULL);
  seen s = {json_array(), 2};
  assert_int_equal(rm_template_scan(v, "p", collect, &s), 42);
  assert_int_equal(json_array_size(s.refs), 2);
  json_decref(s.refs);
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_render_keeps_type_of_whole_placeholder, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_interpolates_text_around_placeholders, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_writes_integers_without_decimal_point, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_writes_reals_shortest_round_trip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_writes_containers_as_compact_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_writes_booleans_and_null_as_json_words, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_walks_keys_and_indexes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_escaped_braces_are_literal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_recurses_into_objects_and_arrays, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_leaves_its_input_unchanged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_reports_missing_input_with_path_and_expression,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_reports_missing_variable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_reports_missing_key_index_and_wrong_type, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_reports_location_inside_nested_values, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_rejects_unknown_helper, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_rejects_unterminated_placeholder, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_rejects_malformed_expressions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_uuid_is_random_v4, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_idempotency_key_is_stable_across_retries, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_render_now_helpers_give_current_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_run_id_task_and_attempt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_secret_becomes_opaque_token, setup, teardown),
      cmocka_unit_test(test_scan_reports_every_placeholder_with_location),
      cmocka_unit_test(test_scan_reports_malformed_placeholders_as_problems),
      cmocka_unit_test(test_scan_stops_when_callback_returns_nonzero),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
