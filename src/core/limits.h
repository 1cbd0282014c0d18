/*
 * limits.h - every cap on input that a peer controls, in one place.
 *
 * Reviewers: a new parser of untrusted bytes adds its cap here.
 */
#ifndef ENGRAM_CORE_LIMITS_H
#define ENGRAM_CORE_LIMITS_H

/* Bolt / PackStream */
#define EG_LIMIT_BOLT_MESSAGE (256u * 1024u * 1024u) /* one reassembled Bolt message */
#define EG_LIMIT_PS_DEPTH 64u                      /* nesting of lists/maps/structs */
#define EG_LIMIT_PS_STRING (128u * 1024u * 1024u)  /* one string or byte array */
#define EG_LIMIT_PS_ITEMS (16u * 1024u * 1024u)    /* items in one list or map */
#define EG_LIMIT_PS_ARENA (2048u * 1024u * 1024u)  /* decoded bytes held by one bolt_arena */

/* MCP */
#define EG_LIMIT_MCP_LINE (16u * 1024u * 1024u)      /* one JSON-RPC message on stdio */
#define EG_LIMIT_MCP_HTTP_BODY (16u * 1024u * 1024u) /* one HTTP request body */
#define EG_LIMIT_MCP_JSON_DEPTH 64u

/* Embedding providers */
#define EG_LIMIT_EMBED_RESPONSE (256u * 1024u * 1024u)

#endif
