/* Byte-level text helpers: UTF-8 checks and base64. */
#ifndef RM_UTIL_TEXT_H
#define RM_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is invalid
 * or cut short by n. */
size_t rm_utf8_seq_len(const unsigned char *s, size_t n);

/* Length of the longest prefix of s that is valid UTF-8. */
size_t rm_utf8_valid_prefix(const char *s, size_t n);

/* A NUL-terminated copy of s where every byte that is not part of valid
 * UTF-8 becomes U+FFFD (caller frees); NULL when out of memory. */
char *rm_utf8_sanitize(const char *s, size_t n);

/* Base64 of d (caller frees): the standard alphabet with '=' padding, or
 * the URL-safe one without padding. NULL when out of memory. */
char *rm_base64_encode(const void *d, size_t n, bool url_safe);

/* The 64-bit FNV-1a hash of n bytes (hash tables; not for secrets). */
uint64_t rm_fnv1a(const void *p, size_t n);

/* Fills buf with n bytes from the system's random source. 0 or RM_EIO. */
int rm_random_bytes(void *buf, size_t n);

/* A random (version 4) UUID in its 36-character text form. 0, or RM_EIO
 * when the system has no randomness to give. */
int rm_uuid_v4(char out[37]);
/* A time-ordered (version 7) UUID: the millisecond of its making, then
 * random bits. Rows keyed by one are appended to their b-trees instead of
 * landing on a random page each. 0 or RM_EIO. */
int rm_uuid_v7(char out[37]);
/* The text form of 16 bytes. */
void rm_uuid_format(const unsigned char u[16], char out[37]);

#endif
