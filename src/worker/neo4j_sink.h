/*
 * neo4j_sink.h - the worker sink on Neo4j (:Entity nodes, docs/data-model.md).
 *
 * load (one read transaction, one round trip for the whole batch):
 *   graph_load_embed_inputs_tx, the graph's one batched reader: each job's
 *   entity (by id, in the job's namespace) with its text rebuilt by
 *   graph_embedding_text (memento's format, the function contentHash comes
 *   from), contentHash and the embedding bookkeeping; the sink decides gone /
 *   stale / already current / embed.
 * write (inside the queue's completion transaction, one round trip):
 *   graph_write_embeddings_tx, the graph's one fenced vector writer: lock
 *   each entity first, store the vector only where its contentHash still
 *   equals the job's; the others are superseded (changed or deleted).
 * index_dims: `vector.dimensions` of the configured vector index, 0 when
 *   the index does not exist yet.
 *
 * Every statement is parameterised; the index name is only compared, never
 * spliced.
 *
 * Thread-safety: thread-safe (the pool is).
 */
#ifndef ENGRAM_WORKER_NEO4J_SINK_H
#define ENGRAM_WORKER_NEO4J_SINK_H

#include "bolt/pool.h"
#include "worker/sink.h"

/*
 * *out is new (worker_sink_free).  pool is borrowed (must outlive the sink);
 * database (NULL: home) and vector_index are copied.
 */
int worker_neo4j_sink_new(worker_sink **out, bolt_pool *pool, const char *database, const char *vector_index,
                          eg_error *err);

#endif
