/*
 * test_routing_cluster.c - neo4j:// routing under failover, against a
 * pretend three-member cluster (tests/support/bolt_cluster.h: our Bolt
 * proxies on 127.0.0.2-4 in front of the real Neo4j, answering ROUTE with a
 * table this test controls and refusing writes on followers with the real
 * NotALeader failure).
 *
 * Every scenario runs the same load through one routed pool while the
 * cluster changes under it:
 *   - queue workers (4 threads) lease and complete jobs: N enqueued through
 *     the cluster at the start, plus the embedding jobs of the entities below;
 *   - a writer thread creates entities with the MCP tool create_entities
 *     (mcp_tools_call on the graph backend: the tools/call pipeline but the
 *     transport) and opens each right after with open_nodes (a read
 *     transaction on a reader: read-your-writes through the pool's
 *     bookmarks);
 * and ends checking, straight against Neo4j, that every job was completed
 * exactly once and every entity is there exactly once:
 *   stress: routing_<scenario> jobs=N duplicates=0 lost=0 entities=M ...
 *
 * Scenarios: leader_switch (twice: first the old leader refuses writes with
 * NotALeader, then the next one's connections are cut mid-transaction),
 * router_dies, all_but_one_die, member_comes_back, ttl_expiry (a 1 s table
 * under load), seed_dns_moves (the only router dies and the seed's name now
 * resolves to another member: the client must resolve it again; the name
 * lives in a private /etc/hosts bind-mounted in a user and mount namespace
 * the test re-executes itself in, skipped with a note where those cannot be
 * created).  The routing table's TTL is 1-2 s everywhere, so refreshes
 * also happen under load in every scenario, except leader_switch's first
 * table (60 s), which the first switch must invalidate by NotALeader.
 *
 * Knobs: ENGRAM_STRESS_JOBS (default 300 per scenario), ENGRAM_STRESS_ONLY
 * (one scenario name).
 */
#include "bolt/pool.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "graph/graph.h"
#include "mcp/backend_graph.h"
#include "mcp/tools.h"
#include "queue/neo4j_store.h"
#include "support/bolt_cluster.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define CHECK(cond, ...) EG_TEST_CHECK(g_failures, cond, __VA_ARGS__)

static bolt_pool *g_direct;   /* straight to Neo4j: setup and verification */
static bolt_config g_cfg;
static bolt_cluster *g_cl;
static int g_failures;

/* ---- a name the test controls: a private /etc/hosts ---- */

#define SEED_NAME "engram-seed.test"
static char g_hosts[600];      /* our hosts file, bind-mounted on /etc/hosts */
static char *g_hosts_orig;     /* the real one's content */
static bool g_dns;             /* the private hosts file is in place */

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w"); /* truncates in place: the bind mount follows the inode */
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? rc : -1;
}

/* Point SEED_NAME at ip (glibc reads /etc/hosts on every lookup). */
static int set_seed_ip(const char *ip)
{
    size_t n = strlen(g_hosts_orig) + 128;
    char *t = eg_malloc(n);
    if (!t)
        return -1;
    snprintf(t, n, "%s %s\n%s", ip, SEED_NAME, g_hosts_orig);
    int rc = write_file(g_hosts, t);
    eg_free(t);
    return rc;
}

/*
 * Run in a user and mount namespace of our own and bind-mount a hosts file
 * there, so that SEED_NAME resolves to what the test says and can move.
 * Nothing outside this process sees it.  unshare(CLONE_NEWUSER) needs a
 * single-threaded process and libraries may have started threads before
 * main, so the test re-executes itself under util-linux `unshare -rm` (once,
 * marked in the environment).  Returns false (and the DNS scenario is
 * skipped, saying why) where that is not possible.
 */
static bool private_hosts(void)
{
    if (!getenv("ENGRAM_ROUTING_NS")) {
        setenv("ENGRAM_ROUTING_NS", "1", 1);
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *args[] = {"unshare", "--map-root-user", "--mount", "--", self, NULL};
            execvp(args[0], args);
        }
        fprintf(stderr, "note: cannot run under unshare (%s): the seed_dns_moves scenario is skipped\n",
                strerror(errno));
        return false;
    }
    FILE *f = fopen("/etc/hosts", "r");
    char buf[16384];
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[got] = '\0';
    g_hosts_orig = eg_strdup(buf);
    snprintf(g_hosts, sizeof g_hosts, "%s/hosts", eg_testenv_tmpdir("routing_cluster"));
    if (!g_hosts_orig || set_seed_ip("127.0.0.2") != 0)
        return false;
    bool ok = mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
              mount(g_hosts, "/etc/hosts", NULL, MS_BIND, NULL) == 0;
    if (!ok)
        fprintf(stderr, "note: cannot bind a private /etc/hosts (%s): the seed_dns_moves scenario is skipped\n",
                strerror(errno));
    return ok;
}

typedef struct load {
    queue_store *s;
    graph_store *g;
    const char *ns;
    pthread_mutex_t mu;       /* ids, completes, njobs */
    char (*ids)[QUEUE_ID_MAX];
    int *completes;
    size_t njobs, cap;
    atomic_size_t done;       /* OK outcomes + LOST ones (a retried complete whose first try committed) */
    atomic_int unknown;       /* LOST outcomes */
    atomic_int reclaimed;     /* expired leases swept back */
    atomic_bool stop_writes;
    atomic_bool writer_done;  /* the writer's last create committed: workers may drain and stop */
    atomic_int errors;
    bolt_pool *pool;
    mcp_backend mcp;          /* the MCP tools over g and s */
    atomic_bool writing;      /* the writer's first create committed: the load is on */
    int writes, ryw_misses;
} load;

/* Under l->mu: append job `id` with no completion; its index. */
static size_t add_job_locked(load *l, const char *id)
{
    if (l->njobs == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 512;
        l->ids = eg_realloc(l->ids, nc * sizeof *l->ids);
        l->completes = eg_realloc(l->completes, nc * sizeof *l->completes);
        l->cap = nc;
    }
    snprintf(l->ids[l->njobs], QUEUE_ID_MAX, "%s", id);
    l->completes[l->njobs] = 0;
    return l->njobs++;
}

/* A job the store reported (create_entities may report one job twice:
 * an entity's and its observation's work can share a job). */
static void add_job(load *l, const char *id)
{
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    while (i < l->njobs && strcmp(l->ids[i], id) != 0)
        i++;
    if (i == l->njobs)
        add_job_locked(l, id);
    pthread_mutex_unlock(&l->mu);
}

/* Count an OK completion of job `id` (a job nobody reported, e.g. from a
 * create whose first COMMIT went through unseen, is added then). */
static void count_complete(load *l, const char *id)
{
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    while (i < l->njobs && strcmp(l->ids[i], id) != 0)
        i++;
    if (i == l->njobs)
        i = add_job_locked(l, id);
    l->completes[i]++;
    pthread_mutex_unlock(&l->mu);
}

static bool queue_idle(load *l)
{
    queue_status qs;
    memset(&qs, 0, sizeof qs);
    eg_error err;
    bool idle = queue_status_get(l->s, &qs, &err) == 0 && qs.count[QUEUE_PENDING] == 0 &&
                qs.count[QUEUE_LEASED] == 0;
    queue_status_clear(&qs);
    return idle;
}

static void *worker(void *p)
{
    load *l = p;
    char owner[32];
    snprintf(owner, sizeof owner, "w-%p", (void *)&owner);
    enum { B = 10 };
    queue_lease_ref refs[B];
    queue_outcome oc[B];
    int64_t deadline = eg_mono_ms() + 90000;
    /* Workers keep leasing (writes too) until the scenario is over, even with the queue empty. */
    while (eg_mono_ms() < deadline) {
        queue_lease_opts lo = {.owner = owner, .max_jobs = B, .lease_ms = 3000};
        queue_job *jobs = NULL;
        size_t n = 0;
        eg_error err = {0};
        if (queue_lease(l->s, &lo, &jobs, &n, &err)) {
            fprintf(stderr, "%s: lease: %s %s\n", owner, err.neo4j_code, err.message);
            atomic_fetch_add(&l->errors, 1);
            eg_sleep_ms(100);
            continue;
        }
        if (n == 0) {
            /* A lease whose COMMIT went through on a connection cut before
             * the reply holds jobs nobody works: they come back once the
             * lease expires and a sweep reclaims them, as workers do. */
            queue_reclaim_result rr;
            if (queue_reclaim_expired(l->s, 100, &rr, &err) == 0 && rr.requeued > 0)
                atomic_fetch_add(&l->reclaimed, (int)rr.requeued);
            /* Done when the scenario is over and the queue holds nothing
             * pending or leased (jobs of a create whose first COMMIT went
             * through unseen included). */
            if (atomic_load(&l->writer_done) && queue_idle(l))
                break;
            eg_sleep_ms(20);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            refs[i] = queue_job_ref(&jobs[i]);
        if (queue_complete(l->s, owner, refs, n, NULL, NULL, oc, &err)) {
            fprintf(stderr, "%s: complete: %s %s\n", owner, err.neo4j_code, err.message);
            atomic_fetch_add(&l->errors, 1);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (oc[i] == QUEUE_OUT_OK) {
                    count_complete(l, jobs[i].id);
                    atomic_fetch_add(&l->done, 1);
                } else if (oc[i] == QUEUE_OUT_LOST) {
                    /* The connection was cut after a COMMIT that went
                     * through: the retry finds the lease gone.  The store
                     * decides (checked below), not this tally. */
                    atomic_fetch_add(&l->unknown, 1);
                    atomic_fetch_add(&l->done, 1);
                }
            }
        }
        queue_jobs_free(jobs, n);
        eg_sleep_ms(10); /* spread the jobs over the scenario */
    }
    return NULL;
}

/* One MCP tool call on the load's backend (the whole tools/call pipeline
 * but the transport: validation, the graph backend, the store): its
 * structuredContent (new), or NULL when the call failed or answered isError. */
static json_t *tool(load *l, const char *name, json_t *args)
{
    json_t *res = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc = mcp_tools_call(&l->mcp, name, args, NULL, &res, &err);
    json_decref(args);
    if (rc != 0 || json_is_true(json_object_get(res, "isError"))) {
        char *t = res ? json_dumps(res, JSON_COMPACT) : NULL;
        fprintf(stderr, "%s: rc %d %s %s\n", name, rc, err.message, t ? t : "");
        free(t);
        json_decref(res);
        return NULL;
    }
    json_t *sc = json_incref(json_object_get(res, "structuredContent"));
    json_decref(res);
    return sc;
}

/* Create entity k with the MCP tool create_entities, then open it with
 * open_nodes (read-your-writes across members through the bookmarks). */
static void *writer(void *p)
{
    load *l = p;
    for (int k = 0; k < 2000 && !atomic_load(&l->stop_writes); k++) {
        char name[32];
        snprintf(name, sizeof name, "E%d", k);
        json_t *out = tool(l, "create_entities",
                           json_pack("{s:[{s:s, s:s, s:[s]}]}", "entities", "name", name, "entityType", "stress",
                                     "observations", "written through the routed pool"));
        if (!out) {
            atomic_fetch_add(&l->errors, 1);
            continue;
        }
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(out, "jobIds"), i, id)
        {
            add_job(l, json_string_value(id));
        }
        json_decref(out);
        l->writes = k + 1;
        atomic_store(&l->writing, true);
        out = tool(l, "open_nodes", json_pack("{s:[s]}", "names", name));
        if (!out || json_array_size(json_object_get(out, "entities")) != 1)
            l->ryw_misses++;
        json_decref(out);
        eg_sleep_ms(5);
    }
    return NULL;
}

static int enqueue_all(load *l, size_t njobs)
{
    char ns[32], hex[9];
    eg_rand_hex(hex, 4);
    snprintf(ns, sizeof ns, "rstress_%s", hex);
    enum { B = 50 };
    queue_enqueue_req r[B];
    queue_enqueue_result out[B];
    char names[B][24];
    for (size_t base = 0; base < njobs; base += B) {
        size_t k = njobs - base < B ? njobs - base : B;
        for (size_t i = 0; i < k; i++) {
            snprintf(names[i], sizeof names[i], "e%zu", base + i);
            r[i] = (queue_enqueue_req){.ns = ns, .entity = names[i], .version = "v1", .model = "m",
                                       .max_attempts = 50};
        }
        eg_error err = {0};
        if (queue_enqueue(l->s, NULL, r, k, out, &err)) {
            fprintf(stderr, "enqueue: %s %s\n", err.neo4j_code, err.message);
            return -1;
        }
        for (size_t i = 0; i < k; i++)
            add_job(l, out[i].id);
    }
    return 0;
}

typedef void (*event_fn)(void);

static unsigned all3(void)
{
    return 7u;
}

/* ---- scenarios: what happens to the cluster while the load runs ---- */

static void ev_leader_switch(void)
{
    eg_sleep_ms(500);
    /* First switch: the old leader stays up and refuses writes (NotALeader)
     * on the pooled connections the client still sends them to. */
    bolt_cluster_set_table(g_cl, 2, all3(), all3(), 1);
    eg_sleep_ms(1000);
    /* Second: the leader's transactions die with its connections. */
    bolt_cluster_set_table(g_cl, 2, all3(), all3(), 2);
    bolt_cluster_drop(g_cl, 1);
    eg_sleep_ms(1000);
}

static void ev_router_dies(void)
{
    /* member 0 is the seed and the first router; member 1 the writer */
    eg_sleep_ms(500);
    bolt_cluster_set_down(g_cl, 0, true);
    eg_sleep_ms(2500); /* a refresh (TTL 1-2 s) must skip the dead router */
    bolt_cluster_set_table(g_cl, 2, 6u, 6u, 1); /* the cluster notices too */
    eg_sleep_ms(500);
}

static void ev_all_but_one(void)
{
    eg_sleep_ms(500);
    bolt_cluster_set_down(g_cl, 0, true);
    bolt_cluster_set_down(g_cl, 1, true);
    eg_sleep_ms(1500);
    bolt_cluster_set_table(g_cl, 2, 4u, 4u, 2); /* only member 2 is left */
    eg_sleep_ms(1500);
}

static void ev_comes_back(void)
{
    /* starts where all_but_one ended: only member 2 */
    eg_sleep_ms(500);
    bolt_cluster_set_down(g_cl, 0, false);
    bolt_cluster_set_down(g_cl, 1, false);
    bolt_cluster_set_table(g_cl, 2, all3(), all3(), 0); /* member 0 is elected leader */
    bolt_cluster_drop(g_cl, 2);
    eg_sleep_ms(2500);
}

static void ev_dns_moves(void)
{
    /* member 0 is the only router and the seed's address; then the cluster
     * moves: member 0 dies and the name now says member 1 */
    eg_sleep_ms(500);
    bolt_cluster_set_table(g_cl, 2, 6u, 6u, 1);
    if (set_seed_ip("127.0.0.3") != 0)
        fprintf(stderr, "cannot rewrite the hosts file\n");
    bolt_cluster_set_down(g_cl, 0, true);
    eg_sleep_ms(2500);
}

static void ev_ttl(void)
{
    eg_sleep_ms(3500); /* TTL 1 s: several refreshes under load */
}

typedef struct scenario {
    const char *name;
    int writer;       /* initial writer */
    unsigned members; /* initial routers/readers */
    int ttl;
    event_fn ev;
    bool downs[3];    /* members down at the start */
    bool expect_refusals;
    bool by_name;     /* the seed is SEED_NAME (private hosts file), not an address */
} scenario;

static void run(const scenario *sc, size_t njobs)
{
    for (int i = 0; i < 3; i++)
        bolt_cluster_set_down(g_cl, i, sc->downs[i]);
    bolt_cluster_set_table(g_cl, sc->ttl, sc->members, sc->members, sc->writer);
    /* The seed is the first live member (a client is configured with a live address). */
    int seed = 0;
    while (sc->downs[seed])
        seed++;
    char uri[128];
    if (sc->by_name) {
        set_seed_ip("127.0.0.2");
        snprintf(uri, sizeof uri, "neo4j://%s:%d", SEED_NAME, bolt_cluster_port(g_cl));
    } else {
        snprintf(uri, sizeof uri, "neo4j://%s", bolt_cluster_address(g_cl, seed));
    }
    bolt_config cfg = g_cfg;
    cfg.uri = uri;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 8;
    po.acquire_timeout_ms = 10000;
    load l;
    memset(&l, 0, sizeof l);
    pthread_mutex_init(&l.mu, NULL);
    eg_error err;
    CHECK(bolt_pool_new(&l.pool, &cfg, &po, &err) == 0, "pool");
    char ns[32], hex[9];
    eg_rand_hex(hex, 4);
    snprintf(ns, sizeof ns, "rstress%s", hex);
    l.ns = ns;
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "routing");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    o.lease_ms = 3000;
    o.backoff_base_ms = 100;
    CHECK(queue_neo4j_new(&l.s, l.pool, &o, &err) == 0, "queue store: %s", err.message);
    graph_opts go = GRAPH_OPTS_INIT;
    go.embedding_model = "test-model";
    go.ns = ns;
    CHECK(graph_store_new(&l.g, l.pool, l.s, &go, &err) == 0, "graph store: %s", err.message);
    mcp_graph_deps deps = {.graph = l.g, .queue = l.s};
    CHECK(mcp_backend_graph_new(&l.mcp, &deps, &err) == 0, "MCP backend: %s", err.message);
    uint64_t routes0 = bolt_cluster_routes(g_cl), ref0 = bolt_cluster_refusals(g_cl);
    int64_t t0 = eg_mono_ms();
    CHECK(enqueue_all(&l, njobs) == 0, "enqueue");
    enum { W = 4 };
    pthread_t th[W + 1];
    for (int i = 0; i < W; i++)
        pthread_create(&th[i], NULL, worker, &l);
    pthread_create(&th[W], NULL, writer, &l);
    /* The cluster changes under a running write load: a first call on a
     * fresh database (plans, the schema's first use) can take seconds. */
    for (int64_t end = eg_mono_ms() + 30000; !atomic_load(&l.writing) && eg_mono_ms() < end;)
        eg_sleep_ms(10);
    sc->ev();
    atomic_store(&l.stop_writes, true);
    pthread_join(th[W], NULL);
    atomic_store(&l.writer_done, true);
    for (int i = 0; i < W; i++)
        pthread_join(th[i], NULL);
    int64_t ms = eg_mono_ms() - t0;
    bolt_pool_stats st;
    bolt_pool_get_stats(l.pool, &st);

    /* Verify straight against Neo4j: every job (enqueued, and the graph's
     * embedding jobs) completed (lost = the others), none completed twice by
     * the workers; every entity there once. */
    size_t total = l.njobs;
    long long dup = 0, lost = 0, superseded = 0;
    for (size_t i = 0; i < total; i++)
        dup += l.completes[i] > 1 ? l.completes[i] - 1 : 0;
    queue_store *vs = NULL;
    queue_status qs;
    memset(&qs, 0, sizeof qs);
    if (queue_neo4j_new(&vs, g_direct, &o, &err) == 0 && queue_status_get(vs, &qs, &err) == 0) {
        long long all = 0;
        for (int k = 0; k < QUEUE_STATE_COUNT; k++)
            all += qs.count[k];
        if ((size_t)all != total)
            fprintf(stderr, "%s: %lld jobs in the queue, %zu reported (pending %lld leased %lld dead %lld)\n", sc->name,
                    all, total, (long long)qs.count[QUEUE_PENDING], (long long)qs.count[QUEUE_LEASED],
                    (long long)qs.count[QUEUE_DEAD]);
        total = (size_t)all > total ? (size_t)all : total;
        /* Superseded is a final state too (the entity moved on before the
         * job ran); dead or still pending/leased counts as lost. */
        lost = (long long)total - qs.count[QUEUE_COMPLETED] - qs.count[QUEUE_SUPERSEDED];
        superseded = qs.count[QUEUE_SUPERSEDED];
    } else {
        lost = (long long)total;
    }
    queue_status_clear(&qs);
    queue_store_free(vs);
    bolt_conn *c;
    long long nodes = -1, distinct = -1;
    if (bolt_pool_acquire(g_direct, &c, &err) == 0) {
        bolt_params *p = bolt_params_new();
        bolt_params_str(p, "ns", ns);
        json_t *rows = NULL;
        if (bolt_conn_query_json(c,
                                 "MATCH (e:Entity {namespace: $ns}) WHERE e.validTo IS NULL "
                                 "RETURN count(e) AS n, count(DISTINCT e.name) AS d",
                                 p, NULL, &rows, &err) == 0) {
            nodes = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
            distinct = json_integer_value(json_object_get(json_array_get(rows, 0), "d"));
        }
        json_decref(rows);
        bolt_params_free(p);
        bolt_pool_release(g_direct, c);
    }
    long long wdup = nodes - distinct, wlost = l.writes - distinct;
    printf("stress: routing_%s jobs=%zu duplicates=%lld lost=%lld entities=%d entity_duplicates=%lld "
           "entities_lost=%lld superseded=%lld ryw_misses=%d errors=%d unknown_commits=%d reclaimed=%d routes=%llu "
           "not_a_leader=%llu tx_retries=%llu ms=%lld\n",
           sc->name, total, dup, lost, l.writes, wdup, wlost, superseded, l.ryw_misses, atomic_load(&l.errors),
           atomic_load(&l.unknown), atomic_load(&l.reclaimed),
           (unsigned long long)(bolt_cluster_routes(g_cl) - routes0),
           (unsigned long long)(bolt_cluster_refusals(g_cl) - ref0), (unsigned long long)st.retries, (long long)ms);
    fflush(stdout);
    CHECK(dup == 0 && lost == 0, "%s: jobs duplicated or lost", sc->name);
    CHECK(wdup == 0 && wlost == 0 && l.writes > 0, "%s: entities duplicated or lost", sc->name);
    CHECK(l.ryw_misses == 0, "%s: open_nodes missed the entity created before it", sc->name);
    CHECK(atomic_load(&l.errors) == 0, "%s: operations failed after their retry budget", sc->name);
    CHECK(!sc->expect_refusals || bolt_cluster_refusals(g_cl) > ref0, "%s: no write met NotALeader", sc->name);
    mcp_backend_graph_free(&l.mcp);
    graph_store_free(l.g);
    qfx_cleanup_namespaces(g_direct, ns);
    qfx_cleanup_queue(g_direct, qn);
    queue_store_free(l.s);
    bolt_pool_free(l.pool);
    eg_free(l.ids);
    eg_free(l.completes);
    pthread_mutex_destroy(&l.mu);
}

int main(void)
{
    g_dns = private_hosts(); /* first: may re-execute the test in its own namespaces */
    eg_log_init_from_env();  /* ENGRAM_LOG_LEVEL=debug shows every routing decision and retry */
    int rc = qfx_open(&g_direct, 8);
    if (rc)
        return rc;
    if ((rc = eg_testenv_neo4j(&g_cfg)) != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    {
        graph_opts go = GRAPH_OPTS_INIT;
        go.embedding_model = "test-model";
        graph_store *g = NULL;
        eg_error err;
        if (graph_store_new(&g, g_direct, NULL, &go, &err) != 0 || graph_schema_apply(g, 120000, &err) != 0) {
            fprintf(stderr, "graph schema: %s\n", err.message);
            return 1;
        }
        graph_store_free(g);
    }
    g_cl = bolt_cluster_new(g_cfg.uri, 3);
    if (!g_cl) {
        fprintf(stderr, "cannot start the pretend cluster on 127.0.0.2-4\n");
        return 1;
    }
    size_t njobs = 300;
    const char *e = getenv("ENGRAM_STRESS_JOBS");
    if (e && atol(e) > 0)
        njobs = (size_t)atol(e);
    const char *only = getenv("ENGRAM_STRESS_ONLY");
    const scenario scs[] = {
        /* a first table that outlives the first switch: the client must
         * learn of it by NotALeader, as from a real cluster, not by a
         * refresh that happens to come first (CI-M: no write met it) */
        {"leader_switch", 0, 7u, 60, ev_leader_switch, {false, false, false}, true, false},
        {"router_dies", 1, 7u, 1, ev_router_dies, {false, false, false}, false, false},
        {"all_but_one_die", 2, 7u, 1, ev_all_but_one, {false, false, false}, false, false},
        {"member_comes_back", 2, 4u, 1, ev_comes_back, {true, true, false}, false, false},
        {"ttl_expiry", 0, 7u, 1, ev_ttl, {false, false, false}, false, false},
        {"seed_dns_moves", 0, 1u, 2, ev_dns_moves, {false, false, false}, false, true},
    };
    for (size_t i = 0; i < sizeof scs / sizeof scs[0]; i++) {
        if (only && strcmp(only, scs[i].name) != 0)
            continue;
        if (scs[i].by_name && !g_dns) {
            fprintf(stderr, "SKIP routing_%s: no private hosts file (see the note above)\n", scs[i].name);
            continue;
        }
        run(&scs[i], njobs);
    }
    bolt_cluster_free(g_cl);
    bolt_pool_free(g_direct);
    eg_free(g_hosts_orig);
    fprintf(stderr, "%s (%d failure(s))\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}
