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

/* Starts longserve with the models lf_base, lf_qa and lf_seqcls and extra flags
 * (NULL-terminated); returns once it has written its port. */
static void server_start(server *s, const char *const *extra)
{
    const char *bin = getenv("LONGSERVE");
    ck_assert_msg(bin != NULL, "LONGSERVE not set");
    memset(s, 0, sizeof *s);
    snprintf(s->port_file, sizeof s->port_file, "/tmp/ls-srv-port-%d", (int)getpid());
    snprintf(s->log_file, sizeof s->log_file, "/tmp/ls-srv-log-%d", (int)getpid());
    unlink(s->port_file);
    char base[600], qa[600], cls[600], dir[512];
    snprintf(base, sizeof base, "lf_base=%s", fixture("lf_base", dir, sizeof dir));
    snprintf(qa, sizeof qa, "lf_qa=%s", fixture("lf_qa", dir, sizeof dir));
    snprintf(cls, sizeof cls, "lf_seqcls=%s", fixture("lf_seqcls", dir, sizeof dir));
    const char *argv[64] = {bin,          "--model-id",  base,         "--model-id", qa,
                            "--model-id", cls,           "--hostname", "127.0.0.1",  "--port",
                            "0",          "--port-file", s->port_file, "--threads",  "1"};
    int argc = 15;
    for (int i = 0; extra && extra[i] && argc < 62; i++)
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

static void hreq(int port, const char *method, const char *path, const char *headers,
                 const char *body, hresp *r)
{
    int fd = hconnect(port);
    hsend_request(fd, method, path, headers, body, body ? strlen(body) : 0);
    hread(fd, r);
    close(fd);
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
                            "/metrics"};
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
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
