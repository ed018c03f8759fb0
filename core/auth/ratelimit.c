#include "auth/ratelimit.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "util/err.h"

#define MAX_FAILURES_LIMIT 64u

struct rm__rl_entry {
  unsigned char key[32]; /* SHA-256 of the key */
  uint64_t last_ms;      /* latest failure; orders eviction */
  unsigned n;            /* failures held; 0 is a free slot */
  unsigned head;         /* ring index of the oldest failure */
};

/* Keys are held as their SHA-256: fixed size, any length, never cut. */
static int digest(const char *key, bool fold_case, unsigned char out[32]) {
  if (!key) key = "";
  return rm__auth_sha256(key, strlen(key), fold_case, out);
}

/* Whether a failure at t still counts at now. A t after now (a clock
 * that stepped back) counts until the window has passed from t. */
static bool in_window(const rm_ratelimit *rl, uint64_t t, uint64_t now) {
  return now < t || now - t < rl->p.window_ms;
}

static uint64_t *ring(const rm_ratelimit *rl, const rm__rl_entry *e) {
  return rl->times + (size_t)(e - rl->entries) * rl->p.max_failures;
}

static rm__rl_entry *find(const rm_ratelimit *rl, const unsigned char key[32]) {
  for (size_t i = 0; i < rl->p.max_keys; i++) {
    rm__rl_entry *e = &rl->entries[i];
    if (e->n && !memcmp(e->key, key, 32)) return e;
  }
  return NULL;
}

int rm_ratelimit_init(rm_ratelimit *rl, const rm_ratelimit_params *p) {
  memset(rl, 0, sizeof *rl);
  if (!p || p->max_failures < 1 || p->max_failures > MAX_FAILURES_LIMIT || !p->window_ms ||
      !p->max_keys || p->max_keys > SIZE_MAX / sizeof(uint64_t) / p->max_failures)
    return RM_EINVAL;
  rl->p = *p;
  rl->entries = calloc(p->max_keys, sizeof *rl->entries);
  rl->times = calloc(p->max_keys * p->max_failures, sizeof *rl->times);
  if (!rl->entries || !rl->times) {
    rm_ratelimit_close(rl);
    return RM_ENOMEM;
  }
  return 0;
}

void rm_ratelimit_close(rm_ratelimit *rl) {
  free(rl->entries);
  free(rl->times);
  /* A closed limiter holds no keys and records nothing. */
  rl->entries = NULL;
  rl->times = NULL;
  rl->p.max_keys = 0;
}

static int check_k(const rm_ratelimit *rl, const unsigned char k[32], uint64_t now_ms,
                   uint64_t *retry_after_ms) {
  const rm__rl_entry *e = find(rl, k);
  if (!e) return 0;
  const uint64_t *t = ring(rl, e);
  unsigned live = 0;
  uint64_t first = UINT64_MAX; /* the live failure that leaves the window first */
  for (unsigned i = 0; i < e->n; i++) {
    uint64_t ti = t[(e->head + i) % rl->p.max_failures];
    if (!in_window(rl, ti, now_ms)) continue;
    live++;
    if (ti < first) first = ti;
  }
  if (live < rl->p.max_failures) return 0;
  if (retry_after_ms) *retry_after_ms = first + rl->p.window_ms - now_ms;
  return RM_EDENIED;
}

/* The slot for a new key: a free one, else the one whose last failure is
 * oldest (every key out of its window sorts before any key inside it). */
static rm__rl_entry *victim(rm_ratelimit *rl) {
  rm__rl_entry *best = &rl->entries[0];
  for (size_t i = 0; i < rl->p.max_keys; i++) {
    rm__rl_entry *e = &rl->entries[i];
    if (!e->n) return e;
    if (e->last_ms < best->last_ms) best = e;
  }
  return best;
}

static void fail_k(rm_ratelimit *rl, const unsigned char k[32], uint64_t now_ms) {
  if (!rl->entries) return;
  rm__rl_entry *e = find(rl, k);
  if (!e) {
    e = victim(rl);
    memcpy(e->key, k, 32);
    e->n = e->head = 0;
    e->last_ms = now_ms;
  }
  const unsigned max = rl->p.max_failures;
  uint64_t *t = ring(rl, e);
  while (e->n && !in_window(rl, t[e->head], now_ms)) e->head = (e->head + 1) % max, e->n--;
  if (e->n == max) e->head = (e->head + 1) % max, e->n--; /* the oldest no longer decides */
  t[(e->head + e->n) % max] = now_ms;
  e->n++;
  if (now_ms > e->last_ms) e->last_ms = now_ms;
}

static void reset_k(rm_ratelimit *rl, const unsigned char k[32]) {
  rm__rl_entry *e = find(rl, k);
  if (e) e->n = e->head = 0;
}

int rm_ratelimit_check(const rm_ratelimit *rl, const char *key, uint64_t now_ms,
                       uint64_t *retry_after_ms) {
  unsigned char k[32];
  if (digest(key, false, k)) return RM_ENOMEM;
  return check_k(rl, k, now_ms, retry_after_ms);
}

int rm_ratelimit_fail(rm_ratelimit *rl, const char *key, uint64_t now_ms) {
  unsigned char k[32];
  if (digest(key, false, k)) return RM_ENOMEM;
  fail_k(rl, k, now_ms);
  return 0;
}

int rm_ratelimit_reset(rm_ratelimit *rl, const char *key) {
  unsigned char k[32];
  if (digest(key, false, k)) return RM_ENOMEM;
  reset_k(rl, k);
  return 0;
}

size_t rm_ratelimit_count(const rm_ratelimit *rl, uint64_t now_ms) {
  size_t c = 0;
  for (size_t i = 0; i < rl->p.max_keys; i++)
    if (rl->entries[i].n && in_window(rl, rl->entries[i].last_ms, now_ms)) c++;
  return c;
}

unsigned rm_ratelimit_retry_after_s(uint64_t ms) {
  uint64_t s = ms / 1000 + (ms % 1000 != 0);
  if (s < 1) return 1;
  return s > UINT_MAX ? UINT_MAX : (unsigned)s;
}

void rm_ratelimit_addr_key(const char *addr, char out[64]) {
  unsigned char a[16];
  if (!addr) addr = "";
  if (inet_pton(AF_INET, addr, a) == 1) {
    inet_ntop(AF_INET, a, out, 64);
  } else if (inet_pton(AF_INET6, addr, a) == 1) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, mapped, sizeof mapped)) {
      inet_ntop(AF_INET, a + 12, out, 64);
    } else {
      char prefix[INET6_ADDRSTRLEN];
      memset(a + 8, 0, 8);
      inet_ntop(AF_INET6, a, prefix, sizeof prefix);
      snprintf(out, 64, "%s/64", prefix);
    }
  } else {
    snprintf(out, 64, "%s", addr);
  }
}

int rm_login_guard_init(rm_login_guard *g, const rm_login_guard_params *p) {
  memset(g, 0, sizeof *g);
  if (!p) return RM_EINVAL;
  int rc = rm_ratelimit_init(&g->user, &p->user);
  if (!rc) rc = rm_ratelimit_init(&g->addr, &p->addr);
  if (rc) rm_login_guard_close(g);
  return rc;
}

void rm_login_guard_close(rm_login_guard *g) {
  rm_ratelimit_close(&g->user);
  rm_ratelimit_close(&g->addr);
}

/* The digests of a login's two keys: the username folded, the address
 * normalised. */
static int login_keys(const char *username, const char *addr, unsigned char uk[32],
                      unsigned char ak[32]) {
  char a[64];
  rm_ratelimit_addr_key(addr, a);
  return digest(username, true, uk) || digest(a, false, ak) ? RM_ENOMEM : 0;
}

int rm_login_guard_check(const rm_login_guard *g, const char *username, const char *addr,
                         uint64_t now_ms, unsigned *retry_after_s) {
  unsigned char uk[32], ak[32];
  if (login_keys(username, addr, uk, ak)) return RM_ENOMEM;
  uint64_t u = 0, a = 0;
  int ru = check_k(&g->user, uk, now_ms, &u), ra = check_k(&g->addr, ak, now_ms, &a);
  if (!ru && !ra) return 0;
  if (retry_after_s) *retry_after_s = rm_ratelimit_retry_after_s(u > a ? u : a);
  return RM_EDENIED;
}

int rm_login_guard_failed(rm_login_guard *g, const char *username, const char *addr,
                          uint64_t now_ms) {
  unsigned char uk[32], ak[32];
  if (login_keys(username, addr, uk, ak)) return RM_ENOMEM;
  fail_k(&g->user, uk, now_ms);
  fail_k(&g->addr, ak, now_ms);
  return 0;
}

int rm_login_guard_succeeded(rm_login_guard *g, const char *username) {
  unsigned char uk[32];
  if (digest(username, true, uk)) return RM_ENOMEM;
  reset_k(&g->user, uk);
  return 0;
}

char *rm_login_guard_message(unsigned retry_after_s, char *out, size_t n) {
  snprintf(out, n, "too many failed login attempts; retry after %u s", retry_after_s);
  return out;
}
