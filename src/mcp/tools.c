/*
 * tools.c - tool definitions and the tools/call pipeline (see tools.h).
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
#include "mcp/access.h"
#include "mcp/schema_validate.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- shared schema fragments (JSON text) ------------------------------ */

#define S_STR "{\"type\":\"string\"}"
#define S_NESTR(d) "{\"type\":\"string\",\"minLength\":1,\"description\":\"" d "\"}"
#define S_NUM "{\"type\":\"number\"}"
#define S_INT "{\"type\":\"integer\"}"
#define S_TS_NULL "{\"type\":[\"number\",\"null\"]}"
#define S_STRS "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
#define S_UNIT(d) "{\"type\":\"number\",\"minimum\":0,\"maximum\":1,\"description\":\"" d "\"}"

#define TEMPORAL_IN \
    "\"id\":" S_STR ",\"version\":" S_INT ",\"createdAt\":" S_NUM ",\"updatedAt\":" S_NUM \
    ",\"validFrom\":" S_NUM ",\"validTo\":" S_TS_NULL ",\"changedBy\":{\"type\":[\"string\",\"null\"]}"

#define ENTITY_IN                                                                               \
    "{\"type\":\"object\",\"required\":[\"name\",\"entityType\",\"observations\"],"             \
    "\"additionalProperties\":false,\"properties\":{"                                           \
    "\"name\":" S_NESTR("Unique name of the entity, e.g. 'Alice' or 'project-x'.")              \
    ",\"entityType\":" S_NESTR("Kind of entity, e.g. person, project, concept.")                \
    ",\"observations\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"                   \
    "\"description\":\"Facts about the entity, one short statement per string.\"}," TEMPORAL_IN \
    "}}"

#define ENTITY_OUT                                                                              \
    "{\"type\":\"object\",\"required\":[\"name\",\"entityType\",\"observations\"],"             \
    "\"properties\":{\"name\":" S_STR ",\"entityType\":" S_STR ",\"observations\":" S_STRS      \
    ",\"version\":" S_INT ",\"createdAt\":" S_NUM ",\"updatedAt\":" S_NUM ",\"validFrom\":" S_NUM \
    ",\"validTo\":" S_TS_NULL "}}"

#define REL_KEY_IN                                                                  \
    "\"from\":" S_NESTR("Name of the source entity.")                               \
    ",\"to\":" S_NESTR("Name of the target entity.")                                \
    ",\"relationType\":" S_NESTR("Relation in active voice, e.g. works_at, knows.")

#define RELATION_IN                                                                      \
    "{\"type\":\"object\",\"required\":[\"from\",\"to\",\"relationType\"],"              \
    "\"additionalProperties\":false,\"properties\":{" REL_KEY_IN                          \
    ",\"strength\":" S_UNIT("How strong the relation is, 0..1.")                          \
    ",\"confidence\":" S_UNIT("How sure you are that it holds, 0..1.")                    \
    ",\"metadata\":{\"type\":\"object\",\"description\":\"Free-form extra data.\"}," TEMPORAL_IN "}}"

#define RELATION_OUT                                                                          \
    "{\"type\":\"object\",\"required\":[\"from\",\"to\",\"relationType\"],"                  \
    "\"properties\":{\"from\":" S_STR ",\"to\":" S_STR ",\"relationType\":" S_STR             \
    ",\"strength\":{\"type\":[\"number\",\"null\"]},\"confidence\":{\"type\":[\"number\",\"null\"]}" \
    ",\"metadata\":{\"type\":[\"object\",\"null\"]},\"version\":" S_INT ",\"createdAt\":" S_NUM \
    ",\"updatedAt\":" S_NUM ",\"validFrom\":" S_NUM ",\"validTo\":" S_TS_NULL "}}"

#define REL_KEYS_OUT                                                                        \
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"from\",\"to\",\"relationType\"]," \
    "\"properties\":{\"from\":" S_STR ",\"to\":" S_STR ",\"relationType\":" S_STR "}}}"
#define PAGE_IN                                                                                  \
    ",\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"description\":\"Page size.\"}"   \
    ",\"cursor\":{\"type\":\"string\",\"description\":\"nextCursor of the previous page, to continue.\"}"
#define PAGE_OUT                                                                                 \
    ",\"nextCursor\":" S_STR ",\"truncated\":{\"type\":\"boolean\"}"                                \
    ",\"relationsTruncated\":{\"type\":\"boolean\",\"description\":\"The page's only entity has more relations than fit; use open_nodes for them.\"}"
#define ENTITIES_OUT "{\"type\":\"array\",\"items\":" ENTITY_OUT "}"
#define RELATIONS_OUT "{\"type\":\"array\",\"items\":" RELATION_OUT "}"
#define GRAPH_PROPS "\"entities\":" ENTITIES_OUT ",\"relations\":" RELATIONS_OUT PAGE_OUT

#define OBJ(req, props) \
    "{\"type\":\"object\",\"required\":[" req "],\"additionalProperties\":false,\"properties\":{" props "}}"
#define OUT(req, props) "{\"type\":\"object\",\"required\":[" req "],\"properties\":{" props "}}"
#define NO_ARGS "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{}}"
/* memento's read_graph/debug tools took a dummy parameter; accept it. */
#define DUMMY_ARGS \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"random_string\":" S_STR "}}"
#define PAGED_ARGS \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"random_string\":" S_STR \
    PAGE_IN "}}"

#define SEARCH_IN(extra)                                                                         \
    OBJ("\"query\"",                                                                             \
        "\"query\":" S_NESTR("What to look for, in natural language.")                           \
        ",\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"Maximum " \
        "entities to return (default 10).\"}"                                                    \
        ",\"min_similarity\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1,\"description\":"   \
        "\"Minimum score 0..1 (default 0.6 semantic, 0 hybrid); 0 is allowed.\"}"                \
        ",\"entity_types\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":"  \
        "\"Only return entities of these types.\"}" extra)

#define MATCHES_OUT                                                                              \
    "\"matches\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"name\",\"score\"]," \
    "\"properties\":{\"name\":" S_STR ",\"entityType\":" S_STR ",\"score\":" S_NUM              \
    ",\"vectorScore\":{\"type\":[\"number\",\"null\"]},\"keywordScore\":{\"type\":[\"number\",\"null\"]}}}}" \
    ",\"searchType\":{\"type\":\"string\",\"enum\":[\"semantic\",\"hybrid\",\"keyword\"]}"      \
    ",\"note\":" S_STR ",\"fallback\":" S_STR

#define FREE_OUT "{\"type\":\"object\"}"

#define SLOT(f) offsetof(mcp_backend, f)

/* read_only, destructive, idempotent, open_world */
#define RO true, false, true, false
#define CREATE false, false, false, false
#define UPDATE false, false, false, false
#define DELETE false, true, true, false

static mcp_tool g_tools[] = {
    {"create_entities", "Create entities",
     "Store new entities (people, projects, concepts...) in the knowledge graph, each with a type and "
     "a list of observations (facts). Names are unique: for a name that already exists no duplicate "
     "is made; its new observations are merged in (listed under 'updated' or 'unchanged'). "
     "Embeddings for semantic search are computed in the background.",
     OBJ("\"entities\"", "\"entities\":{\"type\":\"array\",\"minItems\":1,\"items\":" ENTITY_IN
                         ",\"description\":\"Entities to create.\"}"),
     OUT("\"entities\",\"created\"",
         "\"entities\":" ENTITIES_OUT ",\"created\":" S_STRS ",\"updated\":" S_STRS
         ",\"unchanged\":" S_STRS ",\"jobIds\":" S_STRS),
     CREATE, SLOT(create_entities), NULL, NULL},
    {"create_relations", "Create relations",
     "Connect existing entities with directed, typed relations (from -> to), optionally with "
     "strength and confidence in 0..1. Both entities must already exist: relations whose endpoints "
     "are missing are listed under 'skipped' with the reason; ones that already exist under "
     "'existing' (use update_relation to change them).",
     OBJ("\"relations\"", "\"relations\":{\"type\":\"array\",\"minItems\":1,\"items\":" RELATION_IN "}"),
     OUT("\"relations\",\"skipped\"",
         "\"relations\":" RELATIONS_OUT ",\"existing\":" RELATIONS_OUT
         ",\"skipped\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"from\",\"to\","
         "\"relationType\",\"reason\"],\"properties\":{\"from\":" S_STR ",\"to\":" S_STR
         ",\"relationType\":" S_STR ",\"reason\":" S_STR "}}}"),
     CREATE, SLOT(create_relations), NULL, NULL},
    {"add_observations", "Add observations",
     "Add new facts (observations) to existing entities. Observations already present are ignored; "
     "each entity gets a new version (the previous one stays in its history).",
     OBJ("\"observations\"",
         "\"observations\":{\"type\":\"array\",\"minItems\":1,\"items\":" OBJ(
             "\"entityName\",\"contents\"",
             "\"entityName\":" S_NESTR("Name of an existing entity.")
             ",\"contents\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":"
             "\"Facts to add.\"},\"strength\":" S_UNIT("Accepted for memento compatibility.")
             ",\"confidence\":" S_UNIT("Accepted for memento compatibility.")
             ",\"metadata\":{\"type\":\"object\"}") "}"
         ",\"strength\":" S_UNIT("Accepted for memento compatibility.")
         ",\"confidence\":" S_UNIT("Accepted for memento compatibility.")
         ",\"metadata\":{\"type\":\"object\"}"),
     OUT("\"results\"",
         "\"results\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"entityName\","
         "\"addedObservations\"],\"properties\":{\"entityName\":" S_STR ",\"addedObservations\":" S_STRS
         ",\"version\":" S_INT "}}}"),
     UPDATE, SLOT(add_observations), NULL, NULL},
    {"delete_entities", "Delete entities",
     "Delete entities by name, together with their relations. Their history is kept: the last "
     "version is marked deleted and get_entity_history / get_graph_at_time still show it. Names that "
     "do not exist are reported under 'notFound'.",
     OBJ("\"entityNames\"", "\"entityNames\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":"
                            "\"string\"},\"description\":\"Names of the entities to delete.\"}"),
     OUT("\"deleted\",\"notFound\"", "\"deleted\":" S_STRS ",\"notFound\":" S_STRS), DELETE,
     SLOT(delete_entities), NULL, NULL},
    {"delete_observations", "Delete observations",
     "Remove specific observations (exact text) from entities. The entity gets a new version; the "
     "old observations stay visible in get_entity_history.",
     OBJ("\"deletions\"",
         "\"deletions\":{\"type\":\"array\",\"minItems\":1,\"items\":" OBJ(
             "\"entityName\",\"observations\"",
             "\"entityName\":" S_NESTR("Name of the entity.") ",\"observations\":" S_STRS) "}"),
     OUT("\"results\"",
         "\"results\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"entityName\","
         "\"deletedObservations\"],\"properties\":{\"entityName\":" S_STR ",\"deletedObservations\":" S_STRS
         ",\"version\":" S_INT "}}}"),
     DELETE, SLOT(delete_observations), NULL, NULL},
    {"delete_relations", "Delete relations",
     "Delete relations identified by from, to and relationType (all of their versions).",
     OBJ("\"relations\"", "\"relations\":{\"type\":\"array\",\"minItems\":1,\"items\":" OBJ(
                              "\"from\",\"to\",\"relationType\"", REL_KEY_IN) "}"),
     OUT("\"deleted\",\"notFound\"", "\"deleted\":" REL_KEYS_OUT ",\"notFound\":" REL_KEYS_OUT), DELETE,
     SLOT(delete_relations), NULL, NULL},
    {"get_relation", "Get a relation",
     "Look up the current version of one relation by from, to and relationType, including strength, "
     "confidence and metadata. 'found' is false when it does not exist.",
     OBJ("\"from\",\"to\",\"relationType\"", REL_KEY_IN),
     OUT("\"found\",\"relation\"", "\"found\":{\"type\":\"boolean\"},\"relation\":{\"anyOf\":[" RELATION_OUT
                                   ",{\"type\":\"null\"}]}"),
     RO, SLOT(get_relation), NULL, NULL},
    {"update_relation", "Update a relation",
     "Change strength, confidence or metadata of an existing relation (identified by from, to, "
     "relationType). Unspecified fields keep their values; the previous version is kept in history.",
     OBJ("\"relation\"", "\"relation\":" RELATION_IN), OUT("\"relation\"", "\"relation\":" RELATION_OUT),
     UPDATE, SLOT(update_relation), NULL, NULL},
    {"read_graph", "Read the whole graph",
     "Return every current entity and relation. Prefer search_nodes, semantic_search or open_nodes on "
     "large memories.",
     PAGED_ARGS, OUT("\"entities\",\"relations\"", GRAPH_PROPS ",\"total\":" S_INT), RO,
     SLOT(read_graph), NULL, NULL},
    {"search_nodes", "Keyword search",
     "Find entities whose name, type or observations contain the query text (case-insensitive, "
     "literal: special characters are not operators). Returns the entities and the relations among "
     "them.",
     OBJ("\"query\"", "\"query\":{\"type\":\"string\",\"description\":\"Text to look for (empty: "
                      "all entities by name).\"}" PAGE_IN),
     OUT("\"entities\",\"relations\"", GRAPH_PROPS), RO, SLOT(search_nodes), NULL, NULL},
    {"open_nodes", "Open entities by name",
     "Fetch specific entities by exact name, plus the relations among them (with neighbours=true: "
     "every relation touching them, up to 200, and the entities at their other ends). When they do "
     "not all fit one response, the result has nextCursor: call again with it for the rest.",
     OBJ("\"names\"", "\"names\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"string\"}},"
                      "\"neighbours\":{\"type\":\"boolean\",\"description\":\"Also return the relations "
                      "to and from other entities, and those entities' names and types (default false).\"}"
                      PAGE_IN),
     OUT("\"entities\",\"relations\"", GRAPH_PROPS), RO, SLOT(open_nodes), NULL, NULL},
    {"semantic_search", "Semantic search",
     "Find entities by meaning using vector embeddings (with hybrid_search=true, the default, "
     "keyword matches are fused in). Every match carries its score. Entities whose embedding is not "
     "computed yet are only found by keyword.",
     SEARCH_IN(",\"hybrid_search\":{\"type\":\"boolean\",\"description\":\"Fuse keyword and vector "
               "scores (default true).\"},\"semantic_weight\":" S_UNIT(
                   "Weight of the vector score in hybrid mode (default 0.2).")),
     OUT("\"entities\",\"relations\",\"matches\",\"searchType\"", GRAPH_PROPS "," MATCHES_OUT), RO,
     SLOT(semantic_search), NULL, NULL},
    {"get_entity_embedding", "Get an entity's embedding",
     "Return the stored embedding vector of an entity with its model, dimensions and the time it was "
     "computed.",
     OBJ("\"entity_name\"", "\"entity_name\":" S_NESTR("Name of the entity.")),
     OUT("\"entityName\",\"embedding\",\"model\",\"dimensions\"",
         "\"entityName\":" S_STR ",\"embedding\":{\"type\":\"array\",\"items\":" S_NUM "},\"model\":" S_STR
         ",\"dimensions\":" S_INT ",\"lastUpdated\":" S_TS_NULL),
     RO, SLOT(get_entity_embedding), NULL, NULL},
    {"get_entity_history", "Entity history",
     "Return every version of an entity, oldest first, with validFrom/validTo timestamps (ms).",
     OBJ("\"entityName\"", "\"entityName\":" S_NESTR("Name of the entity.") PAGE_IN),
     OUT("\"entityName\",\"history\"", "\"entityName\":" S_STR ",\"history\":" ENTITIES_OUT PAGE_OUT), RO,
     SLOT(get_entity_history), NULL, NULL},
    {"get_relation_history", "Relation history",
     "Return every version of a relation, oldest first, with validFrom/validTo timestamps (ms).",
     OBJ("\"from\",\"to\",\"relationType\"", REL_KEY_IN PAGE_IN),
     OUT("\"from\",\"to\",\"relationType\",\"history\"",
         "\"from\":" S_STR ",\"to\":" S_STR ",\"relationType\":" S_STR ",\"history\":" RELATIONS_OUT
         PAGE_OUT),
     RO, SLOT(get_relation_history), NULL, NULL},
    {"get_graph_at_time", "Graph at a point in time",
     "Return the entities and relations as they were at a past moment (milliseconds since the Unix "
     "epoch).",
     OBJ("\"timestamp\"", "\"timestamp\":{\"type\":\"number\",\"minimum\":0,\"description\":\"Unix time "
                          "in milliseconds.\"}" PAGE_IN),
     OUT("\"timestamp\",\"entities\",\"relations\"", "\"timestamp\":" S_NUM "," GRAPH_PROPS), RO,
     SLOT(get_graph_at_time), NULL, NULL},
    {"get_decayed_graph", "Graph with decayed confidence",
     "Return the current graph with relation confidence decayed by age (half-life in days), so old "
     "unconfirmed knowledge weighs less. Both parameters are optional and honoured.",
     OBJ("", "\"reference_time\":{\"type\":\"number\",\"minimum\":0,\"description\":\"Compute ages "
             "relative to this Unix time in ms (default now).\"},\"decay_factor\":{\"type\":\"number\","
             "\"minimum\":0.001,\"description\":\"Half-life in days (default 30).\"}" PAGE_IN),
     OUT("\"entities\",\"relations\",\"decay\"",
         GRAPH_PROPS ",\"decay\":{\"type\":\"object\",\"required\":[\"referenceTime\",\"halfLifeDays\","
                     "\"minConfidence\"],\"properties\":{\"referenceTime\":" S_NUM ",\"halfLifeDays\":" S_NUM
                     ",\"minConfidence\":" S_NUM "}}"),
     RO, SLOT(get_decayed_graph), NULL, NULL},
    {"force_generate_embedding", "Generate embeddings",
     "Queue embedding work. With entity_name: a job for that entity's current version (a job that "
     "already exists for the same version and model is reported, not duplicated, and revived if it "
     "is dead; with in-server "
     "workers the call waits up to 10 s for the vector). Without entity_name: backfill up to "
     "'limit' entities of this memory whose vector is missing or stale.",
     OBJ("", "\"entity_name\":" S_NESTR("Name of the entity; omit to backfill entities without a "
                                        "current vector.") ",\"limit\":{\"type\":\"integer\","
         "\"minimum\":1,\"maximum\":1000,\"description\":\"Backfill: most entities to queue (default "
         "10).\"}"),
     OUT("\"success\"",
         "\"success\":{\"type\":\"boolean\"},\"entity\":" S_STR ",\"entities\":" S_STRS
         ",\"jobIds\":" S_STRS ",\"created\":" S_INT ",\"existing\":" S_INT
         ",\"revived\":" S_INT ",\"queued\":{\"type\":\"boolean\"},\"vector_length\":" S_INT ",\"model\":" S_STR),
     false, false, true, false, SLOT(force_generate_embedding), NULL, NULL},
    {"debug_embedding_config", "Embedding configuration",
     "Debug: show the embedding provider, model, dimensions, vector index settings and counts of "
     "entities with and without embeddings. Never shows secrets.",
     DUMMY_ARGS, FREE_OUT, RO, SLOT(debug_embedding_config), NULL, NULL},
    {"diagnose_vector_search", "Diagnose vector search",
     "Debug: check the vector index (exists, online, dimensions) and run a test query.", DUMMY_ARGS,
     FREE_OUT, RO, SLOT(diagnose_vector_search), NULL, NULL},
    {"hybrid_search", "Hybrid search",
     "Find entities by combining keyword and vector similarity with an explicit weight; every match "
     "reports its combined, vector and keyword scores.",
     SEARCH_IN(",\"semantic_weight\":" S_UNIT("Weight of the vector score, 0..1 (default 0.2).")),
     OUT("\"entities\",\"relations\",\"matches\",\"searchType\"", GRAPH_PROPS "," MATCHES_OUT), RO,
     SLOT(hybrid_search), NULL, NULL},
    {"queue_status", "Embedding queue status",
     "Show the embedding job queue: counts per state (pending, leased, completed, dead, superseded), "
     "age of the oldest pending job, completions per 5 minutes over the last hour, and whether "
     "embeddings are being produced (the same health verdict as the workers' /health).",
     NO_ARGS,
     OUT("\"counts\"", "\"counts\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}},"
                       "\"oldestPendingAgeMs\":" S_TS_NULL ",\"healthy\":{\"type\":\"boolean\"}"),
     RO, SLOT(queue_status), NULL, NULL},
    {"queue_list_jobs", "List embedding jobs",
     "List embedding jobs, optionally only those in one state (e.g. dead, to see why they failed).",
     OBJ("", "\"status\":{\"type\":\"string\",\"enum\":[\"pending\",\"leased\",\"completed\",\"dead\","
             "\"superseded\"]},\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,"
             "\"description\":\"Default 50.\"}"),
     OUT("\"jobs\"", "\"jobs\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\","
                     "\"status\"],\"properties\":{\"id\":" S_STR ",\"status\":" S_STR ",\"entityName\":" S_STR
                     ",\"attempts\":" S_INT ",\"lastError\":{\"type\":[\"string\",\"null\"]}}}}"),
     RO, SLOT(queue_list_jobs), NULL, NULL},
    {"queue_retry_dead", "Retry dead embedding jobs",
     "Put dead embedding jobs back to pending with a fresh attempt budget: the given job ids, or all "
     "dead jobs when jobIds is omitted.",
     OBJ("", "\"jobIds\":" S_STRS), OUT("\"retried\"", "\"retried\":" S_INT), false, false, true, false,
     SLOT(queue_retry_dead), NULL, NULL},
};

#define N_TOOLS (sizeof g_tools / sizeof g_tools[0])

#define NAMESPACE_DESC                                                                            \
    "Memory partition to work in (default: the server's own). Over HTTP a token may use only "    \
    "the namespaces it was given."


static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static char g_init_msg[200];

static void compile(void)
{
    for (size_t i = 0; i < N_TOOLS; i++) {
        json_error_t je;
        g_tools[i].input_schema = json_loads(g_tools[i].input_schema_text, 0, &je);
        if (!g_tools[i].input_schema) {
            snprintf(g_init_msg, sizeof g_init_msg, "%s inputSchema: %s at %d", g_tools[i].name, je.text,
                     je.position);
            g_init_rc = EG_EINTERNAL;
            return;
        }
        g_tools[i].output_schema = json_loads(g_tools[i].output_schema_text, 0, &je);
        if (!g_tools[i].output_schema) {
            snprintf(g_init_msg, sizeof g_init_msg, "%s outputSchema: %s at %d", g_tools[i].name, je.text,
                     je.position);
            g_init_rc = EG_EINTERNAL;
            return;
        }
        /* Every tool takes the partition it works in (access.h limits it per
         * token over HTTP); one definition, added here, not 24 copies. */
        json_t *props = json_object_get(g_tools[i].input_schema, "properties");
        if (!props || json_object_set_new(props, "namespace",
                                          json_pack("{s:s, s:i, s:i, s:s}", "type", "string", "minLength", 1,
                                                    "maxLength", 256, "description", NAMESPACE_DESC)) != 0) {
            snprintf(g_init_msg, sizeof g_init_msg, "%s inputSchema: no properties", g_tools[i].name);
            g_init_rc = EG_EINTERNAL;
            return;
        }
        /* OBJ("" , ...) leaves an empty required array: drop it. */
        json_t *req = json_object_get(g_tools[i].input_schema, "required");
        if (req && json_array_size(req) == 0)
            json_object_del(g_tools[i].input_schema, "required");
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
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "out of memory");
    }
    eg_error verr;
    eg_error_clear(&verr);
    int rc = mcp_schema_validate(t->input_schema, &a, 1, notes, &verr);
    if (rc == EG_ENOMEM) {
        json_decref(a);
        json_decref(notes);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "out of memory");
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
        return rc ? eg_error_set(err, rc, EG_CLASS_NONE, "out of memory") : 0;
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
            free(text);
        }
    }
    json_decref(a);
    json_decref(notes);
    if (!*result_out)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "out of memory");
    return 0;
}
