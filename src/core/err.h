/*
 * err.h - error codes and the error object every fallible function fills.
 *
 * Every fallible function in engram returns an int: 0 (EG_OK) on success, a
 * negative EG_E* code on failure.  Detail travels in an explicit eg_error
 * passed as the last parameter (it may be NULL when the caller does not want
 * detail).  The struct holds only fixed-size buffers, so reporting an
 * out-of-memory condition never allocates.
 *
 * Why an explicit object and not a thread-local "last error": worker threads
 * hand errors across threads (a job's failure is recorded by the thread that
 * leased it, a pool error surfaces in whoever acquired), and a thread-local
 * makes stale messages easy.
 *
 * Classification: Neo4j status codes look like Neo.<Class>.<Category>.<Title>.
 * The class decides whether a unit of work may be retried.  Official drivers
 * retry every TransientError except Transaction.Terminated and
 * Transaction.LockClientStopped (those are really caused by the client), and
 * they retry connection failures.  eg_error.retryable carries that decision
 * so callers never parse codes themselves.
 *
 * Thread-safety: an eg_error is plain data owned by its caller.
 */
#ifndef ENGRAM_CORE_ERR_H
#define ENGRAM_CORE_ERR_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum eg_code {
    EG_OK = 0,
    EG_ENOMEM = -1,      /* allocation failed */
    EG_EINVAL = -2,      /* bad argument or malformed input */
    EG_ENOTFOUND = -3,   /* no such thing */
    EG_ECONFLICT = -4,   /* uniqueness / state conflict */
    EG_ETRANSIENT = -5,  /* temporary failure; the unit of work may be retried */
    EG_ETIMEOUT = -6,    /* a deadline passed */
    EG_EPROTO = -7,      /* the peer broke the protocol */
    EG_ETOOBIG = -8,     /* a cap from limits.h was hit */
    EG_EIO = -9,         /* I/O or connection failure */
    EG_EAUTH = -10,      /* authentication failed */
    EG_ECLOSED = -11,    /* the connection or object is closed / defunct */
    EG_ECLIENT = -12,    /* the database rejected the request (Neo.ClientError) */
    EG_EDATABASE = -13,  /* the database failed (Neo.DatabaseError) */
    EG_ECANCELED = -14,  /* the operation was cancelled */
    EG_EUNSUPPORTED = -15, /* feature or version not supported */
    EG_ELOST = -16,      /* a lease or fencing token no longer holds */
    EG_EINTERNAL = -17   /* a bug: an invariant did not hold */
} eg_code;

typedef enum eg_class {
    EG_CLASS_NONE = 0,
    EG_CLASS_CLIENT,      /* caller's fault: do not retry */
    EG_CLASS_TRANSIENT,   /* may succeed if retried */
    EG_CLASS_DATABASE,    /* server failure: do not retry */
    EG_CLASS_CONNECTION   /* network / connection: retry on a new connection */
} eg_class;

#define EG_ERR_NEO4J_CODE_MAX 128
#define EG_ERR_GQL_MAX 16
#define EG_ERR_MSG_MAX 512

typedef struct eg_error {
    int code;                           /* an eg_code; 0 when clear */
    eg_class klass;
    bool retryable;
    char neo4j_code[EG_ERR_NEO4J_CODE_MAX]; /* e.g. Neo.TransientError.Transaction.DeadlockDetected */
    char gql_status[EG_ERR_GQL_MAX];    /* e.g. 50N05, empty when absent */
    char message[EG_ERR_MSG_MAX];
} eg_error;

/* Reset to "no error".  Accepts NULL. */
void eg_error_clear(eg_error *err);

/*
 * Set code, class and message (printf-style).  Clears neo4j_code/gql_status.
 * retryable is derived from the class (transient and connection are
 * retryable).  Returns code so callers can write `return eg_error_set(...)`.
 * Accepts err == NULL (then only returns code).
 */
int eg_error_set(eg_error *err, int code, eg_class klass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int eg_error_setv(eg_error *err, int code, eg_class klass, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/*
 * The one out-of-memory message, for sinks other than an eg_error (a
 * JSON-RPC error, a log line).  Spelled once so logs can be grepped for it.
 */
#define EG_OOM_TEXT "out of memory"

/*
 * An allocation failed: EG_ENOMEM, not retryable, message EG_OOM_TEXT.
 * Never allocates.  Returns EG_ENOMEM, so `return eg_error_oom(err);`.
 * Accepts err == NULL.
 */
int eg_error_oom(eg_error *err);

/*
 * Fill err from a Neo4j FAILURE: classifies by the code (and by the GQL
 * classification when the code is unknown).  Returns the eg_code chosen
 * (EG_ETRANSIENT, EG_ECLIENT, EG_EDATABASE, EG_EAUTH).
 */
int eg_error_set_neo4j(eg_error *err, const char *neo4j_code, const char *gql_status,
                       const char *message);

/* Classify a Neo4j status code the way official drivers do. */
eg_class eg_error_classify_neo4j(const char *neo4j_code, bool *retryable_out);

/* Copy src into dst (both may be NULL). */
void eg_error_copy(eg_error *dst, const eg_error *src);

/* Prefix err->message with context ("while X: "); keeps code/class. */
void eg_error_prefix(eg_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Static name of a code, e.g. "EG_ETIMEOUT".  Never NULL. */
const char *eg_strerror(int code);

/* Static name of a class: "client", "transient", "database", "connection", "none". */
const char *eg_class_name(eg_class klass);

#endif
