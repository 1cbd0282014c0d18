/*
 * embedding.c - the graph side of embeddings: the worker hooks (load the
 * text of an entity or of an observation record, write a vector fenced on
 * its content hash), the enqueue/backfill tool, and the inspection tools.
 *
 * Fencing: a vector is written only if the live entity's (or live record's)
 * contentHash still equals the hash of the text the vector was computed
 * from, and only if the namespace's model record (vector_model.c) names the
 * vector's model.  The write runs in one statement in the caller's
 * transaction that first takes the node's write lock (bumping lockSeq) and
 * reads the hash (and, for a record, whether it is still live) *after* the
 * lock.  A mutation that commits between the worker's read and its write
 * therefore makes the write a no-op ("superseded", or "gone" for a record
 * closed or an entity deleted); the newer version has its own job.
 *
 * Job ids: an Entity's id (a UUID) or an observation record's id (32 hex
 * digits); the two never collide, so one statement serves both kinds.
 * A record's text never changes (a change is a close plus a new record),
 * so its contentHash fences its vector for life.
 */
#include "graph/graph_int.h"

#include "bolt/packstream.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- worker hooks ---- */

void graph_embed_input_clear(graph_embed_input *in)
{
    if (in == NULL)
        return;
    eg_free(in->ns);
    eg_free(in->entity_id);
    eg_free(in->name);
    eg_free(in->text);
    memset(in, 0, sizeof *in);
}

/*
 * A job's id is an Entity id (a UUID) or an observation record's id (32 hex
 * digits, made in mutate.c): the two never collide, so each ref matches at
 * most one of the two.  A record is found only while live (:Observation)
 * and while its entity exists: its text carries the entity's name and type.
 */
static const char Q_LOAD_BATCH[] =
    "UNWIND $rows AS r "
    "OPTIONAL MATCH (e:Entity {id: r.id}) WHERE e.namespace = r.ns "
    "OPTIONAL MATCH (o:ObservationRecord {id: r.id}) WHERE o.namespace = r.ns AND o:Observation "
    "OPTIONAL MATCH (oe:Entity {id: o.entityId}) WHERE oe.namespace = r.ns "
    "WITH r, coalesce(e, o) AS n, o IS NOT NULL AS isObs, coalesce(e, oe) AS ent "
    "RETURN r.i AS i, n IS NOT NULL AND ent IS NOT NULL AS found, isObs, n.id AS id, ent.name AS name, "
    "CASE WHEN isObs THEN 1 ELSE n.version END AS version, ent.entityType AS entityType, "
    "CASE WHEN isObs THEN null ELSE n.observations END AS observations, "
    "CASE WHEN isObs THEN n.text ELSE null END AS obsText, n.contentHash AS contentHash, "
    "n.embeddingHash AS embHash, n.embeddingModel AS embModel, n.embeddingDimensions AS embDims, "
    "n.embedding IS NOT NULL AS hasVec";
static const char Q_LOAD_BY_NAME[] =
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "RETURN true AS found, e.id AS id, e.name AS name, e.version AS version, e.entityType AS entityType, "
    "e.observations AS observations, e.contentHash AS contentHash, e.embeddingHash AS embHash, "
    "e.embeddingModel AS embModel, e.embeddingDimensions AS embDims, e.embedding IS NOT NULL AS hasVec";

/* The first fields of a batch row, {i, id, ns, ...}: `fields` in all. */
static void row_head(bolt_ps_writer *w, size_t fields, size_t i, const char *id, const char *ns)
{
    bolt_ps_map_begin(w, fields);
    bolt_ps_str(w, "i");
    bolt_ps_int(w, (int64_t)i);
    bolt_ps_str(w, "id");
    bolt_ps_str(w, id);
    bolt_ps_str(w, "ns");
    bolt_ps_str(w, ns);
}

static void copy_hex(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* An entity's text, or (row field isObs) an observation record's. */
static int row_text(const json_t *row, graph_embed_input *out, eg_error *err)
{
    const char *name = graph__jstr(row, "name"), *type = graph__jstr(row, "entityType");
    if (json_is_true(json_object_get(row, "isObs"))) {
        const char *t = graph__jstr(row, "obsText");
        return graph_observation_text(name ? name : "", type ? type : "", t ? t : "", &out->text, out->hash, err);
    }
    json_t *obs = json_object_get(row, "observations");
    json_t *dec = NULL;
    if (json_is_string(obs)) { /* memento-era JSON text */
        dec = json_loads(json_string_value(obs), 0, NULL);
        obs = dec;
    }
    size_t n = json_is_array(obs) ? json_array_size(obs) : 0;
    const char **v = eg_calloc(n ? n : 1, sizeof *v);
    if (v == NULL) {
        json_decref(dec);
        return eg_error_oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(obs, i));
        v[i] = s ? s : "";
    }
    int rc = graph_embedding_text(name ? name : "", type ? type : "", v, n, &out->text, out->hash,
                                  err);
    eg_free(v);
    json_decref(dec);
    return rc;
}

static int fill_input(const json_t *row, const char *ns, graph_embed_input *out, eg_error *err)
{
    int rc = row_text(row, out, err);
    if (rc != 0)
        return rc;
    const char *name = graph__jstr(row, "name");
    out->ns = eg_strdup(ns);
    out->entity_id = eg_strdup(graph__jstr(row, "id") ? graph__jstr(row, "id") : "");
    out->name = eg_strdup(name ? name : "");
    out->version = graph__jint(row, "version", 0);
    out->found = true;
    copy_hex(out->content_hash, sizeof out->content_hash, graph__jstr(row, "contentHash"));
    copy_hex(out->embedding_hash, sizeof out->embedding_hash, graph__jstr(row, "embHash"));
    copy_hex(out->embedding_model, sizeof out->embedding_model, graph__jstr(row, "embModel"));
    out->embedding_dims = graph__jint(row, "embDims", 0);
    out->has_vector = json_is_true(json_object_get(row, "hasVec"));
    if (!out->ns || !out->entity_id || !out->name) {
        graph_embed_input_clear(out);
        return eg_error_oom(err);
    }
    return 0;
}

int graph_load_embed_inputs_tx(bolt_conn *c, const graph_embed_ref *refs, size_t n, graph_embed_input *out,
                               eg_error *err)
{
    memset(out, 0, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (!refs[i].ns || !refs[i].entity_id)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "load embed input: need ns and id");
    if (n == 0)
        return 0;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_ps_writer *w = bolt_params_add(p, "rows");
    if (w) {
        bolt_ps_list_begin(w, n);
        for (size_t i = 0; i < n; i++) {
            row_head(w, 3, i, refs[i].entity_id, refs[i].ns);
        }
    }
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_LOAD_BATCH, p, &rows, err);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? rows : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1);
        if (i < 0 || (size_t)i >= n || !json_is_true(json_object_get(row, "found")))
            continue;
        if ((rc = fill_input(row, refs[i].ns, &out[i], err)) != 0)
            break;
    }
    json_decref(rows);
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            graph_embed_input_clear(&out[i]);
    return rc;
}

int graph_load_embed_input_tx(bolt_conn *c, const char *ns, const char *entity_id,
                              const char *name, graph_embed_input *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    if (ns == NULL || (entity_id == NULL && name == NULL))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "load embed input: need ns and id or name");
    if (entity_id) {
        graph_embed_ref ref = {ns, entity_id};
        return graph_load_embed_inputs_tx(c, &ref, 1, out, err);
    }
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_str(p, "name", name);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_LOAD_BY_NAME, p, &rows, err);
    if (rc == 0 && json_array_size(rows) > 0)
        rc = fill_input(json_array_get(rows, 0), ns, out, err);
    json_decref(rows);
    return rc;
}

typedef struct load_work {
    const graph_embed_ref *refs;
    size_t n;
    graph_embed_input *out;
} load_work;

static int load_fn(bolt_conn *c, void *payload, eg_error *err)
{
    load_work *w = payload;
    for (size_t i = 0; i < w->n; i++)
        graph_embed_input_clear(&w->out[i]);
    return graph_load_embed_inputs_tx(c, w->refs, w->n, w->out, err);
}

int graph_load_embed_inputs(graph_store *g, const char *ns, const char *const *entity_ids,
                            size_t n, graph_embed_input *out, eg_error *err)
{
    memset(out, 0, n * sizeof *out);
    graph_embed_ref *refs = eg_calloc(n ? n : 1, sizeof *refs);
    if (refs == NULL)
        return eg_error_oom(err);
    for (size_t i = 0; i < n; i++)
        refs[i] = (graph_embed_ref){ns, entity_ids[i]};
    load_work w = {refs, n, out};
    int rc = graph__read(g, load_fn, &w, err);
    eg_free(refs);
    return rc;
}

/*
 * Lock first (lockSeq), then compare: rows not returned were not written.
 * A row's id names an Entity or an observation record (ids never collide).
 * A record is matched by its lifelong label and tested for :Observation
 * only after its lock: closing a record (mutate.c) writes the record, so it
 * either committed before (live false: GONE) or waits for this write and
 * then removes the vector with the label.  Entities are locked before
 * records, the order a mutation takes them in (entity, then its records),
 * so the two never wait on each other in a cycle.
 */
static const char Q_WRITE_VECS[] =
    "UNWIND $rows AS r "
    "OPTIONAL MATCH (e:Entity {id: r.id}) WHERE e.namespace = r.ns "
    "OPTIONAL MATCH (o:ObservationRecord {id: r.id}) WHERE o.namespace = r.ns "
    "WITH r, coalesce(e, o) AS n WHERE n IS NOT NULL "
    "WITH r, n ORDER BY CASE WHEN n:Entity THEN 0 ELSE 1 END, r.i "
    "SET n.lockSeq = coalesce(n.lockSeq, 0) + 1 "
    "WITH n, r "
    "OPTIONAL MATCH (m:EngramVectorModel {namespace: r.ns}) "
    "WITH n, r, n:Entity OR n:Observation AS live, "
    "  n.contentHash = r.hash AND (m IS NULL OR (m.model = r.model AND m.switchingTo IS NULL)) AS fresh "
    "WITH n, r, live, live AND fresh AS same "
    "CALL { WITH n, r, same WITH n, r WHERE same "
    "  CALL db.create.setNodeVectorProperty(n, 'embedding', r.vec) "
    "  SET n.embeddingModel = r.model, n.embeddingDimensions = r.dims, n.embeddingVersion = n.version, "
    "      n.embeddingHash = r.hash, n.embeddingUpdatedAt = timestamp(), n.embeddingTokens = r.tokens, "
    "      n.embeddingTruncated = r.truncated } "
    "RETURN r.i AS i, live, same";

int graph_write_embeddings_tx(bolt_conn *c, const graph_embedding_row *rows, size_t n,
                              graph_write_status *status_out, eg_error *err)
{
    for (size_t i = 0; i < n; i++) {
        status_out[i] = GRAPH_EMBED_GONE;
        const graph_embedding_row *r = &rows[i];
        if (!r->ns || !r->entity_id || !r->hash || !r->model || !r->vec || r->dims == 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "write embedding: missing argument");
        for (size_t k = 0; k < r->dims; k++)
            if (!isfinite(r->vec[k]))
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "embedding has non-finite values");
    }
    if (n == 0)
        return 0;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_ps_writer *w = bolt_params_add(p, "rows");
    if (w) {
        bolt_ps_list_begin(w, n);
        for (size_t i = 0; i < n; i++) {
            row_head(w, 9, i, rows[i].entity_id, rows[i].ns);
            bolt_ps_str(w, "tokens");
            if (rows[i].tokens > 0)
                bolt_ps_int(w, rows[i].tokens);
            else
                bolt_ps_null(w);
            bolt_ps_str(w, "truncated");
            bolt_ps_bool(w, rows[i].truncated);
            bolt_ps_str(w, "hash");
            bolt_ps_str(w, rows[i].hash);
            bolt_ps_str(w, "model");
            bolt_ps_str(w, rows[i].model);
            bolt_ps_str(w, "dims");
            bolt_ps_int(w, (int64_t)rows[i].dims);
            bolt_ps_str(w, "vec");
            bolt_ps_float32_list(w, rows[i].vec, rows[i].dims);
        }
    }
    json_t *out = NULL;
    int rc = graph__q_params(c, Q_WRITE_VECS, p, &out, err);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? out : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1);
        if (i < 0 || (size_t)i >= n || !json_is_true(json_object_get(row, "live")))
            continue; /* a closed record: GONE */
        status_out[i] = json_is_true(json_object_get(row, "same")) ? GRAPH_EMBED_WRITTEN : GRAPH_EMBED_SUPERSEDED;
    }
    json_decref(out);
    return rc;
}

int graph_write_embedding_tx(bolt_conn *c, const graph_opts *opts, const char *ns,
                             const char *entity_id, const char *hash, const char *model,
                             const float *vec, size_t dims, graph_write_status *status_out,
                             eg_error *err)
{
    *status_out = GRAPH_EMBED_GONE;
    if (opts == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "write embedding: missing argument");
    if (dims != opts->vector_dimensions)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "embedding has %zu dimensions, the index expects %zu", dims,
                            opts->vector_dimensions);
    graph_embedding_row r = {ns, entity_id, hash, model, vec, dims, 0, false};
    return graph_write_embeddings_tx(c, &r, 1, status_out, err);
}

/* ---- get_entity_embedding ---- */

static json_t *jnull(json_t *v)
{
    return v ? v : json_null();
}

typedef struct emb_work {
    graph_ctx cx;
    const char *name;
    size_t limit;
    bool force;
    json_t *result;
} emb_work;

static int get_embedding_fn(bolt_conn *c, void *payload, eg_error *err)
{
    emb_work *w = payload;
    json_decref(w->result);
    w->result = NULL;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_str(p, "name", w->name);
    json_t *rows = NULL;
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__q(c,
                     "MATCH (e:Entity {namespace: $ns, name: $name}) "
                     "RETURN e.embedding AS embedding, e.embeddingModel AS model, "
                     "e.embeddingDimensions AS dims, e.embeddingUpdatedAt AS updated, "
                     "e.embeddingVersion AS ev, e.version AS v, e.embeddingHash AS eh, "
                     "e.contentHash AS ch, e.embeddingTokens AS tokens, e.embeddingTruncated AS truncated",
                     p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    json_t *row = json_array_get(rows, 0);
    if (row == NULL) {
        json_decref(rows);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Entity not found: %s", w->name);
    }
    json_t *emb = json_object_get(row, "embedding");
    if (!json_is_array(emb)) {
        json_decref(rows);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                            "Entity %s has no embedding yet (a job may be pending)", w->name);
    }
    const char *eh = graph__jstr(row, "eh"), *ch = graph__jstr(row, "ch");
    bool stale = eh == NULL || ch == NULL || strcmp(eh, ch) != 0;
    json_t *model = json_object_get(row, "model");
    w->result = json_pack("{sssOsosIsOsOsOsb}", "entityName", w->name, "embedding", emb, "model",
                          json_is_string(model) ? json_incref(model) : json_string("unknown"),
                          "dimensions", (json_int_t)json_array_size(emb), "lastUpdated",
                          jnull(json_object_get(row, "updated")), "embeddedVersion",
                          jnull(json_object_get(row, "ev")), "currentVersion",
                          jnull(json_object_get(row, "v")), "stale", stale);
    /* What the model read: a text past its limit (256 or 512 tokens for the
     * local encoders) was cut, and only its beginning is in the vector. */
    if (w->result && json_is_integer(json_object_get(row, "tokens"))) {
        json_object_set(w->result, "tokens", json_object_get(row, "tokens"));
        json_object_set_new(w->result, "truncated", json_boolean(json_is_true(json_object_get(row, "truncated"))));
    }
    json_decref(rows);
    return w->result ? 0 : eg_error_oom(err);
}

int graph_get_entity_embedding(graph_store *g, const graph_req *req, const char *name,
                               json_t **out, eg_error *err)
{
    *out = NULL;
    emb_work w = {0};
    w.name = name;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0 && (name == NULL || *name == '\0'))
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "entity_name is required");
    return graph__run(g, GRAPH_TX_READ, get_embedding_fn, &w, rc, &w.result, out, err);
}

/* ---- force_generate_embedding ---- */

static const char Q_FORCE_ONE[] =
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 "
    "RETURN e.id AS id, e.name AS name, e.version AS version, e.entityType AS entityType, "
    "e.observations AS observations, e.contentHash AS contentHash";

static const char Q_FORCE_MISSING[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
    "AND (e.embedding IS NULL OR e.contentHash IS NULL OR e.embeddingHash IS NULL "
    "OR e.embeddingHash <> e.contentHash) "
    "WITH e ORDER BY e.name LIMIT $lim "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 "
    "RETURN e.id AS id, e.name AS name, e.version AS version, e.entityType AS entityType, "
    "e.observations AS observations, e.contentHash AS contentHash";

/*
 * The live records of the entities just locked that have no vector for
 * their text: their jobs go with the entity's (a forced entity is forced
 * whole).  A record with a current vector is left alone: its text never
 * changes, so there is nothing to redo; `engram reembed --all` redoes it.
 */
static const char Q_FORCE_RECORDS[] =
    "UNWIND $ids AS id "
    "MATCH (o:ObservationRecord {namespace: $ns, entityId: id}) WHERE o:Observation "
    "AND (o.embedding IS NULL OR o.embeddingHash IS NULL OR o.embeddingHash <> o.contentHash) "
    "RETURN o.id AS id, o.contentHash AS hash, o.entityId AS entityId ORDER BY o.entityId, o.seq";

/* Add the jobs of the live records of `ids` (entity id -> name in `names`) lacking a vector. */
static int force_records(bolt_conn *c, const char *ns, json_t *ids, json_t *names, json_t *outbox,
                         size_t *n_out, eg_error *err)
{
    *n_out = 0;
    if (json_array_size(ids) == 0)
        return 0;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "ids", ids);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_FORCE_RECORDS, p, &rows, err);
    size_t i;
    json_t *row;
    json_array_foreach(rc == 0 ? rows : NULL, i, row)
    {
        const char *id = graph__jstr(row, "id"), *hash = graph__jstr(row, "hash"), *eid = graph__jstr(row, "entityId");
        const char *name = json_string_value(json_object_get(names, eid ? eid : ""));
        if (id == NULL || hash == NULL || name == NULL)
            continue;
        /* the same job the mutation enqueued (mutate.c graph__obs_records) */
        json_t *o = json_pack("{sssIssssss}", "id", id, "version", (json_int_t)1, "name", name, "hash", hash,
                              "kind", "observation");
        if (o == NULL || json_array_append_new(outbox, o) != 0) {
            rc = eg_error_oom(err);
            break;
        }
        (*n_out)++;
    }
    json_decref(rows);
    return rc;
}

static int force_fn(bolt_conn *c, void *payload, eg_error *err)
{
    emb_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]sisi}", "jobIds", "entities", "created", 0, "existing", 0);
    if (w->result == NULL)
        return eg_error_oom(err);
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->cx.ns);
    if (w->name)
        bolt_params_str(p, "name", w->name);
    bolt_params_int(p, "lim", (int64_t)w->limit);
    json_t *rows = NULL;
    int rc = graph__q_params(c, w->name ? Q_FORCE_ONE : Q_FORCE_MISSING, p, &rows, err);
    if (rc != 0)
        return rc;
    if (w->name && json_array_size(rows) == 0) {
        json_decref(rows);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Entity not found: %s", w->name);
    }
    json_t *outbox = json_array(), *ids = json_array(), *names = json_object();
    if (outbox == NULL || ids == NULL || names == NULL) {
        json_decref(outbox);
        json_decref(ids);
        json_decref(names);
        json_decref(rows);
        return eg_error_oom(err);
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        graph_embed_input in;
        memset(&in, 0, sizeof in);
        rc = fill_input(row, w->cx.ns, &in, err);
        if (rc != 0)
            break;
        const char *stored = graph__jstr(row, "contentHash");
        if (stored == NULL || strcmp(stored, in.hash) != 0) {
            /* Entities from before engram (memento data) have no hash yet. */
            if ((p = graph__params(err)) == NULL) {
                graph_embed_input_clear(&in);
                rc = EG_ENOMEM;
                break;
            }
            bolt_params_str(p, "id", in.entity_id);
            bolt_params_str(p, "ns", w->cx.ns);
            bolt_params_str(p, "hash", in.hash);
            rc = graph__params_check(p, err);
            if (rc == 0)
                rc = graph__x(c,
                             "MATCH (e:Entity {id: $id}) WHERE e.namespace = $ns "
                             "SET e.contentHash = $hash, e.version = coalesce(e.version, 1)",
                             p, err);
            bolt_params_free(p);
            if (in.version == 0)
                in.version = 1;
        }
        if (rc == 0)
            rc = graph__outbox_add(outbox, in.entity_id, in.version, in.name, in.hash, err);
        if (rc == 0)
            json_array_append_new(json_object_get(w->result, "entities"), json_string(in.name));
        if (rc == 0 && (json_array_append_new(ids, json_string(in.entity_id)) != 0 ||
                        json_object_set_new(names, in.entity_id, json_string(in.name)) != 0))
            rc = eg_error_oom(err);
        graph_embed_input_clear(&in);
        if (rc != 0)
            break;
    }
    json_decref(rows);
    size_t created = 0, nrec = 0;
    if (rc == 0)
        rc = force_records(c, w->cx.ns, ids, names, outbox, &nrec, err);
    json_decref(ids);
    json_decref(names);
    json_object_set_new(w->result, "observations", json_integer((json_int_t)nrec));
    if (rc == 0)
        rc = graph__outbox_flush(w->cx.g, c, w->cx.ns, outbox, json_object_get(w->result, "jobIds"),
                                &created, err);
    json_decref(outbox);
    json_object_set_new(w->result, "created", json_integer((json_int_t)created));
    json_object_set_new(w->result, "existing",
                        json_integer((json_int_t)(json_array_size(json_object_get(w->result, "jobIds")) - created)));
    if (w->cx.g->queue == NULL)
        json_object_set_new(w->result, "note", json_string("no job queue configured"));
    return rc;
}

int graph_force_generate_embedding(graph_store *g, const graph_req *req, const char *name,
                                   size_t limit, bool force, json_t **out, eg_error *err)
{
    *out = NULL;
    emb_work w = {0};
    w.name = (name && *name) ? name : NULL;
    w.limit = limit ? (limit > GRAPH_MAX_LIMIT ? GRAPH_MAX_LIMIT : limit) : 10;
    w.force = force;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph__write(g, force_fn, &w, err);
    /* force: a job that already exists for this version may be dead (its
     * key is never queued again), which would leave the entity without a
     * vector for good: revive it.  Only dead jobs change; pending, leased and
     * completed ones are left as they are. */
    json_t *ids = json_object_get(w.result, "jobIds");
    if (rc == 0 && force && g->queue && json_array_size(ids) > 0) {
        size_t n = json_array_size(ids);
        const char **v = eg_calloc(n, sizeof *v);
        int64_t revived = 0;
        if (v == NULL)
            rc = eg_error_oom(err);
        for (size_t i = 0; v && i < n; i++)
            v[i] = json_string_value(json_array_get(ids, i));
        if (rc == 0)
            rc = queue_retry_dead_ns(g->queue, v, n, NULL, w.cx.ns, &revived, err);
        eg_free(v);
        if (rc == 0)
            json_object_set_new(w.result, "revived", json_integer((json_int_t)revived));
    }
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    *out = w.result;
    return 0;
}

/* ---- debug / diagnose ---- */

static int index_info(bolt_conn *c, const graph_store *g, json_t **out, eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "v", g->opts.vector_index);
    bolt_params_str(p, "f", g->opts.fulltext_index);
    bolt_params_str(p, "ov", g->opts.obs_vector_index);
    bolt_params_str(p, "of", g->opts.obs_fulltext_index);
    int rc = graph__q(c,
                     "SHOW INDEXES YIELD name, type, state, populationPercent, labelsOrTypes, "
                     "properties, options WHERE name IN [$v, $f, $ov, $of] "
                     "RETURN name, type, state, populationPercent, labelsOrTypes, properties, "
                     "options.indexConfig AS config",
                     p, out, err);
    bolt_params_free(p);
    return rc;
}

static int counts(bolt_conn *c, const char *ns, json_t **out, eg_error *err)
{
    *out = NULL;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    json_t *rows = NULL;
    int rc = graph__q(c,
                     "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
                     "RETURN count(e) AS entities, count(e.embedding) AS withEmbedding, "
                     "sum(CASE WHEN e.embedding IS NOT NULL AND e.embeddingHash = e.contentHash "
                     "THEN 1 ELSE 0 END) AS current",
                     p, &rows, err);
    bolt_params_free(p);
    if (rc == 0) {
        json_t *r = json_array_get(rows, 0);
        int64_t ents = graph__jint(r, "entities", 0), with = graph__jint(r, "withEmbedding", 0),
                cur = graph__jint(r, "current", 0);
        *out = json_pack("{sIsIsIsI}", "entities", (json_int_t)ents, "withEmbedding",
                         (json_int_t)with, "currentEmbedding", (json_int_t)cur, "missingOrStale",
                         (json_int_t)(ents - cur));
    }
    json_decref(rows);
    rows = NULL;
    /* The live observation records beside the entities (an addition: the
     * fields above keep their meaning).  By the (namespace, entityId) index. */
    if (rc == 0 && *out == NULL)
        rc = eg_error_oom(err);
    if (rc == 0 && (p = graph__params(err)) == NULL)
        rc = EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(p, "ns", ns);
        rc = graph__q(c,
                     "MATCH (o:ObservationRecord {namespace: $ns}) WHERE o.entityId IS NOT NULL AND o:Observation "
                     "RETURN count(o) AS live, count(o.embedding) AS withEmbedding, "
                     "sum(CASE WHEN o.embedding IS NOT NULL AND o.embeddingHash = o.contentHash "
                     "THEN 1 ELSE 0 END) AS current",
                     p, &rows, err);
        bolt_params_free(p);
    }
    if (rc == 0) {
        json_t *r = json_array_get(rows, 0);
        int64_t live = graph__jint(r, "live", 0), with = graph__jint(r, "withEmbedding", 0),
                cur = graph__jint(r, "current", 0);
        json_t *o = json_pack("{sIsIsIsI}", "live", (json_int_t)live, "withEmbedding", (json_int_t)with,
                              "currentEmbedding", (json_int_t)cur, "missingOrStale", (json_int_t)(live - cur));
        if (o == NULL || json_object_set_new(*out, "observations", o) != 0)
            rc = eg_error_oom(err);
    }
    json_decref(rows);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int debug_fn(bolt_conn *c, void *payload, eg_error *err)
{
    emb_work *w = payload;
    json_decref(w->result);
    const graph_opts *o = &w->cx.g->opts;
    w->result = json_pack("{sssssIssss}", "namespace", w->cx.ns, "vectorIndex", o->vector_index,
                          "vectorDimensions", (json_int_t)o->vector_dimensions,
                          "similarityFunction",
                          o->similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine",
                          "embeddingModel", o->embedding_model);
    if (w->result == NULL)
        return eg_error_oom(err);
    json_object_set_new(w->result, "fulltextIndex", json_string(o->fulltext_index));
    json_object_set_new(w->result, "observationVectorIndex", json_string(o->obs_vector_index));
    json_object_set_new(w->result, "observationFulltextIndex", json_string(o->obs_fulltext_index));
    json_object_set_new(w->result, "queueConfigured", json_boolean(w->cx.g->queue != NULL));
    json_t *cnt = NULL, *idx = NULL;
    int rc = counts(c, w->cx.ns, &cnt, err);
    if (rc == 0)
        rc = index_info(c, w->cx.g, &idx, err);
    if (rc == 0) {
        json_object_set_new(w->result, "counts", cnt);
        json_object_set_new(w->result, "indexes", idx);
    } else {
        json_decref(cnt);
        json_decref(idx);
    }
    return rc;
}

int graph_debug_embedding_config(graph_store *g, const graph_req *req, json_t **out, eg_error *err)
{
    *out = NULL;
    emb_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    rc = graph__run(g, GRAPH_TX_READ, debug_fn, &w, rc, &w.result, out, err);
    if (rc != 0)
        return rc;
    /* Does the database's index agree with the configuration?  Reported, not fatal. */
    json_t *rep = NULL;
    eg_error cerr;
    eg_error_clear(&cerr);
    graph_schema_check(g, &rep, &cerr);
    if (rep != NULL)
        json_object_set_new(*out, "schemaCheck", rep);
    return 0;
}

typedef struct probe_work {
    graph_store *g;
    const char *ns;
    const char *index;  /* the vector index probed */
    json_t *sample; /* entity with embedding, or NULL */
    json_t *result;
} probe_work;

static int sample_fn(bolt_conn *c, void *payload, eg_error *err)
{
    probe_work *w = payload;
    json_decref(w->sample);
    w->sample = NULL;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->ns);
    int rc = graph__q(c,
                     "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embedding IS NOT NULL "
                     "RETURN e.name AS name, size(e.embedding) AS dims, e.embedding AS embedding, "
                     "e.embeddingModel AS model LIMIT 3",
                     p, &w->sample, err);
    bolt_params_free(p);
    return rc;
}

static int probe_fn(bolt_conn *c, void *payload, eg_error *err)
{
    probe_work *w = payload;
    json_decref(w->result);
    w->result = NULL;
    size_t dims = w->g->opts.vector_dimensions;
    float *vec = eg_calloc(dims, sizeof *vec);
    if (vec == NULL)
        return eg_error_oom(err);
    json_t *emb = json_object_get(json_array_get(w->sample, 0), "embedding");
    if (json_array_size(emb) == dims) {
        for (size_t i = 0; i < dims; i++)
            vec[i] = (float)json_number_value(json_array_get(emb, i));
    } else {
        vec[0] = 1.0f;
    }
    bolt_params *p = graph__params(err);
    if (p == NULL) {
        eg_free(vec);
        return EG_ENOMEM;
    }
    bolt_params_str(p, "index", w->index);
    bolt_params_float32_list(p, "vec", vec, dims);
    bolt_params_str(p, "ns", w->ns);
    eg_free(vec);
    /* The index spans every namespace: ask for more neighbours than shown and
     * keep this namespace's, so no other namespace's names leak out. */
    int rc = graph__q(c,
                     "CALL db.index.vector.queryNodes($index, 50, $vec) YIELD node, score "
                     "WHERE node.namespace = $ns "
                     "RETURN coalesce(node.name, node.entityId) AS name, node.text AS text, score LIMIT 5",
                     p, &w->result, err);
    bolt_params_free(p);
    return rc;
}

int graph_diagnose_vector_search(graph_store *g, const graph_req *req, json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *dbg = NULL;
    int rc = graph_debug_embedding_config(g, req, &dbg, err);
    if (rc != 0)
        return rc;
    probe_work w = {0};
    w.g = g;
    w.ns = graph__jstr(dbg, "namespace");
    rc = graph__read(g, sample_fn, &w, err);
    if (rc != 0) {
        json_decref(dbg);
        return rc;
    }
    json_t *samples = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(w.sample, i, s)
    {
        json_array_append_new(samples, json_pack("{sOsOsO}", "name", jnull(json_object_get(s, "name")),
                                                 "dimensions", jnull(json_object_get(s, "dims")),
                                                 "model", jnull(json_object_get(s, "model"))));
    }
    json_object_set_new(dbg, "samples", samples);
    /* The probes may fail (index missing, wrong dimensions): report, don't
     * fail.  The observation index is probed with the same vector (one model,
     * one dimension for both); its hits name the record's entity id. */
    const char *indexes[2] = {g->opts.vector_index, g->opts.obs_vector_index};
    const char *keys[2] = {"probe", "observationProbe"};
    for (size_t k = 0; k < 2; k++) {
        w.index = indexes[k];
        eg_error perr;
        eg_error_clear(&perr);
        int prc = graph__read(g, probe_fn, &w, &perr);
        json_t *probe = json_object();
        json_object_set_new(probe, "index", json_string(w.index));
        json_object_set_new(probe, "queryVector",
                            json_string(json_array_size(w.sample) ? "first sample's embedding" : "unit vector e1"));
        if (prc == 0) {
            json_object_set_new(probe, "ok", json_true());
            json_object_set(probe, "results", w.result);
        } else {
            json_object_set_new(probe, "ok", json_false());
            json_object_set_new(probe, "error", json_string(perr.message));
            if (perr.neo4j_code[0])
                json_object_set_new(probe, "neo4jCode", json_string(perr.neo4j_code));
        }
        json_object_set_new(dbg, keys[k], probe);
    }
    json_decref(w.sample);
    json_decref(w.result);
    *out = dbg;
    return 0;
}
