/* bench_load: requests/s and p50/p99 latency of longserve's POST /embed on loopback, with
 * keep-alive clients in threads, at several concurrencies, for a short and a long input,
 * with batching on (the server's defaults) and off (--max-batch-requests 1); then the
 * HTTP + tokenization overhead over a direct eng_ctx_forward on the same short input.
 *
 *   bench_load --server build/server/longserve --model models/all-MiniLM-L6-v2
 *              [--threads 2] [--clients 1,8,64] [--short 50] [--long 4096]
 *              [--seconds-short 5] [--seconds-long 20] [--window 512]
 *
 * The server is started by the bench (--port 0 --port-file) once per batching mode and
 * stopped with SIGTERM. Token counts are checked with /tokenize. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../engine/engine.h"
#include "../tests/httpc.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn static void die(const char *msg)
{
    fprintf(stderr, "bench_load: %s\n", msg);
    exit(1);
}

/* ---- requests: keep-alive connections through tests/httpc.c --------------------------- */

/* One POST on a kept-alive connection: its status, -1 on a transport error; the response
 * body in *r when r is not NULL (hresp_free it), else dropped. */
static int post(int fd, const char *path, const char *body, size_t blen, hresp *r)
{
    hresp tmp;
    if (!r) r = &tmp;
    if (hsend_request(fd, "POST", path,
                      "Connection: keep-alive\r\nContent-Type: application/json\r\n", body, blen))
        return -1;
    int st = hread(fd, r);
    if (r == &tmp) hresp_free(&tmp);
    return st;
}

/* ---- the server -------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
} server;

static void server_start(server *s, const char *bin, const char *model, int threads, int window,
                         int batch)
{
    char pf[64], spec[1200], th[16], win[16], mb[16];
    snprintf(pf, sizeof pf, "/tmp/bench-load-port-%d", (int)getpid());
    unlink(pf);
    snprintf(spec, sizeof spec, "bench=%s", model);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(win, sizeof win, "%d", window);
    snprintf(mb, sizeof mb, "%d", batch ? 64 : 1);
    s->pid = fork();
    if (s->pid == 0) {
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        execl(bin, bin, "--model-id", spec, "--hostname", "127.0.0.1", "--port", "0", "--port-file",
              pf, "--threads", th, "--window", win, "--max-batch-requests", mb,
              "--max-batch-tokens", "65536", "--max-concurrent-requests", "4096", (char *)NULL);
        _exit(127);
    }
    double t0 = now_s();
    for (s->port = 0; s->port <= 0;) {
        FILE *f = fopen(pf, "r");
        if (f) {
            if (fscanf(f, "%d", &s->port) != 1) s->port = 0;
            fclose(f);
        }
        int ws;
        if (waitpid(s->pid, &ws, WNOHANG) == s->pid) die("the server exited at startup");
        if (now_s() - t0 > 120) die("the server did not start in 120 s");
        usleep(20000);
    }
    unlink(pf);
}

static void server_stop(server *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

/* ---- load -------------------------------------------------------------------------------------
 */

typedef struct {
    int port;
    const char *body;
    size_t blen;
    double deadline;
    double *lat;
    int n, cap, errors;
    pthread_barrier_t *start;
} client;

static void *client_main(void *p)
{
    client *c = p;
    int fd = hconnect(c->port);
    if (fd < 0) {
        c->errors++;
        pthread_barrier_wait(c->start);
        return NULL;
    }
    pthread_barrier_wait(c->start);
    while (now_s() < c->deadline) {
        double t0 = now_s();
        int st = post(fd, "/embed", c->body, c->blen, NULL);
        double dt = now_s() - t0;
        if (st != 200) {
            c->errors++;
            if (st < 0) {
                close(fd);
                if ((fd = hconnect(c->port)) < 0) break;
            }
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->lat = realloc(c->lat, (size_t)c->cap * sizeof *c->lat);
            if (!c->lat) die("out of memory");
        }
        c->lat[c->n++] = dt;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double rps, p50, p99;
    int n, errors;
} result;

static result run_load(int port, const char *body, int nclients, double seconds)
{
    client *cs = calloc((size_t)nclients, sizeof *cs);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nclients + 1);
    for (int i = 0; i < nclients; i++) {
        cs[i] = (client){.port = port, .body = body, .blen = strlen(body), .start = &bar};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    double t0 = now_s();
    for (int i = 0; i < nclients; i++)
        cs[i].deadline = t0 + seconds;
    pthread_barrier_wait(&bar);
    result r = {0};
    for (int i = 0; i < nclients; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    int total = 0;
    for (int i = 0; i < nclients; i++)
        total += cs[i].n;
    double *all = malloc(((size_t)total + 1) * sizeof *all);
    for (int i = 0, k = 0; i < nclients; i++) {
        memcpy(all + k, cs[i].lat, (size_t)cs[i].n * sizeof *all);
        k += cs[i].n;
        r.errors += cs[i].errors;
        free(cs[i].lat);
    }
    qsort(all, (size_t)total, sizeof *all, cmp_double);
    r.n = total;
    r.rps = total / wall;
    r.p50 = total ? all[(size_t)(0.50 * (total - 1))] : 0;
    r.p99 = total ? all[(size_t)(0.99 * (total - 1) + 0.5)] : 0;
    free(all);
    free(cs);
    free(th);
    pthread_barrier_destroy(&bar);
    return r;
}

/* ---- inputs ------------------------------------------------------------------------------------
 */

/* A text of about `tokens` tokens (common English words, one token each in BERT's vocab). */
static char *make_text(int tokens)
{
    static const char *const words[] = {
        "the", "model", "reads", "long", "documents", "and",       "returns", "one",  "vector",
        "for", "each",  "text",  "with", "sparse",    "attention", "over",    "many", "pages"};
    const int nw = sizeof words / sizeof words[0];
    char *t = malloc((size_t)tokens * 12 + 16);
    if (!t) die("out of memory");
    size_t k = 0;
    /* not sprintf(t + k, ...): with UBSan's checks GCC sees a NULL destination there
     * (-Werror=format-overflow) */
    for (int i = 0; i < tokens - 2; i++) {
        const char *w = words[(i * 7 + i / nw) % nw];
        size_t n = strlen(w);
        if (i) t[k++] = ' ';
        memcpy(t + k, w, n);
        k += n;
    }
    t[k] = 0;
    return t;
}

static char *embed_body(const char *text)
{
    char *b = malloc(strlen(text) + 32);
    if (!b) die("out of memory");
    sprintf(b, "{\"inputs\":\"%s\"}", text);
    return b;
}

/* Token ids of text through /tokenize (for the count and the direct engine call). */
static int tokenize(int port, const char *text, int32_t *ids, int cap)
{
    char *b = malloc(strlen(text) + 32);
    if (!b) die("out of memory");
    sprintf(b, "{\"inputs\":\"%s\"}", text);
    int fd = hconnect(port);
    hresp r;
    if (fd < 0 || post(fd, "/tokenize", b, strlen(b), &r) != 200) die("/tokenize failed");
    int n = 0;
    for (const char *p = r.body; (p = strstr(p, "{\"id\":")) && n < cap; p += 6)
        ids[n++] = (int32_t)atoi(p + 6);
    hresp_free(&r);
    close(fd);
    free(b);
    return n;
}

/* The HTTP overhead, paired so that a busy machine does not bias it: `reps` rounds of one
 * direct eng_ctx_forward on ids (the server's own computation, without HTTP, JSON,
 * tokenization or scheduling) then one POST /embed of the same text to the server, one
 * after the other; the medians of both and of the per-round difference. */
static void overhead(const char *model, int threads, int window, const int32_t *ids, int n,
                     int port, const char *body, int reps, double *direct, double *http,
                     double *diff)
{
    char err[512];
    eng_model_params mp = eng_model_default_params();
    mp.threads = threads;
    mp.window = window;
    eng_model *m;
    if (eng_model_load(model, &mp, &m, err, sizeof err)) die(err);
    eng_ctx *ctx = eng_ctx_new(m);
    int32_t off[2] = {0, n};
    eng_batch b = {.nseq = 1, .offsets = off, .ids = ids};
    eng_outputs out;
    int fd = hconnect(port);
    if (fd < 0) die("connect");
    double *t[3];
    for (int k = 0; k < 3; k++)
        t[k] = malloc((size_t)reps * sizeof *t[k]);
    for (int i = -3; i < reps; i++) { /* 3 warm-up rounds */
        double t0 = now_s();
        if (eng_ctx_forward(ctx, &b, &out, err, sizeof err)) die(err);
        double t1 = now_s();
        if (post(fd, "/embed", body, strlen(body), NULL) != 200) die("/embed failed");
        double t2 = now_s();
        if (i < 0) continue;
        t[0][i] = t1 - t0;
        t[1][i] = t2 - t1;
        t[2][i] = (t2 - t1) - (t1 - t0);
    }
    double *res[3] = {direct, http, diff};
    for (int k = 0; k < 3; k++) {
        qsort(t[k], (size_t)reps, sizeof *t[k], cmp_double);
        *res[k] = t[k][reps / 2];
        free(t[k]);
    }
    close(fd);
    eng_ctx_free(ctx);
    eng_model_free(m);
}

int main(int argc, char **argv)
{
    const char *bin = "build/server/longserve", *model = "models/all-MiniLM-L6-v2";
    const char *clients_arg = "1,8,64";
    int threads = 2, window = 512, short_tok = 50, long_tok = 4096;
    double sec_short = 5, sec_long = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--server"))
            bin = v;
        else if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--clients"))
            clients_arg = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--window"))
            window = atoi(v);
        else if (!strcmp(a, "--short"))
            short_tok = atoi(v);
        else if (!strcmp(a, "--long"))
            long_tok = atoi(v);
        else if (!strcmp(a, "--seconds-short"))
            sec_short = atof(v);
        else if (!strcmp(a, "--seconds-long"))
            sec_long = atof(v);
        else {
            fprintf(stderr, "usage: see the comment at the top of bench/bench_load.c\n");
            return 2;
        }
    }
    int clients[16], nclients = 0;
    for (char *s = strdup(clients_arg), *save = NULL, *t = strtok_r(s, ",", &save);
         t && nclients < 16; t = strtok_r(NULL, ",", &save))
        clients[nclients++] = atoi(t);

    char *texts[2] = {make_text(short_tok), make_text(long_tok)};
    char *bodies[2] = {embed_body(texts[0]), embed_body(texts[1])};
    int ntok[2] = {0, 0};
    static int32_t ids[1 << 16];
    int nshort = 0;
    printf("# bench_load: POST /embed on %s, %d engine threads, window %d\n", model, threads,
           window);
    printf("%-8s %-7s %-8s %9s %10s %10s %7s %6s\n", "batching", "input", "clients", "req/s",
           "p50_ms", "p99_ms", "n", "errors");
    for (int batch = 1; batch >= 0; batch--) {
        server s;
        server_start(&s, bin, model, threads, window, batch);
        if (!ntok[0]) {
            ntok[1] = tokenize(s.port, texts[1], ids, 1 << 16);
            nshort = ntok[0] = tokenize(s.port, texts[0], ids, 1 << 16);
        }
        for (int in = 0; in < 2; in++)
            for (int c = 0; c < nclients; c++) {
                result r = run_load(s.port, bodies[in], clients[c], in ? sec_long : sec_short);
                printf("%-8s %-7s %-8d %9.1f %10.2f %10.2f %7d %6d\n", batch ? "on" : "off",
                       in ? "long" : "short", clients[c], r.rps, r.p50 * 1e3, r.p99 * 1e3, r.n,
                       r.errors);
                fflush(stdout);
            }
        if (batch) {
            double d, h, o;
            overhead(model, threads, window, ids, nshort, s.port, bodies[0], 100, &d, &h, &o);
            printf("# short input, 100 paired rounds: direct eng_ctx_forward p50 %.2f ms, "
                   "POST /embed p50 %.2f ms, overhead p50 %.2f ms (HTTP + JSON + tokenization "
                   "+ scheduling + pooling)\n",
                   d * 1e3, h * 1e3, o * 1e3);
        }
        server_stop(&s);
    }
    printf("# inputs: short %d tokens, long %d tokens (from /tokenize)\n", ntok[0], ntok[1]);
    for (int i = 0; i < 2; i++) {
        free(texts[i]);
        free(bodies[i]);
    }
    return 0;
}
