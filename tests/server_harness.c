/* The integration tests' server harness: longserve ($LONGSERVE) started on 127.0.0.1 with
 * --port 0 --port-file and stopped with SIGTERM, the fixture paths, longserve-run for
 * comparisons, and the requests the tests make, each response checked against
 * proto/openapi.yaml. Failures of tests/httpc.c fail the test. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "openapi_check.h"
#include "server_harness.h"

static void harness_fail(const char *msg)
{
    ck_abort_msg("%s", msg);
}

/* ---- the server process ------------------------------------------------------------------ */

const char *fixture(const char *model, char *buf, size_t n)
{
    const char *f = getenv("LS_FIXTURES");
    snprintf(buf, n, "%s/%s", f ? f : "tests/fixtures", model);
    return buf;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void server_spawn_models(server *s, const char *const *models, const char *const *extra)
{
    const char *bin = getenv("LONGSERVE");
    ck_assert_msg(bin != NULL, "LONGSERVE not set");
    httpc_on_error(harness_fail);
    memset(s, 0, sizeof *s);
    snprintf(s->port_file, sizeof s->port_file, "/tmp/ls-srv-port-%d", (int)getpid());
    snprintf(s->log_file, sizeof s->log_file, "/tmp/ls-srv-log-%d", (int)getpid());
    unlink(s->port_file);
    static char specs[16][700];
    const char *argv[80] = {bin};
    int argc = 1;
    for (int i = 0; models[i] && i < 16; i++) {
        const char *eq = strchr(models[i], '=');
        char dir[512];
        if (eq[1] == '/')
            snprintf(specs[i], sizeof specs[i], "%s", models[i]);
        else
            snprintf(specs[i], sizeof specs[i], "%.*s=%s", (int)(eq - models[i]), models[i],
                     fixture(eq + 1, dir, sizeof dir));
        argv[argc++] = "--model-id";
        argv[argc++] = specs[i];
    }
    const char *common[] = {"--hostname",  "127.0.0.1",  "--port",    "0",
                            "--port-file", s->port_file, "--threads", "1"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        argv[argc++] = common[i];
    for (int i = 0; extra && extra[i] && argc < 78; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    s->pid = fork();
    ck_assert(s->pid >= 0);
    if (s->pid == 0) {
        int fd = creat(s->log_file, 0600);
        if (fd >= 0) dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
}

void server_wait_port(server *s)
{
    double t0 = now_s();
    for (;;) {
        FILE *f = fopen(s->port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok && s->port > 0) break;
        }
        int ws;
        ck_assert_msg(waitpid(s->pid, &ws, WNOHANG) == 0, "longserve exited at startup (see %s)",
                      s->log_file);
        ck_assert_msg(now_s() - t0 < 60, "longserve did not start within 60 s");
        sleep_ms(10);
    }
}

void server_wait_ready(server *s)
{
    double t0 = now_s();
    for (;;) {
        hresp r;
        hreq(s->port, "GET", "/ready", NULL, NULL, &r);
        int st = r.status;
        hresp_free(&r);
        if (st == 200) return;
        int ws;
        ck_assert_msg(waitpid(s->pid, &ws, WNOHANG) == 0, "longserve exited while loading (see %s)",
                      s->log_file);
        ck_assert_msg(now_s() - t0 < 120, "longserve was not ready within 120 s (/ready %d)", st);
        sleep_ms(10);
    }
}

int server_wait_exit(server *s, double timeout_s)
{
    double t0 = now_s();
    int ws = 0;
    while (waitpid(s->pid, &ws, WNOHANG) != s->pid) {
        if (now_s() - t0 > timeout_s) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &ws, 0);
            ck_abort_msg("longserve did not exit within %.0f s", timeout_s);
        }
        sleep_ms(10);
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

void server_start_models(server *s, const char *const *models, const char *const *extra)
{
    server_spawn_models(s, models, extra);
    server_wait_port(s);
    server_wait_ready(s);
}

/* Starts longserve with the models lf_base, lf_qa and lf_seqcls and extra flags. */
void server_start(server *s, const char *const *extra)
{
    static const char *const models[] = {"lf_base=lf_base", "lf_qa=lf_qa", "lf_seqcls=lf_seqcls",
                                         NULL};
    server_start_models(s, models, extra);
}

/* SIGTERM, then the exit status (or -signal); fails after timeout_s. */
int server_stop(server *s, double timeout_s)
{
    kill(s->pid, SIGTERM);
    double t0 = now_s();
    int ws = 0;
    for (;;) {
        pid_t p = waitpid(s->pid, &ws, WNOHANG);
        if (p == s->pid) break;
        if (now_s() - t0 > timeout_s) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &ws, 0);
            ck_abort_msg("longserve did not exit within %.0f s of SIGTERM", timeout_s);
        }
        sleep_ms(10);
    }
    unlink(s->port_file);
    unlink(s->log_file);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

/* ---- proto/openapi.yaml: every response is validated against the schema of its route ---- */

static cJSON *g_spec;
static char g_spec_err[512];

static void spec_load(void)
{
    char dir[512], path[700];
    snprintf(path, sizeof path, "%s/../../proto/openapi.yaml", fixture("", dir, sizeof dir));
    g_spec = oa_load_yaml(path, g_spec_err, sizeof g_spec_err);
}

const cJSON *spec(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, spec_load);
    ck_assert_msg(g_spec != NULL, "proto/openapi.yaml: %s", g_spec_err);
    return g_spec;
}

static const char *spec__header(const void *r, const char *name, char *out, size_t n)
{
    return hheader(r, name, out, n);
}

/* Validates a response against the spec where the spec documents a JSON body for its route,
 * method and status (silently skipped otherwise); returns OA_OK or OA_UNDOCUMENTED. */
int spec_check(const char *method, const char *path, const hresp *r)
{
    const char *tmpl = oa_match_path(spec(), path);
    if (!tmpl) return OA_UNDOCUMENTED;
    char ct[128] = "", enc[32];
    if (hheader(r, "Content-Type", ct, sizeof ct) && strncmp(ct, "text/event-stream", 17) == 0) {
        /* a stream: the spec must list the content type for this route and status */
        ck_assert_msg(oa_documents(spec(), method, tmpl, r->status, "text/event-stream"),
                      "%s %s -> %d: proto/openapi.yaml documents no text/event-stream", method,
                      path, r->status);
        return OA_OK;
    }
    /* a compressed body is checked as it inflates; a binary one by its JSON header */
    hresp plain = *r;
    if (hheader(r, "Content-Encoding", enc, sizeof enc)) {
        plain.body = hinflate(r->body, r->len, &plain.len);
        ck_assert_msg(plain.body != NULL, "%s %s: the %s body does not inflate", method, path, enc);
    }
    char hl[32];
    const int binary = strncmp(ct, "application/octet-stream", 24) == 0;
    if (binary) {
        ck_assert_msg(oa_documents(spec(), method, tmpl, r->status, "application/octet-stream"),
                      "%s %s -> %d: proto/openapi.yaml documents no application/octet-stream",
                      method, path, r->status);
        ck_assert_msg(hheader(r, "Inference-Header-Content-Length", hl, sizeof hl) != NULL,
                      "%s %s: a binary reply without Inference-Header-Content-Length", method,
                      path);
        size_t n = strtoull(hl, NULL, 10);
        ck_assert_msg(n <= plain.len, "%s %s: Inference-Header-Content-Length %zu > body %zu",
                      method, path, n, plain.len);
        char *head = strndup(plain.body, n);
        if (plain.body != r->body) free(plain.body);
        plain.body = head;
    }
    char err[600];
    ck_assert_msg(oa_check_headers(spec(), method, tmpl, r->status, spec__header, r, err,
                                   sizeof err) == OA_OK,
                  "%s %s -> %d: headers do not match proto/openapi.yaml (%s): %s", method, path,
                  r->status, tmpl, err);
    int rc = oa_validate(spec(), method, tmpl, r->status, plain.body, err, sizeof err);
    ck_assert_msg(rc != OA_MISMATCH,
                  "%s %s -> %d does not match proto/openapi.yaml (%s): %s; body %.300s", method,
                  path, r->status, tmpl, err, plain.body);
    if (plain.body != r->body) free(plain.body);
    return rc;
}

char *hinflate(const char *in, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK) return NULL; /* gzip or zlib */
    size_t cap = n * 8 + 1024, len = 0;
    char *b = malloc(cap + 1);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int zr = Z_OK;
    while (b && zr == Z_OK) {
        if (len == cap) b = realloc(b, (cap *= 2) + 1);
        if (!b) break;
        z.next_out = (Bytef *)b + len;
        z.avail_out = (uInt)(cap - len);
        zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    }
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(b);
        return NULL;
    }
    b[len] = 0;
    *outlen = len;
    return b;
}

char *hdeflate(const char *in, size_t n, int gzip, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, gzip ? 16 + MAX_WBITS : MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    char *b = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)b;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(b);
        return NULL;
    }
    *outlen = cap - z.avail_out;
    return b;
}

/* As spec_check, and the spec must document this response's JSON body. */
void spec_expect(const char *method, const char *path, const hresp *r)
{
    ck_assert_msg(spec_check(method, path, r) == OA_OK,
                  "%s %s -> %d: proto/openapi.yaml documents no JSON body for it", method, path,
                  r->status);
}

void hreq(int port, const char *method, const char *path, const char *headers, const char *body,
          hresp *r)
{
    int fd = hconnect(port);
    hsend_request(fd, method, path, headers, body, body ? strlen(body) : 0);
    hread(fd, r);
    close(fd);
    spec_check(method, path, r);
}

double json_rel_err(const cJSON *a, const cJSON *b)
{
    ck_assert_int_eq(cJSON_GetArraySize(a), cJSON_GetArraySize(b));
    double diff = 0, mag = 1e-30;
    for (int i = 0; i < cJSON_GetArraySize(b); i++) {
        double x = cJSON_GetArrayItem(a, i)->valuedouble, y = cJSON_GetArrayItem(b, i)->valuedouble;
        diff = fmax(diff, fabs(x - y));
        mag = fmax(mag, fabs(y));
    }
    return diff / mag;
}

int b64_floats(const char *s, float *out, int cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t len = strlen(s);
    unsigned char *bytes = malloc(len / 4 * 3 + 3);
    ck_assert_ptr_nonnull(bytes);
    size_t nb = 0, pad = 0;
    for (size_t q = 0; q + 4 <= len; q += 4) {
        unsigned v = 0;
        for (int c = 0; c < 4; c++) {
            const char *pos = s[q + c] == '=' ? tab : strchr(tab, s[q + c]);
            ck_assert_msg(pos != NULL && s[q + c], "base64 character %zu", q + (size_t)c);
            pad += s[q + c] == '=';
            v = v << 6 | (unsigned)(pos - tab);
        }
        bytes[nb++] = (unsigned char)(v >> 16);
        bytes[nb++] = (unsigned char)(v >> 8);
        bytes[nb++] = (unsigned char)v;
    }
    int n = (int)((nb - pad) / 4);
    for (int k = 0; k < n && k < cap; k++) {
        uint32_t bits = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                        (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
        memcpy(&out[k], &bits, 4);
    }
    free(bytes);
    return n;
}

cJSON *hjson(const hresp *r)
{
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "body is not JSON: %.200s", r->body);
    return j;
}

/* GET /metrics and the value of one series (exact name with labels), -1 when absent; a
 * name without labels whose samples all have labels gives their sum (PromQL's sum()). */
double metric(int port, const char *series)
{
    hresp r;
    hreq(port, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    double v = -1, sum = 0;
    int nsum = 0;
    size_t n = strlen(series);
    for (char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, series, n) != 0) continue;
        if (l[n] == ' ') v = strtod(l + n + 1, NULL);
        const char *close = l[n] == '{' ? strstr(l + n, "} ") : NULL;
        if (close && !strchr(series, '{')) {
            sum += strtod(close + 2, NULL);
            nsum++;
        }
    }
    hresp_free(&r);
    return v < 0 && nsum ? sum : v;
}

/* promtool on this machine (PATH), or NULL. */
static const char *promtool_path(void)
{
    static char found[1024];
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/promtool", (int)n, p);
        if (n && access(found, X_OK) == 0) return found;
        p += n + (p[n] == ':');
    }
    return NULL;
}

int promtool_check(int port)
{
    const char *tool = promtool_path();
    if (!tool) {
        fprintf(stderr, "promtool not installed: `promtool check metrics` skipped\n");
        return 0;
    }
    hresp r;
    hreq(port, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    char in[] = "/tmp/ls-prom-in-XXXXXX", out[] = "/tmp/ls-prom-out-XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    ck_assert(fi >= 0 && fo >= 0);
    ck_assert(write(fi, r.body, r.len) == (ssize_t)r.len);
    close(fi);
    close(fo);
    hresp_free(&r);
    char cmd[3200];
    snprintf(cmd, sizeof cmd, "'%s' check metrics < %s > %s 2>&1", tool, in, out);
    int rc = system(cmd);
    char *report = read_file(out);
    ck_assert_msg(rc == 0, "promtool check metrics failed (%d): %.2000s", rc, report);
    free(report);
    unlink(in);
    unlink(out);
    return 1;
}

void wait_metric_at_least(int port, const char *series, double v)
{
    double t0 = now_s();
    while (metric(port, series) < v) {
        ck_assert_msg(now_s() - t0 < 60, "%s did not reach %g within 60 s", series, v);
        sleep_ms(5);
    }
}

void expect_healthy(int port)
{
    hresp r;
    hreq(port, "GET", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
}

/* ---- request bodies ---------------------------------------------------------------------- */

/* A v2 body for lf_base: `rows` rows of `len` token ids from a seed (0 ... 2 framed). */
char *v2_body(int rows, int len, int seed)
{
    size_t cap = 64 + (size_t)rows * len * 8;
    char *b = malloc(cap);
    int k = snprintf(b, cap,
                     "{\"id\":\"s%d\",\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
                     "\"shape\":[%d,%d],\"data\":[",
                     seed, rows, len);
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < len; t++) {
            int id = t == 0 ? 0 : t == len - 1 ? 2 : 3 + (seed * 31 + r * 7 + t * 13) % 290;
            k += snprintf(b + k, cap - (size_t)k, "%s%d", r || t ? "," : "", id);
        }
    snprintf(b + k, cap - (size_t)k, "]}]}");
    return b;
}

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

/* longserve-run's stdout for a body (its trailing newline removed). */
char *run_runner(const char *model, const char *body)
{
    const char *bin = getenv("LONGSERVE_RUN");
    ck_assert_msg(bin != NULL, "LONGSERVE_RUN not set");
    char dir[512], inp[] = "/tmp/ls-srv-in-XXXXXX", outp[] = "/tmp/ls-srv-out-XXXXXX";
    fixture(model, dir, sizeof dir);
    int fi = mkstemp(inp), fo = mkstemp(outp);
    ck_assert(fi >= 0 && fo >= 0);
    ck_assert(write(fi, body, strlen(body)) == (ssize_t)strlen(body));
    lseek(fi, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fi, 0);
        dup2(fo, 1);
        execl(bin, bin, "--model", dir, "--threads", "1", (char *)NULL);
        _exit(127);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "longserve-run failed");
    close(fi);
    close(fo);
    char *out = read_file(outp);
    unlink(inp);
    unlink(outp);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[n - 1] = 0;
    return out;
}

cJSON *fixture_json(const char *rel)
{
    char dir[512], path[800];
    snprintf(path, sizeof path, "%s", fixture(rel, dir, sizeof dir));
    char *text = read_file(path);
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    free(text);
    return j;
}

void text_server(server *s, const char *const *extra)
{
    static const char *const models[] = {"st_tiny=embed/st_tiny",
                                         "seqcls=embed/lf_seqcls_tok",
                                         "tokcls=embed/lf_tokcls_tok",
                                         "mlm=embed/lf_mlm_tok",
                                         "qa=embed/lf_qa_tok",
                                         "lf_base=lf_base",
                                         NULL};
    server_start_models(s, models, extra);
}

/* POST a cJSON body (deleted here). */
void post_json(int port, const char *path, cJSON *body, hresp *r)
{
    char *b = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    hreq(port, "POST", path, "Content-Type: application/json\r\n", b, r);
    free(b);
}

int harness_run(Suite *su)
{
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
