/*
 * tcp_relay.c - see tcp_relay.h.
 */
#include "support/tcp_relay.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { DIR_NONE, DIR_TO_SERVER, DIR_TO_CLIENT };

typedef struct relay_conn {
    struct tcp_relay *r;
    int cfd, sfd;
    uint32_t peer;           /* network order */
    _Atomic int64_t last_ms; /* eg_mono_ms of the last byte copied */
    atomic_int last_dir;
    atomic_bool done;
    pthread_t th;
    struct relay_conn *next;
} relay_conn;

struct tcp_relay {
    int lfd, port;
    int wake[2]; /* written once by stop: every poll sees it readable */
    struct sockaddr_in target;
    uint32_t net, mask; /* host order */
    pthread_t acc;
    pthread_mutex_t mu;
    relay_conn *conns; /* under mu; freed by stop */
    atomic_bool stopping;
};

/* Send all of buf; false when the socket is gone (or stop shut it down). */
static bool send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

static void *pump(void *arg)
{
    relay_conn *c = arg;
    char *buf = eg_malloc(65536);
    while (buf && !atomic_load(&c->r->stopping)) {
        struct pollfd p[3] = {{.fd = c->cfd, .events = POLLIN},
                              {.fd = c->sfd, .events = POLLIN},
                              {.fd = c->r->wake[0], .events = POLLIN}};
        int n = poll(p, 3, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[2].revents)
            break;
        bool ok = true;
        for (int k = 0; k < 2 && ok; k++) {
            if (!p[k].revents)
                continue;
            ssize_t got = recv(p[k].fd, buf, 65536, 0);
            if (got < 0 && errno == EINTR)
                continue;
            ok = got > 0 && send_all(k == 0 ? c->sfd : c->cfd, buf, (size_t)got);
            if (ok) {
                atomic_store(&c->last_ms, eg_mono_ms());
                atomic_store(&c->last_dir, k == 0 ? DIR_TO_SERVER : DIR_TO_CLIENT);
            }
        }
        if (!ok)
            break;
    }
    eg_free(buf);
    /* Either side gone: end both (the fds are closed by stop, after the
     * join, so no other thread ever sees a reused descriptor). */
    shutdown(c->cfd, SHUT_RDWR);
    shutdown(c->sfd, SHUT_RDWR);
    atomic_store(&c->done, true);
    return NULL;
}

static void *acceptor(void *arg)
{
    tcp_relay *r = arg;
    while (!atomic_load(&r->stopping)) {
        struct pollfd p[2] = {{.fd = r->lfd, .events = POLLIN}, {.fd = r->wake[0], .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            break;
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int cfd = accept4(r->lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        if ((ntohl(peer.sin_addr.s_addr) & r->mask) != r->net) {
            close(cfd); /* not one of the test's hosts */
            continue;
        }
        int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sfd < 0 || connect(sfd, (struct sockaddr *)&r->target, sizeof r->target) != 0) {
            if (sfd >= 0)
                close(sfd);
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        relay_conn *c = eg_calloc(1, sizeof *c);
        if (!c) {
            close(sfd);
            close(cfd);
            continue;
        }
        c->r = r;
        c->cfd = cfd;
        c->sfd = sfd;
        c->peer = peer.sin_addr.s_addr;
        atomic_store(&c->last_ms, eg_mono_ms());
        pthread_mutex_lock(&r->mu);
        if (pthread_create(&c->th, NULL, pump, c) != 0) {
            pthread_mutex_unlock(&r->mu);
            close(sfd);
            close(cfd);
            eg_free(c);
            continue;
        }
        c->next = r->conns;
        r->conns = c;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

int tcp_relay_start(tcp_relay **out, const char *listen_ip, const char *target_ip, int target_port,
                    const char *allow_ip, int allow_prefix)
{
    *out = NULL;
    tcp_relay *r = eg_calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->lfd = -1;
    r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->mu, NULL);
    struct in_addr allow;
    struct sockaddr_in la = {.sin_family = AF_INET};
    r->target.sin_family = AF_INET;
    r->target.sin_port = htons((uint16_t)target_port);
    if (inet_pton(AF_INET, listen_ip, &la.sin_addr) != 1 || inet_pton(AF_INET, target_ip, &r->target.sin_addr) != 1 ||
        inet_pton(AF_INET, allow_ip, &allow) != 1 || allow_prefix < 1 || allow_prefix > 32) {
        fprintf(stderr, "tcp_relay: bad address\n");
        goto fail;
    }
    r->mask = allow_prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> allow_prefix);
    r->net = ntohl(allow.s_addr) & r->mask;
    socklen_t ll = sizeof la;
    int one = 1;
    if (pipe2(r->wake, O_CLOEXEC) != 0 || (r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(r->lfd, (struct sockaddr *)&la, sizeof la) != 0 || listen(r->lfd, 64) != 0 ||
        getsockname(r->lfd, (struct sockaddr *)&la, &ll) != 0) {
        fprintf(stderr, "tcp_relay: listen on %s: %s\n", listen_ip, strerror(errno));
        goto fail;
    }
    r->port = ntohs(la.sin_port);
    if (pthread_create(&r->acc, NULL, acceptor, r) != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    if (r->lfd >= 0)
        close(r->lfd);
    for (int k = 0; k < 2; k++)
        if (r->wake[k] >= 0)
            close(r->wake[k]);
    pthread_mutex_destroy(&r->mu);
    eg_free(r);
    return -1;
}

int tcp_relay_port(const tcp_relay *r) { return r->port; }

void tcp_relay_peer_get(tcp_relay *r, const char *peer_ip, tcp_relay_peer *out)
{
    memset(out, 0, sizeof *out);
    out->quiet_ms = -1;
    struct in_addr a;
    if (inet_pton(AF_INET, peer_ip, &a) != 1)
        return;
    int64_t now = eg_mono_ms();
    pthread_mutex_lock(&r->mu);
    for (relay_conn *c = r->conns; c; c = c->next) {
        if (c->peer != a.s_addr)
            continue;
        out->accepted++;
        if (atomic_load(&c->done))
            continue;
        out->conns++;
        if (atomic_load(&c->last_dir) == DIR_TO_SERVER)
            out->awaiting++;
        int64_t q = now - atomic_load(&c->last_ms);
        if (out->quiet_ms < 0 || q < out->quiet_ms)
            out->quiet_ms = q;
    }
    pthread_mutex_unlock(&r->mu);
}

void tcp_relay_stop(tcp_relay *r)
{
    if (!r)
        return;
    atomic_store(&r->stopping, true);
    char b = 1;
    if (write(r->wake[1], &b, 1) != 1)
        fprintf(stderr, "tcp_relay: wake: %s\n", strerror(errno));
    pthread_join(r->acc, NULL);
    /* The acceptor is gone: the list no longer changes.  Shut every socket
     * down so a pump blocked in send (a cut link) returns, then join. */
    for (relay_conn *c = r->conns; c; c = c->next) {
        shutdown(c->cfd, SHUT_RDWR);
        shutdown(c->sfd, SHUT_RDWR);
    }
    while (r->conns) {
        relay_conn *c = r->conns;
        r->conns = c->next;
        pthread_join(c->th, NULL);
        close(c->cfd);
        close(c->sfd);
        eg_free(c);
    }
    close(r->lfd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    eg_free(r);
}
