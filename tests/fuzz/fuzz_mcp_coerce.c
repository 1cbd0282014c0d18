/*
 * fuzz_mcp_coerce.c - libFuzzer target for the MCP argument validation and
 * coercion (mcp_schema_validate with coerce on, against the real tools'
 * input schemas): the step every tools/call goes through, which turns JSON
 * text in strings into arrays/objects, "5" into 5, "true" into true.
 *
 * Input: byte 0 picks the tool, the rest is the arguments as JSON text.
 * Oracles: when coercion succeeds, the coerced arguments validate again
 * without coercion (it never leaves something the schema refuses) and a
 * second coercion changes nothing; a failure always says why.
 */
#include "fuzz.h"
#include "mcp/schema_validate.h"
#include "mcp/tools.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || mcp_tools_init(NULL) != 0)
        return 0;
    const mcp_tool *t = mcp_tools_at(data[0] % mcp_tools_count());
    json_t *args = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (!args)
        return 0;
    json_t *notes = json_array();
    eg_error err;
    eg_error_clear(&err);
    int rc = mcp_schema_validate(t->input_schema, &args, 1, notes, &err);
    if (rc == 0) {
        json_t *copy = json_deep_copy(args);
        eg_error e2;
        eg_error_clear(&e2);
        if (mcp_schema_validate(t->input_schema, &copy, 0, NULL, &e2) != 0)
            abort(); /* coercion produced arguments the schema refuses */
        json_t *again = json_deep_copy(args), *notes2 = json_array();
        if (mcp_schema_validate(t->input_schema, &again, 1, notes2, &e2) != 0 || !json_equal(again, args) ||
            json_array_size(notes2) != 0)
            abort(); /* coercion is not idempotent */
        json_decref(again);
        json_decref(notes2);
        json_decref(copy);
    } else if (rc == EG_EINVAL && err.message[0] == '\0') {
        abort();
    }
    json_decref(notes);
    json_decref(args);
    return 0;
}
