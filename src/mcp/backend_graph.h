/*
 * backend_graph.h - the real MCP backend: tools over the Neo4j graph store
 * (graph/), the embedding job queue (queue/) and an embedding provider for
 * query vectors (embed/).
 *
 * Everything is borrowed: the caller (engram serve) builds the bolt pool,
 * the queue store, the graph store and, optionally, the in-server worker
 * manager, and frees them after the backend.
 *
 * Query vectors: semantic_search / hybrid_search embed the query text with
 * one provider built from `embed` (guarded by a mutex: a provider belongs
 * to one thread at a time).  When no provider can be built or it fails, the
 * searches fall back to keyword search and say so in "note".
 *
 * Thread-safety: all slots are safe to call concurrently (the graph and
 * queue stores are thread-safe; the provider is behind a mutex).
 */
#ifndef ENGRAM_MCP_BACKEND_GRAPH_H
#define ENGRAM_MCP_BACKEND_GRAPH_H

#include "embed/provider.h"
#include "graph/graph.h"
#include "mcp/backend.h"
#include "queue/job_store.h"
#include "worker/manager.h"

typedef struct mcp_graph_deps {
    graph_store *graph;          /* required */
    queue_store *queue;          /* NULL: queue tools report "not available" */
    const embed_config *embed;   /* NULL: no query vectors (keyword fallback) */
    worker_manager *workers;     /* NULL: no in-server workers to wake */
    int64_t sync_timeout_ms;     /* > 0 (synchronous mode, needs workers): a mutation
                                  * returns once its embeddings are written or this
                                  * long has passed (then they stay queued) */
    const char *vector_conflict; /* non-NULL: the vector index holds another model's
                                  * vectors (this text says so); no query is embedded */
} mcp_graph_deps;

/* Fill *out (a *new* backend; release with mcp_backend_graph_free). */
int mcp_backend_graph_new(mcp_backend *out, const mcp_graph_deps *deps, eg_error *err);
void mcp_backend_graph_free(mcp_backend *be);

#endif
