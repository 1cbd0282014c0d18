/*
 * jsonrpc.h - JSON-RPC 2.0 message parsing and building for MCP.
 *
 * Every byte string a client sends goes through mcp_jsonrpc_parse() first.
 * It enforces the caps from core/limits.h *before* handing the text to
 * jansson (size; nesting depth and the number of values and containers,
 * measured by a cheap pre-scan that ignores brackets inside strings, so a
 * message's parsed size is bounded before it is parsed), rejects invalid
 * UTF-8 and NUL bytes (jansson does), and classifies the message:
 *
 *   request       {"jsonrpc":"2.0","id":<string|integer>,"method":...}
 *   notification  {"jsonrpc":"2.0","method":...}            (no "id")
 *   response      {"jsonrpc":"2.0","id":...,"result"|"error":...}
 *   invalid       anything else -> an error object to send back
 *
 * Batches (top-level arrays) were removed from MCP in 2025-06-18; they are
 * answered with one -32600 error rather than half-supported.
 *
 * Thread-safety: all functions are reentrant; message objects belong to
 * their caller.
 */
#ifndef ENGRAM_MCP_JSONRPC_H
#define ENGRAM_MCP_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

#define MCP_JSONRPC_PARSE_ERROR (-32700)
#define MCP_JSONRPC_INVALID_REQUEST (-32600)
#define MCP_JSONRPC_METHOD_NOT_FOUND (-32601)
#define MCP_JSONRPC_INVALID_PARAMS (-32602)
#define MCP_JSONRPC_INTERNAL_ERROR (-32603)
#define MCP_JSONRPC_NOT_INITIALIZED (-32002)
/* 2026-07-28: the requested protocolVersion is not one we serve
 * (data: {supported: [...], requested}). */
#define MCP_JSONRPC_UNSUPPORTED_VERSION (-32022)
/* 2026-07-28, Streamable HTTP: a required MCP header is missing, malformed,
 * or says something else than the body. */
#define MCP_JSONRPC_HEADER_MISMATCH (-32020)

typedef enum mcp_msg_kind {
    MCP_MSG_INVALID = 0,
    MCP_MSG_REQUEST,
    MCP_MSG_NOTIFICATION,
    MCP_MSG_RESPONSE
} mcp_msg_kind;

typedef struct mcp_msg {
    mcp_msg_kind kind;
    json_t *root;        /* new: the whole parsed message (NULL on parse errors) */
    json_t *id;          /* borrowed from root: string or integer; NULL for notifications */
    const char *method;  /* borrowed from root */
    json_t *params;      /* borrowed from root: object or NULL */
    int err_code;        /* for MCP_MSG_INVALID: the JSON-RPC error code */
    char err_msg[160];   /* for MCP_MSG_INVALID: a human-readable reason */
} mcp_msg;

/*
 * Parse one message of `len` bytes (need not be NUL-terminated).  Always
 * fills *out; on kind == MCP_MSG_INVALID, out->err_code/err_msg say why and
 * out->id is the request id when it could be recovered (else NULL, which
 * is sent as "id": null).  Release with mcp_msg_clear().
 */
void mcp_jsonrpc_parse(mcp_msg *out, const char *data, size_t len);
void mcp_msg_clear(mcp_msg *m);

/*
 * Maximum bracket nesting of JSON text, ignoring brackets inside strings;
 * stops counting (returns cap+1) as soon as cap is exceeded.
 */
unsigned mcp_jsonrpc_depth(const char *data, size_t len, unsigned cap);

/*
 * The pre-scan every message passes before jansson sees it: NULL when the
 * text is within EG_LIMIT_MCP_JSON_DEPTH nesting, EG_LIMIT_MCP_JSON_VALUES
 * values (commas and containers outside strings) and
 * EG_LIMIT_MCP_JSON_CONTAINERS containers; else a static reason.  One pass,
 * no allocation: what a message will cost once parsed is known before it
 * is parsed.
 */
const char *mcp_jsonrpc_precheck(const char *data, size_t len);

/* Build {"jsonrpc":"2.0","id":id,"result":result}; steals result, borrows id. New. */
json_t *mcp_jsonrpc_result(json_t *id, json_t *result);
/* Build an error response; id may be NULL (-> null); data is stolen and may be NULL. New. */
json_t *mcp_jsonrpc_error(json_t *id, int code, const char *message, json_t *data);
/* Build a notification; params stolen, may be NULL. New. */
json_t *mcp_jsonrpc_notification(const char *method, json_t *params);

/*
 * Serialize compactly on one line (no embedded newlines: jansson escapes
 * control characters in strings).  Returns *new* memory (eg_free) or NULL
 * (out of memory, or longer than EG_LIMIT_MCP_RESPONSE).
 */
char *mcp_jsonrpc_dump(const json_t *msg, size_t *len_out);
/* Same, but NULL when the text would exceed max bytes (0: EG_LIMIT_MCP_RESPONSE). New. */
char *mcp_jsonrpc_dump_max(const json_t *msg, size_t max, size_t *len_out);

/* Stable key for an id (for the in-flight table): "s:<text>" or "i:<n>". New. */
char *mcp_jsonrpc_id_key(const json_t *id);

#endif
