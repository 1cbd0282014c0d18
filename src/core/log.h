/*
 * log.h - structured logging to stderr.
 *
 * stdout belongs to MCP on the stdio transport, so every log line goes to
 * stderr, either human-readable ("2026-11-29T15:40:00.123Z INFO  queue: leased
 * 10 jobs owner=w1") or as one JSON object per line (ENGRAM_LOG_FORMAT=json).
 * Structured fields are passed as NULL-terminated key/value string pairs so
 * that the JSON form keeps them as separate keys.
 *
 * Secrets are never logged: callers must not pass passwords or API keys, and
 * eg_log_redact() exists for the rare message that could contain a URI with
 * credentials.
 *
 * A sink can be installed (e.g. by the MCP server to forward records as
 * notifications/message); it is called after the stderr write, outside any
 * logger lock, and must not log itself.
 *
 * Thread-safety: all functions are thread-safe; lines are written atomically.
 */
#ifndef ENGRAM_CORE_LOG_H
#define ENGRAM_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum eg_log_level {
    EG_LOG_DEBUG = 0,
    EG_LOG_INFO,
    EG_LOG_NOTICE,
    EG_LOG_WARNING,
    EG_LOG_ERROR,
    EG_LOG_CRITICAL,
    EG_LOG_OFF
} eg_log_level;

typedef enum eg_log_format { EG_LOG_HUMAN = 0, EG_LOG_JSON } eg_log_format;

void eg_log_set_level(eg_log_level lvl);
eg_log_level eg_log_get_level(void);
void eg_log_set_format(eg_log_format fmt);
bool eg_log_enabled(eg_log_level lvl);

/* Parse "debug|info|notice|warning|error|critical|off"; returns -1 if unknown. */
int eg_log_level_parse(const char *s);
const char *eg_log_level_name(eg_log_level lvl);

/* Configure from DEBUG, ENGRAM_LOG_LEVEL and ENGRAM_LOG_FORMAT. */
void eg_log_init_from_env(void);

/* printf-style message, no structured fields. */
void eg_log(eg_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Message plus fields: eg_log_fields(EG_LOG_INFO, "worker", "job failed",
 * "job", id, "entity", name, "attempt", "3", NULL).  Values may be NULL
 * (skipped).
 */
void eg_log_fields(eg_log_level lvl, const char *component, const char *msg, ...);

typedef void (*eg_log_sink_fn)(eg_log_level lvl, const char *component, const char *msg,
                               void *payload);
/* Install (or remove with NULL) the single extra sink. */
void eg_log_set_sink(eg_log_sink_fn fn, void *payload);

#define EG_DEBUG(comp, ...) do { if (eg_log_enabled(EG_LOG_DEBUG)) eg_log(EG_LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define EG_INFO(comp, ...) eg_log(EG_LOG_INFO, comp, __VA_ARGS__)
#define EG_WARN(comp, ...) eg_log(EG_LOG_WARNING, comp, __VA_ARGS__)
#define EG_ERROR(comp, ...) eg_log(EG_LOG_ERROR, comp, __VA_ARGS__)

#endif
