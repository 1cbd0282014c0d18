/*
 * tcp_relay.h - a TCP relay for tests whose clients live in network
 * namespaces the test created.
 *
 * The local Neo4j (tools/neo4j-local refuses any non-loopback listen
 * address) and the fake HTTP servers listen on 127.0.0.1, which a network
 * namespace cannot reach.  A relay listens on an address of the test's own
 * bridge in the root namespace and forwards every connection to the
 * loopback server; it accepts peers from the test's subnet only, so nothing
 * is exposed beyond the test's namespaces.
 *
 * It also tells, per peer address, whether a connection waits for the
 * server's answer (its last bytes went client to server) and how long every
 * connection has been quiet: a test that cuts a host's link uses this to
 * cut while the host is waiting on the provider and has no database round
 * trip in flight.
 *
 * One thread accepts; one thread per connection copies both ways.
 * Thread-safety: tcp_relay_peer_get may be called from any thread while the
 * relay runs; start/stop from one thread.
 */
#ifndef ENGRAM_TESTS_TCP_RELAY_H
#define ENGRAM_TESTS_TCP_RELAY_H

#include <stdint.h>

typedef struct tcp_relay tcp_relay;

/*
 * Listen on listen_ip (IPv4, dotted) on an ephemeral port; forward to
 * target_ip:target_port.  Peers outside allow_ip/allow_prefix are closed at
 * once.  Returns 0 or -1 (with a message on stderr).  Free with
 * tcp_relay_stop.
 */
int tcp_relay_start(tcp_relay **out, const char *listen_ip, const char *target_ip, int target_port,
                    const char *allow_ip, int allow_prefix);
int tcp_relay_port(const tcp_relay *r);

typedef struct tcp_relay_peer {
    int conns;         /* open connections from the peer */
    int awaiting;      /* of them, those whose last bytes went to the server */
    int64_t quiet_ms;  /* since the last byte on any of them, either way (-1: no connection) */
    uint64_t accepted; /* connections ever accepted from the peer */
} tcp_relay_peer;

/* What the connections from peer_ip (dotted) are doing now. */
void tcp_relay_peer_get(tcp_relay *r, const char *peer_ip, tcp_relay_peer *out);

/* Close every connection, join the threads, free.  Accepts NULL. */
void tcp_relay_stop(tcp_relay *r);

#endif
