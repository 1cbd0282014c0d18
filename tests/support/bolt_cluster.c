/*
 * bolt_cluster.c - see bolt_cluster.h.
 *
 * One accept thread per member; one thread per client connection, which owns
 * the client socket and its upstream socket.  Live sockets are registered
 * under the cluster mutex so that "drop" and "down" can shutdown() them from
 * the test thread (which wakes the blocked relay thread; the relay thread
 * alone closes them).  free() waits until every relay thread has gone.
 */
#include "support/bolt_cluster.h"

#include "bolt/chunk.h"
#include "bolt/packstream.h"
#include "bolt/uri.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 256

typedef struct member {
    bolt_cluster *cl;
    int idx;
    char ip[16];
    int port;
    char address[32];
    int lfd;               /* -1 while down */
    bool down, follower;   /* under cl->mu */
    bool stall_commits;    /* under cl->mu: hold every COMMIT (bolt_cluster_stall_commits) */
    pthread_t acc;
} member;

typedef struct live {
    int member, cfd, ufd;
} live;

struct bolt_cluster {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    member m[BOLT_CLUSTER_MAX];
    char up_host[64];
    int up_port;
    char *table;           /* JSON of the ROUTE reply metadata, under mu */
    live conns[MAX_CONNS];
    int nthreads;          /* relay threads alive */
    atomic_bool stop;
    atomic_uint_fast64_t routes, refusals;
    atomic_uint_fast64_t stalled; /* COMMITs held now */
};

/* ---------------------------------------------------------- socket I/O */

static int read_exact(int fd, void *dst, size_t n)
{
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const void *src, size_t n)
{
    const uint8_t *p = src;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One message: `raw` gets the framed bytes (to relay), `msg` the payload. */
static int read_msg(int fd, eg_buf *raw, eg_buf *msg)
{
    eg_buf_reset(raw);
    eg_buf_reset(msg);
    for (;;) {
        uint8_t h[2];
        if (read_exact(fd, h, 2) < 0)
            return -1;
        size_t n = ((size_t)h[0] << 8) | h[1];
        if (eg_buf_append(raw, h, 2) < 0)
            return -1;
        if (n == 0) {
            if (msg->len == 0) {
                eg_buf_reset(raw); /* NOOP */
                continue;
            }
            return 0;
        }
        if (eg_buf_reserve(msg, n) < 0)
            return -1;
        if (read_exact(fd, msg->ptr + msg->len, n) < 0)
            return -1;
        if (eg_buf_append(raw, msg->ptr + msg->len, n) < 0)
            return -1;
        msg->len += n;
    }
}

static int send_reply(int fd, uint8_t sig, const json_t *meta)
{
    eg_buf m = EG_BUF_INIT(1u << 20), out = EG_BUF_INIT(1u << 21);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &m);
    bolt_ps_struct_begin(&w, sig, meta ? 1 : 0);
    if (meta)
        bolt_ps_json(&w, meta);
    int rc = bolt_ps_writer_error(&w) == 0 && bolt_chunk_frame(&out, m.ptr, m.len) == 0 ? 0 : -1;
    if (rc == 0)
        rc = write_all(fd, out.ptr, out.len);
    eg_buf_free(&m);
    eg_buf_free(&out);
    return rc;
}

static int connect_upstream(bolt_cluster *cl)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cl->up_port)};
    inet_pton(AF_INET, cl->up_host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------- the relay */

enum { SIG_RESET = 0x0F, SIG_RUN = 0x10, SIG_BEGIN = 0x11, SIG_COMMIT = 0x12, SIG_ROLLBACK = 0x13,
       SIG_GOODBYE = 0x02, SIG_ROUTE = 0x66, SIG_SUCCESS = 0x70, SIG_RECORD = 0x71, SIG_IGNORED = 0x7E,
       SIG_FAILURE = 0x7F };

static bool wants_read(const eg_buf *msg)
{
    static const char mode_r[] = "\x84mode\x81r"; /* PackStream "mode": "r" */
    return memmem(msg->ptr, msg->len, mode_r, sizeof mode_r - 1) != NULL;
}

typedef struct relay_arg {
    bolt_cluster *cl;
    int member, slot;
} relay_arg;

static void unregister(bolt_cluster *cl, int slot)
{
    pthread_mutex_lock(&cl->mu);
    if (cl->conns[slot].cfd >= 0)
        close(cl->conns[slot].cfd);
    if (cl->conns[slot].ufd >= 0)
        close(cl->conns[slot].ufd);
    cl->conns[slot] = (live){-1, -1, -1};
    cl->nthreads--;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

static void *relay(void *p)
{
    relay_arg a = *(relay_arg *)p;
    eg_free(p);
    bolt_cluster *cl = a.cl;
    int cfd = cl->conns[a.slot].cfd, ufd = cl->conns[a.slot].ufd;
    eg_buf raw = EG_BUF_INIT(1u << 26), msg = EG_BUF_INIT(1u << 26);
    eg_buf rraw = EG_BUF_INIT(1u << 26), rmsg = EG_BUF_INIT(1u << 26);
    uint8_t hs[20], v[4];
    bool failed = false, in_tx = false;
    if (read_exact(cfd, hs, 20) < 0 || write_all(ufd, hs, 20) < 0 || read_exact(ufd, v, 4) < 0 ||
        write_all(cfd, v, 4) < 0)
        goto out;
    while (!atomic_load(&cl->stop)) {
        if (read_msg(cfd, &raw, &msg) < 0 || msg.len < 2)
            break;
        uint8_t sig = (uint8_t)msg.ptr[1];
        if (sig == SIG_GOODBYE)
            break;
        if (sig == SIG_ROUTE) {
            pthread_mutex_lock(&cl->mu);
            json_t *t = json_loads(cl->table, 0, NULL);
            pthread_mutex_unlock(&cl->mu);
            atomic_fetch_add(&cl->routes, 1);
            int rc = failed ? send_reply(cfd, SIG_IGNORED, NULL) : send_reply(cfd, SIG_SUCCESS, t);
            json_decref(t);
            if (rc < 0)
                break;
            continue;
        }
        if (failed) {
            /* After our own FAILURE: IGNORED until RESET, as a server does. */
            if (sig == SIG_RESET) {
                failed = false;
                json_t *empty = json_object();
                int rc = send_reply(cfd, SIG_SUCCESS, empty);
                json_decref(empty);
                if (rc < 0)
                    break;
                continue;
            }
            if (send_reply(cfd, SIG_IGNORED, NULL) < 0)
                break;
            continue;
        }
        pthread_mutex_lock(&cl->mu);
        bool follower = cl->m[a.member].follower, stall = cl->m[a.member].stall_commits;
        pthread_mutex_unlock(&cl->mu);
        if (stall && sig == SIG_COMMIT) {
            /* A link that died between the last statement and COMMIT: the
             * server keeps the transaction open, locks and all, and hears
             * nothing more.  Once released, the connection is cut. */
            atomic_fetch_add(&cl->stalled, 1);
            while (stall && !atomic_load(&cl->stop)) {
                eg_sleep_ms(10);
                pthread_mutex_lock(&cl->mu);
                stall = cl->m[a.member].stall_commits;
                pthread_mutex_unlock(&cl->mu);
            }
            atomic_fetch_sub(&cl->stalled, 1);
            break;
        }
        bool write_start = (sig == SIG_BEGIN || (sig == SIG_RUN && !in_tx)) && !wants_read(&msg);
        if (follower && write_start) {
            atomic_fetch_add(&cl->refusals, 1);
            json_t *f = json_pack("{s:s, s:s, s:s}", "code", "Neo.ClientError.Cluster.NotALeader", "neo4j_code",
                                  "Neo.ClientError.Cluster.NotALeader", "message",
                                  "No write operations are allowed on this database. This is a read only "
                                  "Neo4j instance.");
            int rc = send_reply(cfd, SIG_FAILURE, f);
            json_decref(f);
            if (rc < 0)
                break;
            failed = true;
            continue;
        }
        if (write_all(ufd, raw.ptr, raw.len) < 0)
            break;
        if (sig == SIG_BEGIN)
            in_tx = true;
        else if (sig == SIG_COMMIT || sig == SIG_ROLLBACK || sig == SIG_RESET)
            in_tx = false;
        /* Relay replies up to this request's summary. */
        uint8_t rs;
        do {
            if (read_msg(ufd, &rraw, &rmsg) < 0 || rmsg.len < 2 || write_all(cfd, rraw.ptr, rraw.len) < 0)
                goto out;
            rs = (uint8_t)rmsg.ptr[1];
        } while (rs == SIG_RECORD);
        if (rs == SIG_FAILURE && in_tx && sig != SIG_RESET)
            in_tx = false; /* the server rolled it back */
    }
out:
    eg_buf_free(&raw);
    eg_buf_free(&msg);
    eg_buf_free(&rraw);
    eg_buf_free(&rmsg);
    unregister(cl, a.slot);
    return NULL;
}

/* ---------------------------------------------------------- listening */

static int listen_on(member *m)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)m->port)};
    inet_pton(AF_INET, m->ip, &a.sin_addr);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        close(fd);
        return -1;
    }
    m->port = ntohs(a.sin_port);
    return fd;
}

static void *acceptor(void *p)
{
    member *m = p;
    bolt_cluster *cl = m->cl;
    while (!atomic_load(&cl->stop)) {
        pthread_mutex_lock(&cl->mu);
        int lfd = m->lfd;
        pthread_mutex_unlock(&cl->mu);
        if (lfd < 0) {
            eg_sleep_ms(20);
            continue;
        }
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        pthread_mutex_lock(&cl->mu);
        /* The listener may have been closed (down) while polling. */
        int cfd = m->lfd == lfd && !m->down ? accept(lfd, NULL, NULL) : -1;
        pthread_mutex_unlock(&cl->mu);
        if (cfd < 0)
            continue;
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int ufd = connect_upstream(cl);
        if (ufd < 0) {
            close(cfd);
            continue;
        }
        pthread_mutex_lock(&cl->mu);
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++)
            if (cl->conns[i].cfd < 0)
                slot = i;
        relay_arg *ra = slot >= 0 ? eg_malloc(sizeof *ra) : NULL;
        pthread_t t;
        if (ra) {
            cl->conns[slot] = (live){m->idx, cfd, ufd};
            *ra = (relay_arg){cl, m->idx, slot};
            cl->nthreads++;
            if (pthread_create(&t, NULL, relay, ra) == 0) {
                pthread_detach(t);
            } else {
                cl->conns[slot] = (live){-1, -1, -1};
                cl->nthreads--;
                eg_free(ra);
                ra = NULL;
            }
        }
        pthread_mutex_unlock(&cl->mu);
        if (!ra) {
            close(cfd);
            close(ufd);
        }
    }
    return NULL;
}

/* Under mu: wake every relay of member i (or all when i < 0). */
static void cut_locked(bolt_cluster *cl, int i)
{
    for (int k = 0; k < MAX_CONNS; k++) {
        if (cl->conns[k].cfd >= 0 && (i < 0 || cl->conns[k].member == i)) {
            shutdown(cl->conns[k].cfd, SHUT_RDWR);
            shutdown(cl->conns[k].ufd, SHUT_RDWR);
        }
    }
}

/* ---------------------------------------------------------- public */

bolt_cluster *bolt_cluster_new(const char *upstream_uri, int n)
{
    if (n < 1 || n > BOLT_CLUSTER_MAX)
        return NULL;
    bolt_uri u;
    eg_error err;
    if (bolt_uri_parse(&u, upstream_uri, &err) != 0) {
        fprintf(stderr, "bolt_cluster: %s\n", err.message);
        return NULL;
    }
    bolt_cluster *cl = eg_calloc(1, sizeof *cl);
    if (!cl) {
        bolt_uri_clear(&u);
        return NULL;
    }
    snprintf(cl->up_host, sizeof cl->up_host, "%s", strcmp(u.host, "localhost") == 0 ? "127.0.0.1" : u.host);
    cl->up_port = u.port;
    bolt_uri_clear(&u);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cv, NULL);
    for (int k = 0; k < MAX_CONNS; k++)
        cl->conns[k] = (live){-1, -1, -1};
    cl->n = n;
    /* Every member on the same port (a name that moves between members, as
     * DNS does, keeps its port): member 0 picks it, the others follow; on a
     * clash start over with a new one. */
    bool ok = false;
    for (int attempt = 0; attempt < 10 && !ok; attempt++) {
        ok = true;
        for (int i = 0; i < n && ok; i++) {
            member *m = &cl->m[i];
            m->cl = cl;
            m->idx = i;
            snprintf(m->ip, sizeof m->ip, "127.0.0.%d", 2 + i);
            m->port = i == 0 ? 0 : cl->m[0].port;
            m->lfd = listen_on(m);
            if (m->lfd < 0) {
                ok = false;
                for (int k = 0; k < i; k++)
                    close(cl->m[k].lfd);
            }
        }
    }
    if (!ok) {
        fprintf(stderr, "bolt_cluster: cannot listen on 127.0.0.2-%d on one port: %s\n", 1 + n, strerror(errno));
        pthread_mutex_destroy(&cl->mu);
        pthread_cond_destroy(&cl->cv);
        eg_free(cl);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        member *m = &cl->m[i];
        char ip[16];
        memcpy(ip, m->ip, sizeof ip); /* a separate source keeps -Wrestrict quiet */
        snprintf(m->address, sizeof m->address, "%s:%d", ip, m->port);
    }
    unsigned all = (1u << n) - 1;
    bolt_cluster_set_table(cl, 300, all, all, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&cl->m[i].acc, NULL, acceptor, &cl->m[i]);
    return cl;
}

void bolt_cluster_free(bolt_cluster *cl)
{
    if (!cl)
        return;
    atomic_store(&cl->stop, true);
    for (int i = 0; i < cl->n; i++)
        pthread_join(cl->m[i].acc, NULL);
    pthread_mutex_lock(&cl->mu);
    for (int i = 0; i < cl->n; i++)
        if (cl->m[i].lfd >= 0)
            close(cl->m[i].lfd);
    cut_locked(cl, -1);
    while (cl->nthreads > 0)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->cv);
    eg_free(cl->table);
    eg_free(cl);
}

const char *bolt_cluster_address(const bolt_cluster *cl, int i)
{
    return cl->m[i].address;
}

static json_t *addrs(const bolt_cluster *cl, unsigned mask)
{
    json_t *a = json_array();
    for (int i = 0; i < cl->n; i++)
        if (mask & (1u << i))
            json_array_append_new(a, json_string(cl->m[i].address));
    return a;
}

void bolt_cluster_set_table(bolt_cluster *cl, int ttl_s, unsigned routers, unsigned readers, int writer)
{
    json_t *t = json_pack("{s:{s:i, s:s, s:[{s:s, s:o}, {s:s, s:o}, {s:s, s:o}]}}", "rt", "ttl", ttl_s, "db",
                          "neo4j", "servers", "role", "ROUTE", "addresses", addrs(cl, routers), "role", "READ",
                          "addresses", addrs(cl, readers), "role", "WRITE", "addresses",
                          addrs(cl, writer >= 0 ? 1u << writer : 0));
    char *s = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    pthread_mutex_lock(&cl->mu);
    eg_free(cl->table);
    cl->table = s;
    for (int i = 0; i < cl->n; i++)
        cl->m[i].follower = i != writer;
    pthread_mutex_unlock(&cl->mu);
}

void bolt_cluster_set_down(bolt_cluster *cl, int i, bool down)
{
    pthread_mutex_lock(&cl->mu);
    member *m = &cl->m[i];
    if (down && !m->down) {
        m->down = true;
        close(m->lfd);
        m->lfd = -1;
        cut_locked(cl, i);
    } else if (!down && m->down) {
        m->lfd = listen_on(m); /* same port (SO_REUSEADDR) */
        if (m->lfd < 0)
            fprintf(stderr, "bolt_cluster: cannot listen again on %s: %s\n", m->address, strerror(errno));
        m->down = false;
    }
    pthread_mutex_unlock(&cl->mu);
}

void bolt_cluster_drop(bolt_cluster *cl, int i)
{
    pthread_mutex_lock(&cl->mu);
    cut_locked(cl, i);
    pthread_mutex_unlock(&cl->mu);
}

void bolt_cluster_stall_commits(bolt_cluster *cl, int i, bool on)
{
    pthread_mutex_lock(&cl->mu);
    cl->m[i].stall_commits = on;
    pthread_mutex_unlock(&cl->mu);
}

uint64_t bolt_cluster_stalled(const bolt_cluster *cl)
{
    return atomic_load(&((bolt_cluster *)cl)->stalled);
}

bool bolt_cluster_one_stalled(void *cl)
{
    return bolt_cluster_stalled(cl) == 1;
}

int bolt_cluster_member_pool(const bolt_cluster *cl, int i, const bolt_config *base, size_t max,
                             bolt_pool **out, eg_error *err)
{
    char uri[64];
    snprintf(uri, sizeof uri, "bolt://%s", bolt_cluster_address(cl, i));
    bolt_config cfg = *base;
    cfg.uri = uri; /* bolt_pool_new copies what it keeps */
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = max;
    return bolt_pool_new(out, &cfg, &po, err);
}

uint64_t bolt_cluster_routes(const bolt_cluster *cl)
{
    return atomic_load(&((bolt_cluster *)cl)->routes);
}

uint64_t bolt_cluster_refusals(const bolt_cluster *cl)
{
    return atomic_load(&((bolt_cluster *)cl)->refusals);
}

int bolt_cluster_port(const bolt_cluster *cl)
{
    return cl->m[0].port;
}

void bolt_cluster_contend(bolt_cluster *cl, void *(*run_a)(void *), void *a, void *(*run_b)(void *), void *b,
                          bool (*b_done)(void *), bolt_cluster_contention *out)
{
    bolt_cluster_stall_commits(cl, 0, true);
    pthread_t ta, tb;
    bool a_started = pthread_create(&ta, NULL, run_a, a) == 0;
    out->stalled = a_started && eg_testenv_wait(bolt_cluster_one_stalled, cl, 20000);
    int64_t t0 = eg_mono_ms();
    bool b_started = pthread_create(&tb, NULL, run_b, b) == 0;
    /* The server checks timeouts every 2 s by default: a few seconds. */
    out->b_done = b_started && out->stalled && eg_testenv_wait(b_done, b, 20000);
    out->waited_ms = eg_mono_ms() - t0;
    /* Release a's link either way (cut), so both threads end. */
    bolt_cluster_stall_commits(cl, 0, false);
    if (b_started)
        pthread_join(tb, NULL);
    if (a_started)
        pthread_join(ta, NULL);
}
