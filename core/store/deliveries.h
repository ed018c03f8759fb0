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
 * Status: "queued" (being sent, retries included), "delivered", "failed"
 * (it could not start), "dead" (every attempt failed, or the receiver
 * refused it for good), "suppressed" (a maintenance window or a disabled
 * channel held it back; never sent).
 *
 * Leases: a queued delivery is leased to the process sending it (an
 * owner name and an expiry by the database's clock, like run leases);
 * the owner renews its leases while its sends retry. A queued delivery
 * whose lease lapsed (its process died) or was handed back (a shutdown
 * cut its send short) is claimed by the next process that looks, which
 * sends it again under the same id. The lease columns are internal: rows
 * do not show them. */
#ifndef RM_STORE_DELIVERIES_H
#define RM_STORE_DELIVERIES_H

#include "store/store.h"

#define RM_DELIVERY_ID_MAX 128

/* d: {"id"?: at most RM_DELIVERY_ID_MAX characters (a UUID is generated
 * when absent), "channel_id", "event", "status": "queued" | "suppressed"
 * | "dead", "body": object, and optionally channel_name, channel_type,
 * object_kind, object_id, run_id, last_error, suppressed_by,
 * "lease_owner" and "lease_ms" (a queued delivery is leased to that
 * owner)}. result: the row; NULL (no error) when a delivery with that id
 * exists already -- nothing is written, so a caller that derives the id
 * from what the delivery is about records it once. */
void rm_store_delivery_add(rm_store *s, const json_t *d, rm_store_cb cb, void *ud);

/* Records how a send ended: o {"status": "delivered" | "failed" |
 * "dead", or "queued" to hand it back (a shutdown cut the send short: it
 * stays queued and its lease ends now, so the next claim takes it),
 * "attempts": tried this time (added), "last_status"? (kept when
 * absent), "last_error"?}. Only a queued delivery changes: RM_ECONFLICT
 * otherwise, RM_ENOTFOUND when there is none. result: the row. */
void rm_store_delivery_end(rm_store *s, const char *id, const json_t *o, rm_store_cb cb, void *ud);

/* result: the row, or RM_ENOTFOUND. */
void rm_store_delivery_get(rm_store *s, const char *id, rm_store_cb cb, void *ud);

/* Queues a dead or failed delivery again (resends + 1), leased to owner
 * for lease_ms, and returns its row; RM_ECONFLICT naming its status when
 * it is anything else (so two re-sends at once send it once),
 * RM_ENOTFOUND. */
void rm_store_delivery_requeue(rm_store *s, const char *id, const char *owner, uint64_t lease_ms, rm_store_cb cb,
                               void *ud);

/* Extends, to lease_ms from now, the lease of every queued delivery owner
 * holds. result: {"renewed": n}. */
void rm_store_delivery_renew(rm_store *s, const char *owner, uint64_t lease_ms, rm_store_cb cb, void *ud);

/* Leases to owner, for lease_ms, up to limit queued deliveries that no
 * lease holds, oldest first (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
 * servers never claim the same one). result: {"items": [rows]}. */
void rm_store_delivery_claim(rm_store *s, const char *owner, uint64_t lease_ms, int limit, rm_store_cb cb,
                             void *ud);

/* Deletes, at most batch at a time, the deliveries that ended (every
 * status but queued) and last changed more than older_than_ms ago (0
 * keeps them). result: {"deleted": n, "more": bool}. */
void rm_store_delivery_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud);

/* query: {"status": s or [s...], "channel_id", "object_id", "event",
 *   "run_id": exact matches, "from", "to": ISO times (created_at; from
 *   inclusive, to exclusive), "page", "page_size", "sort": "-created_at"
 *   (default) | "updated_at" | "status" | "attempts" ...}.
 * result: {"items", "page", "page_size", "total", "total_pages"}. */
void rm_store_delivery_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud);

#endif
