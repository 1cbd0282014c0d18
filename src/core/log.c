/*
 * log.c - stderr logger (human or JSON lines) with an optional sink.
 */
#include "core/log.h"
#include "core/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = EG_LOG_INFO;
static atomic_int g_format = EG_LOG_HUMAN;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static eg_log_sink_fn g_sink;
static void *g_sink_payload;

static const char *const level_names[] = {"debug", "info", "notice", "warning",
                                          "error", "critical", "off"};

void eg_log_set_level(eg_log_level lvl) { atomic_store(&g_level, (int)lvl); }
eg_log_level eg_log_get_level(void) { return (eg_log_level)atomic_load(&g_level); }
void eg_log_set_format(eg_log_format fmt) { atomic_store(&g_format, (int)fmt); }
bool eg_log_enabled(eg_log_level lvl) { return (int)lvl >= atomic_load(&g_level); }

int eg_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i <= EG_LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warn") == 0)
        return EG_LOG_WARNING;
    /* MCP / syslog levels above critical map onto critical. */
    if (strcasecmp(s, "alert") == 0 || strcasecmp(s, "emergency") == 0)
        return EG_LOG_CRITICAL;
    return -1;
}

const char *eg_log_level_name(eg_log_level lvl)
{
    if ((int)lvl < 0 || lvl > EG_LOG_OFF)
        return "info";
    return level_names[lvl];
}

void eg_log_init_from_env(void)
{
    const char *dbg = getenv("DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0 && strcasecmp(dbg, "false") != 0)
        eg_log_set_level(EG_LOG_DEBUG);
    int lvl = eg_log_level_parse(getenv("ENGRAM_LOG_LEVEL"));
    if (lvl >= 0)
        eg_log_set_level((eg_log_level)lvl);
    const char *fmt = getenv("ENGRAM_LOG_FORMAT");
    if (fmt && strcasecmp(fmt, "json") == 0)
        eg_log_set_format(EG_LOG_JSON);
}

void eg_log_set_sink(eg_log_sink_fn fn, void *payload)
{
    pthread_mutex_lock(&g_lock);
    g_sink = fn;
    g_sink_payload = payload;
    pthread_mutex_unlock(&g_lock);
}

static void json_escape(eg_buf *b, const char *s)
{
    eg_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': eg_buf_puts(b, "\\\""); break;
        case '\\': eg_buf_puts(b, "\\\\"); break;
        case '\n': eg_buf_puts(b, "\\n"); break;
        case '\r': eg_buf_puts(b, "\\r"); break;
        case '\t': eg_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                eg_buf_printf(b, "\\u%04x", *p);
            else
                eg_buf_putc(b, (char)*p);
        }
    }
    eg_buf_putc(b, '"');
}

/* Human format: one event is one line, whatever the values hold.  Control
 * characters (newline, carriage return, escape sequences...) are written as
 * \n, \r or \xNN, so a value taken from a client, a provider or the
 * environment cannot forge a log line or drive the terminal. */
static void text_escape(eg_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            eg_buf_puts(b, "\\n");
        else if (*p == '\r')
            eg_buf_puts(b, "\\r");
        else if (*p < 0x20 && *p != '\t')
            eg_buf_printf(b, "\\x%02x", *p);
        else if (*p == 0x7f)
            eg_buf_puts(b, "\\x7f");
        else
            eg_buf_putc(b, (char)*p);
    }
}

static void timestamp(char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* The key/value pairs of eg_log_fields (NULL-terminated; a NULL value
 * skips its pair), each as sep key eq value, escaped for the format. */
static void put_fields(eg_buf *line, va_list *fields, void (*escape)(eg_buf *, const char *), char sep, char eq)
{
    const char *k;
    while (fields && (k = va_arg(*fields, const char *)) != NULL) {
        const char *v = va_arg(*fields, const char *);
        if (!v)
            continue;
        eg_buf_putc(line, sep);
        escape(line, k);
        eg_buf_putc(line, eq);
        escape(line, v);
    }
}

static void emit(eg_log_level lvl, const char *component, const char *msg, va_list *fields)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    eg_buf line = EG_BUF_INIT(1 << 20);
    if (!component)
        component = "engram";
    if (atomic_load(&g_format) == EG_LOG_JSON) {
        eg_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
                      eg_log_level_name(lvl));
        json_escape(&line, component);
        eg_buf_puts(&line, ",\"msg\":");
        json_escape(&line, msg);
        put_fields(&line, fields, json_escape, ',', ':');
        eg_buf_puts(&line, "}\n");
    } else {
        char lv[9];
        snprintf(lv, sizeof lv, "%-7s", eg_log_level_name(lvl));
        for (char *p = lv; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        eg_buf_printf(&line, "%s %s ", ts, lv);
        text_escape(&line, component);
        eg_buf_puts(&line, ": ");
        text_escape(&line, msg);
        put_fields(&line, fields, text_escape, ' ', '=');
        eg_buf_putc(&line, '\n');
    }
    if (line.ptr) {
        pthread_mutex_lock(&g_lock);
        ssize_t off = 0;
        while ((size_t)off < line.len) {
            ssize_t w = write(STDERR_FILENO, line.ptr + off, line.len - (size_t)off);
            if (w <= 0)
                break;
            off += w;
        }
        eg_log_sink_fn sink = g_sink;
        void *payload = g_sink_payload;
        pthread_mutex_unlock(&g_lock);
        if (sink)
            sink(lvl, component, msg, payload);
    }
    eg_buf_free(&line);
}

void eg_log(eg_log_level lvl, const char *component, const char *fmt, ...)
{
    if (!eg_log_enabled(lvl))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(lvl, component, msg, NULL);
}

void eg_log_fields(eg_log_level lvl, const char *component, const char *msg, ...)
{
    if (!eg_log_enabled(lvl))
        return;
    va_list ap;
    va_start(ap, msg);
    emit(lvl, component, msg, &ap);
    va_end(ap);
}
