#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/password.h"
#include "auth/ratelimit.h"
#include "auth/rbac.h"
#include "auth/token.h"
#include "util/err.h"

/* Cheap parameters: the tests check behaviour, not cost. */
static const rm_pw_params FAST = {1, 256, 1};

static const char *const PASSWORD = "correct horse battery staple";

/* ------------------------------------------------------------ passwords */

static void test_hash_verifies_the_right_password_only(void **state) {
  (void)state;
  char h1[RM_PW_ENCODED_MAX], h2[RM_PW_ENCODED_MAX];
  assert_int_equal(rm_pw_hash(&FAST, PASSWORD, h1), 0);
  assert_int_equal(rm_pw_hash(&FAST, PASSWORD, h2), 0);
  assert_true(!strncmp(h1, "$argon2id$v=19$m=256,t=1,p=1$", 29));
  assert_string_not_equal(h1, h2); /* a fresh salt each time */
  assert_int_equal(rm_pw_verify(h1, PASSWORD), 0);
  assert_int_equal(rm_pw_verify(h2, PASSWORD), 0);
  assert_int_equal(rm_pw_verify(h1, "correct horse battery stapl"), RM_EDENIED);
  assert_int_equal(rm_pw_verify(h1, "Correct horse battery staple"), RM_EDENIED);
  assert_int_equal(rm_pw_verify(h1, ""), RM_EDENIED);
  assert_int_equal(rm_pw_verify(h1, NULL), RM_EDENIED);
}

static void test_hash_with_default_parameters(void **state) {
  (void)state;
  const rm_pw_params def = RM_PW_PARAMS_DEFAULT;
  assert_int_equal(def.t_cost, 3);
  assert_int_equal(def.m_cost_kib, 65536);
  assert_int_equal(def.parallelism, 1);
  char h[RM_PW_ENCODED_MAX];
  assert_int_equal(rm_pw_hash(&def, PASSWORD, h), 0);
  assert_true(!strncmp(h, "$argon2id$v=19$m=65536,t=3,p=1$", 31));
  assert_int_equal(rm_pw_verify(h, PASSWORD), 0);
  assert_false(rm_pw_needs_rehash(h, &def));
}

/* h with the first occurrence of from replaced by to. */
static void replaced(char *out, size_t n, const char *h, const char *from, const char *to) {
  const char *at = strstr(h, from);
  assert_non_null(at);
  snprintf(out, n, "%.*s%s%s", (int)(at - h), h, to, at + strlen(from));
}

static void test_tampered_hash_strings_never_verify(void **state) {
  (void)state;
  char h[RM_PW_ENCODED_MAX], t[RM_PW_ENCODED_MAX + 32];
  assert_int_equal(rm_pw_hash(&FAST, PASSWORD, h), 0);
  size_t n = strlen(h);
  const char *hash_part = strrchr(h, '$') + 1;
  const char *salt_part = strstr(h, "p=1$") + 4;

  /* A different character inside the hash or the salt: a mismatch. */
  strcpy(t, h);
  size_t i = (size_t)(hash_part - h) + 10;
  t[i] = t[i] == 'A' ? 'B' : 'A';
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EDENIED);
  strcpy(t, h);
  i = (size_t)(salt_part - h) + 5;
  t[i] = t[i] == 'A' ? 'B' : 'A';
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EDENIED);
  /* Other costs give another hash. */
  replaced(t, sizeof t, h, "m=256", "m=512");
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EDENIED);
  replaced(t, sizeof t, h, "t=1", "t=2");
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EDENIED);
  /* The last character holds spare bits: a change there is either a
   * mismatch or unreadable, never a match. */
  strcpy(t, h);
  t[n - 1] = t[n - 1] == 'A' ? 'B' : 'A';
  assert_int_not_equal(rm_pw_verify(t, PASSWORD), 0);
  /* A shorter hash is not the same hash. */
  snprintf(t, sizeof t, "%.*s", (int)(n - 12), h);
  assert_int_not_equal(rm_pw_verify(t, PASSWORD), 0);

  /* Not an argon2id v=19 string within limits: unreadable. */
  const char *bad[][2] = {
      {"$argon2id$", "$argon2i$"},
      {"$argon2id$", "$argon2d$"},
      {"$argon2id$", "$argon2ID$"},
      {"v=19", "v=16"},
      {"$v=19", ""},
      {"m=256", "m=4194304"}, /* 4 GiB: refused unread */
      {"m=256", "m=4"},
      {"m=256", "m=0256"},
      {"m=256", "m=99999999999"},
      {"m=256", "m=-256"},
      {"t=1", "t=0"},
      {"t=1", "t=65"},
      {"p=1", "p=0"},
      {"p=1", "p=17"},
      {",t=1", ""},
      {"p=1$", "p=1$$"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    replaced(t, sizeof t, h, bad[k][0], bad[k][1]);
    if (rm_pw_verify(t, PASSWORD) != RM_EPARSE) fail_msg("accepted: %s", t);
  }
  snprintf(t, sizeof t, "%s ", h);
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EPARSE);
  snprintf(t, sizeof t, "%s$", h);
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EPARSE);
  snprintf(t, sizeof t, "%.*s", (int)(hash_part - h), h); /* no hash at all */
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EPARSE);
  strcpy(t, h);
  t[(size_t)(hash_part - h) + 3] = '*';
  assert_int_equal(rm_pw_verify(t, PASSWORD), RM_EPARSE);
  assert_int_equal(rm_pw_verify("", PASSWORD), RM_EPARSE);
  assert_int_equal(rm_pw_verify(NULL, PASSWORD), RM_EPARSE);
  assert_int_equal(rm_pw_verify(PASSWORD, PASSWORD), RM_EPARSE);
}

static void test_overlong_password_is_refused_and_never_matches(void **state) {
  (void)state;
  char h[RM_PW_ENCODED_MAX];
  char *big = malloc(RM_PW_MAX_BYTES + 2);
  assert_non_null(big);
  memset(big, 'x', RM_PW_MAX_BYTES);
  big[RM_PW_MAX_BYTES] = '\0';
  assert_int_equal(rm_pw_hash(&FAST, big, h), 0);
  assert_int_equal(rm_pw_verify(h, big), 0);
  big[RM_PW_MAX_BYTES] = 'x';
  big[RM_PW_MAX_BYTES + 1] = '\0';
  assert_int_equal(rm_pw_verify(h, big), RM_EDENIED);
  assert_int_equal(rm_pw_hash(&FAST, big, h), RM_EINVAL);
  free(big);
}

static void test_rehash_when_parameters_change(void **state) {
  (void)state;
  char h[RM_PW_ENCODED_MAX];
  assert_int_equal(rm_pw_hash(&FAST, PASSWORD, h), 0);
  assert_false(rm_pw_needs_rehash(h, &FAST));
  rm_pw_params p = FAST;
  p.t_cost = 2;
  assert_true(rm_pw_needs_rehash(h, &p));
  p = FAST;
  p.m_cost_kib = 512;
  assert_true(rm_pw_needs_rehash(h, &p));
  p = FAST;
  p.parallelism = 2;
  assert_true(rm_pw_needs_rehash(h, &p));
  const rm_pw_params def = RM_PW_PARAMS_DEFAULT;
  assert_true(rm_pw_needs_rehash(h, &def));
  assert_true(rm_pw_needs_rehash("", &FAST));
  assert_true(rm_pw_needs_rehash(NULL, &FAST));
  assert_true(rm_pw_needs_rehash(h, NULL));
  /* Same costs, but another salt or hash length (an imported hash). */
  assert_true(rm_pw_needs_rehash("$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$"
                                 "iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A",
                                 &FAST));
  assert_true(rm_pw_needs_rehash("$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$"
                                 "iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A",
                                 &FAST));
}

static void test_reads_hashes_made_elsewhere(void **state) {
  (void)state;
  /* The reference implementation's own vector (phc-winner-argon2,
   * src/test.c): "password", salt "somesalt", t=2, m=2^16, p=1. */
  const char *ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$"
                    "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
  assert_int_equal(rm_pw_verify(ref, "password"), 0);
  assert_int_equal(rm_pw_verify(ref, "passwort"), RM_EDENIED);
  const rm_pw_params def = RM_PW_PARAMS_DEFAULT;
  assert_true(rm_pw_needs_rehash(ref, &def));
}

static void test_params_are_checked(void **state) {
  (void)state;
  char err[200];
  const rm_pw_params def = RM_PW_PARAMS_DEFAULT;
  assert_int_equal(rm_pw_params_check(&def, err, sizeof err), 0);
  assert_int_equal(rm_pw_params_check(&FAST, err, sizeof err), 0);
  const struct {
    rm_pw_params p;
    const char *field;
  } bad[] = {
      {{0, 256, 1}, "t_cost"},
      {{65, 256, 1}, "t_cost"},
      {{1, 256, 0}, "parallelism"},
      {{1, 256, 17}, "parallelism"},
      {{1, 15, 2}, "m_cost_kib"},
      {{1, 7, 1}, "m_cost_kib"},
      {{1, 1024 * 1024 + 1, 1}, "m_cost_kib"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(rm_pw_params_check(&bad[i].p, err, sizeof err), RM_EINVAL);
    assert_non_null(strstr(err, bad[i].field));
    char h[RM_PW_ENCODED_MAX];
    assert_int_equal(rm_pw_hash(&bad[i].p, PASSWORD, h), RM_EINVAL);
  }
  assert_int_equal(rm_pw_params_check(NULL, err, sizeof err), RM_EINVAL);
  char h[RM_PW_ENCODED_MAX];
  assert_int_equal(rm_pw_hash(&FAST, NULL, h), RM_EINVAL);
  /* The dummy verification accepts what hashing accepts and ignores the rest. */
  rm_pw_verify_dummy(&FAST, PASSWORD);
  rm_pw_verify_dummy(&bad[0].p, PASSWORD);
  rm_pw_verify_dummy(&FAST, NULL);
  rm_pw_verify_dummy(NULL, PASSWORD);
}

static void assert_policy_refuses(const char *user, const char *pw, const char *why) {
  char err[200] = "";
  assert_int_equal(rm_pw_policy_check(user, pw, err, sizeof err), RM_EINVAL);
  assert_true(!strncmp(err, "password: ", 10));
  if (!strstr(err, why)) fail_msg("message '%s' lacks '%s'", err, why);
}

static void test_password_policy(void **state) {
  (void)state;
  char err[200];
  assert_int_equal(rm_pw_policy_check("alice", "0123456789", err, sizeof err), 0);
  assert_int_equal(rm_pw_policy_check(NULL, "0123456789", err, sizeof err), 0);
  assert_int_equal(rm_pw_policy_check("alice", PASSWORD, NULL, 0), 0);
  assert_policy_refuses("alice", "012345678", "at least 10 characters long (it has 9)");
  assert_policy_refuses("alice", "", "(it has 0)");
  assert_policy_refuses("alice", NULL, "required");
  /* Characters, not bytes: nine é are 18 bytes but 9 characters. */
  assert_policy_refuses("alice",
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                        "(it has 9)");
  assert_int_equal(rm_pw_policy_check("alice",
                                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                      "\xc3\xa9\xc3\xa9\xc3\xa9",
                                      err, sizeof err),
                   0);
  assert_policy_refuses("alice", "0123456789\xff", "UTF-8");
  assert_policy_refuses("alice", "\xc3(0123456789", "UTF-8");
  assert_policy_refuses("AdministratorX", "administratorx", "same as the username");
  assert_policy_refuses("administratorx", "administratorx", "same as the username");
  char big[RM_PW_MAX_BYTES + 2];
  memset(big, 'a', sizeof big - 1);
  big[RM_PW_MAX_BYTES + 1] = '\0';
  assert_policy_refuses("alice", big, "at most 1024 bytes");
  big[RM_PW_MAX_BYTES] = '\0';
  assert_int_equal(rm_pw_policy_check("alice", big, err, sizeof err), 0);
}

/* ------------------------------------------------------------ tokens */

static bool all_url_safe(const char *s) {
  for (; *s; s++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
      return false;
  return true;
}

static bool all_lower_hex(const char *s) {
  for (; *s; s++)
    if (!strchr("0123456789abcdef", *s)) return false;
  return true;
}

static void test_token_round_trip_and_hash(void **state) {
  (void)state;
  char a[RM_TOKEN_LEN + 1], b[RM_TOKEN_LEN + 1];
  char ha[RM_TOKEN_HASH_LEN + 1], ha2[RM_TOKEN_HASH_LEN + 1], hb[RM_TOKEN_HASH_LEN + 1];
  assert_int_equal(rm_token_new(a), 0);
  assert_int_equal(rm_token_new(b), 0);
  assert_int_equal(strlen(a), 43);
  assert_true(all_url_safe(a));
  assert_true(rm_token_well_formed(a, strlen(a)));
  assert_string_not_equal(a, b);
  assert_int_equal(rm_token_hash(a, strlen(a), ha), 0);
  assert_int_equal(rm_token_hash(a, strlen(a), ha2), 0);
  assert_int_equal(rm_token_hash(b, strlen(b), hb), 0);
  assert_int_equal(strlen(ha), 64);
  assert_true(all_lower_hex(ha));
  assert_string_equal(ha, ha2);
  assert_string_not_equal(ha, hb);
  assert_null(strstr(ha, a));
  assert_true(rm_token_hash_equal(ha, ha2));
  assert_false(rm_token_hash_equal(ha, hb));
}

static void test_token_hash_is_sha256_hex(void **state) {
  (void)state;
  char h[RM_TOKEN_HASH_LEN + 1];
  assert_int_equal(rm_token_hash("abc", 3, h), 0);
  assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_int_equal(rm_token_hash("", 0, h), 0);
  assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_token_shape_and_hash_comparison_edges(void **state) {
  (void)state;
  const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";
  assert_int_equal(strlen(ok), 43);
  assert_true(rm_token_well_formed(ok, 43));
  assert_false(rm_token_well_formed(ok, 42));
  assert_false(rm_token_well_formed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_ZZ", 44));
  assert_false(rm_token_well_formed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123+_Z", 43));
  assert_false(rm_token_well_formed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123/_Z", 43));
  assert_false(rm_token_well_formed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_=", 43));
  assert_false(rm_token_well_formed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123- Z", 43));
  assert_false(rm_token_well_formed(NULL, 43));
  char h[RM_TOKEN_HASH_LEN + 1], g[RM_TOKEN_HASH_LEN + 1];
  assert_int_equal(rm_token_hash(ok, 43, h), 0);
  strcpy(g, h);
  g[63] = g[63] == '0' ? '1' : '0';
  assert_false(rm_token_hash_equal(h, g));
  g[63] = '\0';
  assert_false(rm_token_hash_equal(h, g));
  assert_false(rm_token_hash_equal(h, NULL));
  assert_false(rm_token_hash_equal(NULL, NULL));
  assert_false(rm_token_hash_equal("", ""));
}

static void test_api_key_round_trip(void **state) {
  (void)state;
  for (int round = 0; round < 20; round++) {
    char key[RM_APIKEY_LEN + 1], id[RM_APIKEY_ID_LEN + 1], hash[RM_TOKEN_HASH_LEN + 1];
    assert_int_equal(rm_apikey_new(key, id, hash), 0);
    assert_int_equal(strlen(key), 56);
    assert_true(!strncmp(key, "rmk_", 4));
    assert_int_equal(strlen(id), 8);
    assert_int_equal(strspn(id, "abcdefghijklmnopqrstuvwxyz234567"), 8);
    assert_true(!strncmp(key + 4, id, 8));
    assert_int_equal(key[12], '_');
    assert_null(strstr(key, hash));
    rm_apikey k;
    assert_int_equal(rm_apikey_parse(key, strlen(key), &k), 0);
    assert_string_equal(k.id, id);
    assert_string_equal(k.secret, key + 13);
    assert_int_equal(rm_apikey_verify(&k, hash), 0);
    /* The stored hash is the secret's token hash. */
    char th[RM_TOKEN_HASH_LEN + 1];
    assert_int_equal(rm_token_hash(key + 13, 43, th), 0);
    assert_string_equal(th, hash);
    /* Another secret with the same id does not pass. */
    k.secret[20] = k.secret[20] == 'A' ? 'B' : 'A';
    assert_int_equal(rm_apikey_verify(&k, hash), RM_EDENIED);
    assert_int_equal(rm_apikey_verify(&k, ""), RM_EDENIED);
    assert_int_equal(rm_apikey_verify(&k, NULL), RM_EDENIED);
  }
}

static void test_api_key_parse_refuses_malformed_keys(void **state) {
  (void)state;
  const char *good = "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";
  rm_apikey k;
  assert_int_equal(rm_apikey_parse(good, strlen(good), &k), 0);
  assert_string_equal(k.id, "abcd2345");
  /* A secret may hold '_' right after the separator. */
  const char *under = "rmk_abcd2345__bcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";
  assert_int_equal(rm_apikey_parse(under, strlen(under), &k), 0);
  assert_true(k.secret[0] == '_');
  const char *bad[] = {
      "",
      "rmk_",
      "rmk_abcd2345_",
      "rmx_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* prefix */
      "RMK_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* prefix case */
      "rmk-abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* prefix separator */
      "rmk_abcd234_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_ZZ",   /* id of 7 */
      "rmk_abcd23456abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* no separator */
      "rmk_ABCD2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* id case */
      "rmk_abcd0145_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* 0, 1 not base32 */
      "rmk_abcd-345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* '-' in id */
      "rmk_abcd_345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",   /* '_' in id */
      "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_",    /* secret of 42 */
      "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_ZZ",  /* secret of 44 */
      "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123+_Z",   /* standard base64 */
      "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_=",   /* padding */
      " rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",  /* space before */
      "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z\n", /* newline after */
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z",                /* a session token */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (rm_apikey_parse(bad[i], strlen(bad[i]), &k) != RM_EPARSE) fail_msg("accepted '%s'", bad[i]);
  /* Lengths are taken from n, so a NUL inside is not a shorter key. */
  char nul[64];
  memcpy(nul, good, 57);
  nul[30] = '\0';
  assert_int_equal(rm_apikey_parse(nul, 56, &k), RM_EPARSE);
  assert_int_equal(rm_apikey_parse(good, 55, &k), RM_EPARSE);
  assert_int_equal(rm_apikey_parse(NULL, 56, &k), RM_EPARSE);
}

static void assert_bearer(const char *value, int want_rc, const char *want_cred) {
  const char *cred = NULL;
  size_t len = 0;
  int rc = rm_auth_bearer(value, &cred, &len);
  if (rc != want_rc) fail_msg("'%s': got %d, want %d", value ? value : "(null)", rc, want_rc);
  if (!want_cred) return;
  assert_int_equal(len, strlen(want_cred));
  assert_memory_equal(cred, want_cred, len);
}

static void test_bearer_header_parsing(void **state) {
  (void)state;
  assert_bearer("Bearer abc", 0, "abc");
  assert_bearer("bearer abc", 0, "abc");
  assert_bearer("BEARER   abc", 0, "abc");
  assert_bearer(" \tBearer abc \t", 0, "abc");
  assert_bearer("Bearer abc==", 0, "abc==");
  assert_bearer("Bearer a.b~c+d/e-f_g", 0, "a.b~c+d/e-f_g");
  assert_bearer("Bearer rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z", 0,
                "rmk_abcd2345_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z");
  /* No credential of ours: not an error, just nothing there. */
  assert_bearer(NULL, RM_ENOTFOUND, NULL);
  assert_bearer("", RM_ENOTFOUND, NULL);
  assert_bearer("  \t ", RM_ENOTFOUND, NULL);
  assert_bearer("Basic dXNlcjpwYXNz", RM_ENOTFOUND, NULL);
  assert_bearer("Bearerabc", RM_ENOTFOUND, NULL);
  assert_bearer("Beare abc", RM_ENOTFOUND, NULL);
  assert_bearer("Token abc", RM_ENOTFOUND, NULL);
  /* Bearer, but not a token. */
  assert_bearer("Bearer", RM_EPARSE, NULL);
  assert_bearer("Bearer   ", RM_EPARSE, NULL);
  assert_bearer("Bearer a b", RM_EPARSE, NULL);
  assert_bearer("Bearer =abc", RM_EPARSE, NULL);
  assert_bearer("Bearer ab=c", RM_EPARSE, NULL);
  assert_bearer("Bearer a,b", RM_EPARSE, NULL);
  assert_bearer("Bearer \"abc\"", RM_EPARSE, NULL);
  assert_bearer("Bearer abc, Basic xyz", RM_EPARSE, NULL);
}

static const char *const TOK = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z";

static void assert_cookie(const char *header, const char *name, int want_rc, const char *want) {
  const char *v = NULL;
  size_t len = 0;
  int rc = rm_auth_cookie(header, name, &v, &len);
  if (rc != want_rc) fail_msg("'%s': got %d, want %d", header ? header : "(null)", rc, want_rc);
  if (!want) return;
  assert_int_equal(len, strlen(want));
  assert_memory_equal(v, want, len);
}

static void test_cookie_header_parsing(void **state) {
  (void)state;
  char h[256];
  snprintf(h, sizeof h, "restmon_session=%s", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, 0, TOK);
  snprintf(h, sizeof h, "theme=dark; restmon_session=%s; lang=en", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, 0, TOK);
  snprintf(h, sizeof h, "theme=dark;restmon_session=%s;", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, 0, TOK);
  snprintf(h, sizeof h, "  restmon_session = %s  ", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, 0, TOK);
  snprintf(h, sizeof h, "restmon_session=\"%s\"", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, 0, TOK);
  assert_cookie("a=1; b=x=y", "b", 0, "x=y");
  assert_cookie("a=; b=2", "a", 0, "");
  assert_cookie("a=\"", "a", 0, "\"");
  /* Other names, near misses and nothing at all. */
  snprintf(h, sizeof h, "xrestmon_session=%s; restmon_session_old=%s; Restmon_session=%s", TOK, TOK,
           TOK);
  assert_cookie(h, RM_SESSION_COOKIE, RM_ENOTFOUND, NULL);
  assert_cookie("restmon_session", RM_SESSION_COOKIE, RM_ENOTFOUND, NULL);
  assert_cookie("", RM_SESSION_COOKIE, RM_ENOTFOUND, NULL);
  assert_cookie(";;; ;", RM_SESSION_COOKIE, RM_ENOTFOUND, NULL);
  assert_cookie(NULL, RM_SESSION_COOKIE, RM_ENOTFOUND, NULL);
  assert_cookie("a=1", "", RM_ENOTFOUND, NULL);
  /* The name twice: refused, whichever comes first. */
  snprintf(h, sizeof h, "restmon_session=%s; restmon_session=%s", TOK, TOK);
  assert_cookie(h, RM_SESSION_COOKIE, RM_EPARSE, NULL);
  snprintf(h, sizeof h, "restmon_session=; a=1; restmon_session=%s", TOK);
  assert_cookie(h, RM_SESSION_COOKIE, RM_EPARSE, NULL);

  /* The session cookie must also hold a token. */
  const char *tok;
  size_t len;
  snprintf(h, sizeof h, "a=1; restmon_session=%s", TOK);
  assert_int_equal(rm_auth_session_cookie(h, &tok, &len), 0);
  assert_int_equal(len, 43);
  assert_memory_equal(tok, TOK, 43);
  assert_int_equal(rm_auth_session_cookie("restmon_session=", &tok, &len), RM_EPARSE);
  assert_int_equal(rm_auth_session_cookie("restmon_session=abc", &tok, &len), RM_EPARSE);
  snprintf(h, sizeof h, "restmon_session=%s%%", TOK);
  assert_int_equal(rm_auth_session_cookie(h, &tok, &len), RM_EPARSE);
  assert_int_equal(rm_auth_session_cookie("a=1", &tok, &len), RM_ENOTFOUND);
}

static void test_session_set_cookie(void **state) {
  (void)state;
  char out[200];
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, TOK, 3600, true), 0);
  assert_string_equal(out, "restmon_session=abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_Z; Path=/; "
                           "Max-Age=3600; HttpOnly; SameSite=Lax; Secure");
  /* What the browser sends back is what the parser reads. */
  const char *tok;
  size_t len;
  assert_int_equal(rm_auth_session_cookie(out, &tok, &len), 0);
  assert_memory_equal(tok, TOK, 43);
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, TOK, 60, false), 0);
  assert_null(strstr(out, "Secure"));
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, NULL, 3600, true), 0);
  assert_string_equal(out, "restmon_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
  /* No lifetime: a cookie for the browser session. */
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, TOK, 0, true), 0);
  assert_null(strstr(out, "Max-Age"));
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, TOK, -5, true), 0);
  assert_null(strstr(out, "Max-Age"));
  assert_int_equal(rm_auth_session_set_cookie(out, 40, TOK, 3600, true), RM_ETOOBIG);
  assert_int_equal(rm_auth_session_set_cookie(out, sizeof out, "abc; Domain=evil", 1, true),
                   RM_EINVAL);
}

/* ------------------------------------------------------------ roles */

static const char *const ROLES[] = {"admin", "full_designer", "super_operator",
                                    "read_only_operator", "read_only_designer"};
static const char *const MODULES[] = {"tasks",    "workflows", "runs",    "schedules",
                                      "monitors", "channels",  "secrets", "users",
                                      "api_keys", "config",    "audit",   "signals"};
static const char *const ACTIONS[] = {"view",     "create",      "edit",   "delete",
                                      "execute",  "rerun",       "resume", "cancel",
                                      "annotate", "acknowledge", "publish"};
#define N(a) (sizeof a / sizeof a[0])

/* Whether word is one of the space-separated words in list. */
static bool one_of(const char *word, const char *list) {
  size_t n = strlen(word);
  for (const char *p = list; *p;) {
    size_t k = strcspn(p, " ");
    if (k == n && !strncmp(p, word, n)) return true;
    p += k;
    p += strspn(p, " ");
  }
  return false;
}

/* Which actions mean something for each module. */
static bool expect_applies(const char *m, const char *a) {
  static const char *const rows[][2] = {
      {"tasks", "view create edit delete execute"},
      {"workflows", "view create edit delete execute publish"},
      {"runs", "view delete rerun resume cancel annotate acknowledge"},
      {"schedules", "view create edit delete"},
      {"monitors", "view create edit delete execute"},
      {"channels", "view create edit delete execute"},
      {"secrets", "view create edit delete"},
      {"users", "view create edit delete"},
      {"api_keys", "view create delete"},
      {"config", "view edit"},
      {"audit", "view"},
      {"signals", "view create annotate acknowledge"},
  };
  for (size_t i = 0; i < N(rows); i++)
    if (!strcmp(rows[i][0], m)) return one_of(a, rows[i][1]);
  return false;
}

/* The rules of DESIGN.md, stated as rules rather than as a table. */
static bool expect_allowed(const char *role, const char *m, const char *a) {
  if (!expect_applies(m, a)) return false;
  if (!strcmp(role, "admin")) return true;
  /* Only admins manage users and configuration and read the audit log. */
  if (one_of(m, "users config audit")) return false;
  bool full_designer = !strcmp(role, "full_designer");
  bool super_operator = !strcmp(role, "super_operator");
  if (!strcmp(a, "view")) {
    /* Channel targets and secret names are design detail operators do not see. */
    if (one_of(m, "channels secrets")) return full_designer || !strcmp(role, "read_only_designer");
    return true;
  }
  /* Read-only roles never change anything. */
  if (!full_designer && !super_operator) return false;
  /* Run records are removed by admins (and retention) only. */
  if (!strcmp(m, "runs") && !strcmp(a, "delete")) return false;
  /* Acting on what exists, without new inputs: designers and super operators. */
  if (one_of(a, "rerun resume cancel annotate acknowledge")) return true;
  /* Own API keys, e.g. to acknowledge from a paging tool. */
  if (!strcmp(m, "api_keys")) return true;
  /* Feeding observations (metric values, events) into signals: operators too. */
  if (!strcmp(m, "signals") && !strcmp(a, "create")) return true;
  /* Changing the design, and starting anything with new inputs: designers. */
  return full_designer;
}

static enum rm_role role_of(const char *s) {
  enum rm_role r;
  assert_int_equal(rm_rbac_role_parse(s, &r), 0);
  return r;
}
static enum rm_module module_of(const char *s) {
  enum rm_module m;
  assert_int_equal(rm_rbac_module_parse(s, &m), 0);
  return m;
}
static enum rm_action action_of(const char *s) {
  enum rm_action a;
  assert_int_equal(rm_rbac_action_parse(s, &a), 0);
  return a;
}

static bool allowed(const char *role, const char *m, const char *a) {
  return rm_rbac_allowed(role_of(role), module_of(m), action_of(a));
}

static void test_every_cell_matches_the_rules(void **state) {
  (void)state;
  assert_int_equal(N(MODULES), RM_MOD_COUNT);
  assert_int_equal(N(ACTIONS), RM_ACT_COUNT);
  int cells = 0, applicable = 0;
  for (size_t m = 0; m < N(MODULES); m++)
    for (size_t a = 0; a < N(ACTIONS); a++) {
      bool applies = expect_applies(MODULES[m], ACTIONS[a]);
      assert_int_equal(rm_rbac_applies(module_of(MODULES[m]), action_of(ACTIONS[a])), applies);
      applicable += applies;
      for (size_t r = 0; r < N(ROLES); r++, cells++) {
        bool want = expect_allowed(ROLES[r], MODULES[m], ACTIONS[a]);
        if (allowed(ROLES[r], MODULES[m], ACTIONS[a]) != want)
          fail_msg("%s %s %s: table says %s", ROLES[r], ACTIONS[a], MODULES[m],
                   want ? "no" : "yes");
      }
    }
  assert_int_equal(cells, 5 * 12 * 11);
  assert_int_equal(applicable, 50);
}

static void test_design_sentences_hold(void **state) {
  (void)state;
  /* "Super Operator may rerun any finished run, resume a failed run,
   * cancel, annotate and acknowledge" */
  const char *ops[] = {"rerun", "resume", "cancel", "annotate", "acknowledge"};
  for (size_t i = 0; i < N(ops); i++) assert_true(allowed("super_operator", "runs", ops[i]));
  assert_true(allowed("super_operator", "signals", "acknowledge"));
  /* "starting a run with new inputs is for Full Designer and Admin" */
  assert_true(allowed("admin", "workflows", "execute"));
  assert_true(allowed("full_designer", "workflows", "execute"));
  assert_false(allowed("super_operator", "workflows", "execute"));
  assert_false(allowed("super_operator", "tasks", "execute"));
  /* "Read-Only Operator takes no action"; neither does the read-only designer. */
  for (size_t m = 0; m < N(MODULES); m++)
    for (size_t a = 0; a < N(ACTIONS); a++) {
      if (!strcmp(ACTIONS[a], "view")) continue;
      assert_false(allowed("read_only_operator", MODULES[m], ACTIONS[a]));
      assert_false(allowed("read_only_designer", MODULES[m], ACTIONS[a]));
    }
  /* Designers edit the design but not users or configuration. */
  assert_true(allowed("full_designer", "workflows", "publish"));
  assert_true(allowed("full_designer", "secrets", "edit"));
  const char *admin_only[][2] = {{"users", "view"},   {"users", "create"}, {"users", "edit"},
                                 {"users", "delete"}, {"config", "view"},  {"config", "edit"},
                                 {"audit", "view"}};
  for (size_t i = 0; i < N(admin_only); i++)
    for (size_t r = 0; r < N(ROLES); r++)
      assert_int_equal(allowed(ROLES[r], admin_only[i][0], admin_only[i][1]),
                       !strcmp(ROLES[r], "admin"));
}

static void test_out_of_range_values_are_denied(void **state) {
  (void)state;
  for (int m = 0; m < RM_MOD_COUNT; m++)
    for (int a = 0; a < RM_ACT_COUNT; a++) {
      assert_false(rm_rbac_allowed(RM_ROLE_NONE, (enum rm_module)m, (enum rm_action)a));
      assert_false(rm_rbac_allowed((enum rm_role)6, (enum rm_module)m, (enum rm_action)a));
      assert_false(rm_rbac_allowed((enum rm_role) - 1, (enum rm_module)m, (enum rm_action)a));
    }
  assert_false(rm_rbac_allowed(RM_ROLE_ADMIN, RM_MOD_COUNT, RM_ACT_VIEW));
  assert_false(rm_rbac_allowed(RM_ROLE_ADMIN, (enum rm_module) - 1, RM_ACT_VIEW));
  assert_false(rm_rbac_allowed(RM_ROLE_ADMIN, RM_MOD_TASKS, RM_ACT_COUNT));
  assert_false(rm_rbac_allowed(RM_ROLE_ADMIN, RM_MOD_TASKS, (enum rm_action) - 1));
  assert_false(rm_rbac_applies(RM_MOD_COUNT, RM_ACT_VIEW));
  assert_null(rm_rbac_role_name(RM_ROLE_NONE));
  assert_null(rm_rbac_role_name((enum rm_role)6));
  assert_null(rm_rbac_role_title((enum rm_role) - 1));
  assert_null(rm_rbac_module_name(RM_MOD_COUNT));
  assert_null(rm_rbac_action_name(RM_ACT_COUNT));
  assert_null(rm_rbac_scope_name((enum rm_scope)0));
  assert_null(rm_rbac_scope_name((enum rm_scope)3));
}

static void test_role_ids_parse_exactly(void **state) {
  (void)state;
  /* Pinned numbers: they may be stored or sent. */
  assert_int_equal(role_of("admin"), 1);
  assert_int_equal(role_of("full_designer"), 2);
  assert_int_equal(role_of("super_operator"), 3);
  assert_int_equal(role_of("read_only_operator"), 4);
  assert_int_equal(role_of("read_only_designer"), 5);
  for (size_t r = 0; r < N(ROLES); r++) {
    assert_string_equal(rm_rbac_role_name(role_of(ROLES[r])), ROLES[r]);
    assert_non_null(rm_rbac_role_title(role_of(ROLES[r])));
  }
  assert_string_equal(rm_rbac_role_title(RM_ROLE_READ_ONLY_DESIGNER), "Read-Only Designer");
  const char *bad[] = {"Admin",    " admin",        "admin ",
                       "",         "none",          "read-only-operator",
                       "operator", "full designer", "administrator"};
  enum rm_role r = RM_ROLE_ADMIN;
  for (size_t i = 0; i < N(bad); i++) assert_int_equal(rm_rbac_role_parse(bad[i], &r), RM_EINVAL);
  assert_int_equal(rm_rbac_role_parse(NULL, &r), RM_EINVAL);
  assert_int_equal(r, RM_ROLE_ADMIN); /* untouched on failure */
  for (size_t m = 0; m < N(MODULES); m++)
    assert_string_equal(rm_rbac_module_name(module_of(MODULES[m])), MODULES[m]);
  for (size_t a = 0; a < N(ACTIONS); a++)
    assert_string_equal(rm_rbac_action_name(action_of(ACTIONS[a])), ACTIONS[a]);
  enum rm_module m;
  enum rm_action a;
  assert_int_equal(rm_rbac_module_parse("Tasks", &m), RM_EINVAL);
  assert_int_equal(rm_rbac_module_parse("apikeys", &m), RM_EINVAL);
  assert_int_equal(rm_rbac_action_parse("retry", &a), RM_EINVAL);
  enum rm_scope s;
  assert_int_equal(rm_rbac_scope_parse("global", &s), 0);
  assert_int_equal(s, RM_SCOPE_GLOBAL);
  assert_int_equal(rm_rbac_scope_parse("private", &s), 0);
  assert_int_equal(s, RM_SCOPE_PRIVATE);
  assert_string_equal(rm_rbac_scope_name(RM_SCOPE_PRIVATE), "private");
  assert_int_equal(rm_rbac_scope_parse("public", &s), RM_EINVAL);
  assert_int_equal(rm_rbac_scope_parse(NULL, &s), RM_EINVAL);
}

static void test_private_objects_are_for_owner_and_admin(void **state) {
  (void)state;
  for (size_t r = 0; r < N(ROLES); r++) {
    enum rm_role role = role_of(ROLES[r]);
    bool admin = role == RM_ROLE_ADMIN;
    assert_true(rm_rbac_visible(role, "u1", "u2", RM_SCOPE_GLOBAL));
    assert_true(rm_rbac_visible(role, "u1", NULL, RM_SCOPE_GLOBAL));
    assert_true(rm_rbac_visible(role, "u1", "u1", RM_SCOPE_PRIVATE));
    assert_int_equal(rm_rbac_visible(role, "u1", "u2", RM_SCOPE_PRIVATE), admin);
    assert_int_equal(rm_rbac_visible(role, "u1", "u10", RM_SCOPE_PRIVATE), admin);
    assert_int_equal(rm_rbac_visible(role, "u1", NULL, RM_SCOPE_PRIVATE), admin);
    assert_int_equal(rm_rbac_visible(role, NULL, NULL, RM_SCOPE_PRIVATE), admin);
    assert_int_equal(rm_rbac_visible(role, NULL, "u1", RM_SCOPE_PRIVATE), admin);
    /* An unknown scope is private. */
    assert_int_equal(rm_rbac_visible(role, "u1", "u2", (enum rm_scope)0), admin);
    assert_int_equal(rm_rbac_visible(role, "u1", "u2", (enum rm_scope)99), admin);
  }
  assert_false(rm_rbac_visible(RM_ROLE_NONE, "u1", "u1", RM_SCOPE_GLOBAL));
  assert_false(rm_rbac_visible(RM_ROLE_NONE, "u1", "u1", RM_SCOPE_PRIVATE));

  /* Both checks at once. */
  assert_true(rm_rbac_allowed_on(RM_ROLE_FULL_DESIGNER, "u1", RM_MOD_TASKS, RM_ACT_EDIT, "u1",
                                 RM_SCOPE_PRIVATE));
  assert_false(rm_rbac_allowed_on(RM_ROLE_FULL_DESIGNER, "u1", RM_MOD_TASKS, RM_ACT_EDIT, "u2",
                                  RM_SCOPE_PRIVATE));
  assert_true(rm_rbac_allowed_on(RM_ROLE_FULL_DESIGNER, "u1", RM_MOD_TASKS, RM_ACT_EDIT, "u2",
                                 RM_SCOPE_GLOBAL));
  assert_true(
      rm_rbac_allowed_on(RM_ROLE_ADMIN, "u9", RM_MOD_SECRETS, RM_ACT_EDIT, "u2", RM_SCOPE_PRIVATE));
  assert_true(rm_rbac_allowed_on(RM_ROLE_READ_ONLY_DESIGNER, "u1", RM_MOD_WORKFLOWS, RM_ACT_VIEW,
                                 "u1", RM_SCOPE_PRIVATE));
  assert_false(rm_rbac_allowed_on(RM_ROLE_READ_ONLY_DESIGNER, "u1", RM_MOD_WORKFLOWS, RM_ACT_EDIT,
                                  "u1", RM_SCOPE_PRIVATE));
  assert_false(rm_rbac_allowed_on(RM_ROLE_SUPER_OPERATOR, "u1", RM_MOD_API_KEYS, RM_ACT_DELETE,
                                  "u2", RM_SCOPE_PRIVATE));
  assert_true(rm_rbac_allowed_on(RM_ROLE_SUPER_OPERATOR, "u1", RM_MOD_API_KEYS, RM_ACT_DELETE, "u1",
                                 RM_SCOPE_PRIVATE));
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, n, m);
  fclose(f);
  fclose(m);
  return buf;
}

static char *markdown(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  assert_non_null(m);
  assert_int_equal(rm_rbac_markdown(m), 0);
  fclose(m);
  return buf;
}

static void test_markdown_lists_every_applicable_cell(void **state) {
  (void)state;
  char *md = markdown();
  assert_true(!strncmp(md, "<!-- Generated by `restmon permissions`", 39));
  int rows = 0;
  for (const char *p = md; (p = strchr(p, '\n')); p++)
    if (p[1] == '|' && p[2] == ' ' && strncmp(p + 3, "module |", 8)) rows++;
  assert_int_equal(rows, 50);
  for (size_t r = 0; r < N(ROLES); r++) assert_non_null(strstr(md, ROLES[r]));
  assert_non_null(strstr(md, "| runs | rerun | start a new run of a finished run, same version and "
                             "inputs | yes | yes | yes | - | - |"));
  assert_non_null(strstr(md, "| audit | view | read the audit log | yes | - | - | - | - |"));
  free(md);
}

static void test_permissions_doc_is_generated_from_the_table(void **state) {
  (void)state;
  char *md = markdown();
  char *doc = slurp("docs/permissions.md");
  bool same = doc && !strcmp(doc, md);
  free(md);
  if (!doc) fail_msg("cannot read docs/permissions.md (run the tests from the repository root)");
  free(doc);
  if (!same)
    fail_msg("docs/permissions.md differs from the table in core/auth/rbac.c: regenerate it with "
             "`restmon permissions > docs/permissions.md`");
}

/* ------------------------------------------------------------ rate limits */

#define MIN_MS (60 * 1000ull)

static void test_locks_after_max_failures_in_a_sliding_window(void **state) {
  (void)state;
  rm_ratelimit rl;
  const rm_ratelimit_params p = {5, 15 * MIN_MS, 16};
  assert_int_equal(rm_ratelimit_init(&rl, &p), 0);
  uint64_t retry = 0;
  for (uint64_t t = 0; t < 4; t++) {
    assert_int_equal(rm_ratelimit_check(&rl, "alice", t * 1000, &retry), 0);
    assert_int_equal(rm_ratelimit_fail(&rl, "alice", t * 1000), 0);
  }
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 4000, &retry), 0);
  assert_int_equal(rm_ratelimit_fail(&rl, "alice", 4000), 0);
  /* Five failures at 0..4 s: locked until the one at 0 is 15 minutes old. */
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 4000, &retry), RM_EDENIED);
  assert_int_equal(retry, 15 * MIN_MS - 4000);
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 15 * MIN_MS - 1, &retry), RM_EDENIED);
  assert_int_equal(retry, 1);
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 15 * MIN_MS, NULL), 0);
  /* The window slides: one more failure, and the one at 1 s decides. */
  assert_int_equal(rm_ratelimit_fail(&rl, "alice", 15 * MIN_MS), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 15 * MIN_MS, &retry), RM_EDENIED);
  assert_int_equal(retry, 1000);
  /* Other keys are untouched. */
  assert_int_equal(rm_ratelimit_check(&rl, "bob", 4000, NULL), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "Alice", 4000, NULL), 0);
  /* A reset forgets everything. */
  assert_int_equal(rm_ratelimit_reset(&rl, "alice"), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "alice", 15 * MIN_MS, NULL), 0);
  assert_int_equal(rm_ratelimit_reset(&rl, "nobody"), 0);
  rm_ratelimit_close(&rl);
}

static void test_spread_out_failures_never_lock(void **state) {
  (void)state;
  rm_ratelimit rl;
  const rm_ratelimit_params p = {5, 15 * MIN_MS, 16};
  assert_int_equal(rm_ratelimit_init(&rl, &p), 0);
  for (uint64_t i = 0; i < 100; i++) {
    uint64_t now = i * 4 * MIN_MS; /* at most 4 in any 15 minutes */
    assert_int_equal(rm_ratelimit_check(&rl, "alice", now, NULL), 0);
    assert_int_equal(rm_ratelimit_fail(&rl, "alice", now), 0);
  }
  assert_int_equal(rm_ratelimit_count(&rl, 400 * MIN_MS), 1);
  assert_int_equal(rm_ratelimit_count(&rl, 411 * MIN_MS), 0);
  rm_ratelimit_close(&rl);
}

static void test_memory_is_bounded_and_the_oldest_key_goes(void **state) {
  (void)state;
  rm_ratelimit rl;
  const rm_ratelimit_params p = {1, 15 * MIN_MS, 3};
  assert_int_equal(rm_ratelimit_init(&rl, &p), 0);
  const char *keys[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(rm_ratelimit_fail(&rl, keys[i], 1000 + (uint64_t)i), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(rm_ratelimit_check(&rl, keys[i], 2000, NULL), RM_EDENIED);
  assert_int_equal(rm_ratelimit_count(&rl, 2000), 3);
  /* A fourth key takes the slot of "a", whose failure is oldest. */
  assert_int_equal(rm_ratelimit_fail(&rl, "d", 3000), 0);
  assert_int_equal(rm_ratelimit_count(&rl, 3000), 3);
  assert_int_equal(rm_ratelimit_check(&rl, "a", 3000, NULL), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "b", 3000, NULL), RM_EDENIED);
  assert_int_equal(rm_ratelimit_check(&rl, "d", 3000, NULL), RM_EDENIED);
  /* A new failure makes "b" recent: "c" goes next. */
  assert_int_equal(rm_ratelimit_fail(&rl, "b", 4000), 0);
  assert_int_equal(rm_ratelimit_fail(&rl, "e", 5000), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "c", 5000, NULL), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "b", 5000, NULL), RM_EDENIED);
  assert_int_equal(rm_ratelimit_check(&rl, "e", 5000, NULL), RM_EDENIED);
  /* A reset frees a slot, which the next key takes before evicting anyone. */
  assert_int_equal(rm_ratelimit_reset(&rl, "d"), 0);
  assert_int_equal(rm_ratelimit_fail(&rl, "f", 6000), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "b", 6000, NULL), RM_EDENIED);
  assert_int_equal(rm_ratelimit_check(&rl, "e", 6000, NULL), RM_EDENIED);
  assert_int_equal(rm_ratelimit_check(&rl, "f", 6000, NULL), RM_EDENIED);
  /* Long keys are keys like any other. */
  char long_key[5000];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  assert_int_equal(rm_ratelimit_fail(&rl, long_key, 7000), 0);
  assert_int_equal(rm_ratelimit_check(&rl, long_key, 7000, NULL), RM_EDENIED);
  long_key[4000] = 'x';
  assert_int_equal(rm_ratelimit_check(&rl, long_key, 7000, NULL), 0);
  assert_int_equal(rm_ratelimit_count(&rl, 7000 + 15 * MIN_MS), 0);
  rm_ratelimit_close(&rl);
}

static void test_clock_stepping_back_keeps_the_lock(void **state) {
  (void)state;
  rm_ratelimit rl;
  const rm_ratelimit_params p = {2, 10000, 4};
  assert_int_equal(rm_ratelimit_init(&rl, &p), 0);
  assert_int_equal(rm_ratelimit_fail(&rl, "k", 50000), 0);
  assert_int_equal(rm_ratelimit_fail(&rl, "k", 40000), 0);
  uint64_t retry = 0;
  assert_int_equal(rm_ratelimit_check(&rl, "k", 45000, &retry), RM_EDENIED);
  assert_int_equal(retry, 5000);
  assert_int_equal(rm_ratelimit_check(&rl, "k", 30000, &retry), RM_EDENIED);
  assert_int_equal(retry, 20000);
  assert_int_equal(rm_ratelimit_check(&rl, "k", 50000, NULL), 0);
  rm_ratelimit_close(&rl);
}

static void test_bad_limiter_params_are_refused(void **state) {
  (void)state;
  rm_ratelimit rl;
  const rm_ratelimit_params bad[] = {
      {0, 1000, 4}, {65, 1000, 4}, {5, 0, 4}, {5, 1000, 0}, {64, 1000, SIZE_MAX / 8}};
  for (size_t i = 0; i < N(bad); i++) assert_int_equal(rm_ratelimit_init(&rl, &bad[i]), RM_EINVAL);
  assert_int_equal(rm_ratelimit_init(&rl, NULL), RM_EINVAL);
  /* After a failed init or a close: harmless, holds nothing. */
  rm_ratelimit_close(&rl);
  assert_int_equal(rm_ratelimit_fail(&rl, "k", 1), 0);
  assert_int_equal(rm_ratelimit_check(&rl, "k", 1, NULL), 0);
  assert_int_equal(rm_ratelimit_count(&rl, 1), 0);
  rm_login_guard g;
  rm_login_guard_params gp = RM_LOGIN_GUARD_DEFAULT;
  gp.addr.window_ms = 0;
  assert_int_equal(rm_login_guard_init(&g, &gp), RM_EINVAL);
  assert_int_equal(rm_login_guard_init(&g, NULL), RM_EINVAL);
}

static void test_retry_after_is_whole_seconds_rounded_up(void **state) {
  (void)state;
  assert_int_equal(rm_ratelimit_retry_after_s(0), 1);
  assert_int_equal(rm_ratelimit_retry_after_s(1), 1);
  assert_int_equal(rm_ratelimit_retry_after_s(1000), 1);
  assert_int_equal(rm_ratelimit_retry_after_s(1001), 2);
  assert_int_equal(rm_ratelimit_retry_after_s(896000), 896);
  assert_int_equal(rm_ratelimit_retry_after_s(UINT64_MAX), UINT32_MAX);
  char msg[80];
  assert_string_equal(rm_login_guard_message(896, msg, sizeof msg),
                      "too many failed login attempts; retry after 896 s");
}

static void assert_addr_key(const char *addr, const char *want) {
  char out[64];
  rm_ratelimit_addr_key(addr, out);
  assert_string_equal(out, want);
}

static void test_address_keys(void **state) {
  (void)state;
  assert_addr_key("192.0.2.7", "192.0.2.7");
  assert_addr_key("::ffff:192.0.2.7", "192.0.2.7");
  assert_addr_key("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
  assert_addr_key("2001:DB8:1:2::9", "2001:db8:1:2::/64");
  assert_addr_key("::1", "::/64");
  assert_addr_key("unix:/run/restmon.sock", "unix:/run/restmon.sock");
  assert_addr_key(NULL, "");
}

static void test_login_guard_limits_users_and_addresses(void **state) {
  (void)state;
  rm_login_guard g;
  const rm_login_guard_params p = RM_LOGIN_GUARD_DEFAULT;
  assert_int_equal(rm_login_guard_init(&g, &p), 0);
  unsigned retry = 0;
  char addr[32];
  /* Five wrong passwords for one user, from five addresses. */
  for (int i = 0; i < 5; i++) {
    snprintf(addr, sizeof addr, "198.51.100.%d", i);
    assert_int_equal(rm_login_guard_check(&g, "Alice", addr, 1000, &retry), 0);
    assert_int_equal(rm_login_guard_failed(&g, "Alice", addr, 1000), 0);
  }
  assert_int_equal(rm_login_guard_check(&g, "alice", "203.0.113.1", 2000, &retry), RM_EDENIED);
  assert_int_equal(retry, 899);
  assert_int_equal(rm_login_guard_check(&g, "ALICE", "203.0.113.1", 901000, &retry), 0);
  assert_int_equal(rm_login_guard_check(&g, "bob", "198.51.100.1", 2000, &retry), 0);

  /* Twenty failures from one /64, each for another name. */
  for (int i = 0; i < 20; i++) {
    char user[16], a6[48];
    snprintf(user, sizeof user, "user%d", i);
    snprintf(a6, sizeof a6, "2001:db8:0:7::%x", i + 1);
    assert_int_equal(rm_login_guard_check(&g, user, a6, 10000, &retry), 0);
    assert_int_equal(rm_login_guard_failed(&g, user, a6, 10000), 0);
  }
  assert_int_equal(rm_login_guard_check(&g, "carol", "2001:db8:0:7::ffff", 11000, &retry),
                   RM_EDENIED);
  assert_int_equal(retry, 899);
  assert_int_equal(rm_login_guard_check(&g, "carol", "2001:db8:0:8::1", 11000, &retry), 0);
  /* Both locked: the longer wait is reported. */
  assert_int_equal(rm_login_guard_check(&g, "alice", "2001:db8:0:7::1", 11000, &retry), RM_EDENIED);
  assert_int_equal(retry, 899);
  rm_login_guard_close(&g);
}

static void test_success_clears_the_user_but_not_the_address(void **state) {
  (void)state;
  rm_login_guard g;
  const rm_login_guard_params p = RM_LOGIN_GUARD_DEFAULT;
  assert_int_equal(rm_login_guard_init(&g, &p), 0);
  unsigned retry;
  for (int i = 0; i < 4; i++)
    assert_int_equal(rm_login_guard_failed(&g, "dave", "192.0.2.1", 1000), 0);
  assert_int_equal(rm_login_guard_succeeded(&g, "DAVE"), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(rm_login_guard_failed(&g, "dave", "192.0.2.1", 2000), 0);
  assert_int_equal(rm_login_guard_check(&g, "dave", "192.0.2.1", 3000, &retry), 0);
  /* The address has 8; 12 more (as other names) lock it despite the success. */
  for (int i = 0; i < 12; i++)
    assert_int_equal(rm_login_guard_failed(&g, "x", "192.0.2.1", 4000), 0);
  assert_int_equal(rm_login_guard_succeeded(&g, "dave"), 0);
  assert_int_equal(rm_login_guard_check(&g, "dave", "192.0.2.1", 5000, &retry), RM_EDENIED);
  assert_int_equal(retry, 896);
  rm_login_guard_close(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_verifies_the_right_password_only),
      cmocka_unit_test(test_hash_with_default_parameters),
      cmocka_unit_test(test_tampered_hash_strings_never_verify),
      cmocka_unit_test(test_overlong_password_is_refused_and_never_matches),
      cmocka_unit_test(test_rehash_when_parameters_change),
      cmocka_unit_test(test_reads_hashes_made_elsewhere),
      cmocka_unit_test(test_params_are_checked),
      cmocka_unit_test(test_password_policy),
      cmocka_unit_test(test_token_round_trip_and_hash),
      cmocka_unit_test(test_token_hash_is_sha256_hex),
      cmocka_unit_test(test_token_shape_and_hash_comparison_edges),
      cmocka_unit_test(test_api_key_round_trip),
      cmocka_unit_test(test_api_key_parse_refuses_malformed_keys),
      cmocka_unit_test(test_bearer_header_parsing),
      cmocka_unit_test(test_cookie_header_parsing),
      cmocka_unit_test(test_session_set_cookie),
      cmocka_unit_test(test_every_cell_matches_the_rules),
      cmocka_unit_test(test_design_sentences_hold),
      cmocka_unit_test(test_out_of_range_values_are_denied),
      cmocka_unit_test(test_role_ids_parse_exactly),
      cmocka_unit_test(test_private_objects_are_for_owner_and_admin),
      cmocka_unit_test(test_markdown_lists_every_applicable_cell),
      cmocka_unit_test(test_permissions_doc_is_generated_from_the_table),
      cmocka_unit_test(test_locks_after_max_failures_in_a_sliding_window),
      cmocka_unit_test(test_spread_out_failures_never_lock),
      cmocka_unit_test(test_memory_is_bounded_and_the_oldest_key_goes),
      cmocka_unit_test(test_clock_stepping_back_keeps_the_lock),
      cmocka_unit_test(test_bad_limiter_params_are_refused),
      cmocka_unit_test(test_retry_after_is_whole_seconds_rounded_up),
      cmocka_unit_test(test_address_keys),
      cmocka_unit_test(test_login_guard_limits_users_and_addresses),
      cmocka_unit_test(test_success_clears_the_user_but_not_the_address),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
