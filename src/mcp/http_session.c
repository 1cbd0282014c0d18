/*
 * http_session.c - the HTTP transport's session table (see http_int.h).
 *
 * A session is one mcp_server (lifecycle state and log level per client)
 * named by 32 random bytes in hex, owned by the client address that made
 * it.  A session is active while a request runs on it and for
 * session_active_s after its last one; active sessions are never evicted.
 * One address holds at most sessions_per_client: one more retires that
 * address's own least recently used inactive session, or is refused (503)
 * when all of them are active.  Another client's session is never taken
 * to make room (security review finding 13): a table full of live sessions
 * answers 503.  Sessions idle for session_idle_s expire.
 *
 * Thread-safety: the table and the reference counts are guarded by
 * mcp_http_state.mu; a session is freed by whoever drops its last use
 * after it left the table.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "mcp/http_int.h"

#include <stdio.h>
#include <string.h>

void mcp_http__session_free(mcp_http_session *s)
{
    mcp_server_free(s->srv);
    eg_free(s);
}

void mcp_http__session_release(mcp_http_state *h, mcp_http_session *s)
{
    pthread_mutex_lock(&h->mu);
    bool free_it = --s->refs == 0 && s->dead;
    pthread_mutex_unlock(&h->mu);
    if (free_it)
        mcp_http__session_free(s);
}

/* Find and reference a live session; NULL when unknown. */
mcp_http_session *mcp_http__session_get(mcp_http_state *h, const char *id, const struct mcp_grant *grant)
{
    mcp_http_session *found = NULL;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < h->lim.sessions; i++) {
        mcp_http_session *s = h->sessions[i];
        if (s && !s->dead && s->grant == grant && strcmp(s->id, id) == 0) {
            s->refs++;
            s->last_used = eg_mono_ms();
            found = s;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* Detach a session from the table; the caller frees it (returned) when no
 * request uses it, else its last user does.  Caller holds mu. */
mcp_http_session *mcp_http__session_kill_locked(mcp_http_state *h, unsigned slot)
{
    mcp_http_session *s = h->sessions[slot];
    h->sessions[slot] = NULL;
    s->dead = true;
    return s->refs == 0 ? s : NULL;
}

mcp_http_session *mcp_http__session_new(mcp_http_state *h, const char *owner, const struct mcp_grant *grant)
{
    mcp_http_session *s = eg_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: the thread that handles a message runs its call */
    o.grant = grant;
    s->grant = grant;
    s->srv = mcp_server_new(&o, h->be, mcp_http__emit, NULL, NULL);
    if (!s->srv || eg_rand_hex(s->id, 32) != 0) {
        mcp_server_free(s->srv);
        eg_free(s);
        return NULL;
    }
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->refs = 1;
    s->last_used = eg_mono_ms();
    return s;
}

/*
 * Put s in the table.  A client at its quota gives up its own least
 * recently used inactive session; an active session, or another client's,
 * is never taken, so the answer is then 503.  NULL on success, else why.
 */
const char *mcp_http__session_add(mcp_http_state *h, mcp_http_session *s)
{
    const char *why = NULL;
    mcp_http_session *evicted = NULL;
    int64_t now = eg_mono_ms(), active_ms = (int64_t)h->lim.session_active_s * 1000;
    pthread_mutex_lock(&h->mu);
    unsigned mine = 0, free_slot = h->lim.sessions;
    int lru = -1;
    for (unsigned i = 0; i < h->lim.sessions; i++) {
        mcp_http_session *x = h->sessions[i];
        if (!x) {
            if (free_slot == h->lim.sessions)
                free_slot = i;
            continue;
        }
        if (strcmp(x->owner, s->owner) != 0)
            continue;
        mine++;
        /* only an inactive session may go: no request on it, and none lately */
        if (x->refs == 0 && now - x->last_used >= active_ms &&
            (lru < 0 || x->last_used < h->sessions[lru]->last_used))
            lru = (int)i;
    }
    if (mine >= h->lim.sessions_per_client) {
        if (lru < 0) {
            why = "too many active MCP sessions from this client; end one (DELETE) or retry later";
        } else {
            EG_INFO("mcp-http", "client %s is at its session limit (%u): ending its least recently used "
                    "inactive session", s->owner, h->lim.sessions_per_client);
            evicted = mcp_http__session_kill_locked(h, (unsigned)lru);
            free_slot = (unsigned)lru;
        }
    } else if (free_slot == h->lim.sessions) {
        why = "too many MCP sessions on this server; retry later (idle sessions expire)";
    }
    if (!why)
        h->sessions[free_slot] = s;
    pthread_mutex_unlock(&h->mu);
    if (evicted)
        mcp_http__session_free(evicted);
    return why;
}

/* Sessions idle for longer than session_idle_s end (the reaper, once a second). */
void mcp_http__sessions_expire(mcp_http_state *h, int64_t now)
{
    mcp_http_session *gone[32];
    unsigned n = 0;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < h->lim.sessions && n < 32; i++) {
        mcp_http_session *x = h->sessions[i];
        if (x && x->refs == 0 && now - x->last_used > (int64_t)h->lim.session_idle_s * 1000) {
            mcp_http_session *f = mcp_http__session_kill_locked(h, i);
            if (f)
                gone[n++] = f;
        }
    }
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < n; i++)
        mcp_http__session_free(gone[i]);
}

bool mcp_http__session_delete(mcp_http_state *h, const char *id)
{
    mcp_http_session *f = NULL;
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; id && i < h->lim.sessions; i++)
        if (h->sessions[i] && strcmp(h->sessions[i]->id, id) == 0) {
            f = mcp_http__session_kill_locked(h, i);
            found = true;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    if (f)
        mcp_http__session_free(f);
    return found;
}
