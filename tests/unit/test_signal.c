/* The signal state machine (core/signal): scripted sequences of
 * observations and clock ticks at known times, each checked against the
 * exact list of transitions it must produce (sequence number, time,
 * states, severity, incident, evidence, reason), then the JSON forms and
 * the config errors. Times are seconds after T0 (2026-01-01T00:00:00Z). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "signal/signal.h"
#include "util/err.h"

#define T0 1767225600000LL
#define AT(s) (T0 + (int64_t)((s) * 1000))
#define MAX_LINES 32

/* One step of a script. */
typedef struct step {
  char op;          /* 'o' observe a level, 's' an event severity, 'm' a metric sample, 't' tick */
  double t;         /* seconds after T0: the observation's time, also now */
  const char *id;   /* observation id */
  const char *word; /* 'o': level word; 's': severity */
  double value;     /* 'm': the sample; 't': the expected interval in seconds */
} step;

#define OK(t, id) \
  { 'o', t, id, "succeeded", 0 }
#define DG(t, id) \
  { 'o', t, id, "degraded", 0 }
#define KO(t, id) \
  { 'o', t, id, "failed", 0 }
#define SV(t, id, sev) \
  { 's', t, id, sev, 0 }
#define EV(t, id, state) \
  { 'o', t, id, state, 0 }
#define M(t, v) \
  { 'm', t, NULL, NULL, v }
#define TICK(t, interval) \
  { 't', t, NULL, NULL, interval }

/* JSON text with ' for " (test literals stay readable). */
static json_t *J(const char *s) {
  char *d = strdup(s);
  for (char *p = d; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t e;
  json_t *j = json_loads(d, JSON_DECODE_ANY, &e);
  if (!j) fail_msg("bad test JSON: %s: %s", e.text, d);
  free(d);
  return j;
}

static void config(rm_signal_config *cfg, const char *json) {
  char err[512];
  json_t *j = J(json);
  int rc = rm_signal_config_parse(cfg, j, NULL, err, sizeof err);
  if (rc != 0) fail_msg("config: %s", err);
  json_decref(j);
}

/* "2 t=180 healthy>failed critical chk#1 opened [r2 r3 r4] <reason>" */
static void describe(const rm_signal_transition *t, char *out, size_t n) {
  static const char *const inc[] = {"-", "opened", "resolved", "updated"};
  int k = t->incident_opened ? 1 : t->incident_resolved ? 2 : t->correlation_id[0] ? 3 : 0;
  size_t len =
      (size_t)snprintf(out, n, "%llu t=%g %s>%s %s %s %s [", (unsigned long long)t->seq, (double)(t->at_ms - T0) / 1000,
                       rm_signal_state_name(t->from), rm_signal_state_name(t->to), rm_signal_severity_name(t->severity),
                       t->correlation_id[0] ? t->correlation_id : "-", inc[k]);
  for (size_t i = 0; i < t->nevidence && len < n; i++)
    len += (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", t->evidence[i].id[0] ? t->evidence[i].id : "_");
  if (len < n) snprintf(out + len, n - len, "] %s", t->reason);
}

/* Runs one step; 1 with *tr filled, or 0. */
static int run_step(const rm_signal_config *cfg, rm_signal *sig, const step *s, rm_signal_transition *tr) {
  rm_signal_obs o = {.at_ms = AT(s->t), .id = s->id, .value = s->value};
  int rc;
  if (s->op == 't') return rm_signal_tick(cfg, sig, AT(s->t), (int64_t)(s->value * 1000), tr);
  if (s->op == 'o') assert_int_equal(rm_signal_level_parse(s->word, &o.level), 0);
  if (s->op == 's') assert_int_equal(rm_signal_severity_level(s->word, &o.level), 0);
  rc = rm_signal_observe(cfg, sig, &o, AT(s->t), tr);
  assert_true(rc == 0 || rc == 1);
  return rc;
}

/* Runs steps [from, to) and appends a line per transition. */
static void run_steps(const rm_signal_config *cfg, rm_signal *sig, const step *steps, size_t from, size_t to,
                      char lines[][RM_SIGNAL_REASON_MAX + 256], size_t *n) {
  rm_signal_transition tr;
  for (size_t i = from; i < to; i++) {
    if (run_step(cfg, sig, &steps[i], &tr) != 1) continue;
    assert_true(*n < MAX_LINES);
    describe(&tr, lines[(*n)++], RM_SIGNAL_REASON_MAX + 256);
  }
}

/* Runs the whole script from a fresh machine and checks the transitions
 * are exactly `expected` (NULL-terminated). */
static void expect_script(const char *cfg_json, const step *steps, size_t nsteps, const char *const *expected) {
  char lines[MAX_LINES][RM_SIGNAL_REASON_MAX + 256];
  rm_signal_config cfg;
  rm_signal sig;
  size_t n = 0, want = 0;
  config(&cfg, cfg_json);
  rm_signal_init(&sig);
  run_steps(&cfg, &sig, steps, 0, nsteps, lines, &n);
  while (expected[want]) want++;
  for (size_t i = 0; i < n && i < want; i++) assert_string_equal(lines[i], expected[i]);
  if (n != want) fail_msg("%zu transitions, expected %zu; last: %s", n, want, n ? lines[n - 1] : "-");
  rm_signal_config_free(&cfg);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- thresholds and recovery ---- */

static const char CHECK[] =
    "{'id':'chk','type':'check','tags':['team:pay'],'failures_to_fail':3,"
    "'successes_to_recover':2,'cooldown_s':0}";

static void test_failures_below_threshold_do_not_fail_and_the_third_does(void **state) {
  (void)state;
  const step s[] = {OK(0, "r1"),   KO(60, "r2"),  KO(120, "r3"), OK(180, "r4"),
                    KO(240, "r5"), KO(300, "r6"), KO(360, "r7")};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [r1] 1 success (run r1) reached the threshold of 1 to leave unknown",
      "2 t=360 healthy>failed critical chk#1 opened [r5 r6 r7] 3 consecutive failures (runs r5, r6, r7) "
      "reached the threshold of 3",
      NULL};
  expect_script(CHECK, s, N(s), want);
}

static void test_recovery_needs_m_successes_and_a_failure_in_between_resets(void **state) {
  (void)state;
  const step s[] = {OK(0, "r1"),   KO(60, "r2"),  KO(120, "r3"), KO(180, "r4"),  OK(240, "r5"), KO(300, "r6"),
                    OK(360, "r7"), OK(420, "r8"), KO(480, "r9"), KO(540, "r10"), KO(600, "r11")};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [r1] 1 success (run r1) reached the threshold of 1 to leave unknown",
      "2 t=180 healthy>failed critical chk#1 opened [r2 r3 r4] 3 consecutive failures (runs r2, r3, r4) "
      "reached the threshold of 3",
      "3 t=420 failed>healthy info chk#1 resolved [r7 r8] 2 consecutive successes (runs r7, r8) "
      "reached the recovery threshold of 2",
      "4 t=600 healthy>failed critical chk#2 opened [r9 r10 r11] 3 consecutive failures (runs r9, r10, r11) "
      "reached the threshold of 3",
      NULL};
  expect_script(CHECK, s, N(s), want);
}

static void test_first_failures_leave_unknown_only_at_the_threshold(void **state) {
  (void)state;
  const step s[] = {KO(0, "a"), KO(60, "b"), OK(120, "c"), KO(180, "d"), KO(240, "e"), KO(300, "f")};
  const char *const want[] = {
      "1 t=120 unknown>healthy info - - [c] 1 success (run c) reached the threshold of 1 to leave unknown",
      "2 t=300 healthy>failed critical chk#1 opened [d e f] 3 consecutive failures (runs d, e, f) "
      "reached the threshold of 3",
      NULL};
  expect_script(CHECK, s, N(s), want);
}

static void test_evidence_cites_the_last_ten_of_a_longer_streak(void **state) {
  (void)state;
  const step s[] = {KO(1, "r1"), KO(2, "r2"), KO(3, "r3"), KO(4, "r4"),   KO(5, "r5"),   KO(6, "r6"),
                    KO(7, "r7"), KO(8, "r8"), KO(9, "r9"), KO(10, "r10"), KO(11, "r11"), KO(12, "r12")};
  const char *const want[] = {
      "1 t=12 unknown>failed critical chk#1 opened [r3 r4 r5 r6 r7 r8 r9 r10 r11 r12] "
      "12 consecutive failures (last 10 runs: r3, r4, r5, r6, r7, r8, r9, r10, r11, r12) "
      "reached the threshold of 12",
      NULL};
  expect_script("{'id':'chk','type':'check','failures_to_fail':12,'degradations_to_degrade':13}", s, N(s), want);
}

/* ---- cooldown ---- */

static const char FLAPPY[] =
    "{'id':'chk','type':'check','failures_to_fail':1,'degradations_to_degrade':1,"
    "'successes_to_recover':1,'cooldown_s':60}";

/* Down at 10 escalates at once; the ups and downs within the next 60 s
 * make no transition; the last up is applied by the tick at 70. */
static const step FLAP[] = {OK(0, "a"),  KO(10, "b"), OK(20, "c"), KO(30, "d"), OK(40, "e"),
                            KO(50, "f"), OK(60, "g"), TICK(65, 0), TICK(70, 0), TICK(75, 0)};

static void test_cooldown_suppresses_flapping_and_a_tick_applies_the_pending_state(void **state) {
  (void)state;
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown",
      "2 t=10 healthy>failed critical chk#1 opened [b] 1 failure (run b) reached the threshold of 1",
      "3 t=70 failed>healthy info chk#1 resolved [g] 1 success (run g) reached the recovery threshold of 1; "
      "held back by the 60 s cooldown since 2026-01-01T00:01:00.000Z",
      NULL};
  expect_script(FLAPPY, FLAP, N(FLAP), want);
}

static void test_cooldown_pending_state_is_applied_by_the_next_observation(void **state) {
  (void)state;
  const step s[] = {OK(0, "a"), KO(10, "b"), OK(20, "c"), KO(30, "d"), OK(60, "g"), OK(75, "h")};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown",
      "2 t=10 healthy>failed critical chk#1 opened [b] 1 failure (run b) reached the threshold of 1",
      "3 t=75 failed>healthy info chk#1 resolved [g h] 2 consecutive successes (runs g, h) reached the "
      "recovery threshold of 1; held back by the 60 s cooldown since 2026-01-01T00:01:00.000Z",
      NULL};
  expect_script(FLAPPY, s, N(s), want);
}

static void test_pending_reports_the_held_state_until_the_cooldown_ends(void **state) {
  (void)state;
  rm_signal_config cfg;
  rm_signal sig;
  rm_signal_transition tr;
  enum rm_signal_state to = RM_SIGNAL_UNKNOWN;
  int64_t until = 0;
  config(&cfg, FLAPPY);
  rm_signal_init(&sig);
  for (size_t i = 0; i < 7; i++) run_step(&cfg, &sig, &FLAP[i], &tr); /* up to the up at 60 */
  assert_true(rm_signal_pending(&cfg, &sig, &to, &until));
  assert_int_equal(to, RM_SIGNAL_HEALTHY);
  assert_int_equal(until, AT(70));
  assert_int_equal(sig.state, RM_SIGNAL_FAILED);
  run_step(&cfg, &sig, &(step)KO(62, "x"), &tr); /* a down cancels it */
  assert_false(rm_signal_pending(&cfg, &sig, NULL, NULL));
  rm_signal_config_free(&cfg);
}

static void test_cooldown_also_holds_escalation_when_configured(void **state) {
  (void)state;
  const step s[] = {OK(0, "a"), KO(10, "b"), TICK(50, 0), TICK(60, 0), OK(61, "c"), TICK(119.5, 0), TICK(120, 0)};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown",
      "2 t=60 healthy>failed critical chk#1 opened [b] 1 failure (run b) reached the threshold of 1; "
      "held back by the 60 s cooldown since 2026-01-01T00:00:10.000Z",
      "3 t=120 failed>healthy info chk#1 resolved [c] 1 success (run c) reached the recovery threshold of 1; "
      "held back by the 60 s cooldown since 2026-01-01T00:01:01.000Z",
      NULL};
  expect_script(
      "{'id':'chk','type':'check','failures_to_fail':1,'successes_to_recover':1,'cooldown_s':60,"
      "'escalate_during_cooldown':false}",
      s, N(s), want);
}

/* ---- degraded ---- */

static const char DEGRADING[] =
    "{'id':'chk','type':'check','failures_to_fail':3,'degradations_to_degrade':2,"
    "'successes_to_recover':2,'cooldown_s':60}";
static const step DEGRADE[] = {OK(0, "a"),   DG(60, "b"),  DG(120, "c"), KO(150, "d"), KO(160, "e"),
                               KO(170, "f"), DG(200, "g"), DG(240, "h"), OK(300, "i"), OK(360, "j")};

static void test_degraded_path_escalates_through_cooldown_and_recovers_step_by_step(void **state) {
  (void)state;
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown",
      "2 t=120 healthy>degraded warning chk#1 opened [b c] 2 consecutive degraded or failed runs (runs b, c) "
      "reached the degraded threshold of 2",
      "3 t=170 degraded>failed critical chk#1 updated [d e f] 3 consecutive failures (runs d, e, f) "
      "reached the threshold of 3",
      "4 t=240 failed>degraded warning chk#1 updated [g h] 2 consecutive runs no worse than degraded (runs g, h) "
      "reached the recovery threshold of 2",
      "5 t=360 degraded>healthy info chk#1 resolved [i j] 2 consecutive successes (runs i, j) "
      "reached the recovery threshold of 2",
      NULL};
  expect_script(DEGRADING, DEGRADE, N(DEGRADE), want);
}

/* ---- unknown ---- */

static const char SILENT[] = "{'id':'chk','type':'check'}"; /* defaults: 3 / 3 / 2, cooldown 60, unknown after 3 */
static const step SILENCE[] = {
    OK(0, "a"),   TICK(179.999, 60), TICK(180, 60), OK(200, "b"),  TICK(210, 60), OK(260, "c"),
    KO(320, "d"), KO(380, "e"),      KO(440, "f"),  TICK(619, 60), TICK(620, 60), KO(630, "g"),
    KO(640, "h"), KO(650, "i"),      TICK(651, 0),  TICK(9999, 0),
};

static void test_unknown_after_missing_intervals_and_leaving_it(void **state) {
  (void)state;
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown",
      "2 t=180 healthy>unknown warning chk#1 opened [] no observation for 180 s (unknown after 3 intervals of 60 s)",
      "3 t=260 unknown>healthy info chk#1 resolved [b c] 2 consecutive successes (runs b, c) "
      "reached the recovery threshold of 2",
      "4 t=440 healthy>failed critical chk#2 opened [d e f] 3 consecutive failures (runs d, e, f) "
      "reached the threshold of 3",
      "5 t=620 failed>unknown warning chk#2 updated [] no observation for 180 s "
      "(unknown after 3 intervals of 60 s)",
      "6 t=650 unknown>failed critical chk#2 updated [g h i] 3 consecutive failures (runs g, h, i) "
      "reached the threshold of 3",
      NULL};
  expect_script(SILENT, SILENCE, N(SILENCE), want);
}

static void test_unknown_after_zero_or_no_interval_never_goes_unknown(void **state) {
  (void)state;
  const step s[] = {OK(0, "a"), TICK(100000, 0), TICK(100000, 60)};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [a] 1 success (run a) reached the threshold of 1 to leave unknown", NULL};
  expect_script("{'id':'chk','type':'check','unknown_after':0}", s, N(s), want);
  expect_script("{'id':'chk','type':'check','unknown_after':3}", s, 2, want);
}

/* ---- metrics ---- */

static const char LATENCY[] =
    "{'id':'latency','type':'metric','cooldown_s':0,"
    " 'metric':{'direction':'above','degraded':500,'failed':800,'aggregate':'mean','window_s':20,'breach_s':30}}";
/* The spike at 40-50 lasts 10 s (< breach_s 30); the breach from 80 on
 * lasts; the mean over 20 s smooths each sample with the one before. */
static const step LATENCY_STEPS[] = {
    M(0, 100),    M(10, 100),  M(20, 100),  M(30, 100),  M(40, 1700),  M(50, 100),
    M(60, 100),   M(70, 100),  M(80, 1000), M(90, 1200), M(100, 1000), M(110, 1200),
    M(120, 1000), M(130, 100), M(140, 200), M(150, 100), M(160, 200),  M(170, 100),
};

static void test_metric_above_with_mean_window_and_breach_duration(void **state) {
  (void)state;
  const char *const want[] = {
      "1 t=30 unknown>healthy info - - [_ _ _ _] the mean over 20 s was not above the degraded threshold 500 "
      "in 4 consecutive samples over 30 s (values 100, 100, 100, 100; mean 100) reached the threshold of "
      "1 sample and the breach duration of 30 s to leave unknown",
      "2 t=110 healthy>degraded warning latency#1 opened [_ _ _ _] the mean over 20 s was above the degraded "
      "threshold 500 in 4 consecutive samples over 30 s (values 1000, 1200, 1000, 1200; mean 1100) reached the "
      "degraded threshold of 1 sample and the breach duration of 30 s",
      "3 t=120 degraded>failed critical latency#1 updated [_ _ _ _] the mean over 20 s was above the failed "
      "threshold 800 in 4 consecutive samples over 30 s (values 1200, 1000, 1200, 1000; mean 1100) reached the "
      "threshold of 1 sample and the breach duration of 30 s",
      "4 t=160 failed>degraded warning latency#1 updated [_ _ _ _] the mean over 20 s was not above the failed "
      "threshold 800 in 4 consecutive samples over 30 s (values 100, 200, 100, 200; mean 150) reached the "
      "recovery threshold of 1 sample and the breach duration of 30 s",
      "5 t=170 degraded>healthy info latency#1 resolved [_ _ _ _] the mean over 20 s was not above the degraded "
      "threshold 500 in 4 consecutive samples over 30 s (values 200, 100, 200, 100; mean 150) reached the "
      "recovery threshold of 1 sample and the breach duration of 30 s",
      NULL};
  expect_script(LATENCY, LATENCY_STEPS, N(LATENCY_STEPS), want);
}

static void test_metric_below_with_last_value_and_strict_thresholds(void **state) {
  (void)state;
  const step s[] = {M(0, 80), M(10, 50), M(20, 49), M(30, 20), M(40, 10), M(50, 60)};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [_] the value was not below the degraded threshold 50 in 1 sample "
      "(value 80) reached the threshold of 1 sample to leave unknown",
      "2 t=20 healthy>degraded warning disk#1 opened [_] the value was below the degraded threshold 50 in 1 sample "
      "(value 49) reached the degraded threshold of 1 sample",
      "3 t=40 degraded>failed critical disk#1 updated [_] the value was below the failed threshold 20 in 1 sample "
      "(value 10) reached the threshold of 1 sample",
      "4 t=50 failed>healthy info disk#1 resolved [_] the value was not below the degraded threshold 50 in 1 "
      "sample (value 60) reached the recovery threshold of 1 sample",
      NULL};
  expect_script(
      "{'id':'disk','type':'metric','cooldown_s':0,"
      " 'metric':{'direction':'below','degraded':50,'failed':20,'aggregate':'last','window_s':300}}",
      s, N(s), want);
}

/* The window keeps what is within window_s of the latest sample; each
 * aggregate reduces it. */
static void test_metric_window_aggregates(void **state) {
  (void)state;
  static const char *const aggs[] = {"mean", "min", "max", "last"};
  const double want[] = {30, 20, 40, 40};
  for (size_t a = 0; a < 4; a++) {
    char json[256];
    rm_signal_config cfg;
    rm_signal sig;
    rm_signal_transition tr;
    snprintf(json, sizeof json, "{'id':'m','type':'metric','metric':{'failed':1000,'aggregate':'%s','window_s':60}}",
             aggs[a]);
    config(&cfg, json);
    rm_signal_init(&sig);
    const double values[] = {10, 20, 30, 40};
    for (int i = 0; i < 4; i++)
      run_step(&cfg, &sig, &(step)M(i == 0 ? 0 : 60 + 20 * i, values[i]), &tr); /* 0, 80, 100, 120 */
    assert_int_equal(sig.nwindow, 3);                                           /* 0 fell out */
    assert_true(sig.recent[sig.nrecent - 1].aggregate == want[a]);
    rm_signal_config_free(&cfg);
  }
}

/* ---- events ---- */

static void test_event_states_and_severities(void **state) {
  (void)state;
  const step s[] = {SV(0, "e1", "info"),      SV(10, "e2", "WARNING"), SV(20, "e3", "critical"),
                    EV(30, "e4", "degraded"), EV(40, "e5", "healthy"), TICK(100000, 60)};
  const char *const want[] = {
      "1 t=0 unknown>healthy info - - [e1] 1 healthy event (event e1) reached the threshold of 1 to leave unknown",
      "2 t=10 healthy>degraded warning ev#1 opened [e2] 1 degraded or failed event (event e2) reached the "
      "degraded threshold of 1",
      "3 t=20 degraded>failed critical ev#1 updated [e3] 1 failed event (event e3) reached the threshold of 1",
      "4 t=30 failed>degraded warning ev#1 updated [e4] 1 event no worse than degraded (event e4) reached the "
      "recovery threshold of 1",
      "5 t=40 degraded>healthy info ev#1 resolved [e5] 1 healthy event (event e5) reached the recovery threshold "
      "of 1",
      NULL};
  expect_script("{'id':'ev','type':'event','cooldown_s':0}", s, N(s), want);
}

static void test_severity_mapping(void **state) {
  (void)state;
  static const struct {
    const char *word;
    enum rm_signal_state level;
  } map[] = {
      {"ok", RM_SIGNAL_HEALTHY},
      {"success", RM_SIGNAL_HEALTHY},
      {"debug", RM_SIGNAL_HEALTHY},
      {"info", RM_SIGNAL_HEALTHY},
      {"Informational", RM_SIGNAL_HEALTHY},
      {"notice", RM_SIGNAL_HEALTHY},
      {"warning", RM_SIGNAL_DEGRADED},
      {"warn", RM_SIGNAL_DEGRADED},
      {"MINOR", RM_SIGNAL_DEGRADED},
      {"error", RM_SIGNAL_FAILED},
      {"err", RM_SIGNAL_FAILED},
      {"major", RM_SIGNAL_FAILED},
      {"critical", RM_SIGNAL_FAILED},
      {"crit", RM_SIGNAL_FAILED},
      {"alert", RM_SIGNAL_FAILED},
      {"emergency", RM_SIGNAL_FAILED},
      {"emerg", RM_SIGNAL_FAILED},
      {"Fatal", RM_SIGNAL_FAILED},
  };
  enum rm_signal_state l;
  for (size_t i = 0; i < N(map); i++) {
    assert_int_equal(rm_signal_severity_level(map[i].word, &l), 0);
    assert_int_equal(l, map[i].level);
  }
  assert_int_equal(rm_signal_severity_level("bogus", &l), RM_EINVAL);
  assert_int_equal(rm_signal_severity_level(NULL, &l), RM_EINVAL);
  assert_int_equal(rm_signal_level_parse("Succeeded", &l), 0);
  assert_int_equal(l, RM_SIGNAL_HEALTHY);
  assert_int_equal(rm_signal_level_parse("failure", &l), 0);
  assert_int_equal(l, RM_SIGNAL_FAILED);
  assert_int_equal(rm_signal_level_parse("unknown", &l), RM_EINVAL);
  assert_int_equal(rm_signal_level_parse("cancelled", &l), RM_EINVAL);
}

/* ---- persistence ---- */

/* Stops the script after `split` steps, stores the machine as JSON text,
 * restores it into a fresh one and goes on: the transitions must be
 * those of the uninterrupted run, and so must the final machine. */
static void check_resume_at_every_step(const char *cfg_json, const step *steps, size_t nsteps) {
  char whole[MAX_LINES][RM_SIGNAL_REASON_MAX + 256], split[MAX_LINES][RM_SIGNAL_REASON_MAX + 256];
  rm_signal_config cfg;
  rm_signal a, b, c;
  char err[256];
  size_t nwhole = 0;
  config(&cfg, cfg_json);
  rm_signal_init(&a);
  run_steps(&cfg, &a, steps, 0, nsteps, whole, &nwhole);
  json_t *ja = rm_signal_to_json(&a);
  for (size_t k = 0; k <= nsteps; k++) {
    size_t n = 0;
    rm_signal_init(&b);
    run_steps(&cfg, &b, steps, 0, k, split, &n);
    json_t *jb = rm_signal_to_json(&b);
    char *text = json_dumps(jb, JSON_COMPACT);
    json_t *back = json_loads(text, 0, NULL);
    memset(&c, 0xA5, sizeof c); /* nothing of it may survive */
    if (rm_signal_from_json(&c, back, err, sizeof err) != 0) fail_msg("split %zu: %s", k, err);
    run_steps(&cfg, &c, steps, k, nsteps, split, &n);
    assert_int_equal(n, nwhole);
    for (size_t i = 0; i < n; i++) assert_string_equal(split[i], whole[i]);
    json_t *jc = rm_signal_to_json(&c);
    assert_true(json_equal(ja, jc));
    json_decref(jb);
    json_decref(back);
    json_decref(jc);
    free(text);
  }
  json_decref(ja);
  rm_signal_config_free(&cfg);
}

static void test_json_round_trip_mid_sequence_gives_identical_transitions(void **state) {
  (void)state;
  check_resume_at_every_step(FLAPPY, FLAP, N(FLAP));
  check_resume_at_every_step(DEGRADING, DEGRADE, N(DEGRADE));
  check_resume_at_every_step(SILENT, SILENCE, N(SILENCE));
  check_resume_at_every_step(LATENCY, LATENCY_STEPS, N(LATENCY_STEPS));
}

static void test_state_json_form(void **state) {
  (void)state;
  rm_signal_config cfg;
  rm_signal sig;
  rm_signal_transition tr;
  config(&cfg, FLAPPY);
  rm_signal_init(&sig);
  for (size_t i = 0; i < 7; i++) run_step(&cfg, &sig, &FLAP[i], &tr);
  json_t *got = rm_signal_to_json(&sig);
  json_t *want =
      J("{'v':1,'state':'failed','transitions':2,'changed_ms':1767225610000,'observations':7,"
        " 'seen_ms':1767225660000,'last_at_ms':1767225660000,'incidents':1,'incident_open':true,"
        " 'pending':{'state':'healthy','since_ms':1767225660000},"
        " 'streaks':{'failed':{'n':0,'since_ms':0},'bad':{'n':0,'since_ms':0},"
        "            'healthy':{'n':1,'since_ms':1767225660000},"
        "            'not_failed':{'n':1,'since_ms':1767225660000}},"
        " 'recent':[{'id':'a','state':'healthy','at_ms':1767225600000},"
        "           {'id':'b','state':'failed','at_ms':1767225610000},"
        "           {'id':'c','state':'healthy','at_ms':1767225620000},"
        "           {'id':'d','state':'failed','at_ms':1767225630000},"
        "           {'id':'e','state':'healthy','at_ms':1767225640000},"
        "           {'id':'f','state':'failed','at_ms':1767225650000},"
        "           {'id':'g','state':'healthy','at_ms':1767225660000}],"
        " 'window':[]}");
  if (!json_equal(got, want)) {
    char *s = json_dumps(got, JSON_COMPACT);
    fail_msg("state JSON: %s", s);
  }
  json_decref(got);
  json_decref(want);
  rm_signal_config_free(&cfg);
}

static void expect_state_error(const char *json, int code, const char *msg) {
  rm_signal sig, before;
  char err[512];
  rm_signal_init(&sig);
  sig.transitions = 42;
  before = sig;
  json_t *j = J(json);
  assert_int_equal(rm_signal_from_json(&sig, j, err, sizeof err), code);
  assert_string_equal(err, msg);
  assert_memory_equal(&sig, &before, sizeof sig);
  json_decref(j);
}

static void test_state_json_errors_name_the_field(void **state) {
  (void)state;
  rm_signal sig;
  json_t *good = rm_signal_to_json((rm_signal_init(&sig), &sig));
  json_object_set_new(good, "state", json_string("sad"));
  json_object_set_new(json_object_get(json_object_get(good, "streaks"), "bad"), "n", json_integer(-1));
  json_array_append_new(json_object_get(good, "recent"), json_pack("{s:s, s:s}", "id", "x", "state", "unknown"));
  char *text = json_dumps(good, JSON_COMPACT);
  for (char *p = text; *p; p++)
    if (*p == '"') *p = '\'';
  expect_state_error(text, RM_EINVAL,
                     "$.state: must be one of \"unknown\", \"healthy\", \"degraded\", \"failed\"; "
                     "$.streaks.bad.n: must be an integer from 0 to 4294967295; "
                     "$.recent[0].state: must be one of \"healthy\", \"degraded\", \"failed\"; "
                     "$.recent[0].at_ms: required: an integer from 0 to 9223372036854775807");
  expect_state_error("{'v':2,'state':'healthy'}", RM_EVERSION, "$.v: version 2 is newer than this binary's 1");
  expect_state_error("{'state':'healthy'}", RM_EINVAL, "$.v: required: an integer from 1 to 9223372036854775807");
  expect_state_error("[]", RM_EINVAL, "$: must be an object");
  json_decref(good);
  free(text);
}

static void test_transition_json_form(void **state) {
  (void)state;
  rm_signal_config cfg;
  rm_signal sig;
  rm_signal_transition tr;
  const step s[] = {OK(0, "r1"), KO(60, "r2"), KO(120, "r3"), KO(180.25, "r4")};
  int last = 0;
  config(&cfg, CHECK);
  rm_signal_init(&sig);
  for (size_t i = 0; i < N(s); i++) last = run_step(&cfg, &sig, &s[i], &tr);
  assert_int_equal(last, 1);
  json_t *got = rm_signal_transition_to_json(&tr);
  json_t *want =
      J("{'source_id':'chk','source_type':'check','seq':2,'at':'2026-01-01T00:03:00.250Z',"
        " 'at_ms':1767225780250,'from':'healthy','to':'failed','severity':'critical',"
        " 'correlation_id':'chk#1','incident':'opened','tags':['team:pay'],'streak':3,"
        " 'evidence':[{'id':'r2','state':'failed','at':'2026-01-01T00:01:00.000Z','at_ms':1767225660000},"
        "             {'id':'r3','state':'failed','at':'2026-01-01T00:02:00.000Z','at_ms':1767225720000},"
        "             {'id':'r4','state':'failed','at':'2026-01-01T00:03:00.250Z','at_ms':1767225780250}],"
        " 'reason':'3 consecutive failures (runs r2, r3, r4) reached the threshold of 3'}");
  if (!json_equal(got, want)) {
    char *t = json_dumps(got, JSON_COMPACT);
    fail_msg("transition JSON: %s", t);
  }
  json_decref(got);
  json_decref(want);
  rm_signal_config_free(&cfg);
}

static void test_metric_transition_json_has_values_and_null_ids(void **state) {
  (void)state;
  rm_signal_config cfg;
  rm_signal sig;
  rm_signal_transition tr;
  config(&cfg, "{'id':'m','type':'metric','metric':{'failed':10}}");
  rm_signal_init(&sig);
  assert_int_equal(run_step(&cfg, &sig, &(step)M(0, 12.5), &tr), 1);
  json_t *got = rm_signal_transition_to_json(&tr);
  json_t *ev = json_array_get(json_object_get(got, "evidence"), 0);
  assert_true(json_is_null(json_object_get(ev, "id")));
  assert_true(json_real_value(json_object_get(ev, "value")) == 12.5);
  assert_true(json_real_value(json_object_get(ev, "aggregate")) == 12.5);
  assert_string_equal(json_string_value(json_object_get(got, "reason")),
                      "the value was above the failed threshold 10 in 1 sample (value 12.5) reached the "
                      "threshold of 1 sample");
  json_decref(got);
  rm_signal_config_free(&cfg);
}

/* ---- refused input ---- */

static void test_refused_observations_leave_the_machine_unchanged(void **state) {
  (void)state;
  rm_signal_config chk, met;
  rm_signal sig, before;
  rm_signal_transition tr;
  char longid[RM_SIGNAL_ID_MAX + 1];
  memset(longid, 'x', RM_SIGNAL_ID_MAX);
  longid[RM_SIGNAL_ID_MAX] = '\0';
  config(&chk, CHECK);
  config(&met, "{'id':'m','type':'metric','metric':{'failed':10}}");
  rm_signal_init(&sig);
  run_step(&chk, &sig, &(step)OK(100, "a"), &tr);
  before = sig;
  assert_int_equal(rm_signal_observe(&chk, &sig, &(rm_signal_obs){AT(99), "old", RM_SIGNAL_FAILED, 0}, AT(200), &tr),
                   RM_ECONFLICT);
  assert_int_equal(rm_signal_observe(&chk, &sig, &(rm_signal_obs){AT(101), "u", RM_SIGNAL_UNKNOWN, 0}, AT(200), &tr),
                   RM_EINVAL);
  assert_int_equal(rm_signal_observe(&chk, &sig, &(rm_signal_obs){AT(101), longid, RM_SIGNAL_FAILED, 0}, AT(200), &tr),
                   RM_EINVAL);
  assert_int_equal(rm_signal_observe(&met, &sig, &(rm_signal_obs){AT(101), NULL, 0, NAN}, AT(200), &tr), RM_EINVAL);
  assert_int_equal(rm_signal_observe(&chk, &sig, &(rm_signal_obs){AT(101), "a", RM_SIGNAL_FAILED, 0}, AT(200), NULL),
                   RM_EINVAL);
  assert_int_equal(rm_signal_tick(&chk, &sig, AT(200), -1, &tr), RM_EINVAL);
  assert_memory_equal(&sig, &before, sizeof sig);
  /* the same time as the last one is in order */
  assert_int_equal(rm_signal_observe(&chk, &sig, &(rm_signal_obs){AT(100), "b", RM_SIGNAL_FAILED, 0}, AT(200), &tr), 0);
  rm_signal_config_free(&chk);
  rm_signal_config_free(&met);
}

/* ---- configs ---- */

static void expect_config_error(const char *json, const char *msg) {
  rm_signal_config cfg;
  char err[1024];
  json_t *j = J(json);
  memset(&cfg, 0, sizeof cfg);
  assert_int_equal(rm_signal_config_parse(&cfg, j, NULL, err, sizeof err), RM_EINVAL);
  assert_string_equal(err, msg);
  assert_null(cfg.tags);
  json_decref(j);
}

static void test_bad_config_errors_name_each_field_by_path(void **state) {
  (void)state;
  expect_config_error("{'id':'x','type':'check','failures_to_fail':0}",
                      "$.failures_to_fail: must be an integer from 1 to 1000");
  expect_config_error(
      "{'id':'x','type':'check','failure_to_fail':3,'cooldown_s':-1,"
      "'escalate_during_cooldown':'yes','successes_to_recover':1001,'unknown_after':2.5,"
      "'tags':['a','']}",
      "$.failure_to_fail: unknown field; "
      "$.successes_to_recover: must be an integer from 1 to 1000; "
      "$.unknown_after: must be an integer from 0 to 1000; "
      "$.cooldown_s: must be an integer from 0 to 604800; "
      "$.escalate_during_cooldown: must be true or false; "
      "$.tags[1]: must be a string of 1 to 127 bytes");
  expect_config_error("{'type':'gauge'}",
                      "$.type: must be one of \"check\", \"metric\", \"event\"; "
                      "$.id: required: a string of 1 to 127 bytes");
  expect_config_error("{'id':'x'}", "$.type: required: one of \"check\", \"metric\", \"event\"");
  expect_config_error("{'id':'m','type':'metric'}", "$.metric: required for type \"metric\": an object");
  expect_config_error("{'id':'m','type':'metric','metric':{}}",
                      "$.metric: needs a \"degraded\" threshold, a \"failed\" one or both");
  expect_config_error(
      "{'id':'m','type':'metric','metric':{'direction':'up','degraded':900,'failed':800,"
      "'window_s':1.5,'breach_s':86401,'aggregate':'p99','extra':1}}",
      "$.metric.extra: unknown field; "
      "$.metric.direction: must be one of \"above\", \"below\"; "
      "$.metric.aggregate: must be one of \"mean\", \"last\", \"min\", \"max\"; "
      "$.metric.failed: must be greater than \"degraded\" (900) when direction is \"above\"; "
      "$.metric.window_s: must be an integer from 0 to 86400; "
      "$.metric.breach_s: must be an integer from 0 to 86400");
  expect_config_error("{'id':'m','type':'metric','metric':{'direction':'below','degraded':10,'failed':'x'}}",
                      "$.metric.failed: must be a number");
  expect_config_error("{'id':'m','type':'metric','metric':{'direction':'below','degraded':10,'failed':10}}",
                      "$.metric.failed: must be less than \"degraded\" (10) when direction is \"below\"");
  expect_config_error("{'id':'c','type':'event','metric':{'failed':1}}", "$.metric: only for type \"metric\"");
  expect_config_error("{'id':'','type':'check','tags':'a'}",
                      "$.id: must be a string of 1 to 127 bytes; $.tags: must be an array of at most 64 strings");
  expect_config_error("[]", "$: must be an object");
}

static void test_config_problems_are_listed_for_the_api(void **state) {
  (void)state;
  rm_signal_config cfg;
  char err[8]; /* too small: cut, never overrun */
  json_t *problems = json_array();
  json_t *j = J("{'id':'x','type':'check','failures_to_fail':0,'cooldown_s':'1m'}");
  assert_int_equal(rm_signal_config_parse(&cfg, j, problems, err, sizeof err), RM_EINVAL);
  assert_string_equal(err, "$.failu");
  json_t *want =
      J("[{'path':'$.failures_to_fail','message':'must be an integer from 1 to 1000'},"
        " {'path':'$.cooldown_s','message':'must be an integer from 0 to 604800'}]");
  assert_true(json_equal(problems, want));
  json_decref(want);
  json_decref(problems);
  json_decref(j);
}

static void test_config_defaults_per_type_and_round_trip(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"{'id':'c','type':'check'}",
       "{'id':'c','type':'check','tags':[],'failures_to_fail':3,'degradations_to_degrade':3,"
       "'successes_to_recover':2,'cooldown_s':60,'escalate_during_cooldown':true,'unknown_after':3}"},
      {"{'id':'e','type':'event','tags':['a','b']}",
       "{'id':'e','type':'event','tags':['a','b'],'failures_to_fail':1,'degradations_to_degrade':1,"
       "'successes_to_recover':1,'cooldown_s':60,'escalate_during_cooldown':true,'unknown_after':0}"},
      {"{'id':'m','type':'metric','metric':{'failed':2.5}}",
       "{'id':'m','type':'metric','tags':[],'failures_to_fail':1,'degradations_to_degrade':1,"
       "'successes_to_recover':1,'cooldown_s':60,'escalate_during_cooldown':true,'unknown_after':3,"
       "'metric':{'direction':'above','aggregate':'mean','window_s':0,'breach_s':0,'failed':2.5}}"},
  };
  for (size_t i = 0; i < N(cases); i++) {
    rm_signal_config cfg, again;
    char err[256];
    config(&cfg, cases[i][0]);
    json_t *got = rm_signal_config_to_json(&cfg), *want = J(cases[i][1]);
    if (!json_equal(got, want)) fail_msg("config %zu: %s", i, json_dumps(got, JSON_COMPACT));
    assert_int_equal(rm_signal_config_parse(&again, got, NULL, err, sizeof err), 0);
    json_t *twice = rm_signal_config_to_json(&again);
    assert_true(json_equal(twice, want));
    json_decref(got);
    json_decref(want);
    json_decref(twice);
    rm_signal_config_free(&cfg);
    rm_signal_config_free(&again);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failures_below_threshold_do_not_fail_and_the_third_does),
      cmocka_unit_test(test_recovery_needs_m_successes_and_a_failure_in_between_resets),
      cmocka_unit_test(test_first_failures_leave_unknown_only_at_the_threshold),
      cmocka_unit_test(test_evidence_cites_the_last_ten_of_a_longer_streak),
      cmocka_unit_test(test_cooldown_suppresses_flapping_and_a_tick_applies_the_pending_state),
      cmocka_unit_test(test_cooldown_pending_state_is_applied_by_the_next_observation),
      cmocka_unit_test(test_pending_reports_the_held_state_until_the_cooldown_ends),
      cmocka_unit_test(test_cooldown_also_holds_escalation_when_configured),
      cmocka_unit_test(test_degraded_path_escalates_through_cooldown_and_recovers_step_by_step),
      cmocka_unit_test(test_unknown_after_missing_intervals_and_leaving_it),
      cmocka_unit_test(test_unknown_after_zero_or_no_interval_never_goes_unknown),
      cmocka_unit_test(test_metric_above_with_mean_window_and_breach_duration),
      cmocka_unit_test(test_metric_below_with_last_value_and_strict_thresholds),
      cmocka_unit_test(test_metric_window_aggregates),
      cmocka_unit_test(test_event_states_and_severities),
      cmocka_unit_test(test_severity_mapping),
      cmocka_unit_test(test_json_round_trip_mid_sequence_gives_identical_transitions),
      cmocka_unit_test(test_state_json_form),
      cmocka_unit_test(test_state_json_errors_name_the_field),
      cmocka_unit_test(test_transition_json_form),
      cmocka_unit_test(test_metric_transition_json_has_values_and_null_ids),
      cmocka_unit_test(test_refused_observations_leave_the_machine_unchanged),
      cmocka_unit_test(test_bad_config_errors_name_each_field_by_path),
      cmocka_unit_test(test_config_problems_are_listed_for_the_api),
      cmocka_unit_test(test_config_defaults_per_type_and_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
