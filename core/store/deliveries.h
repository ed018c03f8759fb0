/* rm_store deliveries: the record of every notification sent (or held
 * back) through a channel, for the dead-letter list and re-sends. Same
 * threading and callback contract as store.h.
 *
 * A delivery row: {id, channel_id, channel_name, channel_type, event
 * ("run.failed", "signal.failed", "escalation.failed", ...), object_kind
 * ("workflow" | "monitor"), object_id, run_id, status, attempts (sends
 * tried in all, re-sends included), last_status (HTTP status or SMTP
 * reply of the last answer), last_error, suppressed_by (the maintenance
 * window), resends, body (the message as sent, scrubbed), created_at,
 * updated_at}.
 *
 * Status: "queued" (being sent), "delivered", "failed" (cut short before
 * it ended, e.g. by a shutdown), "dead" (every attempt failed, or the
 * receiver refused it for good), "suppressed" (a maintenance window or a
 * disabled channel held it back; never sent). */
#ifndef RM_STORE_DELIVERIES_H
#define RM_STORE_DELIVERIES_H

#include "store/store.h"

/* d: {"id"?: a UUID (generated when absent), "channel_id", "event",
 * "status": "queued" | "suppressed" | "dead", "body": object, and
 * optionally channel_name, channel_type, object_kind, object_id, run_id,
 * last_error, suppressed_by}. result: the row. */
void rm_store_delivery_add(rm_store *s, const json_t *d, rm_store_cb cb, void *ud);

/* Records how a send ended: o {"status": "delivered" | "failed" |
 * "dead", "attempts": tried this time (added), "last_status"?,
 * "last_error"?}. Only a queued delivery changes: RM_ECONFLICT otherwise,
 * RM_ENOTFOUND when there is none. result: the row. */
void rm_store_delivery_end(rm_store *s, const char *id, const json_t *o, rm_store_cb cb, void *ud);

/* result: the row, or RM_ENOTFOUND. */
void rm_store_delivery_get(rm_store *s, const char *id, rm_store_cb cb, void *ud);

/* Queues a dead or failed delivery again (resends + 1) and returns its
 * row; RM_ECONFLICT naming its status when it is anything else (so two
 * re-sends at once send it once), RM_ENOTFOUND. */
void rm_store_delivery_requeue(rm_store *s, const char *id, rm_store_cb cb, void *ud);

/* query: {"status": s or [s...], "channel_id", "object_id", "event",
 *   "run_id": exact matches, "from", "to": ISO times (created_at; from
 *   inclusive, to exclusive), "page", "page_size", "sort": "-created_at"
 *   (default) | "updated_at" | "status" | "attempts" ...}.
 * result: {"items", "page", "page_size", "total", "total_pages"}. */
void rm_store_delivery_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud);

#endif
