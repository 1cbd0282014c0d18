/*
 * bench_embed.c - engram's side of `bench/run embed`: the local sentence
 * encoder (src/embed/local_model.h), one model and one engine per process,
 * so that the peak RSS is that model's.
 *
 * Texts in, vectors out, on this thread only (OpenBLAS is told to use one
 * thread by bench/embed.sh): after an unmeasured warm-up batch of 32,
 *   single:   the first --single short texts, one text per call
 *   batch B:  all short texts, B per call, for each B in --batches
 *   long:     the long texts, --long-batch per call
 * plus the time embed_local_model_open takes (load_ms) and the process's
 * peak RSS (VmHWM).  With --ref FILE (ONNX Runtime's vectors of the same
 * texts, float32, short texts then long ones), the cosine of every vector
 * with its reference: min_cosine, mean_cosine.  Every vector is checked
 * (finite, unit length), so a broken encoder fails the run instead of
 * posting a number.
 *
 * Usage: bench_embed --model NAME --short FILE --long FILE [--engine
 *        auto|plain|blas] [--dir MODELS_DIR] [--single N] [--batches 32,100]
 *        [--long-batch N] [--ref FILE]
 *        bench_embed --default-model     (the model engram uses by default)
 *        bench_embed --model NAME --auto-engine  (the engine AUTO picks)
 * Prints one JSON line.  Exit 0, 1 on failure, 3 when the engine is not
 * built in (the line then says "unsupported").
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "embed/local_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct texts {
    char *buf; /* the file, lines cut in place */
    char **v;  /* borrowed from buf */
    size_t n;
} texts;

static void die(const char *what, const eg_error *err)
{
    fprintf(stderr, "bench_embed: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    exit(1);
}

/* One text a line, newline dropped; empty lines skipped.  The texts point
 * into one buffer (t.buf) read whole. */
static texts read_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, NULL);
    texts t = {0};
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            t.buf = eg_realloc(t.buf, cap);
            if (!t.buf)
                die("out of memory", NULL);
        }
        size_t got = fread(t.buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    t.buf[len] = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += t.buf[i] == '\n';
    t.v = eg_calloc(lines, sizeof *t.v);
    if (!t.v)
        die("out of memory", NULL);
    for (char *p = t.buf, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[--l] = 0;
        if (l)
            t.v[t.n++] = p;
    }
    if (t.n == 0)
        die("no texts in file", NULL);
    return t;
}

static void texts_free(texts *t)
{
    eg_free(t->buf);
    eg_free(t->v);
}

/* Peak resident set (VmHWM) in MB, 0 when unknown. */
static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char buf[256];
    double kb = 0;
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "VmHWM:", 6) == 0)
            kb = strtod(buf + 6, NULL);
    fclose(f);
    return kb / 1024.0;
}

/* Embed t[0..n) per_call at a time into out; texts per second. */
static double rate(embed_local_model *m, const texts *t, size_t n, size_t per_call, float *out, int dims)
{
    eg_error err = {0};
    int64_t t0 = eg_mono_us();
    for (size_t i = 0; i < n; i += per_call) {
        size_t k = n - i < per_call ? n - i : per_call;
        if (embed_local_model_embed(m, (const char *const *)t->v + i, k, out + i * (size_t)dims, NULL, NULL,
                                    &err) != 0)
            die("embed", &err);
    }
    int64_t us = eg_mono_us() - t0;
    return us > 0 ? (double)n * 1e6 / (double)us : 0;
}

/* Every vector finite and of unit length. */
static void check_vectors(const float *v, size_t n, int dims)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < dims; j++) {
            float x = v[i * (size_t)dims + (size_t)j];
            if (!isfinite(x))
                die("a vector holds a non-finite value", NULL);
            s += (double)x * x;
        }
        if (fabs(s - 1.0) > 1e-3) {
            fprintf(stderr, "bench_embed: vector %zu has squared norm %g\n", i, s);
            exit(1);
        }
    }
}

static size_t parse_list(const char *s, size_t *out, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0)
            die("bad --batches", NULL);
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            die("bad --batches", NULL);
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *dir = NULL, *short_path = NULL, *long_path = NULL, *ref = NULL;
    const char *engine = "auto";
    bool auto_engine = false;
    size_t single = 128, long_batch = 8, batches[8], nb = 0;
    nb = parse_list("32,100", batches, 8);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--default-model") == 0) {
            printf("%s\n", EMBED_LOCAL_DEFAULT_MODEL);
            return 0;
        }
        if (strcmp(a, "--auto-engine") == 0) {
            auto_engine = true;
            continue;
        }
        if (!v)
            die("missing value", NULL);
        if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--dir") == 0)
            dir = v;
        else if (strcmp(a, "--engine") == 0)
            engine = v;
        else if (strcmp(a, "--short") == 0)
            short_path = v;
        else if (strcmp(a, "--long") == 0)
            long_path = v;
        else if (strcmp(a, "--ref") == 0)
            ref = v;
        else if (strcmp(a, "--single") == 0)
            single = strtoul(v, NULL, 10);
        else if (strcmp(a, "--long-batch") == 0)
            long_batch = strtoul(v, NULL, 10);
        else if (strcmp(a, "--batches") == 0)
            nb = parse_list(v, batches, 8);
        else
            die("unknown option (see the header of bench/bench_embed.c)", NULL);
        i++;
    }
    if (model && auto_engine) {
        eg_error err = {0};
        embed_local_model *m = NULL;
        if (embed_local_model_open(&m, dir, model, &err) != 0)
            die("open", &err);
        printf("%s\n", embed_local_engine_name(m));
        embed_local_model_close(m);
        return 0;
    }
    if (!model || !short_path || !long_path || nb == 0 || long_batch == 0)
        die("usage: bench_embed --model NAME --short FILE --long FILE [...]", NULL);
    embed_local_engine eng = EMBED_LOCAL_ENGINE_AUTO;
    if (strcmp(engine, "plain") == 0)
        eng = EMBED_LOCAL_ENGINE_PLAIN;
    else if (strcmp(engine, "blas") == 0 || strcmp(engine, "openblas") == 0)
        eng = EMBED_LOCAL_ENGINE_BLAS;
    else if (strcmp(engine, "auto") != 0)
        die("--engine: auto, plain or blas", NULL);

    texts st = read_lines(short_path), lt = read_lines(long_path);
    if (single > st.n)
        single = st.n;

    eg_error err = {0};
    embed_local_model *m = NULL;
    int64_t t0 = eg_mono_us();
    if (embed_local_model_open(&m, dir, model, &err) != 0)
        die("open", &err);
    double load_ms = (double)(eg_mono_us() - t0) / 1e3;
    if (embed_local_model_set_engine(m, eng, &err) != 0) {
        if (err.code == EG_EUNSUPPORTED) {
            printf("{\"side\":\"engram\",\"model\":\"%s\",\"engine\":\"%s\",\"unsupported\":true}\n", model, engine);
            embed_local_model_close(m);
            texts_free(&st);
            texts_free(&lt);
            return 3;
        }
        die("set_engine", &err);
    }
    int dims = embed_local_model_dims(m);
    size_t total = st.n + lt.n;
    float *vec = eg_calloc(total * (size_t)dims, sizeof *vec);
    float *scratch = eg_calloc(st.n * (size_t)dims, sizeof *scratch);
    if (!vec || !scratch)
        die("out of memory", NULL);

    rate(m, &st, st.n < 32 ? st.n : 32, 32, scratch, dims); /* warm-up */
    double single_s = rate(m, &st, single, 1, scratch, dims);
    check_vectors(scratch, single, dims);
    double batch_s[8];
    for (size_t b = 0; b < nb; b++) {
        /* the first batch size's vectors are the ones compared */
        batch_s[b] = rate(m, &st, st.n, batches[b], b == 0 ? vec : scratch, dims);
        check_vectors(b == 0 ? vec : scratch, st.n, dims);
    }
    double long_s = rate(m, &lt, lt.n, long_batch, vec + st.n * (size_t)dims, dims);
    check_vectors(vec, total, dims);

    /* Token counts and cuts of the long texts, for the record. */
    int *ntok = eg_calloc(lt.n, sizeof *ntok);
    bool *cut = eg_calloc(lt.n, sizeof *cut);
    if (!ntok || !cut)
        die("out of memory", NULL);
    if (embed_local_model_embed(m, (const char *const *)lt.v, lt.n, scratch, ntok, cut, &err) != 0)
        die("embed", &err);
    size_t ncut = 0;
    long tok_sum = 0;
    for (size_t i = 0; i < lt.n; i++) {
        ncut += cut[i];
        tok_sum += ntok[i];
    }

    double min_cos = 2, sum_cos = 0;
    size_t worst = 0;
    if (ref) {
        FILE *f = fopen(ref, "rb");
        if (!f)
            die(ref, NULL);
        float *rv = eg_calloc(total * (size_t)dims, sizeof *rv);
        if (!rv)
            die("out of memory", NULL);
        if (fread(rv, sizeof *rv, total * (size_t)dims, f) != total * (size_t)dims)
            die("the reference vectors do not match the texts in number", NULL);
        fclose(f);
        for (size_t i = 0; i < total; i++) {
            double dot = 0, na = 0, nr = 0;
            for (int j = 0; j < dims; j++) {
                double a = vec[i * (size_t)dims + (size_t)j], r = rv[i * (size_t)dims + (size_t)j];
                dot += a * r;
                na += a * a;
                nr += r * r;
            }
            double c = dot / sqrt(na * nr);
            sum_cos += c;
            if (c < min_cos) {
                min_cos = c;
                worst = i;
            }
        }
        eg_free(rv);
    }

    printf("{\"side\":\"engram\",\"model\":\"%s\",\"engine\":\"%s\",\"threads\":1,\"dims\":%d,"
           "\"max_tokens\":%zu,\"load_ms\":%.1f,\"single_texts_s\":%.1f",
           embed_local_model_name(m), embed_local_engine_name(m), dims, embed_local_model_max_tokens(m),
           load_ms, single_s);
    for (size_t b = 0; b < nb; b++)
        printf(",\"batch%zu_texts_s\":%.1f", batches[b], batch_s[b]);
    printf(",\"long_texts_s\":%.2f,\"long_avg_tokens\":%.1f,\"long_truncated\":%zu,\"peak_rss_mb\":%.1f",
           long_s, (double)tok_sum / (double)lt.n, ncut, peak_rss_mb());
    if (ref)
        printf(",\"min_cosine\":%.9f,\"mean_cosine\":%.9f,\"worst_text\":%zu", min_cos, sum_cos / (double)total,
               worst);
    printf("}\n");

    eg_free(ntok);
    eg_free(cut);
    eg_free(vec);
    eg_free(scratch);
    embed_local_model_close(m);
    texts_free(&st);
    texts_free(&lt);
    return 0;
}
