/*
 * access.c - the tokens file (see access.h).
 */
#include "mcp/access.h"

#include "core/alloc.h"
#include "core/sha256.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define NS_MAX_BYTES 256u

struct mcp_grant {
    unsigned char digest[32];  /* SHA-256 of the token */
    char *name;
    char **ns;
    size_t nns;
    bool write;
    const char *default_ns;    /* the access's configured namespace (borrowed) */
};

struct mcp_access {
    mcp_grant *g;
    size_t n;
    char *default_ns;
};

static int digest(const char *s, unsigned char out[EG_SHA256_LEN])
{
    return eg_sha256_digest(s, strlen(s), out) == 0 ? 0 : -1;
}

void mcp_access_free(mcp_access *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        eg_free(a->g[i].name);
        for (size_t k = 0; k < a->g[i].nns; k++)
            eg_free(a->g[i].ns[k]);
        eg_free(a->g[i].ns);
    }
    eg_free(a->g);
    eg_free(a->default_ns);
    eg_free(a);
}

size_t mcp_access_count(const mcp_access *a)
{
    return a ? a->n : 0;
}

/* Fill grant g (index i, for messages) from its JSON object. */
static int parse_grant(mcp_access *a, size_t i, const json_t *o, eg_error *err)
{
    mcp_grant *g = &a->g[i];
    g->default_ns = a->default_ns;
    if (!json_is_object(o))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file: entry %zu is not an object", i + 1);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "token") && strcmp(key, "namespaces") && strcmp(key, "write"))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "tokens file: entry %zu has an unknown key '%.40s' (name, token, namespaces, write)",
                                i + 1, key);
    }
    const char *tok = json_string_value(json_object_get(o, "token"));
    if (!tok || strlen(tok) < MCP_ACCESS_MIN_TOKEN)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "tokens file: entry %zu needs a \"token\" of at least %d characters", i + 1,
                            MCP_ACCESS_MIN_TOKEN);
    for (const char *p = tok; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "tokens file: entry %zu: a token cannot hold spaces or control characters", i + 1);
    if (digest(tok, g->digest) != 0)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "tokens file: SHA-256 failed");
    const json_t *name = json_object_get(o, "name");
    if (name && (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 64))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file: entry %zu: \"name\" must be 1-64 characters",
                            i + 1);
    char buf[32];
    snprintf(buf, sizeof buf, "grant %zu", i + 1);
    if (!(g->name = eg_strdup(name ? json_string_value(name) : buf)))
        return eg_error_oom(err);
    const json_t *w = json_object_get(o, "write");
    if (w && !json_is_boolean(w))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file: entry %zu: \"write\" must be true or false",
                            i + 1);
    g->write = json_is_true(w);
    const json_t *nss = json_object_get(o, "namespaces");
    size_t n = json_array_size(nss);
    if (!json_is_array(nss) || n == 0 || n > MCP_ACCESS_MAX_NAMESPACES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "tokens file: entry %zu (%s) needs \"namespaces\": a list of 1 to %d names", i + 1, g->name,
                            MCP_ACCESS_MAX_NAMESPACES);
    if (!(g->ns = eg_calloc(n, sizeof *g->ns)))
        return eg_error_oom(err);
    for (size_t k = 0; k < n; k++) {
        const char *s = json_string_value(json_array_get(nss, k));
        if (!s || !*s || strlen(s) > NS_MAX_BYTES)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "tokens file: entry %zu (%s): namespace %zu must be a string of 1 to %u bytes", i + 1,
                                g->name, k + 1, NS_MAX_BYTES);
        if (!(g->ns[k] = eg_strdup(s)))
            return eg_error_oom(err);
        g->nns = k + 1;
    }
    return 0;
}

int mcp_access_parse(mcp_access **out, const char *text, const char *default_ns, eg_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loads(text ? text : "", JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file: not JSON (line %d: %s)", je.line, je.text);
    const json_t *list = json_object_get(root, "tokens");
    size_t n = json_array_size(list);
    if (!json_is_object(root) || !json_is_array(list) || n == 0 || n > MCP_ACCESS_MAX_GRANTS) {
        json_decref(root);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "tokens file: expected {\"tokens\": [ ... ]} with 1 to %d entries", MCP_ACCESS_MAX_GRANTS);
    }
    mcp_access *a = eg_calloc(1, sizeof *a);
    int rc = 0;
    if (!a || !(a->g = eg_calloc(n, sizeof *a->g)) || !(a->default_ns = eg_strdup(default_ns ? default_ns : "default")))
        rc = eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        a->n = i + 1;
        rc = parse_grant(a, i, json_array_get(list, i), err);
        /* A token given twice would make its rights depend on file order. */
        for (size_t k = 0; rc == 0 && k < i; k++)
            if (CRYPTO_memcmp(a->g[k].digest, a->g[i].digest, 32) == 0)
                rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                  "tokens file: entries %zu and %zu have the same token", k + 1, i + 1);
    }
    json_decref(root);
    if (rc) {
        mcp_access_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int mcp_access_load(mcp_access **out, const char *path, const char *default_ns, eg_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "tokens file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file %s: not a regular file", path);
    }
    /* Secrets: refuse a file others can read rather than serve with it. */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fclose(f);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "tokens file %s: group or others may access it (mode %03o); chmod 600 it", path,
                            (unsigned)(st.st_mode & 0777));
    }
    if (st.st_size > 4 * 1024 * 1024) {
        fclose(f);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "tokens file %s: larger than 4 MiB", path);
    }
    size_t n = (size_t)st.st_size;
    char *text = eg_malloc(n + 1);
    if (!text) {
        fclose(f);
        return eg_error_oom(err);
    }
    size_t got = fread(text, 1, n, f);
    fclose(f);
    text[got] = '\0';
    int rc = mcp_access_parse(out, text, default_ns, err);
    OPENSSL_cleanse(text, n + 1);
    eg_free(text);
    if (rc)
        eg_error_prefix(err, "%s", path);
    return rc;
}

const mcp_grant *mcp_access_find(const mcp_access *a, const char *token)
{
    if (!a || !token)
        return NULL;
    unsigned char d[32];
    if (digest(token, d) != 0)
        return NULL;
    const mcp_grant *found = NULL;
    /* No early exit: the time taken says nothing about which grant matched. */
    for (size_t i = 0; i < a->n; i++)
        if (CRYPTO_memcmp(a->g[i].digest, d, 32) == 0)
            found = &a->g[i];
    return found;
}

const char *mcp_grant_name(const mcp_grant *g)
{
    return g ? g->name : "";
}

bool mcp_grant_can_write(const mcp_grant *g)
{
    return g && g->write;
}

const char *mcp_grant_namespace(const mcp_grant *g, const char *requested)
{
    if (!g)
        return requested;
    const char *want = requested ? requested : g->default_ns;
    for (size_t k = 0; k < g->nns; k++)
        if (strcmp(g->ns[k], want) == 0)
            return g->ns[k];
    return requested ? NULL : g->ns[0];
}

char *mcp_grant_describe(const mcp_grant *g)
{
    size_t len = 1;
    for (size_t k = 0; g && k < g->nns; k++)
        len += strlen(g->ns[k]) + 2;
    char *s = eg_malloc(len);
    if (!s)
        return NULL;
    size_t at = 0;
    for (size_t k = 0; g && k < g->nns; k++) {
        if (k) {
            memcpy(s + at, ", ", 2);
            at += 2;
        }
        size_t n = strlen(g->ns[k]);
        memcpy(s + at, g->ns[k], n);
        at += n;
    }
    s[at] = '\0';
    return s;
}
