/*
 * neo4j_store.h - the job store on Neo4j: (:EmbedJob) nodes.
 *
 * Node properties (times are epoch ms from the database's timestamp()):
 *   id, namespace, entity, version, model, dedupeKey, payload, state,
 *   attempts, maxAttempts, runAt, leaseOwner, leaseToken, leaseUntil,
 *   lastError, lastErrorCategory, createdAt, updatedAt, completedAt
 *
 * Schema (migrations of module "queue", applied by schema_apply):
 *   embedjob_id         UNIQUE (id)
 *   embedjob_dedupe     UNIQUE (dedupeKey)
 *   embedjob_claim      RANGE  (queue, state, runAt) serves the claim, the
 *                       expiry sweep (leased: runAt = leaseUntil), the dead
 *                       list and prune (terminal: runAt = when it got there)
 *   embedjob_entity     RANGE  (namespace, entity, model) serves supersede
 *   (v1 also created embedjob_lease and embedjob_done; v2 drops them)
 *   (:EmbedQueue {name}) UNIQUE (name) - the claim mutex node
 *
 * The claim (docs/queue.md argues it): every lease transaction first writes
 * to the single (:EmbedQueue {name:'default'}) node, which serialises
 * claimers on its write lock; only then does it read candidate jobs, so the
 * read sees every committed claim and no job can be handed out twice.  Each
 * claimed job is then locked by its own SET and re-checked
 * (state='pending'), which also fences the claim against complete/fail/
 * reclaim racing on the same node.  Claims take one batch per round trip.
 * All queries start with `CYPHER runtime = slotted` so they behave the
 * same on Enterprise (pipelined runtime) as on Community.
 *
 * Thread-safety: thread-safe (through the pool).
 */
#ifndef ENGRAM_QUEUE_NEO4J_STORE_H
#define ENGRAM_QUEUE_NEO4J_STORE_H

#include "bolt/pool.h"
#include "queue/job_store.h"

#include <jansson.h>
#include <stdbool.h>

/*
 * New store on a pool (borrowed: must outlive the store).  opts NULL:
 * defaults.  Does not touch the database (run schema_apply first).
 */
int queue_neo4j_new(queue_store **out, bolt_pool *pool, const queue_opts *opts, eg_error *err);

/* Register the queue's schema migrations with schema/ (idempotent). */
int queue_schema_register(eg_error *err);

/* ---- enqueue inside the caller's statement ---- */

/*
 * What queue_enqueue's statement does per job row `qr` (a map made by
 * queue_neo4j_job_rows; parameter $queue: the queue's name): MERGE the job
 * on its dedupe key, and when this row created it, supersede the entity's
 * older pending jobs (lock, then re-check: neo4j_store.c).  Leaves qr, qj
 * (the job), qcreated and qsup (jobs superseded) in scope.  Its variables
 * all start with q, so it can sit inside a caller's statement.  Never
 * supersede a job for a newer version (job_store.h): a job with an unknown
 * seq (0) supersedes nothing, and older jobs without a seq (queued before seq
 * existed) count as oldest.
 */
#define QUEUE_NEO4J_ENQUEUE_BODY                                                                   \
    "MERGE (qj:EmbedJob {dedupeKey: qr.key}) "                                                     \
    "ON CREATE SET qj.id = qr.id, qj.queue = $queue, qj.namespace = qr.ns, qj.entity = qr.entity, " \
    "  qj.version = qr.version, qj.model = qr.model, qj.payload = qr.payload, qj.state = 'pending', " \
    "  qj.attempts = 0, qj.maxAttempts = qr.maxAttempts, qj.runAt = timestamp() + qr.delay, "      \
    "  qj.seq = qr.seq, qj.createdAt = timestamp(), qj.updatedAt = timestamp() "                   \
    "WITH qr, qj, qj.id = qr.id AS qcreated "                                                      \
    "CALL { "                                                                                      \
    "  WITH qj, qcreated, qr "                                                                     \
    "  MATCH (qc:EmbedJob {namespace: qj.namespace, entity: qj.entity, model: qj.model, queue: qj.queue}) " \
    "  WHERE qcreated AND qr.seq > 0 AND qc.state = 'pending' AND qc.id <> qj.id "                  \
    "    AND coalesce(qc.seq, 0) <= qr.seq "                                                       \
    "  SET qc.queue = qc.queue "                                                                   \
    "  WITH elementId(qc) AS qeid MATCH (qo:EmbedJob) WHERE elementId(qo) = qeid "                 \
    "  WITH qo WHERE qo.state = 'pending' "                                                        \
    "  SET qo.state = 'superseded', qo.runAt = timestamp(), qo.updatedAt = timestamp(), "          \
    "      qo.completedAt = timestamp() "                                                          \
    "  RETURN count(qo) AS qsup "                                                                  \
    "} "

/*
 * The outbox in one statement: a CALL subquery that enqueues the job rows of
 * the list variable `list` (in scope; e.g. made by "CASE WHEN created THEN
 * $qjobs ELSE [] END AS qrows": a CALL imports variables only), exactly as queue_enqueue
 * would, in the caller's statement and so its transaction, saving the
 * enqueue's own statement and round trip.  It yields one row with `qres`:
 * [{idx, id, state, created, sup}], one map per job row (id: the job that
 * now holds the row's dedupe key, the row's own when created).  Takes the
 * parameter $queue.  The statement should start with QUEUE_NEO4J_PFX, as
 * every statement of the queue does (same behaviour on every runtime).
 */
#define QUEUE_NEO4J_PFX "CYPHER runtime = slotted "
#define QUEUE_NEO4J_ENQUEUE_CALL(list)                                                             \
    "CALL { WITH " list " UNWIND " list " AS qr " QUEUE_NEO4J_ENQUEUE_BODY                          \
    "RETURN collect({idx: qr.idx, id: qj.id, state: qj.state, created: qcreated, sup: qsup}) AS qres } "

/*
 * The jobs of subjects the caller's statement has just made: a FOREACH that
 * CREATEs one job per row of the list expression `list` (job rows of
 * queue_neo4j_job_rows), for use only when every row's entity is an id the
 * caller made new for this statement (random, never given to the queue
 * before, e.g. a created entity's id or a new observation record's).  No job
 * can exist yet for such an entity, so a MERGE on the dedupe key would find
 * nothing and the supersede check would match nothing: this writes exactly
 * what QUEUE_NEO4J_ENQUEUE_CALL would, without a subquery, a lookup and a
 * collect per row (bench/results/2026-12-06-bulk.json: in a batch of 500
 * entities most of the jobs' cost is the job nodes themselves, this saves
 * the rest).  The dedupe key's uniqueness
 * constraint still holds: a key that exists after all fails the statement
 * (ConstraintValidationFailed) instead of making a second job.  Each job's
 * id is its row's `id`.  Takes $queue; yields no variables (a clause, legal
 * inside another FOREACH).
 */
#define QUEUE_NEO4J_CREATE_FRESH(list)                                                             \
    "FOREACH (qr IN " list " | CREATE (:EmbedJob {dedupeKey: qr.key, id: qr.id, queue: $queue, "    \
    "namespace: qr.ns, entity: qr.entity, version: qr.version, model: qr.model, "                  \
    "payload: qr.payload, state: 'pending', attempts: 0, maxAttempts: qr.maxAttempts, "            \
    "runAt: timestamp() + qr.delay, seq: qr.seq, createdAt: timestamp(), updatedAt: timestamp()})) "

/* True when s can take jobs inside a caller's statement (a Neo4j store). */
bool queue_neo4j_inline(const queue_store *s);

/*
 * The job rows QUEUE_NEO4J_ENQUEUE_CALL takes for reqs[0..n): validated as
 * queue_enqueue validates them, each with a new job id and its dedupe key;
 * row i has idx i.  *rows_out: new JSON array (the caller frees it).
 * EG_EINVAL for a bad request or a store that is not Neo4j's.
 */
int queue_neo4j_job_rows(queue_store *s, const queue_enqueue_req *reqs, size_t n, json_t **rows_out,
                         eg_error *err);

#endif
