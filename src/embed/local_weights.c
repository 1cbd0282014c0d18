/*
 * local_weights.c - map, verify and parse the local encoder's weight files.
 * See local_weights_int.h for the formats and why files are hash-pinned.
 */
#include "embed/local_weights_int.h"

#include "core/alloc.h"
#include "core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ---------------------------------------------------------------- */

static int sha256_hex_fd(int fd, char hex[EG_SHA256_HEX_SIZE])
{
    eg_sha256 *h = NULL;
    unsigned char *buf = eg_malloc(1u << 20);
    int rc = buf && eg_sha256_new(&h) == 0 ? 0 : -1;
    for (ssize_t got; rc == 0 && (got = read(fd, buf, 1u << 20)) != 0;) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -1;
        else
            eg_sha256_update(h, buf, (size_t)got);
    }
    if (rc == 0 && eg_sha256_final_hex(h, hex) != 0)
        rc = -1;
    eg_sha256_free(h);
    eg_free(buf);
    return rc;
}

void embed__tensor_release(const embed_tensor *t)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (!t || !t->data || pg <= 0)
        return;
    uintptr_t a = ((uintptr_t)t->data + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t b = ((uintptr_t)t->data + t->nbytes) & ~((uintptr_t)pg - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

int embed__file_map(embed_file *f, const char *path, const char *sha256_hex, eg_error *err)
{
    f->data = NULL;
    f->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                                "model file %s is missing; install the local models with scripts/setup.sh "
                                "(or scripts/install-models.sh)", path);
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "cannot open model file %s: %s", path,
                            strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "model file %s is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "model file %s is empty; reinstall it with scripts/setup.sh", path);
    }
    /* Hash by reading, not through the mapping: the pages stay in the page
     * cache instead of counting in this process's memory twice (mapped and
     * copied) while the model loads. */
    if (sha256_hex) {
        char got[65];
        if (sha256_hex_fd(fd, got) != 0) {
            close(fd);
            return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "cannot read model file %s", path);
        }
        if (strcmp(got, sha256_hex) != 0) {
            close(fd);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "model file %s is corrupt or not the expected file (sha256 %.12s..., "
                                "expected %.12s...); reinstall it with scripts/setup.sh", path, got,
                                sha256_hex);
        }
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "cannot map model file %s: %s", path,
                            strerror(errno));
    f->data = m;
    f->size = (size_t)st.st_size;
    return 0;
}

void embed__file_unmap(embed_file *f)
{
    if (f && f->data)
        munmap((void *)f->data, f->size);
    if (f) {
        f->data = NULL;
        f->size = 0;
    }
}

size_t embed__tensor_numel(const embed_tensor *t)
{
    if (t->ndims < 0 || t->ndims > EMBED_TENSOR_MAX_DIMS)
        return 0;
    size_t n = 1;
    for (int i = 0; i < t->ndims; i++) {
        if (t->dims[i] <= 0 || eg_mul_size(&n, n, (size_t)t->dims[i]) != 0)
            return 0;
    }
    return n;
}

/* A growable tensor table. */
typedef struct tensor_list {
    embed_tensor *v;
    size_t n, cap;
} tensor_list;

static embed_tensor *tensor_push(tensor_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        embed_tensor *v = eg_realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    embed_tensor *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    return t;
}

/* ---- safetensors ---------------------------------------------------------- */

/* The header is JSON of a few kB; anything near this is not a weights file. */
#define SAFETENSORS_MAX_HEADER (16u << 20)

static int st_tensor(tensor_list *l, const char *name, json_t *desc, const unsigned char *data,
                     size_t data_len, eg_error *err)
{
    const char *dtype = json_string_value(json_object_get(desc, "dtype"));
    json_t *shape = json_object_get(desc, "shape");
    json_t *offs = json_object_get(desc, "data_offsets");
    if (!dtype || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2 ||
        json_array_size(shape) > EMBED_TENSOR_MAX_DIMS || strlen(name) >= EMBED_TENSOR_NAME_MAX)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: bad entry for %s", name);
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > data_len)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: offsets of %s out of range", name);
    embed_tensor *t = tensor_push(l);
    if (!t)
        return eg_error_oom(err);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = strcmp(dtype, "F32") == 0 ? EMBED_DT_F32 : EMBED_DT_OTHER;
    t->ndims = (int)json_array_size(shape);
    for (int i = 0; i < t->ndims; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) <= 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: bad shape of %s", name);
        t->dims[i] = json_integer_value(d);
    }
    t->data = data + json_integer_value(b);
    t->nbytes = (size_t)(json_integer_value(e) - json_integer_value(b));
    size_t numel = embed__tensor_numel(t);
    if (t->dtype == EMBED_DT_F32 && (numel == 0 || numel > t->nbytes / 4 || numel * 4 != t->nbytes))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: size of %s does not match its shape",
                            name);
    return 0;
}

int embed__safetensors_parse(const unsigned char *buf, size_t n, embed_tensor **out, size_t *count,
                            eg_error *err)
{
    *out = NULL;
    *count = 0;
    if (n < 8)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: file too short");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen == 0 || hlen > SAFETENSORS_MAX_HEADER || hlen > n - 8)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: bad header length");
    json_error_t jerr;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)hlen, 0, &jerr);
    if (!json_is_object(h)) {
        json_decref(h);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: header is not a JSON object");
    }
    tensor_list l = {0};
    const unsigned char *data = buf + 8 + hlen;
    size_t data_len = n - 8 - (size_t)hlen;
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(h, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if (!json_is_object(val)) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "safetensors: entry %s is not an object", key);
            break;
        }
        if ((rc = st_tensor(&l, key, val, data, data_len, err)) != 0)
            break;
    }
    json_decref(h);
    if (rc) {
        eg_free(l.v);
        return rc;
    }
    *out = l.v;
    *count = l.n;
    return 0;
}

/* ---- ONNX (protobuf) ------------------------------------------------------ */

/* A read cursor over [p, end). Every read checks the bound. */
typedef struct pb {
    const unsigned char *p, *end;
} pb;

static int pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        unsigned char c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Next field: number, wire type, and for length-delimited fields the sub-range. */
static int pb_field(pb *r, uint32_t *field, int *wire, uint64_t *ival, pb *sub)
{
    uint64_t key;
    if (pb_varint(r, &key) != 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return pb_varint(r, ival);
    case 1:
        if (r->end - r->p < 8)
            return -1;
        r->p += 8;
        return 0;
    case 5:
        if (r->end - r->p < 4)
            return -1;
        r->p += 4;
        return 0;
    case 2: {
        uint64_t len;
        if (pb_varint(r, &len) != 0 || len > (uint64_t)(r->end - r->p))
            return -1;
        sub->p = r->p;
        sub->end = r->p + len;
        r->p += len;
        return 0;
    }
    default: return -1;
    }
}

/* ONNX TensorProto.DataType FLOAT */
#define ONNX_FLOAT 1

static int onnx_tensor(tensor_list *l, pb t, eg_error *err)
{
    embed_tensor *x = tensor_push(l);
    if (!x)
        return eg_error_oom(err);
    int64_t dtype = 0;
    pb floats = {0};
    while (t.p < t.end) {
        uint32_t f;
        int w;
        uint64_t iv = 0;
        pb sub = {0};
        if (pb_field(&t, &f, &w, &iv, &sub) != 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: malformed tensor");
        if (f == 1 && w == 0) {
            if (x->ndims >= EMBED_TENSOR_MAX_DIMS)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: too many dims");
            x->dims[x->ndims++] = (int64_t)iv;
        } else if (f == 1 && w == 2) { /* packed dims */
            while (sub.p < sub.end) {
                uint64_t d;
                if (pb_varint(&sub, &d) != 0 || x->ndims >= EMBED_TENSOR_MAX_DIMS)
                    return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: bad dims");
                x->dims[x->ndims++] = (int64_t)d;
            }
        } else if (f == 2 && w == 0) {
            dtype = (int64_t)iv;
        } else if (f == 4 && w == 2) {
            floats = sub;
        } else if (f == 8 && w == 2) {
            size_t len = (size_t)(sub.end - sub.p);
            if (len >= sizeof x->name)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: tensor name too long");
            memcpy(x->name, sub.p, len);
            x->name[len] = '\0';
        } else if (f == 9 && w == 2) {
            x->data = sub.p;
            x->nbytes = (size_t)(sub.end - sub.p);
        }
    }
    for (int i = 0; i < x->ndims; i++)
        if (x->dims[i] <= 0 || x->dims[i] > (int64_t)1 << 40)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: bad dimension in %s", x->name);
    if (!x->data && floats.p) { /* float_data, packed little-endian floats */
        x->data = floats.p;
        x->nbytes = (size_t)(floats.end - floats.p);
    }
    x->dtype = dtype == ONNX_FLOAT ? EMBED_DT_F32 : EMBED_DT_OTHER;
    if (x->dtype == EMBED_DT_F32 && x->data) {
        size_t numel = embed__tensor_numel(x);
        if (numel == 0 || numel > x->nbytes / 4 || numel * 4 != x->nbytes)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: size of %s does not match its shape",
                                x->name);
    }
    return 0;
}

int embed__onnx_parse(const unsigned char *buf, size_t n, embed_tensor **out, size_t *count, eg_error *err)
{
    *out = NULL;
    *count = 0;
    pb r = {buf, buf + n}, graph = {0};
    bool have_graph = false;
    while (r.p < r.end) {
        uint32_t f;
        int w;
        uint64_t iv;
        pb sub = {0};
        if (pb_field(&r, &f, &w, &iv, &sub) != 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: malformed model");
        if (f == 7 && w == 2) {
            graph = sub;
            have_graph = true;
        }
    }
    if (!have_graph)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: no graph");
    tensor_list l = {0};
    int rc = 0;
    while (graph.p < graph.end) {
        uint32_t f;
        int w;
        uint64_t iv;
        pb sub = {0};
        if (pb_field(&graph, &f, &w, &iv, &sub) != 0) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "onnx: malformed graph");
            break;
        }
        if (f == 5 && w == 2 && (rc = onnx_tensor(&l, sub, err)) != 0)
            break;
    }
    if (rc) {
        eg_free(l.v);
        return rc;
    }
    *out = l.v;
    *count = l.n;
    return 0;
}
