/*
 * server_version.h - which Neo4j releases engram supports, and which ones
 * its test suite runs on.
 *
 * `engram doctor` reports the server's release against this policy, so that
 * an operator learns from a check, not from the first migration failing
 * with a syntax error, that a server is too old.  The policy:
 *   - minimum 5.15: CREATE VECTOR INDEX first exists there (the queue alone
 *     would run on any 5.x);
 *   - tested: the 5.26 LTS line (every test) and the 2025.10 calendar line
 *     (make test's compatibility pass, docs/neo4j-local.md);
 *   - anything else at or above the minimum is supported but untested.
 */
#ifndef ENGRAM_SCHEMA_SERVER_VERSION_H
#define ENGRAM_SCHEMA_SERVER_VERSION_H

#include <stddef.h>

#define SCHEMA_NEO4J_MIN_MAJOR 5
#define SCHEMA_NEO4J_MIN_MINOR 15

typedef enum schema_support {
    SCHEMA_SUPPORT_TESTED,    /* a release line the test suite runs on */
    SCHEMA_SUPPORT_UNTESTED,  /* at or above the minimum, not tested here */
    SCHEMA_SUPPORT_TOO_OLD,   /* below the minimum: the graph schema cannot be created */
    SCHEMA_SUPPORT_UNKNOWN    /* the version string is not "MAJOR.MINOR[...]" */
} schema_support;

/*
 * Classify the Neo4j release `version` as dbms.components() reports it
 * ("5.26.5", "2025.10.1", "5.27-aura"; NULL is unknown) and write a
 * one-line explanation for an operator into detail (n bytes, always
 * terminated when n > 0).  Pure; thread-safe.
 */
schema_support schema_server_support(const char *version, char *detail, size_t n);

#endif
