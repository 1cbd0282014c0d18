/*
 * backend_mem.c - an in-memory implementation of every MCP tool.
 *
 * Why it exists: the protocol layer must be testable without Neo4j (unit
 * tests, the fuzz target, client tests on a machine without a database),
 * and an operator can try engram with `engram serve --backend memory`.  It
 * follows the same data model as the Neo4j store (docs/data-model.md): one current
 * version per entity/relation plus closed history versions, hard deletes,
 * version bumps on observation changes.  Nothing is persisted.
 *
 * Embeddings come from the real offline provider (embed/provider.h:
 * hashed words, bigrams and trigrams, deterministic, no network) applied to
 * the graph's own embedding text (graph_embedding_text), so the demo ranks
 * as `engram serve` with ENGRAM_EMBED_PROVIDER=offline does and cannot
 * drift from it.  They are computed synchronously on every change; the
 * "queue" therefore only ever holds completed jobs.
 *
 * Storage is jansson objects under one mutex: simple, and fast enough for
 * tests.  Thread-safety: every slot takes the mutex.
 */
#include "core/alloc.h"
#include "core/env.h"
#include "graph/graph.h"
#include "core/clock.h"
#include "core/log.h"
#include "embed/provider.h"
#include "mcp/backend.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem {
    pthread_mutex_t mu;
    embed_provider *prov; /* offline; used under mu (a provider serves one thread at a time) */
    json_t *entities;  /* name -> {"cur": entity, "hist": [versions], "emb": [..]|null, "embAt": ms} */
    json_t *relations; /* [ {"cur": relation, "hist": [versions]} ] */
    json_t *jobs;      /* [ {id,status,entityName,attempts,lastError} ] */
    long long job_seq;
    long long last_ms;
    long long delay_ms; /* ENGRAM_MEM_DELAY_MS (tests): read_graph waits first */
} mem;

/*
 * Namespaces are partitions: one `mem` per namespace a call names (the
 * "namespace" argument tools.c resolved; none: the default partition),
 * made on first use.  Nothing crosses between them, as in the graph store.
 */
typedef struct mem_part {
    char *ns;
    mem *m;
} mem_part;

typedef struct mem_root {
    pthread_mutex_t mu;
    unsigned dims; /* of every partition's provider; 0: its default */
    long long delay_ms;
    mem_part *parts;
    size_t n, cap;
} mem_root;

static mem *mem_make(unsigned dims, long long delay_ms)
{
    mem *m = eg_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->delay_ms = delay_ms;
    m->entities = json_object();
    m->relations = json_array();
    m->jobs = json_array();
    const embed_config ec = {.kind = EMBED_PROVIDER_OFFLINE, .model = EMBED_OFFLINE_MODEL, .dimensions = (int)dims};
    if (!m->entities || !m->relations || !m->jobs || embed_provider_new(&m->prov, &ec, NULL) != 0) {
        json_decref(m->entities);
        json_decref(m->relations);
        json_decref(m->jobs);
        eg_free(m);
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void mem_destroy(mem *m)
{
    embed_provider_free(m->prov);
    json_decref(m->entities);
    json_decref(m->relations);
    json_decref(m->jobs);
    pthread_mutex_destroy(&m->mu);
    eg_free(m);
}

/* The partition of the call's namespace, made on first use; NULL on OOM. */
static mem *part_of(void *self, const json_t *args)
{
    mem_root *r = self;
    const char *ns = json_string_value(json_object_get(args, "namespace"));
    if (!ns)
        ns = "";
    mem *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n && !found; i++)
        if (strcmp(r->parts[i].ns, ns) == 0)
            found = r->parts[i].m;
    if (!found) {
        if (r->n == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 4;
            mem_part *np = eg_realloc(r->parts, nc * sizeof *np);
            if (np) {
                r->parts = np;
                r->cap = nc;
            }
        }
        char *copy = r->n < r->cap ? eg_strdup(ns) : NULL;
        mem *m = copy ? mem_make(r->dims, r->delay_ms) : NULL;
        if (m) {
            r->parts[r->n++] = (mem_part){copy, m};
            found = m;
        } else {
            eg_free(copy);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

#define PART(m)                                                                   \
    mem *m = part_of(self, args);                                                 \
    if (!m)                                                                       \
        return eg_error_oom(err)

static json_int_t now_ms(mem *m)
{
    long long t = (long long)eg_wall_ms();
    if (t <= m->last_ms)
        t = m->last_ms + 1; /* strictly increasing: versions never share a validFrom */
    m->last_ms = t;
    return (json_int_t)t;
}

/* ---- embedding ------------------------------------------------------------- */

static json_t *vec_json(const float *v, unsigned dims)
{
    json_t *a = json_array();
    for (unsigned i = 0; a && i < dims; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static void record_job(mem *m, const char *name, const char *status, const char *error)
{
    char id[32];
    snprintf(id, sizeof id, "mem-%lld", ++m->job_seq);
    json_array_append_new(m->jobs, json_pack("{s:s, s:s, s:s, s:i, s:s?}", "id", id, "status", status,
                                             "entityName", name, "attempts", 1, "lastError", error));
}

/* Recompute the embedding of entity slot `rec` (synchronous "worker"): the
 * text the workers embed, by the offline provider.  Called under m->mu. */
static int embed_entity(mem *m, json_t *rec)
{
    json_t *cur = json_object_get(rec, "cur");
    const json_t *obs = json_object_get(cur, "observations");
    size_t nobs = json_array_size(obs);
    int dims = embed_provider_dims(m->prov);
    const char **ov = eg_calloc(nobs ? nobs : 1, sizeof *ov);
    float *v = eg_malloc((size_t)dims * sizeof *v);
    char *text = NULL;
    char hash[65];
    int rc = ov && v ? 0 : EG_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nobs; i++)
        ov[i] = json_string_value(json_array_get(obs, i));
    if (rc == 0)
        rc = graph_embedding_text(json_string_value(json_object_get(cur, "name")),
                                  json_string_value(json_object_get(cur, "entityType")), ov, nobs, &text, hash, NULL);
    embed_status st, batch;
    const char *texts[1] = {text};
    if (rc == 0 && (rc = embed_provider_embed(m->prov, texts, 1, v, &st, &batch, NULL, NULL, NULL)) == 0 &&
        st.kind != EMBED_OK)
        rc = EG_EINVAL;
    if (rc == 0) {
        json_object_set_new(rec, "emb", vec_json(v, (unsigned)dims));
        json_object_set_new(rec, "embAt", json_integer(now_ms(m)));
        record_job(m, json_string_value(json_object_get(cur, "name")), "completed", NULL);
    }
    eg_free(text);
    eg_free(v);
    eg_free(ov);
    return rc;
}

/* Cosine of a stored vector (JSON numbers) and q, by the embed module's
 * function; scratch holds dims floats. */
static double cosine(const json_t *a, const float *q, float *scratch, int dims)
{
    if (json_array_size(a) != (size_t)dims)
        return 0.0;
    for (int i = 0; i < dims; i++)
        scratch[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    return embed_cosine(scratch, q, dims);
}

/* ---- helpers ---------------------------------------------------------------- */

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static json_t *find_rel(mem *m, const char *from, const char *to, const char *type)
{
    size_t i;
    json_t *r;
    json_array_foreach(m->relations, i, r)
    {
        json_t *c = json_object_get(r, "cur");
        if (!strcmp(sget(c, "from"), from) && !strcmp(sget(c, "to"), to) &&
            !strcmp(sget(c, "relationType"), type))
            return r;
    }
    return NULL;
}

static int has_string(const json_t *arr, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) if (!strcmp(json_string_value(x), s)) return 1;
    return 0;
}

/* Close the current version of rec into its history and start a new one. */
static json_t *new_version(mem *m, json_t *rec)
{
    json_t *cur = json_object_get(rec, "cur");
    json_int_t t = now_ms(m);
    json_t *old = json_deep_copy(cur);
    json_object_set_new(old, "validTo", json_integer(t));
    json_array_append_new(json_object_get(rec, "hist"), old);
    json_t *nv = json_deep_copy(cur);
    json_object_set_new(nv, "version", json_integer(json_integer_value(json_object_get(cur, "version")) + 1));
    json_object_set_new(nv, "updatedAt", json_integer(t));
    json_object_set_new(nv, "validFrom", json_integer(t));
    json_object_set_new(nv, "validTo", json_null());
    json_object_set_new(rec, "cur", nv);
    return nv;
}

/* Relations whose both ends are in the name set `names` (an object used as a set). */
static json_t *relations_among(mem *m, const json_t *names)
{
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(m->relations, i, r)
    {
        json_t *c = json_object_get(r, "cur");
        if (json_object_get(names, sget(c, "from")) && json_object_get(names, sget(c, "to")))
            json_array_append(out, c);
    }
    return out;
}

static json_t *graph_of(mem *m, json_t *entities)
{
    json_t *names = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(entities, i, e) json_object_set(names, sget(e, "name"), json_true());
    json_t *g = json_pack("{s:o, s:o}", "entities", entities, "relations", relations_among(m, names));
    json_decref(names);
    return g;
}

#define LOCKED(m) pthread_mutex_lock(&(m)->mu)
#define UNLOCK(m) pthread_mutex_unlock(&(m)->mu)

/* ---- tools -------------------------------------------------------------------- */

static int t_create_entities(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *ents = json_array(), *created = json_array(), *updated = json_array(), *unchanged = json_array();
    const json_t *list = json_object_get(args, "entities");
    size_t i, n = json_array_size(list);
    json_t *e;
    LOCKED(m);
    json_array_foreach(list, i, e)
    {
        const char *name = sget(e, "name");
        json_t *old = json_object_get(m->entities, name);
        if (old) {
            /* Same name: merge the new observations in (a new version if any). */
            json_t *obs = json_object_get(json_object_get(old, "cur"), "observations");
            json_t *add = json_array();
            size_t j;
            json_t *o;
            json_array_foreach(json_object_get(e, "observations"), j, o) if (!has_string(obs, json_string_value(o)) &&
                                                                            !has_string(add, json_string_value(o)))
                json_array_append_new(add, json_deep_copy(o));
            if (json_array_size(add)) {
                json_t *cur = new_version(m, old);
                json_array_extend(json_object_get(cur, "observations"), add);
                embed_entity(m, old);
                json_array_append_new(updated, json_string(name));
                json_array_append(ents, cur);
            } else if (!has_string(unchanged, name) && !has_string(created, name) && !has_string(updated, name)) {
                json_array_append_new(unchanged, json_string(name));
            }
            json_decref(add);
            continue;
        }
        json_int_t t = now_ms(m);
        json_t *obs = json_array();
        size_t j;
        json_t *o;
        json_array_foreach(json_object_get(e, "observations"), j, o) if (!has_string(obs, json_string_value(o)))
            json_array_append_new(obs, json_deep_copy(o));
        json_t *cur = json_pack("{s:s, s:s, s:o, s:i, s:I, s:I, s:I, s:n}", "name", name, "entityType",
                                sget(e, "entityType"), "observations", obs, "version", 1, "createdAt", t,
                                "updatedAt", t, "validFrom", t, "validTo");
        json_t *rec = json_pack("{s:o, s:[], s:n}", "cur", cur, "hist", "emb");
        json_object_set_new(m->entities, name, rec);
        embed_entity(m, rec);
        json_array_append(ents, cur);
        json_array_append_new(created, json_string(name));
        mcp_call_progress(ctx, (double)(i + 1), (double)n, NULL);
    }
    json_t *copy = json_deep_copy(ents);
    json_decref(ents); /* holds references into the store: released under its lock */
    UNLOCK(m);
    *out = json_pack("{s:o, s:o, s:o, s:o}", "entities", copy, "created", created, "updated", updated,
                     "unchanged", unchanged);
    (void)err;
    return 0;
}

static int t_create_relations(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *created = json_array(), *skipped = json_array(), *existing = json_array();
    size_t i;
    json_t *r;
    LOCKED(m);
    json_array_foreach(json_object_get(args, "relations"), i, r)
    {
        const char *from = sget(r, "from"), *to = sget(r, "to"), *type = sget(r, "relationType");
        const char *why = NULL;
        if (!json_object_get(m->entities, from))
            why = "source entity does not exist";
        else if (!json_object_get(m->entities, to))
            why = "target entity does not exist";
        json_t *dup = why ? NULL : find_rel(m, from, to, type);
        if (dup) {
            json_array_append_new(existing, json_deep_copy(json_object_get(dup, "cur")));
            continue;
        }
        if (why) {
            json_array_append_new(skipped, json_pack("{s:s, s:s, s:s, s:s}", "from", from, "to", to,
                                                     "relationType", type, "reason", why));
            continue;
        }
        json_int_t t = now_ms(m);
        json_t *cur = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:n}", "from", from, "to", to,
                                "relationType", type, "version", 1, "createdAt", t, "updatedAt", t, "validFrom",
                                t, "validTo");
        static const char *const attrs[] = {"strength", "confidence", "metadata"};
        for (int k = 0; k < 3; k++) {
            json_t *v = json_object_get(r, attrs[k]);
            json_object_set_new(cur, attrs[k], v ? json_deep_copy(v) : json_null());
        }
        json_array_append_new(m->relations, json_pack("{s:o, s:[]}", "cur", cur, "hist"));
        json_array_append(created, cur);
    }
    json_t *copy = json_deep_copy(created);
    json_decref(created); /* holds references into the store: released under its lock */
    UNLOCK(m);
    *out = json_pack("{s:o, s:o, s:o}", "relations", copy, "existing", existing, "skipped", skipped);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_add_observations(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    const json_t *list = json_object_get(args, "observations");
    size_t i;
    json_t *x;
    LOCKED(m);
    /* All or nothing: check every entity exists first. */
    json_array_foreach(list, i, x) if (!json_object_get(m->entities, sget(x, "entityName")))
    {
        UNLOCK(m);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                            "Entity '%s' does not exist; create it with create_entities first. Nothing "
                            "was changed.",
                            sget(x, "entityName"));
    }
    json_t *results = json_array();
    json_array_foreach(list, i, x)
    {
        json_t *rec = json_object_get(m->entities, sget(x, "entityName"));
        json_t *added = json_array();
        json_t *cur_obs = json_object_get(json_object_get(rec, "cur"), "observations");
        size_t j;
        json_t *o;
        json_array_foreach(json_object_get(x, "contents"), j, o) if (!has_string(cur_obs, json_string_value(o)) &&
                                                                    !has_string(added, json_string_value(o)))
            json_array_append_new(added, json_deep_copy(o));
        json_t *cur = json_object_get(rec, "cur");
        if (json_array_size(added)) {
            cur = new_version(m, rec);
            /* the store keeps its own copy: `added` goes out in the result */
            json_t *kept = json_deep_copy(added);
            json_array_extend(json_object_get(cur, "observations"), kept);
            json_decref(kept);
            embed_entity(m, rec);
        }
        json_array_append_new(results, json_pack("{s:s, s:o, s:I}", "entityName", sget(x, "entityName"),
                                                 "addedObservations", added, "version",
                                                 json_integer_value(json_object_get(cur, "version"))));
    }
    UNLOCK(m);
    *out = json_pack("{s:o}", "results", results);
    (void)ctx;
    return 0;
}

static int t_delete_entities(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *deleted = json_array(), *missing = json_array();
    size_t i;
    json_t *x;
    LOCKED(m);
    json_array_foreach(json_object_get(args, "entityNames"), i, x)
    {
        const char *name = json_string_value(x);
        if (!json_object_get(m->entities, name)) {
            json_array_append(missing, x);
            continue;
        }
        json_object_del(m->entities, name);
        json_array_append(deleted, x);
        for (size_t k = json_array_size(m->relations); k-- > 0;) {
            json_t *c = json_object_get(json_array_get(m->relations, k), "cur");
            if (!strcmp(sget(c, "from"), name) || !strcmp(sget(c, "to"), name))
                json_array_remove(m->relations, k);
        }
    }
    UNLOCK(m);
    *out = json_pack("{s:o, s:o}", "deleted", deleted, "notFound", missing);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_delete_observations(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *results = json_array();
    size_t i;
    json_t *x;
    LOCKED(m);
    json_array_foreach(json_object_get(args, "deletions"), i, x)
    {
        json_t *rec = json_object_get(m->entities, sget(x, "entityName"));
        json_t *gone = json_array();
        json_int_t version = 0;
        if (rec) {
            json_t *obs = json_object_get(json_object_get(rec, "cur"), "observations");
            size_t j;
            json_t *o;
            json_array_foreach(json_object_get(x, "observations"), j, o) if (has_string(obs, json_string_value(o)) &&
                                                                            !has_string(gone, json_string_value(o)))
                json_array_append(gone, o);
            json_t *cur = json_object_get(rec, "cur");
            if (json_array_size(gone)) {
                cur = new_version(m, rec);
                json_t *keep = json_array();
                json_array_foreach(json_object_get(cur, "observations"), j,
                                   o) if (!has_string(gone, json_string_value(o))) json_array_append(keep, o);
                json_object_set_new(cur, "observations", keep);
                embed_entity(m, rec);
            }
            version = json_integer_value(json_object_get(cur, "version"));
        }
        json_t *r = json_pack("{s:s, s:o}", "entityName", sget(x, "entityName"), "deletedObservations", gone);
        if (rec)
            json_object_set_new(r, "version", json_integer(version));
        json_array_append_new(results, r);
    }
    UNLOCK(m);
    *out = json_pack("{s:o}", "results", results);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_delete_relations(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *deleted = json_array(), *missing = json_array();
    size_t i;
    json_t *x;
    LOCKED(m);
    json_array_foreach(json_object_get(args, "relations"), i, x)
    {
        int n = 0;
        for (size_t k = json_array_size(m->relations); k-- > 0;) {
            json_t *c = json_object_get(json_array_get(m->relations, k), "cur");
            if (!strcmp(sget(c, "from"), sget(x, "from")) && !strcmp(sget(c, "to"), sget(x, "to")) &&
                !strcmp(sget(c, "relationType"), sget(x, "relationType"))) {
                json_array_remove(m->relations, k);
                n++;
            }
        }
        json_array_append_new(n ? deleted : missing, json_pack("{s:s, s:s, s:s}", "from", sget(x, "from"), "to",
                                                               sget(x, "to"), "relationType", sget(x, "relationType")));
    }
    UNLOCK(m);
    *out = json_pack("{s:o, s:o}", "deleted", deleted, "notFound", missing);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_get_relation(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    json_t *r = find_rel(m, sget(args, "from"), sget(args, "to"), sget(args, "relationType"));
    json_t *c = r ? json_deep_copy(json_object_get(r, "cur")) : json_null();
    UNLOCK(m);
    *out = json_pack("{s:b, s:o}", "found", r != NULL, "relation", c);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_update_relation(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    const json_t *in = json_object_get(args, "relation");
    LOCKED(m);
    json_t *r = find_rel(m, sget(in, "from"), sget(in, "to"), sget(in, "relationType"));
    if (!r) {
        UNLOCK(m);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                            "Relation %s -[%s]-> %s does not exist; create it with create_relations.",
                            sget(in, "from"), sget(in, "relationType"), sget(in, "to"));
    }
    json_t *cur = new_version(m, r);
    static const char *const fields[] = {"strength", "confidence", "metadata"};
    for (int k = 0; k < 3; k++)
        if (json_object_get(in, fields[k]))
            json_object_set_new(cur, fields[k], json_deep_copy(json_object_get(in, fields[k])));
    *out = json_pack("{s:o}", "relation", json_deep_copy(cur));
    UNLOCK(m);
    (void)ctx;
    return 0;
}

static json_t *all_current(mem *m)
{
    json_t *ents = json_array();
    const char *k;
    json_t *rec;
    json_object_foreach(m->entities, k, rec) json_array_append(ents, json_object_get(rec, "cur"));
    return ents;
}

/*
 * ENGRAM_MEM_DELAY_MS: read_graph first waits this long, watching for
 * cancellation - a slow call for transport tests (a client that goes away,
 * a shutdown while a call runs) without a database.  EG_ECANCELED when
 * cancelled meanwhile.
 */
static int test_delay(mem *m, mcp_call_ctx *ctx, eg_error *err)
{
    if (m->delay_ms <= 0)
        return 0;
    mcp_call_progress(ctx, 0, 1, "waiting (ENGRAM_MEM_DELAY_MS)");
    int64_t end = eg_mono_ms() + m->delay_ms;
    while (eg_mono_ms() < end) {
        if (mcp_call_cancelled(ctx)) {
            EG_INFO("mem", "read_graph cancelled during its ENGRAM_MEM_DELAY_MS wait");
            return eg_error_set(err, EG_ECANCELED, EG_CLASS_CLIENT, "cancelled");
        }
        eg_sleep_ms(10);
    }
    return 0;
}

static int t_read_graph(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    int drc = test_delay(m, ctx, err);
    if (drc)
        return drc;
    LOCKED(m);
    json_t *g = graph_of(m, all_current(m));
    json_t *copy = json_deep_copy(g);
    json_decref(g); /* holds references into the store: released under its lock */
    UNLOCK(m);
    json_object_set_new(copy, "total", json_integer((json_int_t)(json_array_size(json_object_get(copy, "entities")) +
                                                                 json_array_size(json_object_get(copy, "relations")))));
    *out = copy;
    (void)args;
    (void)ctx;
    (void)err;
    return 0;
}

static int icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return 1;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

static int entity_matches(const json_t *e, const char *q)
{
    if (icontains(sget(e, "name"), q) || icontains(sget(e, "entityType"), q))
        return 1;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(e, "observations"), i, o) if (icontains(json_string_value(o), q)) return 1;
    return 0;
}

static int t_search_nodes(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_int_t limit = json_object_get(args, "limit") ? json_integer_value(json_object_get(args, "limit")) : 10;
    const char *q = sget(args, "query");
    json_t *ents = json_array();
    LOCKED(m);
    const char *k;
    json_t *rec;
    json_object_foreach(m->entities, k, rec)
    {
        if ((json_int_t)json_array_size(ents) >= limit)
            break;
        if (entity_matches(json_object_get(rec, "cur"), q))
            json_array_append(ents, json_object_get(rec, "cur"));
    }
    json_t *g = graph_of(m, ents);
    *out = json_deep_copy(g);
    json_decref(g); /* holds references into the store: released under its lock */
    UNLOCK(m);
    /* matchedObservations: the observations holding the text (a literal match scores 1). */
    size_t i, j;
    json_t *e, *o;
    json_array_foreach(json_object_get(*out, "entities"), i, e)
    {
        json_t *list = json_array();
        json_array_foreach(json_object_get(e, "observations"), j, o)
        {
            if (*q && icontains(json_string_value(o), q) && json_array_size(list) < GRAPH_MATCHED_OBS_MAX)
                json_array_append_new(list, json_pack("{s:O, s:f}", "text", o, "score", 1.0));
        }
        json_object_set_new(e, "matchedObservations", list);
    }
    (void)ctx;
    (void)err;
    return 0;
}

static int t_open_nodes(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *ents = json_array();
    size_t i;
    json_t *x;
    LOCKED(m);
    json_array_foreach(json_object_get(args, "names"), i, x)
    {
        json_t *rec = json_object_get(m->entities, json_string_value(x));
        if (rec)
            json_array_append(ents, json_object_get(rec, "cur"));
    }
    json_t *g = graph_of(m, ents);
    if (json_is_true(json_object_get(args, "neighbours"))) {
        /* Every relation touching an opened entity, and its other end. */
        json_t *rels = json_array(), *nb = json_array(), *opened = json_object(), *seen = json_object();
        json_array_foreach(ents, i, x) json_object_set(opened, sget(x, "name"), json_true());
        json_array_foreach(m->relations, i, x)
        {
            json_t *c = json_object_get(x, "cur");
            const char *ends[2] = {sget(c, "from"), sget(c, "to")};
            if (!json_object_get(opened, ends[0]) && !json_object_get(opened, ends[1]))
                continue;
            json_array_append(rels, c);
            for (int k = 0; k < 2; k++) {
                json_t *rec = json_object_get(m->entities, ends[k]);
                if (json_object_get(opened, ends[k]) || json_object_get(seen, ends[k]) || !rec)
                    continue;
                json_object_set(seen, ends[k], json_true());
                json_array_append_new(nb, json_pack("{s:s, s:O}", "name", ends[k], "entityType",
                                                    json_object_get(json_object_get(rec, "cur"), "entityType")));
            }
        }
        json_object_set_new(g, "relations", rels);
        json_object_set_new(g, "neighbours", nb);
        json_decref(opened);
        json_decref(seen);
    }
    *out = json_deep_copy(g);
    json_decref(g); /* holds references into the store: released under its lock */
    UNLOCK(m);
    (void)ctx;
    (void)err;
    return 0;
}

/* Fraction of query words found in the entity's text, or (e NULL) in `text`. */
static double keyword_score(const json_t *e, const char *text, const char *q)
{
    int words = 0, hits = 0;
    char w[128];
    const char *p = q;
    while (*p) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        size_t n = 0;
        while (*p && isalnum((unsigned char)*p)) {
            if (n < sizeof w - 1)
                w[n++] = *p;
            p++;
        }
        if (!n)
            continue;
        w[n] = '\0';
        words++;
        hits += e ? entity_matches(e, w) : icontains(text, w);
    }
    return words ? (double)hits / words : 0.0;
}

/* Insert x into list by "score", descending, keeping at most GRAPH_MATCHED_OBS_MAX. */
static void insert_by_score(json_t *list, json_t *x)
{
    double s = json_number_value(json_object_get(x, "score"));
    size_t pos = 0;
    while (pos < json_array_size(list) && json_number_value(json_object_get(json_array_get(list, pos), "score")) >= s)
        pos++;
    if (pos < GRAPH_MATCHED_OBS_MAX)
        json_array_insert_new(list, pos, x);
    else
        json_decref(x);
    while (json_array_size(list) > GRAPH_MATCHED_OBS_MAX)
        json_array_remove(list, json_array_size(list) - 1);
}

/*
 * matchedObservations as the graph backend gives them, each observation
 * scored on its own: the words of q it holds and (with a query vector) the
 * cosine of its own embedding, computed here (the text the workers embed for
 * an observation record).  No ranks: this demo has no legs to rank in.
 * Called under m->mu; scratch holds dims floats.
 */
static json_t *matched_obs(mem *m, const json_t *e, const char *q, const float *qv, bool hybrid, double w,
                           float *scratch, int dims)
{
    json_t *list = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(e, "observations"), i, o)
    {
        const char *text = json_string_value(o);
        double ks = keyword_score(NULL, text ? text : "", q), vs = 0.0;
        char *t = NULL, hash[65];
        embed_status st, batch;
        if (qv && text && graph_observation_text(sget(e, "name"), sget(e, "entityType"), text, &t, hash, NULL) == 0) {
            const char *texts[1] = {t};
            if (embed_provider_embed(m->prov, texts, 1, scratch, &st, &batch, NULL, NULL, NULL) == 0 &&
                st.kind == EMBED_OK)
                vs = embed_cosine(scratch, qv, dims);
        }
        eg_free(t);
        vs = vs < 0 ? 0 : vs;
        double s = hybrid ? w * vs + (1 - w) * ks : vs;
        if (s <= 0 || text == NULL)
            continue;
        json_t *x = json_pack("{s:s, s:f}", "text", text, "score", s);
        if (qv)
            json_object_set_new(x, "similarity", json_real(vs));
        if (hybrid)
            json_object_set_new(x, "keywordScore", json_real(ks));
        insert_by_score(list, x);
    }
    return list;
}

static int do_search(mem *m, const json_t *args, mcp_call_ctx *ctx, bool hybrid, double def_min, json_t **out)
{
    const char *q = sget(args, "query");
    json_int_t limit = json_object_get(args, "limit") ? json_integer_value(json_object_get(args, "limit")) : 10;
    double minsim = json_object_get(args, "min_similarity") ? json_number_value(json_object_get(args, "min_similarity"))
                                                            : def_min;
    double w = json_object_get(args, "semantic_weight") ? json_number_value(json_object_get(args, "semantic_weight"))
                                                        : GRAPH_SEMANTIC_WEIGHT;
    const json_t *types = json_object_get(args, "entity_types");
    json_t *scored = json_array();
    LOCKED(m);
    int dims = embed_provider_dims(m->prov);
    float *qv = eg_malloc(3 * (size_t)dims * sizeof *qv);
    if (!qv || !scored) {
        UNLOCK(m);
        eg_free(qv);
        json_decref(scored);
        return EG_ENOMEM;
    }
    /* A query the provider refuses (nothing to embed) matches by keyword
     * only, as a zero vector did before. */
    embed_status st;
    bool have_qv = embed_provider_embed_query(m->prov, q, qv, &st, NULL) == 0;
    const char *k;
    json_t *rec;
    json_object_foreach(m->entities, k, rec)
    {
        json_t *e = json_object_get(rec, "cur");
        if (json_array_size(types) && !has_string(types, sget(e, "entityType")))
            continue;
        json_t *emb = json_object_get(rec, "emb");
        double vs = have_qv && json_is_array(emb) ? cosine(emb, qv, qv + dims, dims) : 0.0;
        if (vs < 0)
            vs = 0;
        double ks = keyword_score(e, NULL, q);
        double s = hybrid ? w * vs + (1 - w) * ks : vs;
        if (s < minsim || s <= 0)
            continue;
        json_t *match = json_pack("{s:s, s:s, s:f, s:f}", "name", k, "entityType", sget(e, "entityType"), "score",
                                  s, "vectorScore", vs);
        json_object_set_new(match, "keywordScore", hybrid ? json_real(ks) : json_null());
        /* insertion sort by score, descending */
        size_t pos = 0;
        while (pos < json_array_size(scored) &&
               json_number_value(json_object_get(json_array_get(scored, pos), "score")) >= s)
            pos++;
        json_array_insert_new(scored, pos, match);
    }
    while ((json_int_t)json_array_size(scored) > limit)
        json_array_remove(scored, json_array_size(scored) - 1);
    json_t *ents = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(scored, i, x)
        json_array_append(ents, json_object_get(json_object_get(m->entities, sget(x, "name")), "cur"));
    json_t *g = graph_of(m, ents);
    json_t *res = json_deep_copy(g);
    json_decref(g); /* holds references into the store: released under its lock */
    json_array_foreach(json_object_get(res, "entities"), i, x)
    {
        json_t *mo = matched_obs(m, x, q, have_qv ? qv : NULL, hybrid, w, qv + 2 * dims, dims);
        /* Hybrid: an observation's score in its entity's context, as the graph backend gives it. */
        double es = 0.0;
        size_t j;
        json_t *sc, *o;
        json_array_foreach(scored, j, sc)
        {
            if (strcmp(sget(sc, "name"), sget(x, "name")) == 0)
                es = json_number_value(json_object_get(sc, "score"));
        }
        json_array_foreach(mo, j, o)
        {
            if (!hybrid)
                break;
            double own = json_number_value(json_object_get(o, "score"));
            json_object_set_new(o, "observationScore", json_real(own));
            json_object_set_new(o, "score", json_real((own + es) / 2.0));
        }
        json_object_set_new(x, "matchedObservations", mo);
    }
    UNLOCK(m);
    eg_free(qv);
    json_object_set_new(res, "matches", scored);
    json_object_set_new(res, "searchType", json_string(hybrid ? "hybrid" : "semantic"));
    mcp_call_progress(ctx, 1, 1, "search done");
    *out = res;
    return 0;
}

static int t_semantic_search(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    const json_t *h = json_object_get(args, "hybrid_search");
    bool hybrid = h ? json_is_true(h) : true;
    PART(m);
    return do_search(m, args, ctx, hybrid, hybrid ? 0.0 : 0.6, out);
}

static int t_hybrid_search(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    return do_search(m, args, ctx, true, 0.0, out);
}

static int t_get_entity_embedding(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    json_t *rec = json_object_get(m->entities, sget(args, "entity_name"));
    if (!rec || !json_is_array(json_object_get(rec, "emb"))) {
        UNLOCK(m);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                            "Entity '%s' %s.", sget(args, "entity_name"),
                            rec ? "has no embedding yet; try again shortly or call force_generate_embedding"
                                : "does not exist");
    }
    *out = json_pack("{s:s, s:o, s:s, s:i, s:o}", "entityName", sget(args, "entity_name"), "embedding",
                     json_deep_copy(json_object_get(rec, "emb")), "model", embed_provider_model(m->prov),
                     "dimensions", embed_provider_dims(m->prov), "lastUpdated",
                     json_deep_copy(json_object_get(rec, "embAt")));
    UNLOCK(m);
    (void)ctx;
    return 0;
}

static int t_get_entity_history(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    json_t *rec = json_object_get(m->entities, sget(args, "entityName"));
    json_t *versions = json_array();
    if (rec) {
        json_array_extend(versions, json_object_get(rec, "hist"));
        json_array_append(versions, json_object_get(rec, "cur"));
    }
    *out = json_pack("{s:s, s:o}", "entityName", sget(args, "entityName"), "history", json_deep_copy(versions));
    json_decref(versions); /* holds references into the store: released under its lock */
    UNLOCK(m);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_get_relation_history(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    json_t *r = find_rel(m, sget(args, "from"), sget(args, "to"), sget(args, "relationType"));
    json_t *versions = json_array();
    if (r) {
        json_array_extend(versions, json_object_get(r, "hist"));
        json_array_append(versions, json_object_get(r, "cur"));
    }
    *out = json_pack("{s:s, s:s, s:s, s:o}", "from", sget(args, "from"), "to", sget(args, "to"), "relationType",
                     sget(args, "relationType"), "history", json_deep_copy(versions));
    json_decref(versions); /* holds references into the store: released under its lock */
    UNLOCK(m);
    (void)ctx;
    (void)err;
    return 0;
}

static const json_t *version_at(const json_t *rec, double t)
{
    const json_t *cur = json_object_get(rec, "cur");
    if (json_number_value(json_object_get(cur, "validFrom")) <= t)
        return cur;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, "hist"), i, v)
    {
        if (json_number_value(json_object_get(v, "validFrom")) <= t &&
            json_number_value(json_object_get(v, "validTo")) > t)
            return v;
    }
    return NULL;
}

static int t_get_graph_at_time(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    double t = json_number_value(json_object_get(args, "timestamp"));
    json_t *ents = json_array(), *rels = json_array();
    LOCKED(m);
    const char *k;
    json_t *rec;
    json_object_foreach(m->entities, k, rec)
    {
        const json_t *v = version_at(rec, t);
        if (v)
            json_array_append_new(ents, json_deep_copy(v));
    }
    size_t i;
    json_array_foreach(m->relations, i, rec)
    {
        const json_t *v = version_at(rec, t);
        if (v)
            json_array_append_new(rels, json_deep_copy(v));
    }
    UNLOCK(m);
    *out = json_pack("{s:f, s:o, s:o}", "timestamp", t, "entities", ents, "relations", rels);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_get_decayed_graph(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    const double min_conf = 0.1;
    json_t *decay_factor = json_object_get(args, "decay_factor");
    double half = decay_factor ? json_number_value(decay_factor) : 30.0;
    LOCKED(m);
    double ref = json_object_get(args, "reference_time") ? json_number_value(json_object_get(args, "reference_time"))
                                                         : (double)now_ms(m);
    json_t *g = graph_of(m, all_current(m));
    json_t *res = json_deep_copy(g);
    json_decref(g); /* holds references into the store: released under its lock */
    UNLOCK(m);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(res, "relations"), i, r)
    {
        json_t *c = json_object_get(r, "confidence");
        if (!json_is_number(c))
            continue;
        double age = ref - json_number_value(json_object_get(r, "validFrom"));
        if (age < 0)
            age = 0;
        double d = json_number_value(c) * pow(0.5, age / (half * 86400000.0));
        json_object_set_new(r, "confidence", json_real(d < min_conf ? min_conf : d));
    }
    json_object_set_new(res, "decay", json_pack("{s:f, s:f, s:f}", "referenceTime", ref, "halfLifeDays", half,
                                                "minConfidence", min_conf));
    *out = res;
    (void)ctx;
    (void)err;
    return 0;
}

static int t_force_generate_embedding(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    if (!json_is_string(json_object_get(args, "entity_name"))) {
        /* Backfill: entities without a vector, up to limit (default 10). */
        json_int_t limit = json_integer_value(json_object_get(args, "limit"));
        json_t *names = json_array();
        const char *key;
        json_t *r;
        int rc = names ? 0 : EG_ENOMEM;
        json_object_foreach(m->entities, key, r)
        {
            if (rc || (json_int_t)json_array_size(names) >= (limit > 0 ? limit : 10))
                break;
            if (json_is_array(json_object_get(r, "emb")))
                continue;
            if ((rc = embed_entity(m, r)) == 0)
                json_array_append_new(names, json_string(key));
        }
        UNLOCK(m);
        if (rc) {
            json_decref(names);
            return eg_error_set(err, rc, EG_CLASS_NONE, EG_OOM_TEXT);
        }
        *out = json_pack("{s:b, s:o, s:[], s:i, s:i, s:b}", "success", 1, "entities", names, "jobIds", "created",
                         0, "existing", 0, "queued", 0);
        (void)ctx;
        return *out ? 0 : EG_ENOMEM;
    }
    json_t *rec = json_object_get(m->entities, sget(args, "entity_name"));
    if (!rec) {
        UNLOCK(m);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Entity '%s' does not exist.",
                            sget(args, "entity_name"));
    }
    int rc = embed_entity(m, rec);
    UNLOCK(m);
    if (rc)
        return eg_error_set(err, rc, EG_CLASS_NONE, rc == EG_ENOMEM ? EG_OOM_TEXT : "the embedding failed");
    *out = json_pack("{s:b, s:s, s:i, s:s}", "success", 1, "entity", sget(args, "entity_name"), "vector_length",
                     embed_provider_dims(m->prov), "model", embed_provider_model(m->prov));
    (void)ctx;
    return 0;
}

static int t_debug_embedding_config(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    LOCKED(m);
    size_t n = json_object_size(m->entities);
    UNLOCK(m);
    *out = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "storage", "memory", "provider",
                     embed_kind_name(embed_provider_kind(m->prov)), "model", embed_provider_model(m->prov),
                     "dimensions", embed_provider_dims(m->prov), "entities", (json_int_t)n,
                     "entitiesWithEmbedding", (json_int_t)n);
    (void)args;
    (void)ctx;
    (void)err;
    return 0;
}

static int t_diagnose_vector_search(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *r = NULL;
    json_t *a = json_pack("{s:s, s:i}", "query", "test", "limit", 3);
    int rc = do_search(m, a, ctx, false, 0.0, &r);
    json_decref(a);
    if (rc)
        return eg_error_set(err, rc, EG_CLASS_NONE, "test query failed");
    *out = json_pack("{s:s, s:b, s:i, s:{s:b, s:I}}", "index", "in-memory (exact scan)", "online", 1, "dimensions",
                     embed_provider_dims(m->prov), "testQuery", "ok", 1, "results",
                     (json_int_t)json_array_size(json_object_get(r, "matches")));
    json_decref(r);
    (void)args;
    return 0;
}

static int t_queue_status(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    json_t *counts = json_pack("{s:i, s:i, s:i, s:i, s:i}", "pending", 0, "leased", 0, "completed", 0, "dead", 0,
                               "superseded", 0);
    LOCKED(m);
    size_t i;
    json_t *j;
    json_array_foreach(m->jobs, i, j)
    {
        const char *st = sget(j, "status");
        json_object_set_new(counts, st, json_integer(json_integer_value(json_object_get(counts, st)) + 1));
    }
    UNLOCK(m);
    *out = json_pack("{s:o, s:n, s:b}", "counts", counts, "oldestPendingAgeMs", "healthy", 1);
    (void)args;
    (void)ctx;
    (void)err;
    return 0;
}

static int t_queue_list_jobs(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    const char *status = json_string_value(json_object_get(args, "status"));
    json_int_t limit = json_object_get(args, "limit") ? json_integer_value(json_object_get(args, "limit")) : 50;
    json_t *jobs = json_array();
    LOCKED(m);
    for (size_t i = json_array_size(m->jobs); i-- > 0 && (json_int_t)json_array_size(jobs) < limit;) {
        json_t *j = json_array_get(m->jobs, i);
        if (!status || !strcmp(status, sget(j, "status")))
            json_array_append_new(jobs, json_deep_copy(j));
    }
    UNLOCK(m);
    *out = json_pack("{s:o}", "jobs", jobs);
    (void)ctx;
    (void)err;
    return 0;
}

static int t_queue_retry_dead(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PART(m);
    const json_t *ids = json_object_get(args, "jobIds");
    int n = 0;
    LOCKED(m);
    size_t i;
    json_t *j;
    json_array_foreach(m->jobs, i, j)
    {
        if (strcmp(sget(j, "status"), "dead") || (ids && !has_string(ids, sget(j, "id"))))
            continue;
        json_object_set_new(j, "status", json_string("pending"));
        json_object_set_new(j, "attempts", json_integer(0));
        n++;
    }
    UNLOCK(m);
    *out = json_pack("{s:i}", "retried", n);
    (void)ctx;
    (void)err;
    return 0;
}

int mcp_backend_mem_new(mcp_backend *out, unsigned dims, eg_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t delay_ms = 0; /* a test knob: every call sleeps this long */
    int rc = eg_env_int("ENGRAM_MEM_DELAY_MS", 0, 3600000, &delay_ms, err);
    if (rc < 0)
        return rc;
    mem_root *m = eg_calloc(1, sizeof *m);
    if (!m)
        return eg_error_oom(err);
    m->dims = dims; /* 0: the provider's default, as `engram serve` with the offline provider */
    m->delay_ms = delay_ms;
    pthread_mutex_init(&m->mu, NULL);
    out->self = m;
    out->create_entities = t_create_entities;
    out->create_relations = t_create_relations;
    out->add_observations = t_add_observations;
    out->delete_entities = t_delete_entities;
    out->delete_observations = t_delete_observations;
    out->delete_relations = t_delete_relations;
    out->get_relation = t_get_relation;
    out->update_relation = t_update_relation;
    out->read_graph = t_read_graph;
    out->search_nodes = t_search_nodes;
    out->open_nodes = t_open_nodes;
    out->semantic_search = t_semantic_search;
    out->get_entity_embedding = t_get_entity_embedding;
    out->get_entity_history = t_get_entity_history;
    out->get_relation_history = t_get_relation_history;
    out->get_graph_at_time = t_get_graph_at_time;
    out->get_decayed_graph = t_get_decayed_graph;
    out->force_generate_embedding = t_force_generate_embedding;
    out->debug_embedding_config = t_debug_embedding_config;
    out->diagnose_vector_search = t_diagnose_vector_search;
    out->hybrid_search = t_hybrid_search;
    out->queue_status = t_queue_status;
    out->queue_list_jobs = t_queue_list_jobs;
    out->queue_retry_dead = t_queue_retry_dead;
    return 0;
}

void mcp_backend_mem_free(mcp_backend *be)
{
    if (!be || !be->self)
        return;
    mem_root *r = be->self;
    for (size_t i = 0; i < r->n; i++) {
        mem_destroy(r->parts[i].m);
        eg_free(r->parts[i].ns);
    }
    eg_free(r->parts);
    pthread_mutex_destroy(&r->mu);
    eg_free(r);
    be->self = NULL;
}
