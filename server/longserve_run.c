/* longserve-run: one KServe v2 infer request on stdin, its response on stdout.
 * The same v2_infer path the server's /v2/models/{m}/infer uses, without HTTP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/engine.h"
#include "v2_infer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: longserve-run --model DIR [--name NAME] [--window N] [--threads N]\n"
               "                     [--full-attention N] [--backend cpu|blas|ref|cuda]\n"
               "                     [--dtype float32|bfloat16]\n"
               "                     [--timings]\n"
               "                     < request.json > response.json\n"
               "Reads one KServe v2 (Open Inference Protocol) infer request body on stdin and\n"
               "writes the response body on stdout. Errors go to stderr; exit status 2 for a\n"
               "malformed request (HTTP 400), 3 for an impossible one (422), 4 for too large\n"
               "(413), 1 for everything else. --window and --full-attention as longserve's. "
               "--timings: the load and infer seconds (infer: the\n"
               "request's parsing, the forward and the response's encoding), the forward's and\n"
               "each kernel op's on stderr.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The exit status of a failure: the request's fault by class (what HTTP would answer 400,
 * 422 and 413), else 1. */
static int exit_code(ls_status st)
{
    switch (st) {
    case LS_ERR_BAD_REQUEST:
        return 2;
    case LS_ERR_INVALID_INPUT:
    case LS_ERR_UNSUPPORTED:
        return 3;
    case LS_ERR_TOO_LARGE:
        return 4;
    default:
        return 1;
    }
}

static char *read_stdin(size_t *len, size_t limit)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            if (cap >= limit) {
                free(b);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) free(b);
            b = nb;
            cap *= 2;
        }
    }
    if (b && ferror(stdin)) {
        free(b);
        return NULL;
    }
    *len = n;
    return b;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1 << 24) return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    eng_model_params mp = eng_model_default_params();
    const char *dir = NULL, *name = NULL;
    int timings = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--timings") == 0) {
            timings = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "longserve-run: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0)
            dir = v;
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--backend") == 0)
            mp.backend = v;
        else if (strcmp(a, "--dtype") == 0)
            mp.dtype = v;
        else if (strcmp(a, "--window") == 0 && parse_int(v, &mp.window) == 0)
            continue;
        else if (strcmp(a, "--threads") == 0 && parse_int(v, &mp.threads) == 0)
            continue;
        else if (strcmp(a, "--full-attention") == 0 &&
                 (strcmp(v, "-1") == 0 || parse_int(v, &mp.full_attention) == 0))
            continue;
        else {
            fprintf(stderr, "longserve-run: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    if (!name) {
        name = strrchr(dir, '/') && strrchr(dir, '/')[1] ? strrchr(dir, '/') + 1 : dir;
    }
    char err[1024] = "";
    eng_model *m = NULL;
    const double t0 = now_s();
    ls_status st = eng_model_load(dir, &mp, &m, err, sizeof err);
    if (st) {
        fprintf(stderr, "longserve-run: cannot load model: %s\n", err);
        return 1;
    }
    size_t len = 0;
    char *body = read_stdin(&len, (size_t)1 << 30);
    int rc = 0;
    eng_ctx *ctx = eng_ctx_new(m);
    if (!body || !ctx) {
        fprintf(stderr, "longserve-run: cannot read the request: %s\n",
                errno == EFBIG ? "larger than 1 GiB" : strerror(errno));
        rc = 1;
    } else {
        char *resp = NULL;
        size_t rlen = 0;
        const double t1 = now_s();
        st = v2_infer(ctx, m, name, body, len, &resp, &rlen, err, sizeof err);
        if (timings) { /* infer: parsing, the forward and the response's encoding */
            fprintf(stderr,
                    "longserve-run: load %.3f s, infer %.3f s (forward %.3f s); ops:", t1 - t0,
                    now_s() - t1, eng_ctx_forward_seconds(ctx));
            double sec[64];
            const int nop = eng_op_count() < 64 ? eng_op_count() : 64;
            eng_ctx_op_seconds(ctx, sec, nop);
            for (int i = 0; i < nop; i++)
                if (sec[i] > 0) fprintf(stderr, " %s %.3f", eng_op_name(i), sec[i]);
            fputc('\n', stderr);
        }
        if (st) {
            fprintf(stderr, "longserve-run: %s (%s, exit %d): %s\n", ls_strerror(st),
                    ls_status_name(st), exit_code(st), err);
            rc = exit_code(st);
        } else if (fwrite(resp, 1, rlen, stdout) != rlen || fputc('\n', stdout) == EOF ||
                   fflush(stdout) != 0) {
            fprintf(stderr, "longserve-run: writing the response: %s\n", strerror(errno));
            rc = 1;
        }
        free(resp);
    }
    free(body);
    eng_ctx_free(ctx);
    eng_model_free(m);
    return rc;
}
