/*
 * test_reembed.c - `engram reembed --missing|--all` on the real Neo4j: it
 * enqueues exactly the entities without a current vector (or all), honest
 * about jobs that already exist, and gives memento-era entities a hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "graph/graph.h"
#include "support/embed_fixture.h"
#include "support/testenv.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

#define MODEL "engram-offline-ngram-v1"

static int skip_rc;

/* Run `engram reembed ARGS --json` with the fixture's queue/namespace; parse the JSON line. */
static json_t *reembed(const efx *f, const char *args)
{
    char cmd[2048];
    /* the password goes in the environment, never on the (ps-visible) command line */
    setenv("NEO4J_PASSWORD", getenv("ENGRAM_TEST_NEO4J_PASSWORD") ? getenv("ENGRAM_TEST_NEO4J_PASSWORD") : "", 1);
    snprintf(cmd, sizeof cmd,
             "NEO4J_URI='%s' NEO4J_USERNAME='%s' ENGRAM_EMBED_PROVIDER=offline "
             "ENGRAM_EMBED_DIMENSIONS=%d '%s' reembed %s --namespace '%s' --queue '%s' --json",
             getenv("ENGRAM_TEST_NEO4J_URI"), getenv("ENGRAM_TEST_NEO4J_USER") ? getenv("ENGRAM_TEST_NEO4J_USER") : "neo4j",
             f->index_dims, getenv("ENGRAM_BIN"), args, f->ns, f->queue);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[4096] = "";
    char buf[4096];
    while (fgets(buf, sizeof buf, p))
        if (buf[0] == '{')
            snprintf(line, sizeof line, "%s", buf);
    int st = pclose(p);
    assert_int_equal(st, 0);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    printf("reembed %s: %s", args, line);
    return j;
}

static json_int_t jint(json_t *j, const char *k) { return json_integer_value(json_object_get(j, k)); }

static void drain(efx *f)
{
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    worker_sink *sink = NULL;
    assert_int_equal(worker_neo4j_sink_new(&sink, f->pool, go.database, go.vector_index, NULL), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = MODEL, .dimensions = f->index_dims};
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, ec.kind, NULL), 0);
    wo.concurrency = 2;
    wo.poll_ms = 50;
    worker_manager *m = NULL;
    eg_error err = {0};
    if (worker_manager_new(&m, &wo, &ec, f->store, sink, &err) || worker_manager_start(m, &err))
        fail_msg("manager: %s", err.message);
    assert_int_equal(worker_manager_drain(m, 60000), 0);
    worker_manager_stop(m, 1000);
    worker_manager_free(m);
    worker_sink_free(sink);
}

static int memento_fn(bolt_conn *c, void *payload, eg_error *err)
{
    efx *f = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", f->ns);
    bolt_params_str(p, "id", "memento-era-1");
    /* as memento stored it: observations as JSON text, no contentHash */
    int rc = bolt_conn_exec(c,
                            "CREATE (:Entity {namespace: $ns, id: $id, name: 'old-timer', entityType: 'person', "
                            "observations: '[\"joined in 2019\",\"likes tea\"]', version: 1})",
                            p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

static void test_reembed__missing_then_all(void **state)
{
    (void)state;
    if (!getenv("ENGRAM_BIN")) {
        skip_rc = 77;
        skip();
    }
    efx f;
    int rc = efx_open(&f, "reembed", MODEL, NULL, 6);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    assert_int_equal(efx_create_range(&f, 0, 20, NULL, 0), 0);
    /* jobs exist already (the outbox): --missing finds them, creates none */
    json_t *j = reembed(&f, "--missing");
    assert_int_equal(jint(j, "scanned"), 20);
    assert_int_equal(jint(j, "created"), 0);
    assert_int_equal(jint(j, "existing"), 20);
    json_decref(j);
    drain(&f);
    efx_report r;
    assert_int_equal(efx_check(&f, &r), 0);
    assert_int_equal(r.with_current_vector, 20);
    j = reembed(&f, "--missing");
    assert_int_equal(jint(j, "scanned"), 0);
    json_decref(j);
    /* a memento-era entity: no vector, no hash */
    eg_error err = {0};
    assert_int_equal(bolt_pool_execute_write(f.pool, NULL, NULL, memento_fn, &f, &err), 0);
    j = reembed(&f, "--missing");
    assert_int_equal(jint(j, "scanned"), 1);
    assert_int_equal(jint(j, "created"), 1);
    json_decref(j);
    /* --all forces new jobs even for current vectors */
    j = reembed(&f, "--all");
    assert_int_equal(jint(j, "scanned"), 21);
    assert_int_equal(jint(j, "created"), 21);
    json_decref(j);
    drain(&f);
    assert_int_equal(efx_check(&f, &r), 0);
    assert_int_equal(r.entities, 21);
    assert_int_equal(r.with_current_vector, 21);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    printf("reembed: completed=%lld superseded=%lld dead=%lld\n", (long long)c[QUEUE_COMPLETED],
           (long long)c[QUEUE_SUPERSEDED], (long long)c[QUEUE_DEAD]);
    assert_int_equal(c[QUEUE_DEAD], 0);
    assert_int_equal(c[QUEUE_PENDING] + c[QUEUE_LEASED], 0);
    efx_close(&f);
}

int main(void)
{
    eg_log_set_level(EG_LOG_WARNING);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reembed__missing_then_all),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
