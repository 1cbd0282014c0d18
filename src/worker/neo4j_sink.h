/*
 * neo4j_sink.h - the worker sink on Neo4j (:Entity nodes, brief §4).
 *
 * load (one read transaction, one round trip for the whole batch):
 *   UNWIND the jobs, OPTIONAL MATCH (e:Entity {id}) in the job's namespace,
 *   return name, entityType, observations, contentHash and the embedding
 *   bookkeeping (embeddingHash, embeddingModel, embeddingDimensions).  The
 *   text is rebuilt with graph_embedding_text (memento's format), the same
 *   function the graph uses to compute contentHash.
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
