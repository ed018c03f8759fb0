/* rm_store: persistence for definitions and runs, on SQLite (default) or
 * PostgreSQL, with one schema and one interface.
 *
 * Threading: every database call runs on the store's own threads (SQLite:
 * one writer thread plus reader threads on the WAL; PostgreSQL: a small
 * pool of connections, one per thread). Operations are asynchronous: they
 * queue a job and return at once; the callback runs later on the loop
 * thread. Nothing here blocks the loop except rm_store_open and
 * rm_store_migrate, which are meant for start-up.
 *
 * Callbacks: (ud, err, errmsg, result). err is 0 or a negative RM_E*
 * (RM_ENOTFOUND, RM_ECONFLICT, RM_EINVAL, RM_EDB for a database failure,
 * ...) with errmsg saying what and where (never NULL when err != 0).
 * result is a new reference the callback owns (json_decref it) or NULL.
 *
 * Durability: a step write's callback fires only after its transaction is
 * committed (SQLite: WAL with synchronous=NORMAL is not enough for
 * "written before the next step starts" across power loss, but is across
 * process death, which is the promise; PostgreSQL: committed). Step writes
 * queued by many runs at once are committed together in one transaction
 * (group commit) so durability does not cost one fsync per step.
 *
 * While the database is unreachable (PostgreSQL stopped, SQLite locked
 * by another process) jobs wait and retry with backoff up to
 * opts.retry_ms, then fail with RM_EDB; nothing queued is dropped
 * silently. */
#ifndef RM_STORE_H
#define RM_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rm_store rm_store;

typedef void (*rm_store_cb)(void *ud, int err, const char *errmsg, json_t *result);

typedef struct rm_store_opts {
  int threads;          /* worker threads: SQLite readers (plus its one writer) /
                           PostgreSQL pool size; 0 = 2 */
  uint64_t retry_ms;    /* how long a job waits for an unreachable database; 0 = 30000 */
  bool migrate;         /* apply pending migrations at open (restmon does) */
} rm_store_opts;

/* Opens the store named by url: "sqlite:PATH" (created with its folder if
 * missing; WAL) or "postgresql://user@host:port/db" / "postgres://...".
 * With opts->migrate, applies pending migrations (SQLite: after a copy of
 * the file to PATH.bak-vN). A database whose schema is newer than this
 * binary knows is refused: RM_EVERSION, err names both versions.
 * Blocking; call before the loop runs. */
int rm_store_open(rm_store **out, uv_loop_t *loop, const char *url, const rm_store_opts *opts,
                  char *err, size_t errlen);

/* Finishes queued jobs (their callbacks run), stops the threads, closes
 * connections, then calls done(ud) on the loop. Operations called after
 * rm_store_close (from a callback, say) fail with RM_ECANCELED. */
void rm_store_close(rm_store *s, void (*done)(void *ud), void *ud);

/* "sqlite" or "postgresql". */
const char *rm_store_backend(const rm_store *s);

/* Applies pending migrations; blocking, on the calling thread (for
 * `restmon migrate`, without a loop; waits up to 30 s for an unreachable
 * database). On success *from and *to are the versions before and after
 * (equal when nothing was pending); 0 or RM_E* with err. */
int rm_store_migrate(const char *url, int *from, int *to, char *err, size_t errlen);
/* The schema version this binary knows. */
int rm_store_schema_version(void);

/* Store reachable (a trivial query) -- for /health/ready. result NULL. */
void rm_store_ping(rm_store *s, rm_store_cb cb, void *ud);

/* Lists (docs, runs, audit) count matches up to 10,000 (or through the
 * page asked for); beyond that "total" is that cap and "total_capped" is
 * true, since counting every match of a broad filter costs as much as
 * reading them all. */

/* ---- Definitions --------------------------------------------------------
 * Documents of a kind: "task", "workflow", "schedule", "monitor",
 * "channel", "secret", "user", "config", "mapping", "session", "apikey",
 * "maintenance".
 * A document is a JSON object; the store owns these metadata fields in it and returns them:
 *   id (text; a UUID is generated when absent), kind, name (required),
 *   owner, scope ("global" | "private"), tags (array of strings),
 *   version (integer, 1 on create, +1 on each update), created_at,
 *   updated_at, deleted_at (null unless soft-deleted).
 * Everything else in the object is stored as is (the "spec"). */

/* Creates (no id, or an id not yet used) or updates (id exists). An update
 * with "version" set to other than the current version fails with
 * RM_ECONFLICT (optimistic locking); without "version" it just applies.
 * Names are unique per kind among live documents: RM_ECONFLICT.
 * result: the stored document. */
void rm_store_doc_put(rm_store *s, const char *kind, const json_t *doc, rm_store_cb cb, void *ud);
/* result: the document (also when soft-deleted, with deleted_at) or RM_ENOTFOUND. */
void rm_store_doc_get(rm_store *s, const char *kind, const char *id, rm_store_cb cb, void *ud);
/* Soft delete; result NULL; RM_ENOTFOUND when absent or already deleted. */
void rm_store_doc_delete(rm_store *s, const char *kind, const char *id, rm_store_cb cb, void *ud);
/* query: {"name": substring, "name_is": exact name, "owner": s, "scope": s, "tag": s,
 *   "visible_to": user id (only global documents and that user's own
 *   private ones, in the items and in the total), "include_deleted": bool,
 *   "page": n (1-based, default 1),
 *   "page_size": n (default 50, max 500), "sort": "name" | "-updated_at" |
 *   "created_at" ... (a leading '-' for descending)}.
 * result: {"items": [...], "page", "page_size", "total", "total_pages"}. */
void rm_store_doc_list(rm_store *s, const char *kind, const json_t *query, rm_store_cb cb, void *ud);
/* The change feed, for servers sharing the store: the documents of kinds
 * (NULL-terminated, at least one) whose updated_at >= since (ISO-8601;
 * NULL: all), soft-deleted ones included (deleting sets updated_at), in
 * updated_at order (ties by id), at most limit (1..100000). updated_at
 * is the database's clock when the writing transaction began, so a change
 * can commit after a later one was read: a reader re-reads an overlap and
 * skips what it has seen by (id, version, deleted_at) -- a delete keeps
 * the version. result: an array of documents. */
void rm_store_doc_changes(rm_store *s, const char *const *kinds, const char *since, int limit, rm_store_cb cb,
                          void *ud);

/* ---- Workflow versions --------------------------------------------------
 * A workflow document (kind "workflow") holds the current draft. Publishing
 * freezes the draft's "definition" (the workflow file format) as the next
 * immutable version. result: {"workflow_id", "version", "published_at"}. */
void rm_store_workflow_publish(rm_store *s, const char *workflow_id, const char *actor, rm_store_cb cb,
                               void *ud);
/* As rm_store_workflow_publish, but freezes definition (copied; e.g. the
 * draft with its task references resolved) instead of the stored draft,
 * and only while the workflow document is still at draft_version, the
 * version the caller derived it from: RM_ECONFLICT naming both otherwise. */
void rm_store_workflow_publish_def(rm_store *s, const char *workflow_id, const char *actor,
                                   const json_t *definition, json_int_t draft_version, rm_store_cb cb,
                                   void *ud);
/* result: {"workflow_id", "version", "definition", "published_at", "published_by"};
 * version 0 means the latest. */
void rm_store_workflow_version(rm_store *s, const char *workflow_id, int version, rm_store_cb cb,
                               void *ud);
/* The published versions of a workflow, without their definitions.
 * query: {"page", "page_size", "sort": "-version" (default) |
 * "published_at" | "published_by"}. result: {"items": [{workflow_id,
 * version, published_at, published_by}], "page", "page_size", "total",
 * "total_pages"}; no items for an unknown workflow. */
void rm_store_workflow_versions(rm_store *s, const char *workflow_id, const json_t *query,
                                rm_store_cb cb, void *ud);

/* ---- Runs ---------------------------------------------------------------
 * A run row: run_id, workflow_id (may be null for file runs),
 * workflow_name, workflow_version (0 for file runs), definition (the JSON
 * the run executes, a snapshot), source, trigger ({"type": ..., ...}),
 * inputs, status (queued | running | succeeded | degraded | failed |
 * cancelled), reason, vars (scrubbed), dry_run, rerun_of, resumed_from,
 * created_at, started_at, finished_at, duration_ms, summary, tags,
 * lease_owner, lease_expires_at, cancel_requested, acknowledged_by/at.
 * Steps: one row per (run_id, task): the step record of
 * docs/run-record.md including its attempts, plus indexed columns status,
 * last HTTP status and the extracted variables (JSON) for search. */

/* spec: {"workflow_id"?, "workflow_name", "workflow_version"?,
 *  "definition", "source"?, "trigger", "inputs", "dry_run"?, "rerun_of"?,
 *  "resumed_from"?, "tags"?, "status"?: "queued" (default) | "running",
 *  "lease_owner"?, "lease_ms"? (with status running: claimed at once)}.
 * result: the run row (without steps). */
void rm_store_run_create(rm_store *s, const json_t *spec, rm_store_cb cb, void *ud);

/* Claims up to limit runs that are queued, or running with an expired
 * lease, for owner, with a lease of lease_ms (PostgreSQL: FOR UPDATE SKIP
 * LOCKED; SQLite: one writer, so a plain UPDATE ... RETURNING). Claimed
 * runs become "running", oldest first. result: array of run rows, each
 * with "steps": the stored step records (possibly unfinished ones) in
 * execution order, and "vars". A taken-over run may carry
 * cancel_requested: the executor ends it as cancelled.
 *
 * Leases: a lease is held while lease_owner matches and lease_expires_at
 * has not passed by the database's clock (PostgreSQL: the server's;
 * SQLite: the host's); callers never pass times for leases. */
void rm_store_run_claim(rm_store *s, const char *owner, uint64_t lease_ms, int limit, rm_store_cb cb,
                        void *ud);

/* Extends the leases of run_ids (array of strings) held by owner; a
 * lease_ms of 0 releases them (claimable at once).
 * result: {"renewed": [ids], "lost": [ids whose lease is no longer
 * owner's, expired, or unknown], "cancel": [renewed ids with
 * cancel_requested]}. */
void rm_store_run_renew(rm_store *s, const char *owner, const json_t *run_ids, uint64_t lease_ms,
                        rm_store_cb cb, void *ud);

/* Writes (inserts or replaces) one step record of a run the owner holds,
 * and the run's current vars (scrubbed) as its checkpoint. Group-committed
 * with other step writes. RM_ECONFLICT when owner no longer holds the
 * lease (another executor took the run over). result NULL. */
void rm_store_step_put(rm_store *s, const char *run_id, const char *owner, const json_t *step,
                       const json_t *vars, rm_store_cb cb, void *ud);

/* Ends a run: record is the final run record (status, reason,
 * finished_at, duration_ms, summary, vars); clears the lease. Like a step
 * write it needs the lease: RM_ECONFLICT otherwise. finished_at defaults
 * to now. result: the run row. */
void rm_store_run_finish(rm_store *s, const char *run_id, const char *owner, const json_t *record,
                         rm_store_cb cb, void *ud);

/* rm_store_run_finish of a run together with its last step (step may be
 * NULL; stolen, and no other reference to it may remain: it is not
 * copied): the step record is written (as rm_store_step_put, without its
 * vars checkpoint: the record's vars are stored) and the run ended in one
 * job, group-committed with step writes. For an executor that knows
 * nothing can follow that step (it answered the step's persist at once).
 * RM_ECONFLICT when owner lost the lease: then neither is written.
 * result NULL. */
void rm_store_run_finish_last(rm_store *s, const char *run_id, const char *owner, json_t *step, const json_t *record,
                              rm_store_cb cb, void *ud);

/* The whole run record as in docs/run-record.md (run fields, "steps" in
 * order, "annotations", and "workflow": {id, name, version, source}), or
 * RM_ENOTFOUND. */
void rm_store_run_get(rm_store *s, const char *run_id, rm_store_cb cb, void *ud);

/* query: {"workflow": name, or id when it is a UUID, "status": s or [s...], "tag": s,
 *   "from": ISO time, "to": ISO time (created_at; from inclusive, to
 *   exclusive), "http_status": n (any
 *   step's last response), "var": {"name": s, "value": json} (an
 *   extracted variable of any step equals value), "trigger": type,
 *   "page", "page_size", "sort": "-created_at" (default) | "duration_ms" ...}
 * result: {"items": [run rows without steps or definition], "page",
 *   "page_size", "total", "total_pages"}. */
void rm_store_run_search(rm_store *s, const json_t *query, rm_store_cb cb, void *ud);

/* Sets cancel_requested; a queued run becomes cancelled at once.
 * result: the run row. RM_ECONFLICT when the run has already finished. */
void rm_store_run_cancel(rm_store *s, const char *run_id, const char *actor, rm_store_cb cb, void *ud);

/* Continues a failed (or cancelled) run from its failed step: the steps
 * that succeeded or degraded stay, the others are removed, and the run is
 * queued again with the variables it had; the executor that claims it
 * replays the stored steps and runs the rest. resumed_from is set to
 * the run's own id to mark it. result: the run row. RM_ECONFLICT unless the run is
 * failed or cancelled. */
void rm_store_run_resume(rm_store *s, const char *run_id, const char *actor, rm_store_cb cb, void *ud);

/* Deletes one finished run with its steps, variables and annotations.
 * result: the run row as it was. RM_ENOTFOUND; RM_ECONFLICT while it is
 * queued or running (cancel it first). */
void rm_store_run_delete(rm_store *s, const char *run_id, rm_store_cb cb, void *ud);

/* kind: "note" (text required) or "ack" (acknowledging a failed or
 * degraded run also sets acknowledged_by/at on it). result: the
 * annotation {id, run_id, kind, author, text, created_at}. */
void rm_store_run_annotate(rm_store *s, const char *run_id, const char *kind, const char *author,
                           const char *text, rm_store_cb cb, void *ud);

/* Deletes finished runs (and their steps and annotations) older than the
 * periods: succeeded/degraded ones finished more than success_ms ago,
 * failed/cancelled ones more than failed_ms ago (0 = keep), at most
 * batch runs per call. result: {"deleted": n, "more": bool}. */
void rm_store_retention(rm_store *s, uint64_t success_ms, uint64_t failed_ms, int batch,
                        rm_store_cb cb, void *ud);

/* ---- Audit --------------------------------------------------------------
 * entry: {"actor", "action", "object_kind", "object_id", "before"?,
 * "after"?, "ip"?}; the store adds id and at. result NULL. */
void rm_store_audit(rm_store *s, const json_t *entry, rm_store_cb cb, void *ud);
/* query: {"actor", "action", "object_kind", "object_id": exact matches,
 *   "from", "to": ISO times (at; from inclusive, to exclusive), "page",
 *   "page_size", "sort": "-at" (default) | "actor" | "action"}.
 * result: {"items": [{id, at, actor, action, object_kind, object_id,
 *   before, after, ip}], "page", "page_size", "total", "total_pages"}. */
void rm_store_audit_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud);
/* Deletes audit entries older than older_than_ms (by the database's
 * clock; 0 keeps them all), at most batch per call, oldest first.
 * result: {"deleted": n, "more": bool}. */
void rm_store_audit_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud);
/* Deletes signal transitions older than older_than_ms (by the database's
 * clock; 0 keeps them all), never a signal's latest one, at most batch
 * per call, oldest first. result: {"deleted": n, "more": bool}. */
void rm_store_transition_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud);

/* ---- Scheduler state ------------------------------------------------------
 * When each scheduled item (a check monitor) last fired, UTC ms, so that a
 * restart knows which fires it missed. */
/* items: [{"item": id, "last_fire_ms": n}, ...] (copied), upserted in
 * one statement; a stored time is never moved backwards. result NULL. */
void rm_store_sched_state_put(rm_store *s, const json_t *items, rm_store_cb cb, void *ud);
/* Forgets one item (its monitor was deleted). result NULL. */
void rm_store_sched_state_delete(rm_store *s, const char *item, rm_store_cb cb, void *ud);
/* result: {"<item>": last_fire_ms, ...} for every item. */
void rm_store_sched_state_all(rm_store *s, rm_store_cb cb, void *ud);

/* One fire of a scheduled check, for servers sharing the store: claims
 * (item, fire_ms) by moving the item's last fire time to fire_ms only if
 * it was earlier (a compare-and-set), and when that succeeded creates the
 * run of spec (as rm_store_run_create; "status": "running" with a lease
 * creates it already claimed), in one transaction group-committed with
 * step writes. result: the run row without its definition, or NULL when
 * the fire was taken already (another server fired the item at fire_ms or
 * later). The stored time also tells a restart which fires it missed. */
void rm_store_check_fire(rm_store *s, const char *item, int64_t fire_ms, const json_t *spec, rm_store_cb cb,
                         void *ud);

/* ---- Signals ------------------------------------------------------------
 * One row per monitoring object (its id is the monitor's): the state
 * machine of core/signal (rm_signal_to_json) and the current state; and
 * the timeline of its transitions (rm_signal_transition_to_json's form).
 * A signal row: {object_id, object_type ("check" | "metric" | "event"),
 * name, tags, state, state_rank (healthy 0, unknown 1, degraded 2,
 * failed 3), machine, transitions (count), changed_at (last transition),
 * observed_at (last observation), acknowledged_by/at, ack_text,
 * updated_at}. */

/* Feeds one observation or a clock tick to an object's machine in one
 * transaction (read it locked, run it, write it and any transition), so
 * concurrent writers, threads or processes, never lose an observation.
 * Group-committed with step writes (many observations share a commit).
 * spec: {"object_id", "name"?, "config": rm_signal_config_parse's form
 *   (its "id" is the object_id, its "type" and "tags" are stored), "now_ms",
 *   and either "obs": {"at_ms", "id"?, "level"? ("healthy" | "degraded" |
 *   "failed", checks and events), "value"? (metrics)} with "interval_ms"?
 *   (the object's expected interval), or "tick": {"interval_ms"} (a tick
 *   of an object never observed changes nothing)}.
 * A transition clears the acknowledgement. result: {"signal": the row
 * (null after a tick of an unknown object), "transitions": [transition
 * JSON, at most one], "due_ms": when a tick could next change it (its
 * silence reaches Unknown, or a held-back verdict's cooldown ends; -1:
 * never)}. RM_EINVAL (config or observation does not fit), RM_ECONFLICT
 * (an observation older than the last one). */
void rm_store_signal_apply(rm_store *s, const json_t *spec, rm_store_cb cb, void *ud);
/* result: the row with "last_transition" (null when none); RM_ENOTFOUND
 * when nothing was observed yet. */
void rm_store_signal_get(rm_store *s, const char *object_id, rm_store_cb cb, void *ud);
/* The health overview. query: {"state": s | [s...], "object_type": s |
 * [s...], "tag", "name" (exact), "visible_to": user id (leaves out
 * signals of other users' private objects), "page", "page_size", "sort":
 * "-state_rank" (default: the worst first) | "name" | "changed_at" |
 * "observed_at" | "object_id"}; signals of deleted objects never appear.
 * result: {"items": [rows], "page", "page_size", "total", "total_pages"}. */
void rm_store_signal_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud);
/* The timeline. query: {"from", "until": ISO times (from inclusive),
 * "to": state or [states] gone to, "page", "page_size", "sort": "-seq"
 * (default, newest first) | "seq" | "at"}. result: {"items":
 * [{object_id, seq, at, from_state, to_state, severity, source_type,
 * correlation_id, body: the transition}], "page", ...}. */
void rm_store_signal_transitions(rm_store *s, const char *object_id, const json_t *query, rm_store_cb cb, void *ud);
/* Adds an operator's note {author, text, at} (at: an ISO time) to
 * transition seq of the signal (body.annotations, oldest first). result:
 * the transition body with its notes. RM_ENOTFOUND when there is no such
 * transition. */
void rm_store_signal_note(rm_store *s, const char *object_id, int64_t seq, const char *author, const char *text,
                          const char *at, rm_store_cb cb, void *ud);
/* Marks a degraded or failed signal acknowledged by actor (text may be
 * NULL) until its next transition. result: the row. RM_ENOTFOUND,
 * RM_ECONFLICT when it is healthy or unknown. */
void rm_store_signal_ack(rm_store *s, const char *object_id, const char *actor, const char *text, rm_store_cb cb,
                         void *ud);

#endif
