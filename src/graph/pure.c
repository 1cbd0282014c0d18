/*
 * pure.c - the graph's pure functions: identifier check, Lucene escaping,
 * embedding text and content hash, decay, score fusion.
 *
 * They hold no state and touch no database, so they are unit-tested exhaustively
 * (tests/unit/graph/test_graph_pure.c) and the store builds on them.
 */
#include "graph/graph.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/sha256.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool graph_identifier_valid(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char ch = *p;
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool digit = ch >= '0' && ch <= '9';
        if (!(alpha || (digit && p != s)))
            return false;
    }
    return n <= 128;
}

static bool lucene_special(char ch)
{
    return ch != '\0' && strchr("+-&|!(){}[]^\"~*?:\\/", ch) != NULL;
}

int graph_lucene_escape(const char *in, char **out, eg_error *err)
{
    *out = NULL;
    if (in == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "lucene escape: NULL input");
    size_t n = strlen(in);
    size_t cap;
    if (eg_mul_size(&cap, n, 2) != 0 || eg_add_size(&cap, cap, 1) != 0)
        return eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "lucene escape: input too large");
    char *o = eg_malloc(cap);
    if (o == NULL)
        return eg_error_oom(err);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (lucene_special(in[i]))
            o[j++] = '\\';
        o[j++] = in[i];
    }
    o[j] = '\0';
    *out = o;
    return 0;
}

/*
 * "Indexable" approximates what the standard analyzer keeps: any letter or
 * digit, and any non-ASCII byte (UTF-8 letters, CJK, emoji).  A phrase made
 * only of punctuation would analyse to nothing and Lucene would reject or
 * match nothing, so we skip the full-text leg then.
 */
static bool has_indexable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
            (*p >= 'A' && *p <= 'Z'))
            return true;
    }
    return false;
}

int graph_lucene_phrase(const char *in, char **out, eg_error *err)
{
    *out = NULL;
    if (in == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "lucene phrase: NULL input");
    if (!has_indexable(in))
        return 0;
    char *esc = NULL;
    int rc = graph_lucene_escape(in, &esc, err);
    if (rc != 0)
        return rc;
    eg_buf b = EG_BUF_INIT(SIZE_MAX / 2);
    if (eg_buf_putc(&b, '"') || eg_buf_puts(&b, esc) || eg_buf_putc(&b, '"')) {
        eg_free(esc);
        eg_buf_free(&b);
        return eg_error_oom(err);
    }
    eg_free(esc);
    *out = eg_buf_detach(&b, NULL);
    if (*out == NULL) {
        eg_buf_free(&b);
        return eg_error_oom(err);
    }
    return 0;
}

/*
 * English function words dropped from a term query: Neo4j's default
 * analyzer indexes them ("standard-no-stop-words"), so a question's "what",
 * "did" and "the" would otherwise match nearly every text and drown the
 * words that carry meaning.  A short, ordinary list: no tuning to any data.
 */
static const char *const STOP_WORDS[] = {
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "during", "each",
    "few", "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "of",
    "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", NULL};

static bool stop_word(const char *w, size_t n)
{
    for (const char *const *s = STOP_WORDS; *s; s++)
        if (strlen(*s) == n && memcmp(*s, w, n) == 0)
            return true;
    return false;
}

/* Word characters as the standard analyzer sees them, roughly: ASCII
 * letters and digits and every non-ASCII byte (UTF-8 letters, CJK). */
static bool term_char(unsigned char ch)
{
    return ch >= 0x80 || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

int graph_lucene_terms(const char *in, char **out, eg_error *err)
{
    *out = NULL;
    if (in == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "lucene terms: NULL input");
    eg_buf b = EG_BUF_INIT(SIZE_MAX / 2);
    size_t nterms = 0;
    const unsigned char *p = (const unsigned char *)in;
    char word[GRAPH_TERM_MAX_BYTES + 1];
    while (*p && nterms < GRAPH_MAX_QUERY_TERMS) {
        while (*p && !term_char(*p))
            p++;
        size_t n = 0, full = 0;
        bool ascii = true;
        while (*p && term_char(*p)) {
            if (n < GRAPH_TERM_MAX_BYTES)
                word[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
            ascii &= *p < 0x80;
            full++;
            p++;
        }
        /* A word cut at the byte limit ends on a character boundary. */
        if (full > n) {
            size_t start = n;
            while (start > 0 && ((unsigned char)word[start - 1] & 0xC0) == 0x80)
                start--;
            if (start > 0 && (unsigned char)word[start - 1] >= 0xC0) {
                unsigned char lead = (unsigned char)word[start - 1];
                size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
                if (n - (start - 1) < need)
                    n = start - 1;
            }
        }
        if (n == 0 || (ascii && stop_word(word, n)))
            continue;
        word[n] = '\0';
        /* Each term once: a repeated word would only weigh itself up. */
        bool dup = false;
        for (const char *q = b.ptr; q && *q && !dup;) {
            const char *sp = strstr(q, " OR ");
            size_t len = sp ? (size_t)(sp - q) : strlen(q);
            dup = len == n && memcmp(q, word, n) == 0;
            q = sp ? sp + 4 : q + len;
        }
        if (dup)
            continue;
        /* Terms hold only letters and digits; Lucene's operators are upper
         * case and the words are lower-cased, so nothing needs escaping. */
        if ((nterms && eg_buf_puts(&b, " OR ")) || eg_buf_append(&b, word, n)) {
            eg_buf_free(&b);
            return eg_error_oom(err);
        }
        nterms++;
    }
    if (nterms == 0) {
        eg_buf_free(&b);
        return 0;
    }
    *out = eg_buf_detach(&b, NULL);
    if (*out == NULL) {
        eg_buf_free(&b);
        return eg_error_oom(err);
    }
    return 0;
}

/* Hand over the text built in b (rc: the building's status) with its hex
 * sha256: the one ending of both embedding texts.  b is consumed. */
static int text_and_hash(eg_buf *b, int rc, char **text_out, char hash_out[65], eg_error *err)
{
    size_t len = 0;
    char *text = rc == 0 ? eg_buf_detach(b, &len) : NULL;
    if (text == NULL) {
        eg_buf_free(b);
        return eg_error_oom(err);
    }
    int hrc = eg_sha256_hex(text, len, hash_out);
    if (hrc) {
        eg_free(text);
        return hrc == EG_ENOMEM ? eg_error_oom(err) : eg_error_set(err, hrc, EG_CLASS_NONE, "sha256 failed");
    }
    *text_out = text;
    return 0;
}

int graph_embedding_text(const char *name, const char *entity_type, const char *const *obs,
                         size_t nobs, char **text_out, char hash_out[65], eg_error *err)
{
    *text_out = NULL;
    if (name == NULL || entity_type == NULL || (nobs > 0 && obs == NULL))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "embedding text: missing field");
    eg_buf b = EG_BUF_INIT(SIZE_MAX / 2);
    int rc = 0;
    rc |= eg_buf_puts(&b, "Name: ");
    rc |= eg_buf_puts(&b, name);
    rc |= eg_buf_puts(&b, "\nType: ");
    rc |= eg_buf_puts(&b, entity_type);
    rc |= eg_buf_puts(&b, "\nObservations:");
    if (nobs == 0)
        rc |= eg_buf_puts(&b, "\n(No observations)");
    for (size_t i = 0; i < nobs && rc == 0; i++) {
        rc |= eg_buf_puts(&b, "\n- ");
        rc |= eg_buf_puts(&b, obs[i] ? obs[i] : "");
    }
    return text_and_hash(&b, rc, text_out, hash_out, err);
}

int graph_observation_text(const char *name, const char *entity_type, const char *obs, char **text_out,
                           char hash_out[65], eg_error *err)
{
    *text_out = NULL;
    if (name == NULL || entity_type == NULL || obs == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "observation text: missing field");
    eg_buf b = EG_BUF_INIT(SIZE_MAX / 2);
    int rc = eg_buf_puts(&b, name);
    rc |= eg_buf_puts(&b, " (");
    rc |= eg_buf_puts(&b, entity_type);
    rc |= eg_buf_puts(&b, "): ");
    rc |= eg_buf_puts(&b, obs);
    return text_and_hash(&b, rc, text_out, hash_out, err);
}

double graph_decay(double confidence, double age_ms, double half_life_ms, double floor_)
{
    if (isnan(confidence))
        confidence = 1.0;
    if (confidence > 1.0)
        confidence = 1.0;
    if (confidence < 0.0)
        confidence = 0.0;
    if (isnan(floor_) || floor_ < 0.0)
        floor_ = 0.0;
    if (floor_ > 1.0)
        floor_ = 1.0;
    double v = confidence;
    if (half_life_ms > 0.0 && age_ms > 0.0 && !isnan(age_ms))
        v = confidence * pow(0.5, age_ms / half_life_ms);
    if (v < floor_)
        v = floor_;
    return v;
}

/* ---- score fusion ---- */

static int fused_cmp(const void *a, const void *b)
{
    const graph_fused *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    /* Missing ranks sort last (0 means absent). */
    int xv = x->vector_rank ? x->vector_rank : 1 << 30, yv = y->vector_rank ? y->vector_rank : 1 << 30;
    if (xv != yv)
        return xv < yv ? -1 : 1;
    int xk = x->keyword_rank ? x->keyword_rank : 1 << 30, yk = y->keyword_rank ? y->keyword_rank : 1 << 30;
    if (xk != yk)
        return xk < yk ? -1 : 1;
    return strcmp(x->key, y->key);
}

static graph_fused *fused_find(graph_fused *arr, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(arr[i].key, key) == 0)
            return &arr[i];
    return NULL;
}

/* A score that can be compared: NaN and infinities count as nothing. */
static double finite_or_zero(double x)
{
    return isfinite(x) ? x : 0.0;
}

int graph_score_fuse(const graph_ranked *keyword, size_t nkw, const graph_ranked *vector, size_t nvec,
                     double semantic_weight, graph_fused **out, size_t *nout, eg_error *err)
{
    *out = NULL;
    *nout = 0;
    if ((nkw && keyword == NULL) || (nvec && vector == NULL))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "fuse: NULL list");
    if (isnan(semantic_weight))
        semantic_weight = GRAPH_SEMANTIC_WEIGHT;
    if (semantic_weight < 0.0)
        semantic_weight = 0.0;
    if (semantic_weight > 1.0)
        semantic_weight = 1.0;
    size_t cap;
    if (eg_add_size(&cap, nkw, nvec) != 0)
        return eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "fuse: too many");
    graph_fused *arr = eg_calloc(cap ? cap : 1, sizeof *arr);
    if (arr == NULL)
        return eg_error_oom(err);
    size_t n = 0;
    /* Lists are small (<= a few hundred), so a linear lookup is fine. */
    int rank = 0;
    double vmin = INFINITY, vmax = -INFINITY, kmax = 0.0;
    for (size_t i = 0; i < nvec; i++) {
        if (vector[i].key == NULL || fused_find(arr, n, vector[i].key))
            continue;
        graph_fused *f = &arr[n++];
        f->key = vector[i].key;
        f->vector_rank = ++rank;
        f->vector_score = finite_or_zero(vector[i].score);
        vmin = fmin(vmin, f->vector_score);
        vmax = fmax(vmax, f->vector_score);
    }
    rank = 0;
    for (size_t i = 0; i < nkw; i++) {
        if (keyword[i].key == NULL)
            continue;
        graph_fused *f = fused_find(arr, n, keyword[i].key);
        if (f != NULL && f->keyword_rank != 0)
            continue; /* duplicate inside the keyword list */
        if (f == NULL) {
            f = &arr[n++];
            f->key = keyword[i].key;
        }
        f->keyword_rank = ++rank;
        f->keyword_score = finite_or_zero(keyword[i].score);
        kmax = fmax(kmax, f->keyword_score);
    }
    /* Keyword scores (BM25, >= 0) over the best one: a relevance score's
     * floor is 0, so the best hit is 1 and the others keep their distance
     * to it.  Similarities over the range of the vector candidates: they sit
     * in a narrow band that depends on the model, and only their spread
     * among the candidates says anything.  A leg whose scores are all equal
     * (substring matches score 0, one candidate) gives each hit 1. */
    for (size_t i = 0; i < n; i++) {
        graph_fused *f = &arr[i];
        double kn = kmax > 0.0 ? f->keyword_score / kmax : 1.0;
        double vn = vmax > vmin ? (f->vector_score - vmin) / (vmax - vmin) : 1.0;
        f->score = (f->keyword_rank ? (1.0 - semantic_weight) * kn : 0.0) +
                   (f->vector_rank ? semantic_weight * vn : 0.0);
    }
    qsort(arr, n, sizeof *arr, fused_cmp);
    *out = arr;
    *nout = n;
    return 0;
}
