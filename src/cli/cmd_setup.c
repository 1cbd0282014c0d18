/*
 * cmd_setup.c - `engram setup claude-desktop|cursor`: write or merge this
 * installation into an MCP client's configuration, after showing the
 * change.
 *
 * Only the client's entry for engram (mcpServers.<name>) is touched; every
 * other key of the file is kept as it was.  The entry runs this very binary
 * (its absolute path) with `serve`, and carries the Neo4j settings of the
 * current environment.  The password is never copied into the client's
 * file: the entry names a file that holds it (NEO4J_PASSWORD_FILE, or the
 * one `make run` writes), and without one it says to add it by hand.  The
 * file is replaced atomically, the previous version kept as <file>.bak.
 */
#include "cli/commands.h"
#include "core/alloc.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup_usage(FILE *f)
{
    fprintf(f, "usage: engram setup claude-desktop|cursor [--config FILE] [--name NAME] [--yes] [--dry-run]\n"
               "  claude-desktop   ~/.config/Claude/claude_desktop_config.json\n"
               "                   (macOS: ~/Library/Application Support/Claude/...)\n"
               "  cursor           ~/.cursor/mcp.json (all projects)\n"
               "  --config FILE    another file (e.g. a project's .cursor/mcp.json)\n"
               "  --name NAME      the server's name in the client (default engram)\n"
               "  --yes            write without asking (needed when stdin is not a terminal)\n"
               "  --dry-run        show the change, write nothing\n"
               "The entry runs this engram binary with `serve` and the Neo4j settings of the current\n"
               "environment (NEO4J_URI, NEO4J_USERNAME, NEO4J_DATABASE, NEO4J_TRUSTED_CERTIFICATES,\n"
               "ENGRAM_NAMESPACE); the\n"
               "password is referenced by file (NEO4J_PASSWORD_FILE), never copied.\n");
}

static int default_path(const char *client, char *out, size_t n)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return -1;
    int w;
    if (!strcmp(client, "cursor")) {
        w = snprintf(out, n, "%s/.cursor/mcp.json", home);
    } else {
        char mac[PATH_MAX];
        struct stat st;
        snprintf(mac, sizeof mac, "%s/Library/Application Support/Claude", home);
        const char *xdg = getenv("XDG_CONFIG_HOME");
        if (stat(mac, &st) == 0 && S_ISDIR(st.st_mode))
            w = snprintf(out, n, "%s/claude_desktop_config.json", mac);
        else if (xdg && *xdg)
            w = snprintf(out, n, "%s/Claude/claude_desktop_config.json", xdg);
        else
            w = snprintf(out, n, "%s/.config/Claude/claude_desktop_config.json", home);
    }
    return w > 0 && (size_t)w < n ? 0 : -1;
}

/* The password file: NEO4J_PASSWORD_FILE, else the one `make run` keeps, if present. */
static const char *password_file(char *buf, size_t n)
{
    const char *f = getenv("NEO4J_PASSWORD_FILE");
    if (f && *f)
        return f;
    const char *home = getenv("HOME");
    struct stat st;
    if (home && snprintf(buf, n, "%s/.local/share/engram/neo4j-password", home) > 0 && stat(buf, &st) == 0)
        return buf;
    return NULL;
}

/* The entry for this installation (new). */
static json_t *entry(void)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0)
        return NULL;
    self[k] = '\0';
    json_t *env = json_object();
    static const char *const vars[] = {"NEO4J_URI", "NEO4J_USERNAME", "NEO4J_DATABASE", "NEO4J_TRUSTED_CERTIFICATES",
                                       "ENGRAM_NAMESPACE", NULL};
    for (size_t i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            json_object_set_new(env, vars[i], json_string(v));
    }
    if (!json_object_get(env, "NEO4J_URI"))
        json_object_set_new(env, "NEO4J_URI", json_string("bolt://127.0.0.1:7687"));
    if (!json_object_get(env, "NEO4J_USERNAME"))
        json_object_set_new(env, "NEO4J_USERNAME", json_string("neo4j"));
    char pb[PATH_MAX];
    const char *pf = password_file(pb, sizeof pb);
    if (pf)
        json_object_set_new(env, "NEO4J_PASSWORD_FILE", json_string(pf));
    return json_pack("{s:s, s:[s], s:o}", "command", self, "args", "serve", "env", env);
}

static int write_atomic(const char *path, const json_t *doc)
{
    char tmp[PATH_MAX + 16], bak[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    snprintf(bak, sizeof bak, "%s.bak", path);
    /* the client's file may hold its own secrets: keep it private */
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fchmod(fileno(f), 0600);
    int rc = json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 && fputc('\n', f) != EOF ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    struct stat st;
    if (rc == 0 && stat(path, &st) == 0) {
        unlink(bak);
        if (link(path, bak) != 0)
            rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* mkdir -p of path's directory. */
static int make_parent(const char *path)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    for (char *p = d + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(d, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(d, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int cli_cmd_setup(int argc, char **argv)
{
    const char *client = NULL, *config = NULL, *name = "engram";
    bool yes = false, dry = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            setup_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--config") && v) {
            config = argv[++i];
        } else if (!strcmp(a, "--name") && v && *v) {
            name = argv[++i];
        } else if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
            yes = true;
        } else if (!strcmp(a, "--dry-run")) {
            dry = true;
        } else if (!client && (!strcmp(a, "claude-desktop") || !strcmp(a, "cursor"))) {
            client = a;
        } else {
            fprintf(stderr, "engram setup: bad argument '%s'\n", a);
            setup_usage(stderr);
            return 2;
        }
    }
    if (!client) {
        setup_usage(stderr);
        return 2;
    }
    char path[PATH_MAX];
    if (config)
        snprintf(path, sizeof path, "%s", config);
    else if (default_path(client, path, sizeof path) != 0) {
        fprintf(stderr, "engram setup: no HOME: name the file with --config\n");
        return 2;
    }
    json_error_t je;
    json_t *doc = NULL;
    if (access(path, F_OK) == 0) {
        doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(doc)) {
            fprintf(stderr, "engram setup: %s is not a JSON object (line %d: %s); fix or move it first\n", path,
                    je.line, je.text);
            json_decref(doc);
            return 1;
        }
    } else {
        doc = json_object();
    }
    json_t *servers = json_object_get(doc, "mcpServers");
    if (servers && !json_is_object(servers)) {
        fprintf(stderr, "engram setup: %s: \"mcpServers\" is not an object\n", path);
        json_decref(doc);
        return 1;
    }
    json_t *want = entry();
    if (!want) {
        fprintf(stderr, "engram setup: cannot find this program's path\n");
        json_decref(doc);
        return 1;
    }
    json_t *have = servers ? json_object_get(servers, name) : NULL;
    if (have && json_equal(have, want)) {
        printf("%s: the \"%s\" entry is already this installation; nothing to change\n", path, name);
        json_decref(want);
        json_decref(doc);
        return 0;
    }
    char *before = have ? json_dumps(have, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    char *after = json_dumps(want, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n%s mcpServers.\"%s\":\n", path, have ? "replace" : "add", name);
    if (before)
        printf("--- now\n%s\n", before);
    printf("+++ new\n%s\n", after ? after : "?");
    eg_free(before);
    eg_free(after);
    if (!json_object_get(json_object_get(want, "env"), "NEO4J_PASSWORD_FILE"))
        printf("note: no password file found (NEO4J_PASSWORD_FILE): add NEO4J_PASSWORD_FILE, or the password, to\n"
               "      the entry's env by hand\n");
    int rc = 0;
    if (dry) {
        printf("dry run: nothing written\n");
    } else {
        if (!yes) {
            if (!isatty(STDIN_FILENO)) {
                fprintf(stderr, "engram setup: not a terminal: re-run with --yes to write the change\n");
                rc = 1;
            } else {
                printf("write it? [y/N] ");
                fflush(stdout);
                char line[16] = "";
                if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
                    printf("nothing written\n");
                    rc = 1;
                }
            }
        }
        if (rc == 0) {
            if (!servers) {
                servers = json_object();
                json_object_set_new(doc, "mcpServers", servers);
            }
            json_object_set(servers, name, want);
            if (make_parent(path) != 0 || write_atomic(path, doc) != 0) {
                fprintf(stderr, "engram setup: cannot write %s: %s\n", path, strerror(errno));
                rc = 1;
            } else {
                printf("written (the previous file, if any, is %s.bak); restart %s to load it\n", path,
                       !strcmp(client, "cursor") ? "Cursor" : "Claude Desktop");
            }
        }
    }
    json_decref(want);
    json_decref(doc);
    return rc;
}
