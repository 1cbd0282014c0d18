/*
 * fuzz_graph_validate.c - libFuzzer target for the graph's input validation
 * (graph_validate_entities, _relations, _observations, _names), the code
 * every mutation's arguments go through before any query.
 *
 * Input: byte 0 picks the validator, the rest is JSON text (parsed with
 * NUL allowed, as a client may send "\u0000").  Oracles: on success the
 * result is an array; entities keep names and types as non-empty strings
 * without NUL and hold each observation once (the hash-set de-duplication);
 * on failure nothing is returned and the error says why.
 */
#include "fuzz.h"
#include "graph/graph.h"
#include "graph/graph_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_unique_strings(const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n > 2000)
        return; /* quadratic check: small lists only */
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(arr, i);
        if (!json_is_string(a))
            abort();
        for (size_t j = i + 1; j < n; j++)
            if (json_equal(a, json_array_get(arr, j)))
                abort();
    }
}

static void check_str(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        memchr(json_string_value(v), '\0', json_string_length(v)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *in = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL, NULL);
    if (!in)
        return 0;
    json_t *out = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc;
    size_t i;
    json_t *x;
    switch (data[0] % 5) {
    case 0:
        rc = graph_validate_entities(in, &out, &err);
        if (rc == 0) {
            json_array_foreach(out, i, x)
            {
                check_str(json_object_get(x, "name"));
                check_str(json_object_get(x, "entityType"));
                check_unique_strings(json_object_get(x, "observations"));
            }
        }
        break;
    case 1:
    case 2:
        rc = graph_validate_relations(in, data[0] % 5 == 2, &out, &err);
        if (rc == 0) {
            json_array_foreach(out, i, x)
            {
                check_str(json_object_get(x, "from"));
                check_str(json_object_get(x, "to"));
                check_str(json_object_get(x, "relationType"));
            }
        }
        break;
    case 3:
        rc = graph_validate_observations(in, (data[0] & 8) ? "observations" : "contents", &out, &err);
        if (rc == 0) {
            json_array_foreach(out, i, x) check_str(json_object_get(x, "entityName"));
        }
        break;
    default:
        rc = graph__validate_names(in, &out, &err);
        break;
    }
    if (rc == 0 && !json_is_array(out))
        abort();
    if (rc != 0 && (out != NULL || err.message[0] == '\0'))
        abort();
    json_decref(out);
    json_decref(in);
    return 0;
}
