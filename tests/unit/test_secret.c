#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret/secret.h"
#include "util/err.h"
#include "util/text.h"

static const char *const VALUE = "pa$s w/rd+Z9";

static int setup(void **state) {
  rm_secrets *s = rm_secrets_new();
  char err[256];
  assert_non_null(s);
  assert_int_equal(rm_secrets_set(s, "Api_Password", VALUE, err, sizeof err), 0);
  *state = s;
  return 0;
}

static int teardown(void **state) {
  rm_secrets_free(*state);
  return 0;
}

static char *scrub(rm_secrets *s, const char *in) { return rm_secrets_scrub(s, in, strlen(in), NULL); }

static void assert_scrubbed(rm_secrets *s, const char *in, const char *want) {
  char *out = scrub(s, in);
  assert_non_null(out);
  assert_string_equal(out, want);
  free(out);
}

static void test_refuses_short_values_and_bad_names(void **state) {
  rm_secrets *s = *state;
  char err[256] = "";
  assert_int_equal(rm_secrets_set(s, "x", "ab", err, sizeof err), RM_EINVAL);
  assert_non_null(strstr(err, "x"));
  assert_int_equal(rm_secrets_set(s, "bad name", "abcdef", err, sizeof err), RM_EINVAL);
  assert_int_equal(rm_secrets_count(s), 1);
}

static void test_token_round_trip_case_insensitive(void **state) {
  rm_secrets *s = *state;
  char *tok = rm_secrets_token(s, "api_password");
  assert_non_null(tok);
  assert_null(strstr(tok, VALUE));
  char line[256];
  snprintf(line, sizeof line, "{\"password\": \"%s\"}", tok);
  size_t n;
  char *raw = rm_secrets_inject(s, line, strlen(line), RM_SECRET_RAW, &n);
  assert_string_equal(raw, "{\"password\": \"pa$s w/rd+Z9\"}");
  assert_int_equal(n, strlen(raw));
  char *url = rm_secrets_inject(s, tok, strlen(tok), RM_SECRET_URL, NULL);
  assert_string_equal(url, "pa%24s%20w%2Frd%2BZ9");
  /* What is shown names the secret, never the value. */
  assert_scrubbed(s, line, "{\"password\": \"{{secrets.api_password}}\"}");
  assert_null(rm_secrets_token(s, "nope"));
  free(raw);
  free(url);
  free(tok);
}

static void test_unknown_token_is_not_injected(void **state) {
  rm_secrets *s = *state;
  const char *forged = "@@rmsecret-0000000000000000-api_password@@";
  char *out = rm_secrets_inject(s, forged, strlen(forged), RM_SECRET_RAW, NULL);
  assert_string_equal(out, forged);
  assert_false(rm_secrets_has_token(s, forged, strlen(forged)));
  free(out);
}

static void test_scrubs_raw_json_and_url_forms(void **state) {
  rm_secrets *s = *state;
  assert_scrubbed(s, "password=pa$s w/rd+Z9!", "password=***!");
  assert_scrubbed(s, "q=pa%24s%20w%2Frd%2BZ9&x=1", "q=***&x=1");
  assert_scrubbed(s, "q=pa%24s+w%2Frd%2BZ9", "q=***");
  assert_scrubbed(s, "{\"p\":\"pa$s w\\/rd+Z9\"}", "{\"p\":\"***\"}");
  assert_scrubbed(s, "nothing here", "nothing here");
}

/* The value inside base64 of any surrounding text, at each alignment, in
 * both alphabets, must not survive scrubbing. */
static void test_scrubs_base64_at_every_alignment(void **state) {
  rm_secrets *s = *state;
  const char *prefixes[] = {"", "u:", "us:", "user:", "Basic user:"};
  for (int url = 0; url < 2; url++) {
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
      char plain[128];
      snprintf(plain, sizeof plain, "%s%s;tail", prefixes[i], VALUE);
      char *b64 = rm_base64_encode(plain, strlen(plain), url != 0);
      char *out = scrub(s, b64);
      assert_non_null(out);
      /* The middle of the encoded value is gone. */
      char *value_b64 = rm_base64_encode(VALUE, strlen(VALUE), url != 0);
      char middle[9];
      memcpy(middle, value_b64 + 4, 8);
      middle[8] = '\0';
      if (i == 0) assert_null(strstr(out, middle));
      assert_non_null(strstr(out, "***"));
      free(value_b64);
      free(out);
      free(b64);
    }
  }
}

static void test_scrub_json_in_place_keys_and_values(void **state) {
  rm_secrets *s = *state;
  json_t *doc = json_pack("{s:s, s:[s, i], s:{s:s}}", "a", "x pa$s w/rd+Z9 y", "b", VALUE, 3,
                          "pa$s w/rd+Z9", "k", "v");
  assert_int_equal(rm_secrets_scrub_json(s, doc), 0);
  char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  assert_null(strstr(text, VALUE));
  assert_non_null(strstr(text, "\"x *** y\""));
  free(text);
  json_decref(doc);
}

static void test_log_scrubber(void **state) {
  rm_secrets *s = *state;
  char *out = rm_secrets_log_scrub(s, "login with pa$s w/rd+Z9 failed");
  assert_string_equal(out, "login with *** failed");
  free(out);
  assert_null(rm_secrets_log_scrub(s, "clean line"));
}

static void test_load_file(void **state) {
  (void)state;
  char path[] = "/tmp/restmon-secret-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "# comment\n\nexport ONE=first-value\nTWO=\"quoted value\"\nbroken line\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  rm_secrets *s = rm_secrets_new();
  char err[256] = "";
  int rc = rm_secrets_load_file(s, path, err, sizeof err);
  assert_true(rc < 0);
  assert_non_null(strstr(err, ":5"));
  rm_secrets_free(s);
  fd = open(path, O_WRONLY | O_TRUNC);
  const char *good = "# comment\n\nexport ONE=first-value\nTWO=\"quoted value\"\n";
  assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
  close(fd);
  s = rm_secrets_new();
  assert_int_equal(rm_secrets_load_file(s, path, err, sizeof err), 0);
  assert_int_equal(rm_secrets_count(s), 2);
  assert_scrubbed(s, "a quoted value b first-value", "a *** b ***");
  rm_secrets_free(s);
  unlink(path);
}

static void test_removed_secret_is_not_injected_but_stays_masked(void **state) {
  rm_secrets *s = *state;
  char err[256];
  char *tok = rm_secrets_token(s, "api_password");
  assert_int_equal(rm_secrets_remove(s, "API_PASSWORD"), 0);
  assert_int_equal(rm_secrets_remove(s, "api_password"), RM_ENOTFOUND);
  assert_null(rm_secrets_token(s, "api_password"));
  assert_int_equal(rm_secrets_count(s), 0);
  json_t *names = rm_secrets_names(s);
  assert_int_equal(json_array_size(names), 0);
  json_decref(names);
  char *out = rm_secrets_inject(s, tok, strlen(tok), RM_SECRET_RAW, NULL);
  assert_string_equal(out, tok); /* a token rendered before is no longer known */
  free(out);
  assert_scrubbed(s, "leaked pa$s w/rd+Z9 here", "leaked *** here");
  /* A new secret of the same name: the new value is injected, both masked. */
  assert_int_equal(rm_secrets_set(s, "api_password", "second-value", err, sizeof err), 0);
  free(tok);
  tok = rm_secrets_token(s, "api_password");
  out = rm_secrets_inject(s, tok, strlen(tok), RM_SECRET_RAW, NULL);
  assert_string_equal(out, "second-value");
  assert_scrubbed(s, "pa$s w/rd+Z9 second-value", "*** ***");
  assert_int_equal(rm_secrets_count(s), 1);
  free(out);
  free(tok);
}

static void test_removed_values_kept_for_masking_are_bounded(void **state) {
  rm_secrets *s = *state;
  char err[256], name[32], value[32];
  assert_int_equal(rm_secrets_remove(s, "api_password"), 0);
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof name, "n%d", i);
    snprintf(value, sizeof value, "value-number-%d-x", i);
    assert_int_equal(rm_secrets_set(s, name, value, err, sizeof err), 0);
    assert_int_equal(rm_secrets_remove(s, name), 0);
  }
  assert_int_equal(rm_secrets_count(s), 0);
  assert_scrubbed(s, "value-number-299-x", "***");
  assert_scrubbed(s, "pa$s w/rd+Z9", "pa$s w/rd+Z9"); /* the oldest went first */
}

static void test_a_value_retired_again_and_again_takes_one_place(void **state) {
  rm_secrets *s = *state;
  char err[256];
  assert_int_equal(rm_secrets_remove(s, "api_password"), 0); /* retired first: the oldest */
  /* the same secret applied again and again (as another server's change
   * read back from the store): remove, then set to the same value */
  assert_int_equal(rm_secrets_set(s, "sync_token", "same-value-each-time", err, sizeof err), 0);
  for (int i = 0; i < 300; i++) {
    assert_int_equal(rm_secrets_remove(s, "sync_token"), 0);
    assert_int_equal(rm_secrets_set(s, "sync_token", "same-value-each-time", err, sizeof err), 0);
  }
  assert_int_equal(rm_secrets_count(s), 1);
  assert_scrubbed(s, "pa$s w/rd+Z9 same-value-each-time", "*** ***"); /* the first retired value still masked */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refuses_short_values_and_bad_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token_round_trip_case_insensitive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_token_is_not_injected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scrubs_raw_json_and_url_forms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scrubs_base64_at_every_alignment, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scrub_json_in_place_keys_and_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_scrubber, setup, teardown),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test_setup_teardown(test_removed_secret_is_not_injected_but_stays_masked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_removed_values_kept_for_masking_are_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_value_retired_again_and_again_takes_one_place, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
