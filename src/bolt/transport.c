/*
 * transport.c - see transport.h.
 */
#include "bolt/transport.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct bolt_tr {
    int fd;              /* -1 for memory transports */
    SSL_CTX *ctx;
    SSL *ssl;
    int read_timeout_ms;
    bool eof_is_mem;
    uint8_t *rbuf;
    size_t rpos, rlen, rcap;
    uint64_t rx_total;   /* bytes ever received (plain text) */
    uint64_t owed_to;    /* stream position the peer has promised to reach (bolt_tr_expect) */
    size_t owed_replies; /* replies the peer still owes (bolt_tr_expect) */
    int lowat;           /* SO_RCVLOWAT last set (1: the kernel's default) */
    uint64_t waits;      /* reads that had to sleep in poll() */
    /* mid-stream spinning (spin_allows) */
    int spin_us;         /* upper bound of one spin; 0: never spin */
    int64_t last_rx_us;  /* monotonic time of the last bytes received */
    int64_t last_tx_us;  /* ... and of the last bytes sent */
    int64_t gap_avg_us;  /* moving average of the gaps between replies; 0: none seen */
    bool gap_pending;    /* a read found the socket empty mid-stream: time the gap */
};

static bolt_tr *tr_alloc(size_t cap)
{
    bolt_tr *t = eg_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fd = -1;
    t->rcap = cap;
    t->lowat = 1;
    t->rbuf = eg_malloc(cap ? cap : 1);
    if (!t->rbuf) {
        eg_free(t);
        return NULL;
    }
    return t;
}

void bolt_tr_free(bolt_tr *t)
{
    if (!t)
        return;
    if (t->ssl) {
        /* Best effort close_notify; never wait for the peer's. */
        if (SSL_is_init_finished(t->ssl)) {
            sigset_t set, old;
            sigemptyset(&set);
            sigaddset(&set, SIGPIPE);
            pthread_sigmask(SIG_BLOCK, &set, &old);
            SSL_shutdown(t->ssl);
            struct timespec zero = {0, 0};
            sigtimedwait(&set, NULL, &zero);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        SSL_free(t->ssl);
    }
    if (t->ctx)
        SSL_CTX_free(t->ctx);
    if (t->fd >= 0)
        close(t->fd);
    eg_free(t->rbuf);
    eg_free(t);
}

int bolt_tr_fd(const bolt_tr *t)
{
    return t ? t->fd : -1;
}

size_t bolt_tr_capacity(const bolt_tr *t)
{
    return t->rcap;
}

void bolt_tr_set_read_timeout(bolt_tr *t, int ms)
{
    t->read_timeout_ms = ms > 0 ? ms : 0;
}

/* Wait for `events` on fd; timeout_ms <= 0 waits forever.  Deadline based. */
static int wait_fd(int fd, short events, int64_t deadline, eg_error *err, const char *what)
{
    for (;;) {
        int tmo = -1;
        if (deadline > 0) {
            int64_t left = deadline - eg_mono_ms();
            if (left <= 0)
                return eg_error_set(err, EG_ETIMEOUT, EG_CLASS_CONNECTION, "timed out %s", what);
            tmo = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, tmo);
        if (n > 0)
            return 0;
        if (n == 0)
            continue; /* re-check the deadline */
        if (errno == EINTR)
            continue;
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "poll failed: %s", strerror(errno));
    }
}

static int64_t deadline_in(int ms)
{
    return ms > 0 ? eg_mono_ms() + ms : 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

/* One address: non-blocking connect + poll.  Returns fd or a negative code. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, eg_error *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "socket: %s", strerror(errno));
    if (set_nonblock(fd) < 0) {
        close(fd);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "fcntl: %s", strerror(errno));
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "connect: %s", strerror(e));
        }
        int rc = wait_fd(fd, POLLOUT, deadline, err, "connecting");
        if (rc < 0) {
            close(fd);
            return rc;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            close(fd);
            return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "connect: %s", strerror(soerr));
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;
}

static bool is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

static void ssl_errstr(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "connection closed by peer during the TLS handshake");
    ERR_clear_error();
}

/*
 * The extra CA bundle.  Read by us first: OpenSSL's own message for a
 * missing or unreadable file is a bare "system library" code.  A file
 * without a PEM certificate fails the load ("no certificate or crl found").
 */
static int load_ca_file(SSL_CTX *ctx, const char *path, eg_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "TLS: cannot read the CA file %s: %s", path,
                            strerror(errno));
    fclose(f);
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        char ebuf[256];
        ssl_errstr(ebuf, sizeof ebuf);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "TLS: cannot load the CA file %s: %s", path, ebuf);
    }
    return 0;
}

/*
 * The DNS names and IP addresses of the server certificate's
 * subjectAltName, comma separated (truncated to n), or "" when there are
 * none.  The handshake stopped at verification, so the session has no
 * verified peer yet: the certificate is the first of the chain it sent.
 */
static void cert_names(SSL *ssl, char *out, size_t n)
{
    out[0] = '\0';
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509 *leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
    GENERAL_NAMES *names = leaf ? X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL) : NULL;
    size_t len = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char one[INET6_ADDRSTRLEN + 1];
        if (g->type == GEN_DNS) {
            snprintf(one, sizeof one, "%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD && (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            if (!inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, one, sizeof one))
                continue;
        } else {
            continue;
        }
        int w = snprintf(out + len, n - len, "%s%s", len ? ", " : "", one);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    GENERAL_NAMES_free(names);
}

/*
 * The peer's certificate was refused.  Class client, not connection: a
 * new connection meets the same certificate, so retrying cannot help.  The
 * message names the host the certificate was checked against (and, for a
 * mismatch, the names it does carry).
 */
static int verify_failed(SSL *ssl, long vr, const char *host, eg_error *err)
{
    const char *why = X509_verify_cert_error_string(vr);
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        char names[256];
        cert_names(ssl, names, sizeof names);
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT,
                            "TLS: the server's certificate does not match the host %s (%s): it is for %s; "
                            "connect with a name the certificate carries",
                            host, why, names[0] ? names : "no DNS name or IP address");
    }
    if (vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
        vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT,
                            "TLS: the certificate of %s is not signed by a trusted CA (%s): "
                            "add its CA to the trusted certificates, or use +ssc to skip verification",
                            host, why);
    return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "TLS: the certificate of %s was refused: %s", host, why);
}

static int tls_start(bolt_tr *t, const bolt_uri *u, const bolt_tr_opts *opts, int64_t deadline,
                     eg_error *err)
{
    char ebuf[256];
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (u->tls == BOLT_TLS_VERIFY) {
        if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
            ssl_errstr(ebuf, sizeof ebuf);
            return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "TLS: cannot load system CA store: %s", ebuf);
        }
        if (opts->ca_file && *opts->ca_file) {
            int rc = load_ca_file(t->ctx, opts->ca_file, err);
            if (rc < 0)
                return rc;
        }
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    }
    t->ssl = SSL_new(t->ctx);
    if (!t->ssl)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "SSL_new failed");
    bool ip = is_ip_literal(u->host);
    if (!ip)
        SSL_set_tlsext_host_name(t->ssl, u->host);
    if (u->tls == BOLT_TLS_VERIFY) {
        int ok;
        if (ip)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), u->host);
        else
            ok = SSL_set1_host(t->ssl, u->host);
        if (ok != 1)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "TLS: cannot set expected host");
    }
    if (SSL_set_fd(t->ssl, t->fd) != 1)
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "SSL_set_fd failed");
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(t->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int rc = wait_fd(t->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err,
                             "during the TLS handshake");
            if (rc < 0)
                return rc;
            continue;
        }
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK)
            return verify_failed(t->ssl, vr, u->host, err);
        if (e == SSL_ERROR_SYSCALL && errno)
            snprintf(ebuf, sizeof ebuf, "%s", strerror(errno));
        else
            ssl_errstr(ebuf, sizeof ebuf);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION,
                            "TLS handshake failed (is TLS enabled on the server?): %s", ebuf);
    }
}

int bolt_tr_connect(bolt_tr **out, const bolt_uri *u, const bolt_tr_opts *opts, eg_error *err)
{
    *out = NULL;
    int cto = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    int64_t deadline = deadline_in(cto);
    char port[16];
    snprintf(port, sizeof port, "%d", u->port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int gai = getaddrinfo(u->host, port, &hints, &res);
    if (gai == EAI_ADDRFAMILY || gai == EAI_NONAME) {
        hints.ai_flags = 0; /* loopback-only hosts: AI_ADDRCONFIG hides ::1/127.0.0.1 */
        gai = getaddrinfo(u->host, port, &hints, &res);
    }
    if (gai != 0)
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "cannot resolve %s: %s", u->host,
                            gai_strerror(gai));
    int fd = -1;
    eg_error last;
    eg_error_clear(&last);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline, &last);
        if (fd >= 0)
            break;
        if (last.code == EG_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        eg_error_copy(err, &last);
        eg_error_prefix(err, "cannot connect to %s", u->address);
        return last.code ? last.code : EG_EIO;
    }
    bolt_tr *t = tr_alloc(BOLT_TR_RBUF);
    if (!t) {
        close(fd);
        return eg_error_oom(err);
    }
    t->fd = fd;
    t->read_timeout_ms = opts && opts->read_timeout_ms > 0 ? opts->read_timeout_ms : 0;
    bolt_tr_set_spin(t, opts ? opts->spin_us : 0);
    if (u->tls != BOLT_TLS_NONE) {
        int rc = tls_start(t, u, opts ? opts : &(bolt_tr_opts){0}, deadline, err);
        if (rc < 0) {
            bolt_tr_free(t);
            eg_error_prefix(err, "%s", u->address);
            return rc;
        }
    }
    *out = t;
    return 0;
}

int bolt_tr_from_fd(bolt_tr **out, int fd, int read_timeout_ms, eg_error *err)
{
    *out = NULL;
    if (set_nonblock(fd) < 0) {
        int e = errno;
        close(fd);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "fcntl: %s", strerror(e));
    }
    bolt_tr *t = tr_alloc(BOLT_TR_RBUF);
    if (!t) {
        close(fd);
        return eg_error_oom(err);
    }
    t->fd = fd;
    t->read_timeout_ms = read_timeout_ms > 0 ? read_timeout_ms : 0;
    *out = t;
    return 0;
}

int bolt_tr_new_mem(bolt_tr **out, const void *data, size_t len, eg_error *err)
{
    *out = NULL;
    bolt_tr *t = tr_alloc(len);
    if (!t)
        return eg_error_oom(err);
    if (len)
        memcpy(t->rbuf, data, len);
    t->rlen = len;
    t->eof_is_mem = true;
    *out = t;
    return 0;
}

uint64_t bolt_tr_waits(const bolt_tr *t)
{
    return t->waits;
}

void bolt_tr_set_spin(bolt_tr *t, int us)
{
    t->spin_us = us < 0 ? 0 : us > BOLT_TR_SPIN_MAX_US ? BOLT_TR_SPIN_MAX_US : us;
}

/*
 * Spin instead of sleeping, mid-stream.  A server answers pipelined requests
 * one flush per reply, and a reader asleep in poll() is woken for each.  On a
 * small virtual machine that costs dear, and most of it is paid by the
 * server's threads: with 100 queries pipelined per window on a 2-vCPU VM,
 * Neo4j's Bolt threads spent 128-145 us of CPU per query while this reader
 * slept between replies, 60-77 us while it spun (bench/run bolt).  An idle
 * vCPU is what makes the server's hand-offs dear; sleeping in nanosleep()
 * instead of poll() did not help.
 *
 * So once replies have begun to arrive (bytes since our last send) and more
 * than the one being read are owed (bolt_tr_expect: a pipeline), a read that
 * finds the socket empty tries again, yielding the CPU between tries, for a
 * while before it sleeps.  The while follows the gaps this connection has
 * seen between replies: SPIN_GAP_FACTOR times their moving average, at most
 * spin_us, and no spin at all once that average is above spin_us.  A burst of quick replies is then read awake; a
 * statement that runs for milliseconds costs at most one short spin, and a
 * connection whose replies are slow stops spinning.  Waiting for the first
 * reply after a send never spins, nor does a read with one reply owed: a
 * round trip's last reply, or the records of one stream, which arrive in
 * large segments anyway (measured: no gain there, and a round trip lost 10 %
 * to the spin competing with the server).
 */
#define SPIN_GAP_FACTOR 4
/* Gaps are counted at most this many spin_us, so that one long statement
 * moves the average by a bounded step and quick replies bring it back. */
#define SPIN_GAP_CLAMP 4

static bool spin_allows(bolt_tr *t)
{
    if (t->spin_us <= 0 || t->owed_replies < 2 || t->last_rx_us <= t->last_tx_us || t->owed_to <= t->rx_total)
        return false;
    t->gap_pending = true;
    if (t->gap_avg_us > t->spin_us)
        return false;
    int64_t budget = t->gap_avg_us ? SPIN_GAP_FACTOR * t->gap_avg_us : t->spin_us;
    if (budget > t->spin_us)
        budget = t->spin_us;
    if (eg_mono_us() - t->last_rx_us >= budget)
        return false;
    /* let a server thread that shares this CPU send what we wait for */
    sched_yield();
    return true;
}

static void note_rx(bolt_tr *t)
{
    int64_t now = eg_mono_us();
    if (t->gap_pending) {
        int64_t gap = now - t->last_rx_us, cap = (int64_t)SPIN_GAP_CLAMP * t->spin_us;
        if (gap > cap)
            gap = cap;
        t->gap_avg_us = t->gap_avg_us ? t->gap_avg_us + (gap - t->gap_avg_us) / 8 : gap;
        t->gap_pending = false;
    }
    t->last_rx_us = now;
}

void bolt_tr_expect(bolt_tr *t, size_t bytes, size_t replies)
{
    t->owed_replies = replies;
    t->owed_to = t->rx_total - (t->rlen - t->rpos) + bytes;
}

/*
 * Before sleeping on a plain socket: wake only once the bytes the peer owes
 * us are there (at least `want`, the caller's own minimum), not on every
 * segment.  A server answers pipelined requests one flush per reply; waking
 * for each costs a context switch per reply, which on a small machine takes
 * CPU from the server itself.  Small targets keep the default (1), so a
 * plain round trip never pays for the setsockopt.  Both numbers are lower
 * bounds on what will arrive, so the wait cannot outlast the server's
 * replies; EOF and errors wake poll() whatever the mark.
 */
static void set_lowat(bolt_tr *t, size_t want)
{
    uint64_t owed = t->owed_to > t->rx_total ? t->owed_to - t->rx_total : 0;
    uint64_t target = owed > want ? owed : want;
    if (target > BOLT_TR_LOWAT_MAX)
        target = BOLT_TR_LOWAT_MAX;
    int v = target < BOLT_TR_LOWAT_MIN ? 1 : (int)target;
    if (v != t->lowat && setsockopt(t->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0)
        t->lowat = v;
}

/* Raw read of up to n bytes, of which the caller needs `want` (>= 1); 0 is
 * returned only on orderly EOF. */
static ssize_t raw_read_once(bolt_tr *t, void *dst, size_t n, size_t want, eg_error *err)
{
    int64_t deadline = deadline_in(t->read_timeout_ms);
    for (;;) {
        if (t->ssl) {
            ERR_clear_error();
            int r = SSL_read(t->ssl, dst, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r > 0) {
                note_rx(t);
                return r;
            }
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ && spin_allows(t))
                continue;
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                int rc = wait_fd(t->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err,
                                 "waiting for the server");
                if (rc < 0)
                    return rc;
                continue;
            }
            if (e == SSL_ERROR_ZERO_RETURN)
                return 0;
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                return errno ? eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "TLS read: %s",
                                            strerror(errno))
                             : 0;
            char ebuf[256];
            ssl_errstr(ebuf, sizeof ebuf);
            return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "TLS read: %s", ebuf);
        }
        ssize_t r = recv(t->fd, dst, n, 0);
        if (r > 0)
            note_rx(t);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (spin_allows(t))
                continue;
            set_lowat(t, want);
            t->waits++;
            int rc = wait_fd(t->fd, POLLIN, deadline, err, "waiting for the server");
            if (rc < 0)
                return rc;
            continue;
        }
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "read: %s", strerror(errno));
    }
}

static ssize_t raw_read(bolt_tr *t, void *dst, size_t n, size_t want, eg_error *err)
{
    ssize_t r = raw_read_once(t, dst, n, want, err);
    if (r > 0)
        t->rx_total += (uint64_t)r;
    return r;
}

static int fill(bolt_tr *t, size_t need, eg_error *err)
{
    if (t->rlen - t->rpos >= need)
        return 0;
    if (t->eof_is_mem)
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "unexpected end of input");
    if (need > t->rcap)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "read request larger than buffer");
    if (t->rpos > 0) {
        memmove(t->rbuf, t->rbuf + t->rpos, t->rlen - t->rpos);
        t->rlen -= t->rpos;
        t->rpos = 0;
    }
    while (t->rlen < need) {
        ssize_t r = raw_read(t, t->rbuf + t->rlen, t->rcap - t->rlen, need - t->rlen, err);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "connection closed by the server");
        t->rlen += (size_t)r;
    }
    return 0;
}

int bolt_tr_peek(bolt_tr *t, size_t n, const uint8_t **p, eg_error *err)
{
    int rc = fill(t, n, err);
    if (rc < 0)
        return rc;
    *p = t->rbuf + t->rpos;
    return 0;
}

size_t bolt_tr_buffered(const bolt_tr *t, const uint8_t **p)
{
    *p = t->rbuf + t->rpos;
    return t->rlen - t->rpos;
}

void bolt_tr_consume(bolt_tr *t, size_t n)
{
    t->rpos += n;
    if (t->rpos >= t->rlen)
        t->rpos = t->rlen = 0;
}

int bolt_tr_read(bolt_tr *t, void *dst, size_t n, eg_error *err)
{
    uint8_t *d = dst;
    while (n > 0) {
        size_t have = t->rlen - t->rpos;
        if (have == 0) {
            if (t->eof_is_mem)
                return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "unexpected end of input");
            /* Large reads go straight to the destination. */
            if (n >= t->rcap / 2) {
                ssize_t r = raw_read(t, d, n, n, err);
                if (r < 0)
                    return (int)r;
                if (r == 0)
                    return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION,
                                        "connection closed by the server");
                d += r;
                n -= (size_t)r;
                continue;
            }
            int rc = fill(t, 1, err);
            if (rc < 0)
                return rc;
            have = t->rlen - t->rpos;
        }
        size_t k = have < n ? have : n;
        memcpy(d, t->rbuf + t->rpos, k);
        bolt_tr_consume(t, k);
        d += k;
        n -= k;
    }
    return 0;
}

int bolt_tr_write(bolt_tr *t, const void *data, size_t len, eg_error *err)
{
    if (t->fd < 0)
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "write on a memory transport");
    const uint8_t *p = data;
    int64_t deadline = deadline_in(t->read_timeout_ms);
    if (t->ssl) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        int rc = 0;
        while (len > 0) {
            ERR_clear_error();
            int r = SSL_write(t->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
            if (r > 0) {
                t->last_tx_us = eg_mono_us();
                p += r;
                len -= (size_t)r;
                continue;
            }
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                rc = wait_fd(t->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err,
                             "sending to the server");
                if (rc < 0)
                    break;
                continue;
            }
            char ebuf[256];
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                snprintf(ebuf, sizeof ebuf, "%s", errno ? strerror(errno) : "connection closed");
            else
                ssl_errstr(ebuf, sizeof ebuf);
            rc = eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "TLS write: %s", ebuf);
            break;
        }
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    while (len > 0) {
        ssize_t r = send(t->fd, p, len, MSG_NOSIGNAL);
        if (r > 0) {
            t->last_tx_us = eg_mono_us();
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(t->fd, POLLOUT, deadline, err, "sending to the server");
            if (rc < 0)
                return rc;
            continue;
        }
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "write: %s",
                            r < 0 ? strerror(errno) : "no progress");
    }
    return 0;
}
