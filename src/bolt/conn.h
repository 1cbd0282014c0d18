/*
 * conn.h - one Bolt connection: handshake, auth, queries, transactions.
 *
 * Protocol: proposes 5.8..5.0 then 4.4.  HELLO carries user_agent and (from
 * 5.3, where the server requires it) bolt_agent; on >= 5.1 auth travels in
 * LOGON (pipelined with HELLO), on 5.0/4.4 in HELLO.  NOOP chunks are
 * skipped wherever they appear.  Internals: docs/internals/bolt.md.
 *
 * URIs: bolt://, bolt+s:// (TLS, SNI, verified against system CAs and the
 * host name), bolt+ssc:// (TLS, self-signed accepted), and neo4j://,
 * neo4j+s://, neo4j+ssc:// (same transports; a routing context is sent in
 * HELLO).  A single connection talks to the address it was given; routing
 * (ROUTE, routing tables, one pool per server) lives in bolt_pool.
 *
 * State (client side):
 *
 *   open ──► READY ──run──► STREAMING ──(last PULL done)──► READY
 *              │  ▲                                        
 *           begin commit/rollback                         
 *              ▼  │                                        
 *            TX_READY ──run──► TX_STREAMING ──► TX_READY
 *
 *   FAILURE anywhere ──► the client sends RESET at once (the server answers
 *   IGNORED to anything queued before it) ──► READY, and the call that saw
 *   the failure returns the error.  An open transaction is gone (the server
 *   rolled it back).
 *   I/O error, protocol violation, failed RESET ──► DEFUNCT (sticky: every
 *   call returns EG_ECLOSED; the pool throws the connection away).
 *
 * Errors: FAILURE metadata is mapped into eg_error (neo4j_code from
 * `neo4j_code` (5.7+) or `code`, gql_status, message, class, retryable).
 * Connection-level failures are EG_EIO/EG_ETIMEOUT with class CONNECTION.
 *
 * Memory: records returned by bolt_result_next are *borrowed* until the next
 * call on the same result (or its free).
 *
 * Thread-safety: a connection and its results are used by one thread at a
 * time.  Use bolt_pool to share connections between threads.
 */
#ifndef ENGRAM_BOLT_CONN_H
#define ENGRAM_BOLT_CONN_H

#include "bolt/packstream.h"
#include "bolt/value.h"
#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum bolt_auth_scheme {
    BOLT_AUTH_BASIC = 0,
    BOLT_AUTH_BEARER,
    BOLT_AUTH_NONE
} bolt_auth_scheme;

typedef struct bolt_config {
    const char *uri;            /* e.g. bolt://127.0.0.1:7687 (required) */
    bolt_auth_scheme auth;
    const char *user;           /* basic */
    const char *password;       /* basic; never logged */
    const char *token;          /* bearer; never logged */
    const char *user_agent;     /* NULL: "engram/<version>" */
    const char *database;       /* default database for runs/transactions; NULL: home db */
    int connect_timeout_ms;     /* 0: 10000 */
    int read_timeout_ms;        /* 0: no read timeout (queries may run long); else per read */
    const char *ca_file;        /* optional extra CA bundle for +s */
    const char *imp_user;       /* impersonated user (ROUTE, BEGIN, auto-commit RUN); NULL: none */
    int read_spin_us;           /* mid-stream spin bound, see bolt_tr_set_spin; 0: default; < 0: never */
    int max_minor_5;            /* test hook: highest 5.x minor to propose (0: 8) */
    bool disable_5;             /* test hook: propose only 4.4 */
} bolt_config;

#define BOLT_CONFIG_INIT {0}
/* bolt_config.read_spin_us: the default (when 0) and the largest accepted. */
#define BOLT_READ_SPIN_DEFAULT_US 500
#define BOLT_READ_SPIN_MAX_US 10000

/*
 * The URI as it may be shown (doctor output, error messages, logs): any user
 * info ("user:password@") is replaced by "***@", so credentials written into
 * NEO4J_URI are never echoed.  Writes at most n bytes (NUL-terminated,
 * truncated if needed) and returns out.
 */
char *bolt_uri_redact(const char *uri, char *out, size_t n);

typedef struct bolt_tx_opts {
    const char *database;          /* overrides bolt_config.database */
    bool read_only;                /* access mode "r" */
    int64_t timeout_ms;            /* tx_timeout; 0: server default */
    const json_t *metadata;        /* tx_metadata (borrowed) */
    const char *const *bookmarks;  /* borrowed */
    size_t nbookmarks;
    int64_t fetch_size;            /* PULL n; 0: 1000; -1: all */
} bolt_tx_opts;

#define BOLT_TX_OPTS_INIT {0}

typedef struct bolt_conn bolt_conn;
typedef struct bolt_result bolt_result;

/* ---- parameters ---- */

/*
 * A parameter map under construction.  Entries are appended in order; the
 * map header is written when the query is sent.  Errors are sticky (checked
 * when the params are used).
 */
typedef struct bolt_params bolt_params;

/* New empty params (caller frees with bolt_params_free). NULL on OOM. */
bolt_params *bolt_params_new(void);
void bolt_params_free(bolt_params *p);
void bolt_params_clear(bolt_params *p);
void bolt_params_null(bolt_params *p, const char *key);
void bolt_params_bool(bolt_params *p, const char *key, bool v);
void bolt_params_int(bolt_params *p, const char *key, int64_t v);
void bolt_params_float(bolt_params *p, const char *key, double v);
void bolt_params_str(bolt_params *p, const char *key, const char *v); /* NULL -> null */
void bolt_params_strn(bolt_params *p, const char *key, const char *v, size_t n);
void bolt_params_json(bolt_params *p, const char *key, const json_t *v);
void bolt_params_float_list(bolt_params *p, const char *key, const double *v, size_t n);
void bolt_params_float32_list(bolt_params *p, const char *key, const float *v, size_t n);
/*
 * Add `key` and return a writer positioned for exactly one value (write it
 * before the next bolt_params_* call).  Borrowed; NULL after an error.
 */
bolt_ps_writer *bolt_params_add(bolt_params *p, const char *key);
int bolt_params_error(const bolt_params *p);

/* ---- connections ---- */

/*
 * Connect, handshake and authenticate.  *out is a *new* connection the caller
 * frees with bolt_conn_free.  Errors: EG_EIO/EG_ETIMEOUT (connect),
 * EG_EAUTH (bad credentials, with the Neo4j code), EG_EPROTO, EG_EUNSUPPORTED
 * (no common version), EG_EINVAL (bad URI).
 */
int bolt_conn_open(bolt_conn **out, const bolt_config *cfg, eg_error *err);

/* Send GOODBYE when healthy, close, free.  Accepts NULL. */
void bolt_conn_free(bolt_conn *c);

/* Borrowed strings, valid for the connection's life. */
const char *bolt_conn_server_agent(const bolt_conn *c);
const char *bolt_conn_connection_id(const bolt_conn *c);
void bolt_conn_version(const bolt_conn *c, int *major, int *minor);
bool bolt_conn_is_defunct(const bolt_conn *c);
bool bolt_conn_in_tx(const bolt_conn *c);
/* Monotonic ms of last successful exchange (pool liveness decisions). */
int64_t bolt_conn_last_used_ms(const bolt_conn *c);

/*
 * Bookmark of the last committed transaction or auto-commit query, or NULL.
 * Borrowed until the next call on the connection.
 */
const char *bolt_conn_last_bookmark(const bolt_conn *c);

/*
 * Inside an auto-commit unit of work (bolt_pool_execute_write_autocommit,
 * bolt_pool_execute_read_autocommit): the options its statements must run
 * with (borrowed for the unit's duration); NULL anywhere else.
 */
const bolt_tx_opts *bolt_conn_unit_opts(const bolt_conn *c);

/* RESET round trip: back to READY, drops any open transaction. */
int bolt_conn_reset(bolt_conn *c, eg_error *err);

/*
 * Run a query.  Outside a transaction this is an auto-commit query and
 * `opts` applies (NULL: defaults); inside one, `opts` is ignored except
 * fetch_size.  params may be NULL.  RUN and the first PULL are pipelined in
 * one write; the call returns after RUN's SUCCESS (field names known) or its
 * FAILURE.  *out is a *new* result; free it with bolt_result_free (which
 * discards unread records).  Only one result per connection may be open.
 */
int bolt_conn_run(bolt_conn *c, const char *cypher, const bolt_params *params,
                  const bolt_tx_opts *opts, bolt_result **out, eg_error *err);

/*
 * Pipelining: queue RUN+PULL(all) without writing or waiting.  Nothing is
 * sent until bolt_conn_flush() or until a queued result is read.  Queued
 * results must be read (or freed) in the order they were queued.  If one
 * fails, later queued ones fail with the same error (the server IGNOREs them).
 * A lazy result's field names are known after its first bolt_result_next.
 */
int bolt_conn_run_lazy(bolt_conn *c, const char *cypher, const bolt_params *params,
                       const bolt_tx_opts *opts, bolt_result **out, eg_error *err);
int bolt_conn_flush(bolt_conn *c, eg_error *err);

/*
 * Run and discard records; optional summary counters.  Convenience for
 * writes: returns the final SUCCESS metadata's "stats" map entries through
 * `stats_out` (new JSON object, may be NULL).
 */
int bolt_conn_exec(bolt_conn *c, const char *cypher, const bolt_params *params,
                   const bolt_tx_opts *opts, json_t **stats_out, eg_error *err);

/*
 * Run and collect all rows as a JSON array of objects keyed by field name
 * (values converted with bolt_value_to_json).  *rows_out is new.
 */
int bolt_conn_query_json(bolt_conn *c, const char *cypher, const bolt_params *params,
                         const bolt_tx_opts *opts, json_t **rows_out, eg_error *err);

/*
 * The same statement n times with params[i], pipelined: every RUN+PULL is
 * sent at once and the server runs them in order (inside the open
 * transaction, each sees the ones before), one round trip instead of n.
 * rows_out[i] (new) gets statement i's rows; on error all are NULL and the
 * first error is returned (later statements were IGNORED by the server).
 */
int bolt_conn_query_json_many(bolt_conn *c, const char *cypher, const bolt_params *const *params, size_t n,
                              const bolt_tx_opts *opts, json_t **rows_out, eg_error *err);
/* The same for n different statements: cyphers[i] with params[i] (params[i] may be NULL). */
int bolt_conn_query_json_each(bolt_conn *c, const char *const *cyphers, const bolt_params *const *params, size_t n,
                              const bolt_tx_opts *opts, json_t **rows_out, eg_error *err);

/* Explicit transactions.  BEGIN is pipelined with the first RUN. */
int bolt_conn_begin(bolt_conn *c, const bolt_tx_opts *opts, eg_error *err);
/* bookmark_out: *new* string (eg_free) or NULL if not wanted. */
int bolt_conn_commit(bolt_conn *c, char **bookmark_out, eg_error *err);
int bolt_conn_rollback(bolt_conn *c, eg_error *err);

/* ---- results ---- */

/*
 * Next record: returns 1 and sets *record (a BOLT_LIST, borrowed until the
 * next call), 0 at the end of the stream, or a negative error.
 */
int bolt_result_next(bolt_result *r, const bolt_value **record, eg_error *err);
size_t bolt_result_nfields(const bolt_result *r);
const char *bolt_result_field(const bolt_result *r, size_t i);
/* Index of a field by name, or -1. */
int bolt_result_field_index(const bolt_result *r, const char *name);
/* Read and drop the rest; afterwards bolt_result_summary is available. */
int bolt_result_consume(bolt_result *r, eg_error *err);
/* Final SUCCESS metadata (map) once the stream ended; borrowed, else NULL. */
const bolt_value *bolt_result_summary(const bolt_result *r);
void bolt_result_free(bolt_result *r);

#endif
