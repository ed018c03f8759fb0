/* Notifications inside the server: what notifications.c (sending and
 * recording deliveries), notify_events.c (run ends and signal
 * transitions), escalation.c, maintenance.c and notify_api.c share. Not
 * part of the server's interface (serve.h).
 *
 * A notice is one message for a list of channels about one object: it
 * becomes one delivery per channel (store/deliveries.h), recorded before
 * it is sent, or recorded as suppressed when a maintenance window covers
 * the object. */
#ifndef RM_SERVE_NOTIFY_INT_H
#define RM_SERVE_NOTIFY_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify/notify.h"
#include "sched/tz.h"
#include "serve/serve.h"

#define RM_NOTIFY_TICK_MS 1000 /* escalation clock */

struct rm_serve_notify {
  rm_serve *s;
  rm_notifier n;
  bool closing;
  uv_timer_t tick; /* escalations */
  bool tick_closed;
  /* Failed signals whose escalation policy is running, by monitor id:
   * {"monitor": doc, "transition", "since": uv_now ms, "next": step}. */
  json_t *esc;
  rm_tz_registry *tz;
  rm_metric *m_sent; /* deliveries ended, by outcome */
  json_t *held;      /* check monitors suppressed in the scheduler: {id: until_ms} */
  bool syncing, resync;
  unsigned ticks;    /* of the escalation clock, for the periodic sync */
  void (*closed)(rm_serve *s);
};

/* ---- sending (notifications.c) ---- */
/* Sends message (stolen: {title, text, severity, fields?, event}) to
 * each channel id in channels (stolen) about object (borrowed: the
 * workflow or monitor document; its id and tags decide which maintenance
 * windows apply). meta (stolen): {event, object_kind, run_id?}. Every
 * channel gets a delivery row, whatever happens. */
void rm__notify_dispatch(rm_serve *s, const json_t *object, json_t *meta, json_t *message, json_t *channels);
/* Sends a queued delivery row (stolen) through channel (borrowed), and
 * records the outcome. */
void rm__notify_send_row(rm_serve *s, const json_t *channel, json_t *row);
/* Ends a queued delivery row without sending it (status "dead" or
 * "failed", why). */
void rm__notify_end_unsent(rm_serve *s, const char *id, const char *status, const char *why);

/* ---- messages (notify_events.c) ---- */
/* The message about transition tr (borrowed) of monitor (borrowed):
 * event "<kind>.<to state>"; extra (may be NULL) is appended to the text
 * and marks the title as an escalation. A new reference. */
json_t *rm__notify_transition_message(const json_t *monitor, const json_t *tr, const char *kind, const char *extra);

/* ---- escalation (escalation.c) ---- */
/* Starts (a transition to failed) or stops (any other) the escalation
 * policy of monitor (borrowed) for transition (borrowed). */
void rm__notify_escalation_track(rm_serve *s, const json_t *monitor, const json_t *transition);
void rm__notify_escalation_tick(uv_timer_t *t);

/* ---- maintenance windows (maintenance.c) ---- */
/* The first window of windows (documents of kind "maintenance") that is
 * enabled, active at now_ms, suppresses what ("notifications" or
 * "checks") and covers object (its id in "monitors"/"workflows", or one
 * of its tags in "object_tags"); NULL when none. Borrowed from windows. */
const json_t *rm__maint_covering(rm_tz_registry *tz, const json_t *windows, const json_t *object, const char *what,
                                 int64_t now_ms);
/* Whether window is in force at now_ms (one-off start/end or a cron
 * fire with duration_min); a window whose zone or times do not load is
 * not. */
bool rm__maint_active(rm_tz_registry *tz, const json_t *window, int64_t now_ms);
/* When the period of window open at now_ms ends (UTC ms), or 0 when it
 * is not in force. */
int64_t rm__maint_until(rm_tz_registry *tz, const json_t *window, int64_t now_ms);
/* Tells the scheduler which check monitors active windows suppress now
 * (rm_serve_sched_suppress), and lifts what it suppressed before and no
 * longer does (maint_sync.c). One pass at a time; a call during a pass
 * makes another one follow it. */
void rm__maint_sync(rm_serve *s);
/* Runs a pass now and then (each escalation tick calls it). */
void rm__maint_tick(rm_serve *s);
/* The wall clock in milliseconds. */
int64_t rm__notify_now_ms(void);

#endif
