/* bench_load: requests/s and p50/p99 latency of longserve's POST /embed on loopback, with
 * keep-alive clients in threads, at several concurrencies, for a short and a long input,
 * with batching on (the server's defaults) and off (--max-batch-requests 1); then the
 * HTTP + tokenization overhead over a direct eng_ctx_forward on the same short input.
 *
 *   bench_load --server build/server/longserve --model models/all-MiniLM-L6-v2
 *              [--threads 2] [--clients 1,8,64] [--short 50] [--long 4096]
 *              [--seconds-short 5] [--seconds-long 20] [--window 512]
 *
 * --mixed RUNS instead measures long requests in steps (issue 13 row 4): --long-clients
 * clients send the long input back to back while short inputs arrive at --short-rate per
 * second (open loop), for --seconds-mixed per run, with the server's --engine-step-ms at
 * --step-ms (steps on) and at 0 (off, one piece per request), runs alternating; it prints
 * short p50/p99 latency and long throughput per run and the best of each:
 *
 *   bench_load --mixed 3 [--long-clients 1] [--short-rate 4] [--seconds-mixed 60]
 *              [--step-ms 50] [--short 50] [--long 4096]
 *
 * The server is started by the bench (--port 0 --port-file) once per batching mode (or
 * run) and stopped with SIGTERM. Token counts are checked with /tokenize. */
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

static pid_t server_pid; /* the server the bench started, stopped on the way out */

_Noreturn static void die(const char *msg)
{
    fprintf(stderr, "bench_load: %s\n", msg);
    if (server_pid > 0) kill(server_pid, SIGTERM);
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

/* step_ms: --engine-step-ms, NULL: the server's default. */
static void server_start(server *s, const char *bin, const char *model, int threads, int window,
                         int batch, const char *step_ms)
{
    char pf[64], spec[1200], th[16], win[16], mb[16];
    snprintf(pf, sizeof pf, "/tmp/bench-load-port-%d", (int)getpid());
    unlink(pf);
    snprintf(spec, sizeof spec, "bench=%s", model);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(win, sizeof win, "%d", window);
    snprintf(mb, sizeof mb, "%d", batch ? 64 : 1);
    const char *argv[32] = {bin,         "--model-id",
                            spec,        "--hostname",
                            "127.0.0.1", "--port",
                            "0",         "--port-file",
                            pf,          "--threads",
                            th,          "--window",
                            win,         "--max-batch-requests",
                            mb,          "--max-batch-tokens",
                            "65536",     "--max-concurrent-requests",
                            "4096"};
    int argc = 19;
    if (step_ms) argv[argc++] = "--engine-step-ms", argv[argc++] = step_ms;
    s->pid = fork();
    if (s->pid == 0) {
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    server_pid = s->pid;
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
    /* it listens before its model is loaded and warm: wait for /ready */
    for (;;) {
        int fd = hconnect(s->port), st = -1;
        hresp r;
        if (fd >= 0 && !hsend_request(fd, "GET", "/ready", NULL, NULL, 0)) st = hread(fd, &r);
        if (st >= 0) hresp_free(&r);
        if (fd >= 0) close(fd);
        if (st == 200) break;
        if (now_s() - t0 > 300) die("the server was not ready in 300 s");
        usleep(50000);
    }
}

static void server_stop(server *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    server_pid = 0;
}

/* ---- load -------------------------------------------------------------------------------------
 */

static void lat_push(double **lat, int *n, int *cap, double v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *lat = realloc(*lat, (size_t)*cap * sizeof **lat);
        if (!*lat) die("out of memory");
    }
    (*lat)[(*n)++] = v;
}

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
        lat_push(&c->lat, &c->n, &c->cap, dt);
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

/* p50 and p99 of v[0..n) (sorted here); 0 when n is 0. */
static void quantiles(double *v, int n, double *p50, double *p99)
{
    *p50 = *p99 = 0;
    if (n <= 0) return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = v[(size_t)(0.50 * (n - 1))];
    *p99 = v[(size_t)(0.99 * (n - 1) + 0.5)];
}

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
    r.n = total;
    r.rps = total / wall;
    quantiles(all, total, &r.p50, &r.p99);
    free(all);
    free(cs);
    free(th);
    pthread_barrier_destroy(&bar);
    return r;
}

/* ---- mixed load: long requests back to back, short ones at a steady rate beside them ------ */

typedef struct {
    int port;
    const char *body;
    size_t blen;
    double t0, deadline;
    double rate;      /* short: the generators together send `rate` requests per second ... */
    int first, every; /* ... this one the requests first, first + every, ... of the schedule */
    double *lat;
    int n, cap, errors;
    double last_done; /* long: when its last reply came */
} mix_client;

/* POSTs body on c's connection (reconnecting after a transport error); 1 when it got 200. */
static int mix_post(mix_client *c, int *fd)
{
    int st = *fd >= 0 ? post(*fd, "/embed", c->body, c->blen, NULL) : -1;
    if (st == 200) return 1;
    c->errors++;
    if (st < 0) {
        if (*fd >= 0) close(*fd);
        *fd = hconnect(c->port);
    }
    return 0;
}

static void *long_main(void *p)
{
    mix_client *c = p;
    int fd = hconnect(c->port);
    while (fd >= 0 && now_s() < c->deadline) {
        const double t0 = now_s();
        if (!mix_post(c, &fd)) continue;
        c->last_done = now_s();
        lat_push(&c->lat, &c->n, &c->cap, c->last_done - t0);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* Open loop: request k is due at t0 + k / rate whatever the replies do, and its latency
 * counts from then, so a send delayed by a slow reply counts its delay. */
static void *short_main(void *p)
{
    mix_client *c = p;
    if (c->rate <= 0) return NULL; /* --short-rate 0: the long requests alone */
    for (int k = c->first;; k += c->every) {
        const double due = c->t0 + (double)k / c->rate, now = now_s();
        if (due >= c->deadline) break;
        if (due > now) usleep((useconds_t)((due - now) * 1e6));
        /* a connection per request: one idle for longer than --header-timeout is closed */
        int fd = hconnect(c->port);
        if (mix_post(c, &fd)) lat_push(&c->lat, &c->n, &c->cap, now_s() - due);
        if (fd >= 0) close(fd);
    }
    return NULL;
}

typedef struct {
    double short_p50, short_p99, long_rps, long_p50;
    int nshort, nlong, errors;
} mix_result;

/* enough short senders that none is still waiting for a reply when its next request is due
 * (rate x worst latency: 4/s x 16 s), so that latencies are the server's, not the pool's */
enum { MIX_SHORT_THREADS = 64, MIX_MAX_LONG = 8 };

static mix_result run_mixed(int port, const char *lbody, const char *sbody, int nlong, double rate,
                            double seconds)
{
    mix_client cs[MIX_SHORT_THREADS + MIX_MAX_LONG];
    pthread_t th[MIX_SHORT_THREADS + MIX_MAX_LONG];
    const int n = MIX_SHORT_THREADS + nlong;
    const double t0 = now_s() + 0.05;
    for (int i = 0; i < n; i++) {
        const int is_long = i >= MIX_SHORT_THREADS;
        const char *b = is_long ? lbody : sbody;
        cs[i] = (mix_client){.port = port,
                             .body = b,
                             .blen = strlen(b),
                             .t0 = t0,
                             .deadline = t0 + seconds,
                             .rate = rate,
                             .first = i,
                             .every = MIX_SHORT_THREADS};
        pthread_create(&th[i], NULL, is_long ? long_main : short_main, &cs[i]);
    }
    mix_result r = {0};
    double *all = NULL, *longs = NULL, last = t0;
    int cap = 0, lcap = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        r.errors += cs[i].errors;
        for (int k = 0; k < cs[i].n; k++) {
            if (i < MIX_SHORT_THREADS)
                lat_push(&all, &r.nshort, &cap, cs[i].lat[k]);
            else
                lat_push(&longs, &r.nlong, &lcap, cs[i].lat[k]);
        }
        if (cs[i].last_done > last) last = cs[i].last_done;
        free(cs[i].lat);
    }
    double p99;
    quantiles(all, r.nshort, &r.short_p50, &r.short_p99);
    quantiles(longs, r.nlong, &r.long_p50, &p99);
    /* the long replies over the time until the last of them (they run past the window's end) */
    r.long_rps = last > t0 ? r.nlong / (last - t0) : 0;
    free(all);
    free(longs);
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

/* The mixed-load table: runs alternate between the mechanism on (--engine-step-ms step_ms)
 * and off (--engine-step-ms 0), a fresh server each, so that both see the same machine. */
static void mixed_main(const char *bin, const char *model, int threads, int window, int short_tok,
                       int long_tok, int runs, int nlong, double rate, double seconds,
                       const char *step_ms)
{
    char *st = make_text(short_tok), *lt = make_text(long_tok);
    char *sb = embed_body(st), *lb = embed_body(lt);
    static int32_t ids[1 << 16];
    int ntok[2] = {0, 0};
    mix_result best[2] = {{0}};
    printf("# bench_load --mixed: %d client%s sending long /embed back to back, short /embed at "
           "%.1f/s (open loop, latency from when each was due), %.0f s per run, %d engine "
           "threads, window %d\n",
           nlong, nlong == 1 ? "" : "s", rate, seconds, threads, window);
    printf("%-4s %-10s %12s %12s %8s %9s %11s %11s %11s %7s\n", "run", "steps", "short_p50_ms",
           "short_p99_ms", "short_n", "long_done", "long_p50_ms", "long_req/s", "long_tok/s",
           "errors");
    for (int run = 0; run < 2 * runs; run++) {
        const int on = run % 2 == 0;
        server s;
        server_start(&s, bin, model, threads, window, 1, on ? step_ms : "0");
        if (!ntok[0]) {
            ntok[0] = tokenize(s.port, st, ids, 1 << 16);
            ntok[1] = tokenize(s.port, lt, ids, 1 << 16);
        }
        int fd = hconnect(s.port); /* warm: one of each */
        if (fd < 0 || post(fd, "/embed", lb, strlen(lb), NULL) != 200 ||
            post(fd, "/embed", sb, strlen(sb), NULL) != 200)
            die("warm-up requests failed");
        close(fd);
        mix_result r = run_mixed(s.port, lb, sb, nlong, rate, seconds);
        server_stop(&s);
        char mode[32];
        snprintf(mode, sizeof mode, on ? "on %sms" : "off", step_ms);
        printf("%-4d %-10s %12.1f %12.1f %8d %9d %11.0f %11.3f %11.0f %7d\n", run / 2 + 1, mode,
               r.short_p50 * 1e3, r.short_p99 * 1e3, r.nshort, r.nlong, r.long_p50 * 1e3,
               r.long_rps, r.long_rps * ntok[1], r.errors);
        fflush(stdout);
        mix_result *b = &best[on];
        if (run < 2 || r.short_p99 < b->short_p99)
            b->short_p99 = r.short_p99, b->short_p50 = r.short_p50;
        if (run < 2 || r.long_rps > b->long_rps) b->long_rps = r.long_rps;
    }
    printf("# inputs: short %d tokens, long %d tokens (from /tokenize)\n", ntok[0], ntok[1]);
    printf("# best of %d: steps on: short p50 %.1f ms p99 %.1f ms, long %.0f tok/s; off: short p50 "
           "%.1f ms p99 %.1f ms, long %.0f tok/s; long throughput on/off %.3f\n",
           runs, best[1].short_p50 * 1e3, best[1].short_p99 * 1e3, best[1].long_rps * ntok[1],
           best[0].short_p50 * 1e3, best[0].short_p99 * 1e3, best[0].long_rps * ntok[1],
           best[0].long_rps > 0 ? best[1].long_rps / best[0].long_rps : 0);
    free(st), free(lt), free(sb), free(lb);
}

int main(int argc, char **argv)
{
    const char *bin = "build/server/longserve", *model = "models/all-MiniLM-L6-v2";
    const char *clients_arg = "1,8,64";
    int threads = 2, window = 512, short_tok = 50, long_tok = 4096;
    double sec_short = 5, sec_long = 20;
    /* --mixed RUNS: the mixed-load table instead (mixed_main) */
    int mixed = 0, long_clients = 1;
    double short_rate = 4, sec_mixed = 60;
    const char *step_ms = "50";
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
        else if (!strcmp(a, "--mixed"))
            mixed = atoi(v);
        else if (!strcmp(a, "--long-clients"))
            long_clients = atoi(v);
        else if (!strcmp(a, "--short-rate"))
            short_rate = atof(v);
        else if (!strcmp(a, "--seconds-mixed"))
            sec_mixed = atof(v);
        else if (!strcmp(a, "--step-ms"))
            step_ms = v;
        else {
            fprintf(stderr, "usage: see the comment at the top of bench/bench_load.c\n");
            return 2;
        }
    }
    if (long_clients < 1 || long_clients > MIX_MAX_LONG) die("--long-clients: 1 to 8");
    if (mixed > 0) {
        mixed_main(bin, model, threads, window, short_tok, long_tok, mixed, long_clients,
                   short_rate, sec_mixed, step_ms);
        return 0;
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
        server_start(&s, bin, model, threads, window, batch, NULL);
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
