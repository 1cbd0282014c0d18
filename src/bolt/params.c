/*
 * params.c - query parameter maps built incrementally.
 *
 * Entries (key, value) are PackStream-encoded straight into one buffer as
 * they are added; only the count is kept aside, because a PackStream map
 * states its size up front.  When the query is sent, the connection writes
 * the map header for the final count and appends the entry bytes in one
 * memcpy (bolt_params__encode), so a 1536-float embedding is encoded exactly
 * once.  Errors are sticky and surface when the params are used.
 */
#include "bolt/params_int.h"
#include "core/alloc.h"
#include "core/limits.h"

struct bolt_params {
    eg_buf buf;       /* encoded entries */
    bolt_ps_writer w; /* writes into buf; w.err is the sticky error */
    size_t count;
};

bolt_params *bolt_params_new(void)
{
    bolt_params *p = eg_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    eg_buf_init(&p->buf, EG_LIMIT_BOLT_MESSAGE);
    bolt_ps_writer_init(&p->w, &p->buf);
    return p;
}

void bolt_params_free(bolt_params *p)
{
    if (!p)
        return;
    eg_buf_free(&p->buf);
    eg_free(p);
}

void bolt_params_clear(bolt_params *p)
{
    if (!p)
        return;
    eg_buf_reset(&p->buf);
    p->count = 0;
    p->w.err = 0;
}

int bolt_params_error(const bolt_params *p)
{
    return p ? p->w.err : EG_EINVAL;
}

bolt_ps_writer *bolt_params_add(bolt_params *p, const char *key)
{
    if (!p)
        return NULL;
    if (!key && !p->w.err)
        p->w.err = EG_EINVAL;
    if (p->w.err)
        return NULL;
    bolt_ps_str(&p->w, key);
    if (p->w.err)
        return NULL;
    p->count++;
    return &p->w;
}

void bolt_params_null(bolt_params *p, const char *key)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_null(w);
}

void bolt_params_bool(bolt_params *p, const char *key, bool v)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_bool(w, v);
}

void bolt_params_int(bolt_params *p, const char *key, int64_t v)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_int(w, v);
}

void bolt_params_float(bolt_params *p, const char *key, double v)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_float(w, v);
}

void bolt_params_str(bolt_params *p, const char *key, const char *v)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_str(w, v);
}

void bolt_params_strn(bolt_params *p, const char *key, const char *v, size_t n)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_strn(w, v, n);
}

void bolt_params_json(bolt_params *p, const char *key, const json_t *v)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_json(w, v);
}

void bolt_params_float_list(bolt_params *p, const char *key, const double *v, size_t n)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_float_list(w, v, n);
}

void bolt_params_float32_list(bolt_params *p, const char *key, const float *v, size_t n)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (w)
        bolt_ps_float32_list(w, v, n);
}

size_t bolt_params__count(const bolt_params *p)
{
    return p ? p->count : 0;
}

int bolt_params__encode(const bolt_params *p, bolt_ps_writer *w)
{
    if (!p) {
        bolt_ps_map_begin(w, 0);
        return bolt_ps_writer_error(w);
    }
    if (p->w.err) {
        if (!w->err)
            w->err = p->w.err;
        return p->w.err;
    }
    bolt_ps_map_begin(w, p->count);
    bolt_ps_raw(w, p->buf.ptr, p->buf.len);
    return bolt_ps_writer_error(w);
}
