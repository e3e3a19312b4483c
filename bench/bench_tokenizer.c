/* Tokenizer throughput: encodes one text file with each tokenizer given, as one document and
 * line by line, single-threaded, best of N runs, and prints MB/s (10^6 bytes per second).
 * The modes and the RESULT lines are those of tools/bench_tokenizers_hf.py (Hugging Face's
 * numbers on the same file): doc = the whole file as one text; lines = every piece of
 * text.split("\n") as its own text (no newlines, empty lines included); MB/s is always the
 * whole file's size over the best wall time; add_special_tokens on, no truncation.
 *
 *     bench_tokenizer [-r RUNS] TEXT_FILE TOKENIZER...
 *
 * A TOKENIZER is what tok_load takes: a directory with tokenizer.json (or a byte
 * tokenizer's config.json), or a tokenizer.json file. Example, with the fixtures:
 *
 *     build/bench/bench_tokenizer /tmp/ls-bench-1mb.txt tests/fixtures/tokenizers/{minilm,\
 *         bpe_roberta,unigram_sp,bytes_enwik8}
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tokenizer/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            char *q = realloc(b, cap *= 2);
            if (!q) break;
            b = q;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        if (!k) break;
        n += k;
    }
    fclose(f);
    *len = n;
    return b;
}

/* one pass; returns tokens produced, or -1 */
static long run(const tok_tokenizer *t, const char *text, size_t len, int by_line)
{
    char err[512];
    long tokens = 0;
    tok_encode_params p = tok_encode_default_params();
    size_t s = 0;
    while (s < len) {
        size_t e = len;
        if (by_line) {
            const char *nl = memchr(text + s, '\n', len - s);
            e = nl ? (size_t)(nl - text) : len;
        }
        tok_encoding *enc;
        if (tok_encode(t, text + s, e - s, NULL, 0, &p, &enc, err, sizeof err)) {
            fprintf(stderr, "encode: %s\n", err);
            return -1;
        }
        tokens += (long)enc->n;
        tok_encoding_free(enc);
        if (by_line && e == len && len && text[len - 1] == '\n') { /* the empty last piece */
            if (tok_encode(t, text + len, 0, NULL, 0, &p, &enc, err, sizeof err)) return -1;
            tokens += (long)enc->n;
            tok_encoding_free(enc);
        }
        s = by_line ? e + 1 : e;
    }
    return tokens;
}

int main(int argc, char **argv)
{
    int runs = 5, a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "-r")) runs = atoi(argv[a + 1]), a += 2;
    if (argc - a < 2 || runs < 1) {
        fprintf(stderr, "usage: %s [-r RUNS] TEXT_FILE TOKENIZER...\n", argv[0]);
        return 2;
    }
    size_t len;
    char *text = slurp(argv[a], &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read\n", argv[a]);
        return 1;
    }
    printf("text %s: %zu bytes, best of %d runs, one thread\n", argv[a], len, runs);
    static const char *models[] = {"WordPiece", "BPE", "Unigram", "bytes"};
    int status = 0;
    for (int k = a + 1; k < argc; k++) {
        char err[512];
        tok_tokenizer *t;
        if (tok_load(argv[k], &t, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            status = 1;
            continue;
        }
        for (int by_line = 0; by_line < 2; by_line++) {
            double best = 1e30;
            long tokens = 0;
            for (int r = 0; r < runs; r++) {
                double t0 = now();
                tokens = run(t, text, len, by_line);
                double dt = now() - t0;
                if (tokens < 0) {
                    status = 1;
                    break;
                }
                if (dt < best) best = dt;
            }
            if (tokens < 0) break;
            const char *name = strrchr(argv[k], '/');
            name = name && name[1] ? name + 1 : argv[k];
            printf("RESULT longserve %s mode=%s model=%s mb_s=%.2f tokens=%ld best_s=%.4f "
                   "mtok_s=%.2f\n",
                   name, by_line ? "lines" : "doc", models[tok_get_model(t)],
                   (double)len / best / 1e6, tokens, best, (double)tokens / best / 1e6);
        }
        tok_free(t);
    }
    free(text);
    return status;
}
