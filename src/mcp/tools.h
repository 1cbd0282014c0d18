/*
 * tools.h - the registry of MCP tools: name, title, description,
 * inputSchema, outputSchema, annotations, and which backend slot runs it.
 *
 * Definitions are data: src/mcp/tools/<name>.json (what tools/list shows,
 * except the `namespace` property every inputSchema gets from tools.c and
 * annotations.title, which is the title), bundled into the binary at build
 * time and parsed once by mcp_tools_init().  Order is fixed (memento's
 * order, then engram's additions) so tools/list pagination is deterministic.
 *
 * mcp_tools_call() is the whole tools/call pipeline minus the transport:
 * look the tool up, validate + coerce the arguments, run the backend slot,
 * and shape the CallToolResult: structuredContent plus the same JSON as a
 * text block, or isError:true with a text telling the model how to fix the
 * call.
 *
 * Thread-safety: mcp_tools_init() runs once (pthread_once); afterwards the
 * registry is immutable and every function is safe from any thread.
 */
#ifndef ENGRAM_MCP_TOOLS_H
#define ENGRAM_MCP_TOOLS_H

#include "core/err.h"
#include "mcp/backend.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every pointer is owned by the registry and lives as long as the process. */
typedef struct mcp_tool {
    const char *name;
    size_t slot;                   /* offsetof(mcp_backend, <fn>) */
    const unsigned char *def_text; /* src/mcp/tools/<name>.json, embedded */
    const uint64_t *def_size;
    /* Filled by mcp_tools_init from the definition: */
    json_t *def;                   /* the parsed file; the fields below point into it */
    const char *title;
    const char *description;
    bool read_only, destructive, idempotent, open_world;
    json_t *input_schema;          /* with the namespace property added */
    json_t *output_schema;
} mcp_tool;

/* Parse the definitions (idempotent).  0 or EG_EINTERNAL on a bad definition. */
int mcp_tools_init(eg_error *err);
size_t mcp_tools_count(void);
/* Borrowed; NULL when out of range / unknown. */
const mcp_tool *mcp_tools_at(size_t i);
const mcp_tool *mcp_tools_find(const char *name);
/* The Tool object for tools/list.  New. */
json_t *mcp_tool_describe(const mcp_tool *t);

/*
 * Run a tool.  args may be NULL (treated as {}); it is borrowed, and
 * validated and coerced in place: coercion may replace values inside it, so
 * a caller that needs the original keeps a copy.  (A deep copy of a 16 MiB
 * argument tree would double what the call holds.)  *result_out is a *new*
 * CallToolResult object.
 * Returns 0 (result may still be isError), EG_ENOTFOUND for an unknown tool
 * (a JSON-RPC -32602, not a tool result), EG_ECANCELED when the call was
 * cancelled (send nothing), EG_ENOMEM.
 */
int mcp_tools_call(const mcp_backend *be, const char *name, json_t *args, mcp_call_ctx *ctx,
                   json_t **result_out, eg_error *err);

/* Build an isError CallToolResult with `text`.  New. */
json_t *mcp_tool_error_result(const char *text);

#endif
