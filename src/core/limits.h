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
/* JSON values in one message (elements and members, counted by the
 * pre-scan before parsing) and containers among them.  A parsed value costs
 * jansson 50-100 bytes and an object about 300, so 16 MiB of "[0,0,..." or
 * "[{},{},..." would cost 0.4-1.6 GB; these caps hold the tree of any
 * message to about 100 MB.  Real calls stay far below: at most 1000 items,
 * each an object with a few members. */
#define EG_LIMIT_MCP_JSON_VALUES 1000000u
#define EG_LIMIT_MCP_JSON_CONTAINERS 100000u
/* One outgoing JSON-RPC message (a tools/call result and its text copy).  A
 * message over it is replaced by an error answering the same id, so every
 * request gets an answer (mcp/server.c). */
#define EG_LIMIT_MCP_RESPONSE (64u * 1024u * 1024u)
/* The largest ENGRAM_MAX_RESPONSE_BYTES (a page's byte budget): a result is
 * sent twice (structuredContent and its JSON text), and JSON escaping can
 * grow text up to 6x (\u00XX) and the text copy escapes it again, so 1/16
 * of the message cap keeps every page within EG_LIMIT_MCP_RESPONSE. */
#define EG_LIMIT_RESPONSE_BUDGET (EG_LIMIT_MCP_RESPONSE / 16u)

/* Embedding providers */
#define EG_LIMIT_EMBED_RESPONSE (256u * 1024u * 1024u)

#endif
