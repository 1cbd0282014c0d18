/*
 * http.c - one JSON POST over libcurl, and the classification of answers.
 *
 * Each provider owns one easy handle (connection reuse, keep-alive).  The
 * response body is capped (EG_LIMIT_EMBED_RESPONSE).  CURLOPT_NOSIGNAL
 * because worker threads must never see SIGALRM from the resolver.  The
 * Authorization header is built per request and never logged.
 */
#include "embed/provider_impl.h"

#include "core/alloc.h"
#include "core/limits.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    embed_http_reply *r = ud;
    size_t n = size * nmemb;
    if (eg_buf_append(&r->body, data, n) < 0)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    return n;
}

/* "Name: value\r\n" -> value when name matches (case-insensitive). */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1;
    const char *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    *vlen = (size_t)(e - v);
    return v;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    embed_http_header_line(ud, data, size * nmemb);
    return size * nmemb;
}

void embed_http_header_line(embed_http_reply *r, const char *data, size_t n)
{
    size_t vl = 0;
    const char *v;
    char tmp[64];
    if ((v = header_value(data, n, "retry-after-ms", &vl)) && vl < sizeof tmp) {
        memcpy(tmp, v, vl);
        tmp[vl] = '\0';
        char *end;
        double ms = strtod(tmp, &end);
        if (end != tmp && ms >= 0 && ms < 86400000.0)
            r->retry_after_ms = (int64_t)ms; /* more precise: wins over Retry-After */
    } else if ((v = header_value(data, n, "retry-after", &vl)) && vl < sizeof tmp) {
        memcpy(tmp, v, vl);
        tmp[vl] = '\0';
        char *end;
        double s = strtod(tmp, &end);
        /* Seconds only; an HTTP-date is rare for APIs and is ignored. */
        if (end != tmp && *end == '\0' && s >= 0 && s < 86400.0 && r->retry_after_ms < 0)
            r->retry_after_ms = (int64_t)(s * 1000.0);
    } else if ((v = header_value(data, n, "x-should-retry", &vl))) {
        if (vl == 4 && strncasecmp(v, "true", 4) == 0)
            r->should_retry = 1;
        else if (vl == 5 && strncasecmp(v, "false", 5) == 0)
            r->should_retry = 0;
    } else if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or 100-continue): forget headers. */
        r->retry_after_ms = -1;
        r->should_retry = -1;
    }
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const embed_provider *p = ud;
    return p->cancel && atomic_load(p->cancel) ? 1 : 0;
}

int embed_http_post(embed_provider *p, const char *url, const char *body, embed_http_reply *reply,
                    embed_status *st)
{
    eg_buf_init(&reply->body, EG_LIMIT_EMBED_RESPONSE);
    reply->status = 0;
    reply->retry_after_ms = -1;
    reply->should_retry = -1;
    if (!p->curl && !(p->curl = curl_easy_init()))
        return embed_status_set(st, EMBED_E_TRANSIENT, 0, "curl_easy_init failed");
    CURL *h = p->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL, *t;
    char auth[512];
    if ((t = curl_slist_append(hdrs, "Content-Type: application/json")))
        hdrs = t;
    if ((t = curl_slist_append(hdrs, "Expect:")))
        hdrs = t;
    if (p->api_key && *p->api_key) {
        int k = snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->api_key);
        if (k > 0 && (size_t)k < sizeof auth && (t = curl_slist_append(hdrs, auth)))
            hdrs = t;
        memset(auth, 0, sizeof auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(p->timeout_ms < 10000 ? p->timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "engram/" ENGRAM_VERSION);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        eg_buf_free(&reply->body);
        if (cc == CURLE_ABORTED_BY_CALLBACK)
            return embed_status_set(st, EMBED_E_CANCELED, 0, "request canceled (shutdown)");
        if (cc == CURLE_WRITE_ERROR)
            return embed_status_set(st, EMBED_E_TRANSIENT, 0, "response larger than %u bytes",
                                    (unsigned)EG_LIMIT_EMBED_RESPONSE);
        if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
            return embed_status_set(st, EMBED_E_CONFIG, 0, "bad base URL: %s", curl_easy_strerror(cc));
        return embed_status_set(st, EMBED_E_TRANSIENT, 0, "HTTP request failed: %s",
                                curl_easy_strerror(cc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply->status);
    return 0;
}

static void copy_str(char *dst, size_t cap, const char *s)
{
    if (!s)
        return;
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

int embed_http_classify(const embed_http_reply *reply, embed_status *st)
{
    long s = reply->status;
    char code[64] = "", type[64] = "", msg[256] = "";
    json_t *doc = reply->body.ptr ? json_loadb(reply->body.ptr, reply->body.len, 0, NULL) : NULL;
    if (doc) {
        json_t *e = json_object_get(doc, "error");
        if (json_is_object(e)) {
            json_t *c = json_object_get(e, "code");
            if (json_is_string(c))
                copy_str(code, sizeof code, json_string_value(c));
            copy_str(type, sizeof type, json_string_value(json_object_get(e, "type")));
            copy_str(msg, sizeof msg, json_string_value(json_object_get(e, "message")));
        } else if (json_is_string(e)) {
            copy_str(msg, sizeof msg, json_string_value(e));
        }
        json_decref(doc);
    }
    embed_errkind k;
    if (s == 429)
        k = (strcmp(code, "insufficient_quota") == 0 || strcmp(type, "insufficient_quota") == 0)
                ? EMBED_E_QUOTA
                : EMBED_E_RATE_LIMIT;
    else if (s == 401 || s == 403)
        k = EMBED_E_AUTH;
    else if (s == 404)
        k = EMBED_E_CONFIG;
    else if (s == 408 || s == 409 || s >= 500)
        k = EMBED_E_TRANSIENT;
    else if (s >= 400)
        k = EMBED_E_INPUT;
    else
        k = EMBED_E_TRANSIENT; /* 1xx/3xx where a body was expected */
    int rc = embed_status_set(st, k, (int)s, "HTTP %ld%s%s", s, msg[0] ? ": " : "", msg);
    copy_str(st->code, sizeof st->code, code[0] ? code : type);
    st->retry_after_ms = reply->retry_after_ms;
    /* x-should-retry is the server's explicit word and wins. */
    if (reply->should_retry == 1 && !st->retryable && k != EMBED_E_QUOTA) {
        st->retryable = true;
        if (k == EMBED_E_INPUT || k == EMBED_E_CONFIG || k == EMBED_E_AUTH) {
            st->kind = EMBED_E_TRANSIENT;
            rc = EG_ETRANSIENT;
        }
    } else if (reply->should_retry == 0 && st->retryable) {
        st->retryable = false;
    }
    return rc;
}

json_t *embed_request_new(const embed_provider *p, const char *const *texts, size_t n)
{
    json_t *req = json_object();
    json_t *arr = json_array();
    if (!req || !arr) {
        json_decref(req);
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(texts[i]));
    json_object_set_new(req, "model", json_string(p->model));
    json_object_set_new(req, "input", arr);
    return req;
}

int embed_post_json(embed_provider *p, const char *path, json_t *req, json_t **doc_out, embed_status *st)
{
    *doc_out = NULL;
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return embed_status_set(st, EMBED_E_INPUT, 0, "request could not be encoded (invalid UTF-8?)");
    size_t ul = strlen(p->base_url) + strlen(path) + 1;
    char *url = eg_malloc(ul);
    if (!url) {
        eg_free(body);
        return embed_status_set(st, EMBED_E_TRANSIENT, 0, EG_OOM_TEXT);
    }
    snprintf(url, ul, "%s%s", p->base_url, path);
    embed_http_reply r;
    int rc = embed_http_post(p, url, body, &r, st);
    eg_free(body);
    eg_free(url);
    if (rc < 0)
        return rc;
    if (r.status < 200 || r.status > 299) {
        rc = embed_http_classify(&r, st);
        eg_buf_free(&r.body);
        return rc;
    }
    json_error_t jerr;
    *doc_out = json_loadb(r.body.ptr ? r.body.ptr : "", r.body.len, 0, &jerr);
    eg_buf_free(&r.body);
    if (!*doc_out)
        return embed_status_set(st, EMBED_E_TRANSIENT, (int)r.status, "malformed JSON from provider: %s", jerr.text);
    return 0;
}
