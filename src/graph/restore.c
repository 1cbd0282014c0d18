/*
 * restore.c - engram's export format back into a namespace (graph.h,
 * graph_restore): live entities and relations with their ids, versions and
 * timestamps, and their whole history, so every read tool answers as it
 * did before the export.
 *
 * Each row marks what it creates with the statement's token and its own
 * index, so a record repeated in one batch counts (and queues) once.
 *
 * Idempotent: each record is MERGEd on its key (entity name, history
 * (entityId, version), relation (from, to, type), relation history
 * (relationId, version)) and written only when created, so the same file
 * twice changes nothing the second time.  A live entity or relation that
 * already exists is left as it is (counted as existing).
 *
 * Ids: entity and relation ids are unique across the database.  Restored
 * into the namespace it came from, a record keeps its ids; into another
 * one (a copy beside the original), each id is replaced by one derived
 * from the target namespace and the old id (SHA-256), the same on every
 * run, so the copy stays idempotent and its history stays linked.
 *
 * Embeddings: restored live entities get a fresh content hash and an
 * embedding job in the same transaction (the outbox); vectors in the file
 * are not loaded (the configured model may differ).
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/sha256.h"

#include <stdio.h>
#include <string.h>

static const char Q_ENTITY[] =
    "UNWIND $rows AS r "
    "MERGE (e:Entity {namespace: $ns, name: r.name}) "
    "ON CREATE SET e.id = r.id, e.entityType = r.entityType, e.observations = r.observations, "
    "  e.version = r.version, e.createdAt = r.createdAt, e.updatedAt = r.updatedAt, e.validFrom = r.validFrom, "
    "  e.changedBy = r.changedBy, e.contentHash = r.hash, e.restoredBy = $token + ':' + toString(r.i) "
    "WITH e, r, coalesce(e.restoredBy = $token + ':' + toString(r.i), false) AS created "
    "REMOVE e.restoredBy "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | SET " GRAPH_SEARCH_SET("e") ") "
    "RETURN r.i AS i, created";

static const char Q_ENTITY_VERSION[] =
    "UNWIND $rows AS r "
    "MERGE (h:EntityVersion {namespace: $ns, entityId: r.entityId, version: r.version}) "
    "ON CREATE SET h.name = r.name, h.entityType = r.entityType, h.observations = r.observations, "
    "  h.createdAt = r.createdAt, h.updatedAt = r.updatedAt, h.validFrom = r.validFrom, h.validTo = r.validTo, "
    "  h.changedBy = r.changedBy, h.deleted = coalesce(r.deleted, false), h.restoredBy = $token + ':' + toString(r.i) "
    "WITH h, r, coalesce(h.restoredBy = $token + ':' + toString(r.i), false) AS created "
    "REMOVE h.restoredBy "
    "RETURN count(CASE WHEN created THEN 1 END) AS n";

/* Endpoints locked first, as create_relations does, so that a MERGE racing
 * a live write cannot make a second relation. */
static const char Q_RELATION[] =
    "UNWIND $rows AS r "
    "MATCH (a:Entity {namespace: $ns, name: r.from}) "
    "MATCH (b:Entity {namespace: $ns, name: r.to}) "
    "SET a.lockSeq = coalesce(a.lockSeq, 0) + 1, b.lockSeq = coalesce(b.lockSeq, 0) + 1 "
    "MERGE (a)-[x:RELATES_TO {relationType: r.relationType}]->(b) "
    "ON CREATE SET x.id = r.id, x.strength = r.strength, x.confidence = r.confidence, x.metadata = r.metadata, "
    "  x.version = r.version, x.createdAt = r.createdAt, x.updatedAt = r.updatedAt, x.validFrom = r.validFrom, "
    "  x.changedBy = r.changedBy, x.restoredBy = $token + ':' + toString(r.i) "
    "WITH x, r, coalesce(x.restoredBy = $token + ':' + toString(r.i), false) AS created "
    "REMOVE x.restoredBy "
    "RETURN r.i AS i, created";

static const char Q_RELATION_VERSION[] =
    "UNWIND $rows AS r "
    "MERGE (h:RelationVersion {namespace: $ns, relationId: r.relationId, version: r.version}) "
    "ON CREATE SET h.from = r.from, h.to = r.to, h.relationType = r.relationType, h.strength = r.strength, "
    "  h.confidence = r.confidence, h.metadata = r.metadata, h.createdAt = r.createdAt, h.updatedAt = r.updatedAt, "
    "  h.validFrom = r.validFrom, h.validTo = r.validTo, h.changedBy = r.changedBy, "
    "  h.deleted = coalesce(r.deleted, false), h.restoredBy = $token + ':' + toString(r.i) "
    "WITH h, r, coalesce(h.restoredBy = $token + ':' + toString(r.i), false) AS created "
    "REMOVE h.restoredBy "
    "RETURN count(CASE WHEN created THEN 1 END) AS n";

/* ---- validation ---- */

static bool is_str(const json_t *o, const char *k, bool required)
{
    const json_t *v = json_object_get(o, k);
    return v ? json_is_string(v) && (!required || json_string_length(v) > 0) : !required;
}

static bool is_int(const json_t *o, const char *k, bool required)
{
    const json_t *v = json_object_get(o, k);
    return v ? json_is_integer(v) : !required;
}

static bool is_num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return !v || json_is_number(v);
}

static bool is_strs(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) if (!json_is_string(s)) return false;
    return true;
}

int graph_restore_check(const json_t *rec, char *why, size_t cap)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *bad = NULL;
    if (!json_is_object(rec) || !type)
        bad = "not an object with a \"type\"";
    else if (!strcmp(type, "entity"))
        bad = !is_str(rec, "name", true) ? "entity without a name"
              : !is_str(rec, "entityType", false) || !is_strs(rec, "observations")
                  ? "entity: entityType must be a string and observations a list of strings"
              : !is_str(rec, "id", true) || !is_int(rec, "version", true) ? "entity without id or version"
              : !is_int(rec, "createdAt", true) || !is_int(rec, "updatedAt", false) || !is_int(rec, "validFrom", false)
                  ? "entity: createdAt, updatedAt and validFrom must be integers (ms)"
              : !is_str(rec, "changedBy", false) ? "entity: changedBy must be a string"
                                                 : NULL;
    else if (!strcmp(type, "entityVersion"))
        bad = !is_str(rec, "entityId", true) || !is_str(rec, "name", true) || !is_int(rec, "version", true)
                  ? "entityVersion without entityId, name or version"
              : !is_str(rec, "entityType", false) || !is_strs(rec, "observations")
                  ? "entityVersion: bad entityType or observations"
              : !is_int(rec, "validFrom", true) || !is_int(rec, "validTo", false) || !is_int(rec, "createdAt", false) ||
                      !is_int(rec, "updatedAt", false)
                  ? "entityVersion: validFrom, validTo, createdAt and updatedAt must be integers (ms)"
              : (json_object_get(rec, "deleted") && !json_is_boolean(json_object_get(rec, "deleted")))
                  ? "entityVersion: deleted must be true or false"
                  : NULL;
    else if (!strcmp(type, "relation") || !strcmp(type, "relationVersion")) {
        bool hist = !strcmp(type, "relationVersion");
        bad = !is_str(rec, "from", true) || !is_str(rec, "to", true) || !is_str(rec, "relationType", true)
                  ? "relation without from, to or relationType"
              : !is_str(rec, hist ? "relationId" : "id", true) || !is_int(rec, "version", true)
                  ? "relation without its id or version"
              : !is_num(rec, "strength") || !is_num(rec, "confidence") || !is_str(rec, "metadata", false)
                  ? "relation: strength and confidence must be numbers, metadata JSON text"
              : !is_int(rec, "validFrom", hist) || !is_int(rec, "validTo", false) || !is_int(rec, "createdAt", false) ||
                      !is_int(rec, "updatedAt", false)
                  ? "relation: times must be integers (ms)"
                  : NULL;
    } else
        bad = "unknown type (entity, entityVersion, relation, relationVersion)";
    if (bad && why)
        snprintf(why, cap, "%s", bad);
    return bad ? EG_EINVAL : 0;
}

/* ---- ids ---- */

/* The id a record gets in namespace ns when it came from source_ns. */
static int map_id(const char *source_ns, const char *ns, const char *id, char out[40])
{
    if (!source_ns || strcmp(source_ns, ns) == 0) {
        snprintf(out, 40, "%s", id);
        return 0;
    }
    unsigned char md[EG_SHA256_LEN];
    eg_sha256 *h;
    if (eg_sha256_new(&h) != 0)
        return -1;
    eg_sha256_update(h, ns, strlen(ns) + 1);
    eg_sha256_update(h, id, strlen(id));
    int rc = eg_sha256_final(h, md);
    eg_sha256_free(h);
    if (rc)
        return -1;
    /* shaped like a UUID, version nibble 8 ("custom"), so it reads like one */
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-8%01x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
             md[3], md[4], md[5], md[6] & 0xf, md[7], (md[8] & 0x3f) | 0x80, md[9], md[10], md[11], md[12], md[13],
             md[14], md[15]);
    return 0;
}

/* A copy of rec for the statement: index i, mapped ids, the content hash. */
static int row_for(const json_t *rec, size_t i, const char *kind, const char *source_ns, const char *ns,
                   json_t **out, eg_error *err)
{
    json_t *r = json_deep_copy(rec);
    if (!r || json_object_set_new(r, "i", json_integer((json_int_t)i)) != 0) {
        json_decref(r);
        return eg_error_oom(err);
    }
    json_object_del(r, "type");
    const char *idk = !strcmp(kind, "entity") || !strcmp(kind, "relation") ? "id"
                      : !strcmp(kind, "entityVersion")                     ? "entityId"
                                                                           : "relationId";
    char id[40];
    const char *old = json_string_value(json_object_get(r, idk));
    if (!old || map_id(source_ns, ns, old, id) != 0 || json_object_set_new(r, idk, json_string(id)) != 0) {
        json_decref(r);
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "restore: cannot map id");
    }
    if (!strcmp(kind, "entity")) {
        const json_t *obs = json_object_get(r, "observations");
        size_t n = json_array_size(obs);
        const char **v = eg_calloc(n ? n : 1, sizeof *v);
        char *text = NULL, hash[65];
        int rc = v ? 0 : eg_error_oom(err);
        for (size_t k = 0; rc == 0 && k < n; k++)
            v[k] = json_string_value(json_array_get(obs, k));
        const char *type = json_string_value(json_object_get(r, "entityType"));
        if (rc == 0)
            rc = graph_embedding_text(json_string_value(json_object_get(r, "name")), type ? type : "", v, n, &text,
                                      hash, err);
        eg_free(v);
        eg_free(text);
        if (rc == 0 && json_object_set_new(r, "hash", json_string(hash)) != 0)
            rc = eg_error_oom(err);
        if (!json_object_get(r, "entityType"))
            json_object_set_new(r, "entityType", json_string(""));
        if (rc != 0) {
            json_decref(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

/* ---- the unit of work ---- */

typedef struct restore_work {
    graph_ctx cx;
    const char *kind, *source_ns;
    const json_t *recs;
    graph_restore_stats delta;
} restore_work;

static int restore_fn(bolt_conn *c, void *payload, eg_error *err)
{
    restore_work *w = payload;
    memset(&w->delta, 0, sizeof w->delta);
    size_t n = json_array_size(w->recs);
    json_t *rows = json_array(), *outbox = json_array();
    int rc = rows && outbox ? 0 : eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *r = NULL;
        rc = row_for(json_array_get(w->recs, i), i, w->kind, w->source_ns, w->cx.ns, &r, err);
        if (rc == 0 && json_array_append_new(rows, r) != 0)
            rc = eg_error_oom(err);
    }
    char token[33];
    if (rc == 0 && eg_rand_hex(token, 16) != 0)
        rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "restore: no random token");
    bolt_params *p = rc == 0 ? graph__params(err) : NULL;
    if (rc == 0 && !p)
        rc = EG_ENOMEM;
    json_t *res = NULL;
    if (rc == 0) {
        bolt_params_str(p, "ns", w->cx.ns);
        bolt_params_str(p, "token", token);
        bolt_params_json(p, "rows", rows);
        rc = graph__params_check(p, err);
    }
    bool entity = !strcmp(w->kind, "entity"), relation = !strcmp(w->kind, "relation");
    const char *q = entity ? Q_ENTITY : relation ? Q_RELATION : !strcmp(w->kind, "entityVersion") ? Q_ENTITY_VERSION
                                                                                                  : Q_RELATION_VERSION;
    if (rc == 0)
        rc = graph__q(c, q, p, &res, err);
    bolt_params_free(p);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        if (!entity && !relation) {
            int64_t made = graph__jint(row, "n", 0);
            if (!strcmp(w->kind, "entityVersion"))
                w->delta.entity_versions += made;
            else
                w->delta.relation_versions += made;
            continue;
        }
        bool created = json_is_true(json_object_get(row, "created"));
        const json_t *r = json_array_get(rows, (size_t)graph__jint(row, "i", 0));
        if (entity) {
            if (!created) {
                w->delta.entities_existing++;
                continue;
            }
            w->delta.entities++;
            rc = graph__outbox_add(outbox, graph__jstr(r, "id"), graph__jint(r, "version", 1), graph__jstr(r, "name"),
                                  graph__jstr(r, "hash"), err);
            if (rc != 0)
                break;
        } else if (created) {
            w->delta.relations++;
        } else {
            w->delta.relations_existing++;
        }
    }
    if (rc == 0 && relation)
        w->delta.relations_skipped =
            (int64_t)n - w->delta.relations - w->delta.relations_existing; /* an endpoint is missing */
    size_t jobs = 0;
    if (rc == 0 && entity)
        rc = graph__outbox_flush(w->cx.g, c, w->cx.ns, outbox, NULL, &jobs, err);
    w->delta.jobs = (int64_t)jobs;
    json_decref(res);
    json_decref(rows);
    json_decref(outbox);
    return rc;
}

int graph_restore(graph_store *g, const graph_req *req, const char *source_ns, const char *kind,
                  const json_t *records, graph_restore_stats *st, eg_error *err)
{
    static const char *const kinds[] = {"entity", "entityVersion", "relation", "relationVersion"};
    bool known = false;
    for (size_t i = 0; kind && i < 4; i++)
        known = known || !strcmp(kind, kinds[i]);
    if (!known || !json_is_array(records))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "restore: unknown record kind");
    char why[160];
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (graph_restore_check(rec, why, sizeof why) != 0 ||
            strcmp(json_string_value(json_object_get(rec, "type")), kind) != 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "restore: record %zu: %s", i + 1,
                                graph_restore_check(rec, why, sizeof why) ? why : "of another kind");
    }
    restore_work w;
    memset(&w, 0, sizeof w);
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc != 0)
        return rc;
    w.kind = kind;
    w.source_ns = source_ns;
    w.recs = records;
    if (json_array_size(records) == 0)
        return 0;
    rc = graph__write(g, restore_fn, &w, err);
    if (rc == 0) {
        st->entities += w.delta.entities;
        st->entities_existing += w.delta.entities_existing;
        st->entity_versions += w.delta.entity_versions;
        st->relations += w.delta.relations;
        st->relations_existing += w.delta.relations_existing;
        st->relations_skipped += w.delta.relations_skipped;
        st->relation_versions += w.delta.relation_versions;
        st->jobs += w.delta.jobs;
    }
    return rc;
}
