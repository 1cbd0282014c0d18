/*
 * graph_int.h - shared internals of the graph module (not a public API).
 *
 * Thread-safety: helpers are reentrant; graph_store is read-only after new.
 */
#ifndef ENGRAM_GRAPH_GRAPH_INT_H
#define ENGRAM_GRAPH_GRAPH_INT_H

#include "graph/graph.h"
#include <pthread.h>
#include <stdbool.h>

struct graph_store {
    bolt_pool *pool;     /* borrowed */
    queue_store *queue;  /* borrowed, may be NULL */
    graph_opts opts;     /* strings point into the owned copies below */
    char *s_ns, *s_vector_index, *s_fulltext_index, *s_obs_vector_index, *s_obs_fulltext_index;
    char *s_model, *s_changed_by, *s_database;
    struct graph_indexer *indexer; /* NULL unless graph_indexer_start (set before use) */
};

/*
 * Every entity of a namespace: `MATCH (v:Entity {namespace: $ns})` followed
 * by this WHERE.  Neo4j plans a composite range index (here the
 * (namespace, name) constraint's) for a predicate on its first property
 * only when the later ones have one too; without `name IS NOT NULL` the
 * statement scanned every :Entity of every namespace (read_graph's first
 * page grew with the whole database).
 */
#define GRAPH_NS_SEEK(v) "WHERE " v ".name IS NOT NULL"

/* Entity map projection used by every query returning live entities. */
#define GRAPH_ENTITY_PROJ(v)                                                                    \
    v " {.name, .entityType, .observations, .id, .version, .createdAt, .updatedAt, "          \
      ".validFrom, .changedBy}"
/*
 * The substring pass of search_nodes reads a TEXT (trigram) index on
 * e.searchText: the lower-cased name, type and observations joined by
 * newlines.  A TEXT index refuses values above ~32 KB (the write fails), so
 * an entity whose text is longer than GRAPH_SEARCH_CAP UTF-16 units (at most
 * 3 bytes each, lower-cased included) gets searchOverflow = true instead,
 * and the pass checks those few entities directly.  Every statement that
 * writes an entity's name, type or observations ends with a SET of
 * GRAPH_SEARCH_SET(v) as a separate clause (so it sees the new values).
 */
/*
 * A one-entity write leaves searchText as it was and labels the entity
 * :SearchStale instead (indexer.c says why); the substring pass also reads
 * every stale entity of the namespace, and the indexer thread sets their
 * searchText in batches.
 */
#define GRAPH_SEARCH_STALE_LABEL "SearchStale"
#define GRAPH_SEARCH_CAP "10000"
#define GRAPH_SEARCH_OBS_(v) \
    "(CASE WHEN " v ".observations IS :: LIST<STRING NOT NULL> THEN " v ".observations ELSE [] END)"
#define GRAPH_SEARCH_LEN_(v)                                                                    \
    "(size(" v ".name) + size(coalesce(" v ".entityType, '')) + "                                 \
    "reduce(n = 0, o IN " GRAPH_SEARCH_OBS_(v) " | n + size(o) + 1))"
#define GRAPH_SEARCH_SET(v)                                                                     \
    v ".searchText = CASE WHEN " GRAPH_SEARCH_LEN_(v) " <= " GRAPH_SEARCH_CAP " THEN "            \
    "toLower(" v ".name + '\\n' + coalesce(" v ".entityType, '') + "                               \
    "reduce(s = '', o IN " GRAPH_SEARCH_OBS_(v) " | s + '\\n' + o)) END, "                       \
    v ".searchOverflow = CASE WHEN " GRAPH_SEARCH_LEN_(v) " > " GRAPH_SEARCH_CAP " THEN true END"
/*
 * A version's observations (history, graph at a time, export): versions
 * written before observation records kept a copy of the list (until graph
 * migration 12 or an import converts them, obs_convert.c); the others are
 * the entity's records alive at that version, in the order they were
 * added -- exactly the list the live entity had then.
 */
#define GRAPH_VERSION_OBS(v)                                                                                 \
    "coalesce(" v ".observations, COLLECT { MATCH (o:ObservationRecord {namespace: " v ".namespace, "   \
    "entityId: " v ".entityId}) WHERE o.fromVersion <= " v ".version AND (o.toVersion IS NULL OR "        \
    "o.toVersion > " v ".version) RETURN o.text ORDER BY o.seq })"
/* Relation projection: a = from node, b = to node, r = relationship. */
#define GRAPH_REL_PROJ                                                                          \
    "{from: a.name, to: b.name, relationType: r.relationType, strength: r.strength, "         \
    "confidence: r.confidence, metadata: r.metadata, id: r.id, version: r.version, "          \
    "createdAt: r.createdAt, updatedAt: r.updatedAt, validFrom: r.validFrom, "                \
    "changedBy: r.changedBy}"

/* Resolved per-call context. */
typedef struct graph_ctx {
    graph_store *g;
    const char *ns;
    const char *changed_by; /* may be NULL */
} graph_ctx;

int graph__ctx_init(graph_ctx *cx, graph_store *g, const graph_req *req, eg_error *err);

/* Managed transactions with the store's database. */
int graph__write(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err);
/* The same for a unit of work that runs one write statement, as an auto-commit
 * query (bolt_pool_execute_write_autocommit): graph__q and graph__x pass the
 * unit's options on their own. */
int graph__write_auto(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err);
/* After a commit that labelled entities of namespace ns :SearchStale: wake
 * the indexer, if any, for that namespace (ns is copied). */
void graph__indexer_poke(graph_store *g, const char *ns);
/* A read unit of work, its statements auto-commit queries
 * (bolt_pool_execute_read_autocommit): graph__q, graph__x, graph__q_many,
 * graph__q_each and graph__stream (tx NULL) pass the unit's options. */
int graph__read(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err);

/*
 * A read unit run beside the caller's (beside.c): on a second connection of
 * the pool, in a thread of its own, so that Neo4j works on both at once.
 * Only for statements independent of the caller's, whose answer the caller
 * waits for anyway (the legs of a search).  Start it, do the caller's own
 * statements, then join: the join returns fn's outcome, and when fn could
 * not run beside (no connection free at once, no thread) it runs fn on the
 * caller's connection then, so the answer is the same either way.  fn runs
 * once at most per join, without retries of its own: a retryable failure is
 * the caller's, whose unit is retried whole.  The struct lives with the
 * caller (no allocation); every started one must be joined.
 */
typedef struct graph_beside {
    graph_store *g;
    bolt_work_fn fn;
    void *payload;
    pthread_t thread;
    bool started; /* a thread runs it: join must wait for it */
    bool ran;     /* fn was called on a connection of its own */
    int rc;
    eg_error err;
} graph_beside;

void graph__beside_start(graph_beside *b, graph_store *g, bolt_work_fn fn, void *payload);
/* c NULL: the caller failed already; only wait for the thread (returns 0
 * when fn did not run, and never runs it here). */
int graph__beside_join(graph_beside *b, bolt_conn *c, eg_error *err);

typedef enum graph_tx_mode { GRAPH_TX_READ, GRAPH_TX_WRITE } graph_tx_mode;

/*
 * The tail every graph entry point shares.  rc is the outcome of the checks
 * before it (graph__ctx_init, validation): when 0, fn runs on work in a
 * managed read or write transaction.  Then the answer fn built in *result
 * is handed over: on success *out = *result (*new*, the caller's), on
 * failure it is released and *out = NULL.  *result is NULL afterwards
 * either way.  Returns the first failure's code.
 */
int graph__run(graph_store *g, graph_tx_mode mode, bolt_work_fn fn, void *work, int rc, json_t **result,
               json_t **out, eg_error *err);

/* Run a query and collect rows (new JSON array of objects). */
int graph__q(bolt_conn *c, const char *cypher, const bolt_params *p, json_t **rows, eg_error *err);
/* Run a query and discard rows. */
int graph__x(bolt_conn *c, const char *cypher, const bolt_params *p, eg_error *err);
/* graph__q / graph__x with parameters just built: a build failure recorded
 * in p (graph__params_check) is the error, and p is freed (*steals* p). */
int graph__q_params(bolt_conn *c, const char *cypher, bolt_params *p, json_t **rows, eg_error *err);
int graph__x_params(bolt_conn *c, const char *cypher, bolt_params *p, eg_error *err);
/* One statement per item, pipelined (bolt_conn_query_json_many): rows[i] new. */
int graph__q_many(bolt_conn *c, const char *cypher, bolt_params *const *ps, size_t n, json_t **rows,
                 eg_error *err);
/*
 * Run a query and hand its records to fn one at a time as they stream in
 * (constant memory; rec is borrowed until fn returns); stops at fn's first
 * error, which is returned.  tx: as bolt_conn_run (NULL inside a transaction).
 */
typedef int (*graph_row_fn)(void *ctx, const bolt_value *rec, eg_error *err);
int graph__stream(bolt_conn *c, const char *cypher, const bolt_params *p, const bolt_tx_opts *tx, graph_row_fn fn,
                  void *ctx, eg_error *err);
/* Database clock (ms) inside the open transaction. */
int graph__now(bolt_conn *c, int64_t *now, eg_error *err);

/* A params object; NULL (and err set) on OOM. */
bolt_params *graph__params(eg_error *err);
int graph__params_check(bolt_params *p, eg_error *err);

/* Normalise a projected entity row in place (validTo null; observations array). */
json_t *graph__entity_out(json_t *proj);
/* Normalise a projected relation (metadata decoded, null strength etc. dropped). */
json_t *graph__relation_out(json_t *proj);

/* JSON helpers. */
int64_t graph__jint(const json_t *o, const char *key, int64_t def);
const char *graph__jstr(const json_t *o, const char *key);
/* Size of the compact serialisation of j. */
size_t graph__json_size(const json_t *j);

/* Page resolution. */
size_t graph__page_limit(const graph_store *g, const graph_page *p, size_t def);
size_t graph__page_budget(const graph_store *g, const graph_page *p);
/* Cursors: "o<decimal offset>" or "n<hex name>". */
char *graph__cursor_offset(size_t off);
char *graph__cursor_name(const char *name);
int graph__cursor_parse_offset(const char *cur, size_t *off, eg_error *err);
/* *name_out new (NULL when cur is NULL). */
int graph__cursor_parse_name(const char *cur, char **name_out, eg_error *err);

/* ---- observation sets (obs_set.c): O(n) de-duplication and merging ---- */

typedef struct graph_obs_set graph_obs_set;

/* A *new* empty set sized for about `hint` strings (NULL on OOM). */
graph_obs_set *graph__obs_set_new(size_t hint);
void graph__obs_set_free(graph_obs_set *set);
/* Add s (len bytes, *borrowed*: must outlive the set): 1 added, 0 already
 * present, EG_ENOMEM. */
int graph__obs_set_add(graph_obs_set *set, const char *s, size_t len);
bool graph__obs_set_has(const graph_obs_set *set, const char *s, size_t len);

/*
 * Apply an observation list to the stored one.  Add (remove false): *next =
 * cur followed by the strings of `in` not in cur (first occurrence, order
 * kept), *delta = those added.  Remove: *next = cur without the strings of
 * `in`, *delta = the ones removed.  Both *new*.
 */
int graph__obs_apply(const json_t *cur, const json_t *in, bool remove, json_t **next_out,
                    json_t **delta_out, eg_error *err);

/* The relations among a set of names (array of strings) in the namespace,
 * in parts so that it goes with other statements in one round trip: the
 * statement, its parameters (*out new; NULL when names is empty: nothing to
 * ask), and the relations of its rows (*out new; rows borrowed). */
extern const char graph__q_relations_among[];
int graph__relations_among_params(const char *ns, const json_t *names, bolt_params **out, eg_error *err);
int graph__relations_from_rows(const json_t *rows, json_t **out, eg_error *err);
/* Several different statements pipelined (bolt_conn_query_json_each); a NULL
 * cypher is skipped (its rows[i] NULL): rows[i] new. */
int graph__q_each(bolt_conn *c, const char *const *cyphers, bolt_params *const *ps, size_t n, json_t **rows,
                  eg_error *err);

/*
 * The current relations with at least one end among names (at most limit;
 * *truncated when there were more), and the entities at their other ends:
 * *neighbours_out [{name, entityType}], each once.  Both *new*.
 */
int graph__relations_touching(bolt_conn *c, const char *ns, const json_t *names, size_t limit, json_t **rels_out,
                             json_t **neighbours_out, bool *truncated, eg_error *err);

/*
 * The embedding-job outbox of one unit of work: graph__outbox_add records a
 * job (entity id, version, name, hash) in a JSON array; graph__outbox_flush
 * enqueues them all with one queue_enqueue on the open transaction, appends
 * the job ids to job_ids and counts the newly created jobs.
 */
int graph__outbox_add(json_t *outbox, const char *entity_id, int64_t version, const char *name,
                     const char *hash, eg_error *err);
/*
 * Build the observation records for `texts` (strings, already deduplicated
 * against the entity's live list), numbered first_seq, first_seq+1, ...:
 * *recs_out (new) is [{id, seq, text, hash}] for the write statements (ids
 * made here, so the jobs know them without reading back), and one
 * observation job per record goes into the outbox.
 */
int graph__obs_records(const char *name, const char *type, const json_t *texts, int64_t first_seq,
                       json_t *outbox, json_t **recs_out, eg_error *err);
/* The records' hashes of `texts` of entity (name, type): the keys that find
 * the live records a delete closes.  *out new. */
int graph__obs_hashes(const char *name, const char *type, const json_t *texts, json_t **out, eg_error *err);
int graph__outbox_flush(graph_store *g, bolt_conn *c, const char *ns, const json_t *outbox,
                       json_t *job_ids, size_t *created_out, eg_error *err);

/*
 * Convert entities `ids` (entity ids, strings) of namespace ns to observation
 * records inside the open write transaction c (obs_convert.c; graph.h,
 * graph_obs_convert): locks the live ones, skips those already converted,
 * writes the records, obsSeq, and removes the versions' copies.  The live
 * records' embedding jobs are appended to outbox (the caller flushes it in
 * the same transaction); counts are added to *delta (jobs excepted).
 */
int graph__obs_convert_tx(bolt_conn *c, const char *ns, const json_t *ids, json_t *outbox,
                          graph_obs_convert_stats *delta, eg_error *err);

/* Validate a names array (or JSON text of one): new normalised copy. */
int graph__validate_names(const json_t *names, json_t **out, eg_error *err);

/* Keyword hits (entities with "score"), best first: up to `want` entries. */
int graph__keyword_hits(bolt_conn *c, graph_store *g, const char *ns, const char *query,
                       size_t want, json_t **out, eg_error *err);

#endif
