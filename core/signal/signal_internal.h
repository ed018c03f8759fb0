/* Internals shared by the files of core/signal; not part of signal.h. */
#ifndef RM_SIGNAL_INTERNAL_H
#define RM_SIGNAL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signal/signal.h"

/* The state names by number, NULL-terminated (config.c). */
extern const char *const rm__signal_state_names[];

/* ---- why a transition happens (signal.c decides, reason.c words it) ---- */

enum rm__sig_rule {
  RM__SIG_NONE = 0,
  RM__SIG_FAILED,     /* failed streak: escalation to Failed */
  RM__SIG_BAD,        /* degraded-or-failed streak: escalation to Degraded */
  RM__SIG_HEALTHY,    /* healthy streak: to Healthy */
  RM__SIG_NOT_FAILED, /* not-failed streak: Failed down to Degraded */
  RM__SIG_SILENCE,    /* no observation: to Unknown */
};

typedef struct rm__sig_verdict {
  enum rm_signal_state to;
  enum rm__sig_rule rule;
  uint32_t threshold;
  const rm_signal_streak *streak; /* NULL for silence */
  bool was_held;                  /* the cooldown held it back ... */
  int64_t held_since_ms;          /* ... since then */
  int64_t silence_ms, interval_ms;
} rm__sig_verdict;

/* Writes t->reason for v; sig is the machine before the transition and t
 * already holds everything else. */
void rm__signal_reason(const rm_signal_config *cfg, const rm_signal *sig, const rm__sig_verdict *v,
                       rm_signal_transition *t);

/* "2026-01-02T03:04:05.678Z" for UTC milliseconds (json.c). */
void rm__signal_iso(int64_t ms, char out[32]);

/* ---- reading JSON fields with paths (fields.c) ---- */

/* Collects problems: into err ("$.a: msg; $.b: msg") and, when list is an
 * array, as {"path", "message"} items. */
typedef struct rm__sig_problems {
  json_t *list;
  char *err;
  size_t errlen, len;
  unsigned n;
} rm__sig_problems;

void rm__sig_problems_init(rm__sig_problems *p, json_t *list, char *err, size_t errlen);
void rm__sig_problem(rm__sig_problems *p, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Each reads obj[key] (path + "." + key in messages). Absent: a problem
 * when required, and false with *out untouched. Wrong: a problem and
 * false. Present and right: *out set, true. */
bool rm__sig_int(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required, int64_t min,
                 int64_t max, int64_t *out);
bool rm__sig_real(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                  double *out); /* any finite number */
bool rm__sig_bool(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required, bool *out);
/* A string of 1 to maxlen bytes. */
bool rm__sig_str(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                 size_t maxlen, const char **out);
/* A string among names (NULL-terminated); *out is its index. */
bool rm__sig_enum(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                  const char *const *names, int *out);
/* Reports the keys of obj not in allowed (NULL-terminated). */
void rm__sig_only(rm__sig_problems *p, const json_t *obj, const char *path, const char *const *allowed);

#endif
