/* rm_signal: the signal state machine of one monitoring object.
 *
 * Pure logic: no I/O, no loop, no clock. The server feeds it observations
 * (check run results, metric samples, pushed events) and clock ticks, with
 * the time passed in as UTC milliseconds, and stores what comes back: the
 * machine (rm_signal, serialisable to JSON so a restarted server resumes
 * it exactly) and the transitions (rm_signal_transition, with a JSON form).
 *
 * Semantics (docs in the order the machine applies them):
 *
 * Levels. Every observation is reduced to a level: Healthy, Degraded or
 * Failed. A check run result is its level ("succeeded" = Healthy). An
 * event carries a state, or a severity mapped by rm_signal_severity_level.
 * A metric sample joins a window (cfg.metric) whose aggregate is compared
 * with the thresholds: beyond "failed" is Failed, else beyond "degraded"
 * is Degraded, else Healthy ("beyond" is strictly above, or strictly
 * below with direction "below").
 *
 * Streaks. The machine counts consecutive observations: failed ones;
 * degraded-or-failed ones ("bad": a failing object is at least degraded,
 * so failures also count towards Degraded); healthy ones; and
 * healthy-or-degraded ones ("not failed"). Each streak remembers when its
 * first observation was made.
 *
 * Verdict. From the streaks, in this order:
 *   failed streak >= failures_to_fail             -> Failed
 *   bad streak >= degradations_to_degrade         -> Degraded
 *   healthy streak >= successes_to_recover        -> Healthy
 *   not-failed streak >= successes_to_recover     -> Degraded (from Failed)
 * Escalation (to a worse state) uses the first two, recovery (to a better
 * one) the last two: leaving Degraded or Failed always takes
 * successes_to_recover consecutive observations, and one bad observation
 * in between starts the count again. For metrics a streak also counts only
 * once it has lasted breach_s, measured between the sample times of its
 * first and latest samples, so a spike shorter than breach_s (or a single
 * sample, when breach_s > 0) never changes the state.
 *
 * Unknown. The initial state, and the state after a silence: rm_signal_tick
 * moves any other state to Unknown when no observation arrived for
 * unknown_after expected intervals; this also clears the streaks, as
 * observations on both sides of a gap are not consecutive. Leaving Unknown
 * takes the escalation counts for Degraded and Failed; for Healthy it
 * takes one healthy observation when no incident is open (a new object:
 * the first success decides) and successes_to_recover while one is (a
 * silence must not shortcut a recovery). Until then the state stays
 * Unknown. Entering and leaving Unknown ignore the cooldown: a silence is
 * long enough not to flap.
 *
 * Cooldown. No transition happens within cooldown_s of the previous one,
 * except escalations when escalate_during_cooldown (the default: an
 * outage is never hidden; recoveries are what the cooldown holds back,
 * which bounds a down-up cycle to one per cooldown). A verdict held back
 * is pending (rm_signal_pending); it is not stored as a decision but
 * recomputed from the streaks, so an observation that breaks the streak
 * cancels it. It is applied by the first rm_signal_observe or
 * rm_signal_tick whose now_ms is past the cooldown, so a server that ticks
 * every object recovers it without waiting for the next run.
 *
 * Incidents. A transition to a non-Healthy state while no incident is open
 * opens one; the next transition to Healthy resolves it. Every transition
 * in between carries its correlation id "<object id>#<n>" (n counts the
 * object's incidents from 1). A transition out of the initial Unknown
 * straight to Healthy belongs to no incident.
 *
 * Time. A transition's at_ms is the now_ms of the call that made it.
 * Observations must arrive in order of at_ms (equal is fine); an older one
 * is refused so a late result cannot rewrite history. Silence is measured
 * from the now_ms of the last accepted observation.
 *
 * Ownership: every struct here is caller-allocated and fixed-size; only
 * rm_signal_config holds a reference (tags), released by
 * rm_signal_config_free. Functions returning json_t * return a new
 * reference (caller decrefs) or NULL when out of memory. */
#ifndef RM_SIGNAL_SIGNAL_H
#define RM_SIGNAL_SIGNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_SIGNAL_ID_MAX 128      /* object, run, event and sample ids, NUL included */
#define RM_SIGNAL_CORR_MAX 160    /* "<object id>#<n>" */
#define RM_SIGNAL_EVIDENCE_MAX 10 /* observations a transition cites (the latest) */
#define RM_SIGNAL_WINDOW_MAX 64   /* metric samples a window holds (the latest) */
#define RM_SIGNAL_REASON_MAX 2048
#define RM_SIGNAL_COUNT_MAX 1000 /* upper bound of the *_to_* counts and unknown_after */

/* Stored and sent: numbers pinned, the store holds the name. */
enum rm_signal_state {
  RM_SIGNAL_UNKNOWN = 0,
  RM_SIGNAL_HEALTHY = 1,
  RM_SIGNAL_DEGRADED = 2,
  RM_SIGNAL_FAILED = 3,
};

enum rm_signal_type {
  RM_SIGNAL_CHECK = 1,  /* a workflow or task run on a schedule */
  RM_SIGNAL_METRIC = 2, /* numeric samples against thresholds */
  RM_SIGNAL_EVENT = 3,  /* pushed events with a state or a severity */
};

/* Of a transition, from the state it goes to: Healthy "info", Degraded
 * and Unknown "warning", Failed "critical". */
enum rm_signal_severity {
  RM_SIGNAL_SEV_INFO = 0,
  RM_SIGNAL_SEV_WARNING = 1,
  RM_SIGNAL_SEV_CRITICAL = 2,
};

enum rm_signal_direction { RM_SIGNAL_ABOVE = 1, RM_SIGNAL_BELOW = 2 };

/* How a metric window is reduced: mean, last value, minimum, maximum. */
enum rm_signal_aggregate {
  RM_SIGNAL_AGG_MEAN = 1,
  RM_SIGNAL_AGG_LAST = 2,
  RM_SIGNAL_AGG_MIN = 3,
  RM_SIGNAL_AGG_MAX = 4
};

/* The thresholds of a metric object. The window holds the samples whose
 * time is within window_ms before the latest (at most RM_SIGNAL_WINDOW_MAX
 * of them); window_ms 0 holds the latest sample only. */
typedef struct rm_signal_metric_rule {
  enum rm_signal_direction direction;
  bool has_degraded, has_failed; /* at least one */
  double degraded, failed;       /* above: degraded < failed; below: degraded > failed */
  enum rm_signal_aggregate aggregate;
  int64_t window_ms;
  int64_t breach_ms;
} rm_signal_metric_rule;

/* One object's rules. Fill with rm_signal_config_parse (or
 * rm_signal_config_defaults and then by hand). */
typedef struct rm_signal_config {
  char id[RM_SIGNAL_ID_MAX];
  enum rm_signal_type type;
  json_t *tags;                     /* array of strings, owned; NULL = none */
  uint32_t failures_to_fail;        /* 1..RM_SIGNAL_COUNT_MAX */
  uint32_t degradations_to_degrade; /* 1..RM_SIGNAL_COUNT_MAX */
  uint32_t successes_to_recover;    /* 1..RM_SIGNAL_COUNT_MAX */
  int64_t cooldown_ms;
  bool escalate_during_cooldown;
  uint32_t unknown_after;       /* intervals of silence; 0 = never Unknown */
  rm_signal_metric_rule metric; /* type metric only */
} rm_signal_config;

/* One observation, borrowed for the call. */
typedef struct rm_signal_obs {
  int64_t at_ms;              /* when it was made (run finished, sample taken) */
  const char *id;             /* run, event or sample id; NULL or "" = none;
                                 at most RM_SIGNAL_ID_MAX - 1 bytes */
  enum rm_signal_state level; /* check and event: HEALTHY, DEGRADED or FAILED */
  double value;               /* metric: the sample, finite */
} rm_signal_obs;

/* An observation as remembered and cited. */
typedef struct rm_signal_evidence {
  char id[RM_SIGNAL_ID_MAX];  /* "" = none */
  enum rm_signal_state level; /* for metrics, of the aggregate after it */
  int64_t at_ms;
  bool has_value; /* metrics */
  double value, aggregate;
} rm_signal_evidence;

/* A run of consecutive observations that agree on a condition. */
typedef struct rm_signal_streak {
  uint32_t n;
  int64_t since_ms; /* at_ms of its first observation; meaningless when n is 0 */
} rm_signal_streak;

/* A metric sample in the window. */
typedef struct rm_signal_sample {
  int64_t at_ms;
  double value;
} rm_signal_sample;

/* The machine of one object: zero it (rm_signal_init), then only touch
 * it through these functions. Every field is persisted. */
typedef struct rm_signal {
  enum rm_signal_state state;
  uint64_t transitions;  /* so far; the last one's seq */
  int64_t changed_ms;    /* now_ms of the last transition */
  uint64_t observations; /* accepted so far */
  int64_t seen_ms;       /* now_ms of the last accepted observation */
  int64_t last_at_ms;    /* at_ms of the last accepted observation */
  uint64_t incidents;    /* opened so far */
  bool incident_open;
  bool has_pending; /* a verdict the cooldown holds back ... */
  enum rm_signal_state pending;
  int64_t pending_since_ms; /* ... since the now_ms of this call */
  rm_signal_streak failed, bad, healthy, not_failed;
  size_t nrecent; /* latest observations, oldest first */
  rm_signal_evidence recent[RM_SIGNAL_EVIDENCE_MAX];
  size_t nwindow; /* metric window, oldest first */
  rm_signal_sample window[RM_SIGNAL_WINDOW_MAX];
} rm_signal;

/* What changed, and why. Self-contained except tags. */
typedef struct rm_signal_transition {
  char source_id[RM_SIGNAL_ID_MAX];
  enum rm_signal_type source_type;
  const json_t *tags; /* borrowed from the config; may be NULL */
  uint64_t seq;       /* 1 for the object's first transition */
  int64_t at_ms;
  enum rm_signal_state from, to;
  enum rm_signal_severity severity;
  char correlation_id[RM_SIGNAL_CORR_MAX]; /* "" when in no incident */
  bool incident_opened, incident_resolved;
  uint32_t streak;  /* consecutive observations behind it (0: silence) */
  size_t nevidence; /* the latest min(streak, RM_SIGNAL_EVIDENCE_MAX), oldest first */
  rm_signal_evidence evidence[RM_SIGNAL_EVIDENCE_MAX];
  char reason[RM_SIGNAL_REASON_MAX];
} rm_signal_transition;

/* ---- config (config.c) ---- */

/* The defaults of type, id "" and no tags:
 *                              check  metric  event
 *   failures_to_fail             3      1       1
 *   degradations_to_degrade      3      1       1
 *   successes_to_recover         2      1       1
 *   cooldown_s                  60     60      60
 *   escalate_during_cooldown   true   true    true
 *   unknown_after                3      3       0
 * Checks count runs (a single failed run is often a blip); a metric is
 * debounced by its window and breach_s; an event states what it states.
 * metric: direction "above", aggregate "mean", window_s 0, breach_s 0,
 * no thresholds. */
void rm_signal_config_defaults(rm_signal_config *cfg, enum rm_signal_type type);

/* Fills cfg from j:
 *   {"id": "mon-1", "type": "check" | "metric" | "event", "tags": ["a"],
 *    "failures_to_fail": 3, "degradations_to_degrade": 3,
 *    "successes_to_recover": 2, "cooldown_s": 60,
 *    "escalate_during_cooldown": true, "unknown_after": 3,
 *    "metric": {"direction": "above" | "below", "degraded": 500,
 *               "failed": 800, "aggregate": "mean" | "last" | "min" | "max",
 *               "window_s": 300, "breach_s": 120}}
 * id and type are required, "metric" exactly for type metric; absent
 * fields take the type's defaults; unknown fields are errors (a typo must
 * not silently leave a default). Seconds are whole numbers: cooldown_s to
 * 604800, window_s and breach_s to 86400.
 * 0, or RM_EINVAL with every problem in err as "$.path: message" joined by
 * "; " and, when problems is an array, appended to it as {"path",
 * "message"}; cfg then holds no reference. Release with
 * rm_signal_config_free. */
int rm_signal_config_parse(rm_signal_config *cfg, const json_t *j, json_t *problems, char *err, size_t errlen);

/* The config as JSON, defaults included (the form rm_signal_config_parse
 * reads). */
json_t *rm_signal_config_to_json(const rm_signal_config *cfg);

/* Releases the tags; cfg may be freed or parsed into again afterwards. */
void rm_signal_config_free(rm_signal_config *cfg);

/* ---- names (config.c) ---- */

/* "unknown", "healthy", "degraded", "failed"; static storage. */
const char *rm_signal_state_name(enum rm_signal_state s);
const char *rm_signal_type_name(enum rm_signal_type t);         /* "check", ... */
const char *rm_signal_severity_name(enum rm_signal_severity s); /* "info", ... */

/* The level of a check run status or an event state, case-insensitive:
 * "healthy", "succeeded", "success", "ok" -> HEALTHY; "degraded" ->
 * DEGRADED; "failed", "failure" -> FAILED. 0 or RM_EINVAL. */
int rm_signal_level_parse(const char *s, enum rm_signal_state *out);

/* The level of an event severity, case-insensitive (syslog names and
 * the usual alert-tool words):
 *   "ok", "success", "debug", "info", "informational", "notice" -> HEALTHY
 *   "warning", "warn", "minor"                                   -> DEGRADED
 *   "error", "err", "major", "critical", "crit", "alert",
 *   "emergency", "emerg", "fatal"                                -> FAILED
 * 0 or RM_EINVAL. */
int rm_signal_severity_level(const char *severity, enum rm_signal_state *out);

/* ---- the machine (signal.c) ---- */

/* Unknown, nothing observed. */
void rm_signal_init(rm_signal *sig);

/* Feeds one observation made at obs->at_ms, received at now_ms. Returns
 * 1 when it caused a transition (written to *tr), 0 when not, or, with
 * sig unchanged: RM_EINVAL (level or value wrong for cfg's type, id too
 * long) or RM_ECONFLICT (obs->at_ms older than the last observation). */
int rm_signal_observe(const rm_signal_config *cfg, rm_signal *sig, const rm_signal_obs *obs, int64_t now_ms,
                      rm_signal_transition *tr);

/* The clock: moves to Unknown when nothing was observed for
 * cfg->unknown_after * interval_ms (interval_ms: the object's expected
 * interval, 0 = none), else applies a pending verdict whose cooldown has
 * passed. Call it periodically and whenever the interval changes. 1, 0 or
 * RM_EINVAL (negative interval), like rm_signal_observe. */
int rm_signal_tick(const rm_signal_config *cfg, rm_signal *sig, int64_t now_ms, int64_t interval_ms,
                   rm_signal_transition *tr);

/* The state the cooldown holds back, and in *until_ms (may be NULL) when
 * the cooldown ends; false when nothing is pending. */
bool rm_signal_pending(const rm_signal_config *cfg, const rm_signal *sig, enum rm_signal_state *to, int64_t *until_ms);

/* ---- JSON (json.c) ---- */

/* The machine as JSON, versioned ("v": 1), every field exact. */
json_t *rm_signal_to_json(const rm_signal *sig);

/* Restores a machine from rm_signal_to_json's form. 0; RM_EINVAL with
 * "$.path: message" in err; RM_EVERSION for a newer "v". sig is written
 * only on success. */
int rm_signal_from_json(rm_signal *sig, const json_t *j, char *err, size_t errlen);

/* The transition as JSON:
 *   {"source_id", "source_type", "seq", "at" (ISO 8601 UTC with ms),
 *    "at_ms", "from", "to", "severity", "correlation_id" (null when none),
 *    "incident": "opened" | "updated" | "resolved" | null, "tags",
 *    "streak", "evidence": [{"id" (null when none), "state", "at",
 *    "at_ms", "value"?, "aggregate"?}], "reason"} */
json_t *rm_signal_transition_to_json(const rm_signal_transition *t);

#endif
