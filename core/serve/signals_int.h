/* What signals.c, signal_map.c and signals_api.c share: the engine that
 * turns observations of a monitoring object into its signal (stored by
 * rm_store_signal_apply) and what follows a transition. Not part of the
 * server's interface (serve.h). */
#ifndef RM_SERVE_SIGNALS_INT_H
#define RM_SERVE_SIGNALS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "serve/serve.h"

struct rm_serve_signals {
  rm_serve *s;
  uv_timer_t clock;
  /* object id -> the UTC ms at which a tick may change its signal (its
   * silence reaches Unknown, or a held-back verdict's cooldown ends) */
  json_t *due;
  bool loading; /* the start-up pass over stored signals is under way */
  struct rm__msources *sources; /* metric monitors fed from runs (metric_source.c) */
};

/* result: {"signal": row, "transitions": [...]}, owned by the callee. */
typedef void (*rm__sig_done)(void *ud, int err, const char *errmsg, json_t *result);

/* Feeds one observation to the signal of object (a monitor document, or
 * a workflow document for its run events; borrowed): obs {"at_ms", "id"?,
 * "level"? | "value"?}, or NULL for a clock tick. Stores the machine and
 * any transition, hands each transition to the notifications and the
 * mapping rules, then calls done (may be NULL). */
void rm__signals_feed(rm_serve *s, const json_t *object, const char *kind, const json_t *obs, rm__sig_done done,
                      void *ud);

/* The mapping rules that match transition (of object, a monitor or
 * workflow document) each queue a run of their workflow with the
 * transition as input "signal". Fire and forget; outcomes are logged and
 * audited. */
void rm__signals_map(rm_serve *s, const json_t *object, const json_t *transition);

/* An ISO-8601 time with a zone ("2026-01-02T03:04:05.678Z", "+02:00")
 * in UTC ms; false when s is not one. */
bool rm__signals_iso_ms(const char *s, int64_t *ms);

/* The push routes (signal_push.c): POST /monitors/{id}/metrics and
 * /monitors/{id}/events. */
void rm__signals_h_metric(rm_hctx *c);
void rm__signals_h_event(rm_hctx *c);

/* Metric values extracted from runs (metric_source.c). start: after
 * s->signals exists, loads the metric monitors with a "source" (0 or -1);
 * reload: loads them again (a monitor changed); tick: on each clock tick,
 * reloads now and then; run: a finished run (row as claimed, record as
 * run, both borrowed; not a dry run) feeds the monitors whose source
 * names its workflow; free: once the loop has ended. */
int rm__msources_start(rm_serve *s);
void rm__msources_reload(rm_serve *s);
void rm__msources_tick(rm_serve *s);
void rm__msources_run(rm_serve *s, const json_t *row, const json_t *record);
void rm__msources_free(rm_serve *s);


/* The API's shape of a stored signal row (a new reference). */
json_t *rm__signals_view(const json_t *row);

#endif
