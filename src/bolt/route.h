/*
 * route.h - routing tables for neo4j:// URIs (internal to src/bolt/).
 *
 * A routing table is what a ROUTE request returns for one database:
 *
 *   rt: {ttl: seconds, db: name, servers: [{addresses: [..], role: "ROUTE"|"READ"|"WRITE"}]}
 *
 * kept as three address lists plus an absolute expiry.  These functions are
 * pure bookkeeping (no I/O, no locking): the pool (pool.c) owns the tables,
 * locks them and asks a server for a new one when bolt_rt_stale() says so.
 * They are separate so that parsing, staleness and server selection can be
 * unit-tested without a server.
 *
 * Thread-safety: none; callers serialise access to a table.
 */
#ifndef ENGRAM_BOLT_ROUTE_H
#define ENGRAM_BOLT_ROUTE_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bolt_addr_list {
    char **v;       /* new strings, "host:port" as the server wrote them */
    size_t n;
} bolt_addr_list;

typedef struct bolt_rt {
    char *db;              /* new; the database the table is for ("" / NULL: not known yet) */
    bolt_addr_list routers, readers, writers;
    int64_t expires_ms;    /* monotonic ms; 0: never fetched (stale) */
    int64_t ttl_ms;        /* as the server sent it */
} bolt_rt;

/* Free the table's contents and zero it (the struct itself is the caller's). */
void bolt_rt_clear(bolt_rt *t);

/*
 * Fill *out (cleared first; contents are new) from a ROUTE reply's `rt` map
 * (converted to JSON by the connection).  `now_ms` is the monotonic time the
 * reply arrived.  EG_EPROTO when the map is malformed or has no router (a
 * table without routers could never be refreshed).  A table without writers
 * is accepted (a cluster mid-election: writes then trigger a refresh).
 */
int bolt_rt_parse_json(const json_t *rt, int64_t now_ms, bolt_rt *out, eg_error *err);

/*
 * Does the table need a refresh before a transaction of this access mode can
 * be routed?  True when it expired, has no router, or has no server for the
 * mode (no writer for writes, no reader for reads).
 */
bool bolt_rt_stale(const bolt_rt *t, bool read_only, int64_t now_ms);

/* Drop `addr` from every role (the server failed to answer). */
void bolt_rt_forget(bolt_rt *t, const char *addr);
/* Drop `addr` from the writers only (NotALeader and similar). */
void bolt_rt_forget_writer(bolt_rt *t, const char *addr);
/* Is `addr` in any role? */
bool bolt_rt_has(const bolt_rt *t, const char *addr);

/*
 * Choose the server with the fewest connections in use among `list`, as the
 * drivers do ("least connected").  in_use(addr, ctx) reports a server's
 * count; ties go to the first candidate at or after `start` (the caller
 * rotates `start` so that idle servers share the load).  Returns an index
 * into list->v or -1 when the list is empty.
 */
int bolt_rt_pick(const bolt_addr_list *list, size_t start, size_t (*in_use)(const char *addr, void *ctx),
                 void *ctx);

/* The table as JSON for doctor: {db, ttl_s, expires_in_ms, routers, readers, writers}. New. */
json_t *bolt_rt_to_json(const bolt_rt *t, int64_t now_ms);

#endif
