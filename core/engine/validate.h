/* Validation of workflow definitions (docs/workflow-format.md) before
 * anything runs. Collects every problem, not only the first. */
#ifndef RM_ENGINE_VALIDATE_H
#define RM_ENGINE_VALIDATE_H

#include <jansson.h>

/* Gives the manifest (plugins/NAME/manifest.json, borrowed) of a task
 * type, or NULL when no plugin of that name is installed. */
typedef const json_t *(*rm_plugin_lookup_fn)(void *ud, const char *type);

typedef struct rm_validate_opts {
  rm_plugin_lookup_fn plugin;
  void *plugin_ud;
  /* Inputs given on the command line (object, borrowed, may be NULL):
   * required inputs without a default must be among them. */
  const json_t *given_inputs;
  /* Secret names available (array of strings, borrowed) or NULL to skip
   * the check (validate without a secrets source). */
  const json_t *secret_names;
} rm_validate_opts;

/* Validates wf (borrowed). Returns a new JSON array (caller decrefs) of
 * problems, empty when the definition is valid. Each problem is
 *   {"path": "tasks.create_order.on_success[0]",
 *    "message": "edge to unknown task 'read_ordr'"}
 * Checked: unknown fields anywhere (with the allowed ones named), types,
 * required fields, unknown task types, task request fields against the
 * plugin manifest, JSONPath / XPath / regex syntax, assertion operators,
 * status code patterns, retry and timeout ranges, edges to missing tasks,
 * cycles (the message names the cycle "a -> b -> a"), no start task, and
 * template references: inputs not declared, variables that no task
 * upstream of the referencing task extracts, unknown helpers, secrets not
 * available. NULL only when out of memory. */
json_t *rm_workflow_validate(const json_t *wf, const rm_validate_opts *o);

#endif
