/*
 * cmd_doctor.c - `engram doctor`: prove the Neo4j connection works.
 */
#include "cli/commands.h"
#include "core/err.h"

#include <stdio.h>

int cli_cmd_doctor(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "engram doctor: not available yet\n");
    return 1;
}
