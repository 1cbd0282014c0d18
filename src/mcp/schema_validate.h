/*
 * schema_validate.h - a small JSON-Schema subset validator for tool inputs,
 * with coercion of loosely typed inputs.
 *
 * Supported keywords: type (string or array of strings: object, array,
 * string, number, integer, boolean, null), required, properties,
 * additionalProperties (boolean or schema), items, enum, minimum, maximum,
 * minItems, maxItems, minLength, maxLength.  Unknown keywords (description,
 * default, title, ...) are ignored, as JSON Schema says.
 *
 * Coercion (mcp_schema_validate with coerce=1) rewrites the instance in place
 * when the intent is unambiguous, because real MCP clients send these:
 *   - a string holding JSON where the schema wants an array or an object
 *     (memento issue #118: observations sent as "[\"a\",\"b\"]");
 *   - a numeric string where the schema wants a number or an integer
 *     ("10" -> 10, "0.5" -> 0.5; "1e3" for an integer only when integral);
 *   - "true"/"false" where the schema wants a boolean;
 *   - a single string where the schema wants an array of strings is NOT
 *     coerced (ambiguous: a sentence with commas).
 * Each coercion is noted in the notes array so the result can tell the
 * model what was assumed.
 *
 * Errors are written as "<path>: <problem>; <how to fix>" so a model can
 * correct its call, e.g. "entities[0]: missing required property
 * 'entityType' (string)".
 *
 * Thread-safety: reentrant; the schema is only read.
 */
#ifndef ENGRAM_MCP_SCHEMA_VALIDATE_H
#define ENGRAM_MCP_SCHEMA_VALIDATE_H

#include "core/err.h"

#include <jansson.h>

/*
 * Validate *inst against schema.  With coerce != 0, *inst may be replaced
 * (the old value is released, the new one owned by the caller through
 * *inst; when inst is inside a container the container slot is updated by
 * the recursive walk).  notes (may be NULL) receives one string per
 * coercion.  Returns 0 when valid, EG_EINVAL with err->message describing
 * the first problems (up to a few), EG_ENOMEM.
 */
int mcp_schema_validate(const json_t *schema, json_t **inst, int coerce, json_t *notes,
                        eg_error *err);

#endif
