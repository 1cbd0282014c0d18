/*
 * fake_bolt.c - see fake_bolt.h.
 */
#include "support/fake_bolt.h"

#include "bolt/chunk.h"
#include "bolt/packstream.h"
#include "bolt/transport.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { FB_HANDSHAKE, FB_EXPECT, FB_SEND, FB_SLEEP, FB_CLOSE, FB_ACCEPT };

typedef struct fb_step {
    int kind;
    uint8_t sig;
    uint32_t u32;
    int ms;
    uint8_t *bytes;
    size_t len;
} fb_step;

typedef struct fb_msg {
    uint8_t *bytes;
    size_t len;
} fb_msg;

struct fake_bolt {
    int lfd;
    int port;
    char uri[64];
    fb_step *steps;
    size_t nsteps, capsteps;
    fb_msg *msgs;
    size_t nmsgs, capmsgs;
    uint8_t proposals[16];
    pthread_t th;
    bool started;
    char error[1024];
    bolt_arena *arena;
};

fake_bolt *fake_bolt_new(void)
{
    fake_bolt *fb = calloc(1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fb->lfd < 0 || bind(fb->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fb->lfd, 8) < 0 || getsockname(fb->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        if (fb->lfd >= 0)
            close(fb->lfd);
        free(fb);
        return NULL;
    }
    fb->port = ntohs(sa.sin_port);
    snprintf(fb->uri, sizeof fb->uri, "bolt://127.0.0.1:%d", fb->port);
    fb->arena = bolt_arena_new(4096);
    return fb;
}

void fake_bolt_free(fake_bolt *fb)
{
    if (!fb)
        return;
    if (fb->started)
        fake_bolt_wait(fb);
    close(fb->lfd);
    for (size_t i = 0; i < fb->nsteps; i++)
        free(fb->steps[i].bytes);
    for (size_t i = 0; i < fb->nmsgs; i++)
        free(fb->msgs[i].bytes);
    free(fb->steps);
    free(fb->msgs);
    bolt_arena_free(fb->arena);
    free(fb);
}

int fake_bolt_port(const fake_bolt *fb)
{
    return fb->port;
}

const char *fake_bolt_uri(const fake_bolt *fb)
{
    return fb->uri;
}

static fb_step *add_step(fake_bolt *fb, int kind)
{
    if (fb->nsteps == fb->capsteps) {
        fb->capsteps = fb->capsteps ? fb->capsteps * 2 : 32;
        fb->steps = realloc(fb->steps, fb->capsteps * sizeof *fb->steps);
        if (!fb->steps)
            abort();
    }
    fb_step *s = &fb->steps[fb->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

void fake_bolt_handshake(fake_bolt *fb, uint32_t reply)
{
    add_step(fb, FB_HANDSHAKE)->u32 = reply;
}

void fake_bolt_expect(fake_bolt *fb, uint8_t sig)
{
    add_step(fb, FB_EXPECT)->sig = sig;
}

/* Encode a message struct(sig, fields...) framed, into a send step. */
static void add_send_msg(fake_bolt *fb, uint8_t sig, const json_t *field)
{
    eg_buf msg = EG_BUF_INIT(EG_LIMIT_BOLT_MESSAGE);
    eg_buf framed = EG_BUF_INIT(EG_LIMIT_BOLT_MESSAGE * 2u);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &msg);
    bolt_ps_struct_begin(&w, sig, field ? 1 : 0);
    if (field)
        bolt_ps_json(&w, field);
    if (bolt_ps_writer_error(&w) < 0 || bolt_chunk_frame(&framed, msg.ptr, msg.len) < 0)
        abort();
    fb_step *s = add_step(fb, FB_SEND);
    s->bytes = malloc(framed.len);
    memcpy(s->bytes, framed.ptr, framed.len);
    s->len = framed.len;
    eg_buf_free(&msg);
    eg_buf_free(&framed);
}

static json_t *parse(const char *js)
{
    json_error_t je;
    json_t *j = json_loads(js, JSON_DECODE_ANY, &je);
    if (!j) {
        fprintf(stderr, "fake_bolt: bad JSON in script: %s (%s)\n", js, je.text);
        abort();
    }
    return j;
}

void fake_bolt_success(fake_bolt *fb, const char *json_map)
{
    json_t *j = parse(json_map ? json_map : "{}");
    add_send_msg(fb, 0x70, j);
    json_decref(j);
}

void fake_bolt_record(fake_bolt *fb, const char *json_list)
{
    json_t *j = parse(json_list);
    add_send_msg(fb, 0x71, j);
    json_decref(j);
}

void fake_bolt_failure(fake_bolt *fb, const char *code, const char *message)
{
    json_t *j = json_pack("{s:s,s:s}", "code", code, "message", message);
    add_send_msg(fb, 0x7F, j);
    json_decref(j);
}

void fake_bolt_ignored(fake_bolt *fb)
{
    add_send_msg(fb, 0x7E, NULL);
}

void fake_bolt_noop(fake_bolt *fb)
{
    fake_bolt_raw(fb, "\0\0", 2);
}

void fake_bolt_raw(fake_bolt *fb, const void *bytes, size_t n)
{
    fb_step *s = add_step(fb, FB_SEND);
    s->bytes = malloc(n ? n : 1);
    memcpy(s->bytes, bytes, n);
    s->len = n;
}

void fake_bolt_sleep(fake_bolt *fb, int ms)
{
    add_step(fb, FB_SLEEP)->ms = ms;
}

void fake_bolt_close(fake_bolt *fb)
{
    add_step(fb, FB_CLOSE);
}

void fake_bolt_accept(fake_bolt *fb)
{
    add_step(fb, FB_ACCEPT);
}

void fake_bolt_hello(fake_bolt *fb, int major, int minor)
{
    fake_bolt_handshake(fb, (uint32_t)((minor << 8) | major));
    fake_bolt_expect(fb, 0x01);
    bool logon = major == 5 && minor >= 1;
    if (logon)
        fake_bolt_expect(fb, 0x6A);
    fake_bolt_success(fb, "{\"server\":\"Neo4j/5.26.0\",\"connection_id\":\"bolt-7\"}");
    if (logon)
        fake_bolt_success(fb, "{}");
}

__attribute__((format(printf, 2, 3))) static void fail(fake_bolt *fb, const char *fmt, ...)
{
    if (fb->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fb->error, sizeof fb->error, fmt, ap);
    va_end(ap);
}

static int accept_conn(fake_bolt *fb, bolt_tr **t)
{
    int fd = accept4(fb->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    return bolt_tr_from_fd(t, fd, 5000, NULL) < 0 ? -1 : 0;
}

static void *run(void *arg)
{
    fake_bolt *fb = arg;
    bolt_tr *t = NULL;
    eg_buf scratch = EG_BUF_INIT(EG_LIMIT_BOLT_MESSAGE);
    eg_error e;
    size_t i = 0;
    for (; i < fb->nsteps && !fb->error[0]; i++) {
        fb_step *s = &fb->steps[i];
        if (!t && s->kind != FB_ACCEPT && s->kind != FB_SLEEP) {
            if (accept_conn(fb, &t) < 0) {
                fail(fb, "accept failed%s (step %d)", "", (int)i);
                break;
            }
        }
        switch (s->kind) {
        case FB_HANDSHAKE: {
            uint8_t hs[20];
            if (bolt_tr_read(t, hs, 20, &e) < 0) {
                fail(fb, "handshake read: %s (step %d)", e.message, (int)i);
                break;
            }
            if (memcmp(hs, "\x60\x60\xB0\x17", 4) != 0) {
                fail(fb, "bad magic%s (step %d)", "", (int)i);
                break;
            }
            memcpy(fb->proposals, hs + 4, 16);
            uint8_t rep[4] = {(uint8_t)(s->u32 >> 24), (uint8_t)(s->u32 >> 16),
                              (uint8_t)(s->u32 >> 8), (uint8_t)s->u32};
            if (s->u32 == 0x48545450u)
                memcpy(rep, "HTTP", 4);
            bolt_tr_write(t, rep, 4, &e);
            break;
        }
        case FB_EXPECT: {
            const uint8_t *m;
            size_t len;
            if (bolt_chunk_read(t, &scratch, &m, &len, &e) < 0) {
                fail(fb, "expected a message: %s (step %d)", e.message, (int)i);
                break;
            }
            if (fb->nmsgs == fb->capmsgs) {
                fb->capmsgs = fb->capmsgs ? fb->capmsgs * 2 : 32;
                fb->msgs = realloc(fb->msgs, fb->capmsgs * sizeof *fb->msgs);
            }
            fb_msg *rm = &fb->msgs[fb->nmsgs++];
            rm->bytes = malloc(len);
            memcpy(rm->bytes, m, len);
            rm->len = len;
            if (len < 2 || m[1] != s->sig) {
                char got[32];
                snprintf(got, sizeof got, "0x%02X", len >= 2 ? m[1] : 0);
                fail(fb, "unexpected message %s (step %d)", got, (int)i);
            }
            break;
        }
        case FB_SEND:
            if (bolt_tr_write(t, s->bytes, s->len, &e) < 0)
                fail(fb, "send: %s (step %d)", e.message, (int)i);
            break;
        case FB_SLEEP:
            usleep((useconds_t)s->ms * 1000u);
            break;
        case FB_CLOSE:
            bolt_tr_free(t);
            t = NULL;
            break;
        case FB_ACCEPT: {
            bolt_tr_free(t);
            t = NULL;
            if (accept_conn(fb, &t) < 0)
                fail(fb, "accept failed%s (step %d)", "", (int)i);
            break;
        }
        }
    }
    bolt_tr_free(t);
    eg_buf_free(&scratch);
    return NULL;
}

int fake_bolt_start(fake_bolt *fb)
{
    if (pthread_create(&fb->th, NULL, run, fb) != 0)
        return -1;
    fb->started = true;
    return 0;
}

int fake_bolt_wait(fake_bolt *fb)
{
    if (fb->started) {
        pthread_join(fb->th, NULL);
        fb->started = false;
    }
    return fb->error[0] ? -1 : 0;
}

void fake_bolt_abort(fake_bolt *fb)
{
    shutdown(fb->lfd, SHUT_RDWR);
}

const char *fake_bolt_error(const fake_bolt *fb)
{
    return fb->error[0] ? fb->error : NULL;
}

const uint8_t *fake_bolt_proposals(const fake_bolt *fb)
{
    return fb->proposals;
}

size_t fake_bolt_nreceived(const fake_bolt *fb)
{
    return fb->nmsgs;
}

int fake_bolt_received_sig(const fake_bolt *fb, size_t i)
{
    return i < fb->nmsgs && fb->msgs[i].len >= 2 ? fb->msgs[i].bytes[1] : -1;
}

const uint8_t *fake_bolt_received_bytes(const fake_bolt *fb, size_t i, size_t *len)
{
    if (i >= fb->nmsgs)
        return NULL;
    *len = fb->msgs[i].len;
    return fb->msgs[i].bytes;
}

const bolt_value *fake_bolt_received_field(fake_bolt *fb, size_t i, size_t f)
{
    if (i >= fb->nmsgs)
        return NULL;
    const uint8_t *p = fb->msgs[i].bytes + 2;
    size_t left = fb->msgs[i].len - 2;
    size_t nf = fb->msgs[i].bytes[0] & 0x0F;
    for (size_t k = 0; k < nf; k++) {
        const bolt_value *v;
        size_t used;
        if (bolt_ps_decode(p, left, fb->arena, 5, &v, &used, NULL) < 0)
            return NULL;
        if (k == f)
            return v;
        p += used;
        left -= used;
    }
    return NULL;
}
