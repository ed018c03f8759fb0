/* core/sched/scheduler: items fire on a real loop at their wall-clock
 * times (every-second schedules, so each test runs for a second or
 * three), schedules re-plan their items, missed-fire policies, wall-clock
 * jumps (through a test clock), bounded batches, churn against the
 * invariant check, and close (ASan finds leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "sched/cron.h"
#include "sched/scheduler.h"
#include "sched/tz.h"
#include "util/err.h"

#define MAX_FIRES 20000

struct rec {
  char key[32];
  int64_t scheduled, actual, late_us;
  bool catch_up;
};

struct ctx {
  uv_loop_t loop;
  uv_timer_t stopper;
  rm_tz_registry *tzs;
  rm_sched *s;
  struct rec *fires;
  size_t n;
  int64_t clock_offset_us; /* the test clock: real time + this */
  const char *remove_on_fire; /* an item the fire callback removes when it fires */
  bool close_on_fire;
  bool closed;
  int io_fd;            /* written on the first fire of a burst */
  int io_rfd;           /* its other end, polled */
  size_t fires_at_io;   /* fires seen when the loop polled that I/O */
  uv_poll_t io;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t test_clock(void *ud) {
  struct ctx *c = ud;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + c->clock_offset_us;
}

static void on_fire(const rm_sched_fire *f, void *ud) {
  struct ctx *c = ud;
  if (c->n < MAX_FIRES) {
    struct rec *r = &c->fires[c->n++];
    *r = (struct rec){.scheduled = f->scheduled_ms, .actual = f->actual_ms, .late_us = f->lateness_us,
                      .catch_up = f->catch_up};
    snprintf(r->key, sizeof r->key, "%s", f->key);
  }
  if (c->io_fd >= 0 && c->n == 1) assert_int_equal(write(c->io_fd, "x", 1), 1);
  if (c->remove_on_fire && strcmp(f->key, c->remove_on_fire) == 0) assert_int_equal(rm_sched_remove(c->s, f->key), 0);
  if (c->close_on_fire) {
    c->close_on_fire = false;
    rm_sched_close(c->s, NULL);
    c->s = NULL;
  }
}

static int setup(void **state) {
  struct ctx *c = calloc(1, sizeof *c);
  c->fires = calloc(MAX_FIRES, sizeof *c->fires);
  c->io_fd = -1;
  uv_loop_init(&c->loop);
  uv_timer_init(&c->loop, &c->stopper);
  c->tzs = rm_tz_registry_new(NULL);
  assert_int_equal(rm_sched_new(&c->s, &c->loop, c->tzs, on_fire, c), 0);
  *state = c;
  return 0;
}

static void on_sched_closed(void *ud) { ((struct ctx *)ud)->closed = true; }

static int teardown(void **state) {
  struct ctx *c = *state;
  if (c->s) rm_sched_close(c->s, on_sched_closed);
  uv_close((uv_handle_t *)&c->stopper, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&c->loop), 0);
  rm_tz_registry_free(c->tzs);
  free(c->fires);
  free(c);
  return 0;
}

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop until the wall clock reads until_ms. The loop's clock
 * stood still while the test worked outside it: brought up to date first. */
static void run_until(struct ctx *c, int64_t until_ms) {
  uv_update_time(&c->loop);
  int64_t d = until_ms - now_ms();
  uv_timer_start(&c->stopper, on_stop, d > 0 ? (uint64_t)d : 0, 0);
  uv_run(&c->loop, UV_RUN_DEFAULT);
}

/* Waits until early in a second, so that counting whole-second fire
 * times in a window does not depend on where in its second a test began. */
static void fresh_second(void) {
  while (now_ms() % 1000 < 50 || now_ms() % 1000 > 600) usleep(10000);
}

static void every(struct ctx *c, const char *key, int64_t n, enum rm_sched_unit unit, int64_t start_ms) {
  rm_schedule sc;
  char err[256] = "";
  assert_int_equal(rm_cron_every(&sc, n, unit, start_ms, "UTC", err, sizeof err), 0);
  if (rm_sched_set_schedule(c->s, key, &sc, err, sizeof err)) fail_msg("%s", err);
  rm_cron_free(&sc);
}

static void check(struct ctx *c) {
  char err[256] = "";
  if (c->s && rm_sched_check(c->s, err, sizeof err)) fail_msg("invariant: %s", err);
}

static size_t count(const struct ctx *c, const char *key, bool catch_up) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) n += strcmp(c->fires[i].key, key) == 0 && c->fires[i].catch_up == catch_up;
  return n;
}

/* ---- firing ---- */

static void test_items_fire_at_their_whole_second_times(void **state) {
  struct ctx *c = *state;
  fresh_second();
  every(c, "1s", 1, RM_SCHED_SECONDS, 0);
  every(c, "2s", 2, RM_SCHED_SECONDS, 0);
  const char *keys[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) assert_int_equal(rm_sched_add(c->s, keys[i], "1s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "d", "2s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  int64_t first = (now_ms() / 1000 + 1) * 1000;
  run_until(c, first + 2300);
  for (int i = 0; i < 3; i++) assert_int_equal(count(c, keys[i], false), 3);
  assert_int_equal(count(c, "d", false), first % 2000 ? 1 : 2);
  for (size_t i = 0; i < c->n; i++) {
    const struct rec *r = &c->fires[i];
    assert_true(r->scheduled >= first && r->scheduled <= first + 2000 && r->scheduled % 1000 == 0);
    assert_true(r->actual >= r->scheduled);
    if (r->late_us > 50000) fail_msg("%s at %lld: %lld us late", r->key, (long long)r->scheduled, (long long)r->late_us);
  }
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.items, 4);
  assert_int_equal(st.planned, 4);
  assert_int_equal(st.schedules, 2);
  assert_int_equal(st.fires, c->n);
  assert_int_equal(st.late_n, c->n);
  assert_true(rm_sched_lateness_us(c->s, 0.5) <= rm_sched_lateness_us(c->s, 0.99));
  assert_true(rm_sched_lateness_us(c->s, 0.99) <= st.late_max_us);
  check(c);
}

static void test_changing_a_schedule_replans_only_its_items(void **state) {
  struct ctx *c = *state;
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  every(c, "t", 1, RM_SCHED_SECONDS, 0);
  assert_int_equal(rm_sched_add(c->s, "a", "s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "b", "s", false, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "c", "t", true, -1, RM_SCHED_MISSED_ONCE), 0);
  int64_t phase = 317, t0 = now_ms();
  every(c, "s", 1, RM_SCHED_SECONDS, phase);
  int64_t next[2];
  assert_int_equal(rm_sched_next_fires(c->s, "a", 2, next), 2);
  assert_int_equal(next[0] % 1000, phase);
  assert_true(next[0] > t0 && next[0] <= t0 + 1000 + 5);
  assert_int_equal(next[1], next[0] + 1000);
  assert_int_equal(rm_sched_next_fires(c->s, "b", 2, next), 0); /* still disabled */
  assert_int_equal(rm_sched_next_fires(c->s, "c", 1, next), 1);
  assert_int_equal(next[0] % 1000, 0);
  run_until(c, t0 + 2100);
  assert_true(count(c, "a", false) >= 2);
  assert_int_equal(count(c, "b", false), 0);
  for (size_t i = 0; i < c->n; i++)
    assert_int_equal(c->fires[i].scheduled % 1000, strcmp(c->fires[i].key, "a") == 0 ? phase : 0);
  check(c);
}

static void test_remove_disable_and_schedule_removal_stop_fires(void **state) {
  struct ctx *c = *state;
  fresh_second();
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  const char *keys[] = {"gone", "off", "on", "self", "orphan"};
  for (int i = 0; i < 4; i++) assert_int_equal(rm_sched_add(c->s, keys[i], "s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "orphan", "later", true, -1, RM_SCHED_MISSED_ONCE), 0); /* not set yet */
  assert_int_equal(rm_sched_remove(c->s, "gone"), 0);
  assert_int_equal(rm_sched_remove(c->s, "gone"), RM_ENOTFOUND);
  assert_int_equal(rm_sched_enable(c->s, "off", false), 0);
  c->remove_on_fire = "self";
  int64_t t0 = now_ms();
  run_until(c, (t0 / 1000 + 2) * 1000 + 300); /* two ticks */
  assert_int_equal(count(c, "gone", false), 0);
  assert_int_equal(count(c, "off", false), 0);
  assert_int_equal(count(c, "on", false), 2);
  assert_int_equal(count(c, "self", false), 1);
  assert_int_equal(count(c, "orphan", false), 0);
  check(c);
  /* Back on; the schedule of "orphan" set; then "s" removed. */
  assert_int_equal(rm_sched_enable(c->s, "off", true), 0);
  every(c, "later", 1, RM_SCHED_SECONDS, 0);
  c->n = 0;
  run_until(c, (now_ms() / 1000 + 1) * 1000 + 300);
  assert_int_equal(count(c, "off", false), 1);
  assert_int_equal(count(c, "orphan", false), 1);
  assert_int_equal(rm_sched_remove_schedule(c->s, "s"), 0);
  assert_int_equal(rm_sched_remove_schedule(c->s, "s"), RM_ENOTFOUND);
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.items, 3);
  assert_int_equal(st.planned, 1);
  c->n = 0;
  run_until(c, (now_ms() / 1000 + 1) * 1000 + 300);
  assert_int_equal(count(c, "on", false) + count(c, "off", false), 0);
  assert_int_equal(count(c, "orphan", false), 1);
  check(c);
}

/* ---- missed fires ---- */

static void test_missed_fire_policies_once_skip_all(void **state) {
  struct ctx *c = *state;
  fresh_second();
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  int64_t t0 = now_ms(), last_tick = t0 / 1000 * 1000, last_fire = last_tick - 9500; /* 10 missed */
  assert_int_equal(rm_sched_add(c->s, "once", "s", true, last_fire, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "skip", "s", true, last_fire, RM_SCHED_MISSED_SKIP), 0);
  assert_int_equal(rm_sched_add(c->s, "all", "s", true, last_fire, RM_SCHED_MISSED_ALL), 0);
  assert_int_equal(rm_sched_add(c->s, "recent", "s", true, last_tick, RM_SCHED_MISSED_ALL), 0); /* none missed */
  /* 30 minutes down: all replays the first RM_SCHED_CATCHUP_MAX. */
  assert_int_equal(rm_sched_add(c->s, "long", "s", true, last_tick - 1800 * 1000, RM_SCHED_MISSED_ALL), 0);
  run_until(c, last_tick + 1300);
  assert_int_equal(count(c, "once", true), 1);
  assert_int_equal(count(c, "skip", true), 0);
  assert_int_equal(count(c, "all", true), 10);
  assert_int_equal(count(c, "recent", true), 0);
  assert_int_equal(count(c, "long", true), RM_SCHED_CATCHUP_MAX);
  const char *keys[] = {"once", "skip", "all", "recent", "long"};
  for (int k = 0; k < 5; k++) assert_int_equal(count(c, keys[k], false), 1); /* then on schedule */
  int64_t prev = 0;
  for (size_t i = 0; i < c->n; i++) {
    const struct rec *r = &c->fires[i];
    if (strcmp(r->key, "once") == 0 && r->catch_up) assert_int_equal(r->scheduled, last_fire + 500);
    if (strcmp(r->key, "all") == 0 && r->catch_up) {
      assert_true(r->scheduled > prev && r->scheduled <= last_tick); /* oldest first */
      prev = r->scheduled;
    }
    if (!r->catch_up) assert_int_equal(r->scheduled, last_tick + 1000);
  }
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.catch_up_fires, 1 + 10 + RM_SCHED_CATCHUP_MAX);
  assert_int_equal(st.late_n, 5); /* catch-ups are not lateness */
  check(c);
}

static void test_wall_clock_jumps_replan_items(void **state) {
  struct ctx *c = *state;
  rm_sched_set_clock(c->s, test_clock, c);
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  const char *keys[] = {"once", "skip", "all"};
  fresh_second();
  for (int i = 0; i < 3; i++) assert_int_equal(rm_sched_add(c->s, keys[i], "s", true, -1, (enum rm_sched_missed)(i + 1)), 0);
  c->clock_offset_us += 10 * 1000000; /* forward: 10 fire times skipped over */
  run_until(c, now_ms() + 1200);
  assert_int_equal(count(c, "once", true), 1);
  assert_int_equal(count(c, "skip", true), 0);
  size_t all = count(c, "all", true);
  assert_true(all >= 9 && all <= 11);
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.clock_jumps, 1);
  c->clock_offset_us -= 3600LL * 1000000; /* back an hour: the next fire is not an hour away */
  c->n = 0;
  run_until(c, now_ms() + 2300);
  for (int i = 0; i < 3; i++) assert_true(count(c, keys[i], false) >= 1);
  for (int i = 0; i < 3; i++) assert_int_equal(count(c, keys[i], true), 0);
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.clock_jumps, 2);
  check(c);
}

/* ---- calendar ---- */

static void test_next_fires_match_rm_cron_next_n(void **state) {
  struct ctx *c = *state;
  const char *exprs[] = {"0 */5 * * * *", "0 9 * * MON-FRI", "30 2 * * *"};
  const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York"};
  char err[256] = "", key[16];
  while (now_ms() % 300000 > 297000) usleep(10000); /* no fire time between planning and t0 */
  int64_t t0 = now_ms();
  for (int i = 0; i < 3; i++) {
    rm_schedule sc;
    snprintf(key, sizeof key, "c%d", i);
    assert_int_equal(rm_cron_parse(&sc, exprs[i], zones[i], err, sizeof err), 0);
    if (rm_sched_set_schedule(c->s, key, &sc, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(rm_sched_add(c->s, key, key, true, -1, RM_SCHED_MISSED_SKIP), 0);
  }
  const char *dates[] = {"2020-01-01T00:00:00Z", "2999-05-01T09:30", "2999-06-01T09:30"};
  rm_schedule ds;
  assert_int_equal(rm_cron_dates(&ds, dates, 3, "Europe/Berlin", err, sizeof err), 0);
  assert_int_equal(rm_sched_set_schedule(c->s, "d", &ds, err, sizeof err), 0);
  assert_int_equal(rm_sched_add(c->s, "d", "d", true, -1, RM_SCHED_MISSED_SKIP), 0);
  for (int i = 0; i < 3; i++) {
    rm_schedule sc;
    const rm_tz *tz;
    int64_t want[10], got[10];
    snprintf(key, sizeof key, "c%d", i);
    assert_int_equal(rm_cron_parse(&sc, exprs[i], zones[i], err, sizeof err), 0);
    assert_int_equal(rm_tz_registry_get(c->tzs, zones[i], &tz, err, sizeof err), 0);
    assert_int_equal(rm_cron_next_n(&sc, tz, t0, want, 10), 10);
    assert_int_equal(rm_sched_next_fires(c->s, key, 10, got), 10);
    assert_memory_equal(want, got, sizeof want);
    rm_cron_free(&sc);
  }
  int64_t got[10];
  assert_int_equal(rm_sched_next_fires(c->s, "d", 10, got), 2); /* the past date is not listed */
  assert_int_equal(rm_sched_next_fires(c->s, "nope", 10, got), RM_ENOTFOUND);
  assert_int_equal(rm_sched_next_fires(c->s, "d", 0, got), RM_EINVAL);
  check(c);
}

static void test_bad_arguments_are_refused(void **state) {
  struct ctx *c = *state;
  char err[256] = "", long_key[300];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  rm_schedule sc;
  assert_int_equal(rm_cron_every(&sc, 5, RM_SCHED_MINUTES, 0, "Mars/Olympus_Mons", err, sizeof err), 0);
  assert_int_equal(rm_sched_set_schedule(c->s, "m", &sc, err, sizeof err), RM_ENOTFOUND);
  assert_non_null(strstr(err, "Mars/Olympus_Mons"));
  assert_int_equal(sc.kind, RM_SCHED_EVERY); /* not taken */
  rm_cron_free(&sc);
  assert_int_equal(rm_sched_set_schedule(c->s, "", &sc, err, sizeof err), RM_EINVAL);
  every(c, "s", 1, RM_SCHED_MINUTES, 0);
  assert_int_equal(rm_sched_add(c->s, "", "s", true, -1, RM_SCHED_MISSED_ONCE), RM_EINVAL);
  assert_int_equal(rm_sched_add(c->s, long_key, "s", true, -1, RM_SCHED_MISSED_ONCE), RM_EINVAL);
  assert_int_equal(rm_sched_add(c->s, "a", "s", true, -1, (enum rm_sched_missed)0), RM_EINVAL);
  assert_int_equal(rm_sched_add(c->s, "a", "s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "a", "s", true, -1, RM_SCHED_MISSED_ONCE), RM_EEXIST);
  assert_int_equal(rm_sched_enable(c->s, "b", true), RM_ENOTFOUND);
  assert_int_equal(rm_sched_remove_schedule(c->s, "never"), RM_ENOTFOUND);
  assert_int_equal(rm_sched_set_batch(c->s, 0, 100), RM_EINVAL);
  for (int m = 1; m <= 3; m++) assert_int_equal(rm_sched_missed_parse(rm_sched_missed_name((enum rm_sched_missed)m)), m);
  assert_int_equal(rm_sched_missed_parse("twice"), RM_EINVAL);
  check(c);
}

/* ---- scale, batches, close ---- */

static uint64_t rng(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void test_churn_of_10000_items_keeps_invariants(void **state) {
  struct ctx *c = *state;
  enum { N = 10000, SCHEDULES = 50 };
  static bool present[N];
  char key[48], skey[16];
  uint64_t seed = 42;
  size_t live = 0;
  memset(present, 0, sizeof present);
  for (int i = 0; i < SCHEDULES; i++) {
    snprintf(skey, sizeof skey, "s%d", i);
    every(c, skey, 1 + i, RM_SCHED_SECONDS, (int64_t)(rng(&seed) % 60000));
  }
  for (int op = 0; op < 100000; op++) {
    unsigned i = (unsigned)(rng(&seed) % N), r = (unsigned)(rng(&seed) % 100);
    snprintf(key, sizeof key, "3f0c9a%04u-7b1e-4c2d-9e8f-%012u", i, i * 7919u);
    snprintf(skey, sizeof skey, "s%u", (unsigned)(rng(&seed) % (SCHEDULES + 5))); /* a few never set */
    if (!present[i]) {
      assert_int_equal(rm_sched_add(c->s, key, skey, r % 3 != 0, r < 10 ? now_ms() - 5000 : -1,
                                    (enum rm_sched_missed)(1 + r % 3)), 0);
      present[i] = true, live++;
    } else if (r < 50) {
      assert_int_equal(rm_sched_remove(c->s, key), 0);
      present[i] = false, live--;
    } else if (r < 95) {
      assert_int_equal(rm_sched_enable(c->s, key, r % 2), 0);
    } else {
      every(c, skey, 1 + r % 3, RM_SCHED_SECONDS, r * 37); /* 1-3 s: they fire in the run below */
    }
    if (op % 10000 == 0) check(c);
  }
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.items, live);
  check(c);
  run_until(c, now_ms() + 1500); /* they fire (some of them each second) */
  check(c);
  assert_true(c->n > 100);
  for (unsigned i = 0; i < N; i++) {
    if (!present[i]) continue;
    snprintf(key, sizeof key, "3f0c9a%04u-7b1e-4c2d-9e8f-%012u", i, i * 7919u);
    assert_int_equal(rm_sched_remove(c->s, key), 0);
  }
  rm_sched_get_stats(c->s, &st);
  assert_int_equal(st.items, 0);
  assert_int_equal(st.planned, 0);
  check(c);
}

static void on_io(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  struct ctx *c = p->data;
  char b;
  assert_int_equal(read(c->io_rfd, &b, 1), 1);
  c->fires_at_io = c->n;
  uv_poll_stop(p);
}

static void test_a_burst_fires_in_bounded_batches_between_polls(void **state) {
  struct ctx *c = *state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  c->io_fd = sv[0], c->io_rfd = sv[1];
  uv_poll_init(&c->loop, &c->io, sv[1]);
  c->io.data = c;
  uv_poll_start(&c->io, UV_READABLE, on_io);
  assert_int_equal(rm_sched_set_batch(c->s, 100, 1000000), 0);
  every(c, "s", 1, RM_SCHED_MINUTES, 0);
  char key[16];
  int64_t last = (now_ms() / 60000) * 60000 - 1; /* one fire due now, for each */
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "i%d", i);
    assert_int_equal(rm_sched_add(c->s, key, "s", true, last, RM_SCHED_MISSED_ONCE), 0);
  }
  run_until(c, now_ms() + 300);
  assert_int_equal(c->n, 5000);
  assert_true(c->fires_at_io > 0 && c->fires_at_io <= 200); /* polled after the first batch */
  rm_sched_stats st;
  rm_sched_get_stats(c->s, &st);
  assert_true(st.yields >= 49);
  uv_close((uv_handle_t *)&c->io, NULL);
  close(sv[0]), close(sv[1]);
  c->io_fd = -1;
  check(c);
}

static void test_close_with_pending_items_frees_everything(void **state) {
  struct ctx *c = *state;
  char key[16];
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  rm_schedule ds;
  char err[128];
  const char *dates[] = {"2999-01-01"};
  assert_int_equal(rm_cron_dates(&ds, dates, 1, "UTC", err, sizeof err), 0);
  assert_int_equal(rm_sched_set_schedule(c->s, "d", &ds, err, sizeof err), 0);
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "i%d", i);
    assert_int_equal(rm_sched_add(c->s, key, i % 3 ? "s" : i % 2 ? "d" : "unset", i % 5 != 0, -1, RM_SCHED_MISSED_ALL), 0);
  }
  c->close_on_fire = true; /* closes from inside the first fire */
  run_until(c, now_ms() + 1200);
  assert_null(c->s);
  assert_int_equal(c->n, 1);
}

static void test_metrics_render_prometheus_families(void **state) {
  struct ctx *c = *state;
  every(c, "s", 1, RM_SCHED_SECONDS, 0);
  assert_int_equal(rm_sched_add(c->s, "a", "s", true, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "b", "s", false, -1, RM_SCHED_MISSED_ONCE), 0);
  assert_int_equal(rm_sched_add(c->s, "c", "none", true, -1, RM_SCHED_MISSED_ONCE), 0);
  run_until(c, (now_ms() / 1000 + 1) * 1000 + 200);
  rm_buf b = RM_BUF_INIT;
  assert_int_equal(rm_sched_metrics_render(c->s, &b), 0);
  char want[128];
  snprintf(want, sizeof want, "restmon_scheduler_lateness_seconds_count %zu\n", c->n);
  assert_non_null(strstr(b.data, want));
  assert_non_null(strstr(b.data, "# TYPE restmon_scheduler_lateness_seconds histogram\n"));
  assert_non_null(strstr(b.data, "restmon_scheduler_lateness_seconds_bucket{le=\"0.01\"} "));
  assert_non_null(strstr(b.data, "restmon_scheduler_items{state=\"planned\"} 1\n"));
  assert_non_null(strstr(b.data, "restmon_scheduler_items{state=\"disabled\"} 1\n"));
  assert_non_null(strstr(b.data, "restmon_scheduler_items{state=\"idle\"} 1\n"));
  rm_buf_free(&b);
  rm_sched_lateness_reset(c->s);
  assert_int_equal(rm_sched_lateness_us(c->s, 0.99), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_items_fire_at_their_whole_second_times, setup, teardown),
      cmocka_unit_test_setup_teardown(test_changing_a_schedule_replans_only_its_items, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remove_disable_and_schedule_removal_stop_fires, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missed_fire_policies_once_skip_all, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wall_clock_jumps_replan_items, setup, teardown),
      cmocka_unit_test_setup_teardown(test_next_fires_match_rm_cron_next_n, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_churn_of_10000_items_keeps_invariants, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_burst_fires_in_bounded_batches_between_polls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_with_pending_items_frees_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics_render_prometheus_families, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
