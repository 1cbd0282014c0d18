/*
 * test_backup_restore.c - export a namespace with history (graph_export,
 * engram format), restore it into a fresh namespace (graph_restore), and
 * compare what every read tool answers: read_graph, open_nodes, each
 * entity's and relation's history, and the graph at several past instants,
 * deleted entities and relations included.  Ids differ (a copy in another
 * namespace gets derived ids) and are left out of the comparison.  A second
 * restore changes nothing; the official format round-trips unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "graph/graph.h"
#include "support/embed_fixture.h"
#include "support/testenv.h"

static int skip_rc;

static int collect(void *ctx, const json_t *line, eg_error *err)
{
    (void)err;
    return json_array_append((json_t *)ctx, (json_t *)line) == 0 ? 0 : EG_ENOMEM;
}

/* Drop ids (and the fields that carry them) everywhere in v. */
static void strip_ids(json_t *v)
{
    if (json_is_object(v)) {
        json_object_del(v, "id");
        json_object_del(v, "entityId");
        json_object_del(v, "relationId");
        json_object_del(v, "jobIds");
        json_object_del(v, "timeTaken"); /* a duration, not data */
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) strip_ids(x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) strip_ids(x);
    }
}

static void same(json_t *a, json_t *b, const char *what)
{
    strip_ids(a);
    strip_ids(b);
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS), *sb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "%s differs:\n  before: %.2000s\n  after:  %.2000s\n", what, sa, sb);
        free(sa);
        free(sb);
        fail_msg("%s differs after restore", what);
    }
}

static void ok(int rc, const eg_error *err, const char *what)
{
    if (rc)
        fail_msg("%s: %s", what, err->message);
}

static json_t *pack_one(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    assert_non_null(j);
    return j;
}

/* Build a namespace with history: versions, deletions, relation changes. */
static void build(graph_store *g, const graph_req *r, int64_t marks[3])
{
    eg_error err = {0};
    json_t *out = NULL, *in;
    in = pack_one("[{s:s,s:s,s:[s,s]},{s:s,s:s,s:[s]},{s:s,s:s,s:[s]}]", "name", "Ada", "entityType", "person",
                  "observations", "mathematician", "wrote the first algorithm", "name", "Engine", "entityType",
                  "machine", "observations", "designed by Babbage", "name", "Temp", "entityType", "note",
                  "observations", "to be deleted");
    ok(graph_create_entities(g, r, in, &out, &err), &err, "create");
    json_decref(in);
    json_decref(out);
    in = pack_one("[{s:s,s:s,s:s,s:f,s:f,s:{s:s}},{s:s,s:s,s:s}]", "from", "Ada", "to", "Engine", "relationType",
                  "programmed", "strength", 0.9, "confidence", 0.8, "metadata", "source", "letters", "from", "Temp",
                  "to", "Ada", "relationType", "mentions");
    ok(graph_create_relations(g, r, in, &out, &err), &err, "relate");
    json_decref(in);
    json_decref(out);
    eg_sleep_ms(20);
    marks[0] = eg_wall_ms();
    eg_sleep_ms(20);
    in = pack_one("[{s:s,s:[s]}]", "entityName", "Ada", "contents", "translated Menabrea");
    ok(graph_add_observations(g, r, in, &out, &err), &err, "add");
    json_decref(in);
    json_decref(out);
    in = pack_one("{s:s,s:s,s:s,s:f}", "from", "Ada", "to", "Engine", "relationType", "programmed", "strength", 0.95);
    ok(graph_update_relation(g, r, in, &out, &err), &err, "update relation");
    json_decref(in);
    json_decref(out);
    eg_sleep_ms(20);
    marks[1] = eg_wall_ms();
    eg_sleep_ms(20);
    in = pack_one("[{s:s,s:[s]}]", "entityName", "Ada", "observations", "mathematician");
    ok(graph_delete_observations(g, r, in, &out, &err), &err, "delete observation");
    json_decref(in);
    json_decref(out);
    in = pack_one("[s]", "Temp");
    ok(graph_delete_entities(g, r, in, &out, &err), &err, "delete entity");
    json_decref(in);
    json_decref(out);
    eg_sleep_ms(20);
    marks[2] = eg_wall_ms();
}

/* The observation records of namespace ns, by entity name and seq (new). */
static json_t *records_of(bolt_pool *pool, const char *ns)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", ns);
    json_t *rows = NULL;
    ok(bolt_conn_query_json(c,
                            "MATCH (h:EntityVersion {namespace: $ns}) WITH DISTINCT h.name AS name, h.entityId AS id "
                            "MATCH (o:ObservationRecord {namespace: $ns, entityId: id}) "
                            "RETURN name, o.seq AS seq, o.text AS text, o.fromVersion AS fromVersion, "
                            "o.toVersion AS toVersion, o:Observation AS live, o.contentHash AS hash "
                            "ORDER BY name, seq",
                            p, NULL, &rows, &err),
       &err, "records");
    bolt_params_free(p);
    bolt_pool_release(pool, c);
    return rows;
}

/* Every read tool's answer for namespace r, as one object. */
static json_t *answers(graph_store *g, const graph_req *r, const int64_t marks[3])
{
    eg_error err = {0};
    json_t *all = json_object(), *out = NULL;
    ok(graph_read_graph(g, r, NULL, &out, &err), &err, "read_graph");
    json_object_set_new(all, "read_graph", out);
    json_t *names = pack_one("[s,s,s]", "Ada", "Engine", "Temp");
    ok(graph_open_nodes(g, r, names, NULL, &out, &err), &err, "open_nodes");
    json_object_set_new(all, "open_nodes", out);
    json_decref(names);
    static const char *const ents[] = {"Ada", "Engine", "Temp"};
    for (size_t i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "history_%s", ents[i]);
        ok(graph_get_entity_history(g, r, ents[i], NULL, &out, &err), &err, key);
        json_object_set_new(all, key, out);
    }
    ok(graph_get_relation_history(g, r, "Ada", "Engine", "programmed", NULL, &out, &err), &err, "relation history");
    json_object_set_new(all, "relation_history", out);
    ok(graph_get_relation_history(g, r, "Temp", "Ada", "mentions", NULL, &out, &err), &err, "relation history 2");
    json_object_set_new(all, "relation_history_deleted", out);
    for (int m = 0; m < 3; m++) {
        char key[32];
        snprintf(key, sizeof key, "at_%d", m);
        ok(graph_get_graph_at_time(g, r, marks[m], NULL, &out, &err), &err, key);
        json_object_set_new(all, key, out);
    }
    return all;
}

static void test_backup_restore__round_trip_with_history(void **state)
{
    (void)state;
    efx f;
    int rc = efx_open(&f, "backup", "engram-offline-ngram-v1", NULL, 4);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    go.ns = f.ns;
    graph_store *g = NULL;
    eg_error err = {0};
    assert_int_equal(graph_store_new(&g, f.pool, f.store, &go, &err), 0);
    graph_req src = {.ns = f.ns};
    char copy_ns[96];
    snprintf(copy_ns, sizeof copy_ns, "%s_copy", f.ns);
    graph_req dst = {.ns = copy_ns};
    int64_t marks[3];
    build(g, &src, marks);

    json_t *lines = json_array();
    graph_export_opts eo = {GRAPH_EXPORT_ENGRAM, false};
    graph_export_stats es;
    ok(graph_export(g, &src, &eo, collect, lines, &es, &err), &err, "export");
    printf("export: entities=%lld versions=%lld relations=%lld relation_versions=%lld\n", (long long)es.entities,
           (long long)es.entity_versions, (long long)es.relations, (long long)es.relation_versions);
    assert_int_equal(es.entities, 2);         /* Temp was deleted */
    assert_int_equal(es.entity_versions, 5);  /* Ada 3, Engine 1, Temp 1 (closed and marked deleted) */
    assert_int_equal(es.relations, 1);
    assert_true(es.relation_versions >= 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "type")), "engram-export");

    /* restore, kind by kind in file order, into the copy's namespace */
    graph_restore_stats rs;
    for (int pass = 0; pass < 2; pass++) {
        memset(&rs, 0, sizeof rs);
        static const char *const kinds[] = {"entity", "entityVersion", "relation", "relationVersion"};
        for (size_t k = 0; k < 4; k++) {
            json_t *batch = json_array();
            size_t i;
            json_t *l;
            json_array_foreach(lines, i, l) if (!strcmp(json_string_value(json_object_get(l, "type")), kinds[k]))
                json_array_append(batch, l);
            ok(graph_restore(g, &dst, f.ns, kinds[k], batch, &rs, &err), &err, kinds[k]);
            json_decref(batch);
        }
        /* the versions' lists become observation records, as engram import does */
        graph_obs_convert_stats cs;
        ok(graph_obs_convert(g, copy_ns, 0, &cs, &err), &err, "observation records");
        printf("records %d: entities=%lld records=%lld live=%lld versions=%lld jobs=%lld\n", pass + 1,
               (long long)cs.entities, (long long)cs.records, (long long)cs.live, (long long)cs.versions,
               (long long)cs.jobs);
        if (pass == 0) {
            assert_int_equal(cs.entities, 3); /* Temp's history too */
            assert_int_equal(cs.records, 5);
            assert_int_equal(cs.live, 3);
            assert_int_equal(cs.versions, 5);
            assert_int_equal(cs.jobs, 3);
            assert_int_equal(cs.repaired, 0);
        } else {
            assert_int_equal(cs.entities + cs.records + cs.jobs, 0);
        }
        printf("restore %d: entities=%lld existing=%lld versions=%lld relations=%lld existing=%lld "
               "relation_versions=%lld jobs=%lld\n",
               pass + 1, (long long)rs.entities, (long long)rs.entities_existing, (long long)rs.entity_versions,
               (long long)rs.relations, (long long)rs.relations_existing, (long long)rs.relation_versions,
               (long long)rs.jobs);
        if (pass == 0) {
            assert_int_equal(rs.entities, 2);
            assert_int_equal(rs.entity_versions, 5);
            assert_int_equal(rs.relations, 1);
            assert_int_equal(rs.relation_versions, es.relation_versions);
            assert_int_equal(rs.jobs, 2); /* the restored entities get embedded */
        } else {
            /* the same file again changes nothing */
            assert_int_equal(rs.entities + rs.entity_versions + rs.relations + rs.relation_versions + rs.jobs, 0);
            assert_int_equal(rs.entities_existing, 2);
            assert_int_equal(rs.relations_existing, 1);
        }
    }
    json_t *before = answers(g, &src, marks), *after = answers(g, &dst, marks);
    const char *k;
    json_t *v;
    json_object_foreach(before, k, v) same(v, json_object_get(after, k), k);
    json_decref(before);
    json_decref(after);
    /* the copy's records have the original's intervals */
    json_t *r1 = records_of(f.pool, f.ns), *r2 = records_of(f.pool, copy_ns);
    same(r1, r2, "observation records");
    assert_int_equal(json_array_size(r1), 5);
    json_decref(r1);
    json_decref(r2);

    /* official format: the copy exports exactly what the original does */
    json_t *o1 = json_array(), *o2 = json_array();
    graph_export_opts oo = {GRAPH_EXPORT_OFFICIAL, false};
    ok(graph_export(g, &src, &oo, collect, o1, &es, &err), &err, "official export");
    ok(graph_export(g, &dst, &oo, collect, o2, &es, &err), &err, "official export of the copy");
    assert_true(json_equal(o1, o2));
    assert_int_equal(json_array_size(o1), 3);
    json_t *e0 = json_array_get(o1, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "name")), "Ada");
    assert_int_equal(json_object_size(e0), 4); /* type, name, entityType, observations: nothing else */
    json_decref(o1);
    json_decref(o2);
    json_decref(lines);

    /* the copy's namespace is removed with the fixture's */
    bolt_conn *c = NULL;
    assert_int_equal(bolt_pool_acquire(f.pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", copy_ns);
    bolt_conn_exec(c,
                   "MATCH (n) WHERE (n:Entity OR n:EntityVersion OR n:RelationVersion OR n:ObservationRecord) "
                   "AND n.namespace = $ns DETACH DELETE n",
                   p, NULL, NULL, &err);
    bolt_conn_exec(c, "MATCH (j:EmbedJob) WHERE j.namespace = $ns DELETE j", p, NULL, NULL, &err);
    bolt_params_free(p);
    bolt_pool_release(f.pool, c);
    graph_store_free(g);
    efx_close(&f);
}

static void test_backup_restore__malformed_records_are_refused(void **state)
{
    (void)state;
    char why[200];
    static const char *const bad[] = {
        "{\"type\":\"entity\",\"id\":\"x\",\"version\":1,\"createdAt\":1,\"observations\":[]}",
        "{\"type\":\"entity\",\"name\":\"a\",\"id\":\"x\",\"version\":\"1\",\"createdAt\":1,\"observations\":[]}",
        "{\"type\":\"entity\",\"name\":\"a\",\"id\":\"x\",\"version\":1,\"createdAt\":1,\"observations\":[1]}",
        "{\"type\":\"entityVersion\",\"entityId\":\"x\",\"name\":\"a\",\"version\":1,\"observations\":[]}",
        "{\"type\":\"relation\",\"from\":\"a\",\"to\":\"b\",\"id\":\"r\",\"version\":1}",
        "{\"type\":\"relation\",\"from\":\"a\",\"to\":\"b\",\"relationType\":\"t\",\"id\":\"r\",\"version\":1,"
        "\"strength\":\"high\"}",
        "{\"type\":\"relationVersion\",\"from\":\"a\",\"to\":\"b\",\"relationType\":\"t\",\"relationId\":\"r\","
        "\"version\":1}",
        "{\"type\":\"vector\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        assert_non_null(j);
        if (graph_restore_check(j, why, sizeof why) != EG_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_true(why[0] != '\0');
        json_decref(j);
    }
    json_t *good = json_loads("{\"type\":\"relation\",\"from\":\"a\",\"to\":\"b\",\"relationType\":\"t\",\"id\":\"r\","
                              "\"version\":2,\"strength\":0.5,\"metadata\":\"{}\",\"createdAt\":1,\"validFrom\":2}",
                              0, NULL);
    assert_int_equal(graph_restore_check(good, why, sizeof why), 0);
    json_decref(good);
}

int main(void)
{
    eg_log_set_level(EG_LOG_WARNING);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backup_restore__malformed_records_are_refused),
        cmocka_unit_test(test_backup_restore__round_trip_with_history),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc ? rc : skip_rc;
}
