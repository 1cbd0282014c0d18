/*
 * test_worker_hosts.c - embedding workers on three hosts, one host's link
 * cut mid-batch and brought back later.
 *
 * Each host is a network namespace this test creates, with its own address
 * on a bridge of the test's own (10.77.X.0/24) in the root namespace.  The
 * test Neo4j and the fake provider listen on loopback, which a namespace
 * cannot reach (and tools/neo4j-local refuses any other listen address), so
 * two relays of the test (tests/support/tcp_relay.h) listen on the bridge's
 * address and forward to them; they accept the test's subnet only.  Nothing
 * listens beyond loopback and the bridge; forwarding stays as it is, so the
 * namespaces reach nothing else.
 *
 * Every host runs the real `engram worker` (2 threads, batches of 10, the
 * provider answering after 1 s, so a host spends its time waiting on the
 * provider with leases held).  The test waits for a moment when host A has
 * a provider request outstanding and no database round trip in flight (so
 * no transaction of A's is left open holding locks; on a loaded machine that
 * is best effort, and the workers' 3 s transaction timeout bounds what a
 * cut inside a transaction holds -- tests/integration/test_queue_tx_timeout.c
 * tests that case on its own), then takes A's link
 * down in the root namespace (the root side of its veth pair): A is not
 * killed, its TCP connections stall.  A's leases expire and the other
 * hosts' heartbeat threads requeue them; the link comes back once none of
 * A's jobs is still leased to it; A's stalled provider answer then arrives
 * and its completion must be refused by the queue's fence.
 *
 * Checks: every job completed once (completions counted from the workers'
 * debug logs, "job completed job=<id>"), every entity has its current
 * vector, no dead job; every job A held at the cut was requeued by the
 * other hosts (its lastError names A's lease) and completed; A logged at
 * least one refused completion ("lease lost before completion").
 * Prints `stress: hosts_link_cut jobs=N duplicates=N lost=N ...`.
 *
 * Skips (77) only where network namespaces cannot be created (not root, no
 * `ip`, no netns support).  Every namespace, veth and bridge is removed at
 * exit, also after a failed assertion or SIGTERM/SIGINT; ones left by a run
 * that was killed with SIGKILL are removed by the next run (their names
 * carry the dead test's pid).
 */
/* cmocka.h wants these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/tcp_relay.h"
#include "support/testenv.h"

extern char **environ;

#define NHOSTS 3
#define NS_DIR "/var/run/netns"

static int skip_rc;
static char g_tag[16]; /* "egh<pid>": every name this run creates starts with it */
static char g_net[16]; /* "10.77.X" */
static char g_bridge[IFNAMSIZ];
static char g_ns[NHOSTS][32];
static char g_veth[NHOSTS][IFNAMSIZ];
static bool g_made_bridge, g_made_ns[NHOSTS];
static pid_t g_workers[NHOSTS];

/* ---- ip(8), no shell: the words of fmt split on spaces ---- */

static int ipcmd(bool quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ipcmd(bool quiet, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *argv[40];
    int argc = 0;
    argv[argc++] = "ip";
    for (char *save = NULL, *w = strtok_r(line, " ", &save); w && argc < 39; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, "ip", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- cleanup: ours at exit, and what a SIGKILLed run left ---- */

static void cleanup(void)
{
    for (int i = 0; i < NHOSTS; i++)
        if (g_workers[i] > 0) {
            kill(g_workers[i], SIGKILL);
            waitpid(g_workers[i], NULL, 0);
            g_workers[i] = 0;
        }
    /* Deleting a namespace whose processes are gone destroys its veth end,
     * and with it the root end. */
    for (int i = 0; i < NHOSTS; i++)
        if (g_made_ns[i]) {
            ipcmd(true, "link del %s", g_veth[i]);
            ipcmd(false, "netns del %s", g_ns[i]);
            g_made_ns[i] = false;
        }
    if (g_made_bridge) {
        ipcmd(false, "link del %s", g_bridge);
        g_made_bridge = false;
    }
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool pid_gone(long pid) { return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

static void sweep_stale(void)
{
    DIR *d = opendir(NS_DIR);
    for (struct dirent *e; d && (e = readdir(d));) {
        long pid;
        int host, used = 0;
        if (sscanf(e->d_name, "egh%ld-%d%n", &pid, &host, &used) == 2 && e->d_name[used] == '\0' && pid_gone(pid)) {
            fprintf(stderr, "removing network namespace %s of a test run that is gone\n", e->d_name);
            ipcmd(false, "netns del %s", e->d_name);
        }
    }
    if (d)
        closedir(d);
    struct if_nameindex *ifs = if_nameindex();
    for (struct if_nameindex *p = ifs; p && p->if_index; p++) {
        long pid;
        int host, used = 0, usedv = 0;
        bool bridge = sscanf(p->if_name, "egh%ldb%n", &pid, &used) == 1 && p->if_name[used] == '\0';
        /* a veth outlives its namespace's name while sockets in it wind down */
        bool veth = !bridge && sscanf(p->if_name, "egh%ldv%d%n", &pid, &host, &usedv) == 2 && p->if_name[usedv] == '\0';
        if ((bridge || veth) && pid_gone(pid)) {
            fprintf(stderr, "removing %s %s of a test run that is gone\n", bridge ? "bridge" : "veth", p->if_name);
            ipcmd(false, "link del %s", p->if_name);
        }
    }
    if (ifs)
        if_freenameindex(ifs);
}

/* ---- the hosts ---- */

static const char *host_ip(int i)
{
    static char ip[NHOSTS][32];
    snprintf(ip[i], sizeof ip[i], "%.15s.%d", g_net, 11 + i);
    return ip[i];
}

/* A /24 of 10.77.0.0/16 no interface of this machine is in. */
static bool pick_subnet(void)
{
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        return false;
    bool found = false;
    for (int k = 0; k < 200 && !found; k++) {
        int x = (int)((getpid() + k) % 200) + 20;
        bool used = false;
        for (struct ifaddrs *a = ifa; a && !used; a = a->ifa_next) {
            if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET)
                continue;
            uint32_t v = ntohl(((struct sockaddr_in *)a->ifa_addr)->sin_addr.s_addr);
            used = (v >> 8) == ((10u << 16) | (77u << 8) | (uint32_t)x);
        }
        if (!used) {
            snprintf(g_net, sizeof g_net, "10.77.%d", x);
            found = true;
        }
    }
    freeifaddrs(ifa);
    return found;
}

/*
 * Bridge <tag>b with .1, and per host a namespace <tag>-i whose eth0 (.11+i)
 * is the far end of a veth pair whose root end <tag>v<i> is on the bridge.
 * Returns 0, 77 when namespaces cannot be made at all, 1 on a later failure.
 */
static int make_hosts(void)
{
    snprintf(g_tag, sizeof g_tag, "egh%d", (int)getpid());
    snprintf(g_bridge, sizeof g_bridge, "%.12sb", g_tag);
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: network namespaces need root (this test creates them with ip netns)\n");
        return EG_TEST_SKIP;
    }
    sweep_stale();
    if (!pick_subnet()) {
        fprintf(stderr, "FAIL: no free 10.77.X.0/24 for the test's bridge\n");
        return 1;
    }
    for (int i = 0; i < NHOSTS; i++) {
        snprintf(g_ns[i], sizeof g_ns[i], "%s-%d", g_tag, i);
        snprintf(g_veth[i], sizeof g_veth[i], "%.12sv%d", g_tag, i % 10);
    }
    if (ipcmd(false, "netns add %s", g_ns[0]) != 0) {
        fprintf(stderr, "SKIP: cannot create a network namespace (`ip netns add` failed: no ip(8), or no "
                        "network namespace support here)\n");
        return EG_TEST_SKIP;
    }
    g_made_ns[0] = true;
    if (ipcmd(false, "link add %s type bridge", g_bridge) != 0)
        return 1;
    g_made_bridge = true;
    if (ipcmd(false, "addr add %s.1/24 dev %s", g_net, g_bridge) || ipcmd(false, "link set %s up", g_bridge))
        return 1;
    for (int i = 0; i < NHOSTS; i++) {
        if (i > 0) {
            if (ipcmd(false, "netns add %s", g_ns[i]) != 0)
                return 1;
            g_made_ns[i] = true;
        }
        if (ipcmd(false, "link add %s type veth peer name eth0 netns %s", g_veth[i], g_ns[i]) ||
            ipcmd(false, "link set %s master %s up", g_veth[i], g_bridge) ||
            ipcmd(false, "-n %s addr add %s/24 dev eth0", g_ns[i], host_ip(i)) ||
            ipcmd(false, "-n %s link set eth0 up", g_ns[i]) || ipcmd(false, "-n %s link set lo up", g_ns[i]))
            return 1;
    }
    return 0;
}

/* The link down or up, from the root side (SIOCSIFFLAGS: immediate, no fork). */
static int link_set(const char *ifname, bool up)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        if (up)
            ifr.ifr_flags |= IFF_UP;
        else
            ifr.ifr_flags &= ~IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    return rc;
}

static pid_t spawn_worker(const efx *f, int host, const char *neo4j_uri, const char *base_url, const char *logpath)
{
    const char *bin = getenv("ENGRAM_BIN");
    char nspath[128];
    snprintf(nspath, sizeof nspath, NS_DIR "/%s", g_ns[host]);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* a test killed with SIGKILL takes its hosts' workers with it */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(125);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0)
        _exit(126);
    efx_child_log(logpath);
    efx_child_env(f, base_url);
    setenv("NEO4J_URI", neo4j_uri, 1);
    /* the provider answer stalled by the cut must still be awaited when the link returns */
    setenv("ENGRAM_EMBED_TIMEOUT_MS", "90000", 1);
    /* Under load the quiet moment below is best effort: a cut that lands in
     * one of A's transactions holds its locks (the queue mutex, in a lease)
     * only until the server ends it, not for the whole outage. */
    setenv("ENGRAM_QUEUE_TX_TIMEOUT_MS", "3000", 1);
    execl(bin, bin, "worker", "--concurrency", "2", "--batch", "10", "--no-health", "--drain", "--max-seconds", "150",
          (char *)NULL);
    _exit(127);
}

/* ---- what the logs say ---- */

typedef struct host_log {
    efx_ids completed;  /* "job completed job=<id>" */
    int refused;        /* "lease lost before completion": a late completion the fence refused */
    int lost_heartbeat; /* "lease lost (heartbeat)" */
    long requeued;      /* sum of "reclaimed expired leases requeued=K" */
} host_log;

static void read_log(const char *path, host_log *h)
{
    efx_log_completions(path, &h->completed);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char line[4096];
    while (fgets(line, sizeof line, fp)) {
        char *p;
        if (strstr(line, "lease lost before completion"))
            h->refused++;
        else if (strstr(line, "lease lost (heartbeat)"))
            h->lost_heartbeat++;
        else if (strstr(line, "reclaimed expired leases") && (p = strstr(line, "requeued=")))
            h->requeued += strtol(p + strlen("requeued="), NULL, 10);
    }
    fclose(fp);
}

/* ---- queries ---- */

typedef struct qwork {
    const char *cypher;
    bolt_params *p;
    json_t *rows;
} qwork;

static int q_fn(bolt_conn *c, void *payload, eg_error *err)
{
    qwork *w = payload;
    json_decref(w->rows);
    w->rows = NULL;
    return bolt_conn_query_json(c, w->cypher, w->p, NULL, &w->rows, err);
}

/* Rows of cypher with $q = the fixture's queue and $tag (new reference; NULL on failure). */
static json_t *query(efx *f, const char *cypher, const char *tag)
{
    qwork w = {cypher, bolt_params_new(), NULL};
    bolt_params_str(w.p, "q", f->queue);
    bolt_params_str(w.p, "tag", tag);
    eg_error err = {0};
    if (bolt_pool_execute_read(f->pool, NULL, NULL, q_fn, &w, &err)) {
        fprintf(stderr, "query failed: %s\n", err.message);
        json_decref(w.rows);
        w.rows = NULL;
    }
    bolt_params_free(w.p);
    return w.rows;
}

/* The jobs leased by the worker whose owner contains tag (":<pid>:"); false if the query failed. */
static bool leased_by(efx *f, const char *tag, efx_ids *out)
{
    json_t *rows = query(f,
                         "MATCH (j:EmbedJob) WHERE j.queue = $q AND j.state = 'leased' AND j.leaseOwner CONTAINS $tag "
                         "RETURN j.id AS id",
                         tag);
    if (!rows)
        return false;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(rows, i), "id"));
        if (id)
            efx_ids_add(out, id, strlen(id));
    }
    json_decref(rows);
    return true;
}

/* ---- the scenario ---- */

static void wait_exit(pid_t pid, int64_t deadline, int *status)
{
    while (eg_mono_ms() < deadline) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        eg_sleep_ms(100);
    }
    fprintf(stderr, "worker %d did not exit in time: killed\n", (int)pid);
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
}

static void test_worker_hosts__link_cut_mid_batch(void **state)
{
    (void)state;
    if (!getenv("ENGRAM_BIN")) {
        fprintf(stderr, "SKIP: ENGRAM_BIN not set (run through ctest)\n");
        skip_rc = 77;
        skip();
    }
    efx f;
    queue_opts qo = QUEUE_OPTS_INIT;
    int rc = efx_open(&f, "hosts", "text-embedding-3-small", &qo, 4);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    /* The test Neo4j's address (bolt://HOST:PORT, on loopback) for the relay. */
    const char *uri = getenv("ENGRAM_TEST_NEO4J_URI");
    const char *hp = strstr(uri, "://");
    const char *colon = hp ? strrchr(hp + 3, ':') : NULL;
    if (!colon)
        fail_msg("cannot read host:port from ENGRAM_TEST_NEO4J_URI=%s", uri);
    char neo_host[64], scheme[16];
    snprintf(scheme, sizeof scheme, "%.*s", (int)(hp - uri), uri);
    snprintf(neo_host, sizeof neo_host, "%.*s", (int)(colon - hp - 3), hp + 3);
    if (!strcmp(neo_host, "localhost"))
        snprintf(neo_host, sizeof neo_host, "127.0.0.1");
    int neo_port = (int)strtol(colon + 1, NULL, 10);

    const int N = 900;
    assert_int_equal(efx_create_range(&f, 0, N, NULL, 0), 0);
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 1000};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);

    char bridge_ip[20], allow[20];
    snprintf(bridge_ip, sizeof bridge_ip, "%s.1", g_net);
    snprintf(allow, sizeof allow, "%s.0", g_net);
    tcp_relay *neo_relay = NULL, *prov_relay = NULL;
    assert_int_equal(tcp_relay_start(&neo_relay, bridge_ip, neo_host, neo_port, allow, 24), 0);
    /* the fake provider's port, from its URL "http://127.0.0.1:PORT/v1" */
    const char *purl = fake_embed_openai_url(srv);
    int prov_port = (int)strtol(strrchr(purl, ':') + 1, NULL, 10);
    assert_int_equal(tcp_relay_start(&prov_relay, bridge_ip, "127.0.0.1", prov_port, allow, 24), 0);
    char neo_uri[128], prov_url[128];
    snprintf(neo_uri, sizeof neo_uri, "%s://%s:%d", scheme, bridge_ip, tcp_relay_port(neo_relay));
    snprintf(prov_url, sizeof prov_url, "http://%s:%d/v1", bridge_ip, tcp_relay_port(prov_relay));

    const char *dir = eg_testenv_tmpdir("hosts");
    fprintf(stderr, "worker logs in %s (removed if the test passes)\n", dir);
    char logs[NHOSTS][512];
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < NHOSTS; i++) {
        snprintf(logs[i], sizeof logs[i], "%s/worker-%c.log", dir, 'a' + i);
        g_workers[i] = spawn_worker(&f, i, neo_uri, prov_url, logs[i]);
        assert_true(g_workers[i] > 0);
    }
    char atag[32];
    snprintf(atag, sizeof atag, ":%d:", (int)g_workers[0]);

    /* 1. running on every host, A holding leases */
    int64_t counts[QUEUE_STATE_COUNT] = {0};
    efx_ids a_leased = {0};
    for (int64_t end = eg_mono_ms() + 60000; eg_mono_ms() < end;) {
        assert_int_equal(efx_counts(&f, counts), 0);
        efx_ids_free(&a_leased);
        leased_by(&f, atag, &a_leased);
        if (counts[QUEUE_COMPLETED] >= 60 && a_leased.n > 0)
            break;
        eg_sleep_ms(100);
    }
    efx_ids_free(&a_leased);
    if (counts[QUEUE_COMPLETED] < 60)
        fail_msg("the hosts did not get going: %lld completed", (long long)counts[QUEUE_COMPLETED]);

    /* 2. cut A's link while A waits on the provider and has no database
     * round trip open (a transaction left open would hold its locks on
     * the server, which is another scenario) */
    tcp_relay_peer np, pp;
    bool moment = false;
    for (int64_t end = eg_mono_ms() + 10000; eg_mono_ms() < end && !moment;) {
        tcp_relay_peer_get(prov_relay, host_ip(0), &pp);
        tcp_relay_peer_get(neo_relay, host_ip(0), &np);
        moment = pp.awaiting > 0 && np.awaiting == 0 && np.quiet_ms >= 25;
        if (!moment)
            eg_sleep_ms(1);
    }
    assert_int_equal(link_set(g_veth[0], false), 0);
    int64_t t_cut = eg_mono_ms();
    if (!moment)
        fprintf(stderr, "note: no quiet moment found in 10 s; cut anyway\n");
    assert_int_equal(efx_counts(&f, counts), 0);
    int64_t completed_at_cut = counts[QUEUE_COMPLETED];
    efx_ids cut_jobs = {0};
    assert_true(leased_by(&f, atag, &cut_jobs));
    efx_ids_sort(&cut_jobs);

    /* 3. the other hosts requeue A's leases once they expire; bring A back
     * when none is leased to it any more (bounded) */
    int64_t reclaim_ms = -1;
    for (int64_t end = eg_mono_ms() + 30000; eg_mono_ms() < end;) {
        efx_ids still = {0};
        bool ok = leased_by(&f, atag, &still);
        size_t n = still.n;
        efx_ids_free(&still);
        if (ok && n == 0) {
            reclaim_ms = eg_mono_ms() - t_cut;
            break;
        }
        eg_sleep_ms(100);
    }
    assert_int_equal(efx_counts(&f, counts), 0);
    int64_t completed_at_return = counts[QUEUE_COMPLETED];
    assert_int_equal(link_set(g_veth[0], true), 0);
    int64_t t_back = eg_mono_ms();

    /* 4. every host drains the queue and exits */
    int st[NHOSTS] = {0};
    for (int i = 0; i < NHOSTS; i++) {
        wait_exit(g_workers[i], t_back + 120000, &st[i]);
        g_workers[i] = 0;
    }
    int64_t total_ms = eg_mono_ms() - t0;

    host_log h[NHOSTS];
    memset(h, 0, sizeof h);
    efx_ids all = {0};
    for (int i = 0; i < NHOSTS; i++) {
        read_log(logs[i], &h[i]);
        for (size_t k = 0; k < h[i].completed.n; k++)
            efx_ids_add(&all, h[i].completed.v[k], strlen(h[i].completed.v[k]));
    }
    efx_ids_sort(&all);
    size_t distinct = efx_ids_distinct(&all);
    /* who finished the jobs A held at the cut */
    size_t cut_done_by_others = 0;
    for (int i = 1; i < NHOSTS; i++) {
        efx_ids_sort(&h[i].completed);
        for (size_t k = 0; k < cut_jobs.n; k++)
            cut_done_by_others += efx_ids_has(&h[i].completed, cut_jobs.v[k]);
    }
    /* the job history: requeued from A's expired lease, now completed */
    json_t *hist = query(&f,
                         "MATCH (j:EmbedJob) WHERE j.queue = $q AND j.lastErrorCategory = 'expired' "
                         "  AND j.lastError CONTAINS $tag RETURN j.id AS id, j.state AS s",
                         atag);
    size_t requeued_from_a = json_array_size(hist), requeued_from_a_completed = 0, cut_in_history = 0;
    for (size_t i = 0; i < json_array_size(hist); i++) {
        json_t *row = json_array_get(hist, i);
        const char *s = json_string_value(json_object_get(row, "s"));
        const char *id = json_string_value(json_object_get(row, "id"));
        requeued_from_a_completed += s && !strcmp(s, "completed");
        cut_in_history += id && efx_ids_has(&cut_jobs, id);
    }
    json_decref(hist);

    assert_int_equal(efx_counts(&f, counts), 0);
    efx_report rep;
    assert_int_equal(efx_check(&f, &rep), 0);
    int64_t lost = (N - counts[QUEUE_COMPLETED]) + (rep.entities - rep.with_current_vector);
    long requeued_by_others = h[1].requeued + h[2].requeued;
    fake_embed_stats fs;
    fake_embed_stats_get(srv, &fs);
    printf("stress: hosts_link_cut jobs=%d duplicates=%zu lost=%lld completed=%lld dead=%lld hosts=%d "
           "leased_at_cut=%zu requeued_by_others=%ld requeued_from_cut_host=%zu cut_jobs_completed_by_others=%zu "
           "refused_late_completions=%d lost_heartbeat_reports=%d completed_per_host=%zu/%zu/%zu "
           "completed_at_cut=%lld completed_at_return=%lld reclaim_seconds=%.1f outage_seconds=%.1f "
           "total_seconds=%.1f provider_requests=%llu quiet_cut=%d\n",
           N, all.n - distinct, (long long)lost, (long long)counts[QUEUE_COMPLETED], (long long)counts[QUEUE_DEAD],
           NHOSTS, cut_jobs.n, requeued_by_others, requeued_from_a, cut_done_by_others, h[0].refused,
           h[0].lost_heartbeat, h[0].completed.n, h[1].completed.n, h[2].completed.n, (long long)completed_at_cut,
           (long long)completed_at_return, (double)reclaim_ms / 1000.0, (double)(t_back - t_cut) / 1000.0,
           (double)total_ms / 1000.0, (unsigned long long)fs.requests, moment);
    fflush(stdout);
    for (int i = 0; i < NHOSTS; i++) {
        if (!WIFEXITED(st[i]) || WEXITSTATUS(st[i]) != 0)
            fprintf(stderr, "host %c: worker status 0x%x (log %s)\n", 'a' + i, st[i], logs[i]);
        assert_true(WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 0);
    }
    assert_true(cut_jobs.n > 0); /* A was mid-batch */
    assert_true(completed_at_cut < N);
    assert_true(reclaim_ms >= 0);                        /* its leases expired and were requeued ... */
    assert_true(requeued_by_others >= (long)cut_jobs.n); /* ... by the other hosts (A was cut off) */
    assert_int_equal(cut_in_history, cut_jobs.n);        /* each names A's expired lease */
    assert_int_equal(requeued_from_a_completed, requeued_from_a);
    assert_true(h[0].refused > 0); /* A's late completion refused by the fence */
    assert_int_equal(counts[QUEUE_COMPLETED], N);
    assert_int_equal(counts[QUEUE_DEAD], 0);
    assert_int_equal(all.n - distinct, 0);
    assert_int_equal(distinct, (size_t)N);
    assert_int_equal(lost, 0);

    for (int i = 0; i < NHOSTS; i++)
        efx_ids_free(&h[i].completed);
    efx_ids_free(&all);
    efx_ids_free(&cut_jobs);
    tcp_relay_stop(prov_relay);
    tcp_relay_stop(neo_relay);
    fake_embed_stop(srv);
    efx_close(&f);
    eg_testenv_rmtree(dir); /* passed: the worker logs are not needed */
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    atexit(cleanup);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGHUP, on_signal);
    rc = make_hosts();
    if (rc) {
        cleanup();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_hosts__link_cut_mid_batch),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    cleanup();
    return rc ? rc : skip_rc;
}
