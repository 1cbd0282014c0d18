/*
 * env.c - typed reads of the environment (see env.h).
 */
#include "core/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *eg_env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int eg_env_int(const char *name, int64_t lo, int64_t hi, int64_t *out, eg_error *err)
{
    const char *v = eg_env_str(name, NULL);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be an integer in %lld..%lld (got '%.32s')", name,
                            (long long)lo, (long long)hi, v);
    *out = (int64_t)x;
    return 1;
}

int eg_env_double(const char *name, double lo, double hi, double *out, eg_error *err)
{
    const char *v = eg_env_str(name, NULL);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be a number in %g..%g (got '%.32s')", name, lo,
                            hi, v);
    *out = x;
    return 1;
}

static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};

bool eg_env_yes(const char *name)
{
    const char *v = eg_env_str(name, NULL);
    for (size_t i = 0; v && i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return true;
    return false;
}

int eg_env_bool(const char *name, bool *out, eg_error *err)
{
    const char *v = eg_env_str(name, NULL);
    if (!v)
        return 0;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 1;
        }
    }
    return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be 1/true/yes/on or 0/false/no/off (got '%.32s')",
                        name, v);
}
