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

/*
 * New store on a pool (borrowed: must outlive the store).  opts NULL:
 * defaults.  Does not touch the database (run schema_apply first).
 */
int queue_neo4j_new(queue_store **out, bolt_pool *pool, const queue_opts *opts, eg_error *err);

/* Register the queue's schema migrations with schema/ (idempotent). */
int queue_schema_register(eg_error *err);

#endif
