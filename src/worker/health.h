/*
 * health.h - /health and /metrics over HTTP (libmicrohttpd), loopback by
 * default.
 *
 * /health answers 200 {"status":"ok"|"degraded",...} or 503
 * {"status":"unhealthy","reasons":[...],...}.  It is red when embeddings
 * stop being produced, even while Neo4j answers:
 *
 *   queue unreachable                      the store's status query failed
 *   provider failing                       >= ENGRAM_HEALTH_FAILURES (5)
 *                                          consecutive failed provider calls
 *   provider refused (quota, auth, config) the last provider outcome was a
 *                                          provider-wide error
 *   stalled                                a ready job has waited longer than
 *                                          ENGRAM_HEALTH_STALL_SECONDS (300)
 *                                          and no embedding succeeded in that
 *                                          time, in this process or (by the
 *                                          store's last 5 minutes) any other
 *                                          (also catches "no worker runs
 *                                          anywhere")
 *
 * What it shows of a failure is its kind (transient, rate_limit, quota...),
 * never the provider's own error text: that may carry account details and
 * the endpoint may be scraped from elsewhere (the worker's log has the text).
 *
 * "degraded" (still 200): dead jobs exist, or the provider is paused by a
 * rate limit.  Graphiti's /health stayed green through weeks of total
 * failure; this one may not.
 *
 * /metrics is Prometheus text format 0.0.4: jobs by state (from the store,
 * so all processes' jobs), this process's leased/completed/failed/dead/
 * superseded/released/lost totals, provider requests by outcome, a latency
 * histogram, tokens, throttled time, pause state, health as a gauge.
 *
 * The store's status is cached for ENGRAM_HEALTH_CACHE_MS (1000) so a busy
 * scraper cannot load the database.
 *
 * Thread-safety: the server runs its own thread; the functions are
 * thread-safe.
 */
#ifndef ENGRAM_WORKER_HEALTH_H
#define ENGRAM_WORKER_HEALTH_H

#include "core/buf.h"
#include "core/err.h"
#include "queue/job_store.h"
#include "worker/manager.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct worker_health_opts {
    const char *addr;        /* ENGRAM_HEALTH_ADDR, "127.0.0.1"; an address that is not loopback
                              * (127.0.0.0/8) needs a token: the server refuses to start without */
    const char *token;       /* ENGRAM_HEALTH_TOKEN: when set, every request must carry
                              * "Authorization: Bearer <token>" (else 401); NULL/"": none */
    int port;                /* ENGRAM_HEALTH_PORT, 9477; 0: ephemeral; <0: disabled */
    int64_t cache_ms;        /* ENGRAM_HEALTH_CACHE_MS, 1000 */
    int64_t stall_ms;        /* ENGRAM_HEALTH_STALL_SECONDS x 1000, 300000 */
    int unhealthy_failures;  /* ENGRAM_HEALTH_FAILURES, 5 */
} worker_health_opts;

/* Defaults then environment (strings borrowed from the environment). */
int worker_health_opts_from_env(worker_health_opts *out, eg_error *err);

/* What the verdict is computed from (a pure function, unit-tested). */
typedef struct worker_health_input {
    bool queue_ok;
    char queue_error[200];
    queue_status qs;              /* borrowed; valid when queue_ok */
    bool have_workers;            /* a manager runs in this process */
    worker_stats ws;              /* valid when have_workers */
    int64_t now_wall_ms;
    int64_t stall_ms;
    int unhealthy_failures;
} worker_health_input;

/*
 * Verdict and report.  *out is *new* JSON (json_decref).  Returns true when
 * healthy (HTTP 200).
 */
bool worker_health_evaluate(const worker_health_input *in, json_t **out);

typedef struct worker_health worker_health;

/*
 * Start the server.  store is borrowed; m may be NULL (a server without
 * workers still reports the queue).  Both must outlive the server.
 */
int worker_health_start(worker_health **out, const worker_health_opts *o, queue_store *store,
                        worker_manager *m, eg_error *err);
/* The bound port (useful with port 0). */
int worker_health_port(const worker_health *h);
void worker_health_stop(worker_health *h);

/* The two documents, for callers without the server (CLI, MCP tool).
 * *json_out is *new*; metrics are appended to out. */
int worker_health_check(worker_health *h, json_t **json_out, bool *healthy_out);
int worker_health_metrics(worker_health *h, eg_buf *out);

#endif
