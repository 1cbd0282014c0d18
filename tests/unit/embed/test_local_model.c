/*
 * test_local_model.c - the in-process sentence encoder against its reference.
 *
 * tests/data/embed/vector_reference.json holds, for both models, texts with
 * the reference tokenizer's ids and the vectors ONNX Runtime computes from
 * the models' published graphs.  Here every text must give the same ids and
 * a vector within cosine 0.9999, with both engines; batches must equal
 * single texts; the provider interface, truncation, the query instruction
 * and concurrent use of one shared model are checked; and a missing,
 * truncated, altered or wrong weights file must be a clear error, never a
 * vector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed/local_model.h"
#include "embed/provider.h"
#include "embed/wordpiece.h"
#include "support/testenv.h"

#define D EMBED_LOCAL_DIMS

static const char *models_dir;
static json_t *ref;

static int setup(void **state)
{
    (void)state;
    int st = eg_testenv_models(&models_dir);
    if (st)
        exit(st);
    json_error_t jerr;
    ref = json_load_file(eg_testenv_source_path("tests/data/embed/vector_reference.json"), 0, &jerr);
    return ref ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(ref);
    return 0;
}

static double cosine(const float *a, const json_t *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < D; j++) {
        double x = a[j], y = json_real_value(json_array_get(b, (size_t)j));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    return ab / __builtin_sqrt(aa * bb);
}

static double cos2(const float *a, const float *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < D; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return ab / __builtin_sqrt(aa * bb);
}

/* All reference texts of one model through one engine, as one batch. */
static void parity(const char *name, embed_local_engine engine)
{
    json_t *models = json_object_get(ref, "models"), *mm = NULL;
    for (size_t i = 0; i < json_array_size(models); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(models, i), "model")), name) == 0)
            mm = json_array_get(models, i);
    assert_non_null(mm);
    json_t *cases = json_object_get(mm, "cases");
    size_t n = json_array_size(cases);
    embed_local_model *m;
    eg_error err;
    assert_int_equal(embed_local_model_open(&m, models_dir, name, &err), 0);
    assert_int_equal(embed_local_model_set_engine(m, engine, &err), 0);
    const char **texts = calloc(n, sizeof *texts);
    json_t *kept = json_array();
    float *out = calloc(n * D, sizeof *out);
    int *ntok = calloc(n, sizeof *ntok);
    bool *cut = calloc(n, sizeof *cut);
    /* The engines differ only in their matrix products, which short texts
     * exercise fully; the long ones (positions up to 512, long attention)
     * go through the default engine.  Under ASan our own kernels are ~20x
     * slower, and the long texts would be most of the suite's minute.
     * ThreadSanitizer instruments every load and store of those kernels
     * (several times ASan's cost); its pass is here for the threads test
     * below, so there the plain engine checks only its first few texts. */
#ifdef __SANITIZE_THREAD__
    const size_t plain_max_texts = 3;
#else
    const size_t plain_max_texts = SIZE_MAX;
#endif
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i);
        if (engine == EMBED_LOCAL_ENGINE_PLAIN &&
            (json_array_size(json_object_get(c, "ids")) > 64 || used >= plain_max_texts))
            continue;
        json_array_append(kept, c);
        texts[used++] = json_string_value(json_object_get(c, "text"));
    }
    cases = kept;
    n = used;
    assert_int_equal(embed_local_model_embed(m, texts, n, out, ntok, cut, &err), 0);
    double worst = 1;
    size_t max = embed_local_model_max_tokens(m);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i), *ids = json_object_get(c, "ids");
        /* identical ids: the tokenizer's, through the model's own tokenizer */
        int32_t got[600];
        size_t gn = 0;
        assert_int_equal(embed_wordpiece_encode(embed_local_model_tokenizer(m), texts[i], strlen(texts[i]), got, max,
                                                &gn, NULL, &err), 0);
        assert_int_equal(gn, json_array_size(ids));
        assert_int_equal((size_t)ntok[i], gn);
        for (size_t j = 0; j < gn; j++)
            assert_int_equal(got[j], json_integer_value(json_array_get(ids, j)));
        assert_int_equal(cut[i], gn == max && strlen(texts[i]) > 1000);
        double cs = cosine(out + i * D, json_object_get(c, "vector"));
        if (cs < worst)
            worst = cs;
        if (cs < 0.9999)
            fprintf(stderr, "%s/%s: cosine %.6f on \"%.60s\"\n", name, embed_local_engine_name(m), cs, texts[i]);
    }
    fprintf(stderr, "local %s (%s): %zu reference texts, min cosine %.7f\n", name, embed_local_engine_name(m), n,
            worst);
    assert_true(worst >= 0.9999);
    /* A batch equals its texts one by one. */
    for (size_t i = 0; i < n; i += 7) {
        float one[D];
        assert_int_equal(embed_local_model_embed(m, &texts[i], 1, one, NULL, NULL, &err), 0);
        assert_true(cos2(one, out + i * D) >= 0.99999);
    }
    free(texts);
    free(out);
    free(ntok);
    free(cut);
    json_decref(kept);
    embed_local_model_close(m);
}

static void test_local__parity_minilm_plain(void **s) { (void)s; parity(EMBED_LOCAL_MINILM, EMBED_LOCAL_ENGINE_PLAIN); }
static void test_local__parity_bge_plain(void **s) { (void)s; parity(EMBED_LOCAL_BGE, EMBED_LOCAL_ENGINE_PLAIN); }
static void test_local__parity_minilm_auto(void **s) { (void)s; parity(EMBED_LOCAL_MINILM, EMBED_LOCAL_ENGINE_AUTO); }
static void test_local__parity_bge_auto(void **s) { (void)s; parity(EMBED_LOCAL_BGE, EMBED_LOCAL_ENGINE_AUTO); }

/* The provider interface: per-input outcomes, tokens, truncation, the query instruction. */
static void test_local__provider(void **state)
{
    (void)state;
    setenv("ENGRAM_MODEL_DIR", models_dir, 1);
    setenv("ENGRAM_EMBED_PROVIDER", "local", 1);
    unsetenv("OPENAI_API_KEY");
    unsetenv("ENGRAM_EMBED_DIMENSIONS");
    unsetenv("NEO4J_VECTOR_DIMENSIONS");
    eg_error err;
    for (int k = 0; k < 2; k++) {
        const char *name = k ? EMBED_LOCAL_BGE : EMBED_LOCAL_MINILM;
        setenv("ENGRAM_LOCAL_MODEL", k ? "bge" : "minilm", 1);
        embed_config cfg;
        assert_int_equal(embed_config_from_env(&cfg, &err), 0);
        assert_int_equal(cfg.kind, EMBED_PROVIDER_LOCAL);
        assert_string_equal(cfg.model, name);
        assert_int_equal(cfg.dimensions, D);
        embed_provider *p;
        assert_int_equal(embed_provider_new(&p, &cfg, &err), 0);
        assert_string_equal(embed_provider_model(p), name);
        assert_int_equal(embed_provider_dims(p), D);
        char *longtext = malloc(20000);
        longtext[0] = '\0';
        while (strlen(longtext) < 19000)
            strcat(longtext, "memory graph ");
        const char *texts[3] = {"Alice works at Acme Corp as a software engineer.", "", longtext};
        float out[3 * D];
        embed_status per[3], batch;
        long tokens = 0;
        int requests = -1;
        assert_int_equal(embed_provider_embed(p, texts, 3, out, per, &batch, &tokens, &requests, &err), 0);
        assert_int_equal(per[0].kind, EMBED_OK);
        assert_int_equal(per[0].tokens, 13);
        assert_false(per[0].truncated);
        assert_int_equal(per[1].kind, EMBED_E_INPUT);
        assert_int_equal(per[2].kind, EMBED_OK);
        assert_true(per[2].truncated);
        assert_int_equal((size_t)per[2].tokens, k ? 512 : 256);
        assert_int_equal(requests, 0); /* nothing went over the network */
        assert_int_equal(tokens, 13 + per[2].tokens);
        /* Queries: bge gets its retrieval instruction, MiniLM none. */
        float q[D];
        embed_status st;
        assert_int_equal(embed_provider_embed_query(p, texts[0], q, &st, &err), 0);
        double c = cos2(q, out);
        if (k)
            assert_true(c < 0.999 && c > 0.5);
        else
            assert_true(c > 0.99999);
        free(longtext);
        embed_provider_free(p);
    }
    /* With the weights installed, no account means the local encoder,
     * the default model, and no fallback note. */
    unsetenv("ENGRAM_EMBED_PROVIDER");
    unsetenv("ENGRAM_LOCAL_MODEL");
    embed_config cfg;
    assert_int_equal(embed_config_from_env(&cfg, &err), 0);
    assert_int_equal(cfg.kind, EMBED_PROVIDER_LOCAL);
    assert_string_equal(cfg.model, EMBED_LOCAL_DEFAULT_MODEL);
    assert_null(cfg.fallback);
    setenv("ENGRAM_EMBED_PROVIDER", "local", 1);
    setenv("ENGRAM_EMBED_DIMENSIONS", "1536", 1);
    assert_int_equal(embed_config_from_env(&cfg, &err), EG_EINVAL);
    unsetenv("ENGRAM_EMBED_DIMENSIONS");
    setenv("ENGRAM_LOCAL_MODEL", "gpt-9", 1);
    assert_int_equal(embed_config_from_env(&cfg, &err), EG_EINVAL);
    unsetenv("ENGRAM_LOCAL_MODEL");
    unsetenv("ENGRAM_EMBED_PROVIDER");
}

/* One shared copy, used by several threads at once, gives the single-threaded answers. */
typedef struct thr {
    embed_local_model *m;
    const char *texts[4];
    float out[4 * D];
    int rc;
} thr;

static void *thr_main(void *arg)
{
    thr *t = arg;
    eg_error err;
    for (int r = 0; r < 3 && t->rc == 0; r++)
        t->rc = embed_local_model_embed(t->m, t->texts, 4, t->out, NULL, NULL, &err);
    return NULL;
}

static void test_local__threads_share_one_model(void **state)
{
    (void)state;
    embed_local_model *a, *b;
    eg_error err;
    assert_int_equal(embed_local_model_open(&a, models_dir, EMBED_LOCAL_MINILM, &err), 0);
    assert_int_equal(embed_local_model_open(&b, models_dir, EMBED_LOCAL_MINILM, &err), 0);
    assert_ptr_equal(a, b); /* one loaded copy per process */
    embed_local_model_close(b);
    const char *texts[4] = {"who looked after the sick animals?", "worked as a veterinarian",
                            "Repairs bicycles in a small shop", "東京は日本の首都です。"};
    float want[4 * D];
    assert_int_equal(embed_local_model_embed(a, texts, 4, want, NULL, NULL, &err), 0);
    thr t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].m = a;
        memcpy(t[i].texts, texts, sizeof texts);
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].rc, 0);
        for (int j = 0; j < 4; j++)
            assert_true(cos2(t[i].out + j * D, want + j * D) > 0.999999);
    }
    /* The paraphrase is closer than the unrelated text. */
    assert_true(cos2(want, want + D) > cos2(want, want + 2 * D));
    embed_local_model_close(a);
}

/* Copy src to dst, keeping only `keep` bytes (all when keep < 0) and flipping byte `flip` (none when < 0). */
static void copy_file(const char *src, const char *dst, long keep, long flip)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[1 << 16];
    size_t n;
    long pos = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (keep >= 0 && pos + (long)n > keep)
            n = (size_t)(keep - pos);
        if (flip >= pos && flip < pos + (long)n)
            buf[flip - pos] ^= 0x01;
        fwrite(buf, 1, n, out);
        pos += (long)n;
        if (keep >= 0 && pos >= keep)
            break;
    }
    fclose(in);
    fclose(out);
}

static void expect_fault(const char *dir, int want_rc, const char *want_text)
{
    embed_local_model *m = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc = embed_local_model_open(&m, dir, EMBED_LOCAL_MINILM, &err);
    fprintf(stderr, "fault: %s\n", err.message);
    assert_int_equal(rc, want_rc);
    assert_null(m);
    assert_non_null(strstr(err.message, want_text));
    assert_non_null(strstr(err.message, "setup"));
}

static void test_local__corrupt_files_are_refused(void **state)
{
    (void)state;
    char dir[600], mdir[700], src[4200], dst[800], vsrc[4200], vdst[800];
    snprintf(dir, sizeof dir, "%s", eg_testenv_tmpdir("local_model_faults"));
    snprintf(mdir, sizeof mdir, "%s/%s", dir, EMBED_LOCAL_MINILM);
    mkdir(mdir, 0700);
    snprintf(src, sizeof src, "%s/%s/model.safetensors", models_dir, EMBED_LOCAL_MINILM);
    snprintf(dst, sizeof dst, "%s/model.safetensors", mdir);
    snprintf(vsrc, sizeof vsrc, "%s/%s/vocab.txt", models_dir, EMBED_LOCAL_MINILM);
    snprintf(vdst, sizeof vdst, "%s/vocab.txt", mdir);
    copy_file(vsrc, vdst, -1, -1);
    unlink(dst);
    expect_fault(dir, EG_ENOTFOUND, "model.safetensors is missing");
    copy_file(src, dst, 50 * 1000 * 1000, -1); /* truncated */
    expect_fault(dir, EG_EINVAL, "corrupt");
    copy_file(src, dst, -1, 60 * 1000 * 1000); /* one bit flipped deep in a weight matrix */
    expect_fault(dir, EG_EINVAL, "corrupt");
    copy_file(vsrc, dst, -1, -1);              /* the wrong file in its place */
    expect_fault(dir, EG_EINVAL, "corrupt");
    copy_file(src, dst, -1, -1);
    copy_file(vsrc, vdst, 1000, -1);           /* a damaged vocabulary */
    expect_fault(dir, EG_EINVAL, "vocab.txt is corrupt");
    copy_file(vsrc, vdst, -1, -1);             /* and repaired: it loads */
    embed_local_model *m;
    eg_error err;
    assert_int_equal(embed_local_model_open(&m, dir, EMBED_LOCAL_MINILM, &err), 0);
    embed_local_model_close(m);
    eg_testenv_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local__parity_minilm_plain),
        cmocka_unit_test(test_local__parity_minilm_auto),
        cmocka_unit_test(test_local__parity_bge_plain),
        cmocka_unit_test(test_local__parity_bge_auto),
        cmocka_unit_test(test_local__provider),
        cmocka_unit_test(test_local__threads_share_one_model),
        cmocka_unit_test(test_local__corrupt_files_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
