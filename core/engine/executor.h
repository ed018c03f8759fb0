/* rm_executor: executes stored runs durably. It claims runs from the store
 * with a lease it renews, runs them with the engine (each step stored
 * before the next starts), and finishes them in the store. A run whose
 * lease another executor took, or whose step could not be stored, is
 * abandoned here and resumed by whoever holds it next, from its last
 * stored step. */
#ifndef RM_ENGINE_EXECUTOR_H
#define RM_ENGINE_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "engine/run.h"
#include "lua/host.h"
#include "secret/secret.h"
#include "store/store.h"

typedef struct rm_executor rm_executor;

typedef struct rm_executor_opts {
  int concurrency;           /* runs at once; 0 = 16 */
  uint64_t lease_ms;         /* 0 = 15000; renewed every lease_ms / 3 */
  uint64_t poll_ms;          /* how often to look for work when idle; 0 = 500 */
  bool claim;                /* look for queued and orphaned runs */
  const rm_secrets *secrets; /* for every run; may be NULL */
  /* Called after a run has finished and its record is stored (or it was
   * abandoned, see rm_run_abandoned). The run is freed after the call. */
  void (*finished)(rm_run *r, const json_t *row, void *ud);
  /* Retention: every retention_every_ms (0 = never; the first pass at
   * once) finished runs older than these are deleted in bounded batches
   * (0 keeps them). */
  uint64_t retention_every_ms, retention_success_ms, retention_failed_ms;
  /* With claim: called when nothing is running and a claim found nothing. */
  void (*idle)(void *ud);
  void *ud;
} rm_executor_opts;

int rm_executor_new(rm_executor **out, uv_loop_t *loop, rm_store *store, rm_lua_host *host,
                    const rm_executor_opts *opts);

/* The lease owner name: host, process id and a random part. */
const char *rm_executor_owner(const rm_executor *ex);
size_t rm_executor_running(const rm_executor *ex);

/* Creates a run from spec (see rm_store_run_create), leased to this
 * executor, and executes it. done(ud, err, errmsg) reports a failure to
 * create it; on success the run goes to opts.finished. */
void rm_executor_submit(rm_executor *ex, const json_t *spec,
                        void (*failed)(void *ud, int err, const char *errmsg), void *ud);

/* For callers that create a run in a store call of their own
 * (rm_store_check_fire): when a slot is free, sets the lease members of
 * spec ("status": "running", "lease_owner", "lease_ms") so the run is
 * created already claimed by this executor, holds the slot and returns
 * true; then exactly one rm_executor_adopt must follow. false (spec left
 * as it was) when every slot is taken or the executor is stopping:
 * create the run queued; it is claimed when a slot frees. */
bool rm_executor_reserve(rm_executor *ex, json_t *spec);
/* Executes row (stolen): the run created from a reserved spec, with its
 * "definition"; NULL when it was not created, which only frees the slot.
 * While stopping, the row is left running and leased (resumed once the
 * lease expires). */
void rm_executor_adopt(rm_executor *ex, json_t *row);

/* Changes the retention periods (see rm_executor_opts; 0 keeps) and, when
 * retention runs at all (retention_every_ms), starts a pass at once. */
void rm_executor_set_retention(rm_executor *ex, uint64_t success_ms, uint64_t failed_ms);

/* Cancels every run in flight (recorded as cancelled). */
void rm_executor_cancel_all(rm_executor *ex);

/* Stops claiming; runs in flight are abandoned with their leases released
 * so another executor (or the next start) resumes them. done(ud) once
 * every handle is closed; then rm_executor_free. */
void rm_executor_stop(rm_executor *ex, void (*done)(void *ud), void *ud);
void rm_executor_free(rm_executor *ex);

#endif
