/* Generation speed of a Reformer language model: greedy decoding with Hugging Face's cache
 * (eng_gen, use_cache 1) and with the whole sequence recomputed each step (use_cache 0),
 * tokens/s of each and the generated ids, to set next to bench/hf_reformer_generate.py.
 *
 *     bench_generate MODEL_DIR PROMPT_IDS_FILE NEW_TOKENS [--threads N] [--no-recompute]
 *
 * PROMPT_IDS_FILE holds whitespace-separated token ids. Prints one line per mode:
 * "cache: 128 tokens in 1.23 s = 104.1 tokens/s (first token 0.05 s), ids a b c ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/engine.h"
#include "benchutil.h"

static int run(eng_ctx *ctx, const eng_model *m, const int32_t *prompt, int n, int new_tokens,
               int use_cache)
{
    eng_gen_params gp = eng_gen_default_params(m);
    gp.max_new_tokens = new_tokens, gp.use_cache = use_cache;
    gp.eos_token_id = -1; /* all new_tokens, as HF's min_new_tokens would */
    eng_gen *g = NULL;
    char err[512];
    if (eng_gen_start(m, prompt, n, &gp, &g, err, sizeof err)) return bench_fail("%s", err);
    const double t0 = bench_now_s(CLOCK_MONOTONIC);
    double first = 0;
    for (int i = 0; i < new_tokens; i++) {
        eng_gen_token t;
        if (eng_gen_next(ctx, g, &t, err, sizeof err)) {
            eng_gen_free(g);
            return bench_fail("token %d: %s", i, err);
        }
        if (i == 0) first = bench_now_s(CLOCK_MONOTONIC) - t0;
    }
    const double dt = bench_now_s(CLOCK_MONOTONIC) - t0;
    printf("%s: prompt %d, %d tokens in %.3f s = %.1f tokens/s (first token %.3f s, then %.1f "
           "tokens/s), ids",
           use_cache ? "cache" : "recompute", n, new_tokens, dt, new_tokens / dt, first,
           new_tokens > 1 ? (new_tokens - 1) / (dt - first) : 0.0);
    const int32_t *ids = eng_gen_ids(g) + n;
    for (int i = 0; i < new_tokens; i++)
        printf(" %d", ids[i]);
    printf("\n");
    fflush(stdout);
    eng_gen_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return bench_fail("usage: bench_generate MODEL_DIR PROMPT_IDS_FILE NEW_TOKENS [--threads "
                          "N] [--no-recompute]"),
               2;
    int new_tokens = 0, threads = 0, recompute = 1;
    if (bench_parse_int("NEW_TOKENS", argv[3], 1, 1 << 20, &new_tokens)) return 2;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            if (bench_parse_int("--threads", argv[++i], 1, 1024, &threads)) return 2;
        } else if (strcmp(argv[i], "--no-recompute") == 0) {
            recompute = 0;
        } else {
            return bench_fail("unknown argument %s", argv[i]), 2;
        }
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) return bench_fail("cannot open %s", argv[2]), 1;
    int32_t *prompt = NULL;
    int n = 0, cap = 0, v;
    while (fscanf(f, "%d", &v) == 1) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            int32_t *p = realloc(prompt, sizeof(int32_t) * cap);
            if (!p) return bench_fail("out of memory"), 1;
            prompt = p;
        }
        prompt[n++] = v;
    }
    fclose(f);
    eng_model_params mp = eng_model_default_params();
    mp.threads = threads;
    eng_model *m = NULL;
    char err[1024];
    if (eng_model_load(argv[1], &mp, &m, err, sizeof err)) return bench_fail("%s", err), 1;
    eng_model_info info;
    eng_model_get_info(m, &info);
    printf("model %s: %d layers, hidden %d, backend %s: %s\n", argv[1], info.num_layers,
           info.hidden_size, info.backend, info.isa);
    eng_ctx *ctx = eng_ctx_new(m);
    int rc = ctx ? run(ctx, m, prompt, n, new_tokens, 1) : -1;
    if (!rc && recompute) rc = run(ctx, m, prompt, n, new_tokens, 0);
    eng_ctx_free(ctx);
    eng_model_free(m);
    free(prompt);
    return rc ? 1 : 0;
}
