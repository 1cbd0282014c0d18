/*
 * test_pure.c - graph's pure helpers: identifiers, Lucene escaping, embedding
 * text + hash, decay math, reciprocal rank fusion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/graph.h"

static void test_graph_pure__identifier(void **state)
{
    (void)state;
    assert_true(graph_identifier_valid("entity_embeddings"));
    assert_true(graph_identifier_valid("_x9"));
    assert_true(graph_identifier_valid("A"));
    assert_false(graph_identifier_valid(""));
    assert_false(graph_identifier_valid(NULL));
    assert_false(graph_identifier_valid("9abc"));
    assert_false(graph_identifier_valid("a-b"));
    assert_false(graph_identifier_valid("a b"));
    assert_false(graph_identifier_valid("x`) DETACH DELETE n //"));
    assert_false(graph_identifier_valid("caf\xc3\xa9"));
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(graph_identifier_valid(longname));
    longname[128] = '\0';
    assert_true(graph_identifier_valid(longname));
}

static void test_graph_pure__lucene_escape_all_specials(void **state)
{
    (void)state;
    char *o = NULL;
    assert_int_equal(graph_lucene_escape("+-&&||!(){}[]^\"~*?:\\/", &o, NULL), 0);
    assert_string_equal(o, "\\+\\-\\&\\&\\|\\|\\!\\(\\)\\{\\}\\[\\]\\^\\\"\\~\\*\\?\\:\\\\\\/");
    eg_free(o);
    assert_int_equal(graph_lucene_escape("plain text 123 \xc3\xa9", &o, NULL), 0);
    assert_string_equal(o, "plain text 123 \xc3\xa9");
    eg_free(o);
    assert_int_equal(graph_lucene_escape("name:foo AND bar*", &o, NULL), 0);
    assert_string_equal(o, "name\\:foo AND bar\\*");
    eg_free(o);
    assert_int_equal(graph_lucene_escape("", &o, NULL), 0);
    assert_string_equal(o, "");
    eg_free(o);
    assert_int_equal(graph_lucene_escape(NULL, &o, NULL), EG_EINVAL);
    assert_null(o);
}

static void test_graph_pure__lucene_phrase(void **state)
{
    (void)state;
    char *o = NULL;
    assert_int_equal(graph_lucene_phrase("say \"hi\" OR x", &o, NULL), 0);
    assert_string_equal(o, "\"say \\\"hi\\\" OR x\"");
    eg_free(o);
    /* Only punctuation: no full-text leg. */
    assert_int_equal(graph_lucene_phrase("&& || ()", &o, NULL), 0);
    assert_null(o);
    assert_int_equal(graph_lucene_phrase("\xe6\x97\xa5\xe6\x9c\xac", &o, NULL), 0);
    assert_non_null(o);
    eg_free(o);
}

/* The keyword leg's term query: words, lower-cased, stop words out, each
 * once, OR-joined; no input can put Lucene syntax through. */
static void expect_terms(const char *in, const char *want)
{
    char *o = (char *)1;
    assert_int_equal(graph_lucene_terms(in, &o, NULL), 0);
    if (want == NULL)
        assert_null(o);
    else
        assert_string_equal(o, want);
    eg_free(o);
}

static void test_graph_pure__lucene_terms(void **state)
{
    (void)state;
    expect_terms("When did Caroline go to the LGBTQ support group?", "caroline OR go OR lgbtq OR support OR group");
    expect_terms("What is the the what", NULL);             /* only stop words */
    expect_terms("?!... ()", NULL);                          /* only punctuation */
    expect_terms("", NULL);
    expect_terms("title:foo AND (bar OR \"baz*\"~2) NOT qux\\", "title OR foo OR bar OR baz OR 2 OR qux");
    expect_terms("Café Zürich 東京", "café OR zürich OR 東京");
    expect_terms("coffee Coffee COFFEE", "coffee");           /* each term once */
    char many[4000] = "";
    for (int i = 0; i < 200; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "w%d ", i);
    char *o = NULL;
    assert_int_equal(graph_lucene_terms(many, &o, NULL), 0);
    size_t ors = 0;
    for (const char *q = o; (q = strstr(q, " OR ")); q += 4)
        ors++;
    assert_int_equal(ors + 1, GRAPH_MAX_QUERY_TERMS);
    eg_free(o);
    char longw[300];
    memset(longw, 'x', 299);
    longw[299] = '\0';
    assert_int_equal(graph_lucene_terms(longw, &o, NULL), 0);
    assert_int_equal(strlen(o), GRAPH_TERM_MAX_BYTES);
    eg_free(o);
}

static void test_graph_pure__embedding_text_and_hash(void **state)
{
    (void)state;
    const char *obs[] = {"likes tea", "lives in Oslo"};
    char *t = NULL;
    char h[65], h2[65];
    assert_int_equal(graph_embedding_text("Ada", "person", obs, 2, &t, h, NULL), 0);
    assert_string_equal(t, "Name: Ada\nType: person\nObservations:\n- likes tea\n- lives in Oslo");
    assert_int_equal(strlen(h), 64);
    eg_free(t);
    assert_int_equal(graph_embedding_text("Ada", "person", obs, 2, &t, h2, NULL), 0);
    assert_string_equal(h, h2); /* deterministic */
    eg_free(t);
    assert_int_equal(graph_embedding_text("Ada", "person", obs, 1, &t, h2, NULL), 0);
    assert_string_not_equal(h, h2); /* content-sensitive */
    eg_free(t);
    assert_int_equal(graph_embedding_text("Ada", "person", NULL, 0, &t, h2, NULL), 0);
    assert_string_equal(t, "Name: Ada\nType: person\nObservations:\n(No observations)");
    eg_free(t);
    /* Digest cross-checked with sha256sum(1). */
    assert_int_equal(graph_embedding_text("x", "y", NULL, 0, &t, h2, NULL), 0);
    assert_string_equal(h2, "4d6096623ba4ab7a288224a388b96af967f46754a4596ec30dce616c9d9a8c7e");
    eg_free(t);
}

/* An observation record's text carries its entity's name and type. */
static void test_graph_pure__observation_text_and_hash(void **state)
{
    (void)state;
    char *t = NULL, h[65];
    assert_int_equal(graph_observation_text("Ada", "person", "likes tea", &t, h, NULL), 0);
    assert_string_equal(t, "Ada (person): likes tea");
    eg_free(t);
    /* Digest cross-checked with sha256sum(1). */
    assert_int_equal(graph_observation_text("x", "y", "z", &t, h, NULL), 0);
    assert_string_equal(h, "612d0532bcbfc6025d6e7fa38ba6d0e86c8b01d834197c01cd3556f0f21fd387");
    eg_free(t);
    eg_error err;
    eg_error_clear(&err);
    assert_int_equal(graph_observation_text("x", "y", NULL, &t, h, &err), EG_EINVAL);
    assert_null(t);
}

static void test_graph_pure__decay(void **state)
{
    (void)state;
    const double day = 86400000.0, hl = 30 * day;
    assert_float_equal(graph_decay(1.0, 0, hl, 0.1), 1.0, 1e-12);
    assert_float_equal(graph_decay(1.0, hl, hl, 0.1), 0.5, 1e-12);
    assert_float_equal(graph_decay(0.8, 2 * hl, hl, 0.0), 0.2, 1e-12);
    assert_float_equal(graph_decay(1.0, 10 * hl, hl, 0.1), 0.1, 1e-12); /* floor */
    assert_float_equal(graph_decay(1.0, 10 * hl, hl, 0.0), pow(0.5, 10), 1e-12);
    assert_float_equal(graph_decay(0.7, -5 * day, hl, 0.1), 0.7, 1e-12); /* future: no boost */
    assert_float_equal(graph_decay(0.7, 5 * day, 0, 0.1), 0.7, 1e-12);   /* disabled */
    assert_float_equal(graph_decay(NAN, hl, hl, 0.0), 0.5, 1e-12);      /* unknown = 1 */
    assert_float_equal(graph_decay(0.05, 0, hl, 0.1), 0.1, 1e-12);       /* floor applies */
    assert_float_equal(graph_decay(2.0, 0, hl, 0.1), 1.0, 1e-12);        /* clamped */
    assert_float_equal(graph_decay(1.0, 15 * day, hl, 0.0), sqrt(0.5), 1e-12);
}

static void test_graph_pure__fuse_basic(void **state)
{
    (void)state;
    graph_ranked kw[] = {{"a", 4.0}, {"b", 2.0}, {"c", 1.0}};
    graph_ranked vec[] = {{"c", 0.9}, {"d", 0.8}, {"a", 0.7}};
    graph_fused *f = NULL;
    size_t n = 0;
    assert_int_equal(graph_score_fuse(kw, 3, vec, 3, 0.5, &f, &n, NULL), 0);
    assert_int_equal(n, 4);
    /* keyword / 4, vector (s - 0.7) / 0.2:
     * a 0.5*1 + 0.5*0 = 0.5; c 0.5*0.25 + 0.5*1 = 0.625; d 0.5*0.5 = 0.25; b 0.5*0.5 = 0.25 */
    assert_string_equal(f[0].key, "c");
    assert_float_equal(f[0].score, 0.625, 1e-12);
    assert_int_equal(f[0].vector_rank, 1);
    assert_int_equal(f[0].keyword_rank, 3);
    assert_float_equal(f[0].vector_score, 0.9, 1e-12);
    assert_float_equal(f[0].keyword_score, 1.0, 1e-12);
    assert_string_equal(f[1].key, "a");
    assert_float_equal(f[1].score, 0.5, 1e-12);
    /* d and b tie at 0.25: d first (it has a vector rank). */
    assert_string_equal(f[2].key, "d");
    assert_string_equal(f[3].key, "b");
    assert_float_equal(f[3].score, 0.25, 1e-12);
    eg_free(f);
}

static void test_graph_pure__fuse_weight(void **state)
{
    (void)state;
    graph_ranked kw[] = {{"k1", 9}, {"k2", 3}};
    graph_ranked vec[] = {{"v1", 0.8}, {"v2", 0.6}};
    graph_fused *f = NULL;
    size_t n = 0;
    assert_int_equal(graph_score_fuse(kw, 2, vec, 2, 1.0, &f, &n, NULL), 0);
    assert_string_equal(f[0].key, "v1");
    assert_float_equal(f[0].score, 1.0, 1e-12);
    assert_float_equal(f[3].score, 0.0, 1e-15); /* keyword-only hits weigh nothing */
    eg_free(f);
    assert_int_equal(graph_score_fuse(kw, 2, vec, 2, 0.0, &f, &n, NULL), 0);
    assert_string_equal(f[0].key, "k1");
    assert_string_equal(f[1].key, "k2");
    assert_float_equal(f[1].score, 1.0 / 3, 1e-12);
    eg_free(f);
    /* Out of range and NaN weights are clamped / defaulted, never spread. */
    assert_int_equal(graph_score_fuse(kw, 2, vec, 2, 7.0, &f, &n, NULL), 0);
    assert_string_equal(f[0].key, "v1");
    eg_free(f);
    assert_int_equal(graph_score_fuse(kw, 2, vec, 2, NAN, &f, &n, NULL), 0);
    assert_float_equal(f[0].score, 1.0 - GRAPH_SEMANTIC_WEIGHT, 1e-12);
    eg_free(f);
}

/* The spec's scenario: at the default weight (0.35: a lead holds while
 * (1 - w)(1 - next / best) > w), a keyword score three times the next
 * one's keeps first place even when the vector leg puts it last. */
static void test_graph_pure__fuse_clear_keyword_winner(void **state)
{
    (void)state;
    graph_ranked kw[] = {{"a", 9.0}, {"b", 3.0}, {"c", 2.5}};
    graph_ranked vec[] = {{"b", 0.9}, {"c", 0.8}, {"a", 0.7}};
    graph_fused *f = NULL;
    size_t n = 0;
    assert_int_equal(graph_score_fuse(kw, 3, vec, 3, GRAPH_SEMANTIC_WEIGHT, &f, &n, NULL), 0);
    assert_string_equal(f[0].key, "a");
    assert_float_equal(f[0].score, 1.0 - GRAPH_SEMANTIC_WEIGHT, 1e-12);
    assert_string_equal(f[1].key, "b");
    eg_free(f);
}

static void test_graph_pure__fuse_flat_and_odd_scores(void **state)
{
    (void)state;
    /* Substring matches score 0 and a lone vector candidate has no spread:
     * each such hit counts as its leg's best. */
    graph_ranked kw[] = {{"a", 0.0}, {"b", 0.0}};
    graph_ranked vec[] = {{"b", 0.42}};
    graph_fused *f = NULL;
    size_t n = 0;
    assert_int_equal(graph_score_fuse(kw, 2, vec, 1, 0.25, &f, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].key, "b");
    assert_float_equal(f[0].score, 1.0, 1e-12);
    assert_float_equal(f[1].score, 0.75, 1e-12);
    eg_free(f);
    /* Non-finite scores count as 0 and never poison the others. */
    graph_ranked k2[] = {{"x", INFINITY}, {"y", 2.0}, {"z", NAN}};
    assert_int_equal(graph_score_fuse(k2, 3, NULL, 0, 0.0, &f, &n, NULL), 0);
    assert_string_equal(f[0].key, "y");
    assert_float_equal(f[0].score, 1.0, 1e-12);
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(f[i].score));
    eg_free(f);
}

static void test_graph_pure__fuse_duplicates_and_empty(void **state)
{
    (void)state;
    graph_ranked kw[] = {{"a", 1}, {"a", 0.5}, {"b", 0.2}};
    graph_fused *f = NULL;
    size_t n = 0;
    assert_int_equal(graph_score_fuse(kw, 3, NULL, 0, 0.5, &f, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(f[1].keyword_rank, 2); /* b is rank 2, not 3 */
    eg_free(f);
    assert_int_equal(graph_score_fuse(NULL, 0, NULL, 0, 0.5, &f, &n, NULL), 0);
    assert_int_equal(n, 0);
    eg_free(f);
    assert_int_equal(graph_score_fuse(NULL, 2, NULL, 0, 0.5, &f, &n, NULL), EG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_pure__identifier),
        cmocka_unit_test(test_graph_pure__lucene_escape_all_specials),
        cmocka_unit_test(test_graph_pure__lucene_phrase),
        cmocka_unit_test(test_graph_pure__lucene_terms),
        cmocka_unit_test(test_graph_pure__embedding_text_and_hash),
        cmocka_unit_test(test_graph_pure__observation_text_and_hash),
        cmocka_unit_test(test_graph_pure__decay),
        cmocka_unit_test(test_graph_pure__fuse_basic),
        cmocka_unit_test(test_graph_pure__fuse_weight),
        cmocka_unit_test(test_graph_pure__fuse_clear_keyword_winner),
        cmocka_unit_test(test_graph_pure__fuse_flat_and_odd_scores),
        cmocka_unit_test(test_graph_pure__fuse_duplicates_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
