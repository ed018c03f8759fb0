/* Internals shared by the files of core/auth; not for the rest of the core. */
#ifndef RM_AUTH_INTERNAL_H
#define RM_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom), retrying
 * on EINTR and short reads. 0, or RM_EIO. Defined in token.c. */
int rm__auth_random(void *buf, size_t n);

/* SHA-256 of s[0..n), with ASCII letters folded to lower case first when
 * fold_case is set (usernames). 0, or RM_ENOMEM when OpenSSL cannot
 * allocate. Defined in token.c. */
int rm__auth_sha256(const char *s, size_t n, bool fold_case, unsigned char out[32]);

#endif
