/* longserve end to end: the real server on 127.0.0.1 with an ephemeral port (--port 0,
 * --port-file), the fixture models, and a minimal HTTP/1.1 client on plain sockets.
 * Nothing depends on timing luck: a request is known to be queued or running by reading
 * /metrics (inflight requests, engine busy), and --debug-engine-delay-ms keeps it there
 * for long enough; every wait has a generous timeout. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "openapi_check.h"

/* ---- the server process ------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    int port;
    char port_file[64], log_file[64];
} server;

static const char *fixture(const char *model, char *buf, size_t n)
{
    const char *f = getenv("LS_FIXTURES");
    snprintf(buf, n, "%s/%s", f ? f : "tests/fixtures", model);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts longserve with models ("name=fixture-subdir" or "name=/abs/dir", NULL-terminated)
 * and extra flags (NULL-terminated); returns once it has written its port. */
static void server_start_models(server *s, const char *const *models, const char *const *extra)
{
    const char *bin = getenv("LONGSERVE");
    ck_assert_msg(bin != NULL, "LONGSERVE not set");
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

/* Starts longserve with the models lf_base, lf_qa and lf_seqcls and extra flags. */
static void server_start(server *s, const char *const *extra)
{
    static const char *const models[] = {"lf_base=lf_base", "lf_qa=lf_qa", "lf_seqcls=lf_seqcls",
                                         NULL};
    server_start_models(s, models, extra);
}

/* SIGTERM, then the exit status (or -signal); fails after timeout_s. */
static int server_stop(server *s, double timeout_s)
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

/* ---- a minimal HTTP/1.1 client ------------------------------------------------------------- */

typedef struct {
    int status;
    char head[8192];
    char *body;
    size_t len;
} hresp;

static void hresp_free(hresp *r)
{
    free(r->body);
    r->body = NULL;
}

static int hconnect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                  strerror(errno));
    struct timeval tv = {120, 0}; /* a hung server fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void hsend(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
        ck_assert_msg(k > 0, "send: %s", strerror(errno));
        buf += k;
        n -= (size_t)k;
    }
}

static void hsend_request(int fd, const char *method, const char *path, const char *headers,
                          const char *body, size_t len)
{
    char head[4096];
    int k =
        snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                 method, path, headers ? headers : "");
    if (body) k += snprintf(head + k, sizeof head - k, "Content-Length: %zu\r\n", len);
    k += snprintf(head + k, sizeof head - k, "\r\n");
    hsend(fd, head, (size_t)k);
    if (body && len) hsend(fd, body, len);
}

/* Reads a whole response (the server closes: we asked for Connection: close). */
static void hread(int fd, hresp *r)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ck_assert(b != NULL);
    for (;;) {
        if (n + 1 == cap) {
            b = realloc(b, cap *= 2);
            ck_assert(b != NULL);
        }
        ssize_t k = recv(fd, b + n, cap - n - 1, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) break;
        ck_assert_msg(k > 0, "recv: %s", strerror(errno));
        n += (size_t)k;
    }
    b[n] = 0;
    char *end = strstr(b, "\r\n\r\n");
    ck_assert_msg(end != NULL, "no complete response head in %zu bytes: %.200s", n, b);
    size_t hl = (size_t)(end - b);
    ck_assert(hl < sizeof r->head);
    memcpy(r->head, b, hl);
    r->head[hl] = 0;
    ck_assert_msg(sscanf(b, "HTTP/1.%*d %d", &r->status) == 1, "bad status line: %.100s", b);
    r->len = n - hl - 4;
    r->body = malloc(r->len + 1);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = 0;
    free(b);
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

static const cJSON *spec(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, spec_load);
    ck_assert_msg(g_spec != NULL, "proto/openapi.yaml: %s", g_spec_err);
    return g_spec;
}

/* Validates a response against the spec where the spec documents a JSON body for its route,
 * method and status (silently skipped otherwise); returns OA_OK or OA_UNDOCUMENTED. */
static int spec_check(const char *method, const char *path, const hresp *r)
{
    const char *tmpl = oa_match_path(spec(), path);
    if (!tmpl) return OA_UNDOCUMENTED;
    char err[600];
    int rc = oa_validate(spec(), method, tmpl, r->status, r->body, err, sizeof err);
    ck_assert_msg(rc != OA_MISMATCH,
                  "%s %s -> %d does not match proto/openapi.yaml (%s): %s; body %.300s", method,
                  path, r->status, tmpl, err, r->body);
    return rc;
}

/* As spec_check, and the spec must document this response's JSON body. */
static void spec_expect(const char *method, const char *path, const hresp *r)
{
    ck_assert_msg(spec_check(method, path, r) == OA_OK,
                  "%s %s -> %d: proto/openapi.yaml documents no JSON body for it", method, path,
                  r->status);
}

static void hreq(int port, const char *method, const char *path, const char *headers,
                 const char *body, hresp *r)
{
    int fd = hconnect(port);
    hsend_request(fd, method, path, headers, body, body ? strlen(body) : 0);
    hread(fd, r);
    close(fd);
    spec_check(method, path, r);
}

/* The value of a response header (case-insensitive name), or NULL. */
static const char *hheader(const hresp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            l += nl + 1;
            while (*l == ' ')
                l++;
            size_t k = strcspn(l, "\r\n");
            snprintf(out, n, "%.*s", (int)k, l);
            return out;
        }
    }
    return NULL;
}

static cJSON *hjson(const hresp *r)
{
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "body is not JSON: %.200s", r->body);
    return j;
}

/* GET /metrics and the value of one series (exact name with labels), -1 when absent. */
static double metric(int port, const char *series)
{
    hresp r;
    hreq(port, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    double v = -1;
    size_t n = strlen(series);
    for (char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, series, n) == 0 && l[n] == ' ') v = strtod(l + n + 1, NULL);
    hresp_free(&r);
    return v;
}

static void wait_metric_at_least(int port, const char *series, double v)
{
    double t0 = now_s();
    while (metric(port, series) < v) {
        ck_assert_msg(now_s() - t0 < 60, "%s did not reach %g within 60 s", series, v);
        sleep_ms(5);
    }
}

static void expect_healthy(int port)
{
    hresp r;
    hreq(port, "GET", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
}

/* ---- request bodies ---------------------------------------------------------------------- */

/* A v2 body for lf_base: `rows` rows of `len` token ids from a seed (0 ... 2 framed). */
static char *v2_body(int rows, int len, int seed)
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

static char *read_file(const char *path)
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
static char *run_runner(const char *model, const char *body)
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

/* ---- success shapes ---------------------------------------------------------------------------
 */

START_TEST(metadata_routes)
{
    server s;
    server_start(&s, NULL);
    hresp r;
    char h[256];

    hreq(s.port, "GET", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"live\"}");
    ck_assert(hheader(&r, "X-Request-Id", h, sizeof h) != NULL);
    hresp_free(&r);

    hreq(s.port, "GET", "/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ready\"}");
    hresp_free(&r);

    const char *live[] = {"/v2/health/live", "/v2/health/ready"};
    for (int i = 0; i < 2; i++) {
        hreq(s.port, "GET", live[i], NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        cJSON *j = hjson(&r);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "live")));
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ready")));
        cJSON_Delete(j);
        hresp_free(&r);
    }

    hreq(s.port, "GET", "/v2", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "longserve");
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "version")));
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "extensions")));
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_base", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "lf_base");
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "versions")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "platform")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "inputs")), 4);
    const cJSON *o0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o0, "name")->valuestring, "last_hidden_state");
    ck_assert_str_eq(cJSON_GetObjectItem(o0, "datatype")->valuestring, "FP32");
    ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(o0, "shape"), 2)->valueint, 32);
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_qa", NULL, NULL, &r);
    j = hjson(&r);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 1), "name")
            ->valuestring,
        "end_logits");
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_seqcls/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"name\":\"lf_seqcls\",\"ready\":true}");
    hresp_free(&r);

    hreq(s.port, "GET", "/v1/models", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "object")->valuestring, "list");
    const cJSON *d = cJSON_GetObjectItem(j, "data");
    ck_assert_int_eq(cJSON_GetArraySize(d), 3);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "id")->valuestring, "lf_qa");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "object")->valuestring, "model");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "created")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "owned_by")));
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/info", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_id")->valuestring, "lf_base");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_input_length")->valueint, 128);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_batch_tokens")->valueint, 16384);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "payload_limit")->valueint, 2000000);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "api_key")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "models")), 3);
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hheader(&r, "Content-Type", h, sizeof h) && strstr(h, "text/plain"));
    /* every series exists before it is first used */
    const char *series[] = {"longserve_requests_total{route=\"v2_infer\",status=\"429\"} 0",
                            "longserve_rejected_requests_total{reason=\"queue_full\"} 0",
                            "# TYPE longserve_request_duration_seconds histogram",
                            "# TYPE longserve_queue_duration_seconds histogram",
                            "# TYPE longserve_inference_duration_seconds histogram",
                            "# TYPE longserve_input_tokens histogram",
                            "# TYPE longserve_batch_size histogram",
                            "# TYPE longserve_batch_tokens histogram",
                            "# TYPE longserve_batch_padding_ratio histogram",
                            "longserve_batch_padding_ratio_count 0",
                            "longserve_truncated_requests_total 0",
                            "longserve_kernel_seconds_total{op=\"linear\"} 0",
                            "longserve_kernel_seconds_total{op=\"window_attn\"} 0",
                            "longserve_kernel_seconds_total{op=\"global_attn\"} 0",
                            "longserve_queue_depth 0",
                            "longserve_ready 1"};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        ck_assert_msg(strstr(r.body, series[i]) != NULL, "/metrics lacks '%s'", series[i]);
    hresp_free(&r);

    /* every route is written down in proto/openapi.yaml */
    char dir[512], path[700];
    snprintf(path, sizeof path, "%s/../../proto/openapi.yaml", fixture("", dir, sizeof dir));
    char *spec = read_file(path);
    const char *routes[] = {"/v2/models/{model}/infer",
                            "/v2/models/{model}",
                            "/v2/models/{model}/ready",
                            "/v2",
                            "/v2/health/live",
                            "/v2/health/ready",
                            "/v1/models",
                            "/info",
                            "/health",
                            "/ready",
                            "/metrics",
                            "/embed",
                            "/embed_all",
                            "/v1/embeddings",
                            "/predict",
                            "/token_classify",
                            "/fill_mask",
                            "/answer",
                            "/tokenize",
                            "/decode"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "\n  %s:\n", routes[i]);
        ck_assert_msg(strstr(spec, key) != NULL, "proto/openapi.yaml lacks %s", routes[i]);
    }
    free(spec);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* The server's v2 answer is byte for byte what longserve-run prints for the same body. */
START_TEST(v2_infer_equals_runner)
{
    server s;
    server_start(&s, NULL);
    static const char *const cases[][2] = {
        {"lf_base", "short_nomask"},           {"lf_base", "padded_mixed_global"},
        {"lf_base", "long120_tokentype"},      {"lf_qa", "auto_global_padded"},
        {"lf_qa", "explicit_global"},          {"lf_seqcls", "auto_global_padded"},
        {"lf_seqcls", "explicit_many_global"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512], path[700], url[128];
        snprintf(path, sizeof path, "%s/cases/%s.request.json",
                 fixture(cases[i][0], dir, sizeof dir), cases[i][1]);
        char *body = read_file(path);
        snprintf(url, sizeof url, "/v2/models/%s/infer", cases[i][0]);
        hresp r;
        hreq(s.port, "POST", url, "Content-Type: application/json\r\n", body, &r);
        ck_assert_msg(r.status == 200, "%s/%s: %d %s", cases[i][0], cases[i][1], r.status, r.body);
        char *want = run_runner(cases[i][0], body);
        ck_assert_msg(strcmp(r.body, want) == 0, "%s/%s: server and longserve-run differ",
                      cases[i][0], cases[i][1]);
        free(want);
        hresp_free(&r);
        free(body);
    }
    /* the batches' metrics are in before their responses go out: the engine spent time
     * in its kernels, and the padded cases (attention_mask 0) landed above the 0 bucket */
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"linear\"}") > 0);
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"window_attn\"}") > 0);
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"embed\"}") > 0);
    const double nb = sizeof cases / sizeof cases[0];
    ck_assert(metric(s.port, "longserve_batch_padding_ratio_count") == nb);
    double unpadded = metric(s.port, "longserve_batch_padding_ratio_bucket{le=\"0\"}");
    ck_assert_msg(unpadded >= 1 && unpadded < nb, "%g of %g batches without padding", unpadded, nb);
    ck_assert(metric(s.port, "longserve_batch_padding_ratio_bucket{le=\"1\"}") == nb);
    double sum = metric(s.port, "longserve_batch_padding_ratio_sum");
    ck_assert(sum > 0 && sum < nb);
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 0);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

static void expect_status(int port, const char *method, const char *path, const char *headers,
                          const char *body, int status, const char *needle)
{
    hresp r;
    hreq(port, method, path, headers, body, &r);
    ck_assert_msg(r.status == status, "%s %s: %d, expected %d: %s", method, path, r.status, status,
                  r.body);
    ck_assert_msg(strstr(r.body, needle) != NULL, "%s %s: body lacks '%s': %s", method, path,
                  needle, r.body);
    hresp_free(&r);
    expect_healthy(port); /* and the server still serves */
}

START_TEST(errors)
{
    server s;
    server_start(&s, NULL);
    const char *infer = "/v2/models/lf_base/infer";
    /* KServe family: {"error": msg} */
    expect_status(s.port, "POST", infer, NULL, "{\"inputs\": [", 400,
                  "{\"error\":\"request body is not valid JSON\"}");
    expect_status(s.port, "POST", infer, NULL, "", 400, "not valid JSON");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                  "\"data\":[0,\"x\"]}]}",
                  400, "not an integer");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"FP32\",\"shape\":[1,2],"
                  "\"data\":[0,2]}]}",
                  400, "datatype must be");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
                  "\"data\":[0,100000,2]}]}",
                  422, "outside the vocabulary");
    expect_status(s.port, "POST", "/v2/models/lf_qa/infer", NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,4],"
                  "\"data\":[0,5,6,2]}]}",
                  422, "separator tokens");
    expect_status(s.port, "POST", "/v2/models/nope/infer", NULL, "{}", 404,
                  "{\"error\":\"model 'nope' is not served here\"}");
    expect_status(s.port, "GET", "/v2/models/nope", NULL, NULL, 404, "model 'nope'");
    /* TEI family: {"error", "error_type"}; OpenAI: {"error": {"message","type","code"}} */
    expect_status(s.port, "GET", "/nowhere", NULL, NULL, 404, "\"error_type\":\"not_found\"");
    expect_status(s.port, "GET", "/v1/nowhere", NULL, NULL, 404,
                  "{\"error\":{\"message\":\"no route GET /v1/nowhere\",\"type\":"
                  "\"invalid_request_error\",\"code\":\"not_found\"}}");

    /* wrong method: 405 with Allow */
    hresp r;
    char h[128];
    hreq(s.port, "GET", infer, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(hheader(&r, "Allow", h, sizeof h), "POST");
    hresp_free(&r);
    hreq(s.port, "DELETE", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert(hheader(&r, "Allow", h, sizeof h) && strstr(h, "GET"));
    ck_assert(strstr(r.body, "\"error_type\"") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    /* 413 from Content-Length alone: the body is never sent, the answer comes anyway */
    int fd = hconnect(s.port);
    const char *head = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 50000000\r\nConnection: close\r\n\r\n";
    hsend(fd, head, strlen(head));
    hread(fd, &r);
    close(fd);
    ck_assert_int_eq(r.status, 413);
    spec_expect("POST", "/v2/models/lf_base/infer", &r);
    ck_assert(strstr(r.body, "the limit is 2000000") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    /* 413 while streaming: chunked, no Content-Length */
    fd = hconnect(s.port);
    head = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    hsend(fd, head, strlen(head));
    static char chunk[7 + 0x10000 + 2]; /* "10000\r\n", 64 KiB of spaces, "\r\n" */
    memcpy(chunk, "10000\r\n", 7);
    memset(chunk + 7, ' ', 0x10000);
    memcpy(chunk + 7 + 0x10000, "\r\n", 2);
    for (int i = 0; i < 40; i++)
        hsend(fd, chunk, sizeof chunk); /* 2.6 MB */
    hsend(fd, "0\r\n\r\n", 5);
    hread(fd, &r);
    close(fd);
    ck_assert_int_eq(r.status, 413);
    spec_expect("POST", "/v2/models/lf_base/infer", &r);
    ck_assert(strstr(r.body, "larger than the limit") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    ck_assert_int_ge(
        metric(s.port, "longserve_rejected_requests_total{reason=\"payload_too_large\"}"), 2);
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"v2_infer\",status=\"400\"}"),
                     4);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(api_key)
{
    const char *keyfile = "/tmp/ls-srv-key";
    FILE *f = fopen(keyfile, "w");
    fputs("s3cret-key\n", f);
    fclose(f);
    const char *extra[] = {"--api-key-file", keyfile, NULL};
    server s;
    server_start(&s, extra);
    const char *body = "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
                       "\"shape\":[1,3],\"data\":[0,5,2]}]}";
    expect_status(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, 401, "API key");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer",
                  "Authorization: Bearer s3cret-kez\r\n", body, 401, "API key");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer", "Authorization: Bearer s3cret\r\n",
                  body, 401, "API key");
    expect_status(s.port, "GET", "/info", NULL, NULL, 401, "\"error_type\":\"unauthorized\"");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer",
                  "Authorization: Bearer s3cret-key\r\n", body, 200, "last_hidden_state");
    /* probes and metrics need no key */
    expect_status(s.port, "GET", "/health", NULL, NULL, 200, "live");
    expect_status(s.port, "GET", "/metrics", NULL, NULL, 200, "longserve_ready 1");
    /* the key is in no log line */
    char *log = read_file(s.log_file);
    ck_assert_msg(strstr(log, "s3cret") == NULL, "the API key was logged");
    free(log);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    unlink(keyfile);
}
END_TEST

/* ---- concurrency: batches hold several requests, answers equal the one-by-one ones ---------- */

/* Two v2 responses: names, ids, shapes equal; data equal to 1e-5 of the output's largest
 * magnitude, the bound the engine's own batch-invariance test holds it to (a BLAS product
 * may sum in another order when the packed batch has more rows). Returns the largest
 * relative difference seen. */
static double v2_compare(const char *a, const char *b)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    ck_assert(x && y);
    ck_assert_str_eq(cJSON_GetObjectItem(x, "model_name")->valuestring,
                     cJSON_GetObjectItem(y, "model_name")->valuestring);
    ck_assert_str_eq(cJSON_GetObjectItem(x, "id")->valuestring,
                     cJSON_GetObjectItem(y, "id")->valuestring);
    const cJSON *ox = cJSON_GetObjectItem(x, "outputs"), *oy = cJSON_GetObjectItem(y, "outputs");
    ck_assert_int_eq(cJSON_GetArraySize(ox), cJSON_GetArraySize(oy));
    double worst = 0;
    for (int i = 0; i < cJSON_GetArraySize(ox); i++) {
        const cJSON *p = cJSON_GetArrayItem(ox, i), *q = cJSON_GetArrayItem(oy, i);
        ck_assert_str_eq(cJSON_GetObjectItem(p, "name")->valuestring,
                         cJSON_GetObjectItem(q, "name")->valuestring);
        char *sp = cJSON_PrintUnformatted(cJSON_GetObjectItem(p, "shape"));
        char *sq = cJSON_PrintUnformatted(cJSON_GetObjectItem(q, "shape"));
        ck_assert_str_eq(sp, sq);
        free(sp);
        free(sq);
        const cJSON *dp = cJSON_GetObjectItem(p, "data"), *dq = cJSON_GetObjectItem(q, "data");
        ck_assert_int_eq(cJSON_GetArraySize(dp), cJSON_GetArraySize(dq));
        double md = 0, mx = 0;
        const cJSON *u = dp->child, *v = dq->child;
        for (; u && v; u = u->next, v = v->next) {
            md = fmax(md, fabs(u->valuedouble - v->valuedouble));
            mx = fmax(mx, fabs(v->valuedouble));
        }
        double rel = mx > 0 ? md / mx : md;
        ck_assert_msg(rel <= 1e-5, "output %s differs by %.3g of its largest magnitude",
                      cJSON_GetObjectItem(p, "name")->valuestring, rel);
        worst = fmax(worst, rel);
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return worst;
}

enum { NCLIENTS = 64, NBODIES = 8 };

typedef struct {
    int port, which;
    const char *body;
    pthread_barrier_t *go;
    hresp r;
} client;

static void *client_main(void *p)
{
    client *c = p;
    int fd = hconnect(c->port);
    pthread_barrier_wait(c->go);
    hsend_request(fd, "POST", "/v2/models/lf_base/infer", NULL, c->body, strlen(c->body));
    hread(fd, &c->r);
    close(fd);
    spec_check("POST", "/v2/models/lf_base/infer", &c->r);
    return NULL;
}

START_TEST(concurrent_clients_batch)
{
    /* the engine sleeps 150 ms per batch: while one runs, the rest queue and batch */
    const char *extra[] = {"--debug-engine-delay-ms", "150", "--long-request-tokens", "48", NULL};
    server s;
    server_start(&s, extra);
    char *bodies[NBODIES], *alone[NBODIES];
    for (int i = 0; i < NBODIES; i++) {
        /* short and long inputs, one and two rows */
        bodies[i] = v2_body(1 + i % 2, i % 3 == 0 ? 100 + i : 5 + 3 * i, i);
        hresp r;
        hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, bodies[i], &r);
        ck_assert_msg(r.status == 200, "%d: %s", r.status, r.body);
        alone[i] = r.body;
    }
    double batches0 = metric(s.port, "longserve_batch_size_count");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NCLIENTS);
    client *cs = calloc(NCLIENTS, sizeof *cs);
    pthread_t th[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        cs[i] = (client){.port = s.port, .which = (i * 5) % NBODIES, .go = &go};
        cs[i].body = bodies[cs[i].which];
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cs[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(th[i], NULL);
    double worst = 0;
    int exact = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_msg(cs[i].r.status == 200, "client %d: %d %s", i, cs[i].r.status, cs[i].r.body);
        exact += strcmp(cs[i].r.body, alone[cs[i].which]) == 0;
        worst = fmax(worst, v2_compare(cs[i].r.body, alone[cs[i].which]));
        hresp_free(&cs[i].r);
    }
    fprintf(stderr,
            "concurrent: %d of %d answers byte-identical to alone, worst relative "
            "difference %.3g\n",
            exact, NCLIENTS, worst);
    /* the engine tiles every linear layer per sequence (kernels/cpu/cpu.c), so batching
     * changes no bit of any answer */
    ck_assert_msg(exact == NCLIENTS, "only %d of %d answers byte-identical to alone", exact,
                  NCLIENTS);
    /* 64 requests in fewer batches than requests, and some batch held more than one */
    double batches = metric(s.port, "longserve_batch_size_count") - batches0;
    double single = metric(s.port, "longserve_batch_size_bucket{le=\"1\"}");
    ck_assert_msg(batches >= 1 && batches < NCLIENTS, "%g batches for %d requests", batches,
                  NCLIENTS);
    ck_assert_msg(metric(s.port, "longserve_batch_size_count") - single >= 1,
                  "no batch held several requests");
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"v2_infer\",status=\"200\"}"),
                     NCLIENTS + NBODIES);
    pthread_barrier_destroy(&go);
    free(cs);
    for (int i = 0; i < NBODIES; i++) {
        free(bodies[i]);
        free(alone[i]);
    }
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- overload, disconnects, deadlines, shutdown -----------------------------------------------
 */

typedef struct {
    int port;
    const char *path, *body;
    hresp r;
} bg_req;

static void *bg_main(void *p)
{
    bg_req *b = p;
    hreq(b->port, "POST", b->path, NULL, b->body, &b->r);
    return NULL;
}

static void bg_start(pthread_t *t, bg_req *b, int port, const char *body)
{
    *b = (bg_req){.port = port, .path = "/v2/models/lf_base/infer", .body = body};
    ck_assert_int_eq(pthread_create(t, NULL, bg_main, b), 0);
}

START_TEST(overload_429)
{
    const char *extra[] = {"--max-concurrent-requests", "2", "--debug-engine-delay-ms", "400",
                           NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(1, 10, 1);
    pthread_t t[2];
    bg_req b[2];
    bg_start(&t[0], &b[0], s.port, body);
    bg_start(&t[1], &b[1], s.port, body);
    wait_metric_at_least(s.port, "longserve_inflight_requests", 2);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 429);
    char h[32];
    ck_assert_msg(hheader(&r, "Retry-After", h, sizeof h) && atoi(h) >= 1, "no Retry-After");
    ck_assert(strstr(r.body, "concurrent requests") != NULL);
    hresp_free(&r);
    /* nothing admitted is lost */
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(b[i].r.status, 200);
        hresp_free(&b[i].r);
    }
    ck_assert_int_eq(metric(s.port, "longserve_rejected_requests_total{reason=\"queue_full\"}"), 1);
    /* and the places come back */
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(client_disconnects)
{
    const char *extra[] = {"--debug-engine-delay-ms", "300", NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(1, 20, 2);
    /* one request holds the engine ... */
    pthread_t t;
    bg_req b;
    bg_start(&t, &b, s.port, body);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    /* ... a second is queued behind it, and its client leaves */
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", "/v2/models/lf_base/infer", NULL, body, strlen(body));
    wait_metric_at_least(s.port, "longserve_inflight_requests", 2);
    close(fd);
    /* a client that leaves mid-body */
    fd = hconnect(s.port);
    const char *part = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 1000\r\n\r\n{\"inputs\":";
    hsend(fd, part, strlen(part));
    close(fd);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    /* the queued one was dropped before it ran */
    wait_metric_at_least(s.port,
                         "longserve_rejected_requests_total{reason=\"client_disconnected\"}", 1);
    ck_assert_int_eq(metric(s.port, "longserve_inflight_requests"), 0);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(deadline_504)
{
    const char *extra[] = {"--debug-engine-delay-ms", "1500", "--request-timeout-ms", "300", NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(1, 8, 3);
    pthread_t t;
    bg_req b;
    bg_start(&t, &b, s.port, body); /* runs at once: within its deadline */
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_msg(r.status == 504, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "deadline") != NULL);
    hresp_free(&r);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(sigterm_drains)
{
    const char *extra[] = {"--debug-engine-delay-ms", "1000", "--shutdown-timeout", "30", NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(2, 12, 4);
    pthread_t t;
    bg_req b;
    bg_start(&t, &b, s.port, body);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    double t0 = now_s();
    kill(s.pid, SIGTERM);
    /* readiness fails at once (the loop answers while the engine works) */
    hresp r;
    for (;;) {
        hreq(s.port, "GET", "/ready", NULL, NULL, &r);
        if (r.status == 503) break;
        hresp_free(&r);
        ck_assert_msg(now_s() - t0 < 10, "/ready did not fail after SIGTERM");
        sleep_ms(2);
    }
    ck_assert(strstr(r.body, "\"error_type\":\"unhealthy\"") != NULL);
    hresp_free(&r);
    hreq(s.port, "GET", "/v2/health/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    hresp_free(&r);
    hreq(s.port, "GET", "/health", NULL, NULL, &r); /* still live */
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    /* new work is refused while draining */
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 503);
    hresp_free(&r);
    /* the running request completes, then the process exits 0 */
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    ck_assert(strstr(b.r.body, "last_hidden_state") != NULL);
    hresp_free(&b.r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    free(body);
}
END_TEST

/* ---- text routes (TEI, OpenAI, pipelines) ----------------------------------------------------
 * Fixtures from tools/make_embed_fixtures.py (tests/fixtures/embed/): a tiny
 * sentence-transformers BERT and tiny Longformer heads with tokenizers, with the outputs of
 * sentence-transformers and of the Hugging Face pipelines for the same texts. */

static cJSON *fixture_json(const char *rel)
{
    char dir[512], path[800];
    snprintf(path, sizeof path, "%s", fixture(rel, dir, sizeof dir));
    char *text = read_file(path);
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    free(text);
    return j;
}

static void text_server(server *s, const char *const *extra)
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
static void post_json(int port, const char *path, cJSON *body, hresp *r)
{
    char *b = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    hreq(port, "POST", path, "Content-Type: application/json\r\n", b, r);
    free(b);
}

/* max |a - b| / max |b| over n floats of two JSON arrays. */
static double json_rel_err(const cJSON *a, const cJSON *b)
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

static double vec_rel_err(const double *a, const double *b, int n)
{
    double diff = 0, mag = 1e-30;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        mag = fmax(mag, fabs(b[i]));
    }
    return diff / mag;
}

static cJSON *str_array(const cJSON *texts)
{
    return cJSON_Duplicate(texts, 1);
}

/* The ids /tokenize gives for one text. */
static int tokenize_ids(int port, const char *text, int *ids, int cap)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(port, "/tokenize", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    const cJSON *toks = cJSON_GetArrayItem(j, 0);
    int n = cJSON_GetArraySize(toks);
    ck_assert(n <= cap);
    for (int i = 0; i < n; i++)
        ids[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(toks, i), "id")->valueint;
    cJSON_Delete(j);
    hresp_free(&r);
    return n;
}

/* last_hidden_state [n, H] of one row of ids (optional global mask) through longserve-run. */
static double *runner_hidden(const char *model, const int *ids, int n, const int *glob, int H)
{
    size_t cap = 256 + (size_t)n * 24;
    char *b = malloc(cap);
    int k = snprintf(b, cap,
                     "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,%d],"
                     "\"data\":[",
                     n);
    for (int i = 0; i < n; i++)
        k += snprintf(b + k, cap - (size_t)k, "%s%d", i ? "," : "", ids[i]);
    k += snprintf(b + k, cap - (size_t)k, "]}");
    if (glob) {
        k +=
            snprintf(b + k, cap - (size_t)k,
                     ",{\"name\":\"global_attention_mask\",\"datatype\":\"INT64\",\"shape\":[1,%d],"
                     "\"data\":[",
                     n);
        for (int i = 0; i < n; i++)
            k += snprintf(b + k, cap - (size_t)k, "%s%d", i ? "," : "", glob[i]);
        k += snprintf(b + k, cap - (size_t)k, "]}");
    }
    snprintf(b + k, cap - (size_t)k, "]}");
    char *out = run_runner(model, b);
    free(b);
    cJSON *j = cJSON_Parse(out);
    ck_assert(j != NULL);
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "last_hidden_state");
    const cJSON *d = cJSON_GetObjectItem(o, "data");
    ck_assert_int_eq(cJSON_GetArraySize(d), n * H);
    double *h = malloc((size_t)n * (size_t)H * sizeof *h);
    for (int i = 0; i < n * H; i++)
        h[i] = cJSON_GetArrayItem(d, i)->valuedouble;
    cJSON_Delete(j);
    free(out);
    return h;
}

/* sentence-transformers pooling of [n, H]: 0 mean, 1 cls, 2 max; then L2 when normalize. */
static void pool(const double *h, int n, int H, int mode, int normalize, double *v)
{
    for (int d = 0; d < H; d++) {
        double acc = mode == 2 ? -1e300 : 0;
        for (int t = 0; t < (mode == 1 ? 1 : n); t++)
            acc = mode == 2 ? fmax(acc, h[t * H + d]) : acc + h[t * H + d];
        v[d] = mode == 0 ? acc / n : acc;
    }
    if (!normalize) return;
    double ss = 0;
    for (int d = 0; d < H; d++)
        ss += v[d] * v[d];
    for (int d = 0; d < H; d++)
        v[d] /= fmax(sqrt(ss), 1e-12);
}

static void json_vec(const cJSON *a, double *v, int n)
{
    ck_assert_int_eq(cJSON_GetArraySize(a), n);
    for (int i = 0; i < n; i++)
        v[i] = cJSON_GetArrayItem(a, i)->valuedouble;
}

/* /embed of text with extra fields (a JSON object text, or NULL) into v[H]; the response's
 * header `hname` into hval when asked. */
static void embed_one(int port, const char *text, const char *extra, double *v, int H,
                      const char *hname, char *hval, size_t hlen)
{
    cJSON *b = extra ? cJSON_Parse(extra) : cJSON_CreateObject();
    ck_assert(b != NULL);
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    if (hname) ck_assert_msg(hheader(&r, hname, hval, hlen) != NULL, "no %s header", hname);
    cJSON *j = hjson(&r);
    json_vec(cJSON_GetArrayItem(j, 0), v, H);
    cJSON_Delete(j);
    hresp_free(&r);
}

START_TEST(text_embed_sentence_transformers)
{
    server s;
    text_server(&s, NULL);
    cJSON *exp = fixture_json("embed/st_tiny/expected.json");
    const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
    const int n = cJSON_GetArraySize(cases);
    cJSON *texts = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(
            texts, cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(cases, i), "text"), 1));

    /* /embed, a batch: equals sentence-transformers (mean pooling + Normalize) */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", str_array(texts));
    hresp r;
    post_json(s.port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    ck_assert_int_eq(cJSON_GetArraySize(got), n);
    long long tokens = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        double e = json_rel_err(cJSON_GetArrayItem(got, i), cJSON_GetObjectItem(c, "embedding"));
        ck_assert_msg(e <= 1e-4, "text %d: /embed differs from sentence-transformers by %g", i, e);
        /* /tokenize gives the ids transformers gives */
        int ids[256];
        int k = tokenize_ids(s.port, cJSON_GetObjectItem(c, "text")->valuestring, ids, 256);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ck_assert_int_eq(k, cJSON_GetArraySize(want));
        for (int t = 0; t < k; t++)
            ck_assert_int_eq(ids[t], cJSON_GetArrayItem(want, t)->valueint);
        tokens += k;
    }

    /* one string: still a list of one vector (TEI) */
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetArrayItem(texts, 0), 1));
    post_json(s.port, "/embed", b, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *one = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(one), 1);
    ck_assert(json_rel_err(cJSON_GetArrayItem(one, 0), cJSON_GetArrayItem(got, 0)) == 0);
    cJSON_Delete(one);
    hresp_free(&r);

    /* OpenAI: the same vectors, usage, base64 of the same float32 values */
    for (int b64 = 0; b64 < 2; b64++) {
        b = cJSON_CreateObject();
        cJSON_AddItemToObject(b, "input", str_array(texts));
        cJSON_AddStringToObject(b, "model", "st_tiny");
        cJSON_AddStringToObject(b, "encoding_format", b64 ? "base64" : "float");
        post_json(s.port, "/v1/embeddings", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        cJSON *j = hjson(&r);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "object")->valuestring, "list");
        ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "st_tiny");
        const cJSON *u = cJSON_GetObjectItem(j, "usage");
        ck_assert_int_eq((long long)cJSON_GetObjectItem(u, "prompt_tokens")->valuedouble, tokens);
        ck_assert_int_eq((long long)cJSON_GetObjectItem(u, "total_tokens")->valuedouble, tokens);
        const cJSON *data = cJSON_GetObjectItem(j, "data");
        ck_assert_int_eq(cJSON_GetArraySize(data), n);
        for (int i = 0; i < n; i++) {
            const cJSON *d = cJSON_GetArrayItem(data, i);
            ck_assert_str_eq(cJSON_GetObjectItem(d, "object")->valuestring, "embedding");
            ck_assert_int_eq(cJSON_GetObjectItem(d, "index")->valueint, i);
            const cJSON *e = cJSON_GetObjectItem(d, "embedding"),
                        *want = cJSON_GetArrayItem(got, i);
            if (!b64) {
                ck_assert(json_rel_err(e, want) == 0);
                continue;
            }
            /* base64 of little-endian float32 */
            const char *p = e->valuestring;
            size_t len = strlen(p);
            ck_assert_int_eq(len, (size_t)(32 * 4 + 2) / 3 * 4);
            unsigned char bytes[160];
            size_t nb = 0;
            for (size_t q = 0; q + 4 <= len; q += 4) {
                unsigned v = 0;
                for (int c = 0; c < 4; c++) {
                    const char *tab =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    const char *pos = p[q + c] == '=' ? tab : strchr(tab, p[q + c]);
                    ck_assert(pos != NULL);
                    v = v << 6 | (unsigned)(pos - tab);
                }
                bytes[nb++] = (unsigned char)(v >> 16);
                bytes[nb++] = (unsigned char)(v >> 8);
                bytes[nb++] = (unsigned char)v;
            }
            for (int k = 0; k < 32; k++) {
                uint32_t bits = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                                (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
                float f;
                memcpy(&f, &bits, 4);
                ck_assert_msg((double)f == (double)(float)cJSON_GetArrayItem(want, k)->valuedouble,
                              "base64 element %d", k);
            }
        }
        cJSON_Delete(j);
        hresp_free(&r);
    }
    cJSON_Delete(got);
    cJSON_Delete(texts);
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* /embed (every pooling, normalize off) and /embed_all equal what the engine gives through
 * longserve-run for the same ids; global attention and long-document windows equal what
 * they are defined to be. */
START_TEST(text_embed_equals_engine)
{
    const char *extra[] = {"--max-global-tokens", "4", NULL};
    server s;
    text_server(&s, extra);
    const int H = 32;
    const char *text = "Long documents need sparse attention to be read in one pass, the model "
                       "reads contracts papers clinical notes and logs.";
    int ids[256];
    const int n = tokenize_ids(s.port, text, ids, 256);
    ck_assert(n > 12);
    double *h = runner_hidden("embed/st_tiny", ids, n, NULL, H);
    double want[32], v[32];
    static const char *const modes[] = {"mean", "cls", "max"};
    for (int m = 0; m < 3; m++) {
        char extra_json[128];
        snprintf(extra_json, sizeof extra_json, "{\"normalize\":false,\"pooling\":\"%s\"}",
                 modes[m]);
        embed_one(s.port, text, extra_json, v, H, NULL, NULL, 0);
        pool(h, n, H, m, 0, want);
        ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "pooling %s: %g", modes[m],
                      vec_rel_err(v, want, H));
    }
    /* /embed_all: the engine's hidden states, token by token */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(s.port, "/embed_all", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    const cJSON *rows = cJSON_GetArrayItem(j, 0);
    ck_assert_int_eq(cJSON_GetArraySize(rows), n);
    for (int t = 0; t < n; t++) {
        json_vec(cJSON_GetArrayItem(rows, t), v, H);
        ck_assert(vec_rel_err(v, h + t * H, H) <= 1e-5);
    }
    cJSON_Delete(j);
    hresp_free(&r);

    /* global attention: {"cls": true} is the automatic choice for BERT: the same numbers */
    double plain[32];
    char hv[64];
    embed_one(s.port, text, "{\"normalize\":false}", plain, H, NULL, NULL, 0);
    embed_one(s.port, text, "{\"normalize\":false,\"global_attention\":{\"cls\":true}}", v, H,
              "x-global-tokens", hv, sizeof hv);
    ck_assert_str_eq(hv, "1");
    ck_assert(vec_rel_err(v, plain, H) == 0);
    /* ... and extra global tokens are what the engine computes with that mask */
    embed_one(s.port, text,
              "{\"normalize\":false,\"global_attention\":{\"cls\":true,\"token_indices\":[3],"
              "\"spans\":[[5,7]]}}",
              v, H, "x-global-tokens", hv, sizeof hv);
    ck_assert_str_eq(hv, "4");
    int glob[256] = {0};
    glob[0] = glob[3] = glob[5] = glob[6] = 1;
    double *hg = runner_hidden("embed/st_tiny", ids, n, glob, H);
    pool(hg, n, H, 0, 0, want);
    ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "global: %g", vec_rel_err(v, want, H));
    free(hg);

    /* long_document: windows of `window` tokens (specials included) every `stride` content
     * tokens, each pooled, averaged by tokens, then normalised */
    const int W = 8, S = 3, C = W - 2, content = n - 2;
    double acc[32] = {0}, wsum = 0;
    int nwin = 0;
    for (int c0 = 0;; c0 += S) {
        int c1 = c0 + C < content ? c0 + C : content, win[16], k = 0;
        win[k++] = ids[0];
        for (int t = c0; t < c1; t++)
            win[k++] = ids[1 + t];
        win[k++] = ids[n - 1];
        double *hw = runner_hidden("embed/st_tiny", win, k, NULL, H);
        pool(hw, k, H, 0, 0, want);
        free(hw);
        for (int d = 0; d < H; d++)
            acc[d] += k * want[d];
        wsum += k;
        nwin++;
        if (c1 == content) break;
    }
    double ss = 0;
    for (int d = 0; d < H; d++)
        ss += (acc[d] / wsum) * (acc[d] / wsum);
    for (int d = 0; d < H; d++)
        want[d] = acc[d] / wsum / sqrt(ss);
    embed_one(s.port, text,
              "{\"long_document\":{\"window\":8,\"stride\":3,\"aggregate\":\"mean\"}}", v, H,
              "x-long-document-windows", hv, sizeof hv);
    ck_assert_int_eq(atoi(hv), nwin);
    ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "long_document: %g", vec_rel_err(v, want, H));
    /* a window that holds the whole text: exactly the plain embedding */
    embed_one(s.port, text, "{\"long_document\":{\"window\":1000}}", v, H, NULL, NULL, 0);
    embed_one(s.port, text, NULL, want, H, NULL, NULL, 0);
    ck_assert(vec_rel_err(v, want, H) == 0);
    free(h);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(text_pipelines)
{
    server s;
    text_server(&s, NULL);
    cJSON *exp = fixture_json("embed/pipelines.json");
    hresp r;

    /* /predict: a batch, then one pair; labels sorted by score as TEI does */
    const cJSON *pr = cJSON_GetObjectItem(exp, "predict");
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(pr, "inputs"), 1));
    post_json(s.port, "/predict", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    hresp_free(&r);
    for (int phase = 0; phase < 2; phase++) {
        const cJSON *wants = phase ? NULL : cJSON_GetObjectItem(pr, "outputs");
        int n = phase ? 1 : cJSON_GetArraySize(wants);
        for (int i = 0; i < n; i++) {
            const cJSON *g = phase ? j : cJSON_GetArrayItem(j, i);
            const cJSON *w =
                phase ? cJSON_GetObjectItem(pr, "pair_output") : cJSON_GetArrayItem(wants, i);
            ck_assert_int_eq(cJSON_GetArraySize(g), cJSON_GetArraySize(w));
            for (int k = 0; k < cJSON_GetArraySize(w); k++) {
                const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
                ck_assert_str_eq(cJSON_GetObjectItem(gk, "label")->valuestring,
                                 cJSON_GetObjectItem(wk, "label")->valuestring);
                ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                               cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-5);
            }
        }
        if (phase) break;
        cJSON_Delete(j);
        b = cJSON_CreateObject();
        cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(pr, "pair"), 1));
        post_json(s.port, "/predict", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        j = hjson(&r);
        hresp_free(&r);
    }
    cJSON_Delete(j);

    /* /token_classify: the pipeline's entities (aggregation none, "O" ignored) */
    const cJSON *tc = cJSON_GetObjectItem(exp, "token_classify");
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(tc, "inputs"), 1));
    post_json(s.port, "/token_classify", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = hjson(&r);
    hresp_free(&r);
    const cJSON *wants = cJSON_GetObjectItem(tc, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        const cJSON *g = cJSON_GetArrayItem(j, i), *w = cJSON_GetArrayItem(wants, i);
        ck_assert_int_eq(cJSON_GetArraySize(g), cJSON_GetArraySize(w));
        for (int k = 0; k < cJSON_GetArraySize(w); k++) {
            const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
            static const char *const strs[] = {"entity", "word"}, *const ints[] = {"index", "start",
                                                                                   "end"};
            for (int f = 0; f < 2; f++)
                ck_assert_str_eq(cJSON_GetObjectItem(gk, strs[f])->valuestring,
                                 cJSON_GetObjectItem(wk, strs[f])->valuestring);
            for (int f = 0; f < 3; f++)
                ck_assert_int_eq(cJSON_GetObjectItem(gk, ints[f])->valueint,
                                 cJSON_GetObjectItem(wk, ints[f])->valueint);
            ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                           cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-5);
        }
    }
    cJSON_Delete(j);

    /* /fill_mask: top 5 by score, token_str = decode([id]), sequence with the mask filled */
    const cJSON *fm = cJSON_GetObjectItem(exp, "fill_mask");
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(fm, "inputs"), 1));
    post_json(s.port, "/fill_mask", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = hjson(&r);
    hresp_free(&r);
    wants = cJSON_GetObjectItem(fm, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        const cJSON *g = cJSON_GetArrayItem(j, i), *w = cJSON_GetArrayItem(wants, i);
        ck_assert_int_eq(cJSON_GetArraySize(g), 5);
        for (int k = 0; k < 5; k++) {
            const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
            ck_assert_int_eq(cJSON_GetObjectItem(gk, "token")->valueint,
                             cJSON_GetObjectItem(wk, "token")->valueint);
            ck_assert_str_eq(cJSON_GetObjectItem(gk, "token_str")->valuestring,
                             cJSON_GetObjectItem(wk, "token_str")->valuestring);
            ck_assert_str_eq(cJSON_GetObjectItem(gk, "sequence")->valuestring,
                             cJSON_GetObjectItem(wk, "sequence")->valuestring);
            ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                           cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-6);
        }
    }
    cJSON_Delete(j);

    /* /answer: the QA pipeline's span, character offsets into the context */
    const cJSON *qa = cJSON_GetObjectItem(exp, "answer");
    wants = cJSON_GetObjectItem(qa, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        b = cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(qa, "inputs"), i), 1);
        post_json(s.port, "/answer", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        j = hjson(&r);
        hresp_free(&r);
        const cJSON *w = cJSON_GetArrayItem(wants, i);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "answer")->valuestring,
                         cJSON_GetObjectItem(w, "answer")->valuestring);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "start")->valueint,
                         cJSON_GetObjectItem(w, "start")->valueint);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "end")->valueint,
                         cJSON_GetObjectItem(w, "end")->valueint);
        double gs = cJSON_GetObjectItem(j, "score")->valuedouble,
               ws = cJSON_GetObjectItem(w, "score")->valuedouble;
        ck_assert_msg(fabs(gs - ws) <= 1e-4 * ws, "answer %d score %g vs %g", i, gs, ws);
        const cJSON *ls = cJSON_GetObjectItem(j, "longserve");
        ck_assert_int_eq(cJSON_GetObjectItem(ls, "tokens_used")->valueint,
                         cJSON_GetArraySize(cJSON_GetObjectItem(w, "ids")));
        cJSON_Delete(j);
    }
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* An error status and a substring of its body, then the same server answers health. */
static void text_expect(int port, const char *path, const char *body, int status,
                        const char *needle)
{
    hresp r;
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == status, "%s %.80s: %d (want %d) %s", path, body, r.status, status,
                  r.body);
    ck_assert_msg(strstr(r.body, needle) != NULL, "%s: '%s' not in %s", path, needle, r.body);
    if (status >= 400) {
        cJSON *j = hjson(&r);
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        if (strncmp(path, "/v1/", 4) == 0)
            ck_assert(cJSON_IsString(cJSON_GetObjectItem(e, "message")) &&
                      cJSON_IsString(cJSON_GetObjectItem(e, "type")));
        else
            ck_assert(cJSON_IsString(e) && cJSON_IsString(cJSON_GetObjectItem(j, "error_type")));
        cJSON_Delete(j);
    }
    hresp_free(&r);
}

START_TEST(text_errors)
{
    const char *extra[] = {"--max-global-tokens", "4", NULL};
    server s;
    text_server(&s, extra);
    char lng[4096];
    int k = snprintf(lng, sizeof lng, "{\"inputs\":\"");
    for (int i = 0; i < 150; i++)
        k += snprintf(lng + k, sizeof lng - (size_t)k, "word%d ", i);
    snprintf(lng + k, sizeof lng - (size_t)k, "\"");
    char body[4200];

    text_expect(s.port, "/embed", "{\"inputs\":\"\"}", 400, "cannot be empty");
    text_expect(s.port, "/embed", "{\"inputs\":[]}", 400, "cannot be empty");
    text_expect(s.port, "/embed", "{\"inputs\":[\"a\",3]}", 400, "inputs[1]");
    text_expect(s.port, "/embed", "{\"inputs\":5}", 400, "must be a string");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"normalize\":\"yes\"}", 400, "normalize");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\"", 400, "not valid JSON");
    text_expect(s.port, "/embed", "{\"inputs\":\"ab\xc3\x28\"}", 400, "byte offset 13");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"truncate\":\"middle\"}", 400, "truncate");
    /* too many tokens: 413 with the counts, unless truncated (reported in headers) */
    snprintf(body, sizeof body, "%s}", lng);
    text_expect(s.port, "/predict", body, 413, "at most 128");
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 0);
    snprintf(body, sizeof body, "%s,\"truncate\":true}", lng);
    hresp r;
    hreq(s.port, "POST", "/predict", NULL, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 1);
    char hv[64];
    ck_assert(hheader(&r, "x-truncated", hv, sizeof hv) && strcmp(hv, "1") == 0);
    ck_assert(hheader(&r, "x-tokens-used", hv, sizeof hv) && strcmp(hv, "128") == 0);
    ck_assert(hheader(&r, "x-tokens-in", hv, sizeof hv) && atoi(hv) > 128);
    hresp_free(&r);
    /* global attention: positions in range, at most --max-global-tokens */
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b\",\"global_attention\":{\"token_indices\":[9]}}", 422,
                "outside the 4 tokens");
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b c d e f\",\"global_attention\":{\"spans\":[[0,6]]}}", 422,
                "too many global tokens");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"global_attention\":{\"spans\":[[3,1]]}}",
                422, "after end");
    /* models: unknown, wrong task, without a tokenizer */
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"model\":\"nope\"}", 422, "not served");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"model\":\"lf_base\"}", 422, "no tokenizer");
    text_expect(s.port, "/predict", "{\"inputs\":\"a\",\"model\":\"st_tiny\"}", 422,
                "text-classification");
    text_expect(s.port, "/fill_mask", "{\"inputs\":\"no mask here\"}", 422, "mask tokens");
    text_expect(s.port, "/answer", "{\"question\":\"who?\"}", 400, "context");
    text_expect(s.port, "/decode", "{\"ids\":[-1]}", 400, "non-negative");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"long_document\":{\"window\":2}}", 422,
                "window");
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b c d e f g h\",\"long_document\":{\"window\":6,\"stride\":5}}",
                422, "stride");
    /* OpenAI's error shape on /v1/ */
    text_expect(s.port, "/v1/embeddings", "{\"input\":\"\",\"model\":\"st_tiny\"}", 400,
                "invalid_request_error");
    text_expect(s.port, "/v1/embeddings", "{\"input\":[[1,2,99999]]}", 422,
                "outside the vocabulary");
    /* 33 inputs: over --max-client-batch-size */
    k = snprintf(body, sizeof body, "{\"inputs\":[");
    for (int i = 0; i < 33; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "%s\"x\"", i ? "," : "");
    snprintf(body + k, sizeof body - (size_t)k, "]}");
    text_expect(s.port, "/embed", body, 413, "batch size 33");
    /* the server is unharmed and serves the next request */
    expect_healthy(s.port);
    text_expect(s.port, "/embed", "{\"inputs\":\"still fine\"}", 200, "[[");
    text_expect(s.port, "/decode", "{\"ids\":[[2,5],[3]],\"skip_special_tokens\":false}", 200,
                "[\"");
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- proto/openapi.yaml: the documented response shapes ------------------------------------ */

/* One request whose response must be documented in the spec and match it; the body is
 * returned in r for further checks. */
static void spec_req(int port, const char *method, const char *path, const char *body, int status,
                     hresp *r)
{
    hreq(port, method, path, body ? "Content-Type: application/json\r\n" : NULL, body, r);
    ck_assert_msg(r->status == status, "%s %s: %d, expected %d: %.300s", method, path, r->status,
                  status, r->body);
    spec_expect(method, path, r);
}

static void spec_route(int port, const char *method, const char *path, const char *body, int status)
{
    hresp r;
    spec_req(port, method, path, body, status, &r);
    hresp_free(&r);
}

/* A body the spec must refuse, with the JSON pointer the refusal names. */
static void spec_refuses(const char *method, const char *tmpl, int status, const char *body,
                         const char *where)
{
    char err[600];
    int rc = oa_validate(spec(), method, tmpl, status, body, err, sizeof err);
    ck_assert_msg(rc == OA_MISMATCH, "%s %s %d accepted a wrong body (rc %d, %s): %.200s", method,
                  tmpl, status, rc, err, body);
    ck_assert_msg(strstr(err, where) != NULL, "the refusal '%s' does not name '%s'", err, where);
}

/* Every route's success body, and each error family's, matches its schema; and the checker
 * bites: wrong bodies are refused with the place they go wrong. */
START_TEST(openapi_responses)
{
    /* the YAML loader: quoted scalars stay strings, plain ones become numbers/booleans */
    const cJSON *sp = spec();
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "info"), "version")->valuestring,
                     "0.1.0");
    const cJSON *sh = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "components"), "schemas"),
                "V2InferInput"),
            "properties"),
        "shape");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(sh, "minItems")) &&
              cJSON_GetObjectItem(sh, "minItems")->valuedouble == 2);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(sh, "description")));
    const cJSON *ok200 = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "paths"), "/embed"),
                            "post"),
        "responses");
    ck_assert(cJSON_GetObjectItem(ok200, "200") != NULL); /* '200' is a key, quoted or not */
    ck_assert_str_eq(oa_match_path(sp, "/v2/models/x/ready?a=1"), "/v2/models/{model}/ready");
    ck_assert_str_eq(oa_match_path(sp, "/v2/health/ready"), "/v2/health/ready");
    ck_assert_str_eq(oa_match_path(sp, "/v2/models/x"), "/v2/models/{model}");
    ck_assert(oa_match_path(sp, "/v2/models//infer") == NULL);
    ck_assert(oa_match_path(sp, "/nowhere") == NULL);

    server s;
    text_server(&s, NULL);
    int p = s.port;
    hresp r;

    /* metadata */
    spec_route(p, "GET", "/health", NULL, 200);
    spec_route(p, "GET", "/ready", NULL, 200);
    spec_route(p, "GET", "/v2/health/live", NULL, 200);
    spec_route(p, "GET", "/v2/health/ready", NULL, 200);
    spec_route(p, "GET", "/v2", NULL, 200);
    spec_route(p, "GET", "/v2/models/lf_base", NULL, 200);
    spec_route(p, "GET", "/v2/models/qa", NULL, 200);
    spec_route(p, "GET", "/v2/models/lf_base/ready", NULL, 200);
    spec_route(p, "GET", "/v1/models", NULL, 200);
    spec_route(p, "GET", "/info", NULL, 200);

    /* KServe v2 inference: 200, and the family's {"error"} on 400 / 404 / 405 / 422 */
    char *v2 = v2_body(2, 9, 4);
    spec_route(p, "POST", "/v2/models/lf_base/infer", v2, 200);
    free(v2);
    spec_route(p, "POST", "/v2/models/lf_base/infer", "{\"inputs\": [", 400);
    spec_route(p, "POST", "/v2/models/nope/infer", "{}", 404);
    spec_route(p, "GET", "/v2/models/nope", NULL, 404);
    spec_route(p, "GET", "/v2/models/lf_base/infer", NULL, 405);
    spec_route(p, "POST", "/v2/models/lf_base/infer",
               "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
               "\"data\":[0,100000,2]}]}",
               422);

    /* text routes */
    spec_route(p, "POST", "/embed", "{\"inputs\":[\"a b\",\"c\"]}", 200);
    spec_route(p, "POST", "/embed", "{\"inputs\":\"a b c\",\"pooling\":\"cls\"}", 200);
    spec_route(p, "POST", "/embed_all", "{\"inputs\":\"a b\"}", 200);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":[\"a b\",\"c\"],\"model\":\"st_tiny\"}",
               200);
    spec_req(p, "POST", "/v1/embeddings",
             "{\"input\":\"a b\",\"model\":\"st_tiny\",\"encoding_format\":\"base64\"}", 200, &r);
    cJSON *j = hjson(&r);
    ck_assert(cJSON_IsString(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding")));
    cJSON_Delete(j);
    hresp_free(&r);
    spec_route(p, "POST", "/predict", "{\"inputs\":\"i like this movie\"}", 200);
    spec_route(p, "POST", "/predict", "{\"inputs\":[\"a b\",\"c d\"],\"raw_scores\":true}", 200);
    spec_route(p, "POST", "/predict",
               "{\"inputs\":[\"what is the capital\",\"paris is the capital\"]}", 200);
    spec_route(p, "POST", "/token_classify", "{\"inputs\":\"john smith lives in london\"}", 200);
    spec_route(p, "POST", "/token_classify",
               "{\"inputs\":[\"john smith\",\"mary went to paris\"],\"ignore_labels\":[]}", 200);
    spec_route(p, "POST", "/fill_mask", "{\"inputs\":\"paris is the <mask> of france\"}", 200);
    spec_route(p, "POST", "/fill_mask",
               "{\"inputs\":[\"the quick brown <mask> jumps\",\"a <mask> b\"],\"top_k\":2}", 200);
    spec_req(p, "POST", "/answer",
             "{\"question\":\"who lives in london?\",\"context\":\"john smith lives in london\"}",
             200, &r);
    hresp_free(&r);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":\"a b\"}", 200);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":[\"a b\",\"c\"],\"add_special_tokens\":false}",
               200);
    spec_route(p, "POST", "/decode", "{\"ids\":[[2,5],[3]],\"skip_special_tokens\":false}", 200);
    spec_route(p, "POST", "/decode", "{\"ids\":[5,6]}", 200);

    /* TEI's {"error","error_type"} and OpenAI's {"error":{...}} */
    spec_route(p, "POST", "/embed", "{\"inputs\":\"\"}", 400);
    spec_route(p, "POST", "/embed", "{\"inputs\":\"a\",\"model\":\"nope\"}", 422);
    spec_route(p, "POST", "/predict", "{\"inputs\":\"a\",\"model\":\"st_tiny\"}", 422);
    spec_route(p, "POST", "/answer", "{\"question\":\"who?\"}", 400);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":5}", 400);
    spec_route(p, "POST", "/decode", "{\"ids\":[-1]}", 400);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":\"\",\"model\":\"st_tiny\"}", 400);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":[[1,2,99999]]}", 422);

    /* the checker bites: a real /v1/embeddings answer with one float turned into a string */
    spec_req(p, "POST", "/v1/embeddings", "{\"input\":\"a b\",\"model\":\"st_tiny\"}", 200, &r);
    j = hjson(&r);
    hresp_free(&r);
    cJSON *emb =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding");
    cJSON_ReplaceItemInArray(emb, 3, cJSON_CreateString("0.25"));
    char *bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/v1/embeddings", 200, bad, "/data/0/embedding/3: expected number");
    free(bad);
    cJSON_DeleteItemFromObject(j, "usage");
    cJSON_DeleteItemFromObject(j, "model");
    bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/v1/embeddings", 200, bad, "required member \"model\"");
    free(bad);
    cJSON_Delete(j);
    /* and a real /embed answer whose vector is a string list */
    spec_req(p, "POST", "/embed", "{\"inputs\":\"a b\"}", 200, &r);
    j = hjson(&r);
    hresp_free(&r);
    cJSON *row = cJSON_GetArrayItem(j, 0);
    cJSON_ReplaceItemInArray(row, 1, cJSON_CreateString("x"));
    bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/embed", 200, bad, "/0/1: expected number, got string");
    free(bad);
    cJSON_Delete(j);
    spec_refuses("POST", "/embed", 200, "{\"embeddings\":[]}", "(root): expected array");
    spec_refuses("POST", "/embed", 200, "[[0.5,", "not JSON");
    spec_refuses("POST", "/embed", 422, "{\"error\":\"x\",\"error_type\":\"bogus\"}",
                 "/error_type: \"bogus\" is not in the enum");
    spec_refuses("POST", "/embed", 400,
                 "{\"error\":{\"message\":\"x\"},\"error_type\":\"validation\"}",
                 "/error: expected string");
    spec_refuses("POST", "/v1/embeddings", 400, "{\"error\":\"x\",\"error_type\":\"validation\"}",
                 "/error: expected object");
    spec_refuses("POST", "/v2/models/{model}/infer", 200,
                 "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
                 "\"shape\":[1,2.5],\"data\":[1,null]}]}",
                 "/outputs/0/shape/1: expected integer");
    spec_refuses("POST", "/predict", 200, "[{\"label\":\"a\",\"score\":\"0.5\"}]",
                 "matches none of the 2 oneOf");
    spec_refuses("POST", "/tokenize", 200,
                 "[[{\"id\":1,\"text\":\"a\",\"special\":false,\"start\":null}]]",
                 "/0/0: required member \"stop\"");
    spec_refuses("GET", "/health", 200, "{\"status\":\"dead\"}", "/status");
    /* the V2 output data admit null (non-finite values); a tensor shape does not */
    ck_assert_int_eq(oa_validate(sp, "POST", "/v2/models/{model}/infer", 200,
                                 "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"logits\","
                                 "\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[1,null]}]}",
                                 NULL, 0),
                     OA_OK);
    char err[256];
    ck_assert_int_eq(oa_validate(sp, "GET", "/metrics", 200, "x", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "GET", "/health", 418, "{}", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "DELETE", "/health", 405, "{}", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "GET", "/v2/models/{model}/infer", 405, "{\"error\":\"x\"}",
                                 err, sizeof err),
                     OA_OK);
    ck_assert_int_eq(
        oa_validate(sp, "GET", "/v2/models/{model}/infer", 405, "{\"err\":\"x\"}", err, sizeof err),
        OA_MISMATCH);

    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* The default model (all-MiniLM-L6-v2 as BERT with Longformer attention, window 512):
 * /embed equals sentence-transformers to 1e-4. Skipped when models/ lacks it. */
START_TEST(text_default_model)
{
    char dir[512], path[800], model[900];
    snprintf(path, sizeof path, "%s/../../models/all-MiniLM-L6-v2/model.safetensors",
             fixture("", dir, sizeof dir));
    if (access(path, R_OK) != 0) {
        fprintf(stderr,
                "SKIP text_default_model: %s is absent (tools/fetch-default-model.sh "
                "fetches it)\n",
                path);
        return;
    }
    snprintf(model, sizeof model, "minilm=%s/../../models/all-MiniLM-L6-v2", dir);
    const char *const models[] = {model, NULL};
    const char *extra[] = {"--window", "512", NULL};
    server s;
    server_start_models(&s, models, extra);
    cJSON *exp = fixture_json("embed/minilm_expected.json");
    const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
    cJSON *b = cJSON_CreateObject(), *texts = cJSON_AddArrayToObject(b, "inputs");
    for (int i = 0; i < cJSON_GetArraySize(cases); i++)
        cJSON_AddItemToArray(
            texts, cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(cases, i), "text"), 1));
    hresp r;
    post_json(s.port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    double worst = 0;
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        double e = json_rel_err(cJSON_GetArrayItem(got, i), cJSON_GetObjectItem(c, "embedding"));
        ck_assert_msg(e <= 1e-4, "text %d (%.30s): %g from sentence-transformers", i,
                      cJSON_GetObjectItem(c, "text")->valuestring, e);
        worst = fmax(worst, e);
        int ids[300];
        int n = tokenize_ids(s.port, cJSON_GetObjectItem(c, "text")->valuestring, ids, 300);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ck_assert_int_eq(n, cJSON_GetArraySize(want));
        for (int t = 0; t < n; t++)
            ck_assert_int_eq(ids[t], cJSON_GetArrayItem(want, t)->valueint);
    }
    fprintf(stderr, "text_default_model: %d texts, worst relative error %.3g\n",
            cJSON_GetArraySize(cases), worst);
    cJSON_Delete(got);
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server");
    TCase *tc = tcase_create("longserve");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, metadata_routes);
    tcase_add_test(tc, v2_infer_equals_runner);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, api_key);
    tcase_add_test(tc, concurrent_clients_batch);
    tcase_add_test(tc, overload_429);
    tcase_add_test(tc, client_disconnects);
    tcase_add_test(tc, deadline_504);
    tcase_add_test(tc, sigterm_drains);
    suite_add_tcase(su, tc);
    TCase *tt = tcase_create("text");
    tcase_set_timeout(tt, 240);
    tcase_add_test(tt, text_embed_sentence_transformers);
    tcase_add_test(tt, text_embed_equals_engine);
    tcase_add_test(tt, text_pipelines);
    tcase_add_test(tt, text_errors);
    tcase_add_test(tt, openapi_responses);
    tcase_add_test(tt, text_default_model);
    suite_add_tcase(su, tt);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
