/*
 * mem_sink.c - an in-memory entity table implementing the worker sink: the
 * test double of tests and benchmarks (what every sink shares is in sink.c).
 *
 * A linear array behind a mutex: tests and benchmarks hold at most tens of
 * thousands of entities, and a lookup costs far less than the provider call
 * it precedes.  Vectors written keep the hash they were computed from, and a
 * write counter lets tests prove "never the stale vector" and "no duplicate
 * writes".
 */
#include "worker/sink.h"

#include "core/alloc.h"
#include "core/sha256.h"

#include <pthread.h>
#include <string.h>

typedef struct mem_entity {
    char *ns, *id, *text;
    char hash[65];
    float *vec;
    int dims;
    char emb_hash[65];
    char *emb_model;
    int writes;
} mem_entity;

typedef struct mem_sink {
    worker_sink base;
    pthread_mutex_t mu;
    mem_entity *e;
    size_t n, cap;
    int index_dims;
    void (*hook)(void *);
    void *hook_ctx;
} mem_sink;

static mem_entity *find(mem_sink *m, const char *ns, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].id, id) == 0 && strcmp(m->e[i].ns, ns) == 0)
            return &m->e[i];
    return NULL;
}

static int mem_load(worker_sink *s, worker_item *items, size_t n, int dims, eg_error *err)
{
    mem_sink *m = (mem_sink *)s;
    if (m->hook)
        m->hook(m->hook_ctx);
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        const queue_job *j = items[i].job;
        items[i].text = NULL;
        mem_entity *e = find(m, j->ns, j->entity);
        if (!e) {
            items[i].state = WORKER_LOAD_GONE;
            items[i].hash[0] = '\0';
            continue;
        }
        memcpy(items[i].hash, e->hash, sizeof e->hash);
        char jh[65];
        worker_job_hash(j, jh);
        if (strcmp(e->hash, jh) != 0) {
            items[i].state = WORKER_LOAD_STALE;
        } else if (!worker_job_forced(j) && e->vec && e->dims == dims && strcmp(e->emb_hash, e->hash) == 0 &&
                   e->emb_model && strcmp(e->emb_model, j->model) == 0) {
            items[i].state = WORKER_LOAD_CURRENT;
        } else {
            items[i].state = WORKER_LOAD_EMBED;
            if (!(items[i].text = eg_strdup(e->text))) {
                pthread_mutex_unlock(&m->mu);
                worker_items_clear(items, i);
                return eg_error_oom(err);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_write(worker_sink *s, queue_tx *tx, const worker_write *w, size_t n, bool *superseded_out,
                     eg_error *err)
{
    (void)tx;
    mem_sink *m = (mem_sink *)s;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        mem_entity *e = find(m, w[i].job->ns, w[i].job->entity);
        char jh[65];
        worker_job_hash(w[i].job, jh);
        if (!e || strcmp(e->hash, jh) != 0) {
            superseded_out[i] = true;
            continue;
        }
        superseded_out[i] = false;
        if (e->dims != w[i].dims) {
            float *v = eg_realloc(e->vec, (size_t)w[i].dims * sizeof *v);
            if (!v) {
                pthread_mutex_unlock(&m->mu);
                return eg_error_oom(err);
            }
            e->vec = v;
            e->dims = w[i].dims;
        }
        memcpy(e->vec, w[i].vec, (size_t)w[i].dims * sizeof *e->vec);
        memcpy(e->emb_hash, e->hash, sizeof e->hash);
        eg_free(e->emb_model);
        e->emb_model = eg_strdup(w[i].job->model);
        e->writes++;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_index_dims(worker_sink *s, int *dims_out, eg_error *err)
{
    (void)err;
    *dims_out = ((mem_sink *)s)->index_dims;
    return 0;
}

static void mem_free(worker_sink *s)
{
    mem_sink *m = (mem_sink *)s;
    for (size_t i = 0; i < m->n; i++) {
        eg_free(m->e[i].ns);
        eg_free(m->e[i].id);
        eg_free(m->e[i].text);
        eg_free(m->e[i].vec);
        eg_free(m->e[i].emb_model);
    }
    eg_free(m->e);
    pthread_mutex_destroy(&m->mu);
    eg_free(m);
}

static const worker_sink_vtable mem_vt = {mem_load, mem_write, mem_index_dims, mem_free};

int worker_mem_sink_new(worker_sink **out, int index_dims, eg_error *err)
{
    mem_sink *m = eg_calloc(1, sizeof *m);
    if (!m)
        return eg_error_oom(err);
    m->base.vt = &mem_vt;
    m->base.impl = m;
    m->index_dims = index_dims;
    pthread_mutex_init(&m->mu, NULL);
    *out = &m->base;
    return 0;
}

int worker_mem_sink_put(worker_sink *s, const char *ns, const char *entity, const char *text, char *hash_out)
{
    mem_sink *m = (mem_sink *)s;
    char h[EG_SHA256_HEX_SIZE];
    int rc = eg_sha256_hex(text, strlen(text), h);
    if (rc)
        return rc;
    char *t = eg_strdup(text);
    if (!t)
        return EG_ENOMEM;
    pthread_mutex_lock(&m->mu);
    mem_entity *e = find(m, ns, entity);
    if (!e) {
        if (m->n == m->cap) {
            size_t nc = m->cap ? m->cap * 2 : 64;
            mem_entity *ne = eg_realloc(m->e, nc * sizeof *ne);
            if (!ne) {
                pthread_mutex_unlock(&m->mu);
                eg_free(t);
                return EG_ENOMEM;
            }
            m->e = ne;
            m->cap = nc;
        }
        e = &m->e[m->n];
        memset(e, 0, sizeof *e);
        e->ns = eg_strdup(ns);
        e->id = eg_strdup(entity);
        if (!e->ns || !e->id) {
            eg_free(e->ns);
            eg_free(e->id);
            pthread_mutex_unlock(&m->mu);
            eg_free(t);
            return EG_ENOMEM;
        }
        m->n++;
    }
    eg_free(e->text);
    e->text = t;
    memcpy(e->hash, h, sizeof h);
    pthread_mutex_unlock(&m->mu);
    if (hash_out)
        memcpy(hash_out, h, sizeof h);
    return 0;
}

void worker_mem_sink_delete(worker_sink *s, const char *ns, const char *entity)
{
    mem_sink *m = (mem_sink *)s;
    pthread_mutex_lock(&m->mu);
    mem_entity *e = find(m, ns, entity);
    if (e) {
        eg_free(e->ns);
        eg_free(e->id);
        eg_free(e->text);
        eg_free(e->vec);
        eg_free(e->emb_model);
        *e = m->e[--m->n];
    }
    pthread_mutex_unlock(&m->mu);
}

int worker_mem_sink_vector(worker_sink *s, const char *ns, const char *entity, float *vec, int cap,
                           char *emb_hash_out, int *writes_out)
{
    mem_sink *m = (mem_sink *)s;
    pthread_mutex_lock(&m->mu);
    mem_entity *e = find(m, ns, entity);
    int r = -1;
    if (e) {
        r = e->vec ? e->dims : 0;
        if (vec && e->vec)
            memcpy(vec, e->vec, (size_t)(e->dims < cap ? e->dims : cap) * sizeof *vec);
        if (emb_hash_out)
            memcpy(emb_hash_out, e->emb_hash, 65);
        if (writes_out)
            *writes_out = e->writes;
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

void worker_mem_sink_set_load_hook(worker_sink *s, void (*hook)(void *ctx), void *ctx)
{
    mem_sink *m = (mem_sink *)s;
    m->hook = hook;
    m->hook_ctx = ctx;
}
