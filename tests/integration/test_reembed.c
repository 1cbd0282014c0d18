/*
 * test_reembed.c - `engram reembed --missing|--all` on the real Neo4j: it
 * enqueues exactly the entities without a current vector (or all), honest
 * about jobs that already exist, and gives memento-era entities a hash;
 * and a mutation racing the scan is never left without a job for its
 * content (a barrier holds the scan between its read and its enqueue).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

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

/*
 * The race: the scan has read a page and not yet enqueued its jobs when a
 * mutation changes one of its entities.  Before the fix the mutation
 * committed in that gap, the scan's job (for the old content) superseded the
 * mutation's job, and was then skipped as stale: the entity kept a vector of
 * its old text for good.  Now the scan holds the entity's lock, so the
 * mutation waits for the page to commit, and its own job is the newest.
 */
typedef struct race {
    graph_store *g;
    graph_reembed_opts ro;
    graph_reembed_cursor cur;
    sem_t read_done, go;
    int scan_rc, mut_rc;
    int64_t released_at, mutated_at;
    char ns[64];
} race;

static void race_hook(void *ctx)
{
    race *r = ctx;
    sem_post(&r->read_done);
    sem_wait(&r->go);
}

static void *scan_thread(void *arg)
{
    race *r = arg;
    eg_error err = {0};
    r->scan_rc = graph_reembed_page(r->g, &r->ro, &r->cur, &err);
    if (r->scan_rc)
        fprintf(stderr, "scan: %s\n", err.message);
    return NULL;
}

static void *mutate_thread(void *arg)
{
    race *r = arg;
    eg_error err = {0};
    graph_req req = {.ns = r->ns};
    json_t *obs = json_pack("[{s:s,s:[s]}]", "entityName", "racer", "contents", "moved to Lisbon in May");
    json_t *out = NULL;
    r->mut_rc = graph_add_observations(r->g, &req, obs, &out, &err);
    r->mutated_at = eg_mono_ms();
    if (r->mut_rc)
        fprintf(stderr, "mutation: %s\n", err.message);
    json_decref(out);
    json_decref(obs);
    return NULL;
}

static void test_reembed__mutation_racing_the_scan_keeps_its_job(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "reembedrace", MODEL, NULL, 6);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    go.ns = f.ns;
    go.embedding_model = MODEL;
    race r;
    memset(&r, 0, sizeof r);
    snprintf(r.ns, sizeof r.ns, "%s", f.ns);
    eg_error err = {0};
    assert_int_equal(graph_store_new(&r.g, f.pool, f.store, &go, &err), 0);
    json_t *ents = json_pack("[{s:s,s:s,s:[s]}]", "name", "racer", "entityType", "person", "observations",
                             "lives in Porto");
    json_t *out = NULL;
    assert_int_equal(graph_create_entities(r.g, NULL, ents, &out, &err), 0);
    json_decref(out);
    json_decref(ents);
    drain(&f);

    /* --all, so the scan takes the entity although its vector is current */
    r.ro = (graph_reembed_opts){.ns = f.ns, .model = MODEL, .dims = f.index_dims, .all = true,
                                .tag = "race", .after_read = race_hook, .hook_ctx = &r};
    sem_init(&r.read_done, 0, 0);
    sem_init(&r.go, 0, 0);
    pthread_t ts, tm;
    assert_int_equal(pthread_create(&ts, NULL, scan_thread, &r), 0);
    sem_wait(&r.read_done);
    assert_int_equal(pthread_create(&tm, NULL, mutate_thread, &r), 0);
    /* Long enough for the mutation to commit if nothing holds it back. */
    eg_sleep_ms(1500);
    r.released_at = eg_mono_ms();
    sem_post(&r.go);
    pthread_join(ts, NULL);
    pthread_join(tm, NULL);
    assert_int_equal(r.scan_rc, 0);
    assert_int_equal(r.mut_rc, 0);
    assert_int_equal(r.cur.seen, 1);
    printf("race: mutation committed %lld ms after the scan was released\n",
           (long long)(r.mutated_at - r.released_at));
    /* the mutation waited for the scan's lock */
    assert_true(r.mutated_at >= r.released_at);

    drain(&f);
    efx_report rep;
    assert_int_equal(efx_check(&f, &rep), 0);
    assert_int_equal(rep.entities, 1);
    /* the vector is of the new content, not the one the scan read */
    assert_int_equal(rep.with_current_vector, 1);
    assert_int_equal(rep.stale_vector, 0);
    graph_store_free(r.g);
    sem_destroy(&r.read_done);
    sem_destroy(&r.go);
    efx_close(&f);
}

static int drop_obs_vector_fn(bolt_conn *c, void *payload, eg_error *err)
{
    efx *f = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", f->ns);
    int rc = bolt_conn_exec(c,
                            "MATCH (o:Observation {namespace: $ns}) WHERE o.text = 'keeps bees' "
                            "REMOVE o.embedding, o.embeddingHash",
                            p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

/*
 * Observation records have vectors of their own, so reembed scans them
 * after the entities: --all gives every live record a job (a model switch
 * re-embeds them too), --missing only the record without a vector, and the
 * workers embed what was queued.
 */
static void test_reembed__observation_records(void **state)
{
    (void)state;
    if (!getenv("ENGRAM_BIN")) {
        skip_rc = 77;
        skip();
    }
    efx f;
    int rc = efx_open(&f, "reembedobs", MODEL, NULL, 6);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    go.ns = f.ns;
    go.embedding_model = MODEL;
    go.vector_dimensions = (size_t)f.index_dims;
    graph_store *g = NULL;
    eg_error err = {0};
    assert_int_equal(graph_store_new(&g, f.pool, f.store, &go, &err), 0);
    json_t *ents = json_pack("[{s:s,s:s,s:[ss]}]", "name", "keeper", "entityType", "person", "observations",
                             "keeps bees", "sells honey at the market");
    json_t *out = NULL;
    assert_int_equal(graph_create_entities(g, NULL, ents, &out, &err), 0);
    json_decref(out);
    json_decref(ents);
    drain(&f);
    efx_report r;
    assert_int_equal(efx_obs_check(&f, &r), 0);
    assert_int_equal(r.with_current_vector, 2);
    /* --all: the entity and both live records get new jobs */
    json_t *j = reembed(&f, "--all");
    assert_int_equal(jint(j, "scanned"), 3);
    assert_int_equal(jint(j, "scannedObservations"), 2);
    assert_int_equal(jint(j, "created"), 3);
    json_decref(j);
    drain(&f);
    /* one record loses its vector: --missing finds it and only it */
    assert_int_equal(bolt_pool_execute_write(f.pool, NULL, NULL, drop_obs_vector_fn, &f, &err), 0);
    assert_int_equal(efx_obs_check(&f, &r), 0);
    assert_int_equal(r.with_current_vector, 1);
    j = reembed(&f, "--missing");
    assert_int_equal(jint(j, "scanned"), 1);
    assert_int_equal(jint(j, "scannedObservations"), 1);
    assert_int_equal(jint(j, "created"), 1);
    json_decref(j);
    drain(&f);
    assert_int_equal(efx_obs_check(&f, &r), 0);
    assert_int_equal(r.entities, 2);
    assert_int_equal(r.with_current_vector, 2);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    assert_int_equal(c[QUEUE_DEAD] + c[QUEUE_PENDING] + c[QUEUE_LEASED], 0);
    graph_store_free(g);
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
        cmocka_unit_test(test_reembed__mutation_racing_the_scan_keeps_its_job),
        cmocka_unit_test(test_reembed__observation_records),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
