/*
 * wordpiece.c - the BERT uncased tokenizer.  See wordpiece.h for the steps
 * and wordpiece_int.h for the per-character tables that implement the
 * normalizer (they were derived from the reference tokenizer, so the two
 * agree character by character).
 *
 * One pass over the input: match the special tokens literally, decode UTF-8, normalize each code point through
 * the tables into the current word's buffer, and at each word boundary
 * (space or punctuation) run WordPiece on the word.  Scanning stops once the
 * output is full, so a megabyte of text costs no more than max_tokens
 * pieces of it.
 *
 * The vocabulary is an open-addressing hash table over a string pool;
 * lookups of candidate pieces never allocate.
 */
#include "embed/wordpiece.h"

#include "core/alloc.h"
#include "embed/wordpiece_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define WP_MAX_WORD_CHARS 100  /* reference default: a longer word is [UNK] */
#define WP_MAX_TOKEN_BYTES 200 /* longest vocabulary entry accepted */

struct embed_wordpiece {
    char *pool;                /* NUL-separated tokens */
    uint32_t *off;             /* id -> offset in pool */
    uint16_t *len;             /* id -> byte length */
    size_t n;
    uint32_t *slots;           /* hash table: id + 1, 0 = empty */
    size_t mask;
    int32_t cls, sep, unk;
    int32_t special[5];        /* ids of SPECIAL[], -1 when absent */
    char prefix[8];            /* continuing-subword prefix, "##" */
    size_t prefix_len;
    size_t max_word_chars;
};

/*
 * The special tokens.  The reference matches them literally in the raw text
 * (tokenizer.json's added tokens, "normalized": false) before anything else,
 * so "[SEP]" typed in a memory is the separator token, not five pieces.
 */
static const char *const SPECIAL[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

/* ---- vocabulary --------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n, const void *q, size_t m)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *a = p, *b = q;
    for (size_t i = 0; i < n; i++)
        h = (h ^ a[i]) * 0x100000001b3ULL;
    for (size_t i = 0; i < m; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/* The id of prefix||s (prefix may be empty), or -1. */
static int32_t vocab_find(const embed_wordpiece *wp, const char *pre, size_t pn, const char *s, size_t n)
{
    for (size_t i = hash_bytes(pre, pn, s, n) & wp->mask;; i = (i + 1) & wp->mask) {
        uint32_t v = wp->slots[i];
        if (!v)
            return -1;
        uint32_t id = v - 1;
        const char *t = wp->pool + wp->off[id];
        if (wp->len[id] == pn + n && memcmp(t, pre, pn) == 0 && memcmp(t + pn, s, n) == 0)
            return (int32_t)id;
    }
}

/* Add token text[0..n) with id (ids are dense, 0..count-1). */
static int vocab_set(embed_wordpiece *wp, size_t id, const char *text, size_t n, size_t *pool_used)
{
    if (n == 0 || n > WP_MAX_TOKEN_BYTES)
        return EG_EINVAL;
    wp->off[id] = (uint32_t)*pool_used;
    wp->len[id] = (uint16_t)n;
    memcpy(wp->pool + *pool_used, text, n);
    wp->pool[*pool_used + n] = '\0';
    *pool_used += n + 1;
    return 0;
}

static int vocab_index(embed_wordpiece *wp, eg_error *err)
{
    size_t cap = 1;
    while (cap < wp->n * 2)
        cap <<= 1;
    if (!(wp->slots = eg_calloc(cap, sizeof *wp->slots)))
        return eg_error_oom(err);
    wp->mask = cap - 1;
    for (size_t id = 0; id < wp->n; id++) {
        const char *t = wp->pool + wp->off[id];
        if (vocab_find(wp, "", 0, t, wp->len[id]) >= 0)
            continue; /* a duplicate line: the first id wins, as in the reference */
        size_t i = hash_bytes("", 0, t, wp->len[id]) & wp->mask;
        while (wp->slots[i])
            i = (i + 1) & wp->mask;
        wp->slots[i] = (uint32_t)id + 1;
    }
    return 0;
}

static int vocab_alloc(embed_wordpiece *wp, size_t n, size_t pool_bytes, eg_error *err)
{
    wp->n = n;
    wp->pool = eg_malloc(pool_bytes + 1);
    wp->off = eg_calloc(n, sizeof *wp->off);
    wp->len = eg_calloc(n, sizeof *wp->len);
    if (!wp->pool || !wp->off || !wp->len)
        return eg_error_oom(err);
    return 0;
}

/* vocab.txt: one token per line, id = line number. */
static int load_txt(embed_wordpiece *wp, const char *buf, size_t size, const char *path, eg_error *err)
{
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += buf[i] == '\n';
    if (size && buf[size - 1] != '\n')
        lines++;
    int rc = vocab_alloc(wp, lines, size + lines, err);
    if (rc)
        return rc;
    size_t used = 0, id = 0, start = 0;
    for (size_t i = 0; i <= size && id < lines; i++) {
        if (i < size && buf[i] != '\n')
            continue;
        size_t n = i - start;
        if (n && buf[start + n - 1] == '\r')
            n--;
        if (vocab_set(wp, id++, buf + start, n, &used) != 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s: line %zu is not a valid token", path, id);
        start = i + 1;
    }
    return 0;
}

/* tokenizer.json: model.vocab is an object token -> id. */
static int load_json(embed_wordpiece *wp, const char *buf, size_t size, const char *path, eg_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(buf, size, 0, &jerr);
    json_t *model = json_object_get(doc, "model");
    json_t *vocab = json_object_get(model, "vocab");
    int rc = 0;
    if (!json_is_object(vocab) || json_object_size(vocab) == 0) {
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s: no model.vocab object", path);
        goto out;
    }
    const char *pre = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    if (pre && strlen(pre) < sizeof wp->prefix) {
        snprintf(wp->prefix, sizeof wp->prefix, "%s", pre);
        wp->prefix_len = strlen(pre);
    }
    json_t *mx = json_object_get(model, "max_input_chars_per_word");
    if (json_is_integer(mx) && json_integer_value(mx) > 0 && json_integer_value(mx) <= 10000)
        wp->max_word_chars = (size_t)json_integer_value(mx);
    size_t n = json_object_size(vocab), bytes = 0;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= n) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s: vocabulary ids are not 0..%zu", path, n - 1);
            goto out;
        }
        bytes += strlen(key) + 1;
    }
    if ((rc = vocab_alloc(wp, n, bytes, err)) != 0)
        goto out;
    size_t used = 0;
    json_object_foreach(vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        if (wp->len[id] || vocab_set(wp, id, key, strlen(key), &used) != 0) {
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s: bad or repeated vocabulary id %zu", path, id);
            goto out;
        }
    }
out:
    json_decref(doc);
    return rc;
}

static int read_file(const char *path, char **out, size_t *size, eg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return eg_error_set(err, errno == ENOENT ? EG_ENOTFOUND : EG_EIO, EG_CLASS_CLIENT,
                            "vocabulary %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap > (256u << 20)) {
                fclose(f);
                eg_free(buf);
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "vocabulary %s is too large", path);
            }
            cap = cap ? cap * 2 : 1u << 20;
            char *nb = eg_realloc(buf, cap);
            if (!nb) {
                fclose(f);
                eg_free(buf);
                return eg_error_oom(err);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        eg_free(buf);
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "cannot read vocabulary %s", path);
    }
    *out = buf;
    *size = n;
    return 0;
}

int embed_wordpiece_load(embed_wordpiece **out, const char *path, eg_error *err)
{
    *out = NULL;
    char *buf = NULL;
    size_t size = 0;
    int rc = read_file(path, &buf, &size, err);
    if (rc)
        return rc;
    embed_wordpiece *wp = eg_calloc(1, sizeof *wp);
    if (!wp) {
        eg_free(buf);
        return eg_error_oom(err);
    }
    memcpy(wp->prefix, "##", 3);
    wp->prefix_len = 2;
    wp->max_word_chars = WP_MAX_WORD_CHARS;
    size_t i = 0;
    while (i < size && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
        i++;
    rc = i < size && buf[i] == '{' ? load_json(wp, buf, size, path, err) : load_txt(wp, buf, size, path, err);
    eg_free(buf);
    if (rc == 0 && wp->n == 0)
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "vocabulary %s is empty", path);
    if (rc == 0)
        rc = vocab_index(wp, err);
    if (rc == 0) {
        wp->cls = vocab_find(wp, "", 0, "[CLS]", 5);
        wp->sep = vocab_find(wp, "", 0, "[SEP]", 5);
        wp->unk = vocab_find(wp, "", 0, "[UNK]", 5);
        for (int k = 0; k < 5; k++)
            wp->special[k] = vocab_find(wp, "", 0, SPECIAL[k], strlen(SPECIAL[k]));
        if (wp->cls < 0 || wp->sep < 0 || wp->unk < 0 || wp->special[0] < 0)
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "vocabulary %s lacks [CLS], [SEP], [UNK] or [PAD]",
                              path);
    }
    if (rc) {
        embed_wordpiece_free(wp);
        return rc;
    }
    *out = wp;
    return 0;
}

void embed_wordpiece_free(embed_wordpiece *wp)
{
    if (!wp)
        return;
    eg_free(wp->pool);
    eg_free(wp->off);
    eg_free(wp->len);
    eg_free(wp->slots);
    eg_free(wp);
}

size_t embed_wordpiece_vocab_size(const embed_wordpiece *wp) { return wp->n; }

/* ---- characters ----------------------------------------------------------- */

static bool in_ranges(const embed_wp_range *r, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static const embed_wp_map *find_map(uint32_t c)
{
    size_t lo = 0, hi = embed_wp_mapped_len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < embed_wp_mapped[mid].cp)
            hi = mid;
        else if (c > embed_wp_mapped[mid].cp)
            lo = mid + 1;
        else
            return &embed_wp_mapped[mid];
    }
    return NULL;
}

/* Decode one code point at s[*i] (< n); invalid sequences give U+FFFD and advance one byte. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    size_t need;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        cp = c & 0x1F;
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        cp = c & 0x0F;
        need = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
        cp = c & 0x07;
        need = 3;
    } else {
        (*i)++;
        return 0xFFFD;
    }
    if (*i + need >= n) {
        (*i)++;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= need; k++) {
        unsigned char d = s[*i + k];
        if ((d & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = cp << 6 | (d & 0x3F);
    }
    /* overlong, surrogate or out of range */
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xFFFD;
    }
    *i += need + 1;
    return cp;
}

static size_t utf8_put(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---- encoding ------------------------------------------------------------- */

/*
 * The word being built: at most WORD_BYTES bytes are kept, enough for
 * WP_MAX_WORD_CHARS characters of 4 bytes; past that only the character
 * count grows (the word will be [UNK] anyway).
 */
#define WORD_BYTES (4 * (WP_MAX_WORD_CHARS + 1))

typedef struct enc {
    const embed_wordpiece *wp;
    int32_t *ids;
    size_t max, n;             /* ids written; max excludes the final [SEP] */
    bool full;                 /* a piece did not fit: truncated */
    char *word;                /* heap: WORD_BYTES */
    size_t wbytes, wchars;
    size_t cpos[WP_MAX_WORD_CHARS + 1]; /* byte offset of each char (only up to max_word_chars) */
} enc;

static void emit(enc *e, int32_t id)
{
    if (e->n < e->max)
        e->ids[e->n++] = id;
    else
        e->full = true;
}

/* WordPiece on the current word: greedy longest match first. */
static void flush_word(enc *e)
{
    const embed_wordpiece *wp = e->wp;
    if (e->wchars == 0)
        return;
    if (e->wchars > wp->max_word_chars || e->wchars > WP_MAX_WORD_CHARS) {
        emit(e, wp->unk);
        e->wbytes = e->wchars = 0;
        return;
    }
    e->cpos[e->wchars] = e->wbytes;
    int32_t pieces[WP_MAX_WORD_CHARS];
    size_t np = 0, start = 0;
    bool bad = false;
    while (start < e->wchars) {
        int32_t id = -1;
        size_t end = e->wchars;
        for (; end > start; end--) {
            const char *s = e->word + e->cpos[start];
            size_t len = e->cpos[end] - e->cpos[start];
            id = start > 0 ? vocab_find(wp, wp->prefix, wp->prefix_len, s, len) : vocab_find(wp, "", 0, s, len);
            if (id >= 0)
                break;
        }
        if (id < 0) {
            bad = true;
            break;
        }
        pieces[np++] = id;
        start = end;
    }
    if (bad)
        emit(e, wp->unk);
    else
        for (size_t i = 0; i < np; i++)
            emit(e, pieces[i]);
    e->wbytes = e->wchars = 0;
}

/* Append one normalized code point to the current word, or end the word. */
static void push_cp(enc *e, uint32_t c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        flush_word(e);
        return;
    }
    if (in_ranges(embed_wp_punct, embed_wp_punct_len, c)) {
        flush_word(e);
        char b[4];
        size_t k = utf8_put(c, b);
        memcpy(e->word, b, k);
        e->wbytes = k;
        e->wchars = 1;
        e->cpos[0] = 0;
        flush_word(e);
        return;
    }
    if (e->wchars <= WP_MAX_WORD_CHARS)
        e->cpos[e->wchars] = e->wbytes;
    if (e->wbytes + 4 <= WORD_BYTES)
        e->wbytes += utf8_put(c, e->word + e->wbytes);
    e->wchars++;
}

/* Normalize one input code point (the generated tables) and push the result. */
static void push_input(enc *e, uint32_t c)
{
    if (c == 0xFFFD || in_ranges(embed_wp_dropped, embed_wp_dropped_len, c))
        return;
    if (in_ranges(embed_wp_spaces, embed_wp_spaces_len, c)) {
        push_cp(e, ' ');
        return;
    }
    if (in_ranges(embed_wp_cjk, embed_wp_cjk_len, c)) {
        push_cp(e, ' ');
        push_cp(e, c);
        push_cp(e, ' ');
        return;
    }
    if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllable: canonical decomposition */
        uint32_t s = c - 0xAC00;
        push_cp(e, 0x1100 + s / 588);
        push_cp(e, 0x1161 + (s % 588) / 28);
        if (s % 28)
            push_cp(e, 0x11A7 + s % 28);
        return;
    }
    const embed_wp_map *m = find_map(c);
    if (!m) {
        push_cp(e, c);
        return;
    }
    const unsigned char *p = embed_wp_pool + m->off;
    size_t i = 0;
    while (i < m->len)
        push_cp(e, utf8_next(p, m->len, &i));
}

int embed_wordpiece_encode(const embed_wordpiece *wp, const char *text, size_t len, int32_t *ids,
                           size_t max_tokens, size_t *n_out, bool *truncated, eg_error *err)
{
    *n_out = 0;
    if (truncated)
        *truncated = false;
    if (max_tokens < 2)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "max_tokens must be at least 2");
    enc *e = eg_calloc(1, sizeof *e);
    char *word = eg_malloc(WORD_BYTES);
    if (!e || !word) {
        eg_free(e);
        eg_free(word);
        return eg_error_oom(err);
    }
    e->wp = wp;
    e->ids = ids;
    e->word = word;
    e->max = max_tokens - 1; /* room for [SEP] */
    emit(e, wp->cls);
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len && !e->full) {
        if (s[i] == '[') {
            int k = 0;
            for (; k < 5; k++) {
                size_t sl = strlen(SPECIAL[k]);
                if (wp->special[k] >= 0 && len - i >= sl && memcmp(s + i, SPECIAL[k], sl) == 0)
                    break;
            }
            if (k < 5) {
                flush_word(e);
                emit(e, wp->special[k]);
                i += strlen(SPECIAL[k]);
                continue;
            }
        }
        push_input(e, utf8_next(s, len, &i));
    }
    if (!e->full)
        flush_word(e);
    ids[e->n++] = wp->sep;
    *n_out = e->n;
    if (truncated)
        *truncated = e->full;
    eg_free(word);
    eg_free(e);
    return 0;
}
