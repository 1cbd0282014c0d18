/*
 * reembed.c - the backfill scan behind `engram reembed`: pages of entities
 * that need a vector, each page locked, read and enqueued in one write
 * transaction.
 *
 * Why the lock: the scan used to read entities without locking them.  A
 * mutation that committed between that read and the enqueue got its job
 * superseded by the backfill's job, which was for the *old* content and was
 * then skipped as stale: nothing ever embedded the new content.  Now each
 * page takes the entities' write locks (lockSeq, as every graph write does)
 * and reads their content after the lock, so a concurrent mutation either
 * committed before (the scan sees its content) or waits until the page
 * commits (its own job is then the newest).  The queue adds a second fence:
 * a job carries the entity's version (seq) and never supersedes a job for a
 * newer version (queue_enqueue).
 *
 * Then the live observation records (phase 1), paged by their own id, each
 * with its own job (payload kind "observation", as mutate.c enqueues).
 * They are not locked: a record's text never changes, so no mutation can
 * leave a job for stale content; one closed while the page runs gets a job
 * that the worker finds gone (its fenced write tests the label under the
 * record's lock, embedding.c).  Without the lock a page cannot deadlock
 * with a mutation closing records in another order.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

#define NEEDS_VECTOR                                                                               \
    "($all OR e.embedding IS NULL OR e.contentHash IS NULL OR e.embeddingHash IS NULL "            \
    "  OR e.embeddingHash <> e.contentHash OR e.embeddingModel IS NULL OR e.embeddingModel <> $model " \
    "  OR e.embeddingDimensions IS NULL OR e.embeddingDimensions <> $dims)"

/*
 * Candidates after the cursor, locked, then read again through a fresh
 * MATCH: the planner may cache the properties the filter read, and those
 * are the values from before the lock.
 */
static const char Q_PAGE[] =
    "MATCH (e:Entity) WHERE e.id > $after AND ($ns IS NULL OR e.namespace = $ns) AND " NEEDS_VECTOR " "
    "WITH e ORDER BY e.id LIMIT $lim "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 "
    "WITH elementId(e) AS eid, e.id AS id "
    "MATCH (x:Entity) WHERE elementId(x) = eid "
    "RETURN id, x.namespace AS ns, x.name AS name, x.entityType AS entityType, "
    "x.observations AS observations, x.contentHash AS hash, x.version AS version "
    "ORDER BY id";

static const char Q_COUNT[] =
    "MATCH (e:Entity) WHERE ($ns IS NULL OR e.namespace = $ns) AND " NEEDS_VECTOR " "
    "RETURN count(e) AS n";

/* The same test on a record (same vector fields as an entity). */
#define OBS_NEEDS_VECTOR                                                                           \
    "($all OR o.embedding IS NULL OR o.embeddingHash IS NULL OR o.embeddingHash <> o.contentHash "   \
    "  OR o.embeddingModel IS NULL OR o.embeddingModel <> $model "                                   \
    "  OR o.embeddingDimensions IS NULL OR o.embeddingDimensions <> $dims)"

/* Live records by id (the unique constraint's index gives the order); the
 * entity's name goes into the job's payload, as the mutation's job has it. */
static const char Q_OBS_PAGE[] =
    "MATCH (o:ObservationRecord) WHERE o.id > $after AND o:Observation AND ($ns IS NULL OR o.namespace = $ns) "
    "AND " OBS_NEEDS_VECTOR " "
    "WITH o ORDER BY o.id LIMIT $lim "
    "OPTIONAL MATCH (e:Entity {id: o.entityId}) WHERE e.namespace = o.namespace "
    "RETURN o.id AS id, o.namespace AS ns, e.name AS name, o.contentHash AS hash ORDER BY id";

static const char Q_OBS_COUNT[] =
    "MATCH (o:Observation) WHERE ($ns IS NULL OR o.namespace = $ns) AND " OBS_NEEDS_VECTOR " "
    "RETURN count(o) AS n";

/* memento-era entities have no contentHash: set it (the page holds the lock). */
static const char Q_SET_HASH[] =
    "MATCH (e:Entity {id: $id}) WHERE e.namespace = $ns "
    "SET e.contentHash = $hash, e.version = coalesce(e.version, 1)";

typedef struct reembed_work {
    graph_store *g;
    const graph_reembed_opts *o;
    graph_reembed_cursor *cur;
    char after[GRAPH_REEMBED_CURSOR_MAX]; /* the cursor as this unit of work moves it */
    int64_t total;
    size_t rows, created, existing;
} reembed_work;

static bolt_params *page_params(reembed_work *w, eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (!p)
        return NULL;
    bolt_params_str(p, "ns", w->o->ns); /* NULL: every namespace */
    bolt_params_bool(p, "all", w->o->all);
    bolt_params_str(p, "model", w->o->model);
    bolt_params_int(p, "dims", w->o->dims);
    bolt_params_str(p, "after", w->after);
    bolt_params_int(p, "lim", (int64_t)(w->o->batch ? w->o->batch : 500));
    if (graph__params_check(p, err) != 0) {
        bolt_params_free(p);
        return NULL;
    }
    return p;
}

static int count_fn(bolt_conn *c, void *payload, eg_error *err)
{
    reembed_work *w = payload;
    bolt_params *p = page_params(w, err);
    if (!p)
        return err->code ? err->code : EG_ENOMEM;
    json_t *rows = NULL, *orows = NULL;
    int rc = graph__q(c, Q_COUNT, p, &rows, err);
    if (rc == 0)
        rc = graph__q(c, Q_OBS_COUNT, p, &orows, err);
    bolt_params_free(p);
    if (rc == 0)
        w->total = graph__jint(json_array_get(rows, 0), "n", 0) + graph__jint(json_array_get(orows, 0), "n", 0);
    json_decref(rows);
    json_decref(orows);
    return rc;
}

int graph_reembed_count(graph_store *g, const graph_reembed_opts *o, int64_t *total, eg_error *err)
{
    *total = 0;
    if (!o || !o->model)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "reembed: a model is required");
    graph_reembed_cursor cur;
    memset(&cur, 0, sizeof cur);
    reembed_work w = {.g = g, .o = o, .cur = &cur};
    int rc = graph__read(g, count_fn, &w, err);
    if (rc == 0)
        *total = w.total;
    return rc;
}

/* The content hash of a row that has none (memento-era), set under the lock. */
static int backfill_hash(bolt_conn *c, const json_t *row, const char *id, const char *ns, char hash[65],
                         eg_error *err)
{
    json_t *obs = json_object_get(row, "observations"), *dec = NULL;
    if (json_is_string(obs))
        obs = dec = json_loads(json_string_value(obs), 0, NULL);
    size_t no = json_is_array(obs) ? json_array_size(obs) : 0;
    const char **v = eg_calloc(no ? no : 1, sizeof *v);
    char *text = NULL;
    for (size_t k = 0; v && k < no; k++) {
        const char *s = json_string_value(json_array_get(obs, k));
        v[k] = s ? s : "";
    }
    const char *name = graph__jstr(row, "name"), *type = graph__jstr(row, "entityType");
    int rc = v ? graph_embedding_text(name ? name : "", type ? type : "", v, no, &text, hash, err)
               : eg_error_oom(err);
    eg_free(v);
    eg_free(text);
    json_decref(dec);
    if (rc != 0)
        return rc;
    bolt_params *hp = graph__params(err);
    if (!hp)
        return EG_ENOMEM;
    bolt_params_str(hp, "id", id);
    bolt_params_str(hp, "ns", ns);
    bolt_params_str(hp, "hash", hash);
    rc = graph__params_check(hp, err);
    if (rc == 0)
        rc = graph__x(c, Q_SET_HASH, hp, err);
    bolt_params_free(hp);
    return rc;
}

/* Enqueue k jobs in the page's transaction and count them. */
static int enqueue(reembed_work *w, bolt_conn *c, const queue_enqueue_req *reqs, size_t k, eg_error *err)
{
    if (k == 0)
        return 0;
    queue_enqueue_result *res = eg_calloc(k, sizeof *res);
    if (!res)
        return eg_error_oom(err);
    queue_tx qtx = QUEUE_TX_BOLT(c);
    int rc = queue_enqueue(w->g->queue, &qtx, reqs, k, res, err);
    for (size_t i = 0; rc == 0 && i < k; i++) {
        if (res[i].created)
            w->created++;
        else
            w->existing++;
    }
    eg_free(res);
    return rc;
}

/* A page of live observation records (phase 1): one job each, payload as mutate.c writes it. */
static int obs_page(reembed_work *w, bolt_conn *c, bolt_params *p, eg_error *err)
{
    json_t *rows = NULL;
    int rc = graph__q(c, Q_OBS_PAGE, p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    size_t n = json_array_size(rows), k = 0;
    queue_enqueue_req *reqs = eg_calloc(n ? n : 1, sizeof *reqs);
    char (*ver)[80] = eg_calloc(n ? n : 1, sizeof *ver);
    char **pl = eg_calloc(n ? n : 1, sizeof *pl);
    if (!reqs || !ver || !pl)
        rc = eg_error_oom(err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *row = json_array_get(rows, i);
        const char *id = graph__jstr(row, "id"), *ns = graph__jstr(row, "ns"), *hash = graph__jstr(row, "hash");
        const char *name = graph__jstr(row, "name");
        if (id)
            snprintf(w->after, sizeof w->after, "%s", id);
        if (!id || !ns || !hash || !name) /* entity gone: the record is closed with it */
            continue;
        json_t *j = json_pack("{ssssss}", "name", name, "hash", hash, "kind", "observation");
        pl[k] = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (pl[k] == NULL) {
            rc = eg_error_oom(err);
            break;
        }
        snprintf(ver[k], sizeof ver[k], "%s%s%s", hash, w->o->all ? "#" : "", w->o->all ? w->o->tag : "");
        reqs[k] = (queue_enqueue_req){.ns = ns, .entity = id, .version = ver[k], .model = w->o->model,
                                      .payload = pl[k], .seq = 1};
        k++;
    }
    if (rc == 0)
        rc = enqueue(w, c, reqs, k, err);
    w->rows = n;
    for (size_t i = 0; pl && i < n; i++)
        eg_free(pl[i]); /* jansson allocates through eg_malloc (core/alloc.c) */
    eg_free(pl);
    eg_free(reqs);
    eg_free(ver);
    json_decref(rows);
    return rc;
}

/* One page in one write transaction: the jobs commit with the locks held. */
static int page_fn(bolt_conn *c, void *payload, eg_error *err)
{
    reembed_work *w = payload;
    /* The unit of work may run again (transient error): start from the cursor. */
    snprintf(w->after, sizeof w->after, "%s", w->cur->after);
    w->rows = w->created = w->existing = 0;
    bolt_params *p = page_params(w, err);
    if (!p)
        return err->code ? err->code : EG_ENOMEM;
    if (w->cur->phase == 1)
        return obs_page(w, c, p, err);
    json_t *rows = NULL;
    int rc = graph__q(c, Q_PAGE, p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    if (w->o->after_read)
        w->o->after_read(w->o->hook_ctx);
    size_t n = json_array_size(rows), k = 0;
    queue_enqueue_req *reqs = eg_calloc(n ? n : 1, sizeof *reqs);
    char (*ver)[80] = eg_calloc(n ? n : 1, sizeof *ver);
    if (!reqs || !ver)
        rc = eg_error_oom(err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *row = json_array_get(rows, i);
        const char *id = graph__jstr(row, "id"), *ns = graph__jstr(row, "ns"), *hash = graph__jstr(row, "hash");
        if (id)
            snprintf(w->after, sizeof w->after, "%s", id);
        if (!id || !ns)
            continue;
        int64_t version = graph__jint(row, "version", 0);
        char h[65];
        if (!hash) {
            if ((rc = backfill_hash(c, row, id, ns, h, err)) != 0)
                break;
            hash = h;
        }
        /* --all: a tag makes the key new, so even a current vector is redone. */
        snprintf(ver[k], sizeof ver[k], "%s%s%s", hash, w->o->all ? "#" : "", w->o->all ? w->o->tag : "");
        reqs[k] = (queue_enqueue_req){.ns = ns, .entity = id, .version = ver[k], .model = w->o->model,
                                      .seq = version > 0 ? version : 1};
        k++;
    }
    if (rc == 0)
        rc = enqueue(w, c, reqs, k, err);
    w->rows = n;
    eg_free(reqs);
    eg_free(ver);
    json_decref(rows);
    return rc;
}

int graph_reembed_page(graph_store *g, const graph_reembed_opts *o, graph_reembed_cursor *cur, eg_error *err)
{
    cur->page = 0;
    if (!o || !o->model || (o->all && !o->tag))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "reembed: a model (and a tag with all) is required");
    if (!g->queue)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "reembed: the graph store has no queue");
    reembed_work w = {.g = g, .o = o, .cur = cur};
    int rc = graph__write(g, page_fn, &w, err);
    if (rc != 0)
        return rc;
    /* Committed: move the cursor and the counts. */
    snprintf(cur->after, sizeof cur->after, "%s", w.after);
    cur->page = w.rows;
    cur->seen += (int64_t)w.rows;
    if (cur->phase == 1)
        cur->seen_observations += (int64_t)w.rows;
    if (w.rows == 0 && cur->phase == 0) {
        /* Entities done: the records next, from the start of their ids. */
        cur->phase = 1;
        cur->after[0] = '\0';
        return graph_reembed_page(g, o, cur, err);
    }
    cur->created += (int64_t)w.created;
    cur->existing += (int64_t)w.existing;
    return 0;
}
