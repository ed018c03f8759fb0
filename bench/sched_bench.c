/* sched_bench: the C side of the scheduler benchmark (bench/bench_sched.py
 * runs it). N items on every-N-seconds schedules fire through core/sched
 * on a libuv loop; everything is measured from inside the process.
 *
 * Usage: sched_bench [--items N] [--seconds S] [--seed X] [--shared]
 *                    [--burst P] [--batch F] [--unbatched] [--probe]
 *                    [--work-us W]
 *        sched_bench --noise S
 *   default      each item has its own schedule: every 1-60 s (uniform),
 *                random phase (ms); its memory counts as the item's
 *   --shared     60 shared schedules (every 1-60 s, phase 0)
 *   --burst P    one schedule, every P s: all items are due at once
 *   --batch F    batches of at most F fires (default RM_SCHED_BATCH_FIRES)
 *   --unbatched  no batch bound (the scheduler's yield turned off)
 *   --work-us W  each fire callback busy-waits W us: the work restmon's
 *                does per fire (building the trigger, queueing a run)
 *   --probe      a thread writes a timestamp to a socket every ms; the
 *                loop's delay in reading it is what I/O waits for
 *   --seconds 0  add the items and measure memory only
 *   --noise S    no scheduler: how late nanosleep(1 ms) wakes up, for S
 *                seconds (the machine's own timer noise, for reference)
 * After adding the items the loop runs 1 s of warm-up, then S measured
 * seconds. Prints one JSON object on stdout. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "sched/scheduler.h"
#include "util/err.h"

#define PROBE_MAX 200000

struct opts {
  long items, seconds, burst, batch, noise, work_us;
  uint64_t seed;
  bool shared, unbatched, probe;
};

struct probe {
  int fd[2];
  pthread_t thread;
  atomic_int stop;
  uv_poll_t poll;
  int64_t *delay_us;
  size_t n;
  long dropped;
};

struct bench {
  struct opts o;
  uv_loop_t loop;
  uv_timer_t stopper;
  rm_tz_registry *tzs;
  rm_sched *s;
  int32_t *period_s, *phase_ms; /* per item, for the expected count */
  uint64_t fires;
  struct probe pr;
};

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A version-4-shaped UUID: the keys restmon uses. */
static void uuid(uint64_t *seed, char out[37]) {
  uint64_t a = rnd(seed), b = rnd(seed);
  snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
           (unsigned)a & 0xfff, (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffULL));
}

static long rss_kb(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  if (f) fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_fire(const rm_sched_fire *f, void *ud) {
  (void)f;
  struct bench *b = ud;
  b->fires++;
  if (!b->o.work_us) return;
  uint64_t end = uv_hrtime() + (uint64_t)b->o.work_us * 1000;
  while (uv_hrtime() < end) continue;
}

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

static void run_for(struct bench *b, long ms) {
  uv_timer_start(&b->stopper, on_stop, (uint64_t)ms, 0);
  uv_run(&b->loop, UV_RUN_DEFAULT);
}

static void set_every(struct bench *b, const char *key, long period_s, int64_t start_ms) {
  rm_schedule sc;
  char err[256];
  if (rm_cron_every(&sc, period_s, RM_SCHED_SECONDS, start_ms, "UTC", err, sizeof err) ||
      rm_sched_set_schedule(b->s, key, &sc, err, sizeof err)) {
    fprintf(stderr, "sched_bench: schedule %s: %s\n", key, err);
    exit(1);
  }
}

/* Draws each item's period and phase, then adds the items (and in the
 * default mode their schedules). */
static void add_items(struct bench *b) {
  char key[37], skey[24];
  uint64_t seed = b->o.seed;
  for (long p = 1; b->o.shared && p <= 60; p++) snprintf(skey, sizeof skey, "every-%lds", p), set_every(b, skey, p, 0);
  if (b->o.burst) set_every(b, "burst", b->o.burst, 0);
  for (long i = 0; i < b->o.items; i++) {
    int32_t period = b->o.burst ? (int32_t)b->o.burst : (int32_t)(1 + rnd(&seed) % 60);
    int32_t phase = b->o.burst || b->o.shared ? 0 : (int32_t)(rnd(&seed) % ((uint64_t)period * 1000));
    b->period_s[i] = period, b->phase_ms[i] = phase;
    if (b->o.burst) snprintf(skey, sizeof skey, "burst");
    else if (b->o.shared) snprintf(skey, sizeof skey, "every-%lds", (long)period);
    else snprintf(skey, sizeof skey, "s%ld", i), set_every(b, skey, period, phase);
    uuid(&seed, key);
    int rc = rm_sched_add(b->s, key, skey, true, -1, RM_SCHED_MISSED_SKIP);
    if (rc) fprintf(stderr, "sched_bench: add: %s\n", rm_strerror(rc)), exit(1);
  }
}

/* How many fire times fall in [t0, t1): what a scheduler that misses
 * nothing fires in the window. */
static uint64_t expected_fires(const struct bench *b, int64_t t0, int64_t t1) {
  uint64_t n = 0;
  for (long i = 0; i < b->o.items; i++) {
    int64_t p = b->period_s[i] * 1000LL, f = b->phase_ms[i];
    n += (uint64_t)((t1 - 1 - f) / p - (t0 - 1 - f) / p);
  }
  return n;
}

/* ---- the I/O probe ---- */

/* The socket does not block the writer: a sample that does not fit while
 * the loop is stalled is dropped (those in the buffer show the stall),
 * and the thread always sees the stop flag. */
static void *probe_thread(void *arg) {
  struct probe *pr = arg;
  struct timespec ms = {0, 1000000};
  while (!atomic_load(&pr->stop)) {
    int64_t t = (int64_t)(uv_hrtime() / 1000);
    if (write(pr->fd[0], &t, sizeof t) != sizeof t) pr->dropped++;
    nanosleep(&ms, NULL);
  }
  return NULL;
}

static void on_probe(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  struct probe *pr = p->data;
  int64_t t[64], now = (int64_t)(uv_hrtime() / 1000);
  ssize_t got = read(pr->fd[1], t, sizeof t);
  for (ssize_t i = 0; i < got / (ssize_t)sizeof t[0] && pr->n < PROBE_MAX; i++) pr->delay_us[pr->n++] = now - t[i];
}

static void probe_start(struct bench *b) {
  struct probe *pr = &b->pr;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pr->fd) ||
      !(pr->delay_us = malloc(PROBE_MAX * sizeof *pr->delay_us)))
    perror("sched_bench: probe"), exit(1);
  uv_poll_init(&b->loop, &pr->poll, pr->fd[1]);
  pr->poll.data = pr;
  uv_poll_start(&pr->poll, UV_READABLE, on_probe);
  pthread_create(&pr->thread, NULL, probe_thread, pr);
}

static void probe_stop(struct bench *b) {
  atomic_store(&b->pr.stop, 1);
  pthread_join(b->pr.thread, NULL);
  uv_close((uv_handle_t *)&b->pr.poll, NULL);
  close(b->pr.fd[0]), close(b->pr.fd[1]);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static json_t *probe_json(struct probe *pr) {
  if (!pr->n) return json_null();
  qsort(pr->delay_us, pr->n, sizeof *pr->delay_us, cmp_i64);
  return json_pack("{sI sI sI sI sI}", "n", (json_int_t)pr->n, "dropped", (json_int_t)pr->dropped, "p50_us",
                   (json_int_t)pr->delay_us[pr->n / 2], "p99_us", (json_int_t)pr->delay_us[pr->n * 99 / 100], "max_us",
                   (json_int_t)pr->delay_us[pr->n - 1]);
}

/* ---- the machine's timer noise ---- */

static int noise(long seconds) {
  size_t n = 0, cap = (size_t)seconds * 1000;
  int64_t *late = malloc(cap * sizeof *late), end = (int64_t)uv_hrtime() + seconds * 1000000000LL;
  struct timespec ms = {0, 1000000};
  while (late && n < cap && (int64_t)uv_hrtime() < end) {
    int64_t t = (int64_t)uv_hrtime();
    nanosleep(&ms, NULL);
    late[n++] = ((int64_t)uv_hrtime() - t) / 1000 - 1000;
  }
  if (!n) return fprintf(stderr, "sched_bench: out of memory\n"), 1;
  qsort(late, n, sizeof *late, cmp_i64);
  printf("{\"sleeps\":%zu,\"p50_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,\"max_us\":%lld}\n", n,
         (long long)late[n / 2], (long long)late[n * 99 / 100], (long long)late[n * 999 / 1000], (long long)late[n - 1]);
  free(late);
  return 0;
}

/* ---- main ---- */

static long arg_long(const char *v, long lo, long hi, const char *what) {
  char *end;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || *end || n < lo || n > hi) fprintf(stderr, "sched_bench: %s must be %ld-%ld\n", what, lo, hi), exit(2);
  return n;
}

static void parse_args(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.items = 10000, .seconds = 20, .seed = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--items") == 0) o->items = arg_long(v, 1, 10000000, a), i++;
    else if (strcmp(a, "--seconds") == 0) o->seconds = arg_long(v, 0, 3600, a), i++;
    else if (strcmp(a, "--seed") == 0) o->seed = (uint64_t)arg_long(v, 0, 1L << 40, a), i++;
    else if (strcmp(a, "--burst") == 0) o->burst = arg_long(v, 1, 3600, a), i++;
    else if (strcmp(a, "--work-us") == 0) o->work_us = arg_long(v, 0, 1000000, a), i++;
    else if (strcmp(a, "--noise") == 0) o->noise = arg_long(v, 1, 600, a), i++;
    else if (strcmp(a, "--batch") == 0) o->batch = arg_long(v, 1, 1000000, a), i++;
    else if (strcmp(a, "--shared") == 0) o->shared = true;
    else if (strcmp(a, "--unbatched") == 0) o->unbatched = true;
    else if (strcmp(a, "--probe") == 0) o->probe = true;
    else fprintf(stderr, "sched_bench: unknown argument %s (see bench/sched_bench.c)\n", a), exit(2);
  }
}

static json_t *run(struct bench *b) {
  rm_sched_stats st0, st;
  run_for(b, 1000); /* warm-up: the fires that were due while the items were added */
  rm_sched_lateness_reset(b->s);
  rm_sched_get_stats(b->s, &st0);
  uint64_t fires0 = b->fires;
  double c0 = cpu_s();
  int64_t t0 = wall_ms(), m0 = (int64_t)uv_hrtime();
  run_for(b, b->o.seconds * 1000);
  double wall = (double)((int64_t)uv_hrtime() - m0) / 1e9, cpu = cpu_s() - c0;
  uint64_t fires = b->fires - fires0, expected = expected_fires(b, t0, wall_ms());
  rm_sched_get_stats(b->s, &st);
  return json_pack("{sf sI sI sf sI sI sI sI sf sf sf sI sI}", "seconds", wall, "fires", (json_int_t)fires,
                   "expected_fires", (json_int_t)expected, "fires_per_s", fires / wall, "late_p50_us",
                   (json_int_t)rm_sched_lateness_us(b->s, 0.5), "late_p99_us",
                   (json_int_t)rm_sched_lateness_us(b->s, 0.99), "late_p999_us",
                   (json_int_t)rm_sched_lateness_us(b->s, 0.999), "late_max_us", (json_int_t)st.late_max_us, "cpu_s",
                   cpu, "cpu_pct", 100 * cpu / wall, "cpu_us_per_fire", fires ? cpu * 1e6 / (double)fires : 0.0,
                   "wakeups", (json_int_t)(st.wakeups - st0.wakeups), "yields", (json_int_t)(st.yields - st0.yields));
}

int main(int argc, char **argv) {
  struct bench b = {0};
  parse_args(argc, argv, &b.o);
  if (b.o.noise) return noise(b.o.noise);
  b.period_s = calloc((size_t)b.o.items, sizeof *b.period_s);
  b.phase_ms = calloc((size_t)b.o.items, sizeof *b.phase_ms);
  uv_loop_init(&b.loop);
  uv_timer_init(&b.loop, &b.stopper);
  b.tzs = rm_tz_registry_new(NULL);
  if (!b.period_s || !b.phase_ms || !b.tzs || rm_sched_new(&b.s, &b.loop, b.tzs, on_fire, &b))
    return fprintf(stderr, "sched_bench: out of memory\n"), 1;
  if (b.o.batch) rm_sched_set_batch(b.s, (unsigned)b.o.batch, RM_SCHED_BATCH_US);
  if (b.o.unbatched) rm_sched_set_batch(b.s, UINT32_MAX, INT64_MAX);
  long rss0 = rss_kb();
  int64_t a0 = (int64_t)uv_hrtime();
  add_items(&b);
  double add_s = (double)((int64_t)uv_hrtime() - a0) / 1e9;
  long rss1 = rss_kb();
  json_t *out = json_pack("{sI sI ss sb sf sI sI sf}", "items", (json_int_t)b.o.items, "seed", (json_int_t)b.o.seed,
                          "schedules", b.o.burst ? "burst" : b.o.shared ? "shared" : "own", "batched", !b.o.unbatched,
                          "add_s", add_s, "rss_base_kb", (json_int_t)rss0, "rss_items_kb", (json_int_t)rss1,
                          "bytes_per_item", (double)(rss1 - rss0) * 1024.0 / (double)b.o.items);
  if (b.o.probe) probe_start(&b);
  if (b.o.seconds) {
    json_t *r = run(&b);
    json_object_update(out, r);
    json_decref(r);
  }
  if (b.o.probe) probe_stop(&b), json_object_set_new(out, "io_probe", probe_json(&b.pr));
  rm_sched_close(b.s, NULL);
  uv_close((uv_handle_t *)&b.stopper, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  rm_tz_registry_free(b.tzs);
  json_dumpf(out, stdout, JSON_COMPACT);
  putchar('\n');
  json_decref(out);
  free(b.period_s), free(b.phase_ms), free(b.pr.delay_us);
  return 0;
}
