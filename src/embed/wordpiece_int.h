/*
 * wordpiece_int.h - the tokenizer's per-character tables (internal to
 * embed/), generated from the reference tokenizer by
 * scripts/gen-tokenizer-tables.py into wordpiece_tables.c.
 *
 * What a code point becomes in the normalizer, first match wins:
 *   embed_wp_dropped  removed (controls, format, unassigned, lone marks)
 *   embed_wp_spaces   a space
 *   embed_wp_cjk      " c " (a CJK ideograph becomes a word of its own)
 *   embed_wp_mapped   the UTF-8 bytes pool[off, off + len) (lower-cased,
 *                     accents stripped, possibly several code points)
 *   Hangul syllables  their canonical decomposition (by rule, not table)
 *   otherwise         itself
 * embed_wp_punct: code points that split words and stand alone (punctuation).
 * All range tables are sorted and disjoint.
 */
#ifndef ENGRAM_EMBED_WORDPIECE_INT_H
#define ENGRAM_EMBED_WORDPIECE_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct embed_wp_range {
    uint32_t lo, hi;
} embed_wp_range;

typedef struct embed_wp_map {
    uint32_t cp;
    uint32_t off, len; /* into embed_wp_pool */
} embed_wp_map;

extern const embed_wp_range embed_wp_dropped[], embed_wp_spaces[], embed_wp_cjk[], embed_wp_punct[];
extern const size_t embed_wp_dropped_len, embed_wp_spaces_len, embed_wp_cjk_len, embed_wp_punct_len;
extern const embed_wp_map embed_wp_mapped[];
extern const size_t embed_wp_mapped_len;
extern const unsigned char embed_wp_pool[];

#endif
