/* What the workflow commands (run, validate) share: loading a definition,
 * inputs from --var, secrets from files and the environment, and
 * printing validation problems. */
#ifndef RM_CLI_COMMON_H
#define RM_CLI_COMMON_H

#include <jansson.h>
#include <stdio.h>

#include "config/config.h"
#include "secret/secret.h"

/* Exit codes of the workflow commands. */
enum { RM_EXIT_OK = 0, RM_EXIT_FAILED = 1, RM_EXIT_INVALID = 2 };

/* Loads the settings (config_path, or the default restmon.conf) into
 * *cfg (caller frees) and returns the store URL: given when set, else the
 * `database` setting. NULL with the reason on stderr. */
const char *rm_cli_database_url(const char *given, const char *config_path, rm_config **cfg);

/* Loads a workflow file; NULL with "FILE:LINE:COL: why" printed to stderr. */
json_t *rm_cli_load_json(const char *path);

/* Adds "name=value" to inputs (value parsed as JSON when it is JSON, else
 * taken as a string). 0, or -1 with a message on stderr. */
int rm_cli_add_var(json_t *inputs, const char *arg);

/* Adds a secret from the environment: "name=ENV_VAR". 0 or -1 (message). */
int rm_cli_add_secret_env(rm_secrets *s, const char *arg);

/* Prints each validation problem as "FILE: path: message"; returns count. */
size_t rm_cli_print_problems(FILE *f, const char *file, const json_t *problems);

/* Validates wf with the plugins found (built-in + plugin_dir); prints the
 * problems. Returns 0 when valid, -1 otherwise. */
int rm_cli_validate(const char *file, const json_t *wf, const char *plugin_dir, const json_t *inputs,
                    const rm_secrets *secrets, int json_output);

#endif
