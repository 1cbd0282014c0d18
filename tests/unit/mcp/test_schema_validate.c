/*
 * test_schema_validate.c - the input validator and loose-input coercion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mcp/schema_validate.h"
#include "mcp/tools.h"

#include <string.h>

static json_t *J(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static int check(const json_t *schema, json_t **inst, int coerce, json_t *notes, eg_error *err)
{
    eg_error_clear(err);
    return mcp_schema_validate(schema, inst, coerce, notes, err);
}

static void test_mcp_schema_validate__required_and_types(void **state)
{
    (void)state;
    const mcp_tool *t = mcp_tools_find("create_entities");
    assert_non_null(t);
    eg_error err;
    json_t *ok = J("{\"entities\":[{\"name\":\"a\",\"entityType\":\"t\",\"observations\":[\"x\"]}]}");
    assert_int_equal(check(t->input_schema, &ok, 0, NULL, &err), 0);
    json_decref(ok);

    json_t *bad = J("{\"entities\":[{\"name\":\"a\"}]}");
    assert_int_equal(check(t->input_schema, &bad, 0, NULL, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "entities[0]: missing required property 'entityType' (string)"));
    assert_non_null(strstr(err.message, "'observations' (array)"));
    json_decref(bad);

    bad = J("{}");
    assert_int_equal(check(t->input_schema, &bad, 1, NULL, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "missing required property 'entities'"));
    json_decref(bad);

    bad = J("{\"entities\":[],\"bogus\":1}");
    assert_int_equal(check(t->input_schema, &bad, 1, NULL, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "at least 1 item"));
    assert_non_null(strstr(err.message, "bogus: unknown property; allowed properties here: entities"));
    json_decref(bad);

    bad = J("{\"entities\":[{\"name\":5,\"entityType\":\"t\",\"observations\":\"just text\"}]}");
    assert_int_equal(check(t->input_schema, &bad, 1, NULL, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "entities[0].name: expected string but got an integer"));
    assert_non_null(strstr(err.message, "observations: expected array but got a string; pass a JSON array"));
    json_decref(bad);
}

static void test_mcp_schema_validate__coerces_loose_inputs(void **state)
{
    (void)state;
    eg_error err;
    json_t *notes = json_array();
    /* memento issue #118: observations as a JSON string */
    const mcp_tool *t = mcp_tools_find("create_entities");
    json_t *v = J("{\"entities\":[{\"name\":\"a\",\"entityType\":\"t\",\"observations\":\"[\\\"x\\\",\\\"y\\\"]\"}]}");
    assert_int_equal(check(t->input_schema, &v, 1, notes, &err), 0);
    json_t *obs = json_object_get(json_array_get(json_object_get(v, "entities"), 0), "observations");
    assert_true(json_is_array(obs));
    assert_int_equal(json_array_size(obs), 2);
    assert_int_equal(json_array_size(notes), 1);
    json_decref(v);
    /* the whole array as a string */
    v = J("{\"entities\":\"[{\\\"name\\\":\\\"a\\\",\\\"entityType\\\":\\\"t\\\",\\\"observations\\\":[]}]\"}");
    assert_int_equal(check(t->input_schema, &v, 1, notes, &err), 0);
    assert_true(json_is_array(json_object_get(v, "entities")));
    json_decref(v);
    /* JSON hidden in a string deeper than the message cap is not parsed */
    {
        char deep[512];
        size_t n = 0;
        n += (size_t)snprintf(deep, sizeof deep, "{\"entities\":\"");
        for (int k = 0; k < 100; k++)
            deep[n++] = '[';
        for (int k = 0; k < 100; k++)
            deep[n++] = ']';
        snprintf(deep + n, sizeof deep - n, "\"}");
        v = J(deep);
        assert_int_equal(check(t->input_schema, &v, 1, NULL, &err), EG_EINVAL);
        assert_true(json_is_string(json_object_get(v, "entities")));
        json_decref(v);
    }
    /* without coercion the same input is an error */
    v = J("{\"entities\":\"[]\"}");
    assert_int_equal(check(t->input_schema, &v, 0, NULL, &err), EG_EINVAL);
    json_decref(v);

    /* numbers and booleans as strings */
    t = mcp_tools_find("semantic_search");
    v = J("{\"query\":\"q\",\"limit\":\"5\",\"min_similarity\":\"0.25\",\"hybrid_search\":\"false\"}");
    assert_int_equal(check(t->input_schema, &v, 1, notes, &err), 0);
    assert_true(json_is_integer(json_object_get(v, "limit")));
    assert_int_equal(json_integer_value(json_object_get(v, "limit")), 5);
    assert_true(json_is_real(json_object_get(v, "min_similarity")));
    assert_true(json_is_false(json_object_get(v, "hybrid_search")));
    json_decref(v);
    /* ambiguous or wrong: not coerced */
    const char *bad[] = {"{\"query\":\"q\",\"limit\":\"5.5\"}", "{\"query\":\"q\",\"limit\":\"ten\"}",
                         "{\"query\":\"q\",\"limit\":\"0x10\"}", "{\"query\":\"q\",\"limit\":\"nan\"}",
                         "{\"query\":\"q\",\"limit\":1000000}", "{\"query\":\"q\",\"min_similarity\":1.5}",
                         "{\"query\":\"q\",\"hybrid_search\":\"yes\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = J(bad[i]);
        assert_int_equal(check(t->input_schema, &v, 1, NULL, &err), EG_EINVAL);
        json_decref(v);
    }
    json_decref(notes);
}

static void test_mcp_schema_validate__enum_bounds_root(void **state)
{
    (void)state;
    eg_error err;
    json_t *schema = J("{\"type\":\"object\",\"properties\":{\"s\":{\"enum\":[\"a\",\"b\"]},"
                       "\"n\":{\"type\":\"number\",\"minimum\":1,\"maximum\":2},"
                       "\"l\":{\"type\":\"array\",\"maxItems\":1},\"t\":{\"type\":\"string\",\"minLength\":2}},"
                       "\"additionalProperties\":{\"type\":\"integer\"}}");
    json_t *v = J("{\"s\":\"c\",\"n\":3,\"l\":[1,2],\"t\":\"x\",\"extra\":\"1\"}");
    assert_int_equal(check(schema, &v, 0, NULL, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "s: must be one of [\"a\",\"b\"]"));
    assert_non_null(strstr(err.message, "n: must be <= 2"));
    assert_non_null(strstr(err.message, "at most 1 items"));
    assert_non_null(strstr(err.message, "at least 2 characters"));
    assert_non_null(strstr(err.message, "extra: expected integer"));
    json_decref(v);
    /* additionalProperties schema coerces too */
    v = J("{\"extra\":\"12\"}");
    assert_int_equal(check(schema, &v, 1, NULL, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "extra")), 12);
    json_decref(v);
    /* the root itself can be a JSON string */
    v = J("\"{\\\"n\\\":1.5}\"");
    assert_int_equal(check(schema, &v, 1, NULL, &err), 0);
    assert_true(json_is_object(v));
    json_decref(v);
    json_decref(schema);
}

static void test_mcp_schema_validate__every_tool_schema_compiles(void **state)
{
    (void)state;
    assert_int_equal(mcp_tools_init(NULL), 0);
    assert_true(mcp_tools_count() >= 24);
    for (size_t i = 0; i < mcp_tools_count(); i++) {
        const mcp_tool *t = mcp_tools_at(i);
        assert_true(json_is_object(t->input_schema));
        assert_true(json_is_object(t->output_schema));
        assert_string_equal(json_string_value(json_object_get(t->input_schema, "type")), "object");
        assert_string_equal(json_string_value(json_object_get(t->output_schema, "type")), "object");
        /* a name clients accept: 1-128 of [A-Za-z0-9_.-] */
        assert_true(strlen(t->name) >= 1 && strlen(t->name) <= 128);
        assert_int_equal(strspn(t->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"),
                         strlen(t->name));
        assert_true(strlen(t->description) > 40);
        /* required properties exist */
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(t->input_schema, "required"), k, r)
            assert_non_null(json_object_get(json_object_get(t->input_schema, "properties"), json_string_value(r)));
        /* read-only tools are never destructive */
        if (t->read_only)
            assert_false(t->destructive);
        assert_false(t->open_world);
    }
    assert_null(mcp_tools_find("nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_schema_validate__required_and_types),
        cmocka_unit_test(test_mcp_schema_validate__coerces_loose_inputs),
        cmocka_unit_test(test_mcp_schema_validate__enum_bounds_root),
        cmocka_unit_test(test_mcp_schema_validate__every_tool_schema_compiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
