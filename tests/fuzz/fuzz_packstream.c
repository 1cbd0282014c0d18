/*
 * fuzz_packstream.c - libFuzzer target for the PackStream decoder.
 *
 * For arbitrary bytes and both graph layouts (Bolt 4 and 5): decode one
 * value; when that succeeds, convert it to JSON (must not fail: no OOM
 * here), re-encode it with the same layout and check that the re-encoding
 * decodes again to the same bytes once more (encode is a fixed point after
 * one canonicalisation), and encode the JSON back (bolt_ps_json) too.
 */
#include "fuzz.h"
#include "bolt/packstream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void one(const uint8_t *data, size_t size, int major)
{
    bolt_arena *a = bolt_arena_new(4096);
    check(a != NULL);
    const bolt_value *v = NULL;
    size_t used = 0;
    eg_error err;
    int rc = bolt_ps_decode(data, size, a, major, &v, &used, &err);
    if (rc) {
        check(rc < 0 && v == NULL && err.code == rc);
        bolt_arena_free(a);
        return;
    }
    check(v != NULL && used >= 1 && used <= size);

    json_t *j = bolt_value_to_json(v);
    check(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    check(s != NULL);
    free(s);

    eg_buf b1 = EG_BUF_INIT(0), b2 = EG_BUF_INIT(0), b3 = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b1);
    bolt_ps_value_major(&w, v, major);
    check(bolt_ps_writer_error(&w) == 0);

    const bolt_value *v2 = NULL;
    size_t used2 = 0;
    rc = bolt_ps_decode((const uint8_t *)b1.ptr, b1.len, a, major, &v2, &used2, NULL);
    check(rc == 0 && used2 == b1.len);
    bolt_ps_writer_init(&w, &b2);
    bolt_ps_value_major(&w, v2, major);
    check(bolt_ps_writer_error(&w) == 0);
    check(b1.len == b2.len && memcmp(b1.ptr, b2.ptr, b1.len) == 0);

    /* JSON -> PackStream must always be encodable and decodable. */
    bolt_ps_writer_init(&w, &b3);
    bolt_ps_json(&w, j);
    if (bolt_ps_writer_error(&w) == 0) {
        const bolt_value *v3 = NULL;
        rc = bolt_ps_decode((const uint8_t *)b3.ptr, b3.len, a, major, &v3, NULL, NULL);
        check(rc == 0);
    } else {
        /* only the depth limit can stop it (graph values nest deeper as JSON) */
        check(bolt_ps_writer_error(&w) == EG_ETOOBIG);
    }
    json_decref(j);
    eg_buf_free(&b1);
    eg_buf_free(&b2);
    eg_buf_free(&b3);
    bolt_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, 5);
    one(data, size, 4);
    return 0;
}
