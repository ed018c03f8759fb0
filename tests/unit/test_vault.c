#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "secret/vault.h"
#include "util/err.h"
#include "util/text.h"

/* A 32-byte key in both accepted text forms, and its key id computed here
 * independently of the vault. */
#define HEX_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct fixture {
  char dir[64];
  char key_file[256]; /* in folders that do not exist yet */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->dir, "/tmp/rm-vault-test-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->key_file, sizeof f->key_file, "%s/etc/restmon/master.key", f->dir);
  unsetenv(RM_VAULT_KEY_ENV);
  *state = f;
  return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  fixture *f = *state;
  unsetenv(RM_VAULT_KEY_ENV);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void key_id_of(const unsigned char key[32], char out[9]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  assert_int_equal(EVP_Digest(key, 32, md, &n, EVP_sha256(), NULL), 1);
  for (int i = 0; i < 4; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void hex_key_bytes(unsigned char key[32]) {
  for (int i = 0; i < 32; i++) key[i] = (unsigned char)i;
}

static void write_file(const char *path, const char *content, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static char *read_text(const char *path) {
  static char buf[512]; /* one caller at a time, in tests only */
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

static mode_t mode_of(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static rm_vault *open_ok(const char *key_file) {
  rm_vault *v = NULL;
  char err[512] = "";
  int rc = rm_vault_open(&v, key_file, err, sizeof err);
  if (rc) fail_msg("rm_vault_open: %s", err);
  return v;
}

static char *encrypt_ok(const rm_vault *v, const void *p, size_t n, const char *aad) {
  char *ct = NULL;
  assert_int_equal(rm_vault_encrypt(v, p, n, aad, &ct), 0);
  assert_non_null(ct);
  return ct;
}

/* Decrypts ct and checks it gives want[0..n). */
static void assert_decrypts(const rm_vault *v, const char *ct, const char *aad, const void *want,
                            size_t n) {
  char *plain = NULL, err[512] = "";
  size_t len = 99;
  int rc = rm_vault_decrypt(v, ct, aad, &plain, &len, err, sizeof err);
  if (rc) fail_msg("rm_vault_decrypt: %s", err);
  assert_int_equal(len, n);
  assert_memory_equal(plain, want, n);
  assert_int_equal(plain[n], '\0');
  rm_vault_free_plain(plain, len);
}

/* Decryption fails with rc and an err holding want (and never the value). */
static void assert_refused(const rm_vault *v, const char *ct, const char *aad, int rc,
                           const char *want, const char *value) {
  char *plain = (char *)"untouched", err[512] = "";
  size_t len = 99;
  int got = rm_vault_decrypt(v, ct, aad, &plain, &len, err, sizeof err);
  if (got != rc) fail_msg("decrypt gave %s (%s), expected %s", rm_errname(got), err, rm_errname(rc));
  assert_null(plain);
  assert_int_equal(len, 0);
  if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
  if (value) assert_null(strstr(err, value));
}

static void test_round_trip_of_empty_binary_and_long_values(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  unsigned char binary[256];
  for (int i = 0; i < 256; i++) binary[i] = (unsigned char)i;
  size_t long_len = 200000;
  unsigned char *long_value = malloc(long_len);
  for (size_t i = 0; i < long_len; i++) long_value[i] = (unsigned char)(i * 31 ^ i >> 8);

  char *ct = encrypt_ok(v, "", 0, "empty");
  assert_decrypts(v, ct, "empty", "", 0);
  free(ct);
  ct = encrypt_ok(v, NULL, 0, "");
  assert_decrypts(v, ct, "", "", 0);
  free(ct);
  ct = encrypt_ok(v, binary, sizeof binary, "api.token");
  assert_decrypts(v, ct, "api.token", binary, sizeof binary);
  free(ct);
  ct = encrypt_ok(v, long_value, long_len, "long");
  assert_decrypts(v, ct, "long", long_value, long_len);
  free(ct);

  /* The format: rmv1:<key id>:<16 chars of nonce>:<base64 of value + tag>. */
  ct = encrypt_ok(v, "hunter2", 7, "db_password");
  char prefix[32];
  snprintf(prefix, sizeof prefix, "rmv1:%s:", rm_vault_key_id(v));
  assert_memory_equal(ct, prefix, strlen(prefix));
  assert_int_equal(strlen(ct), strlen(prefix) + 16 + 1 + 32); /* 7 + 16 bytes -> 32 chars */
  assert_null(strstr(ct, "hunter2"));
  free(ct);

  assert_int_equal(rm_vault_encrypt(v, binary, RM_VAULT_MAX_PLAIN + 1, "x", &ct), RM_ETOOBIG);
  assert_null(ct);
  assert_int_equal(rm_vault_encrypt(v, binary, 1, NULL, &ct), RM_EINVAL);
  free(long_value);
  rm_vault_close(v);
}

static void test_wrong_secret_name_fails_authentication(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  char *ct = encrypt_ok(v, "s3cr3t-value", 12, "prod_db_password");
  assert_refused(v, ct, "staging_db_password", RM_EDENIED,
                 "authentication failed: wrong key, wrong secret name or tampered", "s3cr3t");
  assert_refused(v, ct, "Prod_db_password", RM_EDENIED, "authentication failed", "s3cr3t");
  assert_refused(v, ct, "", RM_EDENIED, "authentication failed", "s3cr3t");
  assert_decrypts(v, ct, "prod_db_password", "s3cr3t-value", 12);
  free(ct);
  rm_vault_close(v);
}

/* Flips one bit of byte i of the base64 field `field` (2 = nonce, 3 =
 * data) and re-encodes it, so the text stays well-formed. */
static char *flip_bit(const char *ct, int field, long i) {
  char *copy = strdup(ct), *parts[4], *save = NULL;
  parts[0] = strtok_r(copy, ":", &save);
  for (int k = 1; k < 4; k++) parts[k] = strtok_r(NULL, ":", &save);
  unsigned char bytes[256];
  int n = EVP_DecodeBlock(bytes, (const unsigned char *)parts[field], (int)strlen(parts[field]));
  n -= (int)(strchr(parts[field], '=') ? strlen(strchr(parts[field], '=')) : 0);
  assert_true(n > 0);
  bytes[i < 0 ? n + i : i] ^= 0x01;
  char *b64 = rm_base64_encode(bytes, (size_t)n, false);
  parts[field] = b64;
  char *out = malloc(strlen(ct) + 8);
  sprintf(out, "%s:%s:%s:%s", parts[0], parts[1], parts[2], parts[3]);
  free(b64);
  free(copy);
  return out;
}

static void test_tampered_ciphertext_nonce_or_tag_fails(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  const char *value = "correct horse battery staple";
  char *ct = encrypt_ok(v, value, strlen(value), "pw");
  const char *auth = "authentication failed";

  char *t = flip_bit(ct, 3, 0); /* first ciphertext byte */
  assert_refused(v, t, "pw", RM_EDENIED, auth, value);
  free(t);
  t = flip_bit(ct, 3, -1); /* last tag byte */
  assert_refused(v, t, "pw", RM_EDENIED, auth, value);
  free(t);
  t = flip_bit(ct, 3, (long)strlen(value)); /* first tag byte */
  assert_refused(v, t, "pw", RM_EDENIED, auth, value);
  free(t);
  t = flip_bit(ct, 2, 5); /* nonce */
  assert_refused(v, t, "pw", RM_EDENIED, auth, value);
  free(t);

  /* Any one-character edit anywhere fails, including edits that only
   * touch base64's unused bits or padding. */
  const char subst[] = "AB/+=0:z";
  size_t n = strlen(ct);
  char *edit = strdup(ct);
  for (size_t i = 0; i < n; i++) {
    for (const char *c = subst; *c; c++) {
      if (*c == ct[i]) continue;
      edit[i] = *c;
      char *plain = NULL, err[256];
      size_t len;
      int rc = rm_vault_decrypt(v, edit, "pw", &plain, &len, err, sizeof err);
      if (rc == 0) fail_msg("edit at %zu to '%c' decrypted", i, *c);
      assert_null(strstr(err, value));
    }
    edit[i] = ct[i];
  }
  free(edit);

  /* Truncated, extended or foreign texts. */
  char *cut = strndup(ct, n - 3);
  assert_refused(v, cut, "pw", RM_EPARSE, "malformed vault ciphertext", value);
  free(cut);
  char longer[1024];
  snprintf(longer, sizeof longer, "%sAAAA", ct); /* after the padding */
  assert_refused(v, longer, "pw", RM_EPARSE, "malformed vault ciphertext", value);
  snprintf(longer, sizeof longer, "%.*sAAAAAAAA", (int)n - 4, ct); /* two bytes more */
  assert_refused(v, longer, "pw", RM_EDENIED, auth, value);
  snprintf(longer, sizeof longer, "%s:extra", ct);
  assert_refused(v, longer, "pw", RM_EPARSE, "not a vault ciphertext", value);
  assert_refused(v, value, "pw", RM_EPARSE, "not a vault ciphertext", value);
  assert_refused(v, "", "pw", RM_EPARSE, "not a vault ciphertext", NULL);
  assert_refused(v, "rmv1:zz", "pw", RM_EPARSE, "not a vault ciphertext", NULL);
  snprintf(longer, sizeof longer, "rmv2%s", ct + 4);
  assert_refused(v, longer, "pw", RM_EVERSION, "format rmv2 is not supported", value);
  snprintf(longer, sizeof longer, "rmv1:%s::", rm_vault_key_id(v));
  assert_refused(v, longer, "pw", RM_EPARSE, "nonce", NULL);
  snprintf(longer, sizeof longer, "rmv1:%s:AAAAAAAAAAAAAAAA:AAAA", rm_vault_key_id(v));
  assert_refused(v, longer, "pw", RM_EPARSE, "at least 16 bytes", NULL);
  free(ct);
  rm_vault_close(v);
}

static void test_other_key_names_both_key_ids(void **state) {
  fixture *f = *state;
  char other_file[PATH_MAX];
  snprintf(other_file, sizeof other_file, "%s/other.key", f->dir);
  rm_vault *a = open_ok(f->key_file), *b = open_ok(other_file);
  assert_string_not_equal(rm_vault_key_id(a), rm_vault_key_id(b));
  char *ct = encrypt_ok(a, "value-of-a", 10, "name");
  char want[128];
  snprintf(want, sizeof want, "encrypted with key %s, the vault has key %s", rm_vault_key_id(a),
           rm_vault_key_id(b));
  assert_refused(b, ct, "name", RM_ENOTFOUND, want, "value-of-a");

  /* Relabelled with the other vault's key id, it fails authentication. */
  char *forged = strdup(ct);
  memcpy(forged + 5, rm_vault_key_id(b), 8);
  assert_refused(b, forged, "name", RM_EDENIED, "authentication failed", "value-of-a");
  memcpy(forged + 5, "ABCDEF01", 8);
  assert_refused(b, forged, "name", RM_EPARSE, "key id", NULL);
  free(forged);
  free(ct);
  rm_vault_close(a);
  rm_vault_close(b);
}

static void test_key_file_created_private_and_reused(void **state) {
  fixture *f = *state;
  assert_false(exists(f->key_file));
  rm_vault *v = open_ok(f->key_file);
  assert_int_equal(mode_of(f->key_file), 0600);
  char folder[PATH_MAX];
  snprintf(folder, sizeof folder, "%s/etc/restmon", f->dir);
  assert_int_equal(mode_of(folder) & 077, 0);
  assert_null(rm_vault_other_key_id(v));

  /* The base64 of 32 bytes and a newline, whose hash is the key id. */
  char text[64];
  snprintf(text, sizeof text, "%s", read_text(f->key_file));
  assert_int_equal(strlen(text), 45);
  assert_int_equal(text[44], '\n');
  unsigned char key[33];
  assert_int_equal(EVP_DecodeBlock(key, (const unsigned char *)text, 44), 33);
  char id[9];
  key_id_of(key, id);
  assert_string_equal(rm_vault_key_id(v), id);
  for (const char *p = rm_vault_key_id(v); *p; p++) assert_non_null(strchr("0123456789abcdef", *p));

  /* No temporary files are left beside it. */
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", f->key_file, (long)getpid());
  assert_false(exists(tmp));

  char *ct = encrypt_ok(v, "kept", 4, "n");
  rm_vault_close(v);
  v = open_ok(f->key_file);
  assert_string_equal(rm_vault_key_id(v), id);
  assert_decrypts(v, ct, "n", "kept", 4);
  assert_string_equal(read_text(f->key_file), text);
  free(ct);
  rm_vault_close(v);

  /* A hand-made key file in hex is fine too. */
  write_file(f->key_file, HEX_KEY "\n", 0600);
  v = open_ok(f->key_file);
  unsigned char hk[32];
  hex_key_bytes(hk);
  key_id_of(hk, id);
  assert_string_equal(rm_vault_key_id(v), id);
  rm_vault_close(v);
}

static void test_key_file_open_to_group_or_others_is_refused(void **state) {
  fixture *f = *state;
  rm_vault_close(open_ok(f->key_file));
  const mode_t modes[] = {0640, 0604, 0660, 0644, 0610};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    assert_int_equal(chmod(f->key_file, modes[i]), 0);
    rm_vault *v = (rm_vault *)1;
    char err[1024] = "";
    assert_int_equal(rm_vault_open(&v, f->key_file, err, sizeof err), RM_EDENIED);
    assert_null(v);
    assert_non_null(strstr(err, f->key_file));
    assert_non_null(strstr(err, "chmod 600"));
  }
  assert_int_equal(chmod(f->key_file, 0400), 0);
  rm_vault_close(open_ok(f->key_file));
}

static void test_malformed_key_file_is_refused_without_echoing(void **state) {
  fixture *f = *state;
  rm_vault_close(open_ok(f->key_file)); /* makes the folders */
  const char *bad[] = {
      "this-is-not-a-key-but-looks-secret\n",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", /* 43 characters, no padding */
      "AAECAwQFBgcICQoLDA0ODw==\n",                    /* 16 bytes */
      "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
      "",
      "\n\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(f->key_file, bad[i], 0600);
    rm_vault *v = (rm_vault *)1;
    char err[1024] = "";
    assert_int_equal(rm_vault_open(&v, f->key_file, err, sizeof err), RM_EPARSE);
    assert_null(v);
    assert_non_null(strstr(err, f->key_file));
    assert_non_null(strstr(err, "malformed"));
    if (strlen(bad[i]) > 4) {
      char core[16];
      snprintf(core, sizeof core, "%.10s", bad[i]);
      if (strstr(err, core)) fail_msg("error echoes the file: %s", err);
    }
  }
}

static void test_malformed_master_key_variable_is_refused_without_echoing(void **state) {
  fixture *f = *state;
  const char *bad[] = {
      "my-very-secret-passphrase",
      "AAECAwQFBgcICQoLDA0ODw==", /* 16 bytes */
      "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e", /* 31 bytes */
      "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv(RM_VAULT_KEY_ENV, bad[i], 1);
    rm_vault *v = (rm_vault *)1;
    char err[1024] = "";
    assert_int_equal(rm_vault_open(&v, f->key_file, err, sizeof err), RM_EINVAL);
    assert_null(v);
    assert_non_null(strstr(err, "RESTMON_MASTER_KEY"));
    if (*bad[i]) {
      char core[16];
      snprintf(core, sizeof core, "%.10s", bad[i]);
      if (strstr(err, core)) fail_msg("error echoes the variable: %s", err);
    }
  }
  assert_false(exists(f->key_file));
}

static void test_master_key_variable_wins_over_key_file(void **state) {
  fixture *f = *state;
  rm_vault *from_file = open_ok(f->key_file);
  char *ct = encrypt_ok(from_file, "file-secret", 11, "n");

  unsigned char key[32];
  hex_key_bytes(key);
  char id[9];
  key_id_of(key, id);
  char *b64 = rm_base64_encode(key, 32, false);
  char padded[128];
  snprintf(padded, sizeof padded, "  %s\n", b64);
  const char *forms[] = {HEX_KEY, b64, padded,
                         "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    setenv(RM_VAULT_KEY_ENV, forms[i], 1);
    rm_vault *v = open_ok(f->key_file);
    assert_string_equal(rm_vault_key_id(v), id);
    assert_string_not_equal(rm_vault_key_id(v), rm_vault_key_id(from_file));
    assert_refused(v, ct, "n", RM_ENOTFOUND, "encrypted with key", "file-secret");
    char *mine = encrypt_ok(v, "env-secret", 10, "n");
    assert_decrypts(v, mine, "n", "env-secret", 10);
    free(mine);
    rm_vault_close(v);
  }
  free(b64);

  /* With the variable set, no key file is needed or made. */
  char absent[PATH_MAX];
  snprintf(absent, sizeof absent, "%s/none/master.key", f->dir);
  rm_vault_close(open_ok(absent));
  assert_false(exists(absent));
  /* And rotation, which replaces the key file, is refused. */
  rm_vault *r = (rm_vault *)1;
  char err[512] = "";
  assert_int_equal(rm_vault_rotate_begin(&r, f->key_file, err, sizeof err), RM_EINVAL);
  assert_null(r);
  assert_non_null(strstr(err, "RESTMON_MASTER_KEY"));
  free(ct);
  rm_vault_close(from_file);
}

enum { NSECRETS = 3 };
static const char *const NAMES[NSECRETS] = {"db_password", "api_token", "empty"};
static const char *const VALUES[NSECRETS] = {"p@ss w0rd", "tok-123456789", ""};

static void path_with(char out[PATH_MAX], const char *key_file, const char *suffix) {
  snprintf(out, PATH_MAX, "%s%s", key_file, suffix);
}

/* What `restmon rotate-key` does between begin and commit: re-encrypt
 * every stored ciphertext (one transaction in the store). */
static void reencrypt_all(const rm_vault *r, char *db[NSECRETS]) {
  for (int i = 0; i < NSECRETS; i++) {
    char *plain = NULL, err[256] = "";
    size_t len = 0;
    if (rm_vault_decrypt(r, db[i], NAMES[i], &plain, &len, err, sizeof err))
      fail_msg("re-encrypt %s: %s", NAMES[i], err);
    char *ct = encrypt_ok(r, plain, len, NAMES[i]);
    rm_vault_free_plain(plain, len);
    free(db[i]);
    db[i] = ct;
  }
}

static void assert_all_decrypt(const rm_vault *v, char *db[NSECRETS]) {
  for (int i = 0; i < NSECRETS; i++) assert_decrypts(v, db[i], NAMES[i], VALUES[i], strlen(VALUES[i]));
}

static void test_rotation_reencrypts_and_replaces_the_key_file(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  char old_id[9], new_id[9], pending[PATH_MAX], old_file[PATH_MAX], err[512] = "";
  strcpy(old_id, rm_vault_key_id(v));
  char *db[NSECRETS], *before[NSECRETS];
  for (int i = 0; i < NSECRETS; i++) {
    db[i] = encrypt_ok(v, VALUES[i], strlen(VALUES[i]), NAMES[i]);
    before[i] = strdup(db[i]);
  }
  rm_vault_close(v);

  rm_vault *r = NULL;
  assert_int_equal(rm_vault_rotate_begin(&r, f->key_file, err, sizeof err), 0);
  strcpy(new_id, rm_vault_key_id(r));
  assert_string_not_equal(new_id, old_id);
  assert_string_equal(rm_vault_other_key_id(r), old_id);
  path_with(pending, f->key_file, ".new");
  assert_int_equal(mode_of(pending), 0600);
  reencrypt_all(r, db);
  for (int i = 0; i < NSECRETS; i++) assert_memory_equal(db[i] + 5, new_id, 8);
  assert_int_equal(rm_vault_rotate_commit(r, err, sizeof err), 0);
  assert_int_equal(rm_vault_rotate_commit(r, err, sizeof err), 0); /* idempotent */
  assert_all_decrypt(r, db);
  rm_vault_close(r);

  assert_false(exists(pending));
  path_with(old_file, f->key_file, ".old-");
  strcat(old_file, old_id);
  assert_int_equal(mode_of(old_file), 0600);
  assert_int_equal(mode_of(f->key_file), 0600);

  v = open_ok(f->key_file);
  assert_string_equal(rm_vault_key_id(v), new_id);
  assert_null(rm_vault_other_key_id(v));
  assert_all_decrypt(v, db);
  char want[64];
  snprintf(want, sizeof want, "encrypted with key %s, the vault has key %s", old_id, new_id);
  assert_refused(v, before[0], NAMES[0], RM_ENOTFOUND, want, VALUES[0]);
  rm_vault_close(v);

  /* The kept old key still reads backups from before the rotation. */
  v = open_ok(old_file);
  assert_string_equal(rm_vault_key_id(v), old_id);
  assert_all_decrypt(v, before);
  rm_vault_close(v);

  /* Commit is only for rotating vaults; rotation needs a key file. */
  v = open_ok(f->key_file);
  assert_int_equal(rm_vault_rotate_commit(v, err, sizeof err), RM_EINVAL);
  rm_vault_close(v);
  char absent[PATH_MAX];
  snprintf(absent, sizeof absent, "%s/absent.key", f->dir);
  assert_int_equal(rm_vault_rotate_begin(&r, absent, err, sizeof err), RM_ENOTFOUND);
  assert_non_null(strstr(err, absent));
  assert_false(exists(absent));
  for (int i = 0; i < NSECRETS; i++) {
    free(db[i]);
    free(before[i]);
  }
}

static void test_rotation_interrupted_anywhere_loses_nothing(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  char old_id[9], new_id[9], pending[PATH_MAX], err[512] = "";
  strcpy(old_id, rm_vault_key_id(v));
  char *stored[NSECRETS], *committed[NSECRETS];
  for (int i = 0; i < NSECRETS; i++) {
    stored[i] = encrypt_ok(v, VALUES[i], strlen(VALUES[i]), NAMES[i]);
    committed[i] = strdup(stored[i]);
  }
  rm_vault_close(v);

  /* Dies after the store transaction committed, before the key file was
   * replaced: the store holds ciphertexts under a key that exists only in
   * key_file.new. */
  rm_vault *r = NULL;
  assert_int_equal(rm_vault_rotate_begin(&r, f->key_file, err, sizeof err), 0);
  strcpy(new_id, rm_vault_key_id(r));
  reencrypt_all(r, committed);
  rm_vault_close(r);
  path_with(pending, f->key_file, ".new");
  assert_true(exists(pending));

  /* A restart opens both keys: old ciphertexts (transaction lost) and new
   * ones (transaction committed) all decrypt, and it can tell that a
   * rotation is unfinished. New secrets meanwhile use the old key. */
  v = open_ok(f->key_file);
  assert_string_equal(rm_vault_key_id(v), old_id);
  assert_string_equal(rm_vault_other_key_id(v), new_id);
  assert_all_decrypt(v, stored);
  assert_all_decrypt(v, committed);
  free(committed[2]);
  committed[2] = encrypt_ok(v, VALUES[2], strlen(VALUES[2]), NAMES[2]);
  assert_memory_equal(committed[2] + 5, old_id, 8);
  rm_vault_close(v);

  /* Running the rotation again reuses the same new key, and re-encrypts a
   * mix of old and new ciphertexts. It dies once more inside the commit,
   * after keeping the old key and before the rename. */
  assert_int_equal(rm_vault_rotate_begin(&r, f->key_file, err, sizeof err), 0);
  assert_string_equal(rm_vault_key_id(r), new_id);
  reencrypt_all(r, committed);
  char old_file[PATH_MAX];
  path_with(old_file, f->key_file, ".old-");
  strcat(old_file, old_id);
  char key_text[64];
  snprintf(key_text, sizeof key_text, "%s", read_text(f->key_file));
  write_file(old_file, key_text, 0600);
  v = open_ok(f->key_file);
  assert_all_decrypt(v, committed);
  rm_vault_close(v);

  assert_int_equal(rm_vault_rotate_commit(r, err, sizeof err), 0);
  rm_vault_close(r);
  v = open_ok(f->key_file);
  assert_string_equal(rm_vault_key_id(v), new_id);
  assert_null(rm_vault_other_key_id(v));
  assert_all_decrypt(v, committed);
  rm_vault_close(v);
  assert_false(exists(pending));

  /* A kept old key that is not the old key is a conflict, not overwritten. */
  assert_int_equal(rm_vault_rotate_begin(&r, f->key_file, err, sizeof err), 0);
  char clash[PATH_MAX];
  path_with(clash, f->key_file, ".old-");
  strcat(clash, new_id);
  write_file(clash, HEX_KEY "\n", 0600);
  assert_int_equal(rm_vault_rotate_commit(r, err, sizeof err), RM_ECONFLICT);
  assert_non_null(strstr(err, clash));
  rm_vault_close(r);
  v = open_ok(f->key_file);
  assert_string_equal(rm_vault_key_id(v), new_id);
  assert_all_decrypt(v, committed);
  rm_vault_close(v);
  for (int i = 0; i < NSECRETS; i++) {
    free(stored[i]);
    free(committed[i]);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_nonces_never_repeat_across_1000_encryptions(void **state) {
  fixture *f = *state;
  rm_vault *v = open_ok(f->key_file);
  enum { N = 1000 };
  char **nonces = calloc(N, sizeof *nonces);
  for (int i = 0; i < N; i++) {
    char *ct = encrypt_ok(v, "same value", 10, "same_name");
    char *nonce = strchr(strchr(ct + 5, ':') + 1, ':');
    nonces[i] = strndup(ct + 14, (size_t)(nonce - (ct + 14)));
    assert_int_equal(strlen(nonces[i]), 16);
    free(ct);
  }
  qsort(nonces, N, sizeof *nonces, cmp_str);
  for (int i = 1; i < N; i++) assert_string_not_equal(nonces[i - 1], nonces[i]);
  for (int i = 0; i < N; i++) free(nonces[i]);
  free(nonces);
  rm_vault_close(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_of_empty_binary_and_long_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_secret_name_fails_authentication, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_ciphertext_nonce_or_tag_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_key_names_both_key_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_file_created_private_and_reused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_file_open_to_group_or_others_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_key_file_is_refused_without_echoing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_master_key_variable_is_refused_without_echoing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_master_key_variable_wins_over_key_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotation_reencrypts_and_replaces_the_key_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotation_interrupted_anywhere_loses_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nonces_never_repeat_across_1000_encryptions, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
