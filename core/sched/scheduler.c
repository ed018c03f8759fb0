/* rm_sched: items in a hash map and a min-heap by next fire time, one
 * uv_timer for the heap's top, bounded batches (scheduler.h). */
#include "sched/scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/log.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))
#define NONE UINT32_MAX

/* ---- hash maps: items and schedules by key ---- */

/* The first member of an item and of a schedule. */
struct node {
  struct node *next;
  const char *key; /* the owner's key[] */
  uint32_t hash;
};

struct table {
  struct node **b;
  size_t mask; /* buckets - 1; buckets are a power of two */
  size_t n;
};

static uint32_t hash_key(const char *k, uint32_t seed) {
  uint32_t h = 2166136261u ^ seed; /* FNV-1a, seeded per scheduler */
  for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
  return h ^ (h >> 15);
}

static int table_init(struct table *t) {
  t->mask = 15, t->n = 0;
  t->b = calloc(t->mask + 1, sizeof *t->b);
  return t->b ? 0 : RM_ENOMEM;
}

static struct node *table_get(const struct table *t, const char *key, uint32_t h) {
  for (struct node *n = t->b[h & t->mask]; n; n = n->next)
    if (n->hash == h && strcmp(n->key, key) == 0) return n;
  return NULL;
}

/* Doubles the buckets. Failing leaves the table as it was: longer chains,
 * still correct. */
static void table_grow(struct table *t) {
  size_t nb = (t->mask + 1) * 2;
  struct node **b = calloc(nb, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i <= t->mask; i++)
    for (struct node *n = t->b[i], *next; n; n = next) {
      next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
    }
  free(t->b);
  t->b = b, t->mask = nb - 1;
}

static void table_put(struct table *t, struct node *n) {
  if (t->n > t->mask) table_grow(t);
  struct node **slot = &t->b[n->hash & t->mask];
  n->next = *slot, *slot = n;
  t->n++;
}

static void table_del(struct table *t, struct node *n) {
  struct node **p = &t->b[n->hash & t->mask];
  while (*p != n) p = &(*p)->next;
  *p = n->next;
  t->n--;
}

/* ---- items, schedules, the heap ---- */

struct item;

struct def { /* a schedule registered by key */
  struct node node;
  struct item *items; /* those that name it, through sprev/snext */
  size_t nitems;
  bool defined; /* false: a placeholder that items name */
  const rm_tz *tz; /* borrowed from the registry */
  rm_schedule sched;
  char key[];
};

struct item {
  struct node node;
  struct def *def;
  struct item *sprev, *snext;
  uint32_t heap_idx;     /* NONE: no next fire time */
  uint16_t catchup_left; /* missed fires still to replay */
  uint8_t missed;        /* enum rm_sched_missed */
  bool enabled;
  char key[];
};

struct slot {
  int64_t at; /* next fire time, UTC ms */
  struct item *it;
};

/* Its capacity is kept at least the number of items, so a push never
 * fails. */
struct heap {
  struct slot *a;
  uint32_t n, cap;
};

static void heap_set(struct heap *h, uint32_t i, struct slot v) {
  h->a[i] = v;
  v.it->heap_idx = i;
}

static void sift_up(struct heap *h, uint32_t i) {
  struct slot v = h->a[i];
  while (i > 0 && h->a[(i - 1) / 2].at > v.at) {
    heap_set(h, i, h->a[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(h, i, v);
}

static void sift_down(struct heap *h, uint32_t i) {
  struct slot v = h->a[i];
  for (uint32_t c; (c = 2 * i + 1) < h->n; i = c) {
    if (c + 1 < h->n && h->a[c + 1].at < h->a[c].at) c++;
    if (h->a[c].at >= v.at) break;
    heap_set(h, i, h->a[c]);
  }
  heap_set(h, i, v);
}

static void heap_fix(struct heap *h, uint32_t i) {
  if (i > 0 && h->a[(i - 1) / 2].at > h->a[i].at) sift_up(h, i);
  else sift_down(h, i);
}

static void heap_del(struct heap *h, uint32_t i) {
  h->a[i].it->heap_idx = NONE;
  if (i == --h->n) return;
  heap_set(h, i, h->a[h->n]);
  heap_fix(h, i);
}

static int heap_reserve(struct heap *h, size_t n) {
  if (n <= h->cap) return 0;
  if (n > NONE - 1) return RM_ENOMEM;
  size_t cap = h->cap ? (size_t)h->cap * 2 : 64;
  if (cap > NONE - 1) cap = NONE - 1;
  struct slot *a = realloc(h->a, cap * sizeof *a);
  if (!a) return RM_ENOMEM;
  h->a = a, h->cap = (uint32_t)cap;
  return 0;
}

/* ---- lateness: a log-linear histogram (for quantiles) and the
 * Prometheus buckets ---- */

#define LAT_SUB 5        /* 2^5 buckets per power of two: 3 % */
#define LAT_EXACT 64     /* below this, one bucket per microsecond */
#define LAT_BUCKETS 1152 /* up to 2^40 us (12 days) */

static const int64_t PROM_US[] = {1000,   2500,   5000,    10000,   25000,   50000,    100000,  250000,
                                  500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
#define N_PROM (sizeof PROM_US / sizeof PROM_US[0])

struct lateness {
  uint64_t fine[LAT_BUCKETS];
  uint64_t prom[N_PROM + 1]; /* not cumulative; the last is +Inf */
  uint64_t n;
  double sum_s;
  int64_t max_us;
};

static unsigned lat_bucket(uint64_t us) {
  if (us < LAT_EXACT) return (unsigned)us;
  if (us >> 40) us = ((uint64_t)1 << 40) - 1;
  unsigned e = 63u - (unsigned)__builtin_clzll(us);
  return (e - LAT_SUB) * 32 + (unsigned)(us >> (e - LAT_SUB));
}

static int64_t lat_upper(unsigned idx) {
  if (idx < LAT_EXACT) return idx;
  unsigned e = idx / 32 + LAT_SUB - 1, m = idx % 32 + 32;
  return ((int64_t)(m + 1) << (e - LAT_SUB)) - 1;
}

static void lat_record(struct lateness *l, int64_t us) {
  size_t p = 0;
  while (p < N_PROM && us > PROM_US[p]) p++;
  l->fine[lat_bucket((uint64_t)us)]++;
  l->prom[p]++;
  l->n++;
  l->sum_s += (double)us / 1e6;
  if (us > l->max_us) l->max_us = us;
}

/* ---- the scheduler ---- */

struct rm_sched {
  uv_timer_t timer;
  uv_idle_t idle;   /* keeps the poll from blocking while a batch is cut */
  uv_check_t check; /* runs the rest of a cut batch after the poll */
  uv_loop_t *loop;
  rm_tz_registry *tzs;
  rm_sched_fire_cb fire;
  void *ud;
  rm_sched_clock_fn clock;
  void *clock_ud;
  struct table items, defs;
  struct heap heap;
  uint32_t seed;
  size_t ndisabled, ndefined;
  unsigned batch_fires;
  int64_t batch_us;
  int64_t armed_at;  /* the top the timer was armed for */
  int64_t offset_us; /* wall - monotonic at the last wake-up */
  bool in_batch, yielding, closing;
  int open_handles;
  rm_sched_close_cb done;
  uint64_t fires, catch_up_fires, wakeups, yields, jumps;
  struct lateness lat;
};

static int64_t real_clock_us(void *ud) {
  (void)ud;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(const rm_sched *s) { return s->clock(s->clock_ud); }
static int64_t wall_ms(const rm_sched *s) { return rm_tz_floor_div(wall_us(s), 1000); }
static int64_t mono_us(void) { return (int64_t)(uv_hrtime() / 1000); }

static bool key_ok(const char *k) { return k && *k && strlen(k) <= RM_SCHED_KEY_MAX; }

static bool next_after(const struct def *d, int64_t after_ms, int64_t *at) {
  return rm_cron_next(&d->sched, d->tz, after_ms, at) == 0;
}

static void unplan(rm_sched *s, struct item *it) {
  if (it->heap_idx != NONE) heap_del(&s->heap, it->heap_idx);
}

static void put_at(rm_sched *s, struct item *it, int64_t at) {
  struct heap *h = &s->heap;
  if (it->heap_idx == NONE) {
    h->a[h->n] = (struct slot){at, it};
    sift_up(h, h->n++);
  } else {
    h->a[it->heap_idx].at = at;
    heap_fix(h, it->heap_idx);
  }
}

/* Sets the item's next fire time, from now: first a missed one when a
 * fire time after last_fire_ms (>= 0) has passed and the policy replays
 * it; else the first fire time after now; out of the heap when there is
 * none (disabled, schedule not set, or ended). */
static void plan(rm_sched *s, struct item *it, int64_t last_fire_ms, int64_t now_ms) {
  struct def *d = it->def;
  int64_t at;
  it->catchup_left = 0;
  if (!it->enabled || !d->defined) {
    unplan(s, it);
  } else if (last_fire_ms >= 0 && it->missed != RM_SCHED_MISSED_SKIP && next_after(d, last_fire_ms, &at) &&
             at <= now_ms) {
    it->catchup_left = it->missed == RM_SCHED_MISSED_ONCE ? 1 : RM_SCHED_CATCHUP_MAX;
    put_at(s, it, at);
  } else if (next_after(d, now_ms, &at)) {
    put_at(s, it, at);
  } else {
    unplan(s, it);
  }
}

/* After a fire at `at`: the next fire time. On schedule that is the first
 * one after now (fires that passed while the loop was busy are not made
 * up: they would only pile up); a replay of missed fires goes on with the
 * one after `at`. */
static void replan_fired(rm_sched *s, struct item *it, int64_t at, int64_t now_ms) {
  bool replaying = it->catchup_left > 0;
  int64_t after = at > now_ms ? at : now_ms, next;
  if (replaying && --it->catchup_left > 0) after = at;
  else if (replaying && it->missed == RM_SCHED_MISSED_ALL && next_after(it->def, at, &next) && next <= now_ms)
    rm_log_warn("sched", "item %s: %d missed fires replayed, the limit; skipping the rest", it->key,
                RM_SCHED_CATCHUP_MAX);
  if (!next_after(it->def, after, &next)) {
    heap_del(&s->heap, it->heap_idx);
    return;
  }
  if (next > now_ms) it->catchup_left = 0;
  put_at(s, it, next);
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for the heap's top, at most RM_SCHED_MAX_SLEEP_MS away
 * so that a stepped wall clock is noticed. libuv's poll sleeps whole
 * milliseconds from when it is entered and its timers compare against
 * the loop's clock: with that clock brought up to date here, a delay of
 * the wall-clock wait rounded up wakes within a millisecond after the
 * fire time (plus the kernel's latency), never before it. */
static void arm(rm_sched *s) {
  if (!s->heap.n) {
    uv_timer_stop(&s->timer);
    return;
  }
  uv_update_time(s->loop);
  int64_t at = s->heap.a[0].at, wait = at * 1000 - wall_us(s), cap = RM_SCHED_MAX_SLEEP_MS * 1000LL;
  if (wait > cap) wait = cap;
  s->armed_at = at;
  uv_timer_start(&s->timer, on_timer, wait > 0 ? (uint64_t)(wait + 999) / 1000 : 0, 0);
}

/* Re-arms after a change, unless a batch is running (it arms at its end)
 * or the top is what the timer is armed for already. A timer that is not
 * running had an empty heap to watch: the clock is taken as it is now,
 * not as a jump since the last wake-up. */
static void maybe_arm(rm_sched *s) {
  if (s->in_batch || s->yielding || s->closing) return;
  bool active = uv_is_active((uv_handle_t *)&s->timer);
  if (s->heap.n && s->heap.a[0].at == s->armed_at && active) return;
  if (!active) s->offset_us = wall_us(s) - mono_us();
  arm(s);
}

/* The wall clock moved against the monotonic one (scheduler.h). The heap
 * is rebuilt in place: the i-th old slot is read before the rebuilt heap
 * (at most i items) can write to it. */
static void replan_all(rm_sched *s, int64_t now_ms, bool forward) {
  uint32_t n = s->heap.n;
  s->heap.n = 0;
  for (uint32_t i = 0; i < n; i++) {
    struct slot v = s->heap.a[i];
    v.it->heap_idx = NONE;
    plan(s, v.it, forward ? v.at - 1 : -1, now_ms);
  }
}

static void check_jump(rm_sched *s, int64_t wall) {
  int64_t off = wall - mono_us(), d = off - s->offset_us;
  s->offset_us = off;
  if (d > -RM_SCHED_JUMP_MS * 1000 && d < RM_SCHED_JUMP_MS * 1000) return;
  s->jumps++;
  rm_log_warn("sched", "the wall clock jumped by %+lld ms: re-planning %u items", (long long)(d / 1000),
              (unsigned)s->heap.n);
  replan_all(s, rm_tz_floor_div(wall, 1000), d > 0);
}

static void fire_top(rm_sched *s, int64_t now_us) {
  struct item *it = s->heap.a[0].it;
  int64_t at = s->heap.a[0].at, now_ms = rm_tz_floor_div(now_us, 1000);
  rm_sched_fire f = {it->key, at, now_ms, now_us - at * 1000, it->catchup_left > 0};
  if (f.lateness_us < 0) f.lateness_us = 0;
  replan_fired(s, it, at, now_ms);
  s->fires++;
  if (f.catch_up) s->catch_up_fires++;
  else lat_record(&s->lat, f.lateness_us);
  s->fire(&f, s->ud);
}

static void noop_idle(uv_idle_t *h) { (void)h; }
static void on_check(uv_check_t *h);

/* Fires what is due, oldest first, in one batch; a cut batch goes on
 * from the check handle after the next poll. */
static void run_due(rm_sched *s) {
  int64_t start = wall_us(s), now = start;
  unsigned n = 0;
  s->wakeups++;
  check_jump(s, start);
  s->in_batch = true;
  while (!s->closing && s->heap.n && s->heap.a[0].at * 1000 <= now) {
    if (n == s->batch_fires || now - start >= s->batch_us) break;
    fire_top(s, now);
    n++;
    now = wall_us(s);
  }
  s->in_batch = false;
  if (s->closing) return;
  bool more = s->heap.n && s->heap.a[0].at * 1000 <= now;
  if (more && !s->yielding) {
    s->yielding = true;
    uv_timer_stop(&s->timer);
    uv_idle_start(&s->idle, noop_idle);
    uv_check_start(&s->check, on_check);
  } else if (!more && s->yielding) {
    s->yielding = false;
    uv_idle_stop(&s->idle);
    uv_check_stop(&s->check);
  }
  s->yields += more;
  if (!more) arm(s);
}

static void on_timer(uv_timer_t *t) { run_due(container_of(t, rm_sched, timer)); }
static void on_check(uv_check_t *h) { run_due(container_of(h, rm_sched, check)); }

/* ---- set-up and tear-down ---- */

const char *rm_sched_missed_name(enum rm_sched_missed m) {
  return m == RM_SCHED_MISSED_ONCE ? "once" : m == RM_SCHED_MISSED_SKIP ? "skip" : m == RM_SCHED_MISSED_ALL ? "all" : NULL;
}

int rm_sched_missed_parse(const char *str) {
  for (int m = RM_SCHED_MISSED_ONCE; str && m <= RM_SCHED_MISSED_ALL; m++)
    if (strcmp(str, rm_sched_missed_name((enum rm_sched_missed)m)) == 0) return m;
  return RM_EINVAL;
}

int rm_sched_new(rm_sched **out, uv_loop_t *loop, rm_tz_registry *tzs, rm_sched_fire_cb fire, void *ud) {
  if (!out || !loop || !tzs || !fire) return RM_EINVAL;
  rm_sched *s = calloc(1, sizeof *s);
  if (!s) return RM_ENOMEM;
  if (table_init(&s->items) || table_init(&s->defs) || heap_reserve(&s->heap, 1)) {
    free(s->items.b), free(s->defs.b), free(s->heap.a), free(s);
    return RM_ENOMEM;
  }
  s->loop = loop, s->tzs = tzs, s->fire = fire, s->ud = ud;
  s->clock = real_clock_us;
  s->seed = (uint32_t)uv_hrtime() ^ (uint32_t)(uintptr_t)s;
  s->batch_fires = RM_SCHED_BATCH_FIRES, s->batch_us = RM_SCHED_BATCH_US;
  uv_timer_init(loop, &s->timer);
  uv_idle_init(loop, &s->idle);
  uv_check_init(loop, &s->check);
  s->offset_us = wall_us(s) - mono_us();
  *out = s;
  return 0;
}

static void free_all(rm_sched *s) {
  for (size_t i = 0; i <= s->items.mask; i++)
    for (struct node *n = s->items.b[i], *next; n; n = next) next = n->next, free(n);
  for (size_t i = 0; i <= s->defs.mask; i++)
    for (struct node *n = s->defs.b[i], *next; n; n = next) {
      next = n->next;
      rm_cron_free(&((struct def *)n)->sched);
      free(n);
    }
  free(s->items.b), free(s->defs.b), free(s->heap.a);
}

static void on_closed(uv_handle_t *h) {
  rm_sched *s = h->data;
  if (--s->open_handles) return;
  rm_sched_close_cb done = s->done;
  void *ud = s->ud;
  free_all(s);
  free(s);
  if (done) done(ud);
}

void rm_sched_close(rm_sched *s, rm_sched_close_cb done) {
  s->closing = true, s->done = done, s->open_handles = 3;
  uv_handle_t *hs[] = {(uv_handle_t *)&s->timer, (uv_handle_t *)&s->idle, (uv_handle_t *)&s->check};
  for (int i = 0; i < 3; i++) hs[i]->data = s, uv_close(hs[i], on_closed);
}

int rm_sched_set_batch(rm_sched *s, unsigned max_fires, int64_t max_us) {
  if (max_fires < 1 || max_us < 1) return RM_EINVAL;
  s->batch_fires = max_fires, s->batch_us = max_us;
  return 0;
}

void rm_sched_set_clock(rm_sched *s, rm_sched_clock_fn clock, void *clock_ud) {
  s->clock = clock ? clock : real_clock_us, s->clock_ud = clock_ud;
  s->offset_us = wall_us(s) - mono_us();
}

/* ---- schedules ---- */

static struct def *def_find(const rm_sched *s, const char *key) {
  return (struct def *)table_get(&s->defs, key, hash_key(key, s->seed));
}

/* The schedule called key, a new placeholder if there is none (NULL: out
 * of memory). */
static struct def *def_get(rm_sched *s, const char *key) {
  struct def *d = def_find(s, key);
  if (d) return d;
  size_t len = strlen(key);
  if (!(d = calloc(1, sizeof *d + len + 1))) return NULL;
  memcpy(d->key, key, len + 1);
  d->node = (struct node){NULL, d->key, hash_key(key, s->seed)};
  table_put(&s->defs, &d->node);
  return d;
}

/* Frees a placeholder that no item names. */
static void def_release(rm_sched *s, struct def *d) {
  if (d->defined || d->nitems) return;
  table_del(&s->defs, &d->node);
  free(d);
}

static void replan_def(rm_sched *s, struct def *d) {
  int64_t now = wall_ms(s);
  for (struct item *it = d->items; it; it = it->snext) plan(s, it, -1, now);
  maybe_arm(s);
}

int rm_sched_set_schedule(rm_sched *s, const char *key, rm_schedule *sched, char *err, size_t errlen) {
  if (!key_ok(key)) return rm__sched_errf(err, errlen, RM_EINVAL, "a schedule key needs 1-%d bytes", RM_SCHED_KEY_MAX);
  if (!sched || !rm_cron_kind_name(sched->kind))
    return rm__sched_errf(err, errlen, RM_EINVAL, "schedule %.64s: not a schedule", key);
  const rm_tz *tz = NULL;
  int rc = rm_tz_registry_get(s->tzs, sched->tz, &tz, err, errlen);
  if (rc) return rc;
  struct def *d = def_get(s, key);
  if (!d) return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
  if (d->defined) rm_cron_free(&d->sched);
  else d->defined = true, s->ndefined++;
  d->sched = *sched, d->tz = tz;
  memset(sched, 0, sizeof *sched);
  replan_def(s, d);
  return 0;
}

int rm_sched_remove_schedule(rm_sched *s, const char *key) {
  struct def *d = key_ok(key) ? def_find(s, key) : NULL;
  if (!d || !d->defined) return RM_ENOTFOUND;
  rm_cron_free(&d->sched);
  d->defined = false, s->ndefined--;
  replan_def(s, d);
  def_release(s, d);
  return 0;
}

/* ---- items ---- */

static struct item *item_find(const rm_sched *s, const char *key) {
  return key_ok(key) ? (struct item *)table_get(&s->items, key, hash_key(key, s->seed)) : NULL;
}

int rm_sched_add(rm_sched *s, const char *key, const char *schedule_key, bool enabled, int64_t last_fire_ms,
                 enum rm_sched_missed missed) {
  if (!key_ok(key) || !key_ok(schedule_key) || !rm_sched_missed_name(missed)) return RM_EINVAL;
  if (item_find(s, key)) return RM_EEXIST;
  if (heap_reserve(&s->heap, s->items.n + 1)) return RM_ENOMEM;
  struct def *d = def_get(s, schedule_key);
  size_t len = strlen(key);
  struct item *it = d ? malloc(sizeof *it + len + 1) : NULL;
  if (!it) {
    if (d) def_release(s, d);
    return RM_ENOMEM;
  }
  *it = (struct item){{NULL, it->key, hash_key(key, s->seed)}, d, NULL, d->items, NONE, 0, (uint8_t)missed, enabled};
  memcpy(it->key, key, len + 1);
  if (d->items) d->items->sprev = it;
  d->items = it, d->nitems++;
  table_put(&s->items, &it->node);
  s->ndisabled += !enabled;
  plan(s, it, last_fire_ms, wall_ms(s));
  maybe_arm(s);
  return 0;
}

int rm_sched_remove(rm_sched *s, const char *key) {
  struct item *it = item_find(s, key);
  if (!it) return RM_ENOTFOUND;
  struct def *d = it->def;
  unplan(s, it);
  if (it->sprev) it->sprev->snext = it->snext;
  else d->items = it->snext;
  if (it->snext) it->snext->sprev = it->sprev;
  d->nitems--;
  table_del(&s->items, &it->node);
  s->ndisabled -= !it->enabled;
  free(it);
  def_release(s, d);
  maybe_arm(s);
  return 0;
}

int rm_sched_enable(rm_sched *s, const char *key, bool enabled) {
  struct item *it = item_find(s, key);
  if (!it) return RM_ENOTFOUND;
  if (it->enabled == enabled) return 0;
  it->enabled = enabled;
  if (enabled) s->ndisabled--;
  else s->ndisabled++;
  plan(s, it, -1, wall_ms(s));
  maybe_arm(s);
  return 0;
}

int rm_sched_next_fires(rm_sched *s, const char *key, int n, int64_t *out) {
  struct item *it = item_find(s, key);
  if (!it) return RM_ENOTFOUND;
  if (n < 1 || !out) return RM_EINVAL;
  if (it->heap_idx == NONE) return 0;
  int64_t at = s->heap.a[it->heap_idx].at, now = wall_ms(s);
  /* What replan_fired will do if each fire is on time. */
  int64_t after = it->catchup_left > 1 ? at : at > now ? at : now;
  out[0] = at;
  int k = n > 1 ? rm_cron_next_n(&it->def->sched, it->def->tz, after, out + 1, n - 1) : 0;
  return k < 0 ? k : k + 1;
}

/* ---- figures ---- */

void rm_sched_get_stats(const rm_sched *s, rm_sched_stats *o) {
  *o = (rm_sched_stats){s->items.n, s->heap.n, s->ndisabled, s->ndefined, s->fires, s->catch_up_fires,
                        s->wakeups, s->yields, s->jumps, s->lat.n, s->lat.sum_s, s->lat.max_us};
}

int64_t rm_sched_lateness_us(const rm_sched *s, double q) {
  const struct lateness *l = &s->lat;
  if (!l->n) return 0;
  uint64_t rank = (uint64_t)ceil((q < 0 ? 0 : q > 1 ? 1 : q) * (double)l->n), seen = 0;
  if (rank < 1) rank = 1;
  for (unsigned i = 0; i < LAT_BUCKETS; i++)
    if ((seen += l->fine[i]) >= rank) return lat_upper(i) < l->max_us ? lat_upper(i) : l->max_us;
  return l->max_us;
}

void rm_sched_lateness_reset(rm_sched *s) { memset(&s->lat, 0, sizeof s->lat); }

int rm_sched_metrics_render(const rm_sched *s, rm_buf *out) {
  const char *h = "restmon_scheduler_lateness_seconds";
  int rc = rm_buf_printf(out, "# HELP %s How late scheduled fires ran (actual - scheduled); catch-up fires of "
                              "missed policies excluded.\n# TYPE %s histogram\n", h, h);
  uint64_t cum = 0;
  for (size_t i = 0; !rc && i < N_PROM; i++)
    cum += s->lat.prom[i], rc = rm_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h, (double)PROM_US[i] / 1e6,
                                              (unsigned long long)cum);
  size_t idle = s->items.n - s->heap.n - s->ndisabled;
  if (!rc)
    rc = rm_buf_printf(out,
                       "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n"
                       "# HELP restmon_scheduler_items Scheduled items by state (idle: no schedule or no fire time left).\n"
                       "# TYPE restmon_scheduler_items gauge\n"
                       "restmon_scheduler_items{state=\"planned\"} %zu\nrestmon_scheduler_items{state=\"disabled\"} %zu\n"
                       "restmon_scheduler_items{state=\"idle\"} %zu\n"
                       "# HELP restmon_scheduler_fires_total Items fired, on schedule or replaying missed fires.\n"
                       "# TYPE restmon_scheduler_fires_total counter\n"
                       "restmon_scheduler_fires_total{kind=\"on_time\"} %llu\n"
                       "restmon_scheduler_fires_total{kind=\"catch_up\"} %llu\n"
                       "# HELP restmon_scheduler_yields_total Fire batches cut short to let the loop poll for I/O.\n"
                       "# TYPE restmon_scheduler_yields_total counter\nrestmon_scheduler_yields_total %llu\n"
                       "# HELP restmon_scheduler_clock_jumps_total Wall-clock steps seen (items re-planned).\n"
                       "# TYPE restmon_scheduler_clock_jumps_total counter\nrestmon_scheduler_clock_jumps_total %llu\n",
                       h, (unsigned long long)s->lat.n, h, s->lat.sum_s, h, (unsigned long long)s->lat.n, (size_t)s->heap.n,
                       s->ndisabled, idle, (unsigned long long)(s->fires - s->catch_up_fires),
                       (unsigned long long)s->catch_up_fires, (unsigned long long)s->yields,
                       (unsigned long long)s->jumps);
  return rc;
}

/* ---- invariants ---- */

static int check_heap(const rm_sched *s, char *err, size_t errlen) {
  const struct heap *h = &s->heap;
  for (uint32_t i = 0; i < h->n; i++) {
    if (h->a[i].it->heap_idx != i) return rm__sched_errf(err, errlen, RM_EINVAL, "heap slot %u: item says %u", i, h->a[i].it->heap_idx);
    if (i && h->a[(i - 1) / 2].at > h->a[i].at) return rm__sched_errf(err, errlen, RM_EINVAL, "heap slot %u is before its parent", i);
    if (!h->a[i].it->enabled || !h->a[i].it->def->defined)
      return rm__sched_errf(err, errlen, RM_EINVAL, "item %s is planned but cannot fire", h->a[i].it->key);
  }
  return h->n > h->cap || h->cap < s->items.n ? rm__sched_errf(err, errlen, RM_EINVAL, "heap capacity") : 0;
}

static int check_items(const rm_sched *s, char *err, size_t errlen) {
  size_t n = 0, planned = 0, disabled = 0;
  for (size_t b = 0; b <= s->items.mask; b++)
    for (const struct node *nd = s->items.b[b]; nd; nd = nd->next, n++) {
      const struct item *it = (const struct item *)nd;
      if (nd->key != it->key || (nd->hash & s->items.mask) != b || nd->hash != hash_key(it->key, s->seed) ||
          item_find(s, it->key) != it)
        return rm__sched_errf(err, errlen, RM_EINVAL, "item %s: map entry", it->key);
      if (it->heap_idx != NONE && (it->heap_idx >= s->heap.n || s->heap.a[it->heap_idx].it != it))
        return rm__sched_errf(err, errlen, RM_EINVAL, "item %s: heap position %u", it->key, it->heap_idx);
      if (def_find(s, it->def->key) != it->def) return rm__sched_errf(err, errlen, RM_EINVAL, "item %s: schedule", it->key);
      planned += it->heap_idx != NONE, disabled += !it->enabled;
    }
  if (n != s->items.n || planned != s->heap.n || disabled != s->ndisabled)
    return rm__sched_errf(err, errlen, RM_EINVAL, "counts: %zu items (%zu), %zu planned (%u), %zu disabled (%zu)", n,
                          s->items.n, planned, s->heap.n, disabled, s->ndisabled);
  return 0;
}

static int check_defs(const rm_sched *s, char *err, size_t errlen) {
  size_t named = 0, defined = 0;
  for (size_t b = 0; b <= s->defs.mask; b++)
    for (const struct node *nd = s->defs.b[b]; nd; nd = nd->next) {
      const struct def *d = (const struct def *)nd;
      size_t k = 0;
      for (const struct item *it = d->items; it; it = it->snext, k++)
        if (it->def != d || (it->snext && it->snext->sprev != it) || (it == d->items && it->sprev))
          return rm__sched_errf(err, errlen, RM_EINVAL, "schedule %s: item list", d->key);
      if (k != d->nitems || (!d->defined && !k))
        return rm__sched_errf(err, errlen, RM_EINVAL, "schedule %s: %zu items, counted %zu", d->key, k, d->nitems);
      named += k, defined += d->defined;
    }
  if (named != s->items.n || defined != s->ndefined)
    return rm__sched_errf(err, errlen, RM_EINVAL, "schedules: %zu items named, %zu set (%zu)", named, defined, s->ndefined);
  return 0;
}

int rm_sched_check(const rm_sched *s, char *err, size_t errlen) {
  int rc = check_heap(s, err, errlen);
  if (!rc) rc = check_items(s, err, errlen);
  return rc ? rc : check_defs(s, err, errlen);
}
