/* restmon: the command-line entry point. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "auth/rbac.h"
#include "cli/cmds.h"
#include "cli/common.h"

#define RESTMON_VERSION "0.1.0"

static void usage(FILE *f) {
  fputs("usage: restmon COMMAND [options]\n"
        "commands:\n"
        "  run FILE        run a workflow and print its timeline (see: restmon run --help)\n"
        "  validate FILE   check a workflow definition without running it\n"
        "  serve           the REST API server with its executor (see: restmon serve --help)\n"
        "  check-config    validate the settings and print each with its source\n"
        "  executor        execute queued runs from the store; resume interrupted ones\n"
        "  runs COMMAND    list, show, cancel, annotate, ack, rerun, resume stored runs\n"
        "  migrate         apply the store's schema migrations\n"
        "  rotate-key      new vault master key; re-encrypt the stored secrets\n"
        "  permissions     print the role permission table (docs/permissions.md)\n"
        "  version         print the version\n",
        f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return RM_EXIT_INVALID;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("restmon %s (%s)\n", RESTMON_VERSION, curl_version());
    return RM_EXIT_OK;
  }
  if (strcmp(cmd, "permissions") == 0) return rm_rbac_markdown(stdout) == 0 ? RM_EXIT_OK : RM_EXIT_FAILED;
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return RM_EXIT_OK;
  }
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {{"run", rm_cmd_run},
                 {"validate", rm_cmd_validate},
                 {"executor", rm_cmd_executor},
                 {"runs", rm_cmd_runs},
                 {"migrate", rm_cmd_migrate},
                 {"serve", rm_cmd_serve},
                 {"check-config", rm_cmd_check_config},
                 {"rotate-key", rm_cmd_rotate_key}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmd, cmds[i].name) == 0) {
      curl_global_init(CURL_GLOBAL_DEFAULT);
      int rc = cmds[i].fn(argc - 1, argv + 1);
      curl_global_cleanup();
      return rc;
    }
  fprintf(stderr, "restmon: unknown command '%s'\n", cmd);
  usage(stderr);
  return RM_EXIT_INVALID;
}
