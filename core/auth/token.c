#include "auth/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_internal.h"
#include "util/err.h"
#include "util/text.h"

int rm__auth_random(void *buf, size_t n) { return rm_random_bytes(buf, n); }

int rm__auth_sha256(const char *s, size_t n, bool fold_case, unsigned char out[32]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  char chunk[256];
  for (size_t done = 0; ok && done < n;) {
    size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
    for (size_t i = 0; i < k; i++) {
      char ch = s[done + i];
      chunk[i] = fold_case && ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    ok = EVP_DigestUpdate(c, chunk, k);
    done += k;
  }
  unsigned len = 0;
  ok = ok && EVP_DigestFinal_ex(c, out, &len) && len == 32;
  EVP_MD_CTX_free(c);
  return ok ? 0 : RM_ENOMEM;
}

int rm_token_new(char out[RM_TOKEN_LEN + 1]) {
  unsigned char raw[RM_TOKEN_BYTES];
  if (rm__auth_random(raw, sizeof raw)) return RM_EIO;
  char *b64 = rm_base64_encode(raw, sizeof raw, true);
  explicit_bzero(raw, sizeof raw);
  if (!b64) return RM_ENOMEM;
  memcpy(out, b64, RM_TOKEN_LEN + 1);
  explicit_bzero(b64, RM_TOKEN_LEN);
  free(b64);
  return 0;
}

static bool url_b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool rm_token_well_formed(const char *s, size_t n) {
  if (!s || n != RM_TOKEN_LEN) return false;
  for (size_t i = 0; i < n; i++)
    if (!url_b64_char(s[i])) return false;
  return true;
}

int rm_token_hash(const char *s, size_t n, char out[RM_TOKEN_HASH_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[32];
  int rc = rm__auth_sha256(s, n, false, md);
  if (rc) return rc;
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[RM_TOKEN_HASH_LEN] = '\0';
  return 0;
}

bool rm_token_hash_equal(const char *a, const char *b) {
  if (!a || !b || strlen(a) != RM_TOKEN_HASH_LEN || strlen(b) != RM_TOKEN_HASH_LEN) return false;
  return CRYPTO_memcmp(a, b, RM_TOKEN_HASH_LEN) == 0;
}

/* RFC 4648 base32, lower case: no characters that need escaping or that
 * differ only by case, so an id survives being read aloud or retyped. */
static const char id_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static bool id_char(char c) { return c && strchr(id_alphabet, c); }

int rm_apikey_new(char key[RM_APIKEY_LEN + 1], char id[RM_APIKEY_ID_LEN + 1],
                  char hash[RM_TOKEN_HASH_LEN + 1]) {
  unsigned char r[5]; /* 40 bits, 5 per character */
  if (rm__auth_random(r, sizeof r)) return RM_EIO;
  uint64_t bits = 0;
  for (int i = 0; i < 5; i++) bits = bits << 8 | r[i];
  for (int i = 0; i < RM_APIKEY_ID_LEN; i++) id[i] = id_alphabet[(bits >> (5 * i)) & 31];
  id[RM_APIKEY_ID_LEN] = '\0';
  char secret[RM_TOKEN_LEN + 1];
  int rc = rm_token_new(secret);
  if (!rc) rc = rm_token_hash(secret, RM_TOKEN_LEN, hash);
  if (!rc) snprintf(key, RM_APIKEY_LEN + 1, RM_APIKEY_PREFIX "%s_%s", id, secret);
  explicit_bzero(secret, sizeof secret);
  return rc;
}

int rm_apikey_parse(const char *s, size_t n, rm_apikey *out) {
  const size_t pre = strlen(RM_APIKEY_PREFIX);
  if (!s || n != RM_APIKEY_LEN || memcmp(s, RM_APIKEY_PREFIX, pre) ||
      s[pre + RM_APIKEY_ID_LEN] != '_')
    return RM_EPARSE;
  const char *id = s + pre, *secret = id + RM_APIKEY_ID_LEN + 1;
  for (size_t i = 0; i < RM_APIKEY_ID_LEN; i++)
    if (!id_char(id[i])) return RM_EPARSE;
  if (!rm_token_well_formed(secret, RM_TOKEN_LEN)) return RM_EPARSE;
  memcpy(out->id, id, RM_APIKEY_ID_LEN);
  out->id[RM_APIKEY_ID_LEN] = '\0';
  memcpy(out->secret, secret, RM_TOKEN_LEN);
  out->secret[RM_TOKEN_LEN] = '\0';
  return 0;
}

int rm_apikey_verify(const rm_apikey *k, const char *stored_hash) {
  char h[RM_TOKEN_HASH_LEN + 1];
  int rc = rm_token_hash(k->secret, strnlen(k->secret, sizeof k->secret), h);
  if (rc) return rc;
  return rm_token_hash_equal(h, stored_hash) ? 0 : RM_EDENIED;
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool b64token(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (url_b64_char(s[i]) || s[i] == '.' || s[i] == '~' || s[i] == '+' || s[i] == '/'))
    i++;
  if (i == 0) return false;
  while (i < n && s[i] == '=') i++;
  return i == n;
}

int rm_auth_bearer(const char *value, const char **cred, size_t *len) {
  if (!value) return RM_ENOTFOUND;
  const char *s = value, *end = value + strlen(value);
  while (s < end && ows(*s)) s++;
  while (end > s && ows(end[-1])) end--;
  if (s == end) return RM_ENOTFOUND;
  const size_t scheme = 6; /* "Bearer" */
  if ((size_t)(end - s) < scheme || strncasecmp(s, "Bearer", scheme)) return RM_ENOTFOUND;
  s += scheme;
  if (s < end && !ows(*s)) return RM_ENOTFOUND; /* "Bearerx": another scheme */
  while (s < end && ows(*s)) s++;
  if (s == end || !b64token(s, (size_t)(end - s))) return RM_EPARSE;
  *cred = s;
  *len = (size_t)(end - s);
  return 0;
}

int rm_auth_cookie(const char *header, const char *name, const char **val, size_t *len) {
  if (!header || !name || !*name) return RM_ENOTFOUND;
  const size_t nlen = strlen(name);
  const char *found = NULL;
  size_t found_len = 0;
  for (const char *p = header; *p;) {
    const char *pair_end = strchr(p, ';');
    if (!pair_end) pair_end = p + strlen(p);
    const char *k = p;
    while (k < pair_end && ows(*k)) k++;
    const char *eq = memchr(k, '=', (size_t)(pair_end - k));
    if (eq) {
      const char *kend = eq;
      while (kend > k && ows(kend[-1])) kend--;
      if ((size_t)(kend - k) == nlen && !memcmp(k, name, nlen)) {
        if (found) return RM_EPARSE;
        const char *v = eq + 1, *vend = pair_end;
        while (v < vend && ows(*v)) v++;
        while (vend > v && ows(vend[-1])) vend--;
        if (vend - v >= 2 && *v == '"' && vend[-1] == '"') v++, vend--;
        found = v;
        found_len = (size_t)(vend - v);
      }
    }
    p = *pair_end ? pair_end + 1 : pair_end;
  }
  if (!found) return RM_ENOTFOUND;
  *val = found;
  *len = found_len;
  return 0;
}

int rm_auth_session_cookie(const char *header, const char **tok, size_t *len) {
  const char *v;
  size_t n;
  int rc = rm_auth_cookie(header, RM_SESSION_COOKIE, &v, &n);
  if (rc) return rc;
  if (!rm_token_well_formed(v, n)) return RM_EPARSE;
  *tok = v;
  *len = n;
  return 0;
}

int rm_auth_session_set_cookie(char *out, size_t n, const char *token, long max_age_s,
                               bool secure) {
  if (token && !rm_token_well_formed(token, strlen(token))) return RM_EINVAL;
  char age[32] = "";
  if (!token) snprintf(age, sizeof age, "; Max-Age=0");
  else if (max_age_s > 0) snprintf(age, sizeof age, "; Max-Age=%ld", max_age_s);
  int w = snprintf(out, n, RM_SESSION_COOKIE "=%s; Path=/%s; HttpOnly; SameSite=Lax%s",
                   token ? token : "", age, secure ? "; Secure" : "");
  return w < 0 || (size_t)w >= n ? RM_ETOOBIG : 0;
}
