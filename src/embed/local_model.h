/*
 * local_model.h - sentence encoders computed in-process: a BERT encoder
 * (all-MiniLM-L6-v2: 6 layers, mean pooling; bge-small-en-v1.5: 12 layers,
 * [CLS] pooling), L2-normalised, 384 dimensions.
 *
 * Weights come from files the setup script installed and verified; nothing
 * is fetched at run time.  Layout of a model directory (dir/NAME/):
 *   all-MiniLM-L6-v2/   model.safetensors, vocab.txt
 *   bge-small-en-v1.5/  bge-small-en-v1.5.onnx, tokenizer.json
 * Loading checks each file's sha256 against the pinned value, so a truncated
 * or corrupt file is a clear error (EG_EINVAL naming the file), never a wrong
 * vector; a missing file is EG_ENOTFOUND.
 *
 * A batch is one forward pass through the linear layers (the tokens of all
 * texts side by side, no padding); attention runs per text.
 *
 * Ownership: embed_local_model_open returns a *new* reference to a model
 * shared by the whole process (one copy of the weights however many
 * workers use it), released with embed_local_model_close (accepts NULL).
 * Thread-safety: a model is read-only after open; embed may be called from
 * any number of threads at once (each call uses its own scratch memory).
 */
#ifndef ENGRAM_EMBED_LOCAL_MODEL_H
#define ENGRAM_EMBED_LOCAL_MODEL_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMBED_LOCAL_MINILM "all-MiniLM-L6-v2"
#define EMBED_LOCAL_BGE "bge-small-en-v1.5"
#define EMBED_LOCAL_DIMS 384
/* The default local model, chosen by `bench/run recall` (docs/internals/encoder.md). */
#define EMBED_LOCAL_DEFAULT_MODEL EMBED_LOCAL_BGE
/* bge-small-en-v1.5's instruction for retrieval queries (its model card). */
#define EMBED_LOCAL_BGE_QUERY_PREFIX "Represent this sentence for searching relevant passages: "

/*
 * The canonical model name for a user's spelling (full name, or "minilm" /
 * "bge"), or NULL when unknown.  Static.
 */
const char *embed_local_model_canonical(const char *name);

typedef struct embed_local_model embed_local_model;

/*
 * Open model `name` (EMBED_LOCAL_MINILM or EMBED_LOCAL_BGE) from `dir` (the
 * models directory; NULL: embed_local_model_dir()).  EG_EINVAL for an
 * unknown name or a corrupt file, EG_ENOTFOUND for a missing one.
 */
int embed_local_model_open(embed_local_model **out, const char *dir, const char *name, eg_error *err);
void embed_local_model_close(embed_local_model *m);

/* The models directory: ENGRAM_MODEL_DIR, else $XDG_DATA_HOME/engram/models,
 * else $HOME/.local/share/engram/models; when that directory does not exist
 * (and ENGRAM_MODEL_DIR is unset), the installed copy under the data
 * directory (<prefix>/share/engram/models) if there is one.  Writes into
 * buf; NULL if it does not fit or no directory is known. */
const char *embed_local_model_dir(char *buf, size_t n);

/* True when every file of model `name` is present in dir (no hash check). */
bool embed_local_model_installed(const char *dir, const char *name);

const char *embed_local_model_name(const embed_local_model *m); /* borrowed */
int embed_local_model_dims(const embed_local_model *m);
size_t embed_local_model_max_tokens(const embed_local_model *m); /* 256 MiniLM, 512 bge */

/* Which matrix-multiply engine the forward pass uses. */
typedef enum embed_local_engine {
    EMBED_LOCAL_ENGINE_AUTO = 0, /* the measured default */
    EMBED_LOCAL_ENGINE_PLAIN,    /* our own C kernels, this thread */
    EMBED_LOCAL_ENGINE_BLAS      /* cblas_sgemm (one thread); EG_EUNSUPPORTED if not built in */
} embed_local_engine;

/* Set the engine for this model (default AUTO).  The model is shared by the
 * providers that loaded it: the last setting holds for all of them.  Safe
 * while other threads embed with it.  EG_EUNSUPPORTED when BLAS was asked
 * for and the build has none. */
int embed_local_model_set_engine(embed_local_model *m, embed_local_engine e, eg_error *err);
const char *embed_local_engine_name(const embed_local_model *m); /* "plain" | "openblas" */

/*
 * Embed n texts into out (caller-allocated n * dims floats, row i for
 * texts[i]).  ntokens (may be NULL, n entries) receives each text's token
 * count after truncation, truncated (may be NULL) whether it was cut to
 * max_tokens.  Returns 0, EG_ENOMEM.
 */
int embed_local_model_embed(embed_local_model *m, const char *const *texts, size_t n, float *out,
                            int *ntokens, bool *truncated, eg_error *err);

/*
 * Embed already tokenized inputs (for tests and benchmarks): ids[i] holds
 * lens[i] ids including [CLS] and [SEP], lens[i] <= max_tokens.
 */
int embed_local_model_embed_ids(embed_local_model *m, const int32_t *const *ids, const size_t *lens,
                                size_t n, float *out, eg_error *err);

/* The model's tokenizer (borrowed, valid while m is open). */
struct embed_wordpiece;
const struct embed_wordpiece *embed_local_model_tokenizer(const embed_local_model *m);

#endif
