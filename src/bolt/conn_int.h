/*
 * conn_int.h - bolt_conn / bolt_result internals shared by conn.c,
 * result.c and tx.c (private to src/bolt/).
 *
 * Request queue.  Every request written (or buffered in `out`) that expects
 * a reply is appended to `q`; replies arrive strictly in order, so the head
 * of the queue says what the next SUCCESS/FAILURE/IGNORED/RECORD belongs
 * to.  Requests are encoded into `out` and only written by conn_flush(),
 * which is how BEGIN rides along with the first RUN, HELLO with LOGON, RUN
 * with PULL, and lazy runs with each other.
 *
 * Failure.  A FAILURE pops its request and moves the connection to
 * "failed": every request queued behind it will be IGNORED.  conn_pump()
 * then immediately appends RESET, reads the IGNOREDs (failing the results
 * they belong to with the same error) and RESET's SUCCESS, and the
 * connection is READY again.  A FAILURE inside an explicit transaction
 * leaves tx == BOLT_TX_FAILED: the server has rolled it back, and the next
 * run/commit reports the stored error until the caller rolls back.
 *
 * Results.  A result is "open" from RUN until its stream ended (DONE) or
 * failed (FAILED); all results not yet freed are linked in `results`.  A result freed while
 * its replies are still queued behind another live result is "detached":
 * its records are skipped and it is freed when its stream ends.
 */
#ifndef ENGRAM_BOLT_CONN_INT_H
#define ENGRAM_BOLT_CONN_INT_H

#include "bolt/chunk.h"
#include "bolt/conn.h"
#include "bolt/transport.h"
#include "bolt/uri.h"
#include "core/buf.h"

#include <stdint.h>

/* Message signatures. */
enum {
    BOLT_MSG_HELLO = 0x01,
    BOLT_MSG_GOODBYE = 0x02,
    BOLT_MSG_RESET = 0x0F,
    BOLT_MSG_RUN = 0x10,
    BOLT_MSG_BEGIN = 0x11,
    BOLT_MSG_COMMIT = 0x12,
    BOLT_MSG_ROLLBACK = 0x13,
    BOLT_MSG_DISCARD = 0x2F,
    BOLT_MSG_PULL = 0x3F,
    BOLT_MSG_ROUTE = 0x66,
    BOLT_MSG_LOGON = 0x6A,
    BOLT_MSG_SUCCESS = 0x70,
    BOLT_MSG_RECORD = 0x71,
    BOLT_MSG_IGNORED = 0x7E,
    BOLT_MSG_FAILURE = 0x7F
};

typedef enum bolt_tx_state { BOLT_TX_NONE = 0, BOLT_TX_OPEN, BOLT_TX_FAILED } bolt_tx_state;

typedef enum bolt_rstate {
    BOLT_R_RUN = 0,  /* RUN sent, its SUCCESS not yet read */
    BOLT_R_STREAM,   /* PULL or DISCARD outstanding */
    BOLT_R_HASMORE,  /* last PULL said has_more; nothing outstanding */
    BOLT_R_DONE,
    BOLT_R_FAILED
} bolt_rstate;

typedef struct bolt_req {
    uint8_t sig;       /* the request's message signature */
    bolt_result *r;    /* RUN/PULL/DISCARD: the result; else NULL */
} bolt_req;

struct bolt_result {
    bolt_conn *c;               /* NULL once the connection was freed */
    bolt_result *prev, *next;   /* c->results list */
    bolt_rstate state;
    bool finished;              /* DONE or FAILED (no longer counted in nopen) */
    bool lazy;
    bool discard;               /* skip records (consume/free) */
    bool detached;              /* freed by the user; free when finished */
    int64_t fetch;              /* PULL n */
    int64_t qid;
    bolt_arena *meta;           /* fields and summary (kept); NULL until RUN's SUCCESS */
    bolt_arena *rec;            /* current record (reset per record); NULL until the first */
    const bolt_value *fields;   /* BOLT_LIST of strings, or NULL */
    const bolt_value *summary;  /* BOLT_MAP once DONE */
    const bolt_value *record;   /* last RECORD's list */
    eg_error err;               /* when FAILED */
};

#define BOLT_ARENA_CACHE 4

struct bolt_conn {
    bolt_tr *t;
    bolt_uri uri;
    int major, minor;
    bool defunct;
    eg_error dead_err;          /* why it became defunct */
    char *server_agent;
    char *connection_id;
    char *database;             /* default db (config), may be NULL */
    char *imp_user;             /* impersonated user (config), may be NULL */
    int read_timeout_ms;
    eg_buf out;                 /* framed requests not yet written */
    eg_buf msg;                 /* one message being encoded */
    eg_buf in;                  /* multi-chunk reassembly */
    bolt_arena *scratch;        /* metadata of non-result replies, reset per reply */
    bolt_req *q;
    size_t qhead, qlen, qcap;
    bool failed;                /* FAILURE seen, RESET not yet acknowledged */
    bool recovering;
    uint64_t nfailures;         /* FAILUREs seen so far (lets callers detect "mine failed") */
    eg_error fail;              /* the last FAILURE */
    bool poisoned;              /* saw a security FAILURE mid-session: the pool drops it */
    bolt_tx_state tx;
    int64_t tx_fetch;
    eg_error tx_err;            /* why the transaction failed */
    char *bookmark;             /* last bookmark received */
    const bolt_tx_opts *unit_opts; /* inside an auto-commit unit of work (pool.c), else NULL */
    bolt_result *results;       /* every result not yet freed */
    size_t nopen;               /* of which unfinished */
    bolt_arena *arena_cache[BOLT_ARENA_CACHE];
    size_t narena_cache;
    int64_t last_used_ms;
    int64_t created_ms;         /* for the pool's max lifetime */
    int64_t idle_since_ms;      /* set by the pool on release */
    json_t *route_rt;           /* the last ROUTE reply's `rt` (new), or NULL */
    void *owner;                /* the pool's per-server pool this connection belongs to */
    uint64_t owner_fails;       /* nfailures when the pool handed it out */
};

/* conn.c */
int bolt_conn__defunct(bolt_conn *c, const eg_error *why, eg_error *err);
int bolt_conn__usable(bolt_conn *c, eg_error *err);
int bolt_conn__flush(bolt_conn *c, eg_error *err);
/* Encode helpers: begin a message in c->msg, finish frames it into c->out. */
bolt_ps_writer bolt_conn__msg_begin(bolt_conn *c, uint8_t sig, size_t nfields);
int bolt_conn__msg_end(bolt_conn *c, bolt_ps_writer *w, uint8_t sig, bolt_result *r, eg_error *err);
/* Write the RUN/BEGIN "extra" map. */
void bolt_conn__write_tx_extra(bolt_conn *c, bolt_ps_writer *w, const bolt_tx_opts *opts);
/* Read one reply and handle it; recovers (RESET) after a FAILURE.
 * Returns 1 when a RECORD was delivered to a live result, 0 otherwise, <0
 * when the connection died. */
int bolt_conn__pump(bolt_conn *c, eg_error *err);
/* Pump until the queue is empty. */
int bolt_conn__sync(bolt_conn *c, eg_error *err);
/* Process queued replies that belong to nobody live (BEGIN, detached results). */
int bolt_conn__settle(bolt_conn *c, eg_error *err);
bool bolt_conn__queue_empty(const bolt_conn *c);
/* Idle-connection check without blocking: true when the peer closed the
 * socket or sent something unsolicited (worth a RESET ping). */
bool bolt_conn__probe_suspicious(const bolt_conn *c);
bolt_req *bolt_conn__head(bolt_conn *c);
bolt_arena *bolt_conn__arena_get(bolt_conn *c, size_t block);
void bolt_conn__arena_put(bolt_conn *c, bolt_arena *a);

/*
 * ROUTE (Bolt 4.4+ layout: routing context, bookmarks, {db, imp_user}).  The
 * routing context is `ctx`'s address and query parameters (the seed URI, as
 * the drivers send it).  *rt_out is the reply's `rt` map as JSON (new).
 * imp_user is sent when non-NULL.
 */
int bolt_conn__route(bolt_conn *c, const bolt_uri *ctx, const char *const *bookmarks, size_t nbookmarks,
                     const char *db, const char *imp_user, json_t **rt_out, eg_error *err);

/* result.c */
bolt_result *bolt_result__new(bolt_conn *c, int64_t fetch, bool lazy);
void bolt_result__fail(bolt_result *r, const eg_error *e);
void bolt_result__done(bolt_result *r);
void bolt_result__destroy(bolt_result *r);
void bolt_result__orphan(bolt_result *r);
/* Fail every unfinished result with e. */
void bolt_conn__fail_open(bolt_conn *c, const eg_error *e);
int bolt_result__queue_pull(bolt_result *r, uint8_t sig, int64_t n, eg_error *err);

#endif
