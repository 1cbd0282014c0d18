/*
 * cmd_worker.c - `engram worker` (a standalone embedding worker process)
 * and `engram reembed` (backfill: enqueue jobs for entities without a
 * current vector).
 *
 * `engram worker` runs the same job manager as `engram serve --workers N`,
 * against the same Neo4j, so it can run on other machines; any mix of
 * in-server and standalone workers is safe (atomic claims, fencing).
 * SIGINT/SIGTERM: stop leasing, let in-flight batches finish within
 * ENGRAM_WORKER_SHUTDOWN_MS, release the rest.
 *
 * Settings: docs/operations.md (ENGRAM_WORKERS, ENGRAM_WORKER_BATCH, the
 * provider and rate-limit variables, ENGRAM_HEALTH_*) and NEO4J_*.
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "embed/provider.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "worker/health.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void worker_usage(FILE *f)
{
    fprintf(f,
            "usage: engram worker [options]\n"
            "  --concurrency N       worker threads (ENGRAM_WORKERS, default 2)\n"
            "  --batch N             jobs per lease and per provider request (ENGRAM_WORKER_BATCH, 100)\n"
            "  --health-port P       serve /health and /metrics on P (ENGRAM_HEALTH_PORT, 9477; 0: any)\n"
            "  --health-addr A       bind address (ENGRAM_HEALTH_ADDR, 127.0.0.1)\n"
            "  --no-health           do not serve /health\n"
            "  --drain               exit 0 once no job is pending or leased\n"
            "  --max-seconds S       exit after S seconds (tests, benchmarks)\n"
            "  --queue NAME          queue name (ENGRAM_QUEUE_NAME, 'default')\n"
            "Provider: ENGRAM_EMBED_PROVIDER=openai|ollama|offline, OPENAI_API_KEY, OPENAI_BASE_URL,\n"
            "OPENAI_EMBEDDING_MODEL, ENGRAM_EMBED_DIMENSIONS, MOCK_EMBEDDINGS; see docs/operations.md.\n");
}

int cli_cmd_worker(int argc, char **argv)
{
    long concurrency = -1, batch = -1, health_port = -2, max_seconds = 0;
    const char *health_addr = NULL, *queue_name = NULL;
    bool no_health = false, drain = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            worker_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--concurrency") && v && parse_int(v, 1, 256, &concurrency) == 0) {
            i++;
        } else if (!strcmp(a, "--batch") && v && parse_int(v, 1, QUEUE_LEASE_MAX, &batch) == 0) {
            i++;
        } else if (!strcmp(a, "--health-port") && v && parse_int(v, 0, 65535, &health_port) == 0) {
            i++;
        } else if (!strcmp(a, "--max-seconds") && v && parse_int(v, 1, 86400 * 365, &max_seconds) == 0) {
            i++;
        } else if (!strcmp(a, "--health-addr") && v) {
            health_addr = argv[++i];
        } else if (!strcmp(a, "--queue") && v) {
            queue_name = argv[++i];
        } else if (!strcmp(a, "--no-health")) {
            no_health = true;
        } else if (!strcmp(a, "--drain")) {
            drain = true;
        } else {
            fprintf(stderr, "engram worker: bad option '%s'\n", a);
            worker_usage(stderr);
            return 2;
        }
    }
    eg_error err;
    eg_error_clear(&err);
    embed_config ec;
    worker_opts wo;
    worker_health_opts ho;
    graph_opts go;
    queue_opts qo;
    if (cli_load_settings(&ec, &go, &qo, &err) || worker_opts_from_env(&wo, ec.kind, &err) ||
        worker_health_opts_from_env(&ho, &err))
        return cli_fail("worker", &err);
    if (queue_name) {
        if (!queue_name_valid(queue_name)) {
            fprintf(stderr, "engram worker: invalid queue name\n");
            return 2;
        }
        snprintf(qo.name, sizeof qo.name, "%s", queue_name);
    }
    if (concurrency > 0)
        wo.concurrency = (int)concurrency;
    if (wo.concurrency < 1)
        wo.concurrency = 1;
    if (batch > 0)
        wo.batch = (int)batch;
    if (health_port >= 0)
        ho.port = (int)health_port;
    if (health_addr)
        ho.addr = health_addr;
    if (no_health)
        ho.port = -1;

    /* Signals are taken by sigwait in this thread only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    bolt_pool *pool = NULL;
    queue_store *store = NULL;
    worker_sink *sink = NULL;
    worker_manager *m = NULL;
    worker_health *h = NULL;
    int rc = 1;
    if (cli_open_pool(&pool, (size_t)wo.concurrency * 2 + 4, &err) || cli_schema_startup(pool, &err) ||
        queue_neo4j_new(&store, pool, &qo, &err) ||
        worker_neo4j_sink_new(&sink, pool, go.database, go.vector_index, &err) ||
        worker_manager_new(&m, &wo, &ec, store, sink, &err) || worker_manager_start(m, &err)) {
        cli_fail("worker", &err);
        goto out;
    }
    /* Workers serve every namespace, and the fenced writer refuses a vector
     * of another model than a namespace's record (its job ends superseded),
     * so a mismatch in the default namespace is worth a warning, not a stop. */
    {
        eg_error merr;
        eg_error_clear(&merr);
        if (cli_vector_model_check(pool, &go, &merr) != 0)
            EG_WARN("worker", "%s", merr.message);
    }
    if (ho.port >= 0 && worker_health_start(&h, &ho, store, m, &err) < 0)
        eg_log_fields(EG_LOG_WARNING, "worker", "health endpoint not started", "error", err.message, NULL);
    int64_t end = max_seconds > 0 ? eg_mono_ms() + max_seconds * 1000 : 0;
    int64_t next_drain_check = eg_mono_ms() + 500;
    for (;;) {
        struct timespec ts = {0, 200 * 1000000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            eg_log_fields(EG_LOG_NOTICE, "worker", "signal received; shutting down", "signal",
                          sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
            break;
        }
        if (end && eg_mono_ms() >= end)
            break;
        if (drain && eg_mono_ms() >= next_drain_check) {
            next_drain_check = eg_mono_ms() + 500;
            if (worker_manager_drain(m, 0) == 0)
                break;
        }
    }
    worker_manager_stop(m, -1);
    rc = 0;
out:
    worker_health_stop(h);
    worker_manager_free(m);
    worker_sink_free(sink);
    queue_store_free(store);
    bolt_pool_free(pool);
    return rc;
}

/* ---- reembed ---------------------------------------------------------- */

static void reembed_usage(FILE *f)
{
    fprintf(f,
            "usage: engram reembed (--missing | --all | --switch-model) [options]\n"
            "  --missing        entities without a current vector for the model (no vector, stale\n"
            "                   content, other model or dimensions)\n"
            "  --all            every live entity (forces a new vector even when current)\n"
            "  --switch-model   move the namespace (--namespace, default ENGRAM_NAMESPACE) to the\n"
            "                   configured model: remove the old model's vectors, resize the vector\n"
            "                   index if needed, then re-embed every entity through the queue with\n"
            "                   in-process workers, showing progress (resumable: run it again)\n"
            "  --model M        model to embed with (default: the configured provider's)\n"
            "  --namespace NS   only this namespace (default: all)\n"
            "  --batch N        entities per transaction (default 500)\n"
            "  --json           print the summary as JSON\n");
}

static void progress(const graph_reembed_cursor *w, int64_t total_in, bool final)
{
    int64_t total = total_in > 0 ? total_in : 1;
    double frac = (double)w->seen / (double)total;
    if (frac > 1)
        frac = 1;
    char bar[31];
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\rreembed [%s] %lld/%lld entities and observations, %lld jobs queued%s", bar,
            (long long)w->seen,
            (long long)total_in, (long long)w->created, final ? "\n" : "");
    fflush(stderr);
}

static void switch_progress(void *ctx, long long removed)
{
    (void)ctx;
    fprintf(stderr, "\rswitch: %lld old vectors removed", removed);
    fflush(stderr);
}

/* Pending + leased jobs of one model (the switch waits for them). */
static int64_t model_backlog(queue_store *qs, const char *model, int64_t *completed, eg_error *err)
{
    queue_status st;
    memset(&st, 0, sizeof st);
    if (queue_status_get(qs, &st, err) != 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < st.nmodels; i++)
        if (strcmp(st.models[i].model, model) == 0) {
            n = st.models[i].count[QUEUE_PENDING] + st.models[i].count[QUEUE_LEASED];
            *completed = st.models[i].count[QUEUE_COMPLETED];
        }
    queue_status_clear(&st);
    return n;
}

/*
 * The re-embedding half of --switch-model: in-process workers (as `engram
 * worker` runs them) until no job of the model is pending or leased, with a
 * progress line.  Other workers of the same model may help; the queue
 * shares the work out.
 */
static int switch_embed(bolt_pool *pool, queue_store *qs, const embed_config *ec, const graph_opts *go,
                        int64_t jobs, eg_error *err)
{
    worker_opts wo;
    worker_sink *sink = NULL;
    worker_manager *m = NULL;
    int rc = worker_opts_from_env(&wo, ec->kind, err);
    if (rc == 0)
        rc = worker_neo4j_sink_new(&sink, pool, go->database, go->vector_index, err);
    if (rc == 0)
        rc = worker_manager_new(&m, &wo, ec, qs, sink, err);
    if (rc == 0)
        rc = worker_manager_start(m, err);
    int64_t t0 = eg_mono_us(), base = -1;
    while (rc == 0) {
        int64_t done = 0, left = model_backlog(qs, ec->model, &done, err);
        if (left < 0) {
            rc = err->code ? err->code : EG_EINTERNAL;
            break;
        }
        if (base < 0)
            base = done;
        double s = (double)(eg_mono_us() - t0) / 1e6, rate = s > 0 ? (double)(done - base) / s : 0;
        fprintf(stderr, "\rswitch: re-embedding with %s: %lld of %lld done, %lld left, %.1f/s, ETA %.0f s   ",
                ec->model, (long long)(jobs - left < 0 ? 0 : jobs - left), (long long)jobs, (long long)left, rate,
                rate > 0 ? (double)left / rate : 0.0);
        fflush(stderr);
        if (left == 0)
            break;
        eg_sleep_ms(500);
    }
    fputc('\n', stderr);
    if (m)
        worker_manager_stop(m, -1);
    worker_manager_free(m);
    worker_sink_free(sink);
    return rc;
}

int cli_cmd_reembed(int argc, char **argv)
{
    bool missing = false, all = false, json_out = false, switch_model = false;
    const char *model = NULL, *ns = NULL, *queue_name = NULL;
    long batch = 500;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            reembed_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--missing")) {
            missing = true;
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (!strcmp(a, "--switch-model")) {
            switch_model = true;
        } else if (!strcmp(a, "--json")) {
            json_out = true;
        } else if (!strcmp(a, "--model") && v) {
            model = argv[++i];
        } else if (!strcmp(a, "--namespace") && v) {
            ns = argv[++i];
        } else if (!strcmp(a, "--queue") && v) {
            queue_name = argv[++i];
        } else if (!strcmp(a, "--batch") && v && parse_int(v, 1, 1000, &batch) == 0) {
            i++;
        } else {
            fprintf(stderr, "engram reembed: bad option '%s'\n", a);
            reembed_usage(stderr);
            return 2;
        }
    }
    if (switch_model && (missing || all || model)) {
        fprintf(stderr, "engram reembed: --switch-model takes the configured model and stands alone\n");
        return 2;
    }
    if (switch_model)
        all = true;
    if (missing == all) {
        fprintf(stderr, "engram reembed: give exactly one of --missing, --all or --switch-model\n");
        reembed_usage(stderr);
        return 2;
    }
    eg_error err;
    eg_error_clear(&err);
    embed_config ec;
    graph_opts go;
    queue_opts qo;
    if (cli_load_settings(&ec, &go, &qo, &err))
        return cli_fail("reembed", &err);
    if (queue_name) {
        if (!queue_name_valid(queue_name)) {
            fprintf(stderr, "engram reembed: invalid queue name\n");
            return 2;
        }
        snprintf(qo.name, sizeof qo.name, "%s", queue_name);
    }
    /* The model and dimensions the workers will produce. */
    embed_provider *p = NULL;
    if (embed_provider_new(&p, &ec, &err))
        return cli_fail("reembed", &err);
    graph_reembed_opts ro;
    memset(&ro, 0, sizeof ro);
    char model_buf[128];
    snprintf(model_buf, sizeof model_buf, "%s", model ? model : embed_provider_model(p));
    ro.model = model_buf;
    ro.dims = embed_provider_dims(p);
    embed_provider_free(p);
    ro.ns = ns;
    ro.all = all;
    ro.batch = (size_t)batch;
    char tag[32];
    snprintf(tag, sizeof tag, "reembed-%lld", (long long)eg_wall_ms());
    ro.tag = tag;
    bolt_pool *pool = NULL;
    queue_store *store = NULL;
    graph_store *g = NULL;
    if (cli_open_pool(&pool, switch_model ? 16 : 2, &err) || queue_neo4j_new(&store, pool, &qo, &err)) {
        bolt_pool_free(pool);
        return cli_fail("reembed", &err);
    }
    if (switch_model) {
        /* One namespace: the one the model record is kept for. */
        if (!ns)
            ro.ns = ns = go.ns;
        go.ns = ns;
        graph_vector_model vm;
        int src = cli_schema_startup(pool, &err);
        if (src == 0)
            src = graph_store_new(&g, pool, store, &go, &err);
        if (src == 0 && graph_vector_model_check(g, false, &vm, &err) == 0 && vm.model[0] &&
            strcmp(vm.model, go.embedding_model) == 0) {
            fprintf(stderr, "switch: namespace %s is on %s already; re-embedding what is missing\n", ns, vm.model);
            all = ro.all = false;
        } else if (src == 0 && (err.code == 0 || err.code == EG_ECONFLICT)) {
            fprintf(stderr, "switch: namespace %s: %s -> %s (%zu dimensions)\n", ns,
                    vm.model[0] ? vm.model : "(no vectors)", go.embedding_model, go.vector_dimensions);
            eg_error_clear(&err);
            src = graph_vector_model_switch(g, switch_progress, NULL, &err);
            fputc('\n', stderr);
        } else if (src == 0) {
            src = err.code;
        }
        if (src) {
            graph_store_free(g);
            queue_store_free(store);
            bolt_pool_free(pool);
            return cli_fail("reembed", &err);
        }
    }
    graph_reembed_cursor cur;
    memset(&cur, 0, sizeof cur);
    int64_t total = 0;
    bool tty = isatty(2);
    int rc = g ? 0 : graph_store_new(&g, pool, store, &go, &err);
    if (rc == 0 && (rc = graph_reembed_count(g, &ro, &total, &err)) == 0) {
        for (;;) {
            rc = graph_reembed_page(g, &ro, &cur, &err);
            if (rc < 0 || cur.page == 0)
                break;
            if (tty)
                progress(&cur, total, false);
        }
    }
    if (tty && rc == 0)
        progress(&cur, total, true);
    graph_store_free(g);
    if (rc == 0 && switch_model)
        rc = switch_embed(pool, store, &ec, &go, cur.created + cur.existing, &err);
    queue_store_free(store);
    bolt_pool_free(pool);
    if (rc < 0)
        return cli_fail("reembed", &err);
    if (json_out) {
        json_t *j = json_pack("{s:I,s:I,s:I,s:s,s:i,s:s,s:I}", "scanned", (json_int_t)cur.seen, "created",
                              (json_int_t)cur.created, "existing", (json_int_t)cur.existing, "model", ro.model,
                              "dimensions", ro.dims, "mode",
                              switch_model ? "switch-model" : all ? "all" : "missing", "scannedObservations",
                              (json_int_t)cur.seen_observations);
        if (j) {
            json_dumpf(j, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(j);
        }
    } else
        printf("reembed: mode=%s model=%s dims=%d scanned=%lld jobs_created=%lld already_queued=%lld\n",
               switch_model ? "switch-model" : all ? "all" : "missing", ro.model, ro.dims, (long long)cur.seen,
               (long long)cur.created, (long long)cur.existing);
    return 0;
}
