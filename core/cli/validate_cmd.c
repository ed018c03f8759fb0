/* restmon validate FILE: checks a workflow definition without running it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"

int rm_cmd_validate(int argc, char **argv) {
  enum { O_VAR = 256, O_SECRETS, O_SECRET_ENV, O_PLUGINS, O_JSON };
  static const struct option opts[] = {{"var", required_argument, NULL, O_VAR},
                                       {"secrets-file", required_argument, NULL, O_SECRETS},
                                       {"secret-env", required_argument, NULL, O_SECRET_ENV},
                                       {"plugins", required_argument, NULL, O_PLUGINS},
                                       {"json", no_argument, NULL, O_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  json_t *inputs = json_object();
  rm_secrets *secrets = NULL;
  const char *plugin_dir = getenv("RESTMON_PLUGINS");
  int json = 0, rc = RM_EXIT_INVALID, ch;
  char err[512];
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case O_VAR:
        if (rm_cli_add_var(inputs, optarg)) goto out;
        break;
      case O_SECRETS:
        if (!secrets) secrets = rm_secrets_new();
        if (rm_secrets_load_file(secrets, optarg, err, sizeof err)) {
          fprintf(stderr, "--secrets-file: %s\n", err);
          goto out;
        }
        break;
      case O_SECRET_ENV:
        if (!secrets) secrets = rm_secrets_new();
        if (rm_cli_add_secret_env(secrets, optarg)) goto out;
        break;
      case O_PLUGINS: plugin_dir = optarg; break;
      case O_JSON: json = 1; break;
      case 'h':
        printf("usage: restmon validate FILE [--var NAME=VALUE] [--secrets-file FILE] [--secret-env NAME=ENV] "
               "[--plugins DIR] [--json]\n"
               "Checks a workflow without running it. Secrets are checked only when a source is given.\n");
        rc = RM_EXIT_OK;
        goto out;
      default: goto out;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "usage: restmon validate FILE [options]\n");
    goto out;
  }
  const char *file = argv[optind];
  json_t *wf = rm_cli_load_json(file);
  if (!wf) goto out;
  /* Inputs are checked only when some are given: a definition may be
   * valid and still need inputs at run time. */
  if (rm_cli_validate(file, wf, plugin_dir, json_object_size(inputs) ? inputs : NULL, secrets, json) == 0) {
    json_t *tasks = json_object_get(wf, "tasks");
    size_t edges = 0;
    const char *k;
    json_t *t;
    json_object_foreach(tasks, k, t) edges += json_array_size(json_object_get(t, "on_success")) +
                                              json_array_size(json_object_get(t, "on_failure"));
    if (json)
      printf("{\"valid\": true, \"file\": \"%s\", \"tasks\": %zu, \"edges\": %zu}\n", file, json_object_size(tasks), edges);
    else
      printf("%s: valid (%zu tasks, %zu edges)\n", file, json_object_size(tasks), edges);
    rc = RM_EXIT_OK;
  }
  json_decref(wf);
out:
  json_decref(inputs);
  rm_secrets_free(secrets);
  return rc;
}
