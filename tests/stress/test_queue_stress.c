/*
 * test_queue_stress.c - the queue's claim is atomic and its crash recovery
 * works, proven against a real Neo4j.
 *
 *   threads   8 threads lease+complete 20,000 jobs, 3 runs
 *   procs     4 queue_stress_worker processes (tests/support/queue_stress_worker/)
 *             do the same, 3 runs
 *   crash     a worker process holding 50 leases is killed with SIGKILL; the
 *             jobs come back after the lease expires with the attempt counted
 *             and are then completed exactly once
 *   poison    a job whose worker is killed every time ends dead after
 *             maxAttempts
 *
 * Every lease handed out is counted per job: duplicates = leases beyond one
 * per job while no lease expired (threads/procs) or completions beyond one;
 * lost = jobs never completed.  Each scenario prints
 *   stress: NAME jobs=N duplicates=N lost=N ...
 * and fails unless duplicates and lost are 0.
 *
 * Knobs: ENGRAM_STRESS_JOBS (default 20000), ENGRAM_STRESS_RUNS (default 3).
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "queue/neo4j_store.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bolt_pool *g_pool;
static int g_failures;

#define CHECK(cond, ...) EG_TEST_CHECK(g_failures, cond, __VA_ARGS__)

/* ---- a job table: id -> index, lease and completion counters ---- */

typedef struct jobtab {
    char (*ids)[QUEUE_ID_MAX];   /* sorted copy for lookup */
    int *order;                  /* sorted position -> job index */
    size_t n;
    _Atomic int *leases, *completes;
} jobtab;

static jobtab *g_sort_tab;

static int cmp_idx(const void *a, const void *b)
{
    return strcmp(g_sort_tab->ids[*(const int *)a], g_sort_tab->ids[*(const int *)b]);
}

static int tab_find(const jobtab *t, const char *id)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->ids[t->order[mid]], id);
        if (c == 0)
            return t->order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void tab_free(jobtab *t)
{
    eg_free(t->ids);
    eg_free(t->order);
    eg_free((void *)t->leases);
    eg_free((void *)t->completes);
    memset(t, 0, sizeof *t);
}

/* Enqueue n jobs in batches of 1000; fills the table. */
static int fill(queue_store *s, size_t n, int max_attempts, jobtab *t)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->ids = eg_calloc(n, sizeof *t->ids);
    t->order = eg_calloc(n, sizeof *t->order);
    t->leases = eg_calloc(n, sizeof *t->leases);
    t->completes = eg_calloc(n, sizeof *t->completes);
    queue_enqueue_req *r = eg_calloc(1000, sizeof *r);
    queue_enqueue_result *out = eg_calloc(1000, sizeof *out);
    char (*names)[24] = eg_calloc(1000, sizeof *names);
    if (!t->ids || !t->order || !t->leases || !t->completes || !r || !out || !names)
        return EG_ENOMEM;
    char ns[32];
    char hex[9];
    eg_rand_hex(hex, 4);
    snprintf(ns, sizeof ns, "stress_%s", hex);
    int rc = 0;
    int64_t t0 = eg_mono_ms();
    for (size_t base = 0; base < n && !rc; base += 1000) {
        size_t k = n - base < 1000 ? n - base : 1000;
        for (size_t i = 0; i < k; i++) {
            snprintf(names[i], sizeof names[i], "e%zu", base + i);
            r[i] = (queue_enqueue_req){.ns = ns, .entity = names[i], .version = "v1", .model = "m",
                                       .max_attempts = max_attempts};
        }
        eg_error err = {0};
        rc = queue_enqueue(s, NULL, r, k, out, &err);
        if (rc)
            fprintf(stderr, "enqueue failed: %s\n", err.message);
        for (size_t i = 0; i < k && !rc; i++) {
            if (!out[i].created)
                rc = EG_EINTERNAL;
            memcpy(t->ids[base + i], out[i].id, QUEUE_ID_MAX);
        }
    }
    int64_t ms = eg_mono_ms() - t0;
    fprintf(stderr, "enqueued %zu jobs in %lld ms (%.0f jobs/s)\n", n, (long long)ms,
            ms ? (double)n * 1000.0 / (double)ms : 0.0);
    for (size_t i = 0; i < n; i++)
        t->order[i] = (int)i;
    g_sort_tab = t;
    qsort(t->order, n, sizeof *t->order, cmp_idx);
    eg_free(r);
    eg_free(out);
    eg_free(names);
    return rc;
}

typedef struct tally {
    int64_t duplicates, lost, leases, completes, unknown;
} tally;

static tally count(const jobtab *t, bool leases_must_be_one)
{
    tally y = {0};
    for (size_t i = 0; i < t->n; i++) {
        int l = atomic_load(&t->leases[i]), c = atomic_load(&t->completes[i]);
        y.leases += l;
        y.completes += c;
        if (c == 0)
            y.lost++;
        if (c > 1)
            y.duplicates += c - 1;
        if (leases_must_be_one && l > 1)
            y.duplicates += l - 1;
    }
    return y;
}

/* ---- threads ---- */

typedef struct worker_arg {
    queue_store *s;
    jobtab *t;
    char owner[32];
    size_t batch;
    int errors;
    int64_t *lat_us;   /* claim latencies */
    size_t nlat, caplat;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    queue_lease_ref *refs = eg_calloc(w->batch, sizeof *refs);
    queue_outcome *oc = eg_calloc(w->batch, sizeof *oc);
    int idle = 0;
    int64_t deadline = eg_mono_ms() + 600000;
    while (refs && oc && eg_mono_ms() < deadline) {
        queue_lease_opts lo = {.owner = w->owner, .max_jobs = w->batch, .lease_ms = 120000};
        queue_job *jobs = NULL;
        size_t n = 0;
        eg_error err = {0};
        int64_t t0 = eg_mono_us();
        if (queue_lease(w->s, &lo, &jobs, &n, &err)) {
            fprintf(stderr, "%s: lease error: %s %s\n", w->owner, err.message, err.neo4j_code);
            w->errors++;
            break;
        }
        if (w->nlat < w->caplat)
            w->lat_us[w->nlat++] = eg_mono_us() - t0;
        if (n == 0) {
            if (++idle > 20)
                break;
            eg_sleep_ms(25);
            continue;
        }
        idle = 0;
        for (size_t i = 0; i < n; i++) {
            int k = tab_find(w->t, jobs[i].id);
            if (k < 0)
                continue;
            atomic_fetch_add(&w->t->leases[k], 1);
            refs[i] = queue_job_ref(&jobs[i]);
        }
        if (queue_complete(w->s, w->owner, refs, n, NULL, NULL, oc, &err)) {
            fprintf(stderr, "%s: complete error: %s %s\n", w->owner, err.message, err.neo4j_code);
            w->errors++;
            queue_jobs_free(jobs, n);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            int k = tab_find(w->t, jobs[i].id);
            if (k >= 0 && oc[i] == QUEUE_OUT_OK)
                atomic_fetch_add(&w->t->completes[k], 1);
        }
        queue_jobs_free(jobs, n);
    }
    eg_free(refs);
    eg_free(oc);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_threads(int run, size_t njobs)
{
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "threads");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    queue_store *s = NULL;
    CHECK(queue_neo4j_new(&s, g_pool, &o, NULL) == 0, "store");
    jobtab t;
    CHECK(fill(s, njobs, 3, &t) == 0, "fill");
    enum { T = 8 };
    pthread_t th[T];
    worker_arg w[T];
    bolt_pool_stats ps0, ps1;
    bolt_pool_get_stats(g_pool, &ps0);
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < T; i++) {
        w[i] = (worker_arg){.s = s, .t = &t, .batch = 50, .caplat = 4096};
        w[i].lat_us = eg_calloc(w[i].caplat, sizeof *w[i].lat_us);
        snprintf(w[i].owner, sizeof w[i].owner, "thread-%d", i);
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    int errors = 0;
    int64_t *lat = eg_calloc(T * 4096, sizeof *lat);
    size_t nlat = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        errors += w[i].errors;
        if (lat)
            memcpy(lat + nlat, w[i].lat_us, w[i].nlat * sizeof *lat);
        nlat += w[i].nlat;
        eg_free(w[i].lat_us);
    }
    int64_t ms = eg_mono_ms() - t0;
    bolt_pool_get_stats(g_pool, &ps1);
    qsort(lat, nlat, sizeof *lat, cmp_i64);
    tally y = count(&t, true);
    printf("stress: no_double_claim_threads_run%d jobs=%zu duplicates=%lld lost=%lld threads=%d "
           "leases=%lld completes=%lld errors=%d tx_retries=%llu ms=%lld jobs_s=%.0f "
           "claim_p50_ms=%.2f claim_p99_ms=%.2f\n",
           run, t.n, (long long)y.duplicates, (long long)y.lost, T, (long long)y.leases,
           (long long)y.completes, errors, (unsigned long long)(ps1.retries - ps0.retries),
           (long long)ms, ms ? (double)t.n * 1000.0 / (double)ms : 0.0,
           nlat ? (double)lat[nlat / 2] / 1000.0 : 0.0, nlat ? (double)lat[nlat * 99 / 100] / 1000.0 : 0.0);
    fflush(stdout);
    CHECK(y.duplicates == 0 && y.lost == 0 && errors == 0, "threads run %d", run);
    eg_free(lat);
    tab_free(&t);
    qfx_cleanup_queue(g_pool, qn);
    queue_store_free(s);
}

/* ---- processes ---- */

typedef struct child {
    pid_t pid;
    FILE *out;
} child;

static void child_env(void)
{
    bolt_config cfg;
    if (eg_testenv_neo4j(&cfg) == 0) {
        setenv("NEO4J_URI", cfg.uri, 1);
        setenv("NEO4J_USERNAME", cfg.user, 1);
        setenv("NEO4J_PASSWORD", cfg.password, 1);
    }
}

/* Start queue_stress_worker (ENGRAM_QUEUE_STRESS_WORKER) with args; stdout piped to us. */
static int spawn(child *c, const char *const *args)
{
    const char *bin = getenv("ENGRAM_QUEUE_STRESS_WORKER");
    if (!bin)
        return -1;
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        child_env();
        char *argv[32];
        int k = 0;
        argv[k++] = (char *)bin;
        for (int i = 0; args[i] && k < 31; i++)
            argv[k++] = (char *)args[i];
        argv[k] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    close(fd[1]);
    c->pid = pid;
    c->out = fdopen(fd[0], "r");
    return c->out ? 0 : -1;
}

typedef struct reader_arg {
    child *c;
    jobtab *t;
    bool stop_at_holding;
    int held;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *r = p;
    char line[256];
    while (fgets(line, sizeof line, r->c->out)) {
        char id[QUEUE_ID_MAX + 8];
        int attempts = 0;
        if (strncmp(line, "HOLDING", 7) == 0 && r->stop_at_holding)
            break;
        if (line[0] == 'L' && sscanf(line, "L %55s %d", id, &attempts) >= 1) {
            int k = tab_find(r->t, id);
            if (k >= 0)
                atomic_fetch_add(&r->t->leases[k], 1);
            r->held++;
        } else if (line[0] == 'C' && sscanf(line, "C %55s", id) == 1) {
            int k = tab_find(r->t, id);
            if (k >= 0)
                atomic_fetch_add(&r->t->completes[k], 1);
        }
    }
    return NULL;
}

static int wait_child(child *c)
{
    int st = 0;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (c->out)
        fclose(c->out);
    c->out = NULL;
    return st;
}

static void run_procs(int run, size_t njobs)
{
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "procs");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    queue_store *s = NULL;
    CHECK(queue_neo4j_new(&s, g_pool, &o, NULL) == 0, "store");
    jobtab t;
    CHECK(fill(s, njobs, 3, &t) == 0, "fill");
    enum { P = 4 };
    child c[P];
    reader_arg ra[P];
    pthread_t th[P];
    char owners[P][32];
    int64_t t0 = eg_mono_ms();
    int bad_exit = 0;
    for (int i = 0; i < P; i++) {
        snprintf(owners[i], sizeof owners[i], "proc-%d", i);
        const char *args[] = {"--queue", qn, "--owner", owners[i], "--batch", "50", "--lease-ms",
                              "120000", "--idle-ms", "1500", NULL};
        CHECK(spawn(&c[i], args) == 0, "spawn %d (ENGRAM_QUEUE_STRESS_WORKER set?)", i);
        ra[i] = (reader_arg){.c = &c[i], .t = &t};
        pthread_create(&th[i], NULL, reader, &ra[i]);
    }
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        int st = wait_child(&c[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad_exit++;
    }
    int64_t ms = eg_mono_ms() - t0;
    tally y = count(&t, true);
    printf("stress: no_double_claim_procs_run%d jobs=%zu duplicates=%lld lost=%lld procs=%d "
           "leases=%lld completes=%lld bad_exits=%d ms=%lld jobs_s=%.0f\n",
           run, t.n, (long long)y.duplicates, (long long)y.lost, P, (long long)y.leases,
           (long long)y.completes, bad_exit, (long long)ms, ms ? (double)t.n * 1000.0 / (double)ms : 0.0);
    fflush(stdout);
    CHECK(y.duplicates == 0 && y.lost == 0 && bad_exit == 0, "procs run %d", run);
    tab_free(&t);
    qfx_cleanup_queue(g_pool, qn);
    queue_store_free(s);
}

/* ---- kill -9 ---- */

static queue_job find_job(queue_store *s, const char *id)
{
    queue_list_filter f = QUEUE_LIST_FILTER_INIT;
    f.limit = 1000;
    char cursor[QUEUE_ID_MAX] = "";
    queue_job out = {0};
    for (int page = 0; page < 100 && !out.id; page++) {
        f.after_id = cursor[0] ? cursor : NULL;
        queue_job *jobs = NULL;
        size_t n = 0;
        char next[QUEUE_ID_MAX];
        if (queue_list(s, &f, &jobs, &n, next, NULL))
            break;
        for (size_t i = 0; i < n; i++)
            if (strcmp(jobs[i].id, id) == 0) {
                out = jobs[i];
                memset(&jobs[i], 0, sizeof jobs[i]);
            }
        queue_jobs_free(jobs, n);
        if (!next[0])
            break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    return out;
}

/* Spawn a holding worker, wait until it holds its leases, SIGKILL it. */
static int kill_holder(const char *qn, jobtab *t, const char *batch, const char *lease_ms)
{
    child c;
    const char *args[] = {"--queue", qn, "--owner", "doomed", "--batch", batch, "--lease-ms", lease_ms,
                          "--hold", "--idle-ms", "10000", NULL};
    if (spawn(&c, args))
        return -1;
    reader_arg ra = {.c = &c, .t = t, .stop_at_holding = true};
    reader(&ra);
    kill(c.pid, SIGKILL);
    int st = wait_child(&c);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        return -1;
    return ra.held;
}

static void run_crash(void)
{
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "crash");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 10;
    queue_store *s = NULL;
    CHECK(queue_neo4j_new(&s, g_pool, &o, NULL) == 0, "store");
    jobtab t;
    CHECK(fill(s, 200, 3, &t) == 0, "fill");
    int held = kill_holder(qn, &t, "50", "2000");
    CHECK(held == 50, "the killed worker held %d leases", held);
    /* before expiry nothing comes back */
    queue_reclaim_result rr = {0};
    CHECK(queue_reclaim_expired(s, 0, &rr, NULL) == 0 && rr.requeued == 0, "early reclaim %lld",
          (long long)rr.requeued);
    eg_sleep_ms(2300);
    CHECK(queue_reclaim_expired(s, 0, &rr, NULL) == 0, "reclaim");
    CHECK(rr.requeued == 50 && rr.dead == 0, "reclaimed %lld (dead %lld)", (long long)rr.requeued,
          (long long)rr.dead);
    int counted = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (atomic_load(&t.leases[i]) == 0)
            continue;
        queue_job j = find_job(s, t.ids[i]);
        if (j.id && j.state == QUEUE_PENDING && j.attempts == 1 && j.last_error_category &&
            strcmp(j.last_error_category, "expired") == 0)
            counted++;
        queue_job_clear(&j);
    }
    CHECK(counted == 50, "%d of 50 killed jobs back in pending with attempts=1", counted);
    eg_sleep_ms(50);
    /* a healthy worker then finishes everything, each exactly once */
    memset((void *)t.leases, 0, t.n * sizeof *t.leases);
    worker_arg w = {.s = s, .t = &t, .batch = 50};
    snprintf(w.owner, sizeof w.owner, "healthy");
    worker(&w);
    tally y = count(&t, true);
    printf("stress: kill9_recovery jobs=%zu duplicates=%lld lost=%lld killed_leases=%d "
           "requeued=%lld attempt_counted=%d completes=%lld\n",
           t.n, (long long)y.duplicates, (long long)y.lost, held, (long long)rr.requeued, counted,
           (long long)y.completes);
    fflush(stdout);
    CHECK(y.duplicates == 0 && y.lost == 0 && w.errors == 0, "crash recovery");
    tab_free(&t);
    qfx_cleanup_queue(g_pool, qn);
    queue_store_free(s);
}

static void run_poison(void)
{
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "poison");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 10;
    queue_store *s = NULL;
    CHECK(queue_neo4j_new(&s, g_pool, &o, NULL) == 0, "store");
    jobtab t;
    CHECK(fill(s, 1, 3, &t) == 0, "fill");
    int kills = 0;
    queue_reclaim_result total = {0};
    for (int round = 1; round <= 3; round++) {
        int held = kill_holder(qn, &t, "1", "1000");
        CHECK(held == 1, "round %d: held %d", round, held);
        kills += held == 1;
        eg_sleep_ms(1300);
        queue_reclaim_result rr = {0};
        CHECK(queue_reclaim_expired(s, 0, &rr, NULL) == 0, "reclaim");
        total.requeued += rr.requeued;
        total.dead += rr.dead;
        queue_job j = find_job(s, t.ids[0]);
        CHECK(j.id && j.attempts == round, "round %d: attempts %d", round, j.attempts);
        CHECK(j.state == (round < 3 ? QUEUE_PENDING : QUEUE_DEAD), "round %d: state %s", round,
              queue_state_name(j.state));
        queue_job_clear(&j);
        eg_sleep_ms(30);
    }
    /* nothing more to lease: the poison job is dead, not looping */
    queue_lease_opts lo = {.owner = "after", .max_jobs = 5};
    queue_job *jobs = NULL;
    size_t n = 9;
    CHECK(queue_lease(s, &lo, &jobs, &n, NULL) == 0 && n == 0, "dead job leased again");
    queue_jobs_free(jobs, n);
    queue_job j = find_job(s, t.ids[0]);
    bool dead = j.id && j.state == QUEUE_DEAD;
    printf("stress: kill9_poison jobs=1 duplicates=0 lost=%d kills=%d requeued=%lld dead=%lld "
           "final_state=%s attempts=%d max_attempts=%d\n",
           dead ? 0 : 1, kills, (long long)total.requeued, (long long)total.dead,
           j.id ? queue_state_name(j.state) : "missing", j.attempts, j.max_attempts);
    fflush(stdout);
    CHECK(dead && total.dead == 1 && total.requeued == 2, "poison job ends dead after 3 attempts");
    queue_job_clear(&j);
    tab_free(&t);
    qfx_cleanup_queue(g_pool, qn);
    queue_store_free(s);
}

int main(void)
{
    int rc = qfx_open(&g_pool, 16);
    if (rc)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    size_t njobs = 20000;
    int runs = 3;
    const char *e = getenv("ENGRAM_STRESS_JOBS");
    if (e && atol(e) > 0)
        njobs = (size_t)atol(e);
    e = getenv("ENGRAM_STRESS_RUNS");
    if (e && atoi(e) > 0)
        runs = atoi(e);
    const char *only = getenv("ENGRAM_STRESS_ONLY"); /* threads|procs|crash|poison */
    for (int r = 1; r <= runs; r++) {
        if (!only || strcmp(only, "threads") == 0)
            run_threads(r, njobs);
        if (!only || strcmp(only, "procs") == 0)
            run_procs(r, njobs);
    }
    if (!only || strcmp(only, "crash") == 0)
        run_crash();
    if (!only || strcmp(only, "poison") == 0)
        run_poison();
    bolt_pool_free(g_pool);
    fprintf(stderr, "%s (%d failure(s))\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}
