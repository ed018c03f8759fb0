/* rm_pw: password hashing (argon2id) and the password policy.
 *
 * Hashes are PHC strings, "$argon2id$v=19$m=65536,t=3,p=1$SALT$HASH",
 * with a 16-byte salt from getrandom and a 32-byte hash; the parameters
 * travel in the string, so raising them later only needs
 * rm_pw_needs_rehash at the next successful login.
 *
 * Trap: hashing and verifying are deliberately slow (about 0.1-0.3 s and
 * m KiB of memory with the defaults) and block: in `restmon serve` run
 * them on the libuv thread pool (uv_queue_work) and bound how many run at
 * once, or logins stall the loop and can exhaust memory. */
#ifndef RM_AUTH_PASSWORD_H
#define RM_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rm_pw_params {
  uint32_t t_cost;      /* passes over memory */
  uint32_t m_cost_kib;  /* memory, KiB */
  uint32_t parallelism; /* lanes (and threads) */
} rm_pw_params;

/* Sized for a 2-core server: 64 MiB, 3 passes, one lane. */
#define RM_PW_PARAMS_DEFAULT                                                                       \
  { 3, 64 * 1024, 1 }

/* Limits for configured parameters and for those read back from a stored
 * hash: a tampered hash cannot make verification allocate 4 GiB. */
#define RM_PW_T_MAX 64u
#define RM_PW_M_MAX_KIB (1024u * 1024u)
#define RM_PW_P_MAX 16u

#define RM_PW_SALT_BYTES 16
#define RM_PW_HASH_BYTES 32
/* Room for any encoded hash this module writes, NUL included. */
#define RM_PW_ENCODED_MAX 160

#define RM_PW_MIN_CHARS 10   /* policy: Unicode characters */
#define RM_PW_MAX_BYTES 1024 /* policy: longer input is refused, not cut */

/* Whether p is usable: t in 1..RM_PW_T_MAX, m in 8*p..RM_PW_M_MAX_KIB,
 * p in 1..RM_PW_P_MAX. 0, or RM_EINVAL with the field named in err. */
int rm_pw_params_check(const rm_pw_params *p, char *err, size_t errlen);

/* Hashes password with params p and a fresh random salt into out (the
 * caller's buffer, RM_PW_ENCODED_MAX bytes). It does not apply the
 * policy (an admin may set any password), only refuses passwords over
 * RM_PW_MAX_BYTES. 0, RM_EINVAL (bad params, NULL or overlong password),
 * RM_EIO (no randomness) or RM_ENOMEM. */
int rm_pw_hash(const rm_pw_params *p, const char *password, char out[RM_PW_ENCODED_MAX]);

/* Checks password against encoded, a string from rm_pw_hash. The hash
 * comparison is constant-time (libargon2's). 0 when it matches;
 * RM_EDENIED when it does not (a NULL or overlong password is refused
 * without hashing); RM_EPARSE when encoded is not an argon2id v=19 PHC
 * string within the limits above (checked before anything is
 * allocated); RM_ENOMEM. */
int rm_pw_verify(const char *encoded, const char *password);

/* Spends the time and memory of one verification with params p and
 * discards the result. Call it when the user does not exist (or is
 * inactive) so the response time does not tell whether a name is taken. */
void rm_pw_verify_dummy(const rm_pw_params *p, const char *password);

/* Whether encoded should be replaced by a new hash made with p: true when
 * its type, version, parameters, salt or hash length differ from what
 * rm_pw_hash(p, ...) makes, or when it cannot be read at all. */
bool rm_pw_needs_rehash(const char *encoded, const rm_pw_params *p);

/* The password policy for a new password: at least RM_PW_MIN_CHARS
 * characters, at most RM_PW_MAX_BYTES bytes, valid UTF-8, and not the
 * username (compared ignoring ASCII case). No composition rules: length
 * is what makes a password strong (NIST SP 800-63B). username may be
 * NULL. 0, or RM_EINVAL with a message for the user in err naming the
 * field ("password: must be at least 10 characters long (it has 6)"). */
int rm_pw_policy_check(const char *username, const char *password, char *err, size_t errlen);

#endif
