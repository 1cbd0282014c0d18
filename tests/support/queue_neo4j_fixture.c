/*
 * queue_neo4j_fixture.c - see queue_neo4j_fixture.h.
 */
#include "support/queue_neo4j_fixture.h"

#include "core/clock.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "support/testenv.h"

#include <stdio.h>

int qfx_open(bolt_pool **out, size_t max_size)
{
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = max_size;
    eg_error err = {0};
    if (bolt_pool_new(out, &cfg, &po, &err) || bolt_pool_verify(*out, &err) ||
        queue_schema_register(&err) || schema_apply(*out, NULL, NULL, &err)) {
        fprintf(stderr, "FAIL: Neo4j fixture: %s %s\n", err.message, err.neo4j_code);
        return 1;
    }
    return 0;
}

void qfx_queue_name(char *out, const char *tag)
{
    char hex[13];
    eg_rand_hex(hex, 6);
    snprintf(out, QUEUE_NAME_MAX, "t_%.24s_%s", tag, hex);
}

typedef struct del_ctx {
    const char *name;
    int64_t n;
} del_ctx;

static int del_work(bolt_conn *c, void *payload, eg_error *err)
{
    del_ctx *d = payload;
    bolt_params *p = bolt_params_new();
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, "q", d->name);
    bolt_result *r = NULL;
    int rc = bolt_conn_run(c,
                           "MATCH (j:EmbedJob) WHERE j.queue = $q WITH j LIMIT 5000 "
                           "DETACH DELETE j RETURN count(*)",
                           p, NULL, &r, err);
    d->n = 0;
    if (!rc) {
        const bolt_value *rec;
        if (bolt_result_next(r, &rec, err) == 1)
            d->n = bolt_value_int(bolt_value_at(rec, 0), 0);
        bolt_result_free(r);
        rc = bolt_conn_exec(c, "MATCH (q:EmbedQueue {name: $q}) DETACH DELETE q", p, NULL, NULL, err);
    }
    bolt_params_free(p);
    return rc;
}

int qfx_cleanup_queue(bolt_pool *p, const char *name)
{
    del_ctx d = {.name = name};
    eg_error err = {0};
    do {
        int rc = bolt_pool_execute_write(p, NULL, NULL, del_work, &d, &err);
        if (rc) {
            fprintf(stderr, "cleanup of queue %s failed: %s\n", name, err.message);
            return rc;
        }
    } while (d.n == 5000);
    return 0;
}

static int ns_cleanup_work(bolt_conn *c, void *payload, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "pfx", (const char *)payload);
    int rc = 0;
    static const char *const labels[] = {"Entity", "EntityVersion", "RelationVersion", "EmbedJob"};
    for (int i = 0; i < 4 && rc == 0; i++) {
        char q[200];
        snprintf(q, sizeof q, "MATCH (n:%s) WHERE n.namespace STARTS WITH $pfx DETACH DELETE n",
                 labels[i]);
        rc = bolt_conn_exec(c, q, p, NULL, NULL, err);
    }
    bolt_params_free(p);
    return rc;
}

int qfx_cleanup_namespaces(bolt_pool *p, const char *prefix)
{
    eg_error err = {0};
    int rc = bolt_pool_execute_write(p, NULL, NULL, ns_cleanup_work, (void *)prefix, &err);
    if (rc)
        fprintf(stderr, "cleanup of namespaces %s* failed: %s\n", prefix, err.message);
    return rc;
}
