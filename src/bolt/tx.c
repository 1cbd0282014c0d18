/*
 * tx.c - explicit transactions.
 *
 * BEGIN is only buffered: it leaves together with the first RUN (or with
 * COMMIT/ROLLBACK for an empty transaction), which saves a round trip per
 * transaction.  If BEGIN fails, the RUN behind it is IGNORED and reports
 * BEGIN's error.  After any FAILURE inside the transaction the server has
 * rolled it back; the connection remembers that (BOLT_TX_FAILED) so a later
 * commit reports the original error instead of silently starting an
 * auto-commit query, and rollback just clears the state.
 */
#include "bolt/conn_int.h"

#include "core/alloc.h"

static int tx_checks(bolt_conn *c, eg_error *err)
{
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    rc = bolt_conn__settle(c, err);
    if (rc < 0)
        return rc;
    if (c->nopen > 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "a result on this connection is still open: consume or free it first");
    return 0;
}

int bolt_conn_begin(bolt_conn *c, const bolt_tx_opts *opts, eg_error *err)
{
    int rc = tx_checks(c, err);
    if (rc < 0)
        return rc;
    if (c->tx != BOLT_TX_NONE)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "a transaction is already open on this connection");
    bolt_ps_writer w = bolt_conn__msg_begin(c, BOLT_MSG_BEGIN, 1);
    bolt_conn__write_tx_extra(c, &w, opts);
    rc = bolt_conn__msg_end(c, &w, BOLT_MSG_BEGIN, NULL, err);
    if (rc < 0)
        return rc;
    c->tx = BOLT_TX_OPEN;
    c->tx_fetch = opts ? opts->fetch_size : 0;
    eg_error_clear(&c->tx_err);
    return 0;
}

/* Send COMMIT or ROLLBACK and wait for everything queued. */
static int tx_end(bolt_conn *c, uint8_t sig, eg_error *err)
{
    uint64_t fails = c->nfailures;
    bolt_ps_writer w = bolt_conn__msg_begin(c, sig, 0);
    int rc = bolt_conn__msg_end(c, &w, sig, NULL, err);
    if (rc == 0)
        rc = bolt_conn__sync(c, err);
    if (rc < 0)
        return rc;
    c->tx = BOLT_TX_NONE;
    if (c->nfailures != fails) {
        eg_error_copy(err, &c->fail);
        return c->fail.code ? c->fail.code : EG_EDATABASE;
    }
    return 0;
}

int bolt_conn_commit(bolt_conn *c, char **bookmark_out, eg_error *err)
{
    if (bookmark_out)
        *bookmark_out = NULL;
    int rc = tx_checks(c, err);
    if (rc < 0)
        return rc;
    if (c->tx == BOLT_TX_NONE)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no transaction to commit");
    if (c->tx == BOLT_TX_FAILED) {
        c->tx = BOLT_TX_NONE;
        eg_error_copy(err, &c->tx_err);
        eg_error_prefix(err, "transaction was rolled back after an earlier failure");
        return c->tx_err.code ? c->tx_err.code : EG_ECLIENT;
    }
    rc = tx_end(c, BOLT_MSG_COMMIT, err);
    if (rc < 0)
        return rc;
    if (bookmark_out && c->bookmark) {
        *bookmark_out = eg_strdup(c->bookmark);
        if (!*bookmark_out)
            return eg_error_oom(err);
    }
    return 0;
}

int bolt_conn_rollback(bolt_conn *c, eg_error *err)
{
    int rc = bolt_conn__usable(c, err);
    if (rc < 0)
        return rc;
    if (c->tx == BOLT_TX_NONE)
        return 0;
    if (c->tx == BOLT_TX_FAILED) {
        c->tx = BOLT_TX_NONE; /* the server already rolled it back */
        return 0;
    }
    rc = tx_checks(c, err);
    if (rc < 0)
        return rc;
    return tx_end(c, BOLT_MSG_ROLLBACK, err);
}
