/* Building the step and attempt parts of a run record, and the retry
 * policy that decides whether another attempt follows. */
#ifndef RM_ENGINE_ATTEMPT_H
#define RM_ENGINE_ATTEMPT_H

#include <jansson.h>
#include <stdbool.h>

#include "lua/host.h"
#include "secret/secret.h"

/* Outcome of an attempt or step; stored as strings, numbers pinned. */
enum rm_outcome {
  RM_OUTCOME_SUCCEEDED = 0,
  RM_OUTCOME_DEGRADED = 1,
  RM_OUTCOME_FAILED = 2,
  RM_OUTCOME_CANCELLED = 3,
};

const char *rm_outcome_name(int outcome);

typedef struct rm_attempt_info {
  int outcome;
  const json_t *categories; /* borrowed from the attempt record */
  const char *error_code;   /* borrowed, or NULL */
  bool response_received;   /* some exchange got an HTTP response */
} rm_attempt_info;

/* The attempt record of a finished task attempt (new reference), scrubbed
 * of secrets; takes the task's exchanges and logs. */
json_t *rm_attempt_build(rm_lua_task *t, int attempt, const char *started_at, double duration_ms,
                         const rm_secrets *secrets, rm_attempt_info *info);

/* An attempt that could not start (template error, ...), new reference. */
json_t *rm_attempt_error(int attempt, const char *code, const char *message, const rm_secrets *secrets);

/* Step records (new references). */
json_t *rm_attempt_new_step(const char *task, const char *type);
json_t *rm_attempt_skipped_step(const char *task, const char *type, const char *why);
/* Completes a step: status, reason (its last attempt's), duration, the
 * edge taken and the tasks it leads to (next is stolen). */
void rm_attempt_close_step(json_t *step, int outcome, const char *edge, json_t *next, double duration_ms);

/* Applies the task's retry policy to a failed or degraded attempt. Returns
 * the delay in ms before the next attempt, or -1 for no retry; writes
 * "retry": {delay_ms, reason} or "not_retried": reason into the attempt. */
int rm_attempt_retry_delay(const json_t *task, const json_t *defaults, int attempt_no,
                           const rm_attempt_info *info, json_t *attempt);

/* Completes the run record: status, reason, summary, finished_at,
 * duration. Returns the status name (static). */
const char *rm_attempt_finish_record(json_t *record, bool cancelled, double duration_ms);

#endif
