/*
 * sha256.c - SHA-256 over OpenSSL's EVP interface (see sha256.h).
 */
#include "core/sha256.h"

#include "core/alloc.h"
#include "core/err.h"

#include <openssl/evp.h>

struct eg_sha256 {
    EVP_MD_CTX *ctx;
    int rc; /* the first failure, latched until final */
};

int eg_sha256_new(eg_sha256 **out)
{
    *out = NULL;
    eg_sha256 *h = eg_calloc(1, sizeof *h);
    if (!h)
        return EG_ENOMEM;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx) {
        eg_free(h);
        return EG_ENOMEM;
    }
    if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
        h->rc = EG_EINTERNAL;
    *out = h;
    return 0;
}

void eg_sha256_update(eg_sha256 *h, const void *data, size_t n)
{
    if (h->rc == 0 && n > 0 && EVP_DigestUpdate(h->ctx, data, n) != 1)
        h->rc = EG_EINTERNAL;
}

int eg_sha256_final(eg_sha256 *h, unsigned char md[EG_SHA256_LEN])
{
    unsigned int len = 0;
    if (h->rc == 0 && (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != EG_SHA256_LEN))
        h->rc = EG_EINTERNAL;
    return h->rc;
}

int eg_sha256_final_hex(eg_sha256 *h, char hex[EG_SHA256_HEX_SIZE])
{
    unsigned char md[EG_SHA256_LEN];
    int rc = eg_sha256_final(h, md);
    if (rc)
        hex[0] = '\0';
    else
        eg_hex_encode(md, sizeof md, hex);
    return rc;
}

void eg_sha256_free(eg_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    eg_free(h);
}

int eg_sha256_digest(const void *data, size_t n, unsigned char md[EG_SHA256_LEN])
{
    eg_sha256 *h;
    int rc = eg_sha256_new(&h);
    if (rc)
        return rc;
    eg_sha256_update(h, data, n);
    rc = eg_sha256_final(h, md);
    eg_sha256_free(h);
    return rc;
}

int eg_sha256_hex(const void *data, size_t n, char hex[EG_SHA256_HEX_SIZE])
{
    hex[0] = '\0';
    unsigned char md[EG_SHA256_LEN];
    int rc = eg_sha256_digest(data, n, md);
    if (rc == 0)
        eg_hex_encode(md, sizeof md, hex);
    return rc;
}

void eg_hex_encode(const unsigned char *in, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[in[i] >> 4];
        hex[2 * i + 1] = digits[in[i] & 15];
    }
    hex[2 * n] = '\0';
}
