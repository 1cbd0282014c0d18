/*
 * test_wordpiece.c - the BERT uncased WordPiece tokenizer.
 *
 * The algorithm on a tiny vocabulary written by the test (always runs), then
 * parity with the reference tokenizer: every text of
 * tests/data/embed/tokenizer_reference.json (hand-picked cases for each rule
 * and random strings from every Unicode plane) must give the reference's
 * ids, from MiniLM's vocab.txt and from bge's tokenizer.json, cut at 256 and
 * at 512 tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/local_model.h"
#include "embed/wordpiece.h"
#include "support/testenv.h"

static const char *const TINY[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello",
                                   "world", ",", ".", "!", "run", "##ning", "##s", "cafe", "中", "x", NULL};
enum { PAD, UNK, CLS, SEP, MASK, UN, AFF, ABLE, HELLO, WORLD, COMMA, DOT, BANG, RUN, NING, S, CAFE, ZHONG, X };

static char tiny_txt[512], tiny_json[512];

static int write_tiny(void **state)
{
    (void)state;
    const char *dir = eg_testenv_tmpdir("wordpiece");
    snprintf(tiny_txt, sizeof tiny_txt, "%s/vocab.txt", dir);
    snprintf(tiny_json, sizeof tiny_json, "%s/tokenizer.json", dir);
    FILE *t = fopen(tiny_txt, "w");
    json_t *vocab = json_object();
    for (int i = 0; TINY[i]; i++) {
        fprintf(t, "%s\n", TINY[i]);
        json_object_set_new(vocab, TINY[i], json_integer(i));
    }
    fclose(t);
    json_t *doc = json_pack("{s:{s:s, s:o, s:s, s:i}}", "model", "type", "WordPiece", "vocab", vocab,
                            "continuing_subword_prefix", "##", "max_input_chars_per_word", 100);
    json_dump_file(doc, tiny_json, 0);
    json_decref(doc);
    return 0;
}

/* Encode text with the tiny vocabulary and compare with the expected ids (ending at -1). */
static void expect(const char *path, const char *text, size_t len, size_t max, bool want_cut, const int *want)
{
    embed_wordpiece *wp;
    eg_error err;
    assert_int_equal(embed_wordpiece_load(&wp, path, &err), 0);
    int32_t ids[64];
    size_t n = 0;
    bool cut = !want_cut;
    assert_int_equal(embed_wordpiece_encode(wp, text, len, ids, max, &n, &cut, &err), 0);
    size_t k = 0;
    while (want[k] >= 0)
        k++;
    assert_int_equal(n, k);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(ids[i], want[i]);
    assert_int_equal(cut, want_cut);
    embed_wordpiece_free(wp);
}

#define EXPECT(text, max, cut, ...)                                                     \
    do {                                                                                \
        const int w_[] = {__VA_ARGS__, -1};                                             \
        expect(tiny_txt, text, strlen(text), max, cut, w_);                             \
        expect(tiny_json, text, strlen(text), max, cut, w_);                            \
    } while (0)

static void test_wordpiece__algorithm(void **state)
{
    (void)state;
    EXPECT("unaffable", 64, false, CLS, UN, AFF, ABLE, SEP);
    EXPECT("Hello, WORLD!", 64, false, CLS, HELLO, COMMA, WORLD, BANG, SEP);
    EXPECT("running runs", 64, false, CLS, RUN, NING, RUN, S, SEP);
    EXPECT("unknownword hello", 64, false, CLS, UNK, HELLO, SEP);   /* unmatched word: one [UNK] */
    EXPECT("Café", 64, false, CLS, CAFE, SEP);                      /* accents stripped, lower-cased */
    EXPECT("x中x", 64, false, CLS, X, ZHONG, X, SEP);               /* CJK is a word of its own */
    EXPECT("hel\xfflo", 64, false, CLS, HELLO, SEP);               /* invalid UTF-8 dropped */
    EXPECT("hel\x01lo\t\nworld", 64, false, CLS, HELLO, WORLD, SEP); /* control dropped, whitespace splits */
    EXPECT("hello[SEP]world", 64, false, CLS, HELLO, SEP, WORLD, SEP); /* special tokens match literally */
    EXPECT("", 64, false, CLS, SEP);
    EXPECT("hello world hello", 4, true, CLS, HELLO, WORLD, SEP);   /* cut to max_tokens */
    EXPECT("hello world", 4, false, CLS, HELLO, WORLD, SEP);        /* exactly fits */
    EXPECT("unaffable", 3, true, CLS, UN, SEP);                     /* a word's pieces are cut too */
    char longw[130];
    memset(longw, 'x', 101);
    longw[101] = '\0';
    EXPECT(longw, 64, false, CLS, UNK, SEP);                        /* > 100 characters */
    longw[100] = '\0';
    EXPECT(longw, 64, false, CLS, UNK, SEP);                        /* 100 x's: no piece "##x" */
    /* A NUL inside the text is dropped like any control character. */
    const int w_[] = {CLS, HELLO, SEP, -1};
    expect(tiny_txt, "hel\0lo", 6, 64, false, w_);
}

static void test_wordpiece__errors(void **state)
{
    (void)state;
    embed_wordpiece *wp = NULL;
    eg_error err;
    assert_int_equal(embed_wordpiece_load(&wp, "/nonexistent/vocab.txt", &err), EG_ENOTFOUND);
    assert_null(wp);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.json", eg_testenv_tmpdir("wordpiece"));
    FILE *f = fopen(bad, "w");
    fputs("{\"model\": {\"vocab\": [1, 2]}}", f);
    fclose(f);
    assert_int_equal(embed_wordpiece_load(&wp, bad, &err), EG_EINVAL);
    f = fopen(bad, "w");
    fputs("hello\nworld\n", f); /* no [CLS]/[SEP]/[UNK]/[PAD] */
    fclose(f);
    assert_int_equal(embed_wordpiece_load(&wp, bad, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "[CLS]"));
    assert_int_equal(embed_wordpiece_load(&wp, tiny_txt, &err), 0);
    int32_t ids[4];
    size_t n;
    assert_int_equal(embed_wordpiece_encode(wp, "x", 1, ids, 1, &n, NULL, &err), EG_EINVAL);
    assert_int_equal(embed_wordpiece_vocab_size(wp), X + 1);
    embed_wordpiece_free(wp);
    embed_wordpiece_free(NULL);
}

/* Every reference text, from one vocabulary file, cut at max. Returns mismatches. */
static int check_reference(const char *vocab, json_t *cases, size_t max)
{
    embed_wordpiece *wp;
    eg_error err;
    assert_int_equal(embed_wordpiece_load(&wp, vocab, &err), 0);
    int32_t *ids = malloc(max * sizeof *ids);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i), *want = json_object_get(c, "ids");
        json_t *text = json_object_get(c, "text");
        size_t n = 0, rn = json_array_size(want), en = rn > max ? max : rn;
        bool cut = false;
        assert_int_equal(embed_wordpiece_encode(wp, json_string_value(text), json_string_length(text), ids, max, &n,
                                                &cut, &err), 0);
        bool ok = n == en && cut == (rn > max);
        for (size_t j = 0; ok && j < en; j++) {
            json_int_t w = json_integer_value(json_array_get(want, j == en - 1 ? rn - 1 : j));
            ok = ids[j] == w;
        }
        if (!ok && ++bad <= 5)
            fprintf(stderr, "mismatch (%s, max %zu) on case %zu: %s\n", vocab, max, i, json_string_value(text));
    }
    free(ids);
    embed_wordpiece_free(wp);
    return bad;
}

static void test_wordpiece__reference(void **state)
{
    (void)state;
    const char *dir = NULL;
    int st = eg_testenv_models(&dir);
    if (st == EG_TEST_SKIP)
        skip();
    assert_int_equal(st, 0);
    json_error_t jerr;
    json_t *ref = json_load_file(eg_testenv_source_path("tests/data/embed/tokenizer_reference.json"),
                                 JSON_ALLOW_NUL, &jerr);
    assert_non_null(ref);
    json_t *cases = json_object_get(ref, "cases");
    assert_true(json_array_size(cases) >= 2000);
    char minilm[4200], bge[4200];
    snprintf(minilm, sizeof minilm, "%s/%s/vocab.txt", dir, EMBED_LOCAL_MINILM);
    snprintf(bge, sizeof bge, "%s/%s/tokenizer.json", dir, EMBED_LOCAL_BGE);
    int bad = check_reference(minilm, cases, 256) + check_reference(minilm, cases, 512) +
              check_reference(bge, cases, 256) + check_reference(bge, cases, 512);
    fprintf(stderr, "wordpiece: %zu reference texts x 4 (two vocabulary files, 256 and 512): %d mismatches\n",
            json_array_size(cases), bad);
    assert_int_equal(bad, 0);
    json_decref(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wordpiece__algorithm),
        cmocka_unit_test(test_wordpiece__errors),
        cmocka_unit_test(test_wordpiece__reference),
    };
    return cmocka_run_group_tests(tests, write_tiny, NULL);
}
