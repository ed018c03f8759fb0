/* rm_run: one execution of a workflow: walks the task graph on the event
 * loop, runs each task's attempts in the Lua host, applies retry policy,
 * and builds the run record (docs/run-record.md) as it goes. */
#ifndef RM_ENGINE_RUN_H
#define RM_ENGINE_RUN_H

#include <jansson.h>
#include <stdbool.h>

#include "lua/host.h"
#include "secret/secret.h"

typedef struct rm_run rm_run;

typedef struct rm_run_opts {
  const json_t *workflow;    /* validated definition, borrowed for the run's life */
  const char *source;        /* file name or other origin, for the record */
  const json_t *inputs;      /* given inputs (object, borrowed; defaults are added) */
  const rm_secrets *secrets; /* borrowed; may be NULL */
  bool dry_run;
  const char *trigger;       /* "cli", "schedule", ... */
  const char *run_id;        /* NULL: a new UUID */
  /* Durability. With persist set, every time a step changes (an attempt
   * ended) the run calls persist(r, step, vars, ud, token) with the step
   * record and the variables so far (both scrubbed, borrowed for the
   * call) and waits: it goes on only once rm_run_persisted(r, token, err)
   * is called, so a step is stored before the next one starts. */
  void (*persist)(rm_run *r, const json_t *step, const json_t *vars, void *ud, void *token);
  void *persist_ud;
  /* Resuming: the step records stored so far (array, borrowed) and the
   * variables at that point (object). Steps that finished are not run
   * again: the walk takes their stored outcome and edges; a step that was
   * between attempts continues with its next attempt. */
  const json_t *resume_steps;
  const json_t *resume_vars;
} rm_run_opts;

/* Called once when the run has finished and every handle it used is
 * closed; the record is complete. The run may be freed in the callback. */
typedef void (*rm_run_cb)(rm_run *run, void *ud);

/* Starts a run. *out receives the run (caller frees with rm_run_free
 * after the callback). 0 or a negative RM_E*. */
int rm_run_start(rm_lua_host *host, const rm_run_opts *o, rm_run_cb cb, void *ud, rm_run **out);

/* Stops the run: running attempts are cancelled, no task starts. */
void rm_run_cancel(rm_run *r);

/* The answer to a persist call. err != 0 (the store failed, or another
 * executor holds the run now) abandons the run: it stops at once without
 * starting anything and finishes as cancelled, with rm_run_abandoned true;
 * whoever holds the run resumes it from what was stored. */
void rm_run_persisted(rm_run *r, void *token, int err);
bool rm_run_abandoned(const rm_run *r);
/* Stops the run without a record of its own (its lease is gone): it
 * finishes as abandoned, to be resumed from what was stored. */
void rm_run_abandon(rm_run *r);
const char *rm_run_id(const rm_run *r);

/* The run record (borrowed; valid until rm_run_free). */
json_t *rm_run_record(rm_run *r);
/* "succeeded", "degraded", "failed" or "cancelled" once finished. */
const char *rm_run_status(rm_run *r);
double rm_run_duration_ms(rm_run *r);

void rm_run_free(rm_run *r);

/* Helpers shared with the CLI. */
void rm_run_iso_time(char *out, size_t n); /* now, ISO 8601 UTC with ms */
void rm_run_new_uuid(char out[37]);

#endif
