/*
 * testenv.c - see testenv.h.
 */
#include "testenv.h"

#include "core/clock.h"
#include "embed/local_model.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int eg_testenv_neo4j(bolt_config *cfg)
{
    const char *uri = getenv("ENGRAM_TEST_NEO4J_URI");
    if (!uri || !*uri) {
        const char *req = getenv("ENGRAM_REQUIRE_NEO4J");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "FAIL: ENGRAM_REQUIRE_NEO4J=1 but ENGRAM_TEST_NEO4J_URI is not set\n");
            return 1;
        }
        fprintf(stderr, "SKIP: no Neo4j (set ENGRAM_TEST_NEO4J_URI or run `make test`)\n");
        return EG_TEST_SKIP;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->uri = uri;
    cfg->auth = BOLT_AUTH_BASIC;
    cfg->user = getenv("ENGRAM_TEST_NEO4J_USER");
    if (!cfg->user)
        cfg->user = "neo4j";
    cfg->password = getenv("ENGRAM_TEST_NEO4J_PASSWORD");
    if (!cfg->password)
        cfg->password = "";
    cfg->user_agent = "engram-tests/" ENGRAM_VERSION;
    return 0;
}

const char *eg_testenv_source_path(const char *rel)
{
    static char path[4096];
    const char *src = getenv("ENGRAM_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    return path;
}

const char *eg_testenv_tmpdir(const char *name)
{
    static char path[4096];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/engram-test-%s-%d", base ? base : "/tmp", name, (int)getpid());
    mkdir(path, 0700);
    return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int eg_testenv_rmtree(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0)
        return -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int eg_testenv_models(const char **dir)
{
    static char buf[4096];
    const char *d = embed_local_model_dir(buf, sizeof buf);
    if (d && embed_local_model_installed(d, EMBED_LOCAL_MINILM) && embed_local_model_installed(d, EMBED_LOCAL_BGE)) {
        *dir = d;
        return 0;
    }
    const char *allow = getenv("ENGRAM_ALLOW_MISSING_MODELS");
    bool skip = allow && strcmp(allow, "1") == 0;
    fprintf(stderr, "%s: the local models are not installed in %s; install them with scripts/install-models.sh "
            "(scripts/setup.sh runs it)%s\n", skip ? "skipped" : "FAIL", d ? d : "(no models directory)",
            skip ? "" : "; ENGRAM_ALLOW_MISSING_MODELS=1 skips");
    return skip ? EG_TEST_SKIP : 1;
}

bool eg_testenv_wait(bool (*cond)(void *), void *arg, int64_t ms)
{
    for (int64_t end = eg_mono_ms() + ms; eg_mono_ms() < end;) {
        if (cond(arg))
            return true;
        eg_sleep_ms(10);
    }
    return cond(arg);
}
