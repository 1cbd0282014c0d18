/*
 * http_call.c - tools/call over HTTP (see http_int.h): a job per call, run
 * by a fixed set of call threads, never by MHD's polling threads.
 *
 * JSON mode: the connection is suspended when the job is queued and resumed
 * when it has answered; MHD then calls the access handler again, which
 * queues the answer (mcp_http__answer_job).  SSE mode (a progressToken and
 * Accept: text/event-stream): the stream response is queued at once; its
 * content reader hands over the frames the job has emitted and suspends the
 * connection while there are none; the job resumes it when it emits or
 * ends.  A suspended connection is invisible to MHD, so the reaper
 * (transport_http.c) polls the sockets of suspended calls and cancels the
 * call of a client that hung up; an SSE response torn down by MHD cancels
 * its call too.  At shutdown every call is cancelled, queued ones are
 * answered with an error, and the call threads are joined.
 *
 * Thread-safety: job states, the queue and the active list are guarded by
 * mcp_http_state.mu; MHD_suspend_connection and MHD_resume_connection are
 * called under it, so a call can never resume a connection before it was
 * suspended.  A job is freed by its last reference (call thread, and the
 * request state or the SSE response).
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "mcp/http_int.h"

#include <string.h>

/* Undelivered SSE progress a stream may hold (bytes). */
#define SSE_BACKLOG (1024u * 1024u)

/* The job whose output this thread is producing (the inline ones too). */
static _Thread_local mcp_http_job *tl_job;

/* ---- output of the server core ---------------------------------------------- */

/* The core builds notifications as {"jsonrpc","method",...} and responses
 * as {"jsonrpc","id",...} (jsonrpc.c; jansson keeps insertion order), so
 * the prefix tells them apart without parsing a possibly large text. */
static bool is_notification_text(const char *msg, size_t len)
{
    static const char p[] = "{\"jsonrpc\":\"2.0\",\"method\":";
    return len >= sizeof p - 1 && memcmp(msg, p, sizeof p - 1) == 0;
}

void mcp_http__emit(void *ud, const char *msg, size_t len)
{
    (void)ud;
    mcp_http_job *j = tl_job;
    if (!j)
        return; /* not part of a request (e.g. a log record from another thread) */
    if (j->sse) {
        mcp_http_state *h = j->h;
        pthread_mutex_lock(&h->mu);
        /* Progress a slow reader has not taken yet may back up to
         * SSE_BACKLOG bytes, then is dropped; the response always fits
         * (the buffer's cap is the message cap plus that backlog). */
        if (is_notification_text(msg, len) && j->frames.len + len > SSE_BACKLOG)
            EG_DEBUG("mcp-http", "dropping a progress event: the client reads its stream too slowly");
        else if (eg_buf_puts(&j->frames, "event: message\ndata: ") != 0 ||
                 eg_buf_append(&j->frames, msg, len) != 0 || eg_buf_puts(&j->frames, "\n\n") != 0)
            EG_WARN("mcp-http", "an SSE event did not fit the stream buffer and was dropped");
        if (j->suspended && j->conn) {
            j->suspended = false;
            MHD_resume_connection(j->conn);
        }
        pthread_mutex_unlock(&h->mu);
        return;
    }
    /* JSON mode: the one response is the answer; progress cannot ride along. */
    if (is_notification_text(msg, len))
        return;
    char *t = eg_malloc(len + 1);
    if (!t)
        return;
    memcpy(t, msg, len);
    t[len] = '\0';
    eg_free(j->answer);
    j->answer = t;
    j->answer_len = len;
}

/* Handle m on srv in this thread; the response text (new) or NULL. */
char *mcp_http__run_inline(mcp_server *srv, const mcp_msg *m, size_t *len)
{
    mcp_http_job local;
    memset(&local, 0, sizeof local);
    tl_job = &local;
    mcp_server_handle_msg(srv, m);
    tl_job = NULL;
    *len = local.answer_len;
    return local.answer;
}

/* ---- calls --------------------------------------------------------------------------- */

static void job_free(mcp_http_job *j)
{
    mcp_msg_clear(&j->msg);
    json_decref(j->id);
    if (j->sess)
        mcp_http__session_release(j->h, j->sess);
    else
        mcp_server_free(j->srv);
    eg_buf_free(&j->frames);
    eg_free(j->answer);
    eg_free(j);
}

void mcp_http__job_unref(mcp_http_job *j)
{
    mcp_http_state *h = j->h;
    pthread_mutex_lock(&h->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last)
        job_free(j);
}

/* The job's client went away: no one waits for its answer.  Caller holds mu. */
void mcp_http__job_gone_locked(mcp_http_job *j, const char *why)
{
    if (j->gone || j->done)
        return;
    j->gone = true;
    EG_INFO("mcp-http", "cancelling a tools/call: %s", why);
    mcp_server_cancel(j->srv, j->id);
}

/* The call ended (or never ran): wake its connection.  Caller holds mu. */
static void job_finish_locked(mcp_http_state *h, mcp_http_job *j)
{
    j->done = true;
    if (j->prev_a)
        j->prev_a->next_a = j->next_a;
    else
        h->active = j->next_a;
    if (j->next_a)
        j->next_a->prev_a = j->prev_a;
    j->prev_a = j->next_a = NULL;
    if (j->suspended && j->conn) {
        j->suspended = false;
        MHD_resume_connection(j->conn);
    }
}

void *mcp_http__call_thread(void *arg)
{
    mcp_http_state *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->q_head && !h->stopping)
            pthread_cond_wait(&h->cv, &h->mu);
        mcp_http_job *j = h->q_head;
        if (!j)
            break; /* stopping, nothing queued */
        h->q_head = j->next_q;
        if (!h->q_head)
            h->q_tail = NULL;
        if (!h->stopping && !j->gone) {
            pthread_mutex_unlock(&h->mu);
            tl_job = j;
            mcp_server_handle_msg(j->srv, &j->msg);
            tl_job = NULL;
            mcp_msg_clear(&j->msg); /* the tree can be large: free it before the answer goes out */
            pthread_mutex_lock(&h->mu);
        } else if (!j->sse && !j->gone) {
            json_t *e = mcp_jsonrpc_error(j->id, MCP_JSONRPC_INTERNAL_ERROR, "server is shutting down", NULL);
            j->answer = e ? mcp_jsonrpc_dump(e, &j->answer_len) : NULL;
            json_decref(e);
        }
        job_finish_locked(h, j);
        bool last = --j->refs == 0;
        if (last) {
            pthread_mutex_unlock(&h->mu);
            job_free(j);
            pthread_mutex_lock(&h->mu);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/*
 * A job for the call threads, taking the parsed message (*m is emptied)
 * and the session reference (sess NULL: srv is its own, freed with it).
 * NULL when out of memory (m and the session are then released).
 */
static mcp_http_job *job_new(mcp_http_state *h, struct MHD_Connection *c, mcp_http_session *sess,
                             mcp_server *srv, mcp_msg *m, bool sse, bool modern)
{
    mcp_http_job *j = eg_calloc(1, sizeof *j);
    if (!j) {
        mcp_msg_clear(m);
        if (sess)
            mcp_http__session_release(h, sess);
        else
            mcp_server_free(srv);
        return NULL;
    }
    j->h = h;
    j->conn = c;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->sess = sess;
    j->srv = srv;
    j->msg = *m;
    memset(m, 0, sizeof *m);
    j->id = json_incref(j->msg.id);
    j->sse = sse;
    j->modern = modern;
    j->refs = 2; /* the call thread's and the connection's */
    eg_buf_init(&j->frames, (size_t)EG_LIMIT_MCP_RESPONSE + SSE_BACKLOG + 64);
    return j;
}

/* Queue j for the call threads; with suspend, park the connection until
 * the answer is ready (JSON mode).  false when the server is stopping. */
static bool job_submit(mcp_http_state *h, mcp_http_job *j, bool suspend)
{
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return false;
    }
    j->next_a = h->active;
    if (h->active)
        h->active->prev_a = j;
    h->active = j;
    if (h->q_tail)
        h->q_tail->next_q = j;
    else
        h->q_head = j;
    h->q_tail = j;
    if (suspend) {
        /* under mu: the call thread cannot resume before we suspended */
        j->suspended = true;
        MHD_suspend_connection(j->conn);
    }
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return true;
}

/* ---- SSE ------------------------------------------------------------------------------ */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    mcp_http_job *j = cls;
    mcp_http_state *h = j->h;
    ssize_t n;
    pthread_mutex_lock(&h->mu);
    if (j->sent < j->frames.len) {
        size_t k = j->frames.len - j->sent;
        if (k > max)
            k = max;
        memcpy(buf, j->frames.ptr + j->sent, k);
        j->sent += k;
        if (j->sent == j->frames.len) {
            eg_buf_reset(&j->frames);
            j->sent = 0;
        }
        n = (ssize_t)k;
    } else if (j->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing yet: park the connection until the call emits or ends */
        j->suspended = true;
        MHD_suspend_connection(j->conn);
        n = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* MHD is done with the stream: finished, or the client went away. */
static void sse_free(void *cls)
{
    mcp_http_job *j = cls;
    mcp_http_state *h = j->h;
    pthread_mutex_lock(&h->mu);
    j->conn = NULL;
    j->suspended = false;
    mcp_http__job_gone_locked(j, "the client closed its event stream");
    pthread_mutex_unlock(&h->mu);
    mcp_http__job_unref(j);
}

enum MHD_Result mcp_http__start_call(mcp_http_state *h, struct MHD_Connection *c, mcp_http_req *rs,
                                    mcp_http_session *sess, mcp_server *srv, mcp_msg *m, bool sse, bool modern)
{
    mcp_http_job *j = job_new(h, c, sess, srv, m, sse, modern);
    if (!j)
        return mcp_http__reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
    if (!sse) {
        rs->job = j;
        if (!job_submit(h, j, true)) {
            rs->job = NULL;
            j->refs = 1;
            mcp_http__job_unref(j);
            return mcp_http__reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR,
                                        "server is shutting down");
        }
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, j, sse_free);
    if (!r) {
        j->refs = 1;
        mcp_http__job_unref(j);
        return mcp_http__reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
    }
    /* The response owns the connection's reference from here (sse_free). */
    if (!job_submit(h, j, false)) {
        pthread_mutex_lock(&h->mu);
        j->done = true;
        j->refs--; /* the call thread's, which never comes */
        pthread_mutex_unlock(&h->mu);
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* JSON-RPC error code of a response text (0: a result, or too large to be an error). */
int mcp_http__answer_error_code(const char *t, size_t len)
{
    if (!t || len > 65536)
        return 0;
    json_t *v = json_loadb(t, len, 0, NULL);
    int code = (int)json_integer_value(json_object_get(json_object_get(v, "error"), "code"));
    json_decref(v);
    return code;
}

unsigned mcp_http__modern_status(const char *answer, size_t len)
{
    int code = mcp_http__answer_error_code(answer, len);
    return code == MCP_JSONRPC_UNSUPPORTED_VERSION ? MHD_HTTP_BAD_REQUEST
           : code == MCP_JSONRPC_METHOD_NOT_FOUND  ? MHD_HTTP_NOT_FOUND
                                                   : MHD_HTTP_OK;
}

/* The connection was resumed: its call has answered (or was cancelled). */
enum MHD_Result mcp_http__answer_job(struct MHD_Connection *c, mcp_http_req *rs)
{
    mcp_http_job *j = rs->job;
    char *t = j->answer;
    size_t len = j->answer_len;
    j->answer = NULL;
    if (!t)
        return mcp_http__reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL); /* cancelled: no answer expected */
    unsigned status = j->modern ? mcp_http__modern_status(t, len) : MHD_HTTP_OK;
    return mcp_http__reply_buf(c, status, "application/json", t, len, true, NULL);
}

/* Stop the call threads: cancel what runs, answer what waits, join. */
void mcp_http__stop_calls(mcp_http_state *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    for (mcp_http_job *j = h->active; j; j = j->next_a)
        mcp_server_cancel(j->srv, j->id);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    h->n_workers = 0;
}
