/*
 * test_worker_neo4j.c - entities -> jobs -> workers -> vectors stored and
 * found by the vector index, on the real Neo4j.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "embed/provider_impl.h"
#include "graph/graph.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/testenv.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

static int skip_rc;

static worker_manager *start_manager(efx *f, worker_sink **sink, const embed_config *ec, int workers, int batch)
{
    eg_error err = {0};
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, &err), 0);
    assert_int_equal(worker_neo4j_sink_new(sink, f->pool, go.database, go.vector_index, &err), 0);
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, ec->kind, &err), 0);
    wo.concurrency = workers;
    wo.batch = batch;
    wo.poll_ms = 50;
    worker_manager *m = NULL;
    if (worker_manager_new(&m, &wo, ec, f->store, *sink, &err) || worker_manager_start(m, &err))
        fail_msg("manager: %s", err.message);
    return m;
}

static void test_worker_neo4j__entities_jobs_workers_vectors_search(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "e2e", "engram-offline-ngram-v1", NULL, 8);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    const char *special[] = {"brews espresso coffee with a lever machine"};
    assert_int_equal(efx_create_range(&f, 0, 60, special, 1), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = "engram-offline-ngram-v1",
                       .dimensions = f.index_dims};
    worker_sink *sink = NULL;
    int64_t t0 = eg_mono_ms();
    worker_manager *m = start_manager(&f, &sink, &ec, 2, 25);
    assert_int_equal(worker_manager_drain(m, 60000), 0);
    printf("e2e: 60 entities embedded in %lld ms\n", (long long)(eg_mono_ms() - t0));
    efx_report r;
    assert_int_equal(efx_check(&f, &r), 0);
    assert_int_equal(r.entities, 60);
    assert_int_equal(r.with_current_vector, 60);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    assert_int_equal(c[QUEUE_COMPLETED], 60);
    /* found by the vector index */
    char top[64];
    assert_int_equal(efx_search_top(&f, "espresso coffee machine", top, sizeof top), 0);
    assert_string_equal(top, "ent0");
    assert_int_equal(efx_search_top(&f, "chess in the park", top, sizeof top), 0);
    assert_true(strcmp(top, "ent1") == 0 || strcmp(top, "ent9") == 0 || strncmp(top, "ent", 3) == 0);
    worker_manager_stop(m, 2000);
    worker_manager_free(m);
    worker_sink_free(sink);
    efx_close(&f);
}

static void test_worker_neo4j__change_in_flight_never_gets_stale_vector(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "stale", "text-embedding-3-small", NULL, 8);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 800};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(srv), .api_key = "k",
                       .model = "text-embedding-3-small", .dimensions = f.index_dims, .timeout_ms = 10000};
    assert_int_equal(efx_create_range(&f, 0, 1, NULL, 0), 0);
    worker_sink *sink = NULL;
    worker_manager *m = start_manager(&f, &sink, &ec, 1, 10);
    fake_embed_stats st;
    for (int i = 0; i < 500; i++) {
        fake_embed_stats_get(srv, &st);
        if (st.requests >= 1)
            break;
        eg_sleep_ms(10);
    }
    assert_int_equal(st.requests, 1);
    assert_int_equal(efx_update(&f, 0, "now collects vintage typewriters"), 0);
    assert_int_equal(worker_manager_drain(m, 30000), 0);
    efx_report r;
    assert_int_equal(efx_check(&f, &r), 0);
    assert_int_equal(r.with_current_vector, 1);
    assert_int_equal(r.stale_vector, 0);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    assert_int_equal(c[QUEUE_SUPERSEDED], 1);
    assert_int_equal(c[QUEUE_COMPLETED], 1);
    char top[64];
    assert_int_equal(efx_search_top(&f, "Name: ent0\nType: thing\nObservations:\n- now collects vintage typewriters",
                                    top, sizeof top),
                     0);
    assert_string_equal(top, "ent0");
    worker_manager_stop(m, 2000);
    worker_manager_free(m);
    worker_sink_free(sink);
    fake_embed_stop(srv);
    efx_close(&f);
}

static void test_worker_neo4j__dimension_mismatch_detected_at_start(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "dims", "engram-offline-ngram-v1", NULL, 4);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    worker_sink *sink = NULL;
    assert_int_equal(worker_neo4j_sink_new(&sink, f.pool, go.database, go.vector_index, NULL), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = "engram-offline-ngram-v1",
                       .dimensions = f.index_dims + 1};
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, ec.kind, NULL), 0);
    worker_manager *m = NULL;
    eg_error err = {0};
    assert_int_equal(worker_manager_new(&m, &wo, &ec, f.store, sink, &err), 0);
    assert_int_equal(worker_manager_start(m, &err), EG_EINVAL);
    printf("dims: %s\n", err.message);
    assert_non_null(strstr(err.message, "dimension mismatch"));
    worker_manager_free(m);
    worker_sink_free(sink);
    efx_close(&f);
}

/* The real mutation path: graph_create_entities enqueues in its transaction,
 * workers embed, graph_semantic_search finds them. */
static void test_worker_neo4j__graph_entities_to_semantic_search(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "graph", "text-embedding-3-small", NULL, 8);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    go.vector_dimensions = (size_t)f.index_dims;
    go.embedding_model = "text-embedding-3-small";
    graph_store *g = NULL;
    eg_error err = {0};
    if (graph_store_new(&g, f.pool, f.store, &go, &err))
        fail_msg("graph: %s", err.message);
    json_t *ents = json_pack("[{s:s,s:s,s:[s]},{s:s,s:s,s:[s]},{s:s,s:s,s:[s]}]", "name", "Ada", "entityType",
                             "person", "observations", "writes compilers for analytical engines", "name", "Barista",
                             "entityType", "role", "observations", "pulls espresso shots with crema", "name",
                             "Gardener", "entityType", "role", "observations", "prunes roses and tomatoes");
    graph_req req = {.ns = f.ns, .changed_by = NULL};
    json_t *out = NULL;
    if (graph_create_entities(g, &req, ents, &out, &err))
        fail_msg("create: %s", err.message);
    /* one job per entity and one per observation record */
    assert_int_equal(json_array_size(json_object_get(out, "jobIds")), 6);
    json_decref(out);
    json_decref(ents);
    embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = "text-embedding-3-small",
                       .dimensions = f.index_dims};
    /* the offline provider under the configured model name, so jobs match */
    worker_sink *sink = NULL;
    worker_manager *m = start_manager(&f, &sink, &ec, 1, 10);
    assert_int_equal(worker_manager_drain(m, 60000), 0);
    efx_report r;
    assert_int_equal(efx_check(&f, &r), 0);
    assert_int_equal(r.entities, 3);
    assert_int_equal(r.with_current_vector, 3);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    assert_int_equal(c[QUEUE_COMPLETED], 6);
    /* the records got their own vectors, of their own text, in the observation index */
    assert_int_equal(efx_obs_check(&f, &r), 0);
    assert_int_equal(r.entities, 3);
    assert_int_equal(r.with_current_vector, 3);
    char top_text[128];
    assert_int_equal(efx_obs_search_top(&f, "Barista (role): pulls espresso shots with crema", top_text,
                                        sizeof top_text),
                     0);
    assert_string_equal(top_text, "pulls espresso shots with crema");
    float *vec = calloc((size_t)f.index_dims, sizeof *vec);
    embed_offline_vector("espresso crema", f.index_dims, vec);
    graph_search_opts so = GRAPH_SEARCH_OPTS_INIT;
    so.min_similarity = 0;
    json_t *res = NULL;
    const char *top = NULL;
    for (int i = 0; i < 50; i++) {
        json_decref(res);
        res = NULL;
        if (graph_semantic_search(g, &req, vec, (size_t)f.index_dims, &so, &res, &err))
            fail_msg("search: %s", err.message);
        top = json_string_value(json_object_get(json_array_get(json_object_get(res, "entities"), 0), "name"));
        if (top)
            break;
        eg_sleep_ms(100);
    }
    assert_non_null(top);
    assert_string_equal(top, "Barista");
    json_decref(res);
    free(vec);
    worker_manager_stop(m, 2000);
    worker_manager_free(m);
    worker_sink_free(sink);
    graph_store_free(g);
    efx_close(&f);
}

/* One entity with observations through the real mutation path. */
static graph_store *obs_store(efx *f, const char *model)
{
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    go.vector_dimensions = (size_t)f->index_dims;
    go.embedding_model = model;
    graph_store *g = NULL;
    eg_error err = {0};
    if (graph_store_new(&g, f->pool, f->store, &go, &err))
        fail_msg("graph: %s", err.message);
    return g;
}

static void create_ada(graph_store *g, efx *f, size_t want_jobs)
{
    json_t *ents = json_pack("[{s:s,s:s,s:[ss]}]", "name", "Ada", "entityType", "person", "observations",
                             "writes compilers for analytical engines", "keeps bees on the roof");
    graph_req req = {.ns = f->ns};
    json_t *out = NULL;
    eg_error err = {0};
    if (graph_create_entities(g, &req, ents, &out, &err))
        fail_msg("create: %s", err.message);
    assert_int_equal(json_array_size(json_object_get(out, "jobIds")), want_jobs);
    json_decref(out);
    json_decref(ents);
}

/* The state of the record with this text: has it a vector, is it live? */
typedef struct rec_state {
    efx *f;
    const char *text;
    bool live, has_vec;
} rec_state;

static int rec_state_fn(bolt_conn *c, void *payload, eg_error *err)
{
    rec_state *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", w->f->ns);
    bolt_params_str(p, "text", w->text);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "MATCH (o:ObservationRecord {namespace: $ns}) WHERE o.text = $text "
                                  "RETURN o:Observation AS live, o.embedding IS NOT NULL AS hasVec",
                                  p, NULL, &rows, err);
    bolt_params_free(p);
    assert_int_equal(json_array_size(rows), 1);
    w->live = json_is_true(json_object_get(json_array_get(rows, 0), "live"));
    w->has_vec = json_is_true(json_object_get(json_array_get(rows, 0), "hasVec"));
    json_decref(rows);
    return rc;
}

static rec_state record(efx *f, const char *text)
{
    rec_state w = {f, text, false, false};
    eg_error err = {0};
    assert_int_equal(bolt_pool_execute_read(f->pool, NULL, NULL, rec_state_fn, &w, &err), 0);
    return w;
}

/*
 * Fencing: an observation deleted (its record closed) while the worker
 * embeds it (loaded, provider request in flight) gets no vector, and its
 * job ends superseded (not retried, not dead); the other record is
 * embedded.  Without the fence the closed record would keep a vector and
 * its job would complete.
 */
static void test_worker_neo4j__record_closed_in_flight_gets_no_vector(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "obsfence", "text-embedding-3-small", NULL, 8);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 1500};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(srv), .api_key = "k",
                       .model = "text-embedding-3-small", .dimensions = f.index_dims, .timeout_ms = 10000};
    graph_store *g = obs_store(&f, "text-embedding-3-small");
    create_ada(g, &f, 3);
    worker_sink *sink = NULL;
    worker_manager *m = start_manager(&f, &sink, &ec, 1, 10);
    fake_embed_stats st;
    for (int i = 0; i < 500; i++) {
        fake_embed_stats_get(srv, &st);
        if (st.requests >= 1)
            break;
        eg_sleep_ms(10);
    }
    assert_int_equal(st.requests, 1);
    json_t *del = json_pack("[{s:s,s:[s]}]", "entityName", "Ada", "observations", "keeps bees on the roof");
    graph_req req = {.ns = f.ns};
    json_t *out = NULL;
    eg_error err = {0};
    if (graph_delete_observations(g, &req, del, &out, &err))
        fail_msg("delete: %s", err.message);
    json_decref(out);
    json_decref(del);
    assert_int_equal(worker_manager_drain(m, 30000), 0);
    /* Two requests, four texts: the first carried the entity and both records
     * (loaded before the delete), the second the entity's new version.  So
     * the closed record was embedded and stopped by the write's fence, not
     * found gone at load. */
    fake_embed_stats_get(srv, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.inputs, 4);
    rec_state closed = record(&f, "keeps bees on the roof"), kept = record(&f, "writes compilers for analytical engines");
    assert_false(closed.live);
    assert_false(closed.has_vec);
    assert_true(kept.live);
    assert_true(kept.has_vec);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    /* superseded: the entity's version-1 job and the closed record's; completed: the kept
     * record's and the entity's version-2 job */
    printf("obsfence: completed=%lld superseded=%lld dead=%lld\n", (long long)c[QUEUE_COMPLETED],
           (long long)c[QUEUE_SUPERSEDED], (long long)c[QUEUE_DEAD]);
    assert_int_equal(c[QUEUE_SUPERSEDED], 2);
    assert_int_equal(c[QUEUE_COMPLETED], 2);
    assert_int_equal(c[QUEUE_DEAD] + c[QUEUE_PENDING] + c[QUEUE_LEASED], 0);
    worker_manager_stop(m, 2000);
    worker_manager_free(m);
    worker_sink_free(sink);
    fake_embed_stop(srv);
    graph_store_free(g);
    efx_close(&f);
}

/* An entity deleted before its jobs run: its records' jobs (and its own) end
 * superseded ("gone"), none dead or left pending, and no record gets a vector. */
static void test_worker_neo4j__deleted_entity_record_jobs_gone(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "obsgone", "text-embedding-3-small", NULL, 8);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_store *g = obs_store(&f, "text-embedding-3-small");
    create_ada(g, &f, 3);
    json_t *names = json_pack("[s]", "Ada");
    graph_req req = {.ns = f.ns};
    json_t *out = NULL;
    eg_error err = {0};
    if (graph_delete_entities(g, &req, names, &out, &err))
        fail_msg("delete: %s", err.message);
    json_decref(out);
    json_decref(names);
    embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = "text-embedding-3-small",
                       .dimensions = f.index_dims};
    worker_sink *sink = NULL;
    worker_manager *m = start_manager(&f, &sink, &ec, 1, 10);
    assert_int_equal(worker_manager_drain(m, 30000), 0);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    assert_int_equal(c[QUEUE_SUPERSEDED], 3);
    assert_int_equal(c[QUEUE_COMPLETED] + c[QUEUE_DEAD] + c[QUEUE_PENDING] + c[QUEUE_LEASED], 0);
    assert_false(record(&f, "keeps bees on the roof").has_vec);
    assert_false(record(&f, "writes compilers for analytical engines").has_vec);
    worker_manager_stop(m, 2000);
    worker_manager_free(m);
    worker_sink_free(sink);
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
        cmocka_unit_test(test_worker_neo4j__entities_jobs_workers_vectors_search),
        cmocka_unit_test(test_worker_neo4j__change_in_flight_never_gets_stale_vector),
        cmocka_unit_test(test_worker_neo4j__dimension_mismatch_detected_at_start),
        cmocka_unit_test(test_worker_neo4j__graph_entities_to_semantic_search),
        cmocka_unit_test(test_worker_neo4j__record_closed_in_flight_gets_no_vector),
        cmocka_unit_test(test_worker_neo4j__deleted_entity_record_jobs_gone),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
