/* Notifications inside the server: what notifications.c (sending and
 * recording deliveries), notify_leases.c (deliveries that outlive their
 * process), notify_events.c (run ends and signal transitions),
 * webhooks.c (run webhook subscriptions), escalation.c, maintenance.c
 * and notify_api.c share. Not part of the server's interface (serve.h).
 *
 * A notice is one message per channel about one object: it becomes one
 * delivery per channel (store/deliveries.h), recorded before it is sent,
 * or recorded as suppressed when a maintenance window covers the object.
 * A queued delivery is leased to this process while it is sent; when the
 * process dies or stops before the send ends, the next server to look
 * sends it again under the same id. */
#ifndef RM_SERVE_NOTIFY_INT_H
#define RM_SERVE_NOTIFY_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify/notify.h"
#include "sched/tz.h"
#include "serve/serve.h"

#define RM_NOTIFY_TICK_MS 1000      /* escalation clock */
#define RM_NOTIFY_RESTORE_TICKS 60  /* escalations read back from the store this often */
#define RM_NOTIFY_CLAIM_BATCH 20    /* deliveries picked up at once */

struct rm_serve_notify {
  rm_serve *s;
  rm_notifier n;
  bool closing;
  uv_timer_t tick; /* escalations */
  uv_timer_t lease_tick; /* renews this process's delivery leases, picks up lapsed ones */
  /* Failed signals whose escalation policy is running, by monitor id:
   * {"monitor": doc, "transition", "since": wall ms of the transition,
   * "next": step, "tracked": wall ms; "checking" while a step is being
   * decided}. An entry whose steps are all done stays until the signal
   * changes. A cache of the store (escalation.c). */
  json_t *esc;
  bool restoring;    /* escalations are being read back from the store */
  rm_tz_registry *tz;
  rm_metric *m_sent; /* deliveries ended, by outcome */
  json_t *sending;   /* ids of the deliveries this process is sending: {id: true} */
  bool renewing, claiming;
  json_t *hooks;     /* webhook channels (webhooks.c), read at hooks_at (uv_now) */
  uint64_t hooks_at;
  json_t *held;      /* check monitors suppressed in the scheduler: {id: until_ms} */
  bool syncing, resync;
  unsigned ticks;    /* of the escalation clock, for the periodic syncs */
  void (*closed)(rm_serve *s);
};

/* ---- sending (notifications.c) ---- */
/* Sends each of items (stolen: [{"channel_id", "message": {title, text,
 * severity, fields?, event}}]) to its channel, about object (borrowed:
 * the workflow or monitor document; its id and tags decide which
 * maintenance windows apply). meta (stolen): {event, object_kind,
 * run_id?, id?: the delivery id, with one item only (an id derived from
 * what the delivery is about is recorded once: a second dispatch with it
 * does nothing)}. Every item gets a delivery row, whatever happens; a
 * webhook channel's event gets "channel": the channel's name. */
void rm__notify_dispatch_each(rm_serve *s, const json_t *object, json_t *meta, json_t *items);
/* rm__notify_dispatch_each of one message (stolen) to each channel id in
 * channels (stolen). */
void rm__notify_dispatch(rm_serve *s, const json_t *object, json_t *meta, json_t *message, json_t *channels);
/* Sends a queued delivery row (stolen), leased to this process, through
 * channel (borrowed), and records the outcome; a send the shutdown cuts
 * short is handed back (rm__notify_hand_back). */
void rm__notify_send_row(rm_serve *s, const json_t *channel, json_t *row);
/* Ends a queued delivery row without sending it (status "dead" or
 * "failed", why). */
void rm__notify_end_unsent(rm_serve *s, const char *id, const char *status, const char *why);
/* Records how the send of queued delivery id ended: counted, logged, the
 * row ended as delivered or dead (scrubbed); a send the shutdown cut
 * short is handed back. Then done (NULL: nothing) with the row as
 * recorded, or with RM_ECANCELED when it was handed back. For senders of
 * their own: the channel test (channels_api.c). */
void rm__notify_record_outcome(rm_serve *s, const char *id, const rm_notify_outcome *out, rm_store_cb done,
                               void *ud);
/* This process's name on delivery leases (the executor's lease owner),
 * or NULL before the executor exists. */
const char *rm__notify_owner(rm_serve *s);

/* ---- leases (notify_leases.c) ---- */
/* How long a delivery lease lasts: executor.lease_ms (0 = 15000). */
uint64_t rm__notify_lease_ms(const rm_serve *s);
/* Starts the lease clock: at once (what a previous process left is
 * picked up as soon as its lease lapses) and every third of a lease. */
void rm__notify_leases_start(rm_serve *s);
/* Leaves queued delivery id (a send cut short after attempts tries,
 * why) to the next claim, now. */
void rm__notify_hand_back(rm_serve *s, const char *id, unsigned attempts, long last_status, const char *why);

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
/* Reads back from the store every Failed, unacknowledged signal whose
 * monitor has an escalation policy and tracks it (steps recorded before
 * are not sent again); forgets tracked ones that are no longer Failed.
 * At the first tick and every RM_NOTIFY_RESTORE_TICKS. */
void rm__notify_escalation_restore(rm_serve *s);

/* ---- run webhooks (webhooks.c) ---- */
/* Calls cb(s, channels, ud) with the enabled webhook channels (a new
 * array of documents) that subscribe to run event ("run.failed") of
 * workflow_id (may be NULL); an empty array when the store fails (logged).
 * May call cb before it returns. */
typedef void (*rm__hooks_cb)(rm_serve *s, json_t *channels, void *ud);
void rm__webhooks_subscribers(rm_serve *s, const char *event, const char *workflow_id, rm__hooks_cb cb, void *ud);
/* True when the channel cache is fresh and no webhook subscribes to the
 * end with status of a run of workflow_id (NULL: of no workflow); false
 * when unsure. */
bool rm__webhooks_none(rm_serve *s, const char *status, const char *workflow_id);

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

#endif
