#include "secret/vault.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/err.h"
#include "util/text.h"

#define KEY_LEN 32
#define KEY_B64_LEN 44 /* base64 of 32 bytes, with padding */
#define NONCE_LEN 12
#define NONCE_B64_LEN 16
#define TAG_LEN 16
#define KEY_FILE_MAX 256 /* far longer than any well-formed key file */
#define FORMAT "rmv1"
#define KEY_HINT "set it to the output of `openssl rand -base64 32` or `openssl rand -hex 32`"

typedef struct vkey {
  unsigned char bytes[KEY_LEN];
  char id[9];
} vkey;

struct rm_vault {
  vkey keys[2]; /* keys[0] encrypts; keys[1], when nkeys is 2, only decrypts */
  int nkeys;
  char *rotating; /* the key file, for a vault from rm_vault_rotate_begin */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The key id: the first 8 hex digits of SHA-256(key). */
static int set_key_id(vkey *k) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(k->bytes, KEY_LEN, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 4)
    return RM_EIO;
  for (int i = 0; i < 4; i++) snprintf(k->id + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* Strict base64 (standard alphabet, padded, canonical): s[0..n) is accepted
 * only when encoding what it decodes to gives s back, so no two texts
 * decode to the same bytes and any edit of a ciphertext is noticed. out
 * needs room for n / 4 * 3 bytes. 0 or -1. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t *outlen) {
  if (n == 0 || n % 4 || n > INT_MAX) return -1;
  int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
  size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
  if (r < 0 || (size_t)r < pad) return -1;
  *outlen = (size_t)r - pad;
  char *again = rm_base64_encode(out, *outlen, false);
  if (!again) return -1;
  int same = strlen(again) == n && memcmp(again, s, n) == 0;
  OPENSSL_cleanse(again, strlen(again)); /* it may be a key */
  free(again);
  return same ? 0 : -1;
}

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parses a master key given as base64 or hex, ignoring surrounding white
 * space. On failure `why` says what is wrong without quoting the text. */
static int parse_key(const char *s, size_t n, unsigned char key[KEY_LEN], char *why,
                     size_t whylen) {
  while (n && isspace((unsigned char)s[n - 1])) n--;
  while (n && isspace((unsigned char)*s)) s++, n--;
  if (n == 0) {
    snprintf(why, whylen, "it is empty");
    return -1;
  }
  if (n == 2 * KEY_LEN) {
    for (size_t i = 0; i < KEY_LEN; i++) {
      int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        OPENSSL_cleanse(key, KEY_LEN);
        snprintf(why, whylen, "it has 64 characters but they are not all hex digits");
        return -1;
      }
      key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
  }
  unsigned char buf[KEY_FILE_MAX];
  size_t got = 0;
  int rc = -1;
  if (n > sizeof buf / 3 * 4 || b64_decode(s, n, buf, &got) != 0)
    snprintf(why, whylen, "it is neither base64 (%d characters) nor hex (64 digits)", KEY_B64_LEN);
  else if (got != KEY_LEN)
    snprintf(why, whylen, "it decodes to %zu bytes, a key is %d", got, KEY_LEN);
  else {
    memcpy(key, buf, KEY_LEN);
    rc = 0;
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return rc;
}

static int join_path(char out[PATH_MAX], const char *a, const char *b, const char *c,
                     char *err, size_t errlen) {
  if (snprintf(out, PATH_MAX, "%s%s%s", a, b, c) >= PATH_MAX) {
    set_err(err, errlen, "key file path %s is too long", a);
    return RM_EINVAL;
  }
  return 0;
}

/* Reads the key file at path into k. RM_ENOTFOUND when it does not exist. */
static int read_key_file(const char *path, vkey *k, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    set_err(err, errlen, "cannot open key file %s: %s", path, strerror(e));
    return e == ENOENT ? RM_ENOTFOUND : RM_EIO;
  }
  struct stat st;
  char buf[KEY_FILE_MAX + 1];
  size_t n = 0;
  char why[128];
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    set_err(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
    rc = RM_EIO;
  } else if (!S_ISREG(st.st_mode)) {
    set_err(err, errlen, "key file %s is not a regular file", path);
    rc = RM_EINVAL;
  } else if (st.st_mode & 077) {
    set_err(err, errlen, "key file %s may be accessed by group or others (mode %04o); run: chmod 600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
    rc = RM_EDENIED;
  }
  while (rc == 0 && n < sizeof buf) {
    ssize_t r = read(fd, buf + n, sizeof buf - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      set_err(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
      rc = RM_EIO;
    }
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (rc == 0 && n > KEY_FILE_MAX) {
    set_err(err, errlen, "key file %s is malformed: it is longer than a key", path);
    rc = RM_EPARSE;
  } else if (rc == 0 && parse_key(buf, n, k->bytes, why, sizeof why) != 0) {
    set_err(err, errlen, "key file %s is malformed: %s; it should hold the base64 of %d random bytes",
            path, why, KEY_LEN);
    rc = RM_EPARSE;
  }
  OPENSSL_cleanse(buf, sizeof buf);
  if (rc == 0) rc = set_key_id(k);
  return rc;
}

/* Creates the folders above path (mode 0700) that do not exist. */
static int make_parents(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  int rc = join_path(dir, path, "", "", err, errlen);
  for (char *s = strchr(dir + 1, '/'); rc == 0 && s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      set_err(err, errlen, "cannot create folder %s for key file %s: %s", dir, path, strerror(errno));
      rc = RM_EIO;
    }
    *s = '/';
  }
  return rc;
}

/* Makes a rename or link of path durable. */
static int sync_parent(const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX];
  int rc = join_path(dir, path, "", "", err, errlen);
  if (rc) return rc;
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = '\0'; /* a file in / */
  else *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) {
    set_err(err, errlen, "cannot sync folder %s of key file %s: %s", dir, path, strerror(errno));
    rc = RM_EIO;
  }
  if (fd >= 0) close(fd);
  return rc;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Creates the key file path holding key, all or nothing: the key goes to a
 * private temporary file (O_CREAT|O_EXCL, mode 0600, fsynced) that is then
 * hard-linked to path, which never replaces an existing file. So a reader
 * never sees a half-written key, and when two processes race the first
 * wins and the other gets RM_EEXIST. */
static int publish_key_file(const char *path, const unsigned char key[KEY_LEN], char *err,
                            size_t errlen) {
  char tmp[PATH_MAX], line[KEY_B64_LEN + 2];
  char pid[32];
  snprintf(pid, sizeof pid, ".tmp-%ld", (long)getpid());
  int rc = join_path(tmp, path, pid, "", err, errlen);
  if (rc) return rc;
  char *b64 = rm_base64_encode(key, KEY_LEN, false);
  if (!b64) return RM_ENOMEM;
  snprintf(line, sizeof line, "%s\n", b64);
  OPENSSL_cleanse(b64, strlen(b64));
  free(b64);

  unlink(tmp); /* left by a crashed process that had our pid */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write_all(fd, line, strlen(line)) != 0 || fsync(fd) != 0) {
    set_err(err, errlen, "cannot write key file %s: %s", tmp, strerror(errno));
    rc = RM_EIO;
  }
  OPENSSL_cleanse(line, sizeof line);
  if (fd >= 0 && close(fd) != 0 && rc == 0) {
    set_err(err, errlen, "cannot write key file %s: %s", tmp, strerror(errno));
    rc = RM_EIO;
  }
  if (rc == 0 && link(tmp, path) != 0) {
    int e = errno;
    set_err(err, errlen, "cannot create key file %s: %s", path, strerror(e));
    rc = e == EEXIST ? RM_EEXIST : RM_EIO;
  }
  unlink(tmp);
  if (rc == 0) rc = sync_parent(path, err, errlen);
  return rc;
}

/* Reads the key file at path into k, first creating it with a new random
 * key when it does not exist. */
static int load_or_create(const char *path, vkey *k, char *err, size_t errlen) {
  int rc = read_key_file(path, k, err, errlen);
  if (rc != RM_ENOTFOUND) return rc;
  rc = make_parents(path, err, errlen);
  if (rc == 0 && RAND_bytes(k->bytes, KEY_LEN) != 1) {
    set_err(err, errlen, "cannot make a master key for %s: no randomness", path);
    rc = RM_EIO;
  }
  if (rc == 0) rc = publish_key_file(path, k->bytes, err, errlen);
  if (rc == RM_EEXIST) return read_key_file(path, k, err, errlen); /* another process was first */
  if (rc == 0) rc = set_key_id(k);
  return rc;
}

static int key_from_env(const char *val, vkey *k, char *err, size_t errlen) {
  char why[128];
  if (parse_key(val, strlen(val), k->bytes, why, sizeof why) != 0) {
    set_err(err, errlen, RM_VAULT_KEY_ENV " is not a master key: %s; " KEY_HINT, why);
    return RM_EINVAL;
  }
  return set_key_id(k);
}

int rm_vault_open(rm_vault **out, const char *key_file, char *err, size_t errlen) {
  *out = NULL;
  const char *env = getenv(RM_VAULT_KEY_ENV);
  if (!env && (!key_file || !*key_file)) {
    set_err(err, errlen, "no master key: set " RM_VAULT_KEY_ENV " or configure a key file");
    return RM_EINVAL;
  }
  rm_vault *v = calloc(1, sizeof *v);
  if (!v) return RM_ENOMEM;
  v->nkeys = 1;
  int rc;
  if (env) {
    rc = key_from_env(env, &v->keys[0], err, errlen);
  } else {
    char pending[PATH_MAX];
    rc = load_or_create(key_file, &v->keys[0], err, errlen);
    if (rc == 0) rc = join_path(pending, key_file, ".new", "", err, errlen);
    /* An unfinished rotation: ciphertexts may already be under this key. */
    if (rc == 0) rc = read_key_file(pending, &v->keys[1], err, errlen);
    if (rc == 0 && strcmp(v->keys[0].id, v->keys[1].id) != 0) v->nkeys = 2;
    if (rc == RM_ENOTFOUND) rc = 0;
  }
  if (rc) {
    rm_vault_close(v);
    return rc;
  }
  set_err(err, errlen, "%s", ""); /* no note of the absent key_file.new */
  *out = v;
  return 0;
}

void rm_vault_close(rm_vault *v) {
  if (!v) return;
  OPENSSL_cleanse(v->keys, sizeof v->keys);
  free(v->rotating);
  free(v);
}

const char *rm_vault_key_id(const rm_vault *v) { return v->keys[0].id; }

const char *rm_vault_other_key_id(const rm_vault *v) {
  return v->nkeys > 1 ? v->keys[1].id : NULL;
}

/* AES-256-GCM of in[0..n) into out (room for n bytes, plus one when n is
 * 0) with the NUL-terminated aad. Encrypting writes tag; decrypting checks
 * it and returns RM_EDENIED when it does not match. */
static int gcm(int enc, const vkey *k, const unsigned char nonce[NONCE_LEN], const char *aad,
               const unsigned char *in, size_t n, unsigned char *out, unsigned char tag[TAG_LEN]) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return RM_ENOMEM;
  int outl = 0;
  int ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
           EVP_CipherInit_ex(c, NULL, NULL, k->bytes, nonce, enc) == 1 &&
           EVP_CipherUpdate(c, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
           (n == 0 || EVP_CipherUpdate(c, out, &outl, in, (int)n) == 1) &&
           (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1);
  int rc = ok ? 0 : RM_EIO;
  if (rc == 0 && EVP_CipherFinal_ex(c, out + n, &outl) != 1) rc = enc ? RM_EIO : RM_EDENIED;
  if (rc == 0 && enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1) rc = RM_EIO;
  EVP_CIPHER_CTX_free(c);
  return rc;
}

int rm_vault_encrypt(const rm_vault *v, const void *plain, size_t len, const char *aad,
                     char **out) {
  *out = NULL;
  if (!aad || (!plain && len)) return RM_EINVAL;
  if (len > RM_VAULT_MAX_PLAIN) return RM_ETOOBIG;
  unsigned char nonce[NONCE_LEN];
  if (RAND_bytes(nonce, NONCE_LEN) != 1) return RM_EIO;
  unsigned char *data = malloc(len + TAG_LEN);
  if (!data) return RM_ENOMEM;
  int rc = gcm(1, &v->keys[0], nonce, aad, plain, len, data, data + len);
  char *n64 = NULL, *d64 = NULL;
  if (rc == 0) {
    n64 = rm_base64_encode(nonce, NONCE_LEN, false);
    d64 = rm_base64_encode(data, len + TAG_LEN, false);
    /* Three colons and the NUL. */
    size_t size = strlen(FORMAT) + 8 + NONCE_B64_LEN + (d64 ? strlen(d64) : 0) + 4;
    *out = n64 && d64 ? malloc(size) : NULL;
    if (*out) snprintf(*out, size, FORMAT ":%s:%s:%s", v->keys[0].id, n64, d64);
    else rc = RM_ENOMEM;
  }
  free(n64);
  free(d64);
  free(data);
  return rc;
}

/* The key of v whose id is id, or NULL. */
static const vkey *find_key(const rm_vault *v, const char *id, size_t idlen) {
  for (int i = 0; i < v->nkeys; i++)
    if (idlen == 8 && memcmp(v->keys[i].id, id, 8) == 0) return &v->keys[i];
  return NULL;
}

static bool is_lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return false;
  return true;
}

int rm_vault_decrypt(const rm_vault *v, const char *text, const char *aad, char **plain,
                     size_t *len, char *err, size_t errlen) {
  *plain = NULL;
  *len = 0;
  if (!text || !aad) return RM_EINVAL;
  /* Four fields: format, key id, nonce, data. */
  const char *f[4];
  size_t flen[4];
  int nf = 0;
  for (const char *p = text; nf < 4; nf++) {
    f[nf] = p;
    flen[nf] = nf < 3 ? strcspn(p, ":") : strlen(p);
    if (!p[flen[nf]]) break;
    p += flen[nf] + 1;
  }
  bool v1 = flen[0] == strlen(FORMAT) && memcmp(f[0], FORMAT, flen[0]) == 0;
  size_t digits = flen[0] > 3 ? strspn(f[0] + 3, "0123456789") : 0;
  if (!v1 && strncmp(f[0], "rmv", 3) == 0 && digits && digits == flen[0] - 3 && digits < 10) {
    set_err(err, errlen, "ciphertext format %.*s is not supported (this binary reads " FORMAT ")",
            (int)flen[0], f[0]);
    return RM_EVERSION;
  }
  if (!v1 || nf != 3 || strchr(f[3], ':')) {
    set_err(err, errlen, "not a vault ciphertext (expected " FORMAT ":<key id>:<nonce>:<data>)");
    return RM_EPARSE;
  }
  if (flen[1] != 8 || !is_lower_hex(f[1], 8)) {
    set_err(err, errlen, "malformed vault ciphertext: the key id is not 8 hex digits");
    return RM_EPARSE;
  }
  const vkey *k = find_key(v, f[1], flen[1]);
  if (!k) {
    set_err(err, errlen, "encrypted with key %.8s, the vault has key %s%s%s", f[1], v->keys[0].id,
            v->nkeys > 1 ? " and " : "", v->nkeys > 1 ? v->keys[1].id : "");
    return RM_ENOTFOUND;
  }
  unsigned char nonce[NONCE_LEN + 3];
  size_t nlen = 0;
  if (flen[2] != NONCE_B64_LEN || b64_decode(f[2], flen[2], nonce, &nlen) != 0 || nlen != NONCE_LEN) {
    set_err(err, errlen, "malformed vault ciphertext: the nonce is not base64 of %d bytes", NONCE_LEN);
    return RM_EPARSE;
  }
  if (flen[3] / 4 * 3 > RM_VAULT_MAX_PLAIN + TAG_LEN + 2) {
    set_err(err, errlen, "vault ciphertext is larger than the largest secret (%zu bytes)",
            RM_VAULT_MAX_PLAIN);
    return RM_ETOOBIG;
  }
  unsigned char *data = malloc(flen[3] / 4 * 3 + 1);
  if (!data) return RM_ENOMEM;
  size_t dlen = 0;
  int rc = 0;
  if (b64_decode(f[3], flen[3], data, &dlen) != 0 || dlen < TAG_LEN) {
    set_err(err, errlen, "malformed vault ciphertext: the data is not base64 of at least %d bytes",
            TAG_LEN);
    rc = RM_EPARSE;
  }
  size_t n = rc == 0 ? dlen - TAG_LEN : 0;
  unsigned char *pt = rc == 0 ? malloc(n + 1) : NULL;
  if (rc == 0 && !pt) rc = RM_ENOMEM;
  if (rc == 0) rc = gcm(0, k, nonce, aad, data, n, pt, data + n);
  if (rc == RM_EDENIED)
    set_err(err, errlen, "authentication failed: wrong key, wrong secret name or tampered ciphertext");
  else if (rc == RM_EIO)
    set_err(err, errlen, "the cipher failed");
  free(data);
  if (rc) {
    if (pt) OPENSSL_cleanse(pt, n + 1); /* unauthenticated plaintext */
    free(pt);
    return rc;
  }
  pt[n] = '\0';
  *plain = (char *)pt;
  *len = n;
  return 0;
}

void rm_vault_free_plain(char *plain, size_t len) {
  if (!plain) return;
  OPENSSL_cleanse(plain, len);
  free(plain);
}

int rm_vault_rotate_begin(rm_vault **out, const char *key_file, char *err, size_t errlen) {
  *out = NULL;
  if (getenv(RM_VAULT_KEY_ENV)) {
    set_err(err, errlen, RM_VAULT_KEY_ENV " is set: key rotation replaces the key file, and this "
                         "key is not in one; unset it to rotate the key file");
    return RM_EINVAL;
  }
  if (!key_file || !*key_file) {
    set_err(err, errlen, "no key file to rotate");
    return RM_EINVAL;
  }
  rm_vault *v = calloc(1, sizeof *v);
  if (!v) return RM_ENOMEM;
  v->nkeys = 2;
  char pending[PATH_MAX];
  int rc = (v->rotating = strdup(key_file)) ? 0 : RM_ENOMEM;
  if (rc == 0) rc = join_path(pending, key_file, ".new", "", err, errlen);
  if (rc == 0) rc = read_key_file(key_file, &v->keys[1], err, errlen);
  if (rc == RM_ENOTFOUND) set_err(err, errlen, "key file %s does not exist: no key to rotate", key_file);
  if (rc == 0) rc = load_or_create(pending, &v->keys[0], err, errlen);
  if (rc == 0 && CRYPTO_memcmp(v->keys[0].bytes, v->keys[1].bytes, KEY_LEN) == 0) {
    set_err(err, errlen, "%s holds the same key as %s; remove it and rotate again", pending, key_file);
    rc = RM_ECONFLICT;
  }
  if (rc) {
    rm_vault_close(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* Whether the key file at path holds k (0), another key (RM_ECONFLICT),
 * or cannot be read (its error). */
static int holds_key(const char *path, const vkey *k, char *err, size_t errlen) {
  vkey got;
  int rc = read_key_file(path, &got, err, errlen);
  if (rc == 0 && CRYPTO_memcmp(got.bytes, k->bytes, KEY_LEN) != 0) {
    set_err(err, errlen, "key file %s holds key %s, expected key %s", path, got.id, k->id);
    rc = RM_ECONFLICT;
  }
  OPENSSL_cleanse(&got, sizeof got);
  return rc;
}

int rm_vault_rotate_commit(rm_vault *v, char *err, size_t errlen) {
  if (!v->rotating) {
    set_err(err, errlen, "this vault is not rotating a key (use rm_vault_rotate_begin)");
    return RM_EINVAL;
  }
  const char *key_file = v->rotating;
  const vkey *next = &v->keys[0], *prev = &v->keys[1];
  char pending[PATH_MAX], old[PATH_MAX];
  int rc = join_path(pending, key_file, ".new", "", err, errlen);
  if (rc == 0) rc = join_path(old, key_file, ".old-", prev->id, err, errlen);
  if (rc == 0) rc = publish_key_file(old, prev->bytes, err, errlen);
  if (rc == RM_EEXIST) rc = holds_key(old, prev, err, errlen); /* an earlier commit got this far */
  if (rc) return rc;
  if (holds_key(key_file, next, err, errlen) == 0) return 0; /* already committed */
  rc = holds_key(key_file, prev, err, errlen);
  if (rc == 0) rc = holds_key(pending, next, err, errlen);
  if (rc == RM_ENOTFOUND) rc = RM_ECONFLICT;
  if (rc == 0 && rename(pending, key_file) != 0) {
    set_err(err, errlen, "cannot rename %s to %s: %s", pending, key_file, strerror(errno));
    rc = RM_EIO;
  }
  if (rc == 0) rc = sync_parent(key_file, err, errlen);
  if (rc == 0) set_err(err, errlen, "%s", "");
  return rc;
}
