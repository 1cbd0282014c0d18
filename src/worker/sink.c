/*
 * sink.c - what every worker sink shares (sink.h): the content hashes jobs
 * are fenced on (worker_job_hash, worker_job_forced),
 * worker_sink_free and worker_items_clear.  The in-memory sink is
 * mem_sink.c; the one on Neo4j is neo4j_sink.c.
 */
#include "worker/sink.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>


void worker_job_hash(const queue_job *j, char out[65])
{
    /* The graph enqueues version = entity version number with the content
     * hash in the payload ({"name":..,"hash":..}); reembed and tests put the
     * hash in the version itself. */
    if (j->payload && strstr(j->payload, "\"hash\"")) {
        json_t *pl = json_loads(j->payload, 0, NULL);
        const char *h = json_string_value(json_object_get(pl, "hash"));
        if (h && strlen(h) <= 64) {
            snprintf(out, 65, "%s", h);
            json_decref(pl);
            return;
        }
        json_decref(pl);
    }
    const char *v = j->version ? j->version : "";
    size_t n = strcspn(v, "#");
    if (n > 64)
        n = 64;
    memcpy(out, v, n);
    out[n] = '\0';
}

bool worker_job_forced(const queue_job *j) { return j->version && strchr(j->version, '#') != NULL; }

void worker_sink_free(worker_sink *s)
{
    if (s && s->vt && s->vt->free)
        s->vt->free(s);
}

void worker_items_clear(worker_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        eg_free(items[i].text);
        items[i].text = NULL;
    }
}
