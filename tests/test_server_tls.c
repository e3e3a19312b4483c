/* longserve end to end over HTTPS (--tls-cert, --tls-key, --tls-client-ca): certificates made
 * here with openssl, requests with curl (the harness's client speaks plain HTTP only); each
 * test is skipped with a message when either tool is missing (tools/install-deps.sh installs
 * both). Harness: tests/server_harness.h. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_harness.h"

static char g_dir[64]; /* the certificates of this run */

/* Every test starts so: without the tools (or certificates) it is skipped, saying why. */
static int have_certs(void)
{
    if (g_dir[0]) return 1;
    fprintf(stderr, "tls: SKIPPED: openssl or curl is not installed, or openssl failed "
                    "(tools/install-deps.sh installs both)\n");
    return 0;
}

/* A shell command's stdout (malloc'd) and its exit status in *rc. */
__attribute__((format(printf, 2, 3))) static char *sh(int *rc, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r"); /* no ck_assert: make_certs runs outside the tests */
    if (!p) {
        perror("popen");
        abort();
    }
    size_t n = 0, cap = 1 << 16;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + n, 1, cap - 1 - n, p)) > 0 && n + k < cap - 1)
        n += k;
    n += k;
    out[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* A self-signed server certificate for localhost, a CA, a client certificate it signed, and
 * a client certificate it did not: once, in main (Check forks each test), into g_dir; g_dir
 * stays empty when openssl or curl is missing. */
static void make_certs(void)
{
    if (system("command -v openssl >/dev/null 2>&1 && command -v curl >/dev/null 2>&1")) return;
    snprintf(g_dir, sizeof g_dir, "/tmp/ls_tls_XXXXXX");
    if (!mkdtemp(g_dir)) {
        g_dir[0] = 0;
        return;
    }
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    int rc;
    char *out = sh(&rc,
                   "(cd %s && openssl req -x509 -days 1 %s -subj /CN=localhost "
                   "-addext subjectAltName=DNS:localhost -keyout key.pem -out cert.pem && "
                   "openssl req -x509 -days 1 %s -subj /CN=test-ca -keyout ca.key -out ca.pem && "
                   "openssl req %s -subj /CN=client -keyout client.key -out client.csr && "
                   "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                   "-days 1 -out client.pem && "
                   "openssl req -x509 -days 1 %s -subj /CN=stranger -keyout other.key "
                   "-out other.pem) 2>&1",
                   g_dir, ec, ec, ec, ec);
    if (rc) {
        fprintf(stderr, "tls: openssl failed (exit %d): %s\n", rc, out);
        g_dir[0] = 0;
    }
    free(out);
}

static void cleanup_certs(void)
{
    if (!g_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) fprintf(stderr, "tls: could not remove %s\n", g_dir);
    g_dir[0] = 0;
}

/* curl to https://localhost:PORT with our CA; args follow (URLs are relative: %%U is
 * replaced by the base). */
static char *curl(int port, int *rc, const char *args)
{
    char base[64], expanded[2048];
    snprintf(base, sizeof base, "https://localhost:%d", port);
    size_t n = 0;
    for (const char *a = args; *a && n < sizeof expanded - 64; a++) {
        if (a[0] == '%' && a[1] == 'U') {
            n += (size_t)snprintf(expanded + n, sizeof expanded - n, "%s", base);
            a++;
        } else {
            expanded[n++] = *a;
        }
    }
    expanded[n] = 0;
    return sh(rc, "curl -sS --max-time 60 --resolve localhost:%d:127.0.0.1 --cacert %s/cert.pem %s",
              port, g_dir, expanded);
}

/* Starts the server with TLS flags; waits for /ready 200 over HTTPS. */
static void tls_server(server *s, int client_ca)
{
    static char cert[128], key[128], ca[128], ccert[128], ckey[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", g_dir);
    snprintf(key, sizeof key, "%s/key.pem", g_dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(ccert, sizeof ccert, "%s/client.pem", g_dir);
    snprintf(ckey, sizeof ckey, "%s/client.key", g_dir);
    const char *extra[] = {
        "--tls-cert", cert, "--tls-key", key, client_ca ? "--tls-client-ca" : NULL, ca, NULL};
    static const char *const models[] = {"lf_base=lf_base", NULL};
    server_spawn_models(s, models, extra);
    server_wait_port(s);
    char args[512], who[300] = "";
    if (client_ca) snprintf(who, sizeof who, "--cert %s --key %s", ccert, ckey);
    snprintf(args, sizeof args, "%s -o /dev/null -w '%%{http_code}' %%U/ready", who);
    double t0 = now_s();
    for (;;) {
        int rc;
        char *out = curl(s->port, &rc, args);
        int ok = strcmp(out, "200") == 0;
        free(out);
        if (ok) return;
        ck_assert_msg(now_s() - t0 < 60, "not ready over HTTPS within 60 s (see %s)", s->log_file);
        sleep_ms(20);
    }
}

START_TEST(https_serves)
{
    if (!have_certs()) return;
    server s;
    tls_server(&s, 0);
    int rc;
    char *out = curl(s.port, &rc, "-w ' %{http_code}' %U/health");
    ck_assert_msg(rc == 0 && strcmp(out, "{\"status\":\"live\"} 200") == 0, "%d %s", rc, out);
    free(out);
    /* two inferences on one connection (keep-alive): one connect, then none */
    char *body = v2_body(1, 8, 1), path[128];
    snprintf(path, sizeof path, "%s/body.json", g_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(body, f);
    fclose(f);
    free(body);
    char args[1024];
    snprintf(args, sizeof args,
             "-H 'Content-Type: application/json' --data-binary @%s -o %s/r1 -o %s/r2 "
             "-w '%%{http_code} %%{num_connects};' %%U/v2/models/lf_base/infer "
             "%%U/v2/models/lf_base/infer",
             path, g_dir, g_dir);
    out = curl(s.port, &rc, args);
    ck_assert_msg(rc == 0 && strcmp(out, "200 1;200 0;") == 0, "%d %s", rc, out);
    free(out);
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/r%d", g_dir, i);
        char *r = read_file(path);
        ck_assert_msg(strstr(r, "last_hidden_state") != NULL, "%.200s", r);
        free(r);
    }
    /* plain HTTP to the TLS port: no HTTP answer, the connection closed; the server serves on */
    out = sh(&rc,
             "curl -sS --max-time 30 -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/health "
             "2>/dev/null",
             s.port);
    ck_assert_msg(rc != 0 && strcmp(out, "000") == 0, "plain HTTP: %d %s", rc, out);
    free(out);
    out = curl(s.port, &rc, "-o /dev/null -w '%{http_code}' %U/ready");
    ck_assert_msg(rc == 0 && strcmp(out, "200") == 0, "%d %s", rc, out);
    free(out);
    /* /info shows the paths, the log never the key */
    out = curl(s.port, &rc, "%U/info");
    ck_assert_msg(strstr(out, "\"tls_cert\":\"/tmp/ls_tls_") && strstr(out, "\"tls_key\":\""), "%s",
                  out);
    ck_assert(strstr(out, "PRIVATE KEY") == NULL);
    free(out);
    char *log = read_file(s.log_file);
    ck_assert(strstr(log, "(HTTPS)") != NULL);
    ck_assert(strstr(log, "PRIVATE KEY") == NULL && strstr(log, "-----BEGIN") == NULL);
    free(log);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(https_client_ca)
{
    if (!have_certs()) return;
    server s;
    tls_server(&s, 1);
    char args[512];
    int rc;
    /* without a client certificate, or with one the CA did not sign: 401 */
    char *out = curl(s.port, &rc, "-w ' %{http_code}' %U/health");
    ck_assert_msg(strstr(out, "--tls-client-ca") && strstr(out, " 401"), "%d %s", rc, out);
    free(out);
    snprintf(args, sizeof args,
             "--cert %s/other.pem --key %s/other.key -w ' %%{http_code}' %%U/health", g_dir, g_dir);
    out = curl(s.port, &rc, args);
    ck_assert_msg(strstr(out, " 401") != NULL, "%d %s", rc, out);
    free(out);
    snprintf(args, sizeof args,
             "--cert %s/client.pem --key %s/client.key -w ' %%{http_code}' %%U/health", g_dir,
             g_dir);
    out = curl(s.port, &rc, args);
    ck_assert_msg(rc == 0 && strstr(out, " 200") != NULL, "%d %s", rc, out);
    free(out);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* Missing, unreadable or invalid files: a start-up error naming the flag and the file. */
START_TEST(tls_file_errors)
{
    if (!have_certs()) return;
    char cert[128], key[128], other_key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", g_dir);
    snprintf(key, sizeof key, "%s/key.pem", g_dir);
    snprintf(other_key, sizeof other_key, "%s/other.key", g_dir);
    static const char *const models[] = {"lf_base=lf_base", NULL};
    const struct {
        const char *flags[7];
        int exit;
        const char *want;
    } cases[] = {
        {{"--tls-cert", cert}, 2, "give --tls-cert and --tls-key together"},
        {{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", key},
         2,
         "--tls-cert /nonexistent/cert.pem: No such file or directory"},
        {{"--tls-cert", cert, "--tls-key", "/etc/hostname"},
         2,
         "--tls-key /etc/hostname: not a PEM"},
        {{"--tls-cert", cert, "--tls-key", other_key}, 1, "do not match"},
        {{"--tls-cert", key, "--tls-key", key}, 1, "--tls-cert"},
        {{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key}, 1, "--tls-client-ca"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server s;
        server_spawn_models(&s, models, cases[i].flags);
        int rc = server_wait_exit(&s, 60);
        char *log = read_file(s.log_file);
        ck_assert_msg(rc == cases[i].exit && strstr(log, cases[i].want), "case %zu: exit %d: %s", i,
                      rc, log);
        ck_assert(strstr(log, "PRIVATE KEY") == NULL);
        free(log);
        unlink(s.log_file);
        unlink(s.port_file);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, https_serves);
    tcase_add_test(tc, https_client_ca);
    tcase_add_test(tc, tls_file_errors);
    suite_add_tcase(su, tc);
    make_certs();
    int rc = harness_run(su);
    cleanup_certs();
    return rc;
}
