/*
 * tools.c - the tool registry's wiring and the tools/call pipeline (see
 * tools.h).
 *
 * What each tool says to a client (title, description, annotations,
 * inputSchema, outputSchema) is data: src/mcp/tools/<name>.json, bundled
 * into the binary by the build (CMakeLists.txt, core/embedded.h) and parsed
 * once by mcp_tools_init().  Here is only what code must decide: the order
 * of tools/list, which backend slot runs each tool, the `namespace`
 * argument every tool takes, and the pipeline.
 *
 * Names and parameters are memento-mcp's (so a memento user only changes
 * the command), descriptions are written for a model choosing a tool, and
 * annotations are honest: reads are readOnly + idempotent, deletes are
 * destructive + idempotent, creates are neither, and every tool is
 * closed-world (it only touches this memory, never the outside world).
 */
#include "mcp/tools.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/embedded.h"
#include "mcp/access.h"
#include "mcp/schema_validate.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * Every tool, in tools/list order (memento's, then engram's additions;
 * pagination depends on it staying fixed).  X(name): the definition
 * src/mcp/tools/<name>.json, embedded as mcp_tooldef_<name>, and the
 * mcp_backend slot <name> that runs it.  scripts/gen-tools-doc.py reads
 * this list for the order of docs/tools.md.
 */
#define MCP_TOOL_LIST(X)                                                                                               \
    X(create_entities)                                                                                                 \
    X(create_relations)                                                                                                \
    X(add_observations)                                                                                                \
    X(delete_entities)                                                                                                 \
    X(delete_observations)                                                                                             \
    X(delete_relations)                                                                                                \
    X(get_relation)                                                                                                    \
    X(update_relation)                                                                                                 \
    X(read_graph)                                                                                                      \
    X(search_nodes)                                                                                                    \
    X(open_nodes)                                                                                                      \
    X(semantic_search)                                                                                                 \
    X(get_entity_embedding)                                                                                            \
    X(get_entity_history)                                                                                              \
    X(get_relation_history)                                                                                            \
    X(get_graph_at_time)                                                                                               \
    X(get_decayed_graph)                                                                                               \
    X(force_generate_embedding)                                                                                        \
    X(debug_embedding_config)                                                                                          \
    X(diagnose_vector_search)                                                                                          \
    X(hybrid_search)                                                                                                   \
    X(queue_status)                                                                                                    \
    X(queue_list_jobs)                                                                                                 \
    X(queue_retry_dead)

#define DECLARE_DEF(n) EG_EMBEDDED(mcp_tooldef_##n);
MCP_TOOL_LIST(DECLARE_DEF)

#define TOOL_ENTRY(n)                                                                                                  \
    {.name = #n, .slot = offsetof(mcp_backend, n), .def_text = mcp_tooldef_##n, .def_size = &mcp_tooldef_##n##_size},
static mcp_tool g_tools[] = {MCP_TOOL_LIST(TOOL_ENTRY)};

#define N_TOOLS (sizeof g_tools / sizeof g_tools[0])

#define NAMESPACE_DESC                                                                            \
    "Memory partition to work in (default: the server's own). Over HTTP a token may use only "    \
    "the namespaces it was given."

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static char g_init_msg[200];

/* Parse one definition into t; 0, or -1 with g_init_msg saying what is wrong
 * (a broken file is a build defect: every test that lists tools fails). */
static int load(mcp_tool *t)
{
    json_error_t je;
    t->def = json_loadb((const char *)t->def_text, (size_t)*t->def_size, JSON_REJECT_DUPLICATES, &je);
    if (!t->def) {
        snprintf(g_init_msg, sizeof g_init_msg, "src/mcp/tools/%s.json: %s at line %d", t->name, je.text,
                 je.line);
        return -1;
    }
    /* Exactly these keys (JSON_STRICT): a misspelt one is an error, not a
     * hint that silently goes missing. */
    const char *name = NULL;
    int ro = 0, de = 0, id = 0, ow = 0;
    if (json_unpack_ex(t->def, &je, JSON_STRICT, "{s:s, s:s, s:s, s:{s:b, s:b, s:b, s:b}, s:o, s:o}", "name",
                       &name, "title", &t->title, "description", &t->description, "annotations", "readOnlyHint",
                       &ro, "destructiveHint", &de, "idempotentHint", &id, "openWorldHint", &ow, "inputSchema",
                       &t->input_schema, "outputSchema", &t->output_schema) != 0) {
        snprintf(g_init_msg, sizeof g_init_msg, "src/mcp/tools/%s.json: %s", t->name, je.text);
        return -1;
    }
    if (strcmp(name, t->name) != 0 || !json_is_object(t->input_schema) || !json_is_object(t->output_schema)) {
        snprintf(g_init_msg, sizeof g_init_msg, "src/mcp/tools/%s.json: name is '%s', or a schema is no object",
                 t->name, name);
        return -1;
    }
    t->read_only = ro;
    t->destructive = de;
    t->idempotent = id;
    t->open_world = ow;
    /* Every tool takes the partition it works in (access.h limits it per
     * token over HTTP); one definition, added here, not 24 copies. */
    json_t *props = json_object_get(t->input_schema, "properties");
    if (!json_is_object(props) ||
        json_object_set_new(props, "namespace",
                            json_pack("{s:s, s:i, s:i, s:s}", "type", "string", "minLength", 1, "maxLength", 256,
                                      "description", NAMESPACE_DESC)) != 0) {
        snprintf(g_init_msg, sizeof g_init_msg, "src/mcp/tools/%s.json: inputSchema has no properties", t->name);
        return -1;
    }
    return 0;
}

static void compile(void)
{
    for (size_t i = 0; i < N_TOOLS; i++)
        if (load(&g_tools[i]) != 0) {
            g_init_rc = EG_EINTERNAL;
            return;
        }
}

int mcp_tools_init(eg_error *err)
{
    pthread_once(&g_once, compile);
    if (g_init_rc)
        return eg_error_set(err, g_init_rc, EG_CLASS_NONE, "tool registry: %s", g_init_msg);
    return 0;
}

size_t mcp_tools_count(void)
{
    return N_TOOLS;
}

const mcp_tool *mcp_tools_at(size_t i)
{
    if (mcp_tools_init(NULL) || i >= N_TOOLS)
        return NULL;
    return &g_tools[i];
}

const mcp_tool *mcp_tools_find(const char *name)
{
    if (!name || mcp_tools_init(NULL))
        return NULL;
    for (size_t i = 0; i < N_TOOLS; i++)
        if (strcmp(g_tools[i].name, name) == 0)
            return &g_tools[i];
    return NULL;
}

json_t *mcp_tool_describe(const mcp_tool *t)
{
    json_t *ann = json_pack("{s:s, s:b, s:b, s:b, s:b}", "title", t->title, "readOnlyHint", t->read_only,
                            "destructiveHint", t->destructive, "idempotentHint", t->idempotent,
                            "openWorldHint", t->open_world);
    if (!ann)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:O, s:O, s:o}", "name", t->name, "title", t->title, "description",
                     t->description, "inputSchema", t->input_schema, "outputSchema", t->output_schema,
                     "annotations", ann);
}

json_t *mcp_tool_error_result(const char *text)
{
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text, "isError", 1);
}

static json_t *error_from(const char *tool, int rc, const eg_error *e)
{
    char text[EG_ERR_MSG_MAX + 200];
    const char *msg = e && e->message[0] ? e->message : eg_strerror(rc);
    switch (rc) {
    case EG_EINVAL:
        snprintf(text, sizeof text, "Invalid arguments for %s: %s", tool, msg);
        break;
    case EG_ENOTFOUND:
    case EG_ECONFLICT:
        snprintf(text, sizeof text, "%s", msg);
        break;
    default:
        snprintf(text, sizeof text, "%s failed (%s error%s): %s", tool,
                 e ? eg_class_name(e->klass) : "internal",
                 e && e->retryable ? ", may succeed if retried" : "", msg);
        break;
    }
    return mcp_tool_error_result(text);
}

/*
 * The caller's rights (access.h): a read-only grant runs read-only tools
 * only, and the namespace must be one of the grant's; a call that names
 * none gets the grant's default written into its arguments, so the backend
 * sees the namespace it may use.  *denied: a new isError result, or NULL.
 */
static int apply_grant(const mcp_tool *t, const mcp_grant *g, json_t *a, json_t **denied)
{
    *denied = NULL;
    if (!g)
        return 0;
    const char *asked = json_string_value(json_object_get(a, "namespace"));
    char text[EG_ERR_MSG_MAX + 200];
    if (!t->read_only && !mcp_grant_can_write(g)) {
        snprintf(text, sizeof text,
                 "%s changes the memory, and this token (%s) may only read. Use a read-only tool, or a token "
                 "with write access.",
                 t->name, mcp_grant_name(g));
        *denied = mcp_tool_error_result(text);
        return *denied ? 0 : EG_ENOMEM;
    }
    const char *ns = mcp_grant_namespace(g, asked);
    if (!ns) {
        char *allowed = mcp_grant_describe(g);
        snprintf(text, sizeof text, "Namespace '%.200s' is not open to this token; it may use: %.400s.", asked,
                 allowed ? allowed : "?");
        eg_free(allowed);
        *denied = mcp_tool_error_result(text);
        return *denied ? 0 : EG_ENOMEM;
    }
    if (!asked && json_object_set_new(a, "namespace", json_string(ns)) != 0)
        return EG_ENOMEM;
    return 0;
}

int mcp_tools_call(const mcp_backend *be, const char *name, json_t *args, mcp_call_ctx *ctx,
                   json_t **result_out, eg_error *err)
{
    *result_out = NULL;
    const mcp_tool *t = mcp_tools_find(name);
    if (!t)
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "unknown tool '%s'", name ? name : "");
    /* Our own reference: validation may replace the whole value (coercion). */
    json_t *a = args ? json_incref(args) : json_object();
    json_t *notes = json_array();
    if (!a || !notes) {
        json_decref(a);
        json_decref(notes);
        return eg_error_oom(err);
    }
    eg_error verr;
    eg_error_clear(&verr);
    int rc = mcp_schema_validate(t->input_schema, &a, 1, notes, &verr);
    if (rc == EG_ENOMEM) {
        json_decref(a);
        json_decref(notes);
        return eg_error_oom(err);
    }
    if (rc) {
        char text[EG_ERR_MSG_MAX + 300];
        snprintf(text, sizeof text,
                 "Invalid arguments for %s: %s. Fix the call to match the tool's inputSchema and "
                 "try again.",
                 t->name, verr.message);
        *result_out = mcp_tool_error_result(text);
        json_decref(a);
        json_decref(notes);
        return *result_out ? 0 : EG_ENOMEM;
    }
    json_t *denied = NULL;
    if ((rc = apply_grant(t, mcp_call_grant(ctx), a, &denied)) != 0 || denied) {
        *result_out = denied;
        json_decref(a);
        json_decref(notes);
        return rc ? eg_error_set(err, rc, EG_CLASS_NONE, EG_OOM_TEXT) : 0;
    }
    mcp_backend_fn fn = *(const mcp_backend_fn *)((const char *)be + t->slot);
    json_t *out = NULL;
    eg_error berr;
    eg_error_clear(&berr);
    if (!fn) {
        char text[300];
        snprintf(text, sizeof text,
                 "%s is not available in this server configuration (no backend for it).", t->name);
        *result_out = mcp_tool_error_result(text);
    } else {
        rc = fn(be->self, a, ctx, &out, &berr);
        if (rc == EG_ECANCELED || (rc == 0 && mcp_call_cancelled(ctx))) {
            json_decref(out);
            json_decref(a);
            json_decref(notes);
            return eg_error_set(err, EG_ECANCELED, EG_CLASS_CLIENT, "cancelled");
        }
        if (rc == 0 && !json_is_object(out)) {
            json_decref(out);
            out = NULL;
            rc = eg_error_set(&berr, EG_EINTERNAL, EG_CLASS_NONE, "backend returned no object");
        }
        if (rc) {
            *result_out = error_from(t->name, rc, &berr);
        } else {
            if (json_array_size(notes) > 0 && !json_object_get(out, "_coerced")) {
                /* Tell the model what we assumed; outputSchemas allow extra keys. */
                json_object_set(out, "_coerced", notes);
            }
            char *text = json_dumps(out, JSON_COMPACT);
            if (text)
                *result_out = json_pack("{s:[{s:s, s:s}], s:o}", "content", "type", "text", "text", text,
                                        "structuredContent", out);
            else
                json_decref(out);
            eg_free(text);
        }
    }
    json_decref(a);
    json_decref(notes);
    if (!*result_out)
        return eg_error_oom(err);
    return 0;
}
