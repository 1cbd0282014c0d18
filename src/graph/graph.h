/*
 * graph.h - the knowledge-graph store: entities, observations, relations,
 * their temporal history, keyword/vector/hybrid search, and the hooks the
 * embedding workers need.  Backed by Neo4j through bolt_pool.
 *
 * Data model (docs/data-model.md has the why):
 *
 *   (:Entity {namespace, name, id, entityType, observations: [string],
 *             version, createdAt, updatedAt, validFrom, changedBy,
 *             contentHash,                       -- sha256 of the embed text
 *             embedding: [float], embeddingModel, embeddingDimensions,
 *             embeddingVersion, embeddingHash, embeddingUpdatedAt})
 *       -- only *live* entities; unique (namespace, name) constraint
 *   (:Entity)-[:RELATES_TO {id, relationType, strength, confidence,
 *             metadata (JSON text), version, createdAt, updatedAt,
 *             validFrom, changedBy}]->(:Entity)
 *       -- only *live* relations; at most one per (from, to, relationType)
 *   (:EntityVersion {namespace, name, entityId, version, entityType,
 *             observations, createdAt, updatedAt, validFrom, validTo,
 *             changedBy, deleted})
 *   (:RelationVersion {namespace, from, to, relationType, relationId,
 *             version, strength, confidence, metadata, createdAt,
 *             updatedAt, validFrom, validTo, changedBy, deleted})
 *       -- one node per version, *including* the current one (validTo null),
 *          so history and "graph at time t" read one label each.
 *
 * Entity version lifecycle:
 *
 *   (none) --create--> v1 live --add/delete obs, type change--> v2 live ...
 *                         |                                     |
 *                         +------------- delete_entities -------+--> gone
 *   every transition closes the previous EntityVersion (validTo = now) and
 *   writes a new one; delete writes no new version, it closes the last one
 *   and marks it deleted = true.  An unchanged update writes nothing.
 *
 * Namespaces are a partition: every function takes a graph_req whose
 * namespace (default: graph_opts.namespace) is applied in every query.
 *
 * Embedding jobs: every mutation that changes an entity's embedding text
 * (create, add/delete observations, type change) enqueues a job in the SAME
 * transaction through the queue module (dedupe key namespace + entity id +
 * content hash + model).  No embedding provider is ever called from here.
 * Results list the ids of the jobs they enqueued ("jobIds").  An entity keeps
 * its previous vector while a new one is pending (embeddingHash tells that it
 * is stale) so search never loses it.
 *
 * JSON conventions: inputs are borrowed json_t; outputs are *new* json_t the
 * caller frees with json_decref.  Entities come out as memento shapes:
 *   {"name","entityType","observations":[..],"id","version","createdAt",
 *    "updatedAt","validFrom","validTo":null,"changedBy"}
 * Relations as {"from","to","relationType","strength","confidence",
 *   "metadata":{..},"id","version","createdAt","updatedAt","validFrom",
 *   "validTo":null,"changedBy"} (null strength/confidence/metadata omitted).
 * Times are milliseconds since the epoch, from the database clock.
 *
 * Validation happens in C before any query: names and entity types must be
 * non-empty strings without NUL, observations strings (a JSON-string-encoded
 * array is accepted and decoded: memento issue #118), strength/confidence
 * numbers in [0,1], metadata an object.  Violations return EG_EINVAL with a
 * message naming the offending item (index and field).
 *
 * Bounded reads: read_graph, search_nodes, open_nodes, the searches, history
 * and graph-at-time take a graph_page (limit, cursor, byte budget).  Results
 * carry "nextCursor" (absent at the end) and "truncated": true when the byte
 * budget cut the page.  At least one entity is always returned when one is
 * available, so paging always advances.
 *
 * Thread-safety: a graph_store is immutable after graph_store_new and may be
 * shared by any number of threads (all database access goes through the
 * thread-safe bolt_pool).  Pure helpers are reentrant.  The *_tx functions
 * use the caller's connection and follow its (single-thread) rules.
 */
#ifndef ENGRAM_GRAPH_GRAPH_H
#define ENGRAM_GRAPH_GRAPH_H

#include "bolt/conn.h"
#include "bolt/pool.h"
#include "core/err.h"
#include "queue/job_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- caps on peer-controlled input (checked before any query) ---- */
#define GRAPH_MAX_NAME_BYTES 4096u            /* entity name, type, relationType */
#define GRAPH_MAX_OBSERVATION_BYTES (4u * 1024u * 1024u)
#define GRAPH_MAX_OBSERVATIONS 10000u         /* per entity */
#define GRAPH_MAX_BATCH 1000u                 /* items per mutation call */
/* Fewer bytes than any relation's JSON takes (keys alone are ~150): how
 * many relations a byte budget can hold at most (read_graph caps its
 * relation query with it). */
#define GRAPH_REL_MIN_BYTES 64u
#define GRAPH_MAX_QUERY_BYTES 65536u          /* search query text */
#define GRAPH_MAX_LIMIT 1000u                 /* page/search limit */
#define GRAPH_MAX_NAMESPACE_BYTES 256u
#define GRAPH_MAX_VECTOR_DIMS 8192u

/* ---- configuration ---- */

typedef enum graph_similarity { GRAPH_SIM_COSINE = 0, GRAPH_SIM_EUCLIDEAN } graph_similarity;

typedef struct graph_opts {
    const char *ns;       /* default namespace; ENGRAM_NAMESPACE, "default" */
    const char *vector_index;     /* NEO4J_VECTOR_INDEX, "entity_embeddings"; validated identifier */
    const char *fulltext_index;   /* ENGRAM_FULLTEXT_INDEX, "entity_fulltext"; validated identifier */
    size_t vector_dimensions;     /* NEO4J_VECTOR_DIMENSIONS, 1536 */
    graph_similarity similarity;  /* NEO4J_SIMILARITY_FUNCTION, cosine */
    const char *embedding_model;  /* OPENAI_EMBEDDING_MODEL, "text-embedding-3-small": model on jobs */
    const char *changed_by;       /* default changedBy; ENGRAM_CHANGED_BY, NULL */
    size_t default_limit;         /* ENGRAM_PAGE_LIMIT, 100 (search: 10 like memento) */
    size_t max_response_bytes;    /* ENGRAM_MAX_RESPONSE_BYTES, 1 MiB: page byte budget */
    double decay_half_life_days;  /* ENGRAM_DECAY_HALF_LIFE_DAYS, 30 */
    double decay_min_confidence;  /* ENGRAM_DECAY_MIN_CONFIDENCE, 0.1 */
    bool substring_search;        /* ENGRAM_SEARCH_SUBSTRING, true: fill keyword pages with
                                     case-insensitive substring matches (memento's semantics;
                                     through the trigram index, search.c) */
    const char *database;         /* NEO4J_DATABASE for transactions; NULL: home db */
    size_t index_linger_ms;       /* ENGRAM_SEARCH_INDEX_LINGER_MS, 100: graph_indexer_start */
    size_t index_poll_ms;         /* ENGRAM_SEARCH_INDEX_POLL_MS, 5000: graph_indexer_start */
    const char *obs_vector_index;   /* ENGRAM_OBSERVATION_VECTOR_INDEX, "observation_embeddings":
                                       vector index on live :Observation(embedding); validated */
    const char *obs_fulltext_index; /* ENGRAM_OBSERVATION_FULLTEXT_INDEX, "observation_fulltext":
                                       full-text index on live :Observation(text); validated */
    int64_t tx_timeout_ms;          /* ENGRAM_GRAPH_TX_TIMEOUT_MS, 60000: the Bolt tx_timeout of every
                                       graph transaction, so a server cut off mid-transaction cannot
                                       hold entity locks until TCP notices; 0: the server's own */
    int64_t index_grace_ms;         /* ENGRAM_SEARCH_INDEX_GRACE_MS, 60000: graph_indexer_start */
} graph_opts;

#define GRAPH_OPTS_INIT                                                                     \
    { "default", "entity_embeddings", "entity_fulltext", 1536, GRAPH_SIM_COSINE,           \
      "text-embedding-3-small", NULL, 100, 1024u * 1024u, 30.0, 0.1, true, NULL, 100, 5000,         \
      "observation_embeddings", "observation_fulltext", 60000, 60000 }

/*
 * Fill *out from the environment (variables above), starting from
 * GRAPH_OPTS_INIT.  String fields point into the environment (borrowed;
 * valid while the environment is not modified) or to static defaults.
 * Returns EG_EINVAL for a bad value (dimensions not a positive integer <=
 * GRAPH_MAX_VECTOR_DIMS, unknown similarity, index name not an identifier).
 */
int graph_opts_from_env(graph_opts *out, eg_error *err);

/* Check everything graph_store_new would reject. */
int graph_opts_validate(const graph_opts *o, eg_error *err);

/* ---- the store ---- */

typedef struct graph_store graph_store;

/*
 * New store over a *borrowed* pool and a *borrowed* queue store (both must
 * outlive the store; queue may be NULL: no embedding jobs are enqueued, for
 * tests and read-only tools).  Option strings are copied.  Does not touch the
 * database; register/apply the migrations (graph_schema_*) before use.
 */
int graph_store_new(graph_store **out, bolt_pool *pool, queue_store *queue, const graph_opts *opts,
                    eg_error *err);
void graph_store_free(graph_store *g);
/* Borrowed; valid for the store's life. */
const graph_opts *graph_store_opts(const graph_store *g);

/*
 * The substring index's upkeep (indexer.c).  One-entity writes label their
 * entity :SearchStale instead of updating the TEXT index in their own
 * commit; search reads stale entities directly, so results never wait for
 * this.  graph_search_index_stale indexes up to `max` stale entities (of
 * every namespace, however recent) in one transaction and says how many.
 * graph_indexer_start runs the upkeep on a thread of this store: `linger_ms`
 * after the first write it is poked by (so a burst shares one commit), for
 * the namespaces this process wrote; and every `poll_ms`, for entities of
 * any namespace stale for longer than `grace_ms` (what other processes left
 * stale: one that died before its batch, or runs no indexer).  The grace
 * keeps one process's indexer off the entities another process is about
 * to index itself.  Call it once, before the store is shared between
 * threads; graph_store_free stops it.
 */
int graph_search_index_stale(graph_store *g, size_t max, size_t *indexed, eg_error *err);
int graph_indexer_start(graph_store *g, int64_t linger_ms, int64_t poll_ms, int64_t grace_ms, eg_error *err);
void graph_indexer_stop(graph_store *g);

/* Per-call context.  NULL fields (or a NULL graph_req*) take the defaults. */
typedef struct graph_req {
    const char *ns;   /* partition; NULL: opts.ns */
    const char *changed_by;   /* who; NULL: opts.changed_by (per-item changedBy wins) */
} graph_req;

#define GRAPH_REQ_INIT {NULL, NULL}

/* A page request.  limit 0: default; cursor NULL: first page; max_bytes 0: opts. */
typedef struct graph_page {
    size_t limit;
    const char *cursor;   /* opaque, from a previous "nextCursor" */
    size_t max_bytes;
} graph_page;

#define GRAPH_PAGE_INIT {0, NULL, 0}

/* ---- schema ---- */

/*
 * Register the graph's migrations (module "graph") with the schema manager
 * (schema/schema.h): 1 live-entity constraints (unique (namespace, name) and
 * id on :Entity), 2 history and relation indexes, 3 the full-text index,
 * 4 the vector index (name, dimensions, similarity from the store's opts,
 * the validated index names being the only identifiers spliced into Cypher),
 * 5 the full-text index recreated eventually consistent, ... 9-11 the
 * observation records' constraint and indexes, 12 the data migration to
 * observation records (graph_obs_convert; its jobs go to the store's queue,
 * so register a store with one where data may need converting).
 * The registry borrows the store (options and queue): keep it alive while
 * the registry may apply them (or re-register).  Not thread-safe (one static
 * module entry per process): call it from one thread at start-up.
 */
int graph_schema_register(graph_store *g, eg_error *err);

/*
 * The statements of migration `version` (1..GRAPH_SCHEMA_VERSIONS) for opts:
 * *stmts_out is a *new* array of *new* strings (graph_strv_free).  Exposed
 * for tests and `engram doctor`.
 */
#define GRAPH_SCHEMA_VERSIONS 7
int graph_schema_statements(const graph_opts *opts, int version, char ***stmts_out, size_t *n_out,
                            eg_error *err);
void graph_strv_free(char **v, size_t n);

/*
 * Verify that the database's indexes match the configuration: the vector
 * index exists on :Entity(embedding) with the configured dimensions and
 * similarity, and the full-text index exists.  CREATE ... IF NOT EXISTS
 * keeps an older index silently (memento users with 1536 dimensions who set
 * 3072), so this is what turns that into an error: EG_ECONFLICT with a
 * message saying what to do.  The observation indexes are checked the same
 * way (vector index on :Observation(embedding) with the same dimensions and
 * similarity, full-text index on :Observation(text)).  *report_out (may be
 * NULL) is a *new* object {vectorIndex, fulltextIndex,
 * observationVectorIndex, observationFulltextIndex, ok, problem?}.
 */
int graph_schema_check(graph_store *g, json_t **report_out, eg_error *err);

/*
 * Register, schema_apply() everything registered, wait until all indexes
 * are ONLINE (timeout_ms 0: 60 s), then graph_schema_check().  Convenience
 * for tests and start-up.
 */
int graph_schema_apply(graph_store *g, int timeout_ms, eg_error *err);

/* ---- mutations (one managed write transaction each, retried on transient errors) ---- */

/*
 * entities: [{name, entityType, observations[], changedBy?}] (other memento
 * fields such as id/version/createdAt are accepted and ignored).  A name that
 * already lives in the namespace is not duplicated: its new observations are
 * merged in (a new version if anything changed).  Concurrent calls with the
 * same name produce one entity (unique constraint + MERGE).
 * *out (new): {"entities":[entity...],   -- created or changed, current state
 *              "created":[name...], "updated":[name...], "unchanged":[name...],
 *              "jobIds":[id...]}
 */
int graph_create_entities(graph_store *g, const graph_req *req, const json_t *entities,
                          json_t **out, eg_error *err);

/*
 * relations: [{from, to, relationType, strength?, confidence?, metadata?, changedBy?}].
 * Existing live (from, to, relationType) relations are left alone; missing
 * endpoints are reported, not silently dropped.
 * *out (new): {"relations":[created relation...], "existing":[relation...],
 *              "skipped":[{"from","to","relationType","reason"}]}
 */
int graph_create_relations(graph_store *g, const graph_req *req, const json_t *relations,
                           json_t **out, eg_error *err);

/*
 * observations: [{entityName, contents[]}] (strength/confidence/metadata at
 * either level are accepted and ignored, like memento).  Duplicates of
 * existing observations are skipped.  An unknown entity fails the whole call
 * with EG_ENOTFOUND (nothing is written).
 * *out (new): {"results":[{"entityName","addedObservations":[..],"version"}],
 *              "jobIds":[..]}
 */
int graph_add_observations(graph_store *g, const graph_req *req, const json_t *observations,
                           json_t **out, eg_error *err);

/*
 * deletions: [{entityName, observations[]}].  Unknown entities are skipped
 * (reported), like memento.
 * *out (new): {"results":[{"entityName","deletedObservations":[..],"version"}],
 *              "notFound":[name..], "jobIds":[..]}
 */
int graph_delete_observations(graph_store *g, const graph_req *req, const json_t *deletions,
                              json_t **out, eg_error *err);

/*
 * names: [string].  Closes the entity's history and the history of all its
 * relations (kept, queryable), then removes the live nodes.
 * *out (new): {"deleted":[name..], "notFound":[name..]}
 */
int graph_delete_entities(graph_store *g, const graph_req *req, const json_t *names,
                          json_t **out, eg_error *err);

/*
 * relations: [{from, to, relationType}].  *out (new): {"deleted":[rel..], "notFound":[rel..]}
 */
int graph_delete_relations(graph_store *g, const graph_req *req, const json_t *relations,
                           json_t **out, eg_error *err);

/*
 * relation: {from, to, relationType, strength?, confidence?, metadata?, changedBy?}.
 * Writes version+1, carrying unspecified fields.  EG_ENOTFOUND when no live
 * relation matches.  *out (new): the updated relation.
 */
int graph_update_relation(graph_store *g, const graph_req *req, const json_t *relation,
                          json_t **out, eg_error *err);

/* ---- reads (managed read units of auto-commit queries, graph__read) ---- */

/* *out (new): the live relation; EG_ENOTFOUND if none. */
int graph_get_relation(graph_store *g, const graph_req *req, const char *from, const char *to,
                       const char *relation_type, json_t **out, eg_error *err);

/*
 * Live entities ordered by name, paged; with the relations *outgoing* from
 * the page's entities (so every relation appears on exactly one page).
 * *out (new): {"entities":[..],"relations":[..],"total":<live entities>,
 *              "nextCursor"?, "truncated"?, "timeTaken":ms}
 */
int graph_read_graph(graph_store *g, const graph_req *req, const graph_page *page, json_t **out,
                     eg_error *err);

/*
 * Keyword search over name, entityType and observations through the
 * full-text index.  The query is taken literally: Lucene syntax is escaped
 * and the text searched as a phrase; when fewer than `limit` hits come back,
 * case-insensitive substring matches fill the page (memento's behaviour).
 * Empty query: entities ordered by name.  *out (new):
 * {"entities":[entity + "score"],"relations":[among them],"nextCursor"?,"truncated"?}
 */
int graph_search_nodes(graph_store *g, const graph_req *req, const char *query,
                       const graph_page *page, json_t **out, eg_error *err);

/* names: [string].  *out (new): {"entities":[..],"relations":[among them],"notFound"?,"truncated"?} */
int graph_open_nodes(graph_store *g, const graph_req *req, const json_t *names,
                     const graph_page *page, json_t **out, eg_error *err);
/*
 * As graph_open_nodes; with neighbours, "relations" are those with at least
 * one end among the found entities (at most 200, "neighboursTruncated" when
 * there were more) and "neighbours" lists the entities at their other ends
 * ([{name, entityType}]): an entity's neighbourhood in one read.
 */
int graph_open_nodes_with(graph_store *g, const graph_req *req, const json_t *names, const graph_page *page,
                          bool neighbours, json_t **out, eg_error *err);

typedef struct graph_search_opts {
    size_t limit;               /* 0: 10 */
    double min_similarity;      /* >= this score (0 allowed); < 0: 0.  Default is the caller's (memento: 0.6) */
    const json_t *entity_types; /* borrowed array of strings; NULL/empty: any */
    double semantic_weight;     /* hybrid: weight of the vector ranking in [0,1] (GRAPH_SEMANTIC_WEIGHT) */
    size_t max_bytes;           /* 0: opts */
} graph_search_opts;

/*
 * Hybrid search's fusion (graph_score_fuse): a weighted sum of each leg's
 * normalised score, semantic_weight on the vector leg, applied to entities
 * and to observations alike.  It was 0.2 while an entity had one vector
 * covering its first 256/512 tokens; with observation vectors the vector leg
 * is much stronger, and on the development half of LoCoMo (bench/run recall,
 * docs/architecture.md) 0.35 and 0.5 tie on every figure while 0.2 and 0.7
 * lose on all: 0.35 is the lower end of that flat region, where a keyword
 * first place with a clear margin still holds.  Not a fitted optimum.
 */
#define GRAPH_SEMANTIC_WEIGHT 0.35

/*
 * Search at observation granularity: each result entity carries
 * "matchedObservations", its best-matching live observations (text, score,
 * and the legs' similarity/vectorRank and keywordScore/keywordRank), at most
 * this many, best first.  Ten entities (the default limit) thus bring up to
 * 50 observations, enough to rank single turns at R@10 (bench/run recall).
 */
#define GRAPH_MATCHED_OBS_MAX 5

/*
 * Whether the vector leg also asks the whole-entity vector index (an entity's
 * own vector as one more candidate text beside its observations').  It does
 * not: on the development half of LoCoMo (bge-small-en-v1.5) the vector leg
 * with and without it scores session R@10 0.926 / 0.925, hybrid 0.978 /
 * 0.976 and turn R@10 0.678 / 0.678 (runs 2026-12-05-recall-dev-obs-*), so it
 * would cost one more vector query per search for nothing.
 */
#define GRAPH_SEARCH_ENTITY_VECTOR 0

#define GRAPH_SEARCH_OPTS_INIT {10, 0.6, NULL, GRAPH_SEMANTIC_WEIGHT, 0}

/*
 * Vector search over live entities of the namespace (over-fetching from the
 * index because namespace/type filters apply after it).  `vec` has `dims`
 * floats and dims must equal opts.vector_dimensions (EG_EINVAL otherwise).
 * Scores are Neo4j's normalised similarity in [0,1].  *out (new):
 * {"entities":[entity + "score"],"relations":[among them],"searchType":"semantic"}
 */
int graph_semantic_search(graph_store *g, const graph_req *req, const float *vec, size_t dims,
                          const graph_search_opts *o, json_t **out, eg_error *err);

/*
 * Hybrid: the keyword leg (BM25 over the query's terms) and the vector leg,
 * each 3 x limit deep (at least 30), fused by graph_score_fuse with
 * semantic_weight on the vector leg.  vec may be NULL (no provider / query not embedded), and
 * when no entity of the namespace has a vector yet the result is keyword
 * search with "fallback":"keyword" and a "note" saying why.  Each hit carries
 * "score" (fused), "keywordRank", "keywordScore" (BM25), "vectorRank",
 * "similarity" where known.
 * *out (new): {"entities":[..],"relations":[..],"searchType":"hybrid"|"keyword", ...}
 */
int graph_hybrid_search(graph_store *g, const graph_req *req, const char *query, const float *vec,
                        size_t dims, const graph_search_opts *o, json_t **out, eg_error *err);

/*
 * Where graph_hybrid_search_deferred gets its query vector.  Called at most
 * once per search, inside it, while the keyword legs run in Neo4j (on a
 * second connection when the pool has one free, else after them): a caller
 * that computes the vector meanwhile (a local encoder takes ~20 ms of CPU, a
 * remote API longer) overlaps the two instead of adding them.  Sets
 * *vec (borrowed from the caller, valid until the search returns; NULL: no
 * vector, keyword search) and *dims; returns 0, or an error code with err
 * filled (EG_ECANCELED when the client gave up), which ends the search.
 */
typedef int (*graph_vec_source)(void *arg, const float **vec, size_t *dims, eg_error *err);

/* graph_hybrid_search with the query vector from src(arg), asked for while the keyword legs run. */
int graph_hybrid_search_deferred(graph_store *g, const graph_req *req, const char *query, graph_vec_source src,
                                 void *arg, const graph_search_opts *o, json_t **out, eg_error *err);

/*
 * *out (new): {"entityName","embedding":[..],"model","dimensions","lastUpdated",
 *   "embeddedVersion","currentVersion","stale":bool}; EG_ENOTFOUND when the
 *   entity does not exist or has no vector yet (message says which).
 */
int graph_get_entity_embedding(graph_store *g, const graph_req *req, const char *name,
                               json_t **out, eg_error *err);

/* All versions of `name` (also deleted incarnations), oldest first.  *out (new): {"history":[entity version..]} */
int graph_get_entity_history(graph_store *g, const graph_req *req, const char *name,
                             const graph_page *page, json_t **out, eg_error *err);

/* All versions of the relation, oldest first.  *out (new): {"history":[relation version..]} */
int graph_get_relation_history(graph_store *g, const graph_req *req, const char *from,
                               const char *to, const char *relation_type, const graph_page *page,
                               json_t **out, eg_error *err);

/*
 * The graph as it was at t_ms: versions with validFrom <= t < validTo (or
 * validTo null).  *out (new): {"entities":[..],"relations":[..],"timestamp":t,"nextCursor"?}
 */
int graph_get_graph_at_time(graph_store *g, const graph_req *req, int64_t t_ms,
                            const graph_page *page, json_t **out, eg_error *err);

typedef struct graph_decay_opts {
    int64_t reference_time_ms;  /* 0: now (database clock) */
    double half_life_days;      /* <= 0: opts */
    double min_confidence;      /* < 0: opts (floor; 0 allowed) */
} graph_decay_opts;

#define GRAPH_DECAY_OPTS_INIT {0, 0.0, -1.0}

/*
 * Live graph with each relation's confidence decayed by the age of its
 * current version (reference - validFrom): see graph_decay().  Relations
 * keep "confidence" (decayed) and gain "originalConfidence".
 * *out (new): {"entities":[..],"relations":[..],"decay":{referenceTime,halfLifeDays,minConfidence}}
 */
int graph_get_decayed_graph(graph_store *g, const graph_req *req, const graph_decay_opts *d,
                            const graph_page *page, json_t **out, eg_error *err);

/*
 * Enqueue embedding jobs: for `name`, one job for its current version (an
 * existing job for that version is reported as "existing", not duplicated:
 * the queue never re-runs a key; `engram queue retry` revives dead jobs);
 * with name NULL, backfill up to `limit` (0: 10) live entities of the
 * namespace that have no vector or a stale one, computing the content hash of
 * entities that predate engram.  `force`: an existing job that is dead is
 * revived (pending, fresh attempt budget), so a forced call always leaves
 * work queued or done.  Each entity taken also gets jobs for its live
 * observation records that lack a vector for their text (a record with a
 * current vector is left alone: its text never changes).
 * *out (new): {"jobIds":[..],"entities":[name..],"created":n,"existing":n,
 *              "observations":n (record jobs among jobIds),"revived":n (force only)}
 */
int graph_force_generate_embedding(graph_store *g, const graph_req *req, const char *name,
                                   size_t limit, bool force, json_t **out, eg_error *err);

/*
 * The model a namespace's vectors come from (vector_model.c): recorded on an
 * (:EngramVectorModel {namespace}) node that the first engram to start on
 * the namespace claims, from the vectors already stored or else from its
 * configuration (opts.ns, opts.embedding_model).
 */
typedef struct graph_vector_model {
    char model[128];          /* the index's model */
    long long dims;           /* its dimension */
    char switching_to[128];   /* "" unless a switch is under way */
} graph_vector_model;

/*
 * Claim (claim true: serve and worker at start) or only read (doctor) the
 * record into *out; EG_ECONFLICT (the message says what to run) when it
 * names another model than opts.embedding_model, or a switch is under way.
 * Reading an unclaimed, vector-less database gives model "" and 0.
 */
int graph_vector_model_check(graph_store *g, bool claim, graph_vector_model *out, eg_error *err);

/* Called during a switch with the number of old vectors removed so far. */
typedef void (*graph_switch_progress_fn)(void *ctx, long long removed);

/*
 * Switch the namespace opts.ns to opts.embedding_model: mark the record,
 * remove the namespace's old vectors, entities' and observation records'
 * (bounded batches), record the new model.  When a vector index's (entity
 * or observation) dimension differs from opts.vector_dimensions that index
 * is dropped and created again first (it holds one dimension: other
 * namespaces then need the switch too).
 * Resumable: running it again after a crash finishes the job.  The caller
 * re-embeds.
 */
int graph_vector_model_switch(graph_store *g, graph_switch_progress_fn progress, void *ctx, eg_error *err);

/* *out (new): index name/dims/similarity/model, entity/embedded/stale counts, index state. */
int graph_debug_embedding_config(graph_store *g, const graph_req *req, json_t **out, eg_error *err);

/* *out (new): counts, index state from SHOW VECTOR INDEXES, a probe query and its result/error. */
int graph_diagnose_vector_search(graph_store *g, const graph_req *req, json_t **out,
                                 eg_error *err);

/* ---- hooks for the embedding workers ----
 *
 * Jobs the graph enqueues carry: ns = namespace, entity = the entity's stable
 * id (survives versions; a deleted-and-recreated name gets a new id),
 * version = the entity version as a decimal string, model = opts.embedding_model,
 * payload = {"name":..., "hash": <contentHash at enqueue>}.  An observation
 * record's job has entity = the record's id (32 hex digits, never a UUID),
 * version "1", payload {"name": <entity name>, "hash", "kind":"observation"};
 * the hooks below take both kinds of id alike (a record's text is
 * graph_observation_text, its version 1; it is found only while live and
 * while its entity exists).
 * A worker: lease -> load the entity's text (graph_load_embed_input_tx or
 * _inputs by job.entity; the workers' Neo4j sink reads the same fields in
 * one batch) -> embed (no transaction open) -> queue_complete whose write_fn
 * calls graph_write_embeddings_tx(tx->conn, rows, ...) - the one fenced
 * vector writer - and sets superseded_out[i] when a row's status is
 * SUPERSEDED or GONE.
 */

/* What a worker needs to embed one entity. */
typedef struct graph_embed_input {
    char *ns;    /* new (all strings); graph_embed_input_clear frees them */
    char *entity_id;
    char *name;
    int64_t version;
    char *text;          /* the embedding text, see graph_embedding_text */
    char hash[65];       /* hex sha256 of text */
    bool found;          /* false: the entity (or live record, or its entity) no longer exists */
    /* as stored (graph_load_embed_inputs_tx; "" / 0 / false when absent): */
    char content_hash[65];     /* contentHash: the hash jobs are fenced on */
    char embedding_hash[65];   /* embeddingHash of the vector it has */
    char embedding_model[128]; /* embeddingModel */
    int64_t embedding_dims;    /* embeddingDimensions */
    bool has_vector;           /* an embedding is stored */
} graph_embed_input;

/* One entity to load for embedding (borrowed strings). */
typedef struct graph_embed_ref {
    const char *ns;
    const char *entity_id;
} graph_embed_ref;

/*
 * The one batched reader of embedding inputs (the workers' sink uses it):
 * n entities by id in one statement on the caller's connection (in its
 * transaction if one is open).  out[i] is filled for every ref, found =
 * false for those that no longer exist; free each with
 * graph_embed_input_clear.
 */
int graph_load_embed_inputs_tx(bolt_conn *c, const graph_embed_ref *refs, size_t n, graph_embed_input *out,
                               eg_error *err);

void graph_embed_input_clear(graph_embed_input *in);

/*
 * Load the current embedding input of one entity, by entity_id (preferred)
 * or by name when entity_id is NULL.  Runs on the caller's connection (in
 * its transaction if one is open, else auto-commit).  out->found = false
 * when it does not exist.
 */
int graph_load_embed_input_tx(bolt_conn *c, const char *ns, const char *entity_id,
                              const char *name, graph_embed_input *out, eg_error *err);

/* Same through the pool (a read unit), for n refs; out[i] filled for each. */
int graph_load_embed_inputs(graph_store *g, const char *ns, const char *const *entity_ids,
                            size_t n, graph_embed_input *out, eg_error *err);

typedef enum graph_write_status {
    GRAPH_EMBED_WRITTEN = 0,    /* vector stored on the entity */
    GRAPH_EMBED_SUPERSEDED,     /* entity's text changed since (hash differs): nothing written */
    GRAPH_EMBED_GONE            /* entity deleted, or record closed: nothing written */
} graph_write_status;

/* One vector to store (everything borrowed). */
typedef struct graph_embedding_row {
    const char *ns;
    const char *entity_id;
    const char *hash;     /* contentHash of the text the vector was computed from */
    const char *model;
    const float *vec;
    size_t dims;
    int tokens;           /* tokens the model read (0: not known), kept as embeddingTokens */
    bool truncated;       /* the text was cut to the model's limit, kept as embeddingTruncated */
} graph_embedding_row;

/*
 * The one fenced vector writer (the workers' sink and graph_write_embedding_tx
 * both use it): in the caller's open transaction and one round trip, for
 * each row take the entity's write lock *first* (Neo4j is read-committed; a
 * check before the lock would not protect anything), then store the vector
 * with db.create.setNodeVectorProperty (float32) and the bookkeeping
 * (embeddingModel, embeddingDimensions, embeddingVersion, embeddingHash,
 * embeddingUpdatedAt, embeddingTokens, embeddingTruncated) only where
 * contentHash still equals the row's hash and the namespace's model record
 * names the row's model.  status_out[i]: WRITTEN, SUPERSEDED (text changed,
 * or another model's namespace) or GONE (no such live entity).  Non-finite
 * values are EG_EINVAL.  Dimensions are not checked here (the caller knows
 * the index's).
 */
int graph_write_embeddings_tx(bolt_conn *c, const graph_embedding_row *rows, size_t n,
                              graph_write_status *status_out, eg_error *err);

/*
 * One vector through graph_write_embeddings_tx, with dims checked against
 * the configured dimensions (EG_EINVAL).
 */
int graph_write_embedding_tx(bolt_conn *c, const graph_opts *opts, const char *ns,
                             const char *entity_id, const char *hash, const char *model,
                             const float *vec, size_t dims, graph_write_status *status_out,
                             eg_error *err);

/* ---- pure helpers (unit-tested; reentrant) ---- */

/* ^[A-Za-z_][A-Za-z0-9_]*$ and at most 128 bytes. */
bool graph_identifier_valid(const char *s);

/*
 * Escape every Lucene query metacharacter (+ - & | ! ( ) { } [ ] ^ " ~ * ? :
 * \ /) with a backslash.  *out is *new* (eg_free).
 */
int graph_lucene_escape(const char *in, char **out, eg_error *err);

/*
 * The full-text query for a literal user string: the escaped text as a
 * phrase ("..."), or NULL in *out when the text has no indexable
 * characters (then only substring matching applies).  *out is *new*.
 */
int graph_lucene_phrase(const char *in, char **out, eg_error *err);

#define GRAPH_MAX_QUERY_TERMS 64   /* terms of one keyword query (the rest are ignored) */
#define GRAPH_TERM_MAX_BYTES 64    /* bytes of one term (a longer word is cut) */

/*
 * A term query for the full-text index (BM25): the text's words, lower-cased,
 * English function words dropped, each once, joined by OR, at most
 * GRAPH_MAX_QUERY_TERMS.  Words are runs of ASCII letters and digits and
 * non-ASCII bytes, so no Lucene syntax can pass and the query always parses.
 * NULL in *out when no term remains (only stop words or punctuation).
 * *out is *new*.
 */
int graph_lucene_terms(const char *in, char **out, eg_error *err);

/*
 * Export: the namespace's graph as JSON lines, handed one at a time to fn
 * (which returns 0, or an error to stop), streamed from one read
 * transaction (read committed, not a snapshot; constant memory).  Official
 * format: {"type":"entity",name,entityType,observations} and
 * {"type":"relation",from,to,relationType} lines, the official memory
 * server's memory.jsonl.  engram format: a header line
 * {"type":"engram-export","format":1,"namespace","exportedAt","vectors"},
 * then "entity" (live state, ids, versions, times; with vectors: embedding,
 * embeddingModel, embeddingHash), "entityVersion", "relation" (strength,
 * confidence, metadata as JSON text) and "relationVersion" lines: the whole
 * history.  The lines passed to fn are borrowed.
 */
typedef enum graph_export_format { GRAPH_EXPORT_ENGRAM = 0, GRAPH_EXPORT_OFFICIAL } graph_export_format;

typedef struct graph_export_opts {
    graph_export_format format;
    bool vectors;            /* engram format: include each entity's vector and model */
} graph_export_opts;

typedef int (*graph_export_line_fn)(void *ctx, const json_t *line, eg_error *err);

typedef struct graph_export_stats {
    int64_t entities, entity_versions, relations, relation_versions;
} graph_export_stats;

int graph_export(graph_store *g, const graph_req *req, const graph_export_opts *o, graph_export_line_fn fn,
                 void *ctx, graph_export_stats *st, eg_error *err);

/*
 * Restore: records of engram's export format, all of one kind ("entity",
 * "entityVersion", "relation", "relationVersion"), into req's namespace in
 * one write transaction; restore.c says how ids, existing records and
 * embeddings are handled.  source_ns: the namespace named in the file's
 * header (ids are kept when it is the target).  Counts are added to *st.
 * Restore entities before their relations.  The format carries each
 * version's observation list: once every record is restored, call
 * graph_obs_convert for the namespace to make the observation records (and
 * their jobs) from them - before it, history reads the lists, but a change
 * to a restored entity would lose its older observations from history.
 */
typedef struct graph_restore_stats {
    int64_t entities, entities_existing, entity_versions;
    int64_t relations, relations_existing, relations_skipped, relation_versions;
    int64_t jobs;
} graph_restore_stats;

int graph_restore(graph_store *g, const graph_req *req, const char *source_ns, const char *kind,
                  const json_t *records, graph_restore_stats *st, eg_error *err);
/* 0 when rec is a well-formed record of the export format, else EG_EINVAL
 * with the reason in why. */
int graph_restore_check(const json_t *rec, char *why, size_t cap);

/*
 * The backfill scan of `engram reembed`: entities, then live observation
 * records, that need a vector for a model (or all of them), paged by id.  Each page locks its entities (as
 * every graph write does), reads their content after the lock and enqueues
 * their jobs in the same transaction, so a mutation that races the scan is
 * never left without a job for its content (reembed.c says why).
 */
#define GRAPH_REEMBED_CURSOR_MAX 512

typedef struct graph_reembed_opts {
    const char *ns;        /* NULL: every namespace */
    const char *model;     /* the model the jobs are for (required) */
    int dims;              /* the dimensions that model produces */
    bool all;              /* every entity, even with a current vector */
    const char *tag;       /* with all: makes the jobs' keys new (required then) */
    size_t batch;          /* entities per page/transaction; 0: 500 */
    /* Test hook: runs inside each page's transaction after its entities
     * are locked and read, before their jobs are enqueued.  NULL: none. */
    void (*after_read)(void *ctx);
    void *hook_ctx;
} graph_reembed_opts;

/*
 * Where a scan stands; zero it to start.  Counts add up across pages.  The
 * scan visits the entities, then the live observation records (each has its
 * own vector, so a model switch or a backfill re-embeds them too).
 */
typedef struct graph_reembed_cursor {
    char after[GRAPH_REEMBED_CURSOR_MAX]; /* last id done in the current phase */
    int phase;                            /* 0: entities, 1: observation records */
    size_t page;                          /* items in the last page; 0: done */
    int64_t seen, created, existing;      /* items scanned (both kinds), jobs created, jobs that existed */
    int64_t seen_observations;            /* of seen: observation records */
} graph_reembed_cursor;

/* How many entities and live records the scan would visit now (a progress total). */
int graph_reembed_count(graph_store *g, const graph_reembed_opts *o, int64_t *total, eg_error *err);
/* The next page (the graph store needs a queue).  On error the cursor has
 * not moved: calling again retries the page. */
int graph_reembed_page(graph_store *g, const graph_reembed_opts *o, graph_reembed_cursor *cur, eg_error *err);

/*
 * Embedding text (memento's format):
 *   "Name: <name>\nType: <type>\nObservations:\n- <obs>\n- <obs>"  or
 *   "...Observations:\n(No observations)".
 * The one definition of what an entity's vector is computed from: the
 * workers' reader, reembed, restore, the memento migration and the in-memory
 * MCP backend all call it, so their vectors agree.  Pure (no store needed).
 * *text_out is *new* (free with eg_free); hash_out receives the hex sha256
 * of the text.  Strings are borrowed.
 */
int graph_embedding_text(const char *name, const char *entity_type, const char *const *obs,
                         size_t nobs, char **text_out, char hash_out[65], eg_error *err);

/*
 * The text an observation record's own vector is computed from:
 *   "<name> (<type>): <observation>"
 * The entity's name and type travel with every observation because a single
 * observation ("she moved last May") rarely names its subject.  An
 * observation record never changes its text (a change is a close plus a new
 * record), and an entity never changes its name or type, so the hash written
 * with the record fences its vector for life.  Same contract as
 * graph_embedding_text: *text_out is *new* (eg_free), hash_out the hex sha256.
 */
int graph_observation_text(const char *name, const char *entity_type, const char *obs, char **text_out,
                           char hash_out[65], eg_error *err);

/*
 * Decay: max(floor, confidence * 0.5^(age/half_life)).  age <= 0 gives
 * confidence (never above it, never a boost from future timestamps);
 * half_life <= 0 disables decay; the result is clamped to [0,1] and
 * confidence is the original (NaN treated as 1).
 */
double graph_decay(double confidence, double age_ms, double half_life_ms, double floor);

/* Score fusion of two rankings. */
typedef struct graph_ranked {
    const char *key;     /* borrowed */
    double score;        /* the list's own score (BM25, similarity) */
} graph_ranked;

typedef struct graph_fused {
    const char *key;     /* borrowed from the inputs */
    double score;        /* (1 - w) * keyword / best keyword + w * (vector - min) / (max - min) */
    int keyword_rank;    /* 0: absent */
    int vector_rank;     /* 0: absent */
    double keyword_score, vector_score;
} graph_fused;

/*
 * Fuse two rankings (best first; duplicate keys in one list keep the first)
 * by a convex combination of normalised scores: a keyword score over the
 * list's best (BM25 has floor 0), a vector score min-max over the list (a
 * model's similarities sit in a narrow band of their own); a leg whose scores
 * are all equal gives each hit 1, an absent leg 0.  semantic_weight w is
 * clamped to [0,1] (NaN: GRAPH_SEMANTIC_WEIGHT); non-finite scores count 0.
 * *out is a *new* array (eg_free) sorted by fused score descending (ties:
 * vector rank, then keyword rank, then key); *nout its length.
 */
int graph_score_fuse(const graph_ranked *keyword, size_t nkw, const graph_ranked *vector, size_t nvec,
                     double semantic_weight, graph_fused **out, size_t *nout, eg_error *err);

/*
 * Validate and normalise mutation input (used by the mutations; exposed for
 * the MCP layer's early errors).  *out is a *new* normalised copy (e.g.
 * observations decoded from a JSON string, strings checked).
 */
int graph_validate_entities(const json_t *entities, json_t **out, eg_error *err);
int graph_validate_relations(const json_t *relations, bool require_fields_only, json_t **out,
                             eg_error *err);
int graph_validate_observations(const json_t *items, const char *list_field, json_t **out,
                                eg_error *err);

/* ---- observation records for data written before them (obs_convert.c) ---- */

/*
 * Convert entities written before observation records (graph schema
 * migration 12; restore after an import): an entity needs it when one of
 * its :EntityVersion nodes still holds a copy of the observation list, or
 * when it is live and has no obsSeq.  For each, in one transaction per
 * batch (its live entity's lock taken first, as every write does): walk
 * its versions in version order, diff consecutive lists, and create one
 * :ObservationRecord per (observation, interval), numbered in the order
 * added so that every version's list is its records in seq order; the
 * live ones carry :Observation and get an embedding job (the outbox, same
 * transaction); set e.obsSeq; remove the copies.  Deleted entities
 * (history only) too.  Where the history disagrees with the live list, the
 * live list wins for the current version (counted in `repaired`).
 * Idempotent and resumable: what is converted no longer matches.
 * ns NULL: every namespace.  batch: entities per transaction (0: 200).
 * Progress goes to the log (stderr), at most every two seconds.
 * st (may be NULL) receives the counts.
 */
typedef struct graph_obs_convert_stats {
    int64_t total;     /* entities that needed it when the run started */
    int64_t entities;  /* entities converted */
    int64_t records;   /* :ObservationRecord nodes created */
    int64_t live;      /* of which live (:Observation) */
    int64_t versions;  /* :EntityVersion copies removed */
    int64_t repaired;  /* live list differed from the history's last version: the live list won */
    int64_t jobs;      /* embedding jobs created */
} graph_obs_convert_stats;

int graph_obs_convert(graph_store *g, const char *ns, size_t batch, graph_obs_convert_stats *st, eg_error *err);
/* How many entities graph_obs_convert would convert now (read-only). */
int graph_obs_convert_count(graph_store *g, const char *ns, int64_t *total, eg_error *err);

/* ---- migration from memento-mcp (migrate.c) ---- */

typedef struct graph_migrate_stats {
    int64_t memento_nodes;    /* plan: :Entity nodes without a namespace */
    int64_t names;            /* names migrated (plan: distinct names found) */
    int64_t entities;         /* live entities written (plan: expected) */
    int64_t history;          /* nodes turned into :EntityVersion */
    int64_t duplicates;       /* live duplicates (memento's race) turned into history */
    int64_t duplicate_names;  /* plan: names with more than one live node */
    int64_t conflicts;        /* names that already exist in the namespace, left alone */
    int64_t records;          /* observation records made from the versions' lists */
    int64_t jobs;             /* embedding jobs queued (entities and live observation records) */
    int64_t relationships;    /* memento relationships replaced (plan: found) */
    int64_t relations;        /* live relations written */
    int64_t relation_history; /* :RelationVersion nodes for older versions */
} graph_migrate_stats;

typedef void (*graph_migrate_progress_fn)(void *ctx, const graph_migrate_stats *so_far, bool final);

/*
 * What graph_migrate_memento would find (read-only): memento nodes, names,
 * names with duplicate live nodes, names already present in `ns` (NULL:
 * the store's default), memento relationships.
 */
int graph_migrate_memento_plan(graph_store *g, const char *ns, graph_migrate_stats *out, eg_error *err);

/*
 * Convert memento-mcp's nodes and relationships in place into namespace
 * `ns` (NULL: the store's default), `batch` names or relation groups per
 * transaction (0: 200), queueing an embedding job for every live entity in
 * the same transaction.  Idempotent; see migrate.c for the mapping.
 * progress (may be NULL) is called after each batch and once at the end.
 */
int graph_migrate_memento(graph_store *g, const char *ns, size_t batch, graph_migrate_progress_fn progress,
                          void *ctx, graph_migrate_stats *out, eg_error *err);

#endif
