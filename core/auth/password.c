#include "auth/password.h"

#include <argon2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_internal.h"
#include "util/err.h"
#include "util/text.h"

#define PHC_PREFIX "$argon2id$v=19$m="

/* What a PHC string says about itself; the salt and hash are only
 * measured here, libargon2 decodes them. */
typedef struct phc {
  uint32_t m, t, p;
  size_t salt_chars, hash_chars;
} phc;

/* Unpadded base64 length of n bytes, as PHC strings write them. */
static size_t b64_chars(size_t n) { return (4 * n + 2) / 3; }

/* A decimal with no sign and no leading zero, at most UINT32_MAX. */
static int parse_u32(const char **s, uint32_t *out) {
  const char *p = *s;
  uint64_t v = 0;
  if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return RM_EPARSE;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (uint64_t)(*p++ - '0');
    if (v > UINT32_MAX) return RM_EPARSE;
  }
  *out = (uint32_t)v;
  *s = p;
  return 0;
}

static int expect(const char **s, const char *lit) {
  size_t n = strlen(lit);
  if (strncmp(*s, lit, n)) return RM_EPARSE;
  *s += n;
  return 0;
}

static size_t b64_span(const char *s) {
  size_t n = 0;
  while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
         (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '/')
    n++;
  return n;
}

/* Reads "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" strictly. */
static int phc_parse(const char *enc, phc *out) {
  const char *s = enc;
  if (!s || expect(&s, PHC_PREFIX) || parse_u32(&s, &out->m) || expect(&s, ",t=") ||
      parse_u32(&s, &out->t) || expect(&s, ",p=") || parse_u32(&s, &out->p) || expect(&s, "$"))
    return RM_EPARSE;
  out->salt_chars = b64_span(s);
  s += out->salt_chars;
  if (!out->salt_chars || expect(&s, "$")) return RM_EPARSE;
  out->hash_chars = b64_span(s);
  s += out->hash_chars;
  if (!out->hash_chars || *s) return RM_EPARSE;
  return 0;
}

/* Writes a message into err (if given) and returns RM_EINVAL. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return RM_EINVAL;
}

static int check_costs(uint32_t t, uint32_t m, uint32_t p, char *err, size_t errlen) {
  if (t < 1 || t > RM_PW_T_MAX)
    return fail(err, errlen, "password hashing: t_cost must be 1 to %u (it is %u)", RM_PW_T_MAX, t);
  if (p < 1 || p > RM_PW_P_MAX)
    return fail(err, errlen, "password hashing: parallelism must be 1 to %u (it is %u)",
                RM_PW_P_MAX, p);
  if (m < 8 * p || m > RM_PW_M_MAX_KIB)
    return fail(err, errlen,
                "password hashing: m_cost_kib must be 8 x parallelism (%u) to %u (it is %u)", 8 * p,
                RM_PW_M_MAX_KIB, m);
  return 0;
}

int rm_pw_params_check(const rm_pw_params *p, char *err, size_t errlen) {
  if (!p) return RM_EINVAL;
  return check_costs(p->t_cost, p->m_cost_kib, p->parallelism, err, errlen);
}

static int map_argon2(int rc) {
  switch (rc) {
  case ARGON2_OK: return 0;
  case ARGON2_VERIFY_MISMATCH: return RM_EDENIED;
  case ARGON2_MEMORY_ALLOCATION_ERROR: return RM_ENOMEM;
  case ARGON2_THREAD_FAIL: return RM_EIO;
  default: return RM_EPARSE;
  }
}

int rm_pw_hash(const rm_pw_params *p, const char *password, char out[RM_PW_ENCODED_MAX]) {
  if (!password || strlen(password) > RM_PW_MAX_BYTES || rm_pw_params_check(p, NULL, 0))
    return RM_EINVAL;
  unsigned char salt[RM_PW_SALT_BYTES];
  if (rm__auth_random(salt, sizeof salt)) return RM_EIO;
  int rc =
      argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, password, strlen(password),
                            salt, sizeof salt, RM_PW_HASH_BYTES, out, RM_PW_ENCODED_MAX);
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) return RM_ENOMEM;
  return rc == ARGON2_OK ? 0 : RM_EINVAL;
}

int rm_pw_verify(const char *encoded, const char *password) {
  phc h;
  if (phc_parse(encoded, &h) || check_costs(h.t, h.m, h.p, NULL, 0)) return RM_EPARSE;
  if (!password) return RM_EDENIED;
  /* Longer than rm_pw_hash accepts: it cannot match, and hashing
   * megabytes on request would be a cheap way to load the server. */
  size_t n = strlen(password);
  if (n > RM_PW_MAX_BYTES) return RM_EDENIED;
  return map_argon2(argon2id_verify(encoded, password, n));
}

void rm_pw_verify_dummy(const rm_pw_params *p, const char *password) {
  static const unsigned char salt[RM_PW_SALT_BYTES] = {0};
  unsigned char out[RM_PW_HASH_BYTES];
  if (!password || rm_pw_params_check(p, NULL, 0)) return;
  size_t n = strlen(password);
  if (n > RM_PW_MAX_BYTES) return;
  argon2id_hash_raw(p->t_cost, p->m_cost_kib, p->parallelism, password, n, salt, sizeof salt, out,
                    sizeof out);
}

bool rm_pw_needs_rehash(const char *encoded, const rm_pw_params *p) {
  phc h;
  if (!p || phc_parse(encoded, &h)) return true;
  return h.t != p->t_cost || h.m != p->m_cost_kib || h.p != p->parallelism ||
         h.salt_chars != b64_chars(RM_PW_SALT_BYTES) || h.hash_chars != b64_chars(RM_PW_HASH_BYTES);
}

int rm_pw_policy_check(const char *username, const char *password, char *err, size_t errlen) {
  if (!password) return fail(err, errlen, "password: is required");
  size_t n = strlen(password);
  if (n > RM_PW_MAX_BYTES)
    return fail(err, errlen, "password: must be at most %d bytes long", RM_PW_MAX_BYTES);
  if (rm_utf8_valid_prefix(password, n) != n)
    return fail(err, errlen, "password: must be valid UTF-8 text");
  size_t chars = 0;
  for (size_t i = 0; i < n; chars++)
    i += rm_utf8_seq_len((const unsigned char *)password + i, n - i);
  if (chars < RM_PW_MIN_CHARS)
    return fail(err, errlen, "password: must be at least %d characters long (it has %zu)",
                RM_PW_MIN_CHARS, chars);
  if (username && !strcasecmp(username, password))
    return fail(err, errlen, "password: must not be the same as the username");
  return 0;
}
