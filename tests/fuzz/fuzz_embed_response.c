/*
 * fuzz_embed_response.c - libFuzzer target for what the embedding providers
 * read from the network: the vector decoders (embed_json_vector,
 * embed_b64_vector), the response header lines (Retry-After,
 * retry-after-ms, x-should-retry) and the error classification of a non-2xx
 * answer (embed_http_classify).
 *
 * Input: byte 0 picks the decoder's dimension (1..32); the rest is split at
 * the first NUL into [header lines \n-separated] NUL [body].  The body is
 * decoded as a JSON vector, as base64 float32, and classified with the
 * status from bytes 1-2 (100..599).  Oracles: a decoder that returns 0
 * filled only finite floats; a header never leaves a negative Retry-After
 * other than -1 or one past a day; a classification sets a known kind,
 * returns a negative code, and keeps its message NUL-terminated.
 */
#include "fuzz.h"
#include "embed/provider_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int dims = 1 + data[0] % 32;
    long status = 100 + (long)((data[1] << 8 | data[2]) % 500);
    const char *rest = (const char *)data + 3;
    size_t n = size - 3;
    const char *nul = memchr(rest, '\0', n);
    size_t hlen = nul ? (size_t)(nul - rest) : 0;
    const char *body = nul ? nul + 1 : rest;
    size_t blen = n - (nul ? hlen + 1 : 0);

    float out[32];
    json_t *doc = json_loadb(body, blen, 0, NULL);
    if (doc && embed_json_vector(doc, out, dims) == 0)
        for (int i = 0; i < dims; i++)
            if (!isfinite(out[i]))
                abort();
    json_decref(doc);
    if (blen > 0 && embed_b64_vector(body, blen, out, dims) == 0)
        for (int i = 0; i < dims; i++)
            if (!isfinite(out[i]))
                abort();

    embed_http_reply r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.retry_after_ms = -1;
    r.should_retry = -1;
    for (size_t start = 0, i = 0; i <= hlen; i++) {
        if (i == hlen || rest[i] == '\n') {
            if (i > start)
                embed_http_header_line(&r, rest + start, i - start);
            start = i + 1;
        }
    }
    if (r.retry_after_ms < -1 || r.retry_after_ms > 86400000LL)
        abort();
    if (r.should_retry < -1 || r.should_retry > 1)
        abort();
    eg_buf_init(&r.body, 1u << 20);
    eg_buf_append(&r.body, body, blen);
    embed_status st;
    memset(&st, 0x55, sizeof st);
    int rc = embed_http_classify(&r, &st);
    if (rc >= 0 || st.kind == EMBED_OK || (int)st.kind < 0 || (int)st.kind > EMBED_E_CANCELED)
        abort();
    if (!memchr(st.message, '\0', sizeof st.message) || !memchr(st.code, '\0', sizeof st.code))
        abort();
    if (st.retry_after_ms != r.retry_after_ms)
        abort();
    eg_buf_free(&r.body);
    return 0;
}
