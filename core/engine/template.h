/* Templates in workflow definitions: "{{ expr }}" placeholders in strings.
 *
 * Expressions:
 *   inputs.NAME[.KEY|[N]]...   a workflow input (declared or given)
 *   vars.NAME[.KEY|[N]]...     a variable extracted by an earlier task
 *   secrets.NAME               a secret: renders as an opaque token that
 *                              only the C core turns into the value when it
 *                              builds the request (core/secret)
 *   uuid                       a new random UUID v4
 *   now | now_unix | now_unix_ms   current time (ISO 8601 UTC with ms,
 *                              seconds, milliseconds)
 *   idempotency_key            stable for one task of one run, the same on
 *                              every retry attempt (UUID derived from the
 *                              run id and the task name)
 *   run_id | task | attempt    the run id, task name, attempt number
 * A string that is exactly one placeholder takes the value's JSON type
 * ("{{inputs.qty}}" -> 3); elsewhere values are converted to text
 * (objects and arrays as compact JSON). "\{{" writes a literal "{{".
 */
#ifndef RM_ENGINE_TEMPLATE_H
#define RM_ENGINE_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

typedef struct rm_template_ctx {
  const json_t *inputs; /* object, borrowed */
  const json_t *vars;   /* object, borrowed */
  /* Returns the opaque token standing for secret `name` (caller frees), or
   * NULL when no such secret was provided. */
  char *(*secret_token)(void *ud, const char *name);
  void *ud;
  const char *run_id;
  const char *task;
  int attempt;
} rm_template_ctx;

/* Renders every string in v (borrowed), recursively, into a new value
 * (caller decrefs). On error returns NULL and writes into err a message
 * naming the location under `path` and the expression, e.g.
 * "tasks.login.request.url: {{vars.tokn}}: no variable 'tokn'". */
json_t *rm_template_render(const json_t *v, const char *path, const rm_template_ctx *c,
                           char *err, size_t errlen);

/* Calls cb(ud, location, expr) for every placeholder in the strings of v,
 * where location is the JSON path of the string under `path`
 * ("tasks.login.request.headers.Authorization") and expr the trimmed
 * expression ("vars.token"). A malformed placeholder ("{{ vars.", an
 * unknown helper) is reported with expr NULL and a message in `problem`.
 * Stops and returns cb's value when it is non-zero; 0 otherwise. */
typedef int (*rm_template_ref_cb)(void *ud, const char *location, const char *expr,
                                  const char *problem);
int rm_template_scan(const json_t *v, const char *path, rm_template_ref_cb cb, void *ud);

#endif
