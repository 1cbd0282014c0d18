/*
 * bolt_cluster.h - a pretend Neo4j cluster for routing tests.
 *
 * Neo4j Community cannot form a cluster, so each "member" is a small Bolt
 * proxy of ours on its own loopback address (127.0.0.2, 127.0.0.3, ...; Linux
 * routes all of 127/8 to lo without setup) in front of the one real Neo4j.
 * A member relays every message to Neo4j and every reply back, except:
 *   - ROUTE, which it answers itself with the table the test set;
 *   - as a follower, a write transaction (BEGIN, or an auto-commit RUN,
 *     without mode "r"), which it refuses with the real
 *     Neo.ClientError.Cluster.NotALeader failure (then IGNORED until RESET,
 *     as a server does);
 * and it can be taken down (its port refuses connections, its connections
 * are cut), brought back, or made to cut its connections mid-transaction.
 *
 * The relay is message by message (a request, then the upstream replies up
 * to its summary), which keeps local answers in order with relayed ones.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef ENGRAM_TESTS_BOLT_CLUSTER_H
#define ENGRAM_TESTS_BOLT_CLUSTER_H

#include "bolt/pool.h"

#include <stdbool.h>
#include <stdint.h>

#define BOLT_CLUSTER_MAX 5

typedef struct bolt_cluster bolt_cluster;

/*
 * n members (<= BOLT_CLUSTER_MAX) in front of upstream (a bolt:// URI).
 * Member i listens on 127.0.0.(2+i), all on one ephemeral port.  The initial table
 * (ttl 300 s) names every member a router and a reader, member 0 the writer.
 * NULL on failure (message on stderr).
 */
bolt_cluster *bolt_cluster_new(const char *upstream_uri, int n);
/* Cut every connection, stop, free.  Accepts NULL. */
void bolt_cluster_free(bolt_cluster *cl);

/* "127.0.0.2:PORT" (borrowed).  Every member listens on the same port. */
const char *bolt_cluster_address(const bolt_cluster *cl, int i);
int bolt_cluster_port(const bolt_cluster *cl);

/*
 * The table every member answers ROUTE with: members whose bit is set in
 * routers / readers, and `writer` (-1: none, an election).  Also makes every
 * member but the writer a follower.
 */
void bolt_cluster_set_table(bolt_cluster *cl, int ttl_s, unsigned routers, unsigned readers, int writer);

/* Take member i down (refuse connections, cut the live ones) or bring it back. */
void bolt_cluster_set_down(bolt_cluster *cl, int i, bool down);
/* Cut member i's live connections (mid-transaction for whoever is in one). */
void bolt_cluster_drop(bolt_cluster *cl, int i);

/*
 * on: member i holds every COMMIT it receives, neither relaying nor
 * answering it, as if the client's link died right before its COMMIT: Neo4j
 * keeps the transaction open with its locks and hears nothing more.  off:
 * the held connections are cut.
 */
void bolt_cluster_stall_commits(bolt_cluster *cl, int i, bool on);
/* COMMITs held now, all members. */
uint64_t bolt_cluster_stalled(const bolt_cluster *cl);
/* For eg_testenv_wait: exactly one COMMIT is held (cl is the cluster). */
bool bolt_cluster_one_stalled(void *cl);

/*
 * A plain (bolt://) pool of at most max connections to member i, with
 * base's credentials: a client whose link the member can stall or cut.
 * 0, or an error code with err filled.  The caller frees *out.
 */
int bolt_cluster_member_pool(const bolt_cluster *cl, int i, const bolt_config *base, size_t max,
                             bolt_pool **out, eg_error *err);

/*
 * What the transaction-timeout tests stage: run_a(a) on a thread, writing
 * through member 0 with its COMMITs stalled; once that COMMIT is held (at
 * most 20 s), run_b(b) on another thread, writing the same thing through
 * its own link; then wait (at most 20 s) until b_done(b), cut a's link and
 * join both threads.  out: whether a's COMMIT was held, whether b was done
 * before a's link went, and how long b took.
 */
typedef struct bolt_cluster_contention {
    bool stalled;
    bool b_done;
    int64_t waited_ms;
} bolt_cluster_contention;
void bolt_cluster_contend(bolt_cluster *cl, void *(*run_a)(void *), void *a, void *(*run_b)(void *), void *b,
                          bool (*b_done)(void *), bolt_cluster_contention *out);

/* ROUTE requests answered and writes refused so far, all members. */
uint64_t bolt_cluster_routes(const bolt_cluster *cl);
uint64_t bolt_cluster_refusals(const bolt_cluster *cl);

#endif
