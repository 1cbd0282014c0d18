/*
 * result.c - queries and result streams: RUN + PULL pipelining, paging with
 * has_more, DISCARD on early free, lazy (pipelined) runs, and the exec /
 * query_json conveniences.
 *
 * Speed: RUN and the first PULL leave in one write; a RECORD is decoded
 * straight from the transport's read buffer (see chunk.c) into the result's
 * record arena, which is reset per record, so streaming allocates nothing
 * per row once the arena has grown to the largest record.
 */
#include "bolt/conn_int.h"

#include "bolt/params_int.h"
#include "core/alloc.h"

#include <string.h>

#define DEFAULT_FETCH 1000

/* ------------------------------------------------------------ lifecycle */

bolt_result *bolt_result__new(bolt_conn *c, int64_t fetch, bool lazy)
{
    bolt_result *r = eg_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    /* r->meta and r->rec come with the first replies (conn.c, result_arena). */
    r->c = c;
    r->fetch = fetch;
    r->lazy = lazy;
    r->qid = -1;
    r->state = BOLT_R_RUN;
    r->next = c->results;
    if (c->results)
        c->results->prev = r;
    c->results = r;
    c->nopen++;
    return r;
}

/* Forget the connection (it is being freed); the result stays usable for
 * reading its error/summary and for bolt_result_free. */
void bolt_result__orphan(bolt_result *r)
{
    bolt_conn *c = r->c;
    if (!c)
        return;
    if (!r->finished) {
        r->finished = true;
        c->nopen--;
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        c->results = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->c = NULL;
}

void bolt_result__destroy(bolt_result *r)
{
    if (!r)
        return;
    bolt_conn *c = r->c;
    bolt_result__orphan(r);
    bolt_conn__arena_put(c, r->meta);
    bolt_conn__arena_put(c, r->rec);
    eg_free(r);
}

static void finish(bolt_result *r)
{
    if (!r->finished) {
        r->finished = true;
        if (r->c)
            r->c->nopen--;
    }
    r->record = NULL;
    if (r->detached)
        bolt_result__destroy(r);
}

void bolt_result__fail(bolt_result *r, const eg_error *e)
{
    r->state = BOLT_R_FAILED;
    eg_error_copy(&r->err, e);
    finish(r);
}

void bolt_result__done(bolt_result *r)
{
    r->state = BOLT_R_DONE;
    finish(r);
}

void bolt_conn__fail_open(bolt_conn *c, const eg_error *e)
{
    bolt_result *next;
    for (bolt_result *r = c->results; r; r = next) {
        next = r->next;
        if (!r->finished)
            bolt_result__fail(r, e);
    }
}

int bolt_result__queue_pull(bolt_result *r, uint8_t sig, int64_t n, eg_error *err)
{
    bolt_conn *c = r->c;
    bolt_ps_writer w = bolt_conn__msg_begin(c, sig, 1);
    bool qid = r->qid >= 0 && c->tx != BOLT_TX_NONE;
    bolt_ps_map_begin(&w, qid ? 2 : 1);
    bolt_ps_str(&w, "n");
    bolt_ps_int(&w, n);
    if (qid) {
        bolt_ps_str(&w, "qid");
        bolt_ps_int(&w, r->qid);
    }
    int rc = bolt_conn__msg_end(c, &w, sig, r, err);
    if (rc == 0 && r->state == BOLT_R_HASMORE)
        r->state = BOLT_R_STREAM; /* (after RUN the state moves on RUN's SUCCESS) */
    return rc;
}

/* ------------------------------------------------------------------ run */

static int queue_run(bolt_conn *c, const char *cypher, const bolt_params *params,
                     const bolt_tx_opts *opts, bolt_result *r, eg_error *err)
{
    if (params && bolt_params_error(params) < 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid query parameters (%s)",
                            eg_strerror(bolt_params_error(params)));
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_RUN, 3);
    bolt_ps_str(&w, cypher ? cypher : "");
    if (params)
        bolt_params__encode(params, &w);
    else
        bolt_ps_map_begin(&w, 0);
    if (c->tx != BOLT_TX_NONE)
        bolt_ps_map_begin(&w, 0); /* inside BEGIN the extra map is empty */
    else
        bolt_conn__write_tx_extra(c, &w, opts);
    size_t mark = c->out.len, qmark = c->qlen;
    int rc = bolt_conn__msg_end(c, &w, BOLT_MSG_RUN, r, err);
    if (rc == 0) {
        rc = bolt_result__queue_pull(r, BOLT_MSG_PULL, r->fetch, err);
        if (rc < 0) {
            c->out.len = mark;
            c->qlen = qmark;
        }
    }
    return rc;
}

static int64_t fetch_of(const bolt_conn *c, const bolt_tx_opts *opts)
{
    int64_t f = opts ? opts->fetch_size : 0;
    if (f == 0 && c->tx != BOLT_TX_NONE)
        f = c->tx_fetch;
    if (f == 0)
        f = DEFAULT_FETCH;
    if (f < 0)
        f = -1;
    return f;
}

static int run_checks(bolt_conn *c, const char *cypher, bool lazy, eg_error *err)
{
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    if (!cypher)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no query");
    if (c->tx == BOLT_TX_FAILED) {
        eg_error_copy(err, &c->tx_err);
        eg_error_prefix(err, "transaction already failed");
        return c->tx_err.code ? c->tx_err.code : EG_ECLIENT;
    }
    rc = bolt_conn__settle(c, err);
    if (rc < 0)
        return rc;
    if (c->nopen > 0) {
        bool all_lazy = true;
        for (bolt_result *o = c->results; o; o = o->next)
            if (!o->finished && !o->lazy)
                all_lazy = false;
        if (!lazy || !all_lazy)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "a previous result on this connection is still open: consume or "
                                "free it first");
    }
    return 0;
}

int bolt_conn_run(bolt_conn *c, const char *cypher, const bolt_params *params,
                  const bolt_tx_opts *opts, bolt_result **out, eg_error *err)
{
    *out = NULL;
    int rc = run_checks(c, cypher, false, err);
    if (rc < 0)
        return rc;
    bolt_result *r = bolt_result__new(c, fetch_of(c, opts), false);
    if (!r)
        return eg_error_oom(err);
    rc = queue_run(c, cypher, params, opts, r, err);
    if (rc < 0) {
        bolt_result__destroy(r);
        return rc;
    }
    while (r->state == BOLT_R_RUN) {
        rc = bolt_conn__pump(c, err);
        if (rc < 0)
            break;
    }
    if (r->state == BOLT_R_FAILED) {
        eg_error_copy(err, &r->err);
        rc = r->err.code ? r->err.code : EG_EIO;
        bolt_result__destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

int bolt_conn_run_lazy(bolt_conn *c, const char *cypher, const bolt_params *params,
                       const bolt_tx_opts *opts, bolt_result **out, eg_error *err)
{
    *out = NULL;
    int rc = run_checks(c, cypher, true, err);
    if (rc < 0)
        return rc;
    bolt_result *r = bolt_result__new(c, -1, true);
    if (!r)
        return eg_error_oom(err);
    rc = queue_run(c, cypher, params, opts, r, err);
    if (rc < 0) {
        bolt_result__destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

int bolt_conn_flush(bolt_conn *c, eg_error *err)
{
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    return bolt_conn__flush(c, err);
}

/* -------------------------------------------------------------- reading */

static int result_err(bolt_result *r, eg_error *err)
{
    eg_error_copy(err, &r->err);
    return r->err.code ? r->err.code : EG_EIO;
}

/* Is a live result other than r queued ahead of r's replies? */
static bool blocked_by_other(bolt_conn *c, const bolt_result *r)
{
    for (size_t i = c->qhead; i < c->qlen; i++) {
        bolt_result *o = c->q[i].r;
        if (o == r)
            return false;
        if (o && !o->detached)
            return true;
    }
    return false;
}

int bolt_result_next(bolt_result *r, const bolt_value **record, eg_error *err)
{
    *record = NULL;
    if (!r)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no result");
    for (;;) {
        if (r->state == BOLT_R_FAILED)
            return result_err(r, err);
        if (r->state == BOLT_R_DONE)
            return 0;
        bolt_conn *c = r->c;
        if (!c)
            return eg_error_set(err, EG_ECLOSED, EG_CLASS_CONNECTION, "connection closed");
        if (r->state == BOLT_R_HASMORE) {
            int rc = bolt_result__queue_pull(r, BOLT_MSG_PULL, r->fetch, err);
            if (rc < 0)
                return rc;
        }
        if (blocked_by_other(c, r))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "results of pipelined queries must be read in order");
        int rc = bolt_conn__pump(c, err);
        if (rc < 0 && r->state != BOLT_R_FAILED)
            return rc;
        if (rc == 1 && r->record && bolt_conn__head(c) && bolt_conn__head(c)->r == r) {
            *record = r->record;
            return 1;
        }
    }
}

size_t bolt_result_nfields(const bolt_result *r)
{
    return r ? bolt_value_len(r->fields) : 0;
}

const char *bolt_result_field(const bolt_result *r, size_t i)
{
    return r ? bolt_value_cstr(bolt_value_at(r->fields, i)) : NULL;
}

int bolt_result_field_index(const bolt_result *r, const char *name)
{
    size_t n = bolt_result_nfields(r);
    for (size_t i = 0; i < n; i++) {
        const char *f = bolt_result_field(r, i);
        if (f && name && strcmp(f, name) == 0)
            return (int)i;
    }
    return -1;
}

/* Drop the rest of the stream (DISCARD when it is paused). */
static int drain(bolt_result *r, eg_error *err)
{
    r->discard = true;
    for (;;) {
        if (r->state == BOLT_R_FAILED)
            return result_err(r, err);
        if (r->state == BOLT_R_DONE)
            return 0;
        bolt_conn *c = r->c;
        if (!c)
            return eg_error_set(err, EG_ECLOSED, EG_CLASS_CONNECTION, "connection closed");
        if (r->state == BOLT_R_HASMORE) {
            int rc = bolt_result__queue_pull(r, BOLT_MSG_DISCARD, -1, err);
            if (rc < 0)
                return rc;
        }
        if (blocked_by_other(c, r))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "results of pipelined queries must be read in order");
        int rc = bolt_conn__pump(c, err);
        if (rc < 0 && r->state != BOLT_R_FAILED)
            return rc;
    }
}

int bolt_result_consume(bolt_result *r, eg_error *err)
{
    if (!r)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no result");
    return drain(r, err);
}

const bolt_value *bolt_result_summary(const bolt_result *r)
{
    return r && r->state == BOLT_R_DONE ? r->summary : NULL;
}

void bolt_result_free(bolt_result *r)
{
    if (!r)
        return;
    if (r->c && (r->state != BOLT_R_DONE && r->state != BOLT_R_FAILED)) {
        if (blocked_by_other(r->c, r)) {
            /* Its replies come after another live result's: finish later. */
            r->discard = true;
            r->detached = true;
            return;
        }
        drain(r, NULL);
    }
    bolt_result__destroy(r);
}

/* --------------------------------------------------------- conveniences */

int bolt_conn_exec(bolt_conn *c, const char *cypher, const bolt_params *params,
                   const bolt_tx_opts *opts, json_t **stats_out, eg_error *err)
{
    if (stats_out)
        *stats_out = NULL;
    bolt_tx_opts o = opts ? *opts : (bolt_tx_opts)BOLT_TX_OPTS_INIT;
    o.fetch_size = -1;
    bolt_result *r;
    int rc = bolt_conn_run(c, cypher, params, &o, &r, err);
    if (rc < 0)
        return rc;
    rc = drain(r, err);
    if (rc == 0 && stats_out) {
        const bolt_value *st = bolt_value_get(r->summary, "stats");
        *stats_out = st ? bolt_value_to_json(st) : json_object();
        if (!*stats_out)
            rc = eg_error_oom(err);
    }
    bolt_result_free(r);
    return rc;
}

/* Every record of r as a JSON object keyed by field name; frees r.  The
 * field names are read after the first record: a lazy (pipelined) result
 * only knows them then. */
static int collect_rows(bolt_result *r, json_t **rows_out, eg_error *err)
{
    *rows_out = NULL;
    json_t *rows = json_array();
    if (!rows) {
        bolt_result_free(r);
        return eg_error_oom(err);
    }
    int rc;
    const bolt_value *rec;
    while ((rc = bolt_result_next(r, &rec, err)) == 1) {
        size_t nf = bolt_result_nfields(r);
        json_t *row = json_object();
        if (!row || json_array_append_new(rows, row) < 0) {
            rc = eg_error_oom(err);
            break;
        }
        for (size_t i = 0; i < nf; i++) {
            json_t *v = bolt_value_to_json(bolt_value_at(rec, i));
            const char *name = bolt_result_field(r, i);
            if (!v || json_object_set_new(row, name ? name : "", v) < 0) {
                rc = eg_error_oom(err);
                break;
            }
        }
        if (rc < 0)
            break;
    }
    bolt_result_free(r);
    if (rc < 0) {
        json_decref(rows);
        return rc;
    }
    *rows_out = rows;
    return 0;
}

int bolt_conn_query_json(bolt_conn *c, const char *cypher, const bolt_params *params,
                         const bolt_tx_opts *opts, json_t **rows_out, eg_error *err)
{
    *rows_out = NULL;
    bolt_result *r;
    int rc = bolt_conn_run(c, cypher, params, opts, &r, err);
    if (rc < 0)
        return rc;
    return collect_rows(r, rows_out, err);
}

/* Statement i is cyphers[one_cypher ? 0 : i] with params[i]: n of them in one write. */
static int query_json_pipelined(bolt_conn *c, const char *const *cyphers, bool one_cypher,
                                const bolt_params *const *params, size_t n, const bolt_tx_opts *opts,
                                json_t **rows_out, eg_error *err)
{
    for (size_t i = 0; i < n; i++)
        rows_out[i] = NULL;
    if (n == 0)
        return 0;
    bolt_result **res = eg_calloc(n, sizeof *res);
    if (!res)
        return eg_error_oom(err);
    int rc = 0;
    size_t queued = 0;
    for (; queued < n; queued++)
        if ((rc = bolt_conn_run_lazy(c, cyphers[one_cypher ? 0 : queued], params[queued], opts, &res[queued],
                                     err)) < 0)
            break;
    if (rc == 0)
        rc = bolt_conn_flush(c, err);
    /* read (or, after an error, free) every queued result, in order */
    for (size_t i = 0; i < queued; i++) {
        if (rc == 0) {
            rc = collect_rows(res[i], &rows_out[i], err);
        } else {
            bolt_result_free(res[i]);
        }
    }
    eg_free(res);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) {
            json_decref(rows_out[i]);
            rows_out[i] = NULL;
        }
    return rc;
}

int bolt_conn_query_json_many(bolt_conn *c, const char *cypher, const bolt_params *const *params, size_t n,
                              const bolt_tx_opts *opts, json_t **rows_out, eg_error *err)
{
    return query_json_pipelined(c, &cypher, true, params, n, opts, rows_out, err);
}

int bolt_conn_query_json_each(bolt_conn *c, const char *const *cyphers, const bolt_params *const *params, size_t n,
                              const bolt_tx_opts *opts, json_t **rows_out, eg_error *err)
{
    return query_json_pipelined(c, cyphers, false, params, n, opts, rows_out, err);
}
