/* The subcommands of the restmon binary; each returns the exit status. */
#ifndef RM_CLI_CMDS_H
#define RM_CLI_CMDS_H

int rm_cmd_run(int argc, char **argv);
int rm_cmd_validate(int argc, char **argv);
int rm_cmd_migrate(int argc, char **argv);
int rm_cmd_executor(int argc, char **argv);
int rm_cmd_runs(int argc, char **argv);
int rm_cmd_serve(int argc, char **argv);
int rm_cmd_check_config(int argc, char **argv);
int rm_cmd_rotate_key(int argc, char **argv);

#endif
