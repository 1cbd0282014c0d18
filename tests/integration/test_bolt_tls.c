/*
 * test_bolt_tls.c - TLS proven against a real Neo4j: a verified connection
 * succeeds, and every way verification must fail does, with a message that
 * says why.
 *
 * The test makes its own PKI with OpenSSL (nothing is committed): a CA, a
 * server certificate for DNS:localhost and IP:127.0.0.1 signed by it, one
 * for DNS:other.test only, and an expired one for localhost.  It starts a
 * private Neo4j ($ENGRAM_NEO4J_LOCAL, else the source tree's
 * tools/neo4j-local/neo4j) with --bolt-tls-dir, so Bolt speaks TLS only,
 * and restarts it with the other certificates for the cases that need them.
 *
 * What it proves, in order (one server, restarted twice):
 *   bolt+s with the CA file: bolt_conn (by name and by IP address), the pool
 *     (the setting travels through it), and `engram doctor` with
 *     NEO4J_TRUSTED_CERTIFICATES (the path every subcommand takes);
 *   bolt+ssc connects with no CA; neo4j+s connects with the CA; plain
 *     bolt:// is refused (TLS only); the launcher refuses a TLS directory
 *     without private.key before starting anything;
 *   bolt+s without the CA is refused (unknown CA), also by doctor;
 *   an unreadable CA file is refused, naming the file;
 *   a certificate for another name: refused, naming the expected host and
 *     "hostname mismatch" (and "IP address mismatch" by address);
 *   an expired certificate: refused, "certificate has expired", naming the host.
 *
 * Skipped (77) when no TLS Neo4j can be started here (no launcher, no Java),
 * unless ENGRAM_REQUIRE_NEO4J=1 (make test), where that is a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/pool.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAY (24L * 3600L)

static char g_wrapper[4096];
static char g_dir[2048];    /* scratch: pki/, tls/ (what Neo4j reads), neo4j/ */
static char g_port[16];
static char g_pw[33];
static bool g_require;

/* ---- the PKI ---------------------------------------------------------- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/*
 * A certificate for `key` valid from now+from_s to now+to_s: a CA
 * (self-signed) when issuer is NULL, else a server certificate with the
 * subjectAltName `san`, signed by issuer/issuer_key.
 */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key,
                      long from_s, long to_s)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    X509 *signer = issuer ? issuer : x;
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(signer)), 1);
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer) {
        add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
        add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(x, signer, NID_ext_key_usage, "serverAuth");
        add_ext(x, signer, NID_subject_alt_name, san);
    } else {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    /* PEM_write_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"), what Neo4j reads */
    int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(ok, 1);
}

static const char *path_in(const char *sub)
{
    static char p[8][2304]; /* a ring: several may appear in one call */
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/%s", g_dir, sub);
    return p[i];
}

/* pki/ca.pem; pki/{good,other,expired}.crt and pki/server.key (one key for all three). */
static void make_pki(void)
{
    mkdir(path_in("pki"), 0700);
    mkdir(path_in("tls"), 0700);
    EVP_PKEY *ca_key = new_key(), *srv_key = new_key();
    X509 *ca = new_cert(ca_key, "engram test CA", NULL, NULL, NULL, -DAY, 2 * DAY);
    X509 *good = new_cert(srv_key, "localhost", "DNS:localhost,IP:127.0.0.1", ca, ca_key, -DAY, DAY);
    X509 *other = new_cert(srv_key, "other.test", "DNS:other.test", ca, ca_key, -DAY, DAY);
    X509 *expired = new_cert(srv_key, "localhost", "DNS:localhost,IP:127.0.0.1", ca, ca_key, -3 * DAY, -DAY);
    write_pem(path_in("pki/ca.pem"), ca, NULL);
    write_pem(path_in("pki/good.crt"), good, NULL);
    write_pem(path_in("pki/other.crt"), other, NULL);
    write_pem(path_in("pki/expired.crt"), expired, NULL);
    write_pem(path_in("pki/server.key"), NULL, srv_key);
    X509_free(ca);
    X509_free(good);
    X509_free(other);
    X509_free(expired);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
}

/* ---- processes ---------------------------------------------------------- */

/* Run a shell command; its output (stdout+stderr as the command routes
 * them) into out.  Returns the exit status, or -1. */
static int run(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t len = 0;
    char buf[1024];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        if (out && len + 1 < n) {
            size_t c = k < n - 1 - len ? k : n - 1 - len;
            memcpy(out + len, buf, c);
            len += c;
        }
    }
    if (out)
        out[len] = '\0';
    int st = pclose(f);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Serve `cert` (pki/NAME.crt): copy it and the key where --bolt-tls-dir reads. */
static void install_cert(const char *name)
{
    char cmd[8192], crt[64];
    snprintf(crt, sizeof crt, "pki/%s.crt", name);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s'", path_in(crt), path_in("tls/public.crt"),
             path_in("pki/server.key"), path_in("tls/private.key"));
    assert_int_equal(run(cmd, NULL, 0), 0);
}

/* start or restart the private Neo4j with Bolt TLS; 0 or -1 (log printed). */
static int neo4j(const char *verb)
{
    char cmd[16384], out[4096];
    /* --watch-pid: if ctest kills us on a timeout, the JVM stops by itself;
     * the password comes from the environment (a command line shows in ps) */
    snprintf(cmd, sizeof cmd, "'%s' %s --data '%s' --port %s --bolt-tls-dir '%s' --watch-pid %ld --timeout 180 2>&1",
             g_wrapper, verb, path_in("neo4j"), g_port, path_in("tls"), (long)getpid());
    int rc = run(cmd, out, sizeof out);
    char *uri = strstr(out, "bolt+s://127.0.0.1:");
    if (rc != 0 || !uri) {
        fprintf(stderr, "%s of a TLS Neo4j failed (rc %d):\n%s\n", verb, rc, out);
        return -1;
    }
    snprintf(g_port, sizeof g_port, "%.*s", (int)strspn(uri + 19, "0123456789"), uri + 19);
    return 0;
}

static void restart_with(const char *name)
{
    install_cert(name);
    if (neo4j("restart") != 0)
        fail_msg("could not restart Neo4j with the %s certificate", name);
}

/* ---- the client side -------------------------------------------------- */

static const char *uri_for(const char *scheme, const char *host)
{
    static char u[256];
    snprintf(u, sizeof u, "%s://%s:%s", scheme, host, g_port);
    return u;
}

/* Open with (scheme, host, ca_file); on success run RETURN 1 and check it. */
static int try_open(const char *scheme, const char *host, const char *ca_file, eg_error *err)
{
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = uri_for(scheme, host);
    cfg.user = "neo4j";
    cfg.password = g_pw;
    cfg.ca_file = ca_file;
    cfg.connect_timeout_ms = 20000;
    cfg.read_timeout_ms = 60000;
    bolt_conn *c = NULL;
    eg_error_clear(err);
    int rc = bolt_conn_open(&c, &cfg, err);
    if (rc == 0) {
        json_t *rows = NULL;
        rc = bolt_conn_query_json(c, "RETURN 1 AS one", NULL, NULL, &rows, err);
        if (rc == 0)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "one")), 1);
        json_decref(rows);
    }
    bolt_conn_free(c);
    return rc;
}

static void expect_ok(const char *scheme, const char *host, const char *ca_file)
{
    eg_error err;
    if (try_open(scheme, host, ca_file, &err) != 0)
        fail_msg("%s with CA %s: %s", uri_for(scheme, host), ca_file ? ca_file : "(none)", err.message);
}

/* Refused, not retryable, and the message holds every one of the words. */
static void expect_refused(const char *scheme, const char *host, const char *ca_file, ...)
{
    eg_error err;
    int rc = try_open(scheme, host, ca_file, &err);
    fprintf(stderr, "# %s: %s\n", uri_for(scheme, host), rc ? err.message : "connected");
    if (rc == 0)
        fail_msg("%s with CA %s connected; it must be refused", uri_for(scheme, host), ca_file ? ca_file : "(none)");
    assert_false(err.retryable);
    va_list ap;
    va_start(ap, ca_file);
    for (const char *w; (w = va_arg(ap, const char *));)
        if (!strstr(err.message, w))
            fail_msg("the error for %s lacks \"%s\": %s", uri_for(scheme, host), w, err.message);
    va_end(ap);
}

/* `engram doctor` with NEO4J_URI and NEO4J_TRUSTED_CERTIFICATES (NULL: unset). */
static int doctor(const char *uri, const char *ca_file, char *out, size_t n)
{
    const char *bin = getenv("ENGRAM_BIN");
    if (!bin || !*bin)
        fail_msg("ENGRAM_BIN not set");
    setenv("NEO4J_URI", uri, 1);
    if (ca_file)
        setenv("NEO4J_TRUSTED_CERTIFICATES", ca_file, 1);
    else
        unsetenv("NEO4J_TRUSTED_CERTIFICATES");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' doctor 2>&1", bin);
    int rc = run(cmd, out, n);
    fprintf(stderr, "# doctor %s (CA %s): exit %d\n", uri, ca_file ? ca_file : "none", rc);
    return rc;
}

/* ---- the cases ---------------------------------------------------------- */

static void test_bolt_tls__verified_with_the_ca_file(void **state)
{
    (void)state;
    expect_ok("bolt+s", "localhost", path_in("pki/ca.pem"));
    expect_ok("bolt+s", "127.0.0.1", path_in("pki/ca.pem")); /* the IP address SAN */
}

static void test_bolt_tls__the_pool_carries_the_ca_file(void **state)
{
    (void)state;
    bolt_config cfg = BOLT_CONFIG_INIT;
    char ca[2304];
    snprintf(ca, sizeof ca, "%s", path_in("pki/ca.pem"));
    cfg.uri = uri_for("bolt+s", "localhost");
    cfg.user = "neo4j";
    cfg.password = g_pw;
    cfg.ca_file = ca;
    bolt_pool *pool;
    eg_error err;
    assert_int_equal(bolt_pool_new(&pool, &cfg, NULL, &err), 0);
    memset(ca, 0, sizeof ca); /* the pool keeps its own copy */
    if (bolt_pool_verify(pool, &err) != 0)
        fail_msg("pool over bolt+s: %s", err.message);
    bolt_conn *c;
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(c, "RETURN 1 AS one", NULL, NULL, &rows, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "one")), 1);
    json_decref(rows);
    bolt_pool_release(pool, c);
    bolt_pool_free(pool);
}

static void test_bolt_tls__doctor_with_trusted_certificates(void **state)
{
    (void)state;
    char out[16384];
    int rc = doctor(uri_for("bolt+s", "localhost"), path_in("pki/ca.pem"), out, sizeof out);
    if (rc != 0 || !strstr(out, "server agent:") || !strstr(out, "Neo4j/"))
        fail_msg("engram doctor over bolt+s with NEO4J_TRUSTED_CERTIFICATES: exit %d\n%s", rc, out);
    /* neo4j+s: the routing scheme, verified the same way */
    rc = doctor(uri_for("neo4j+s", "localhost"), path_in("pki/ca.pem"), out, sizeof out);
    if (rc != 0 || !strstr(out, "server agent:"))
        fail_msg("engram doctor over neo4j+s: exit %d\n%s", rc, out);
    /* without the setting the private CA is unknown: exit 1, and why */
    rc = doctor(uri_for("bolt+s", "localhost"), NULL, out, sizeof out);
    if (rc != 1 || !strstr(out, "not signed by a trusted CA"))
        fail_msg("engram doctor without NEO4J_TRUSTED_CERTIFICATES: exit %d\n%s", rc, out);
    /* a CA file that is not there is named */
    rc = doctor(uri_for("bolt+s", "localhost"), path_in("pki/missing.pem"), out, sizeof out);
    if (rc != 1 || !strstr(out, path_in("pki/missing.pem")) || !strstr(out, "No such file"))
        fail_msg("engram doctor with a missing CA file: exit %d\n%s", rc, out);
}

static void test_bolt_tls__ssc_needs_no_ca_and_neo4j_s_verifies(void **state)
{
    (void)state;
    expect_ok("bolt+ssc", "localhost", NULL);
    expect_ok("neo4j+ssc", "localhost", NULL);
    expect_ok("neo4j+s", "localhost", path_in("pki/ca.pem"));
    expect_refused("neo4j+s", "localhost", NULL, "localhost", "not signed by a trusted CA", (char *)NULL);
}

static void test_bolt_tls__plain_text_is_refused(void **state)
{
    (void)state;
    /* --bolt-tls-dir means TLS only (tls_level REQUIRED) */
    eg_error err;
    assert_int_not_equal(try_open("bolt", "localhost", NULL, &err), 0);
    fprintf(stderr, "# bolt://localhost:%s: %s\n", g_port, err.message);
}

static void test_bolt_tls__launcher_wants_the_key(void **state)
{
    (void)state;
    /* parse-time check: exits before any JVM starts */
    mkdir(path_in("nokey"), 0700);
    char cmd[16384], out[4096];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && '%s' start --data '%s' --port 0 --bolt-tls-dir '%s' 2>&1",
             path_in("pki/good.crt"), path_in("nokey/public.crt"), g_wrapper, path_in("nokey-data"),
             path_in("nokey"));
    int rc = run(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "private.key"))
        fail_msg("start without private.key: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' status --data '%s'", g_wrapper, path_in("nokey-data"));
    assert_int_equal(run(cmd, out, sizeof out), 3); /* stopped: nothing was started */
}

static void test_bolt_tls__unknown_ca_is_refused(void **state)
{
    (void)state;
    expect_refused("bolt+s", "localhost", NULL, "localhost", "not signed by a trusted CA",
                   "unable to get local issuer certificate", (char *)NULL);
    /* the server's own certificate as the CA file does not help: the chain must end at its CA */
    expect_refused("bolt+s", "localhost", path_in("pki/good.crt"), "not signed by a trusted CA", (char *)NULL);
}

static void test_bolt_tls__unreadable_ca_file_is_named(void **state)
{
    (void)state;
    expect_refused("bolt+s", "localhost", path_in("pki/missing.pem"), path_in("pki/missing.pem"),
                   "cannot read the CA file", "No such file", (char *)NULL);
    /* a file without a PEM certificate */
    expect_refused("bolt+s", "localhost", path_in("tls/private.key"), path_in("tls/private.key"),
                   "cannot load the CA file", (char *)NULL);
}

static void test_bolt_tls__wrong_name_is_refused(void **state)
{
    (void)state;
    restart_with("other"); /* DNS:other.test only */
    expect_refused("bolt+s", "localhost", path_in("pki/ca.pem"), "does not match the host localhost",
                   "hostname mismatch", "it is for other.test", (char *)NULL);
    expect_refused("bolt+s", "127.0.0.1", path_in("pki/ca.pem"), "does not match the host 127.0.0.1",
                   "IP address mismatch", (char *)NULL);
    expect_refused("neo4j+s", "localhost", path_in("pki/ca.pem"), "hostname mismatch", (char *)NULL);
    /* the certificate itself is fine: only the name is wrong */
    expect_ok("bolt+ssc", "localhost", NULL);
}

static void test_bolt_tls__expired_certificate_is_refused(void **state)
{
    (void)state;
    restart_with("expired");
    expect_refused("bolt+s", "localhost", path_in("pki/ca.pem"), "localhost", "certificate has expired", (char *)NULL);
    char out[16384];
    int rc = doctor(uri_for("bolt+s", "localhost"), path_in("pki/ca.pem"), out, sizeof out);
    if (rc != 1 || !strstr(out, "certificate has expired") || !strstr(out, "localhost"))
        fail_msg("engram doctor against an expired certificate: exit %d\n%s", rc, out);
}

/* ---- fixture ---------------------------------------------------------- */

static int skip_or_fail(const char *why)
{
    if (g_require) {
        fprintf(stderr, "FAIL: ENGRAM_REQUIRE_NEO4J=1 but %s\n", why);
        return 1;
    }
    fprintf(stderr, "SKIP: %s\n", why);
    return EG_TEST_SKIP;
}

static int stop_neo4j(void)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' stop --data '%s' >/dev/null 2>&1", g_wrapper, path_in("neo4j"));
    return run(cmd, NULL, 0) == 0 ? 0 : -1;
}

int main(void)
{
    const char *req = getenv("ENGRAM_REQUIRE_NEO4J");
    g_require = req && strcmp(req, "1") == 0;
    const char *w = getenv("ENGRAM_NEO4J_LOCAL");
    snprintf(g_wrapper, sizeof g_wrapper, "%s", w && *w ? w : eg_testenv_source_path("tools/neo4j-local/neo4j"));
    if (access(g_wrapper, X_OK) != 0)
        return skip_or_fail("no Neo4j launcher (ENGRAM_NEO4J_LOCAL, tools/neo4j-local/neo4j)");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' java >/dev/null 2>&1", g_wrapper);
    if (run(cmd, NULL, 0) != 0)
        return skip_or_fail("no Java to run Neo4j on (see: tools/neo4j-local/neo4j java)");

    snprintf(g_dir, sizeof g_dir, "%s", eg_testenv_tmpdir("bolt-tls"));
    eg_rand_hex(g_pw, 16);
    /* the launcher and engram doctor read the password from here; nothing
     * else of the caller's Neo4j settings may leak into this test */
    setenv("NEO4J_PASSWORD", g_pw, 1);
    setenv("NEO4J_USERNAME", "neo4j", 1);
    setenv("ENGRAM_EMBED_PROVIDER", "offline", 1);
    unsetenv("NEO4J_PASSWORD_FILE");
    unsetenv("NEO4J_DATABASE");

    make_pki();
    install_cert("good");
    snprintf(g_port, sizeof g_port, "0");
    if (neo4j("start") != 0) {
        stop_neo4j();
        return skip_or_fail("a Neo4j with Bolt over TLS did not start (its log is above)");
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_tls__verified_with_the_ca_file),
        cmocka_unit_test(test_bolt_tls__the_pool_carries_the_ca_file),
        cmocka_unit_test(test_bolt_tls__doctor_with_trusted_certificates),
        cmocka_unit_test(test_bolt_tls__ssc_needs_no_ca_and_neo4j_s_verifies),
        cmocka_unit_test(test_bolt_tls__plain_text_is_refused),
        cmocka_unit_test(test_bolt_tls__launcher_wants_the_key),
        cmocka_unit_test(test_bolt_tls__unknown_ca_is_refused),
        cmocka_unit_test(test_bolt_tls__unreadable_ca_file_is_named),
        cmocka_unit_test(test_bolt_tls__wrong_name_is_refused),
        cmocka_unit_test(test_bolt_tls__expired_certificate_is_refused),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (stop_neo4j() != 0)
        failed++;
    if (failed == 0)
        eg_testenv_rmtree(g_dir); /* a failed run keeps its certificates and logs for a look */
    return failed;
}
