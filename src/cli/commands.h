/*
 * commands.h - the engram subcommands.  Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns a process exit status.
 */
#ifndef ENGRAM_CLI_COMMANDS_H
#define ENGRAM_CLI_COMMANDS_H

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

/* NULL-terminated table, defined in main.c. */
extern const cli_command cli_commands[];

int cli_cmd_doctor(int argc, char **argv);
int cli_cmd_schema(int argc, char **argv);
int cli_cmd_queue(int argc, char **argv);
int cli_cmd_worker(int argc, char **argv);
int cli_cmd_reembed(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);
int cli_cmd_import(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);
int cli_cmd_setup(int argc, char **argv);
int cli_cmd_console(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);

#endif
