/*
 * transport_stdio.c - MCP over stdin/stdout: one JSON-RPC message per line.
 *
 * The calling thread is the reader: it splits input on '\n' (dropping a
 * trailing '\r'), skips blank lines and hands each line to the server.  A
 * line longer than EG_LIMIT_MCP_LINE is never buffered whole: the reader
 * discards bytes up to the next newline and answers one -32600 error.
 * Output goes through a mutex so lines from the reader (ping, errors),
 * workers (tool results) and the log sink never interleave.  On EOF the
 * transport waits for in-flight tool calls to finish, so a client that
 * closes stdin right after its last request still gets the answer.
 * SIGINT and SIGTERM end the reading as EOF does (the caller then stops its
 * in-server workers, which release their leases, as `engram worker` does);
 * the reader polls with a short timeout, so a signal delivered to another
 * thread is seen too.
 *
 * Thread-safety: internal (writer mutex); mcp_stdio_serve() blocks.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

typedef struct stdio_writer {
    pthread_mutex_t mu;
    int fd;
    bool broken; /* the client went away: stop writing */
} stdio_writer;

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Set by the handler, which may run on any thread (serve does not block
 * the signals): a lock-free atomic, not volatile sig_atomic_t, whose
 * guarantee covers only the interrupted thread. */
static atomic_int g_stop_signal;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal handlers need a lock-free atomic_int");

static void on_stop_signal(int sig)
{
    atomic_store(&g_stop_signal, sig);
}

static void stdio_emit(void *ud, const char *msg, size_t len)
{
    stdio_writer *w = ud;
    pthread_mutex_lock(&w->mu);
    if (!w->broken && (write_all(w->fd, msg, len) || write_all(w->fd, "\n", 1)))
        w->broken = true;
    pthread_mutex_unlock(&w->mu);
}

int mcp_stdio_serve(const mcp_server_opts *opts, const mcp_backend *be, int in_fd, int out_fd,
                    eg_error *err)
{
    stdio_writer w = {.fd = out_fd};
    pthread_mutex_init(&w.mu, NULL);
    mcp_server *s = mcp_server_new(opts, be, stdio_emit, &w, err);
    if (!s) {
        pthread_mutex_destroy(&w.mu);
        return err ? err->code : EG_ENOMEM;
    }
    mcp_server_forward_logs(s);
    EG_INFO("mcp", "serving MCP on stdio (workers=%u)", opts ? opts->workers : 0);

    eg_buf line = EG_BUF_INIT(EG_LIMIT_MCP_LINE);
    bool discarding = false; /* inside an over-long line */
    char chunk[65536];
    int rc = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    atomic_store(&g_stop_signal, 0);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (;;) {
        if (atomic_load(&g_stop_signal)) {
            eg_log(EG_LOG_NOTICE, "mcp", "%s received; stopping the MCP server",
                      atomic_load(&g_stop_signal) == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 200);
        if (pr == 0 || (pr < 0 && errno == EINTR))
            continue;
        ssize_t n = read(in_fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "reading stdin: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        size_t off = 0;
        while (off < (size_t)n) {
            char *nl = memchr(chunk + off, '\n', (size_t)n - off);
            size_t take = nl ? (size_t)(nl - (chunk + off)) : (size_t)n - off;
            if (!discarding && eg_buf_append(&line, chunk + off, take) != 0) {
                /* Over the cap: drop this line entirely and say so once. */
                discarding = true;
                eg_buf_reset(&line);
                json_t *e = mcp_jsonrpc_error(NULL, MCP_JSONRPC_INVALID_REQUEST, "message too large", NULL);
                size_t elen = 0;
                char *t = e ? mcp_jsonrpc_dump(e, &elen) : NULL;
                json_decref(e);
                if (t)
                    stdio_emit(&w, t, elen);
                eg_free(t);
                EG_WARN("mcp", "discarding a message larger than %u bytes", EG_LIMIT_MCP_LINE);
            }
            off += take;
            if (!nl)
                break;
            off++; /* the newline */
            if (discarding) {
                discarding = false;
                continue;
            }
            size_t len = line.len;
            if (len && line.ptr[len - 1] == '\r')
                len--;
            size_t i = 0;
            while (i < len && (line.ptr[i] == ' ' || line.ptr[i] == '\t'))
                i++;
            if (i < len)
                mcp_server_handle(s, line.ptr + i, len - i);
            eg_buf_reset(&line);
        }
    }
    /* A last line without a newline still counts as a message. */
    if (!discarding && line.len)
        mcp_server_handle(s, line.ptr, line.len);
    eg_buf_free(&line);
    mcp_server_drain(s);
    mcp_server_free(s);
    pthread_mutex_destroy(&w.mu);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    EG_INFO("mcp", atomic_load(&g_stop_signal) ? "MCP server stopped" : "stdin closed; MCP server stopped");
    return rc;
}
