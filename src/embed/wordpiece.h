/*
 * wordpiece.h - the BERT uncased tokenizer (BasicTokenizer + WordPiece),
 * as all-MiniLM-L6-v2 and bge-small-en-v1.5 were trained with.
 *
 * Steps, in the reference tokenizer's order (Hugging Face BertNormalizer,
 * BertPreTokenizer, WordPiece):
 *   1. clean: drop NUL, U+FFFD and control characters (Unicode C*, except
 *      \t \n \r which count as whitespace); whitespace becomes a space;
 *   2. put spaces around CJK ideographs;
 *   3. strip accents: canonical decomposition (NFD), drop nonspacing marks (Mn);
 *   4. lower-case (full Unicode simple lower-case mapping);
 *   5. split on whitespace and on every punctuation character (ASCII
 *      33-47, 58-64, 91-96, 123-126, and every Unicode P* character);
 *   6. WordPiece: greedy longest match first, continuation pieces carry
 *      "##"; a word of more than 100 characters, or one that cannot be
 *      matched completely, becomes [UNK];
 *   7. [CLS] pieces [SEP], cut to max_tokens.
 * Invalid UTF-8 bytes are treated as U+FFFD (and so dropped in step 1).
 *
 * Ownership: embed_wordpiece_load returns a *new* tokenizer freed with
 * embed_wordpiece_free (accepts NULL).
 * Thread-safety: a loaded tokenizer is read-only; encode may be called from
 * any number of threads at once.
 */
#ifndef ENGRAM_EMBED_WORDPIECE_H
#define ENGRAM_EMBED_WORDPIECE_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct embed_wordpiece embed_wordpiece;

/*
 * Load the vocabulary from `path`: a vocab.txt (one token per line, the id
 * is the line number) or a Hugging Face tokenizer.json (its model.vocab
 * object).  [CLS], [SEP], [UNK] and [PAD] must be present.  EG_ENOTFOUND
 * for a missing file, EG_EINVAL for a malformed one.
 */
int embed_wordpiece_load(embed_wordpiece **out, const char *path, eg_error *err);
void embed_wordpiece_free(embed_wordpiece *wp);

/* Number of entries in the vocabulary. */
size_t embed_wordpiece_vocab_size(const embed_wordpiece *wp);

/*
 * Encode len bytes of text into ids (caller-allocated, max_tokens entries,
 * max_tokens >= 2): [CLS] pieces... [SEP].  *n_out receives the number of
 * ids written; *truncated (may be NULL) is set when pieces were cut to fit.
 * Returns 0, EG_EINVAL for max_tokens < 2, EG_ENOMEM.
 */
int embed_wordpiece_encode(const embed_wordpiece *wp, const char *text, size_t len, int32_t *ids,
                           size_t max_tokens, size_t *n_out, bool *truncated, eg_error *err);

#endif
