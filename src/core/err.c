/*
 * err.c - error object helpers and the Neo4j error classification.
 */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void eg_error_clear(eg_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->klass = EG_CLASS_NONE;
    err->retryable = false;
    err->neo4j_code[0] = '\0';
    err->gql_status[0] = '\0';
    err->message[0] = '\0';
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int eg_error_setv(eg_error *err, int code, eg_class klass, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    err->klass = klass;
    err->retryable = (klass == EG_CLASS_TRANSIENT || klass == EG_CLASS_CONNECTION);
    err->neo4j_code[0] = '\0';
    err->gql_status[0] = '\0';
    if (fmt)
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    else
        err->message[0] = '\0';
    return code;
}

int eg_error_oom(eg_error *err)
{
    return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, EG_OOM_TEXT);
}

int eg_error_set(eg_error *err, int code, eg_class klass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = eg_error_setv(err, code, klass, fmt, ap);
    va_end(ap);
    return rc;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

eg_class eg_error_classify_neo4j(const char *code, bool *retryable_out)
{
    eg_class k = EG_CLASS_DATABASE;
    bool retry = false;
    if (!code)
        code = "";
    if (has_prefix(code, "Neo.TransientError.")) {
        /* Drivers treat these two as client errors: the client (or an
         * administrator) terminated the transaction; retrying would only
         * repeat that. */
        if (strcmp(code, "Neo.TransientError.Transaction.Terminated") == 0 ||
            strcmp(code, "Neo.TransientError.Transaction.LockClientStopped") == 0) {
            k = EG_CLASS_CLIENT;
        } else {
            k = EG_CLASS_TRANSIENT;
            retry = true;
        }
    } else if (has_prefix(code, "Neo.ClientError.")) {
        k = EG_CLASS_CLIENT;
        /* In a cluster these are fixed by a routing refresh and a retry. */
        if (strcmp(code, "Neo.ClientError.Cluster.NotALeader") == 0 ||
            strcmp(code, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase") == 0) {
            k = EG_CLASS_TRANSIENT;
            retry = true;
        }
    } else if (has_prefix(code, "Neo.DatabaseError.")) {
        k = EG_CLASS_DATABASE;
    }
    if (retryable_out)
        *retryable_out = retry;
    return k;
}

int eg_error_set_neo4j(eg_error *err, const char *neo4j_code, const char *gql_status,
                       const char *message)
{
    bool retry = false;
    eg_class k = eg_error_classify_neo4j(neo4j_code, &retry);
    int code;
    if (neo4j_code && has_prefix(neo4j_code, "Neo.ClientError.Security."))
        code = EG_EAUTH;
    else if (k == EG_CLASS_TRANSIENT)
        code = EG_ETRANSIENT;
    else if (k == EG_CLASS_CLIENT)
        code = EG_ECLIENT;
    else
        code = EG_EDATABASE;
    if (!err)
        return code;
    err->code = code;
    err->klass = k;
    err->retryable = retry;
    copy_str(err->neo4j_code, sizeof err->neo4j_code, neo4j_code);
    copy_str(err->gql_status, sizeof err->gql_status, gql_status);
    copy_str(err->message, sizeof err->message, message);
    return code;
}

void eg_error_copy(eg_error *dst, const eg_error *src)
{
    if (!dst)
        return;
    if (!src) {
        eg_error_clear(dst);
        return;
    }
    if (dst != src)
        memcpy(dst, src, sizeof *dst);
}

void eg_error_prefix(eg_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[EG_ERR_MSG_MAX];
    char old[EG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Assemble by hand: the result is truncated on purpose when long. */
    size_t cap = sizeof err->message, n = 0;
    for (const char *parts[3] = {pre, ": ", old}, **pp = parts; pp < parts + 3; pp++) {
        size_t l = strlen(*pp);
        if (l > cap - 1 - n)
            l = cap - 1 - n;
        memcpy(err->message + n, *pp, l);
        n += l;
    }
    err->message[n] = '\0';
}

const char *eg_strerror(int code)
{
    switch (code) {
    case EG_OK: return "EG_OK";
    case EG_ENOMEM: return "EG_ENOMEM";
    case EG_EINVAL: return "EG_EINVAL";
    case EG_ENOTFOUND: return "EG_ENOTFOUND";
    case EG_ECONFLICT: return "EG_ECONFLICT";
    case EG_ETRANSIENT: return "EG_ETRANSIENT";
    case EG_ETIMEOUT: return "EG_ETIMEOUT";
    case EG_EPROTO: return "EG_EPROTO";
    case EG_ETOOBIG: return "EG_ETOOBIG";
    case EG_EIO: return "EG_EIO";
    case EG_EAUTH: return "EG_EAUTH";
    case EG_ECLOSED: return "EG_ECLOSED";
    case EG_ECLIENT: return "EG_ECLIENT";
    case EG_EDATABASE: return "EG_EDATABASE";
    case EG_ECANCELED: return "EG_ECANCELED";
    case EG_EUNSUPPORTED: return "EG_EUNSUPPORTED";
    case EG_ELOST: return "EG_ELOST";
    case EG_EINTERNAL: return "EG_EINTERNAL";
    default: return "EG_E?";
    }
}

const char *eg_class_name(eg_class klass)
{
    switch (klass) {
    case EG_CLASS_CLIENT: return "client";
    case EG_CLASS_TRANSIENT: return "transient";
    case EG_CLASS_DATABASE: return "database";
    case EG_CLASS_CONNECTION: return "connection";
    default: return "none";
    }
}
