/* rm_sched: fires items (workflows, checks) on their schedules from one
 * libuv loop, for up to hundreds of thousands of items.
 *
 * Schedules (rm_schedule, cron.h) are shared definitions registered by
 * key; an item is registered by its own key and names the schedule it
 * follows. Changing a schedule re-plans the items that name it and
 * nothing else. An item whose schedule is not set (yet, or any more) or
 * has no fire time left stays registered and fires nothing until the
 * schedule is set again.
 *
 * Structure: items sit in a hash map by key and, while they have a next
 * fire time, in a binary min-heap by that time; each item knows its heap
 * position, so adding, removing and re-planning one is O(log n). Each
 * schedule keeps a list of its items. ONE uv_timer is armed for the heap's
 * top; nothing ever walks all items, except after a wall-clock jump.
 *
 * Batches: each wake-up fires what is due, oldest first, but at most
 * batch_fires fires or batch_us of wall time (rm_sched_set_batch); then it
 * yields: the rest runs after the loop has polled for I/O once (a uv_check
 * handle, with a uv_idle handle so that poll does not block), so a burst
 * of fires never starves HTTP I/O. Each cut batch counts as a yield.
 *
 * Time: schedules and fire times are wall-clock UTC milliseconds
 * (CLOCK_REALTIME); libuv's timers run on the monotonic clock. Every time
 * the timer is armed, the wall-clock distance to the top item is turned
 * into a monotonic deadline, and every wake-up re-reads the wall clock,
 * so a fire never happens before its wall-clock time and a slewed clock
 * is followed. The timer sleeps at most RM_SCHED_MAX_SLEEP_MS, so a wall
 * clock that is stepped is seen within that long: a change of more than
 * RM_SCHED_JUMP_MS in (wall - monotonic) between two wake-ups is a jump
 * (logged, counted). After a jump back every item is planned anew from
 * the new time (otherwise an item would wait for as long as the jump);
 * after a jump forward the fires skipped over count as missed, as if the
 * server had been down for that long, and each item's missed policy
 * applies.
 *
 * Lateness: actual - scheduled of every fire, in the fire callback and
 * aggregated (rm_sched_lateness_us, rm_sched_metrics_render), except the
 * catch-up fires of a missed policy, which are late by design.
 *
 * Loop thread only. Keys are NUL-terminated strings of 1-RM_SCHED_KEY_MAX
 * bytes, copied. Every function returns 0 or a negative RM_E* code
 * (util/err.h) unless it says otherwise. */
#ifndef RM_SCHED_SCHEDULER_H
#define RM_SCHED_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sched/cron.h"
#include "sched/tz.h"
#include "util/buf.h"

#define RM_SCHED_KEY_MAX 255
/* The most missed fires one item replays under RM_SCHED_MISSED_ALL. */
#define RM_SCHED_CATCHUP_MAX 1000
#define RM_SCHED_BATCH_FIRES 1024
#define RM_SCHED_BATCH_US 2000
#define RM_SCHED_MAX_SLEEP_MS 1000
#define RM_SCHED_JUMP_MS 1000

/* What an item does about fires whose time passed while it could not fire
 * (the server was down: last_fire_ms of rm_sched_add; or the wall clock
 * jumped forward). Stored: the numbers are pinned; rm_sched_missed_name
 * gives the string. */
enum rm_sched_missed {
  RM_SCHED_MISSED_ONCE = 1, /* one catch-up fire now, then on schedule */
  RM_SCHED_MISSED_SKIP = 2, /* none: the next fire time after now */
  RM_SCHED_MISSED_ALL = 3,  /* every missed fire, oldest first, at most RM_SCHED_CATCHUP_MAX (logged) */
};

/* "once", "skip", "all"; NULL if unknown. */
const char *rm_sched_missed_name(enum rm_sched_missed m);
/* The policy named s, or RM_EINVAL. */
int rm_sched_missed_parse(const char *s);

typedef struct rm_sched rm_sched;

/* One fire, as the callback sees it. */
typedef struct rm_sched_fire {
  const char *key;      /* the item; borrowed for the call (and until the item is removed) */
  int64_t scheduled_ms; /* the fire time, UTC ms (a catch-up: the first missed time it stands for) */
  int64_t actual_ms;    /* the wall clock when it fired, UTC ms */
  int64_t lateness_us;  /* actual - scheduled, microseconds (>= 0) */
  bool catch_up;        /* replayed by the missed policy; not in the lateness figures */
} rm_sched_fire;

/* Runs on the loop thread. It may call any rm_sched function, including
 * removing the item that fires and rm_sched_close. */
typedef void (*rm_sched_fire_cb)(const rm_sched_fire *f, void *ud);
typedef void (*rm_sched_close_cb)(void *ud);
/* The wall clock, microseconds since the epoch (tests move it). */
typedef int64_t (*rm_sched_clock_fn)(void *clock_ud);

/* A new scheduler on loop in *out. tzs (borrowed; it must outlive the
 * scheduler) gives each schedule's zone. fire and ud: see above. The
 * scheduler allocates itself (its handles included); rm_sched_close
 * frees it. RM_EINVAL (NULL argument), RM_ENOMEM. */
int rm_sched_new(rm_sched **out, uv_loop_t *loop, rm_tz_registry *tzs, rm_sched_fire_cb fire, void *ud);

/* Stops firing at once and frees the scheduler, its items and schedules
 * from the close callbacks of its handles; then calls done(ud) (the ud of
 * rm_sched_new; done may be NULL). s must not be used after this call. */
void rm_sched_close(rm_sched *s, rm_sched_close_cb done);

/* Sets (adds or replaces) the schedule called key and re-plans its items
 * from now (a catch-up in progress is dropped). Takes ownership of
 * *sched's contents: on success *sched is left empty (rm_cron_free on it
 * is then a no-op); on failure the caller keeps it. The zone is loaded
 * from the registry now. RM_EINVAL (bad key or schedule), RM_ENOTFOUND /
 * RM_EIO / RM_EPARSE (the zone; err says which), RM_ENOMEM. */
int rm_sched_set_schedule(rm_sched *s, const char *key, rm_schedule *sched, char *err, size_t errlen);

/* Removes the schedule called key; its items stay, firing nothing until a
 * schedule of that key is set again. RM_ENOTFOUND. */
int rm_sched_remove_schedule(rm_sched *s, const char *key);

/* Adds the item called key following the schedule called schedule_key
 * (which need not be set yet). last_fire_ms: when it last fired (UTC ms),
 * or -1 for never; fire times after it that have already passed are
 * missed, and missed says what happens to them. That is judged now: an
 * item added disabled, or before its schedule is set, starts from the
 * first fire time after it is enabled or the schedule set (so set the
 * schedules first when loading). RM_EINVAL (bad key or policy),
 * RM_EEXIST, RM_ENOMEM. */
int rm_sched_add(rm_sched *s, const char *key, const char *schedule_key, bool enabled, int64_t last_fire_ms,
                 enum rm_sched_missed missed);

/* Removes the item called key; it fires no more. RM_ENOTFOUND. */
int rm_sched_remove(rm_sched *s, const char *key);

/* Enables or disables the item called key. An enabled item fires from
 * the first fire time after now (what passed while it was disabled is not
 * missed, it was not wanted). RM_ENOTFOUND. */
int rm_sched_enable(rm_sched *s, const char *key, bool enabled);

/* The next n (>= 1) fire times of the item called key into out[0..n)
 * (the API's calendar): its planned next fire, then the schedule's
 * following fire times (rm_cron_next_n). Returns how many (0: disabled,
 * no schedule or none left), RM_ENOTFOUND or RM_EINVAL. */
int rm_sched_next_fires(rm_sched *s, const char *key, int n, int64_t *out);

/* Cuts a batch after max_fires fires (>= 1) or max_us microseconds
 * (>= 1) of firing. Defaults RM_SCHED_BATCH_FIRES, RM_SCHED_BATCH_US. */
int rm_sched_set_batch(rm_sched *s, unsigned max_fires, int64_t max_us);

/* Replaces the wall clock (NULL: CLOCK_REALTIME again). For tests that
 * move time; a change of the clock's reading later is a clock jump. */
void rm_sched_set_clock(rm_sched *s, rm_sched_clock_fn clock, void *clock_ud);

typedef struct rm_sched_stats {
  size_t items;     /* registered */
  size_t planned;   /* with a next fire time (in the heap) */
  size_t disabled;  /* planned + disabled + the rest (no schedule, or no fire time left) = items */
  size_t schedules; /* set */
  uint64_t fires, catch_up_fires;
  uint64_t wakeups;     /* timer and batch runs */
  uint64_t yields;      /* batches cut to let the loop poll */
  uint64_t clock_jumps; /* wall-clock jumps seen */
  uint64_t late_n;      /* fires in the lateness figures (since the last reset) */
  double late_sum_s;
  int64_t late_max_us;
} rm_sched_stats;

void rm_sched_get_stats(const rm_sched *s, rm_sched_stats *out);

/* The q-quantile (0 <= q <= 1) of the lateness of fires since the last
 * reset, in microseconds: exact below 64 us, else within 3 % (the upper
 * end of its histogram bucket, at most the maximum). 0 when none. */
int64_t rm_sched_lateness_us(const rm_sched *s, double q);
/* Empties the lateness figures (the Prometheus histogram too). */
void rm_sched_lateness_reset(rm_sched *s);

/* Appends the scheduler's Prometheus families (text format 0.0.4) to
 * out, for the server to add after rm_metrics_render:
 * restmon_scheduler_lateness_seconds (histogram), restmon_scheduler_items
 * (gauge, label state = planned|disabled|idle), restmon_scheduler_fires_total
 * (counter, label kind = on_time|catch_up), restmon_scheduler_yields_total
 * and restmon_scheduler_clock_jumps_total. 0 or RM_ENOMEM. */
int rm_sched_metrics_render(const rm_sched *s, rm_buf *out);

/* Checks the internal invariants (heap order and positions, the maps,
 * the schedules' item lists, the counters): 0, or RM_EINVAL with err
 * saying what is broken. O(n); for tests. */
int rm_sched_check(const rm_sched *s, char *err, size_t errlen);

#endif
