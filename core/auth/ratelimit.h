/* rm_ratelimit: failed-login limits per key, in memory.
 *
 * A key is locked while it has max_failures failures in the last
 * window_ms (a sliding window over the failure times themselves, not
 * fixed buckets); it unlocks when the oldest of them leaves the window.
 * The table holds at most max_keys keys; a new key takes the slot of the
 * key whose last failure is oldest. Keys are stored as their SHA-256, so
 * any length works and memory is fixed at init. Lookups scan the table:
 * a few microseconds for 4096 keys, nothing beside one argon2 hash.
 *
 * Nothing here reads a clock: every call takes now_ms, from a monotonic
 * clock (uv_now) in the server and from the test itself in tests. A
 * limiter is not thread-safe; the server uses it from the loop thread.
 *
 * rm_login_guard combines two limiters the way logins need them: one per
 * username, one per client address. */
#ifndef RM_AUTH_RATELIMIT_H
#define RM_AUTH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rm_ratelimit_params {
  unsigned max_failures; /* 1..64 */
  uint64_t window_ms;    /* > 0 */
  size_t max_keys;       /* > 0 */
} rm_ratelimit_params;

typedef struct rm__rl_entry rm__rl_entry;

/* Caller allocates; fields are private. */
typedef struct rm_ratelimit {
  rm_ratelimit_params p;
  rm__rl_entry *entries; /* max_keys of them */
  uint64_t *times;       /* max_failures per entry, oldest first from each entry's head */
} rm_ratelimit;

/* Allocates the table (the library's only allocation). 0, RM_EINVAL
 * (bad params) or RM_ENOMEM. Release with rm_ratelimit_close. */
int rm_ratelimit_init(rm_ratelimit *rl, const rm_ratelimit_params *p);
/* Frees the table. Safe after a failed init and twice; a closed limiter
 * records nothing and locks nothing. */
void rm_ratelimit_close(rm_ratelimit *rl);

/* 0 when key may try now; RM_EDENIED when it is locked, with the time
 * until it may try again in *retry_after_ms (if not NULL); RM_ENOMEM. */
int rm_ratelimit_check(const rm_ratelimit *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms);
/* Records one failure of key at now_ms. 0 or RM_ENOMEM. */
int rm_ratelimit_fail(rm_ratelimit *rl, const char *key, uint64_t now_ms);
/* Forgets key's failures. 0 or RM_ENOMEM. */
int rm_ratelimit_reset(rm_ratelimit *rl, const char *key);
/* Keys currently held (with a failure still in the window at now_ms). */
size_t rm_ratelimit_count(const rm_ratelimit *rl, uint64_t now_ms);

/* Seconds to tell a client ("Retry-After"): ms rounded up, at least 1. */
unsigned rm_ratelimit_retry_after_s(uint64_t ms);

/* The key for a client address: the text of an IPv4 address as is, an
 * IPv4-mapped IPv6 address as its IPv4 form, any other IPv6 address as
 * its /64 prefix ("2001:db8:1:2::/64"), since one host commonly holds a
 * whole /64. Text that is not an address is copied unchanged.
 * out must hold 64 bytes. */
void rm_ratelimit_addr_key(const char *addr, char out[64]);

typedef struct rm_login_guard_params {
  rm_ratelimit_params user; /* default 5 per 15 min, 4096 names */
  rm_ratelimit_params addr; /* default 20 per 15 min, 4096 addresses */
} rm_login_guard_params;

#define RM_LOGIN_GUARD_DEFAULT                                                                     \
  {                                                                                                \
    {5, 15 * 60 * 1000, 4096}, { 20, 15 * 60 * 1000, 4096 }                                        \
  }

typedef struct rm_login_guard {
  rm_ratelimit user, addr;
} rm_login_guard;

/* 0, RM_EINVAL or RM_ENOMEM. Release with rm_login_guard_close. */
int rm_login_guard_init(rm_login_guard *g, const rm_login_guard_params *p);
void rm_login_guard_close(rm_login_guard *g);

/* Call before verifying a password. 0 when the attempt may go ahead;
 * RM_EDENIED when the username or the address is locked, with the seconds
 * to wait in *retry_after_s (the longer of the two); RM_ENOMEM. A refused
 * attempt is not a failure and does not extend the lock. username is
 * compared ignoring ASCII case; addr is the client address as text. */
int rm_login_guard_check(const rm_login_guard *g, const char *username, const char *addr,
                         uint64_t now_ms, unsigned *retry_after_s);
/* After a wrong password (or an unknown or inactive user): one failure
 * for the username and one for the address. 0 or RM_ENOMEM. */
int rm_login_guard_failed(rm_login_guard *g, const char *username, const char *addr,
                          uint64_t now_ms);
/* After a good password: clears the username's failures. The address
 * keeps its count, or one account the attacker owns would reset the
 * limit for guesses at all the others. 0 or RM_ENOMEM. */
int rm_login_guard_succeeded(rm_login_guard *g, const char *username);

/* The message for a refused login: "too many failed login attempts;
 * retry after N s". Returns out. */
char *rm_login_guard_message(unsigned retry_after_s, char *out, size_t n);

#endif
