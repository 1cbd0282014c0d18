/*
 * validate.c - input validation and normalisation for graph mutations.
 *
 * Everything a peer sends is checked here, in C, before any query runs:
 * types, sizes (caps in graph.h), embedded NULs, number ranges.  Lists that
 * arrive as JSON text (some clients send `"observations": "[\"a\"]"`, memento
 * issue #118) are decoded; a plain string becomes a one-item list.  Outputs
 * are fresh normalised copies so the mutation code sees one shape only.
 */
#include "graph/graph_int.h"

#include <math.h>
#include <string.h>

static int bad(eg_error *err, const char *what, size_t idx, const char *field, const char *why)
{
    return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s[%zu].%s: %s", what, idx, field, why);
}

/* A non-empty string without NUL and at most max bytes; borrowed C string or NULL. */
static const char *check_str(const json_t *v, size_t max, bool allow_empty, const char **why)
{
    if (!json_is_string(v)) {
        *why = "must be a string";
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n) {
        *why = "must not contain NUL characters";
        return NULL;
    }
    if (n == 0 && !allow_empty) {
        *why = "must not be empty";
        return NULL;
    }
    if (n > max) {
        *why = "too long";
        return NULL;
    }
    return s;
}

/* Decode a JSON-text list if needed: new reference to an array, or NULL. */
static json_t *as_list(const json_t *v)
{
    if (json_is_array(v))
        return json_incref((json_t *)v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t i = 0;
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            i++;
        if (s[i] == '[') {
            json_t *d = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
            if (json_is_array(d))
                return d;
            json_decref(d);
        }
        json_t *a = json_array();
        json_array_append(a, (json_t *)v);
        return a;
    }
    return NULL;
}

/* Validate a list of observation strings; new array of unique strings (order kept). */
static int obs_list(const json_t *v, const char *what, size_t idx, const char *field, bool dedupe,
                    json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *list = as_list(v);
    if (list == NULL)
        return bad(err, what, idx, field, "must be an array of strings");
    if (json_array_size(list) > GRAPH_MAX_OBSERVATIONS) {
        json_decref(list);
        return bad(err, what, idx, field, "too many observations");
    }
    json_t *o = json_array();
    graph_obs_set *seen = dedupe ? graph__obs_set_new(json_array_size(list)) : NULL;
    if (o == NULL || (dedupe && seen == NULL)) {
        json_decref(list);
        json_decref(o);
        return eg_error_oom(err);
    }
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        const char *why = NULL;
        const char *s = check_str(it, GRAPH_MAX_OBSERVATION_BYTES, false, &why);
        if (s == NULL) {
            json_decref(list);
            json_decref(o);
            graph__obs_set_free(seen);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s[%zu].%s[%zu]: %s", what, idx,
                                field, i, why);
        }
        /* `seen` borrows s from `list`, which outlives it. */
        int added = dedupe ? graph__obs_set_add(seen, s, json_string_length(it)) : 1;
        if (added < 0 || (added == 1 && json_array_append(o, it) != 0)) {
            json_decref(list);
            json_decref(o);
            graph__obs_set_free(seen);
            return eg_error_oom(err);
        }
    }
    graph__obs_set_free(seen);
    json_decref(list);
    *out = o;
    return 0;
}

static json_t *as_items(const json_t *v, const char *what, eg_error *err, json_t **owned)
{
    *owned = NULL;
    if (json_is_string(v)) {
        *owned = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, NULL);
        v = *owned;
    }
    if (!json_is_array(v)) {
        eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be an array", what);
        return NULL;
    }
    if (json_array_size(v) > GRAPH_MAX_BATCH) {
        eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "%s: at most %u items per call", what,
                     GRAPH_MAX_BATCH);
        return NULL;
    }
    return (json_t *)v;
}

static int opt_changed_by(const json_t *item, json_t *o, const char *what, size_t i, eg_error *err)
{
    const json_t *cb = json_object_get(item, "changedBy");
    if (cb == NULL || json_is_null(cb))
        return 0;
    const char *why = NULL;
    if (check_str(cb, GRAPH_MAX_NAME_BYTES, false, &why) == NULL)
        return bad(err, what, i, "changedBy", why);
    json_object_set(o, "changedBy", (json_t *)cb);
    return 0;
}

int graph_validate_entities(const json_t *entities, json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *owned = NULL;
    const json_t *items = as_items(entities, "entities", err, &owned);
    if (items == NULL) {
        json_decref(owned);
        return err ? err->code : EG_EINVAL;
    }
    json_t *res = json_array();
    int rc = res ? 0 : eg_error_oom(err);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (rc != 0)
            break;
        const char *why = NULL;
        if (!json_is_object(it)) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "entities[%zu] must be an object", i);
            break;
        }
        const json_t *name = json_object_get(it, "name");
        const json_t *type = json_object_get(it, "entityType");
        if (check_str(name, GRAPH_MAX_NAME_BYTES, false, &why) == NULL) {
            rc = bad(err, "entities", i, "name", why);
            break;
        }
        if (check_str(type, GRAPH_MAX_NAME_BYTES, false, &why) == NULL) {
            rc = bad(err, "entities", i, "entityType", why);
            break;
        }
        json_t *obs = NULL;
        const json_t *ov = json_object_get(it, "observations");
        if (ov == NULL || json_is_null(ov))
            obs = json_array();
        else if ((rc = obs_list(ov, "entities", i, "observations", true, &obs, err)) != 0)
            break;
        json_t *o = json_pack("{sOsOso}", "name", name, "entityType", type, "observations", obs);
        if (o == NULL) {
            rc = eg_error_oom(err);
            break;
        }
        if ((rc = opt_changed_by(it, o, "entities", i, err)) != 0) {
            json_decref(o);
            break;
        }
        if (json_array_append_new(res, o) != 0) {
            rc = eg_error_oom(err);
            break;
        }
    }
    json_decref(owned);
    if (rc != 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

static int unit_number(const json_t *item, const char *key, json_t *o, size_t i, eg_error *err)
{
    const json_t *v = json_object_get(item, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return bad(err, "relations", i, key, "must be a number");
    double d = json_number_value(v);
    if (!(d >= 0.0 && d <= 1.0) || isnan(d))
        return bad(err, "relations", i, key, "must be between 0 and 1");
    json_object_set_new(o, key, json_real(d));
    return 0;
}

int graph_validate_relations(const json_t *relations, bool require_fields_only, json_t **out,
                             eg_error *err)
{
    *out = NULL;
    json_t *owned = NULL;
    const json_t *items = relations;
    if (json_is_object(relations)) {
        /* A single relation (update_relation). */
        owned = json_array();
        json_array_append(owned, (json_t *)relations);
        items = owned;
    } else {
        items = as_items(relations, "relations", err, &owned);
        if (items == NULL) {
            json_decref(owned);
            return err ? err->code : EG_EINVAL;
        }
    }
    json_t *res = json_array();
    int rc = res ? 0 : eg_error_oom(err);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (rc != 0)
            break;
        const char *why = NULL;
        if (!json_is_object(it)) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "relations[%zu] must be an object", i);
            break;
        }
        static const char *const keys[] = {"from", "to", "relationType"};
        for (int k = 0; k < 3 && rc == 0; k++)
            if (check_str(json_object_get(it, keys[k]), GRAPH_MAX_NAME_BYTES, false, &why) == NULL)
                rc = bad(err, "relations", i, keys[k], why);
        if (rc != 0)
            break;
        json_t *o = json_pack("{sOsOsO}", "from", json_object_get(it, "from"), "to",
                              json_object_get(it, "to"), "relationType",
                              json_object_get(it, "relationType"));
        if (o == NULL) {
            rc = eg_error_oom(err);
            break;
        }
        if (!require_fields_only) {
            const json_t *m = json_object_get(it, "metadata");
            if ((rc = unit_number(it, "strength", o, i, err)) == 0 &&
                (rc = unit_number(it, "confidence", o, i, err)) == 0) {
                if (m != NULL && !json_is_null(m)) {
                    json_t *mo = NULL;
                    if (json_is_string(m))
                        mo = json_loads(json_string_value(m), JSON_REJECT_DUPLICATES, NULL);
                    else
                        mo = json_incref((json_t *)m);
                    if (!json_is_object(mo)) {
                        json_decref(mo);
                        rc = bad(err, "relations", i, "metadata", "must be an object");
                    } else if (graph__json_size(mo) > GRAPH_MAX_OBSERVATION_BYTES) {
                        json_decref(mo);
                        rc = bad(err, "relations", i, "metadata", "too large");
                    } else {
                        json_object_set_new(o, "metadata", mo);
                    }
                }
                if (rc == 0)
                    rc = opt_changed_by(it, o, "relations", i, err);
            }
        }
        if (rc != 0 || json_array_append_new(res, o) != 0) {
            if (rc != 0)
                json_decref(o);
            else
                rc = eg_error_oom(err);
            break;
        }
    }
    json_decref(owned);
    if (rc != 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

int graph_validate_observations(const json_t *items_in, const char *list_field, json_t **out,
                                eg_error *err)
{
    *out = NULL;
    const char *what = strcmp(list_field, "contents") == 0 ? "observations" : "deletions";
    json_t *owned = NULL;
    const json_t *items = as_items(items_in, what, err, &owned);
    if (items == NULL) {
        json_decref(owned);
        return err ? err->code : EG_EINVAL;
    }
    json_t *res = json_array();
    int rc = res ? 0 : eg_error_oom(err);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (rc != 0)
            break;
        const char *why = NULL;
        if (!json_is_object(it)) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s[%zu] must be an object", what, i);
            break;
        }
        const json_t *name = json_object_get(it, "entityName");
        if (check_str(name, GRAPH_MAX_NAME_BYTES, false, &why) == NULL) {
            rc = bad(err, what, i, "entityName", why);
            break;
        }
        json_t *list = NULL;
        const json_t *lv = json_object_get(it, list_field);
        if (lv == NULL || json_is_null(lv)) {
            rc = bad(err, what, i, list_field, "is required");
            break;
        }
        if ((rc = obs_list(lv, what, i, list_field, true, &list, err)) != 0)
            break;
        json_t *o = json_pack("{sOso}", "entityName", name, list_field, list);
        if (o == NULL || json_array_append_new(res, o) != 0) {
            rc = eg_error_oom(err);
            break;
        }
    }
    json_decref(owned);
    if (rc != 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}
