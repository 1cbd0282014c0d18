/*
 * backend.h - what the MCP tools call: a vtable of JSON-in/JSON-out
 * operations, one slot per tool.
 *
 * The protocol layer (server.c, tools.c) knows nothing about Neo4j.  A
 * backend receives the tool arguments *after* validation and coercion
 * against the tool's inputSchema (so required fields are present and typed)
 * and returns the structuredContent object, which must conform to the
 * tool's outputSchema.  Two backends exist:
 *
 *   backend_graph.c  - the real one, over graph/graph.h, queue/ and embed/;
 *   backend_mem.c    - an in-memory store with the same observable
 *                      behaviour, used by unit tests, the fuzz target and
 *                      `engram serve --backend memory` (demos, client tests
 *                      without Neo4j).
 *
 * Error convention for a slot: return 0 and set *out, or return a negative
 * EG_E* code and fill err.  EG_EINVAL / EG_ENOTFOUND / EG_ECONFLICT become a
 * tool result with isError:true whose text is err->message (write it for a
 * model: say what to change); other codes too, prefixed with their class, so
 * the model can decide to retry (transient) or give up.  A NULL slot means
 * "not available in this configuration" (also an isError result).
 *
 * Cancellation and progress: long operations poll mcp_call_cancelled()
 * between units of work and return EG_ECANCELED when it is true (the server
 * then sends nothing, as MCP requires); they may report progress with
 * mcp_call_progress(), which is a no-op unless the client sent a
 * progressToken.
 *
 * Thread-safety: the server calls slots from several worker threads at
 * once; a backend must be safe for concurrent calls.
 */
#ifndef ENGRAM_MCP_BACKEND_H
#define ENGRAM_MCP_BACKEND_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct mcp_call_ctx mcp_call_ctx;

/* True once the client cancelled this request (or the server is stopping). */
bool mcp_call_cancelled(const mcp_call_ctx *ctx);
/*
 * Send notifications/progress if the request carried _meta.progressToken.
 * progress must increase from call to call (it is clamped to do so); total
 * <= 0 means unknown; message may be NULL.
 */
void mcp_call_progress(mcp_call_ctx *ctx, double progress, double total, const char *message);
/* The rights the call runs under (access.h; borrowed), or NULL (stdio, or a
 * single-token server): any namespace, writes allowed. */
const struct mcp_grant *mcp_call_grant(const mcp_call_ctx *ctx);

/* args: borrowed, validated object.  *out: new object (structuredContent). */
typedef int (*mcp_backend_fn)(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out,
                              eg_error *err);

typedef struct mcp_backend {
    void *self;
    /* memento's tools */
    mcp_backend_fn create_entities;
    mcp_backend_fn create_relations;
    mcp_backend_fn add_observations;
    mcp_backend_fn delete_entities;
    mcp_backend_fn delete_observations;
    mcp_backend_fn delete_relations;
    mcp_backend_fn get_relation;
    mcp_backend_fn update_relation;
    mcp_backend_fn read_graph;
    mcp_backend_fn search_nodes;
    mcp_backend_fn open_nodes;
    mcp_backend_fn semantic_search;
    mcp_backend_fn get_entity_embedding;
    mcp_backend_fn get_entity_history;
    mcp_backend_fn get_relation_history;
    mcp_backend_fn get_graph_at_time;
    mcp_backend_fn get_decayed_graph;
    mcp_backend_fn force_generate_embedding;
    mcp_backend_fn debug_embedding_config;
    mcp_backend_fn diagnose_vector_search;
    /* engram's additions */
    mcp_backend_fn hybrid_search;
    mcp_backend_fn queue_status;
    mcp_backend_fn queue_list_jobs;
    mcp_backend_fn queue_retry_dead;
} mcp_backend;

/*
 * The in-memory backend (backend_mem.c).  *out is a *new* backend whose
 * self is owned by it; release with mcp_backend_mem_free().  Embeddings are
 * produced synchronously by the offline provider (embed/provider.h) from
 * graph_embedding_text, with `dims` dimensions (0: the provider's default,
 * so `engram serve --backend memory` ranks as the offline provider does in
 * production), so semantic search works without any configuration.
 */
int mcp_backend_mem_new(mcp_backend *out, unsigned dims, eg_error *err);
void mcp_backend_mem_free(mcp_backend *be);

#endif
