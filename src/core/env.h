/*
 * env.h - typed reads of the environment, with one error wording.
 *
 * engram is configured by environment variables (docs/configuration.md).
 * A value that is set but wrong must stop startup with a message naming
 * the variable and its range, never fall back to a default silently; an
 * unset or empty variable leaves the caller's default alone.
 *
 * Each parser returns 1 when the variable was set and valid (*out set),
 * 0 when it is unset or empty (*out untouched), and EG_EINVAL when it is
 * set but not a value in range (err says "NAME must be ... (got '...')").
 *
 * Thread-safety: getenv(3): call them at startup, before threads change
 * the environment (engram never does).
 */
#ifndef ENGRAM_CORE_ENV_H
#define ENGRAM_CORE_ENV_H

#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/* A decimal integer in [lo, hi]. */
int eg_env_int(const char *name, int64_t lo, int64_t hi, int64_t *out, eg_error *err);

/* A decimal number (strtod syntax) in [lo, hi]; NaN is never in range. */
int eg_env_double(const char *name, double lo, double hi, double *out, eg_error *err);

/* 1/true/yes/on or 0/false/no/off, any case. */
int eg_env_bool(const char *name, bool *out, eg_error *err);

/* memento's flags (MOCK_EMBEDDINGS, ENGRAM_EMBED_SYNC): true for a yes-word
 * (1/true/yes/on, any case), false for anything else, never an error. */
bool eg_env_yes(const char *name);

/* The value when set and non-empty, else def (borrowed from the environment). */
const char *eg_env_str(const char *name, const char *def);

#endif
