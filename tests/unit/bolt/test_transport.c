/*
 * test_transport.c - the socket transport's reads: with an expectation
 * (bolt_tr_expect) a read sleeps until the promised bytes are there instead
 * of waking for every segment, and a peer that closes early still ends the
 * read at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/transport.h"
#include "core/clock.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { SEGMENTS = 60, SEGMENT = 10 };

typedef struct peer {
    int fd;
    int segments;   /* segments of SEGMENT bytes, 2 ms apart */
    bool close_after;
} peer;

static void *peer_main(void *arg)
{
    peer *pr = arg;
    char seg[SEGMENT];
    memset(seg, 'x', sizeof seg);
    for (int i = 0; i < pr->segments; i++) {
        if (send(pr->fd, seg, sizeof seg, MSG_NOSIGNAL) != (ssize_t)sizeof seg)
            break;
        usleep(2000);
    }
    if (pr->close_after)
        shutdown(pr->fd, SHUT_WR);
    return NULL;
}

/* A connected loopback TCP pair: *reader wrapped in a transport, *writer_fd raw (TCP_NODELAY). */
static void tcp_pair(bolt_tr **reader, int *writer_fd)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int w = accept(l, NULL, NULL);
    assert_true(w >= 0);
    close(l);
    int one = 1;
    setsockopt(w, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    eg_error err;
    assert_int_equal(bolt_tr_from_fd(reader, c, 5000, &err), 0);
    *writer_fd = w;
}

/* Read SEGMENTS segments one peek at a time; returns the poll() sleeps. */
static uint64_t read_segments(size_t expect)
{
    bolt_tr *t;
    int w;
    tcp_pair(&t, &w);
    if (expect)
        bolt_tr_expect(t, expect);
    peer pr = {.fd = w, .segments = SEGMENTS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &pr), 0);
    eg_error err;
    for (int i = 0; i < SEGMENTS; i++) {
        const uint8_t *p;
        assert_int_equal(bolt_tr_peek(t, SEGMENT, &p, &err), 0);
        assert_int_equal(p[0], 'x');
        bolt_tr_consume(t, SEGMENT);
    }
    pthread_join(th, NULL);
    uint64_t waits = bolt_tr_waits(t);
    bolt_tr_free(t);
    close(w);
    return waits;
}

static void test_bolt_tr__expected_bytes_arrive_in_few_wakeups(void **state)
{
    (void)state;
    /* Without an expectation each 2 ms segment wakes the reader. */
    uint64_t plain = read_segments(0);
    /* Promised all of it: one sleep (a few if the mark had to be lowered). */
    uint64_t promised = read_segments(SEGMENTS * SEGMENT);
    if (promised > 3 || plain < 5)
        fail_msg("poll sleeps: %llu with the expectation, %llu without", (unsigned long long)promised,
                 (unsigned long long)plain);
}

static void test_bolt_tr__early_close_still_ends_the_read(void **state)
{
    (void)state;
    bolt_tr *t;
    int w;
    tcp_pair(&t, &w);
    bolt_tr_expect(t, 10000); /* more than the peer will ever send */
    peer pr = {.fd = w, .segments = 3, .close_after = true};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &pr), 0);
    eg_error err;
    int64_t t0 = eg_mono_ms();
    const uint8_t *p;
    assert_int_equal(bolt_tr_peek(t, 3 * SEGMENT, &p, &err), 0);
    bolt_tr_consume(t, 3 * SEGMENT);
    assert_int_equal(bolt_tr_peek(t, 1, &p, &err), EG_EIO);
    assert_true(eg_mono_ms() - t0 < 2000); /* EOF, not the 5 s read timeout */
    pthread_join(th, NULL);
    bolt_tr_free(t);
    close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_tr__expected_bytes_arrive_in_few_wakeups),
        cmocka_unit_test(test_bolt_tr__early_close_still_ends_the_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
