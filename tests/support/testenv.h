/*
 * testenv.h - what tests need from their environment.
 *
 * Integration tests talk to a real Neo4j that `make test` starts on a fresh
 * temporary directory and a free port; it exports:
 *   ENGRAM_TEST_NEO4J_URI, ENGRAM_TEST_NEO4J_USER, ENGRAM_TEST_NEO4J_PASSWORD
 *   ENGRAM_NEO4J_LOCAL  (path of tools/neo4j-local/neo4j, for tests that run
 *                        a private instance they may kill or restart)
 * Without them such a test is *skipped* (exit 77), never silently passed;
 * with ENGRAM_REQUIRE_NEO4J=1 (set by make test and CI) a skip becomes a
 * failure, so a broken fixture cannot turn the suite green.
 */
#ifndef ENGRAM_TESTS_TESTENV_H
#define ENGRAM_TESTS_TESTENV_H

#include "bolt/conn.h"

#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#define EG_TEST_SKIP 77

/*
 * Fill cfg from the environment (strings are borrowed from getenv).
 * Returns 0, or the exit status the test should end with (77 skip, 1 fail).
 */
int eg_testenv_neo4j(bolt_config *cfg);

/*
 * The local encoder's models directory (embed_local_model_dir()) when both
 * models are installed there: returns 0 and sets *dir (static buffer).
 * Otherwise prints how to install them and returns the exit status to end
 * with: 77 (skip) when ENGRAM_ALLOW_MISSING_MODELS=1, else 1, because
 * `make test` installs them and a missing model must not look green.
 */
int eg_testenv_models(const char **dir);

/* Path of a file under the source tree (static buffer; not thread-safe). */
const char *eg_testenv_source_path(const char *rel);

/* Directory for scratch files of this test (created; static buffer). */
const char *eg_testenv_tmpdir(const char *name);

/*
 * Remove a scratch directory and everything below it (nftw, no shell).
 * Tests call it when they passed: a failed run keeps its logs and data for
 * a look, a passed one must not leave a private Neo4j's 500 MB behind.
 */
int eg_testenv_rmtree(const char *path);

/* Poll cond(arg) every 10 ms until it holds or ms pass; its last answer. */
bool eg_testenv_wait(bool (*cond)(void *), void *arg, int64_t ms);

/*
 * Soft assertion for the stress-style tests that report every failed check
 * and keep going (cmocka stops at the first): counts into `counter` (an int
 * lvalue) and prints file:line, the condition and a printf-style reason.
 */
#define EG_TEST_CHECK(counter, cond, ...)                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            (counter)++;                                                                           \
        }                                                                                          \
    } while (0)

#endif
