/*
 * local_weights_int.h - reading the local encoder's weight files (internal
 * to embed/).
 *
 * Two formats, both parsed without trusting a byte of them:
 *   safetensors  8-byte little-endian header length, a JSON header mapping
 *                tensor names to {dtype, shape, data_offsets}, then raw data
 *                (all-MiniLM-L6-v2's model.safetensors);
 *   ONNX         a protobuf ModelProto; only the graph's initializers are
 *                read (ModelProto.graph = 7, GraphProto.initializer = 5,
 *                TensorProto dims = 1, data_type = 2, float_data = 4,
 *                name = 8, raw_data = 9) (bge-small-en-v1.5.onnx).
 * Both produce the same flat table of tensors that *borrow* the file's
 * bytes; the model copies what it keeps (so alignment never matters and the
 * file can be unmapped after loading).
 *
 * Files are verified against a pinned sha256 before they are parsed: the
 * model's code maps tensors by name and, for ONNX, by position, so only the
 * exact files it was written for may ever be read.
 *
 * Thread-safety: plain functions on caller-owned data.
 */
#ifndef ENGRAM_EMBED_LOCAL_WEIGHTS_INT_H
#define ENGRAM_EMBED_LOCAL_WEIGHTS_INT_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define EMBED_TENSOR_MAX_DIMS 4
#define EMBED_TENSOR_NAME_MAX 160

typedef enum embed_dtype { EMBED_DT_OTHER = 0, EMBED_DT_F32 } embed_dtype;

typedef struct embed_tensor {
    char name[EMBED_TENSOR_NAME_MAX];  /* "" for an unnamed one */
    int ndims;
    int64_t dims[EMBED_TENSOR_MAX_DIMS];
    embed_dtype dtype;
    const unsigned char *data;          /* borrowed from the file's bytes; any alignment */
    size_t nbytes;
} embed_tensor;

/* A whole file in memory (read-only mapping). */
typedef struct embed_file {
    const unsigned char *data;
    size_t size;
} embed_file;

/*
 * Map `path` read-only and check its sha256 against `sha256_hex` (64 lower-
 * case hex digits; NULL skips the check).  EG_ENOTFOUND when the file is
 * missing, EG_EINVAL when it is empty or its hash differs (the message names
 * the file and says how to reinstall), EG_EIO for other I/O errors.
 */
int embed__file_map(embed_file *f, const char *path, const char *sha256_hex, eg_error *err);
void embed__file_unmap(embed_file *f);

/*
 * Parse a safetensors / ONNX image into *out (*new* array of *count
 * tensors, freed with eg_free; the tensors borrow buf).  EG_EINVAL for a
 * malformed file.
 */
int embed__safetensors_parse(const unsigned char *buf, size_t n, embed_tensor **out, size_t *count,
                            eg_error *err);
int embed__onnx_parse(const unsigned char *buf, size_t n, embed_tensor **out, size_t *count, eg_error *err);

/*
 * Give back the memory of a tensor's bytes once they are copied (the pages
 * of a private read-only file mapping are simply dropped; reading them again
 * would fault them back in from the file).  Keeps the load's peak memory at
 * about one copy of the weights.
 */
void embed__tensor_release(const embed_tensor *t);

/* Number of elements (product of dims); 0 for a malformed shape. */
size_t embed__tensor_numel(const embed_tensor *t);

#endif
