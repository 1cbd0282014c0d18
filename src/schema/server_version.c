/*
 * server_version.c - the Neo4j release policy (server_version.h).
 */
#include "schema/server_version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The release lines the test suite runs on: major.minor. */
static const struct {
    long major, minor;
    const char *why;
} tested[] = {
    {5, 26, "the 5.26 LTS line, the baseline every test runs on"},
    {2025, 10, "the calendar line make test's compatibility pass runs on"},
};

/* Leading "MAJOR.MINOR" of s; false unless both are plain decimal numbers. */
static int parse_major_minor(const char *s, long *major, long *minor)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    char *end = NULL;
    errno = 0;
    *major = strtol(s, &end, 10);
    if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
        return 0;
    *minor = strtol(end + 1, &end, 10);
    return errno == 0;
}

schema_support schema_server_support(const char *version, char *detail, size_t n)
{
    long major = 0, minor = 0;
    if (!parse_major_minor(version, &major, &minor)) {
        if (n)
            snprintf(detail, n, "cannot read the Neo4j version '%s'; %d.%d is the minimum",
                     version ? version : "(none)", SCHEMA_NEO4J_MIN_MAJOR, SCHEMA_NEO4J_MIN_MINOR);
        return SCHEMA_SUPPORT_UNKNOWN;
    }
    if (major < SCHEMA_NEO4J_MIN_MAJOR || (major == SCHEMA_NEO4J_MIN_MAJOR && minor < SCHEMA_NEO4J_MIN_MINOR)) {
        if (n)
            snprintf(detail, n,
                     "Neo4j %s is older than %d.%d, the minimum (CREATE VECTOR INDEX first exists there): "
                     "upgrade Neo4j",
                     version, SCHEMA_NEO4J_MIN_MAJOR, SCHEMA_NEO4J_MIN_MINOR);
        return SCHEMA_SUPPORT_TOO_OLD;
    }
    for (size_t i = 0; i < sizeof tested / sizeof tested[0]; i++) {
        if (tested[i].major == major && tested[i].minor == minor) {
            if (n)
                snprintf(detail, n, "Neo4j %s: %s", version, tested[i].why);
            return SCHEMA_SUPPORT_TESTED;
        }
    }
    if (n)
        snprintf(detail, n, "Neo4j %s: supported (%d.%d or later) but not a release line the tests run on "
                            "(5.26, 2025.10)",
                 version, SCHEMA_NEO4J_MIN_MAJOR, SCHEMA_NEO4J_MIN_MINOR);
    return SCHEMA_SUPPORT_UNTESTED;
}
