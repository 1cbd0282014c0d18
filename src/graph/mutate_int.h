/*
 * mutate_int.h - what the graph's mutations share: mutate.c (entities and
 * their observations) and relations.c (relations) (private to src/graph/).
 *
 * Not part of the public API: only the .c files of src/graph/ include this.
 *
 * Thread-safety: a graph_mut_work belongs to one call.
 */
#ifndef ENGRAM_GRAPH_MUTATE_INT_H
#define ENGRAM_GRAPH_MUTATE_INT_H

#include "graph/graph_int.h"

/* One mutation call: the payload of its write transaction's work function. */
typedef struct graph_mut_work {
    graph_ctx cx;
    json_t *items;   /* validated input (owned) */
    json_t *result;  /* rebuilt on every attempt */
} graph_mut_work;

/* The item's changedBy, else the call's. */
const char *graph__item_by(const graph_ctx *cx, const json_t *item);

/*
 * The per-item statements of a delete, all sent at once: they still run one
 * after the other in the transaction (a name given twice is deleted by the
 * first and not found by the second), in one round trip instead of n.
 * params_fn fills item i's parameters.  Resets w->result to the empty
 * {deleted, notFound} answer first.  *rows_out: n row arrays (new).
 */
typedef void (*graph_item_params_fn)(bolt_params *p, const graph_mut_work *w, const json_t *item,
                                     int64_t now);
int graph__run_items(bolt_conn *c, graph_mut_work *w, const char *cypher, graph_item_params_fn fill,
                     json_t ***rows_out, eg_error *err);
/* Free the n row arrays graph__run_items made. */
void graph__free_item_rows(json_t **rows, size_t n);

#endif
