/*
 * conn.c - Bolt connection: handshake, authentication, the reply pump,
 * failure recovery.  See conn.h for the state diagram and conn_int.h for the
 * request queue.  Queries live in result.c, transactions in tx.c.
 */
#include "bolt/conn_int.h"

#include "bolt/params_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"

#include <openssl/opensslv.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#define RESULT_ARENA_BLOCK (64u * 1024u)
#define META_ARENA_BLOCK (4u * 1024u)
/* The smallest reply: chunk header, IGNORED (B0 7E), end marker. */
#define MIN_REPLY 6u

/* ---------------------------------------------------------------- basics */

bool bolt_conn__queue_empty(const bolt_conn *c)
{
    return c->qhead == c->qlen;
}

bolt_req *bolt_conn__head(bolt_conn *c)
{
    return c->qhead < c->qlen ? &c->q[c->qhead] : NULL;
}

static int queue_push(bolt_conn *c, uint8_t sig, bolt_result *r)
{
    if (c->qhead == c->qlen)
        c->qhead = c->qlen = 0;
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 16;
        bolt_req *nq = eg_realloc(c->q, ncap * sizeof *nq);
        if (!nq)
            return EG_ENOMEM;
        c->q = nq;
        c->qcap = ncap;
    }
    c->q[c->qlen++] = (bolt_req){sig, r};
    return 0;
}

static void queue_pop(bolt_conn *c)
{
    c->qhead++;
    if (c->qhead == c->qlen)
        c->qhead = c->qlen = 0;
}

bolt_arena *bolt_conn__arena_get(bolt_conn *c, size_t block)
{
    if (c && c->narena_cache > 0 && block == RESULT_ARENA_BLOCK)
        return c->arena_cache[--c->narena_cache];
    return bolt_arena_new(block);
}

void bolt_conn__arena_put(bolt_conn *c, bolt_arena *a)
{
    if (!a)
        return;
    if (c && c->narena_cache < BOLT_ARENA_CACHE && bolt_arena_used(a) < 16u * 1024u * 1024u) {
        bolt_arena_reset(a);
        c->arena_cache[c->narena_cache++] = a;
        return;
    }
    bolt_arena_free(a);
}

int bolt_conn__defunct(bolt_conn *c, const eg_error *why, eg_error *err)
{
    if (!c->defunct) {
        c->defunct = true;
        eg_error_copy(&c->dead_err, why);
        if (c->dead_err.code == 0)
            eg_error_set(&c->dead_err, EG_EIO, EG_CLASS_CONNECTION, "connection failed");
        EG_DEBUG("bolt", "connection %s defunct: %s", c->connection_id ? c->connection_id : "?",
                 c->dead_err.message);
    }
    /* Everything still expected is lost. */
    for (size_t i = c->qhead; i < c->qlen; i++)
        if (c->q[i].r && c->q[i].r->state != BOLT_R_FAILED && c->q[i].r->state != BOLT_R_DONE)
            bolt_result__fail(c->q[i].r, &c->dead_err);
    c->qhead = c->qlen = 0;
    bolt_conn__fail_open(c, &c->dead_err);
    eg_buf_reset(&c->out);
    c->tx = BOLT_TX_NONE;
    c->failed = false;
    eg_error_copy(err, &c->dead_err);
    return c->dead_err.code;
}

int bolt_conn__usable(bolt_conn *c, eg_error *err)
{
    if (!c)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no connection");
    if (c->defunct) {
        eg_error_set(err, EG_ECLOSED, EG_CLASS_CONNECTION, "connection is defunct: %s",
                     c->dead_err.message);
        return EG_ECLOSED;
    }
    return 0;
}

int bolt_conn__flush(bolt_conn *c, eg_error *err)
{
    if (c->out.len == 0)
        return 0;
    eg_error e;
    eg_error_clear(&e);
    int rc = bolt_tr_write(c->t, c->out.ptr, c->out.len, &e);
    eg_buf_reset(&c->out);
    if (rc < 0)
        return bolt_conn__defunct(c, &e, err);
    return 0;
}

bolt_ps_writer bolt_conn__msg_begin(bolt_conn *c, uint8_t sig, size_t nfields)
{
    bolt_ps_writer w;
    eg_buf_reset(&c->msg);
    bolt_ps_writer_init(&w, &c->msg);
    bolt_ps_struct_begin(&w, sig, nfields);
    return w;
}

int bolt_conn__msg_end(bolt_conn *c, bolt_ps_writer *w, uint8_t sig, bolt_result *r, eg_error *err)
{
    int rc = bolt_ps_writer_error(w);
    if (rc < 0)
        return eg_error_set(err, rc, EG_CLASS_CLIENT,
                            rc == EG_ETOOBIG ? "request too large" : "cannot encode request");
    size_t mark = c->out.len;
    rc = bolt_chunk_frame(&c->out, c->msg.ptr, c->msg.len);
    if (rc == 0 && sig != BOLT_MSG_GOODBYE)
        rc = queue_push(c, sig, r);
    if (rc < 0) {
        c->out.len = mark; /* drop the half-framed message */
        return eg_error_set(err, rc, EG_CLASS_NONE, EG_OOM_TEXT " framing a request");
    }
    return 0;
}

static void write_str_pair(bolt_ps_writer *w, const char *k, const char *v)
{
    bolt_ps_str(w, k);
    bolt_ps_str(w, v);
}

void bolt_conn__write_tx_extra(bolt_conn *c, bolt_ps_writer *w, const bolt_tx_opts *o)
{
    const char *db = o && o->database ? o->database : c->database;
    size_t meta_n = o && o->metadata && json_is_object(o->metadata) ? json_object_size(o->metadata) : 0;
    size_t n = (o && o->nbookmarks > 0) + (o && o->timeout_ms > 0) + (meta_n > 0) +
               (o && o->read_only) + (db && *db) + (c->imp_user != NULL);
    bolt_ps_map_begin(w, n);
    if (o && o->nbookmarks > 0) {
        bolt_ps_str(w, "bookmarks");
        bolt_ps_str_list(w, o->bookmarks, o->nbookmarks);
    }
    if (o && o->timeout_ms > 0) {
        bolt_ps_str(w, "tx_timeout");
        bolt_ps_int(w, o->timeout_ms);
    }
    if (meta_n > 0) {
        bolt_ps_str(w, "tx_metadata");
        bolt_ps_json(w, o->metadata);
    }
    if (o && o->read_only)
        write_str_pair(w, "mode", "r");
    if (db && *db)
        write_str_pair(w, "db", db);
    if (c->imp_user)
        write_str_pair(w, "imp_user", c->imp_user);
}

/* ------------------------------------------------------------- the pump */

static int proto_err(bolt_conn *c, eg_error *err, const char *what)
{
    eg_error e;
    eg_error_set(&e, EG_EPROTO, EG_CLASS_CONNECTION, "Bolt protocol violation: %s", what);
    return bolt_conn__defunct(c, &e, err);
}

static const char *map_cstr(const bolt_value *m, const char *key)
{
    return bolt_value_cstr(bolt_value_get(m, key));
}

static void set_failure(bolt_conn *c, const bolt_value *meta)
{
    const char *code = map_cstr(meta, "neo4j_code");
    if (!code)
        code = map_cstr(meta, "code");
    const char *gql = map_cstr(meta, "gql_status");
    const char *msg = map_cstr(meta, "message");
    if (!msg)
        msg = map_cstr(meta, "description");
    eg_error_set_neo4j(&c->fail, code ? code : "Neo.DatabaseError.General.UnknownError", gql,
                       msg ? msg : "(no message)");
}

static int decode_field(bolt_conn *c, const uint8_t *p, size_t len, bolt_arena *a,
                        const bolt_value **out, eg_error *err)
{
    size_t used = 0;
    eg_error e;
    eg_error_clear(&e);
    int rc = bolt_ps_decode(p, len, a, c->major, out, &used, &e);
    if (rc < 0) {
        if (rc == EG_ENOMEM)
            return eg_error_set(err, rc, EG_CLASS_NONE, EG_OOM_TEXT " decoding a reply");
        return proto_err(c, err, e.message[0] ? e.message : "undecodable reply");
    }
    if (used != len)
        return proto_err(c, err, "trailing bytes after a reply");
    return 0;
}

/*
 * A result's arena, taken from the connection's cache when its first reply
 * arrives (not when it is queued): a window of pipelined queries then cycles
 * through a couple of cached arenas, because each result is read and freed
 * before the next one's replies are decoded, instead of allocating two 64 KiB
 * arenas per queued query.  Out of memory here loses the reply being read,
 * so the connection becomes defunct.
 */
static int result_arena(bolt_conn *c, bolt_arena **slot, eg_error *err)
{
    if (*slot)
        return 0;
    *slot = bolt_conn__arena_get(c, RESULT_ARENA_BLOCK);
    if (*slot)
        return 0;
    eg_error e;
    eg_error_set(&e, EG_ENOMEM, EG_CLASS_NONE, EG_OOM_TEXT " for a result");
    return bolt_conn__defunct(c, &e, err);
}

static void on_hello_success(bolt_conn *c, const bolt_value *m)
{
    const char *s = map_cstr(m, "server");
    if (s && !c->server_agent)
        c->server_agent = eg_strdup(s);
    s = map_cstr(m, "connection_id");
    if (s && !c->connection_id)
        c->connection_id = eg_strdup(s);
}

/* Read one reply and dispatch it against the head of the queue. */
static int conn_step(bolt_conn *c, eg_error *err)
{
    int rc = bolt_conn__flush(c, err);
    if (rc < 0)
        return rc;
    bolt_req *h = bolt_conn__head(c);
    if (!h)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "no reply expected");
    const uint8_t *m;
    size_t len;
    eg_error e;
    eg_error_clear(&e);
    /* Every request still queued gets one reply of at least MIN_REPLY bytes. */
    bolt_tr_expect(c->t, MIN_REPLY * (c->qlen - c->qhead), c->qlen - c->qhead);
    rc = bolt_chunk_read(c->t, &c->in, &m, &len, &e);
    if (rc < 0)
        return bolt_conn__defunct(c, &e, err);
    if (len < 2 || (m[0] & 0xF0) != 0xB0)
        return proto_err(c, err, "reply is not a structure");
    uint8_t sig = m[1];
    size_t nf = m[0] & 0x0F;
    c->last_used_ms = eg_mono_ms();
    bolt_result *r = h->r;
    const bolt_value *meta = NULL;
    switch (sig) {
    case BOLT_MSG_RECORD: {
        if (h->sig != BOLT_MSG_PULL || nf != 1)
            return proto_err(c, err, "unexpected RECORD");
        if (r->discard || c->recovering)
            return 0;
        rc = result_arena(c, &r->rec, err);
        if (rc < 0)
            return rc;
        bolt_arena_reset(r->rec);
        const bolt_value *rec;
        rc = decode_field(c, m + 2, len - 2, r->rec, &rec, err);
        if (rc < 0)
            return rc;
        if (bolt_value_type(rec) != BOLT_LIST)
            return proto_err(c, err, "RECORD without a list");
        r->record = rec;
        return 1;
    }
    case BOLT_MSG_SUCCESS: {
        if (nf != 1)
            return proto_err(c, err, "SUCCESS without metadata");
        bolt_arena_reset(c->scratch);
        rc = decode_field(c, m + 2, len - 2, c->scratch, &meta, err);
        if (rc < 0)
            return rc;
        if (bolt_value_type(meta) != BOLT_MAP)
            return proto_err(c, err, "SUCCESS metadata is not a map");
        uint8_t req = h->sig;
        queue_pop(c);
        switch (req) {
        case BOLT_MSG_HELLO:
            on_hello_success(c, meta);
            break;
        case BOLT_MSG_RUN:
            if (r->state == BOLT_R_RUN) {
                /* Keep the field names for the result's life. */
                const bolt_value *kept;
                rc = result_arena(c, &r->meta, err);
                if (rc == 0)
                    rc = decode_field(c, m + 2, len - 2, r->meta, &kept, err);
                if (rc < 0)
                    return rc;
                r->fields = bolt_value_get(kept, "fields");
                r->qid = bolt_value_int(bolt_value_get(kept, "qid"), -1);
                r->state = BOLT_R_STREAM;
            }
            break;
        case BOLT_MSG_PULL:
        case BOLT_MSG_DISCARD:
            if (r->state != BOLT_R_STREAM)
                break;
            if (bolt_value_bool(bolt_value_get(meta, "has_more"), false)) {
                if (r->discard && !c->recovering) {
                    /* Nobody wants the rest: ask the server to drop it. */
                    rc = bolt_result__queue_pull(r, BOLT_MSG_DISCARD, -1, err);
                    if (rc < 0)
                        return rc;
                } else {
                    r->state = BOLT_R_HASMORE;
                }
            } else {
                const char *bm = map_cstr(meta, "bookmark");
                if (bm) {
                    char *nb = eg_strdup(bm);
                    if (nb) {
                        eg_free(c->bookmark);
                        c->bookmark = nb;
                    }
                }
                if (!r->detached) {
                    const bolt_value *kept;
                    rc = result_arena(c, &r->meta, err);
                    if (rc == 0)
                        rc = decode_field(c, m + 2, len - 2, r->meta, &kept, err);
                    if (rc < 0)
                        return rc;
                    r->summary = kept;
                }
                bolt_result__done(r);
            }
            break;
        case BOLT_MSG_COMMIT: {
            const char *bm = map_cstr(meta, "bookmark");
            eg_free(c->bookmark);
            c->bookmark = bm ? eg_strdup(bm) : NULL;
            c->tx = BOLT_TX_NONE;
            break;
        }
        case BOLT_MSG_ROLLBACK:
            c->tx = BOLT_TX_NONE;
            break;
        case BOLT_MSG_ROUTE:
            json_decref(c->route_rt);
            c->route_rt = bolt_value_to_json(bolt_value_get(meta, "rt"));
            break;
        case BOLT_MSG_RESET:
            c->failed = false;
            break;
        default:
            break;
        }
        return 0;
    }
    case BOLT_MSG_FAILURE: {
        if (nf != 1)
            return proto_err(c, err, "FAILURE without metadata");
        bolt_arena_reset(c->scratch);
        rc = decode_field(c, m + 2, len - 2, c->scratch, &meta, err);
        if (rc < 0)
            return rc;
        set_failure(c, meta);
        c->nfailures++;
        if (c->fail.code == EG_EAUTH)
            c->poisoned = true; /* e.g. AuthorizationExpired: re-authenticate on a new one */
        c->failed = true;
        uint8_t req = h->sig;
        queue_pop(c);
        if (c->tx == BOLT_TX_OPEN) {
            c->tx = BOLT_TX_FAILED;
            eg_error_copy(&c->tx_err, &c->fail);
        }
        if (r && r->state != BOLT_R_DONE && r->state != BOLT_R_FAILED)
            bolt_result__fail(r, &c->fail);
        if (req == BOLT_MSG_HELLO || req == BOLT_MSG_LOGON || req == BOLT_MSG_RESET) {
            /* The server closes the connection after these. */
            eg_error f;
            eg_error_copy(&f, &c->fail);
            return bolt_conn__defunct(c, &f, err);
        }
        return 0;
    }
    case BOLT_MSG_IGNORED: {
        queue_pop(c);
        if (r && r->state != BOLT_R_DONE && r->state != BOLT_R_FAILED) {
            if (c->failed) {
                bolt_result__fail(r, &c->fail);
            } else {
                eg_error ig;
                eg_error_set(&ig, EG_ECANCELED, EG_CLASS_CLIENT, "request cancelled by RESET");
                bolt_result__fail(r, &ig);
            }
        }
        return 0;
    }
    default:
        return proto_err(c, err, "unknown reply signature");
    }
}

/* After a FAILURE: RESET, drain the IGNOREDs, back to READY. */
static int conn_recover(bolt_conn *c, eg_error *err)
{
    c->recovering = true;
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_RESET, 0);
    int rc = bolt_conn__msg_end(c, &w, BOLT_MSG_RESET, NULL, err);
    while (rc >= 0 && !bolt_conn__queue_empty(c))
        rc = conn_step(c, err);
    c->recovering = false;
    if (rc < 0)
        return rc;
    /* Streams the server forgot (has_more results) are over too. */
    bolt_conn__fail_open(c, &c->fail);
    return 0;
}

int bolt_conn__pump(bolt_conn *c, eg_error *err)
{
    int rc = conn_step(c, err);
    if (rc < 0)
        return rc;
    if (c->failed && !c->recovering) {
        int r2 = conn_recover(c, err);
        if (r2 < 0)
            return r2;
    }
    return rc;
}

int bolt_conn__sync(bolt_conn *c, eg_error *err)
{
    while (!bolt_conn__queue_empty(c)) {
        int rc = bolt_conn__pump(c, err);
        if (rc < 0)
            return rc;
    }
    return bolt_conn__flush(c, err);
}

int bolt_conn__settle(bolt_conn *c, eg_error *err)
{
    for (;;) {
        /* Only replies nobody waits for: a detached result's.  (A buffered
         * BEGIN must stay unanswered until it is flushed with the RUN.) */
        bolt_req *h = bolt_conn__head(c);
        if (!h || !h->r || !h->r->detached)
            return 0;
        int rc = bolt_conn__pump(c, err);
        if (rc < 0)
            return rc;
    }
}

/* ------------------------------------------------------------ handshake */

static int handshake(bolt_conn *c, const bolt_config *cfg, eg_error *err)
{
    uint8_t hs[20] = {0x60, 0x60, 0xB0, 0x17};
    uint8_t *p = hs + 4;
    if (!cfg->disable_5) {
        int max = cfg->max_minor_5 > 0 && cfg->max_minor_5 < 8 ? cfg->max_minor_5 : 8;
        p[0] = 0;
        p[1] = (uint8_t)max; /* range: max..0 */
        p[2] = (uint8_t)max;
        p[3] = 5;
        p += 4;
    }
    p[0] = 0;
    p[1] = 0;
    p[2] = 4;
    p[3] = 4;
    eg_error e;
    eg_error_clear(&e);
    int rc = bolt_tr_write(c->t, hs, sizeof hs, &e);
    uint8_t v[4];
    if (rc == 0)
        rc = bolt_tr_read(c->t, v, 4, &e);
    if (rc < 0) {
        eg_error_copy(err, &e);
        eg_error_prefix(err, "Bolt handshake with %s", c->uri.address);
        return rc;
    }
    if (memcmp(v, "HTTP", 4) == 0)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT,
                            "%s answered with HTTP: that is Neo4j's HTTP port, use the Bolt port "
                            "(default 7687)",
                            c->uri.address);
    if (v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0)
        return eg_error_set(err, EG_EUNSUPPORTED, EG_CLASS_CLIENT,
                            "%s supports none of the proposed Bolt versions (%s4.4)",
                            c->uri.address, cfg->disable_5 ? "" : "5.0-5.8, ");
    int major = v[3], minor = v[2];
    bool ok = (major == 4 && minor == 4) ||
              (major == 5 && !cfg->disable_5 &&
               minor <= (cfg->max_minor_5 > 0 && cfg->max_minor_5 < 8 ? cfg->max_minor_5 : 8));
    if (!ok)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CONNECTION,
                            "%s chose Bolt %d.%d, which was not proposed", c->uri.address, major,
                            minor);
    c->major = major;
    c->minor = minor;
    return 0;
}

static void write_auth_entries(bolt_ps_writer *w, const bolt_config *cfg)
{
    switch (cfg->auth) {
    case BOLT_AUTH_BEARER:
        write_str_pair(w, "scheme", "bearer");
        write_str_pair(w, "credentials", cfg->token ? cfg->token : "");
        break;
    case BOLT_AUTH_NONE:
        write_str_pair(w, "scheme", "none");
        break;
    case BOLT_AUTH_BASIC:
    default:
        write_str_pair(w, "scheme", "basic");
        write_str_pair(w, "principal", cfg->user ? cfg->user : "");
        write_str_pair(w, "credentials", cfg->password ? cfg->password : "");
        break;
    }
}

static size_t auth_entries(const bolt_config *cfg)
{
    return cfg->auth == BOLT_AUTH_NONE ? 1 : cfg->auth == BOLT_AUTH_BEARER ? 2 : 3;
}

static void write_routing_context(bolt_ps_writer *w, const bolt_uri *u)
{
    bolt_ps_map_begin(w, 1 + u->nparams);
    write_str_pair(w, "address", u->address);
    for (size_t i = 0; i < u->nparams; i++)
        write_str_pair(w, u->params[i].key, u->params[i].value);
}

static int send_hello(bolt_conn *c, const bolt_config *cfg, eg_error *err)
{
    bool auth_in_hello = c->major < 5 || (c->major == 5 && c->minor == 0);
    bool agent = c->major == 5 && c->minor >= 3;
    char ua[128];
    snprintf(ua, sizeof ua, "%s", cfg->user_agent ? cfg->user_agent : "engram/" ENGRAM_VERSION);
    size_t n = 1 + (agent ? 1 : 0) + (c->uri.routing ? 1 : 0) +
               (auth_in_hello ? auth_entries(cfg) : 0) + (c->major == 4 ? 1 : 0);
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_HELLO, 1);
    bolt_ps_map_begin(&w, n);
    write_str_pair(&w, "user_agent", ua);
    if (agent) {
        struct utsname un;
        char platform[256] = "unknown";
        if (uname(&un) == 0)
            snprintf(platform, sizeof platform, "%s %s; %s", un.sysname, un.release, un.machine);
        bolt_ps_str(&w, "bolt_agent");
        bolt_ps_map_begin(&w, 4);
        write_str_pair(&w, "product", "engram/" ENGRAM_VERSION);
        write_str_pair(&w, "platform", platform);
        write_str_pair(&w, "language", "C/17");
#ifdef __VERSION__
        write_str_pair(&w, "language_details", "gcc " __VERSION__ "; " OPENSSL_VERSION_TEXT);
#else
        write_str_pair(&w, "language_details", OPENSSL_VERSION_TEXT);
#endif
    }
    if (c->uri.routing) {
        bolt_ps_str(&w, "routing");
        write_routing_context(&w, &c->uri);
    }
    if (c->major == 4) {
        /* Ask 4.4 servers for UTC-based DateTime structures (as in 5.x). */
        bolt_ps_str(&w, "patch_bolt");
        bolt_ps_list_begin(&w, 1);
        bolt_ps_str(&w, "utc");
    }
    if (auth_in_hello)
        write_auth_entries(&w, cfg);
    int rc = bolt_conn__msg_end(c, &w, BOLT_MSG_HELLO, NULL, err);
    if (rc < 0 || auth_in_hello)
        return rc;
    w = bolt_conn__msg_begin(c, BOLT_MSG_LOGON, 1);
    bolt_ps_map_begin(&w, auth_entries(cfg));
    write_auth_entries(&w, cfg);
    return bolt_conn__msg_end(c, &w, BOLT_MSG_LOGON, NULL, err);
}

int bolt_conn__route(bolt_conn *c, const bolt_uri *ctx, const char *const *bookmarks, size_t nbookmarks,
                     const char *db, const char *imp_user, json_t **rt_out, eg_error *err)
{
    *rt_out = NULL;
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    if (c->tx != BOLT_TX_NONE || c->nopen > 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ROUTE needs an idle connection");
    uint64_t fails = c->nfailures;
    json_decref(c->route_rt);
    c->route_rt = NULL;
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_ROUTE, 3);
    write_routing_context(&w, ctx);
    bolt_ps_str_list(&w, bookmarks, nbookmarks);
    bool has_db = db && *db;
    bolt_ps_map_begin(&w, (size_t)has_db + (imp_user != NULL));
    if (has_db)
        write_str_pair(&w, "db", db);
    if (imp_user)
        write_str_pair(&w, "imp_user", imp_user);
    rc = bolt_conn__msg_end(c, &w, BOLT_MSG_ROUTE, NULL, err);
    if (rc == 0)
        rc = bolt_conn__sync(c, err);
    if (rc < 0)
        return rc;
    if (c->nfailures != fails) {
        eg_error_copy(err, &c->fail);
        eg_error_prefix(err, "ROUTE on %s", c->uri.address);
        return c->fail.code ? c->fail.code : EG_EDATABASE;
    }
    if (!c->route_rt)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CONNECTION, "%s answered ROUTE without a table",
                            c->uri.address);
    *rt_out = c->route_rt;
    c->route_rt = NULL;
    return 0;
}

/* Handshake + HELLO (+LOGON) on an already connected transport. */
static int conn_start(bolt_conn *c, const bolt_config *cfg, eg_error *err)
{
    int rc = handshake(c, cfg, err);
    if (rc < 0)
        return rc;
    rc = send_hello(c, cfg, err);
    if (rc < 0)
        return rc;
    rc = bolt_conn__sync(c, err);
    if (rc < 0) {
        if (rc == EG_EAUTH)
            eg_error_prefix(err, "authentication failed for user '%s'",
                            cfg->auth == BOLT_AUTH_BASIC && cfg->user ? cfg->user : "?");
        return rc;
    }
    bolt_tr_set_read_timeout(c->t, cfg->read_timeout_ms);
    return 0;
}

static bolt_conn *conn_alloc(const bolt_config *cfg)
{
    bolt_conn *c = eg_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    eg_buf_init(&c->out, EG_LIMIT_BOLT_MESSAGE + 1024u * 1024u);
    eg_buf_init(&c->msg, EG_LIMIT_BOLT_MESSAGE);
    eg_buf_init(&c->in, EG_LIMIT_BOLT_MESSAGE);
    c->read_timeout_ms = cfg->read_timeout_ms;
    c->scratch = bolt_arena_new(META_ARENA_BLOCK);
    if (!c->scratch || (cfg->database && *cfg->database && !(c->database = eg_strdup(cfg->database))) ||
        (cfg->imp_user && *cfg->imp_user && !(c->imp_user = eg_strdup(cfg->imp_user)))) {
        bolt_conn_free(c);
        return NULL;
    }
    c->last_used_ms = c->created_ms = eg_mono_ms();
    return c;
}

int bolt_conn_open(bolt_conn **out, const bolt_config *cfg, eg_error *err)
{
    *out = NULL;
    if (!cfg || !cfg->uri)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no Neo4j URI configured");
    bolt_conn *c = conn_alloc(cfg);
    if (!c)
        return eg_error_oom(err);
    int rc = bolt_uri_parse(&c->uri, cfg->uri, err);
    if (rc == 0) {
        _Static_assert(BOLT_READ_SPIN_MAX_US == BOLT_TR_SPIN_MAX_US, "one spin bound");
        bolt_tr_opts to = {cfg->connect_timeout_ms, 0, cfg->ca_file,
                           cfg->read_spin_us == 0 ? BOLT_READ_SPIN_DEFAULT_US : cfg->read_spin_us};
        rc = bolt_tr_connect(&c->t, &c->uri, &to, err);
    }
    if (rc == 0) {
        /* The handshake must not hang on a peer that is not Bolt. */
        bolt_tr_set_read_timeout(c->t, cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000);
        rc = conn_start(c, cfg, err);
    }
    if (rc < 0) {
        c->defunct = true; /* no GOODBYE */
        bolt_conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void bolt_conn_free(bolt_conn *c)
{
    if (!c)
        return;
    if (c->t && !c->defunct) {
        /* GOODBYE needs no reply, and whatever is still queued or unread is
         * moot: drop unsent requests, say goodbye, close.  (Never block on a
         * long stream just to close.) */
        eg_error e;
        eg_error_clear(&e);
        eg_buf_reset(&c->out);
        bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_GOODBYE, 0);
        if (bolt_conn__msg_end(c, &w, BOLT_MSG_GOODBYE, NULL, &e) == 0)
            bolt_conn__flush(c, &e);
    }
    /* Results the user still holds lose their connection. */
    eg_error ce;
    eg_error_set(&ce, EG_ECLOSED, EG_CLASS_CONNECTION, "connection closed");
    bolt_conn__fail_open(c, &ce); /* frees detached ones */
    while (c->results)
        bolt_result__orphan(c->results);
    bolt_tr_free(c->t);
    bolt_uri_clear(&c->uri);
    eg_free(c->server_agent);
    eg_free(c->connection_id);
    eg_free(c->database);
    eg_free(c->imp_user);
    eg_free(c->bookmark);
    json_decref(c->route_rt);
    eg_free(c->q);
    eg_buf_free(&c->out);
    eg_buf_free(&c->msg);
    eg_buf_free(&c->in);
    bolt_arena_free(c->scratch);
    for (size_t i = 0; i < c->narena_cache; i++)
        bolt_arena_free(c->arena_cache[i]);
    eg_free(c);
}

bool bolt_conn__probe_suspicious(const bolt_conn *c)
{
    const uint8_t *p;
    if (bolt_tr_buffered(c->t, &p) > 0)
        return true;
    /* A peek, not poll(): a receive low-water mark left above 1 by a
     * pipelined window (transport.c) would hide a few unexpected bytes from
     * poll(), while recv() sees any byte at all.  EOF (0) and errors other
     * than "nothing yet" are suspicious too. */
    int fd = bolt_tr_fd(c->t);
    if (fd < 0)
        return false; /* a memory transport (tests): nothing can arrive */
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

/* ------------------------------------------------------------ accessors */

const char *bolt_conn_server_agent(const bolt_conn *c)
{
    return c && c->server_agent ? c->server_agent : "";
}

const char *bolt_conn_connection_id(const bolt_conn *c)
{
    return c && c->connection_id ? c->connection_id : "";
}

void bolt_conn_version(const bolt_conn *c, int *major, int *minor)
{
    if (major)
        *major = c ? c->major : 0;
    if (minor)
        *minor = c ? c->minor : 0;
}

bool bolt_conn_is_defunct(const bolt_conn *c)
{
    return !c || c->defunct;
}

bool bolt_conn_in_tx(const bolt_conn *c)
{
    return c && c->tx != BOLT_TX_NONE;
}

int64_t bolt_conn_last_used_ms(const bolt_conn *c)
{
    return c ? c->last_used_ms : 0;
}

const bolt_tx_opts *bolt_conn_unit_opts(const bolt_conn *c)
{
    return c ? c->unit_opts : NULL;
}

const char *bolt_conn_last_bookmark(const bolt_conn *c)
{
    return c ? c->bookmark : NULL;
}

int bolt_conn_reset(bolt_conn *c, eg_error *err)
{
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    /* Whatever is queued is cancelled (records are skipped while recovering). */
    c->recovering = true;
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_RESET, 0);
    rc = bolt_conn__msg_end(c, &w, BOLT_MSG_RESET, NULL, err);
    while (rc >= 0 && !bolt_conn__queue_empty(c))
        rc = conn_step(c, err);
    c->recovering = false;
    if (rc < 0)
        return rc;
    c->failed = false;
    c->tx = BOLT_TX_NONE;
    eg_error e;
    eg_error_set(&e, EG_ECANCELED, EG_CLASS_CLIENT, "result cancelled by RESET");
    bolt_conn__fail_open(c, &e);
    return 0;
}
