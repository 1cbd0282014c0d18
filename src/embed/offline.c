/*
 * offline.c - the built-in provider: hashed lexical features, no network.
 *
 * Why: a newcomer without an API key should still get sensible semantic
 * search.  Memento's fallback produced hash-seeded random vectors, so every
 * query returned noise.  Here a text becomes the L2-normalised sum of signed,
 * hashed features (the "hashing trick"):
 *
 *   word unigrams           weight 1.0   "coffee"
 *   word bigrams            weight 0.5   "espresso machine"
 *   character trigrams      weight 0.25  "^co" "cof" "off" ... "ee$"
 *     of each word (with boundary marks), so "programmer" and
 *     "programming" share most features.
 *
 * Words are ASCII-lowercased runs of letters/digits (UTF-8 bytes count as
 * letters); a short stop list drops function words and the labels of the
 * entity text ("name", "type", "observations"), which would otherwise make
 * every entity look alike.  Feature index = FNV-1a-64 % dims, sign from a
 * high bit of the same hash.  Deterministic across machines and runs.
 */
#include "embed/provider_impl.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

static void add_feature(float *v, int dims, char tag, const char *s, size_t n, float w)
{
    uint64_t h = fnv1a(FNV_BASIS, &tag, 1);
    h = fnv1a(h, s, n);
    /* final avalanche so that similar strings spread over buckets */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    size_t idx = (size_t)(h % (uint64_t)dims);
    v[idx] += (h >> 63) ? -w : w;
}

static const char *const stop[] = {
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "with", "name", "type",
    "observations", "no", NULL};

static bool is_stop(const char *w, size_t n)
{
    for (const char *const *s = stop; *s; s++)
        if (strlen(*s) == n && memcmp(*s, w, n) == 0)
            return true;
    return false;
}

static bool is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

#define MAX_WORD 64

void embed_offline_vector(const char *text, int dims, float *out)
{
    memset(out, 0, (size_t)dims * sizeof *out);
    char prev[MAX_WORD];
    size_t prev_n = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        while (*s && !is_word_byte(*s))
            s++;
        if (!*s)
            break;
        char w[MAX_WORD + 2];
        size_t n = 0;
        while (*s && is_word_byte(*s)) {
            if (n < MAX_WORD)
                w[n++] = (char)(*s < 0x80 ? tolower(*s) : *s);
            s++;
        }
        if (is_stop(w, n))
            continue;
        add_feature(out, dims, 'w', w, n, 1.0f);
        if (prev_n) {
            char bg[2 * MAX_WORD + 1];
            memcpy(bg, prev, prev_n);
            bg[prev_n] = ' ';
            memcpy(bg + prev_n + 1, w, n);
            add_feature(out, dims, 'b', bg, prev_n + 1 + n, 0.5f);
        }
        memcpy(prev, w, n);
        prev_n = n;
        char m[MAX_WORD + 2];
        m[0] = '^';
        memcpy(m + 1, w, n);
        m[n + 1] = '$';
        for (size_t i = 0; i + 3 <= n + 2; i++)
            add_feature(out, dims, 't', m + i, 3, 0.25f);
    }
    double sq = 0;
    for (int i = 0; i < dims; i++)
        sq += (double)out[i] * out[i];
    if (sq <= 0) {
        /* Nothing but stop words: a fixed unit vector keeps cosine defined. */
        out[0] = 1.0f;
        return;
    }
    embed_l2_normalize(out, dims);
}

static int offline_request(embed_provider *p, const char *const *texts, size_t n, float *out,
                           embed_status *st, long *tokens_out)
{
    (void)st;
    long tok = 0;
    for (size_t i = 0; i < n; i++) {
        embed_offline_vector(texts[i], p->dims, out + i * (size_t)p->dims);
        tok += embed_estimate_tokens(texts[i]);
    }
    if (tokens_out)
        *tokens_out = tok;
    return 0;
}

int embed_offline_init(embed_provider *p, eg_error *err)
{
    (void)err;
    if (p->dims == 0)
        p->dims = 1536;
    p->request = offline_request;
    return 0;
}
