/*
 * jsonrpc.c - JSON-RPC 2.0 framing for MCP (see jsonrpc.h).
 */
#include "mcp/jsonrpc.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* What the pre-scan counts outside strings; stops at the first cap passed. */
typedef struct shape {
    unsigned max_depth;
    size_t values, containers;
} shape;

/* Scan JSON text, ignoring brackets and commas inside strings.  Returns
 * NULL, or why it stopped: depth over depth_cap, values or containers over
 * theirs. */
static const char *scan(const char *data, size_t len, unsigned depth_cap, size_t values_cap, size_t containers_cap,
                        shape *sh)
{
    unsigned depth = 0;
    int in_str = 0, esc = 0;
    memset(sh, 0, sizeof *sh);
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > sh->max_depth && (sh->max_depth = depth) > depth_cap)
                return "message nested too deeply";
            if (++sh->containers > containers_cap)
                return "message has too many JSON objects and arrays";
            sh->values++;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        } else if (c == ',') {
            sh->values++;
        } else {
            continue;
        }
        if (sh->values > values_cap)
            return "message has too many JSON values";
    }
    return NULL;
}

unsigned mcp_jsonrpc_depth(const char *data, size_t len, unsigned cap)
{
    shape sh;
    scan(data, len, cap, SIZE_MAX, SIZE_MAX, &sh);
    return sh.max_depth;
}

const char *mcp_jsonrpc_precheck(const char *data, size_t len)
{
    shape sh;
    return scan(data, len, EG_LIMIT_MCP_JSON_DEPTH, EG_LIMIT_MCP_JSON_VALUES, EG_LIMIT_MCP_JSON_CONTAINERS, &sh);
}

static void set_invalid(mcp_msg *m, int code, const char *msg)
{
    m->kind = MCP_MSG_INVALID;
    m->err_code = code;
    snprintf(m->err_msg, sizeof m->err_msg, "%s", msg);
}

static int id_valid(const json_t *id)
{
    /* MCP: "id MUST be a string or integer" and not null. */
    return json_is_string(id) || json_is_integer(id);
}

void mcp_jsonrpc_parse(mcp_msg *out, const char *data, size_t len)
{
    memset(out, 0, sizeof *out);
    if (len > EG_LIMIT_MCP_LINE) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "message too large");
        return;
    }
    const char *why = mcp_jsonrpc_precheck(data, len);
    if (why) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, why);
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        char msg[160];
        snprintf(msg, sizeof msg, "parse error: %.100s", jerr.text);
        set_invalid(out, MCP_JSONRPC_PARSE_ERROR, msg);
        return;
    }
    out->root = root;
    if (json_is_array(root)) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST,
                    "JSON-RPC batches are not supported (removed in MCP 2025-06-18)");
        return;
    }
    if (!json_is_object(root)) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "a JSON-RPC message must be an object");
        return;
    }
    json_t *id = json_object_get(root, "id");
    if (id && id_valid(id))
        out->id = id;
    json_t *ver = json_object_get(root, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
        return;
    }
    json_t *method = json_object_get(root, "method");
    if (!method) {
        if (json_object_get(root, "result") || json_object_get(root, "error")) {
            if (!id || !(id_valid(id) || json_is_null(id))) {
                set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "response without a valid id");
                return;
            }
            out->kind = MCP_MSG_RESPONSE;
            return;
        }
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "missing \"method\"");
        return;
    }
    if (!json_is_string(method) || json_string_length(method) == 0) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "\"method\" must be a non-empty string");
        return;
    }
    if (id && !id_valid(id)) {
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "\"id\" must be a string or an integer");
        return;
    }
    json_t *params = json_object_get(root, "params");
    if (params && !json_is_object(params)) {
        /* MCP params are always objects; positional params have no meaning. */
        set_invalid(out, MCP_JSONRPC_INVALID_REQUEST, "\"params\" must be an object");
        return;
    }
    out->method = json_string_value(method);
    out->params = params;
    out->kind = id ? MCP_MSG_REQUEST : MCP_MSG_NOTIFICATION;
}

void mcp_msg_clear(mcp_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

json_t *mcp_jsonrpc_result(json_t *id, json_t *result)
{
    if (!result)
        return NULL;
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

json_t *mcp_jsonrpc_error(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message ? message : "error");
    if (!err) {
        json_decref(data);
        return NULL;
    }
    if (data)
        json_object_set_new(err, "data", data);
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
                     err);
}

json_t *mcp_jsonrpc_notification(const char *method, json_t *params)
{
    json_t *n = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (!n) {
        json_decref(params);
        return NULL;
    }
    if (params)
        json_object_set_new(n, "params", params);
    return n;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return eg_buf_append((eg_buf *)data, buffer, size) == 0 ? 0 : -1;
}

char *mcp_jsonrpc_dump(const json_t *msg, size_t *len_out)
{
    return mcp_jsonrpc_dump_max(msg, 0, len_out);
}

char *mcp_jsonrpc_dump_max(const json_t *msg, size_t max, size_t *len_out)
{
    eg_buf b = EG_BUF_INIT(max ? max : EG_LIMIT_MCP_RESPONSE);
    if (json_dump_callback(msg, dump_cb, &b, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        eg_buf_free(&b);
        return NULL;
    }
    return eg_buf_detach(&b, len_out);
}

char *mcp_jsonrpc_id_key(const json_t *id)
{
    char tmp[48];
    if (json_is_integer(id)) {
        snprintf(tmp, sizeof tmp, "i:%" JSON_INTEGER_FORMAT, json_integer_value(id));
        return eg_strdup(tmp);
    }
    if (json_is_string(id)) {
        size_t n = json_string_length(id);
        char *k = eg_malloc(n + 3);
        if (!k)
            return NULL;
        k[0] = 's';
        k[1] = ':';
        memcpy(k + 2, json_string_value(id), n);
        k[n + 2] = '\0';
        return k;
    }
    return NULL;
}
