/* bench_engine — the engine's forward benchmark, and the random model it runs on.
 * --write-random writes a Longformer-shaped Hugging Face directory from a fixed seed, so
 * the engine and transformers (bench/hf_longformer.py) run the same weights; --model
 * times one-sequence forwards per length and prints a table and RESULT lines. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "../common/file.h"
#include "../engine/engine.h"
#include "../formats/hfconfig.h"
#include "../kernels/cpu/gemm.h"
#include "../kernels/kernels.h"
#include "benchutil.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data and the dump files are little-endian; this writer assumes the host is"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  bench_engine --write-random DIR [--layers 12] [--hidden 768] [--heads 12]\n"
               "               [--intermediate 3072] [--window 512] [--vocab 50265]\n"
               "               [--max-pos 16386] [--seed 1]\n"
               "  bench_engine --model DIR --lengths 512,1024,... [--backend cpu|blas|ref]\n"
               "               [--dtype float32|bfloat16]\n"
               "               [--reps N] [--threads N] [--globals G] [--warmup 0|1]\n"
               "               [--full-attention N]  (bert/roberta, as longserve's)\n"
               "               [--dump-ids FILE] [--dump-output FILE] [--compare FILE]\n"
               "\n"
               "Input of length n: ids 0, then uniform ids in [3, vocab), then 2; global\n"
               "attention on the first G tokens (default 1), given as an explicit mask.\n"
               "--reps defaults to 3 below 16384 tokens and 1 from there; one warm-up forward\n"
               "precedes the timed ones. --dump-ids writes the ids as little-endian int32,\n"
               "--dump-output last_hidden_state as little-endian float32 [n, hidden];\n"
               "--compare reports max |out - FILE| / max |FILE| against such a file (another\n"
               "backend's output) and the cosine of the two mean-pooled embeddings; the three\n"
               "need a single length. --backend picks the op table (cpu: our packed GEMM, blas:\n"
               "OpenBLAS sgemm for linear layers, ref: plain loops); --dtype bfloat16 runs the\n"
               "cpu table's linear layers in bfloat16 (AMX or AVX512_BF16).\n"
               "GFLOP/s counts the forward's useful FLOPs (see useful_flops in the source).\n");
}

/* ---- deterministic random numbers ------------------------------------------------------ */

typedef struct {
    uint64_t s;
    int have_spare;
    double spare;
} bench_rng;

static uint64_t rng_u64(bench_rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(bench_rng *r) /* (0, 1] */
{
    return ((double)(rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double rng_normal(bench_rng *r) /* Box–Muller */
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u = rng_unit(r), v = rng_unit(r), rad = sqrt(-2.0 * log(u));
    r->spare = rad * sin(2.0 * M_PI * v);
    r->have_spare = 1;
    return rad * cos(2.0 * M_PI * v);
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* snprintf that treats truncation as the error it is here. */
static int fmt_name(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fmt_name(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap) return bench_fail("name too long: %s...", dst);
    return 0;
}

/* kB value of a "Name:   123 kB" line of /proc/self/status, or -1. */
static long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux ≥ 4.0); 0 on success. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int bad = fputs("5", f) < 0;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

static int write_all(FILE *f, const void *p, size_t bytes, const char *path)
{
    if (bytes && fwrite(p, 1, bytes, f) != bytes)
        return bench_fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

static int close_file(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return bench_fail("%s: write failed: %s", path, strerror(errno));
    return 0;
}

static int write_raw(const char *path, const void *p, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f) return bench_fail("%s: %s", path, strerror(errno));
    if (write_all(f, p, bytes, path)) {
        fclose(f);
        return -1;
    }
    return close_file(f, path);
}

/* ---- --write-random ---------------------------------------------------------------------- */

typedef struct {
    int layers, hidden, heads, inter, window, vocab, max_pos, seed;
} model_shape;

typedef enum { INIT_NORMAL, INIT_ONES, INIT_ZEROS } tensor_init;

typedef struct {
    char name[96];
    int64_t shape[2];
    int nd;
    tensor_init init;
} tensor_spec;

typedef struct {
    tensor_spec *t;
    size_t n, cap;
} tensor_list;

static int tl_add(tensor_list *tl, const char *name, int64_t d0, int64_t d1, tensor_init init)
{
    if (tl->n == tl->cap) {
        size_t cap = tl->cap ? 2 * tl->cap : 64;
        tensor_spec *nt = realloc(tl->t, cap * sizeof *nt);
        if (!nt) return bench_fail("out of memory");
        tl->t = nt;
        tl->cap = cap;
    }
    tensor_spec *s = &tl->t[tl->n];
    if (fmt_name(s->name, sizeof s->name, "%s", name)) return -1;
    tl->n++;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->nd = d1 ? 2 : 1;
    s->init = init;
    return 0;
}

/* A Linear's weight [out, in] and bias [out] (biases random too, so that a bias the
 * engine forgets shows up in the HF comparison). */
static int tl_linear(tensor_list *tl, const char *prefix, int64_t out, int64_t in)
{
    char n[96];
    if (fmt_name(n, sizeof n, "%s.weight", prefix) || tl_add(tl, n, out, in, INIT_NORMAL) ||
        fmt_name(n, sizeof n, "%s.bias", prefix))
        return -1;
    return tl_add(tl, n, out, 0, INIT_NORMAL);
}

static int tl_layernorm(tensor_list *tl, const char *prefix, int64_t h)
{
    char n[96];
    if (fmt_name(n, sizeof n, "%s.weight", prefix) || tl_add(tl, n, h, 0, INIT_ONES) ||
        fmt_name(n, sizeof n, "%s.bias", prefix))
        return -1;
    return tl_add(tl, n, h, 0, INIT_ZEROS);
}

/* Tensor names exactly as transformers' LongformerModel state_dict (no prefix). */
static int longformer_tensors(const model_shape *ms, tensor_list *tl)
{
    const int64_t H = ms->hidden, FF = ms->inter;
    if (tl_add(tl, "embeddings.word_embeddings.weight", ms->vocab, H, INIT_NORMAL) ||
        tl_add(tl, "embeddings.position_embeddings.weight", ms->max_pos, H, INIT_NORMAL) ||
        tl_add(tl, "embeddings.token_type_embeddings.weight", 1, H, INIT_NORMAL) ||
        tl_layernorm(tl, "embeddings.LayerNorm", H))
        return -1;
    static const char *const self[] = {"query",        "key",        "value",
                                       "query_global", "key_global", "value_global"};
    char p[96];
    for (int l = 0; l < ms->layers; l++) {
        for (size_t i = 0; i < sizeof self / sizeof *self; i++)
            if (fmt_name(p, sizeof p, "encoder.layer.%d.attention.self.%s", l, self[i]) ||
                tl_linear(tl, p, H, H))
                return -1;
        if (fmt_name(p, sizeof p, "encoder.layer.%d.attention.output.dense", l) ||
            tl_linear(tl, p, H, H) ||
            fmt_name(p, sizeof p, "encoder.layer.%d.attention.output.LayerNorm", l) ||
            tl_layernorm(tl, p, H) ||
            fmt_name(p, sizeof p, "encoder.layer.%d.intermediate.dense", l) ||
            tl_linear(tl, p, FF, H) || fmt_name(p, sizeof p, "encoder.layer.%d.output.dense", l) ||
            tl_linear(tl, p, H, FF) ||
            fmt_name(p, sizeof p, "encoder.layer.%d.output.LayerNorm", l) || tl_layernorm(tl, p, H))
            return -1;
    }
    return tl_linear(tl, "pooler.dense", H, H);
}

/* Growable string for the JSON header. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static int sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(strbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return bench_fail("formatting failed");
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return 0;
        }
        size_t cap = b->cap ? 2 * b->cap : 4096;
        while (cap <= b->n + (size_t)k)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return bench_fail("out of memory");
        b->s = ns;
        b->cap = cap;
    }
}

static int write_safetensors(const model_shape *ms, const char *path)
{
    tensor_list tl = {0};
    strbuf hdr = {0};
    float *chunk = NULL;
    FILE *f = NULL;
    int rc = -1;
    if (longformer_tensors(ms, &tl)) goto out;

    /* header: {"__metadata__":{"format":"pt"},"name":{...},...} padded to 8 bytes */
    uint64_t off = 0;
    if (sb_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}")) goto out;
    for (size_t i = 0; i < tl.n; i++) {
        const tensor_spec *t = &tl.t[i];
        uint64_t bytes = 4 * (uint64_t)t->shape[0] * (uint64_t)(t->nd == 2 ? t->shape[1] : 1);
        if (sb_printf(&hdr, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld", t->name,
                      (long long)t->shape[0]) ||
            (t->nd == 2 && sb_printf(&hdr, ",%lld", (long long)t->shape[1])) ||
            sb_printf(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                      (unsigned long long)(off + bytes)))
            goto out;
        off += bytes;
    }
    if (sb_printf(&hdr, "}")) goto out;
    while (hdr.n % 8)
        if (sb_printf(&hdr, " ")) goto out;

    f = fopen(path, "wb");
    if (!f) {
        bench_fail("%s: %s", path, strerror(errno));
        goto out;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.n >> (8 * i));
    if (write_all(f, len8, 8, path) || write_all(f, hdr.s, hdr.n, path)) goto out;

    enum { CHUNK = 1 << 20 };
    chunk = malloc(CHUNK * sizeof(float));
    if (!chunk) {
        bench_fail("out of memory");
        goto out;
    }
    bench_rng rng = {.s = (uint64_t)ms->seed * 0x2545f4914f6cdd1dull};
    for (size_t i = 0; i < tl.n; i++) {
        const tensor_spec *t = &tl.t[i];
        size_t left = (size_t)t->shape[0] * (size_t)(t->nd == 2 ? t->shape[1] : 1);
        while (left) {
            size_t k = left < CHUNK ? left : CHUNK;
            for (size_t j = 0; j < k; j++)
                chunk[j] = t->init == INIT_NORMAL ? (float)(0.02 * rng_normal(&rng))
                           : t->init == INIT_ONES ? 1.0f
                                                  : 0.0f;
            if (write_all(f, chunk, k * sizeof(float), path)) goto out;
            left -= k;
        }
    }
    rc = close_file(f, path);
    f = NULL;
    if (!rc)
        printf("wrote %s: %zu tensors, %.1f MB\n", path, tl.n, (double)(off + 8 + hdr.n) / 1e6);
out:
    if (f) fclose(f);
    free(chunk);
    free(hdr.s);
    free(tl.t);
    return rc;
}

static int write_config(const model_shape *ms, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return bench_fail("%s: %s", path, strerror(errno));
    fprintf(f, "{\n"
               "  \"architectures\": [\"LongformerModel\"],\n"
               "  \"model_type\": \"longformer\",\n"
               "  \"attention_window\": [");
    for (int l = 0; l < ms->layers; l++)
        fprintf(f, "%s%d", l ? ", " : "", ms->window);
    fprintf(f,
            "],\n"
            "  \"attention_probs_dropout_prob\": 0.1,\n"
            "  \"bos_token_id\": 0,\n"
            "  \"eos_token_id\": 2,\n"
            "  \"pad_token_id\": 1,\n"
            "  \"sep_token_id\": 2,\n"
            "  \"hidden_act\": \"gelu\",\n"
            "  \"hidden_dropout_prob\": 0.1,\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"layer_norm_eps\": 1e-05,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"onnx_export\": false,\n"
            "  \"position_embedding_type\": \"absolute\",\n"
            "  \"type_vocab_size\": 1,\n"
            "  \"vocab_size\": %d,\n"
            "  \"torch_dtype\": \"float32\"\n"
            "}\n",
            ms->hidden, ms->inter, ms->max_pos, ms->heads, ms->layers, ms->vocab);
    return close_file(f, path);
}

/* Writes into *.tmp and renames, so an interrupted run leaves no half model behind. */
static int write_random_model(const model_shape *ms, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return bench_fail("%s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return bench_fail("%s: not a directory", dir);
    char st[4096], st_tmp[4100], cfg[4096], cfg_tmp[4100];
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(st_tmp, sizeof st_tmp, "%s.tmp", st);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(cfg_tmp, sizeof cfg_tmp, "%s.tmp", cfg);
    if (write_safetensors(ms, st_tmp)) return -1;
    if (rename(st_tmp, st) != 0) return bench_fail("rename %s: %s", st_tmp, strerror(errno));
    if (write_config(ms, cfg_tmp)) return -1;
    if (rename(cfg_tmp, cfg) != 0) return bench_fail("rename %s: %s", cfg_tmp, strerror(errno));
    printf("wrote %s\n", cfg);
    return 0;
}

/* ---- --model: timing ------------------------------------------------------------------- */

typedef struct {
    const char *model;
    const char *backend; /* eng_model_params.backend: cpu, blas, ref */
    const char *dtype;   /* eng_model_params.dtype: float32, bfloat16 */
    int lengths[64], nlen;
    int reps, threads, globals, warmup, full_attention;
    const char *dump_ids, *dump_out, *compare;
} bench_opts;

/* What the FLOP count and the RESULT line need beyond eng_model_info: config.json's
 * heads, FFN width and per-layer windows, and what the backend's products run on. */
typedef struct {
    int L, H, FF, nh, has_pooler; /* FF: intermediate_size */
    int window[HF_MAX_LAYERS];    /* both sides together, per layer */
    const char *isa;              /* eng_model_info.isa: what the linear layers run on */
    const char *attn_isa;         /* our GEMM's ISA under the attention (kn_isa_active) */
    const char *blas_core;        /* OpenBLAS's core (blas linear, many global tokens) */
} bench_model;

/* Useful FLOPs (a multiply-add counts 2) of one forward of a base Longformer over one
 * sequence of n tokens whose first g tokens are global: what Hugging Face's math requires,
 * not what an implementation happens to compute (HF's chunked band computes about 1.9x the
 * band, and projects key_global/value_global for every token). Element-wise work
 * (embeddings, LayerNorm, GELU, softmax, biases) is not counted. With d = H/nh and
 * w = window/2 of the layer, per layer:
 *
 *   qkv                          2·n·H·3H
 *   query_global                 2·g·H·H
 *   key_global, value_global     as the engine computes them (kernels/cpu/cpu.c, global
 *                                attention, for every CPU backend):
 *                                  g <  d: reassociated, (scale·Wkᵀ qg) and Wv·(Σ_j p_j x_j):
 *                                          2·2·g·H·H
 *                                  g >= d: projected for every token, as HF: 2·2·n·H·H
 *   band (QKᵀ and P·V)           2·2·H · #{(i, j): i, j local, 0 <= j < n, |i - j| <= w}
 *                                  (n·(2w+1) minus the edges, minus pairs with a global
 *                                  token, which are the two terms below)
 *   local queries × global keys  2·2·H · (n - g)·g
 *   global rows                  2·2·H · g·n     (each global query over every key)
 *   attention output             2·n·H·H
 *   FFN                          2·2·n·H·FF   (FF = intermediate_size)
 *
 * and the pooler, 2·H·H, once. The global-rows term counts the dot products over head
 * width d (summed over heads: H); the reassociated engine does them over the hidden width
 * per head (nh times more, 4·g·n·H·nh), cheaper than the projections it saves while g < d.
 * Longformer-base at n = 4096, g = 1: 771.15 GFLOP, at 16384: 3091.8 (performance.md §4.3
 * counts 773 with the band's full n·(2w+1), no edges and no global terms). */
static double useful_flops(const bench_model *bm, long n, long g)
{
    const double H = bm->H, FF = bm->FF, d = (double)bm->H / bm->nh;
    if (g > n) g = n;
    double f = bm->has_pooler ? 2 * H * H : 0;
    for (int l = 0; l < bm->L; l++) {
        const long w = bm->window[l] / 2;
        double pairs = 0; /* band pairs between local tokens: queries i >= g, keys j >= g */
        for (long i = g; i < n; i++) {
            long lo = i - w > g ? i - w : g, hi = i + w < n - 1 ? i + w : n - 1;
            pairs += (double)(hi - lo + 1);
        }
        f += 2.0 * n * H * 3 * H;                                       /* qkv */
        f += 2.0 * g * H * H;                                           /* query_global */
        f += (double)g < d ? 2 * 2.0 * g * H * H : 2 * 2.0 * n * H * H; /* key/value_global */
        f += 2 * 2 * H * (pairs + (double)(n - g) * g + (double)g * n); /* attention */
        f += 2.0 * n * H * H;                                           /* attention output */
        f += 2 * 2.0 * n * H * FF;                                      /* FFN */
    }
    return f;
}

/* Reads config.json for the FLOP count (eng_model_info has no heads or FFN width). */
static int bench_model_describe(const bench_opts *o, const eng_model_params *mp, bench_model *bm)
{
    char path[4096], err[512] = "", *text = NULL;
    size_t len = 0;
    hf_config cfg;
    snprintf(path, sizeof path, "%s/config.json", o->model);
    ls_status st = ls_read_file(path, 16u << 20, &text, &len, err, sizeof err);
    if (!st) st = hf_config_parse(text, len, path, &cfg, err, sizeof err);
    free(text);
    if (st) return bench_fail("%s", err);
    *bm = (bench_model){.L = cfg.num_hidden_layers,
                        .H = cfg.hidden_size,
                        .FF = cfg.intermediate_size,
                        .nh = cfg.num_attention_heads};
    const int lf = strcmp(cfg.model_type, "longformer") == 0;
    for (int l = 0; l < bm->L && l < HF_MAX_LAYERS; l++)
        bm->window[l] = lf ? cfg.attention_window[l] : mp->window;
    hf_config_free(&cfg);

    bm->attn_isa = kn_isa_name(kn_isa_active()); /* what the CPU backends' attention reads */
    bm->blas_core = openblas_get_corename();
    if (!bm->blas_core) bm->blas_core = "?";
    return 0;
}

/* max |out - ref| / max |ref| against a float32 file of nel values (rows of width), and in
 * *cos the cosine of the two mean-pooled embeddings (the mean of the rows); -1 on error. */
static double compare_file(const char *path, const float *out, size_t nel, int width, double *cos)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bench_fail("--compare %s: %s", path, strerror(errno));
    double maxabs = 0, maxdiff = 0;
    double *mo = calloc((size_t)width, sizeof *mo), *mr = calloc((size_t)width, sizeof *mr);
    if (!mo || !mr) {
        fclose(f);
        free(mo), free(mr);
        return bench_fail("--compare: out of memory");
    }
    float buf[4096];
    size_t i = 0, k;
    while (i < nel && (k = fread(buf, sizeof(float), nel - i < 4096 ? nel - i : 4096, f)) > 0)
        for (size_t j = 0; j < k; j++, i++) {
            double d = fabs((double)out[i] - (double)buf[j]);
            if (!(d <= maxdiff)) maxdiff = d;
            if (fabs(buf[j]) > maxabs) maxabs = fabs(buf[j]);
            mo[i % (size_t)width] += out[i];
            mr[i % (size_t)width] += buf[j];
        }
    int extra = fgetc(f) != EOF;
    fclose(f);
    double oo = 0, rr = 0, orr = 0;
    for (int h = 0; h < width; h++)
        oo += mo[h] * mo[h], rr += mr[h] * mr[h], orr += mo[h] * mr[h];
    free(mo), free(mr);
    *cos = oo > 0 && rr > 0 ? orr / sqrt(oo * rr) : 0;
    if (i != nel || extra) return bench_fail("--compare %s: not %zu float32 values", path, nel);
    return maxabs > 0 ? maxdiff / maxabs : maxdiff;
}

/* ids 0, uniform [3, V), 2 — the same for every run of length n */
static void make_ids(int32_t *ids, int n, int V)
{
    bench_rng r = {.s = 0x1d5eedull + (uint64_t)n};
    for (int i = 0; i < n; i++)
        ids[i] = 3 + (int32_t)(rng_u64(&r) % (uint64_t)(V - 3));
    ids[0] = 0;
    ids[n - 1] = 2;
}

static int bench_length(eng_ctx *ctx, const eng_model_info *info, const bench_model *bm,
                        const bench_opts *o, int n, double load_s, long load_hwm_kb)
{
    char err[512] = "";
    int rc = -1;
    int reps = o->reps > 0 ? o->reps : (n >= 16384 ? 1 : 3);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    uint8_t *gmask = calloc((size_t)n, 1);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!ids || !gmask || !t) {
        bench_fail("out of memory");
        goto out;
    }
    make_ids(ids, n, info->vocab_size);
    for (int i = 0; i < o->globals && i < n; i++)
        gmask[i] = 1;
    int32_t off[2] = {0, n};
    eng_batch b = {.nseq = 1, .offsets = off, .ids = ids, .global_mask = gmask};
    eng_outputs out;

    int hwm_reset = reset_peak_rss() == 0;
    for (int i = 0; i < o->warmup; i++)
        if (eng_ctx_forward(ctx, &b, &out, err, sizeof err)) {
            bench_fail("forward of %d tokens: %s", n, err);
            goto out;
        }
    bench_cpu_sample cs0, cs1;
    int have_cs = bench_cpu_sample_take(&cs0) == 0;
    double cpu_best = 0, best_t = 0, ops0[KN_OP_COUNT], ops1[KN_OP_COUNT];
    eng_ctx_op_seconds(ctx, ops0, KN_OP_COUNT);
    for (int r = 0; r < reps; r++) {
        double c0 = bench_now_s(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now_s(CLOCK_MONOTONIC);
        ls_status st = eng_ctx_forward(ctx, &b, &out, err, sizeof err);
        t[r] = bench_now_s(CLOCK_MONOTONIC) - t0;
        double c = bench_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (st) {
            bench_fail("forward of %d tokens: %s", n, err);
            goto out;
        }
        if (r == 0 || t[r] < best_t) { /* CPU time of the fastest rep */
            best_t = t[r];
            cpu_best = c;
        }
    }
    eng_ctx_op_seconds(ctx, ops1, KN_OP_COUNT);
    double steal = -1, other = -1;
    have_cs = have_cs && bench_cpu_sample_take(&cs1) == 0;
    if (have_cs) bench_cpu_sample_diff(&cs0, &cs1, &steal, &other);
    long fwd_hwm_kb = proc_status_kb("VmHWM");
    qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
    double best = t[0], med = bench_median(t, reps);

    /* the output must be there and finite */
    const eng_tensor *lh = eng_outputs_find(&out, ENG_OUT_LAST_HIDDEN_STATE);
    if (!lh || lh->width != info->hidden_size) {
        bench_fail("forward of %d tokens: no last_hidden_state of width %d", n, info->hidden_size);
        goto out;
    }
    size_t nel = (size_t)n * (size_t)lh->width;
    double maxabs = 0;
    for (size_t i = 0; i < nel; i++) {
        if (!isfinite(lh->data[i])) {
            bench_fail("forward of %d tokens: non-finite output at element %zu", n, i);
            goto out;
        }
        if (fabs(lh->data[i]) > maxabs) maxabs = fabs(lh->data[i]);
    }

    double cmp = 0, cos = 0;
    if (o->compare && (cmp = compare_file(o->compare, lh->data, nel, lh->width, &cos)) < 0)
        goto out;
    long peak_kb = fwd_hwm_kb > load_hwm_kb ? fwd_hwm_kb : load_hwm_kb;
    const double gflop = useful_flops(bm, n, o->globals < n ? o->globals : n) * 1e-9;
    printf("%8d %10.3f %10.3f %10.0f %10.1f %10.0f %10.0f %8.2f %6.1f %6.2f\n", n, best, med,
           n / best, gflop / best, peak_kb / 1024.0, hwm_reset ? fwd_hwm_kb / 1024.0 : -1.0,
           cpu_best / best, steal, other);
    /* isa last: it has spaces (run_longformer.sh reads it between the quotes) */
    printf("RESULT engine len=%d backend=%s dtype=%s reps=%d best_s=%.4f median_s=%.4f "
           "tokens_per_s=%.1f "
           "useful_gflops=%.2f gflops_rate=%.1f peak_rss_mb=%.0f fwd_peak_rss_mb=%.0f "
           "load_peak_rss_mb=%.0f load_s=%.2f cpu_util=%.2f steal_pct=%.1f other_cores=%.2f "
           "threads=%d globals=%d max_abs=%.4g attn_isa=%s blas_core=%s",
           n, o->backend, info->dtype, reps, best, med, n / best, gflop, gflop / best,
           peak_kb / 1024.0, hwm_reset ? fwd_hwm_kb / 1024.0 : -1.0, load_hwm_kb / 1024.0, load_s,
           cpu_best / best, steal, other, omp_get_max_threads(), o->globals, maxabs, bm->attn_isa,
           bm->blas_core);
    if (o->compare) printf(" rel_err_vs_compare=%.3e cos_vs_compare=%.7f", cmp, cos);
    printf(" isa=\"%s\"\n", bm->isa);
    /* where a forward's time goes: each op's wall seconds, mean over the timed runs */
    printf("# ops per forward (mean of %d):", reps);
    for (int k = 0; k < KN_OP_COUNT; k++)
        if (ops1[k] - ops0[k] >= 5e-4 * reps)
            printf(" %s %.3f s", kn_op_names[k], (ops1[k] - ops0[k]) / reps);
    printf("\n");
    fflush(stdout);

    if (o->dump_ids && write_raw(o->dump_ids, ids, sizeof(int32_t) * (size_t)n)) goto out;
    if (o->dump_out && write_raw(o->dump_out, lh->data, sizeof(float) * nel)) goto out;
    rc = 0;
out:
    free(ids);
    free(gmask);
    free(t);
    return rc;
}

static int run_bench(const bench_opts *o)
{
    char err[1024] = "";
    eng_model_params mp = eng_model_default_params();
    mp.threads = o->threads;
    mp.backend = o->backend;
    mp.dtype = o->dtype;
    mp.full_attention = o->full_attention;
    eng_model *m = NULL;
    double t0 = bench_now_s(CLOCK_MONOTONIC);
    ls_status st = eng_model_load(o->model, &mp, &m, err, sizeof err);
    if (st) return bench_fail("loading %s: %s (%s)", o->model, err, ls_strerror(st));
    double load_s = bench_now_s(CLOCK_MONOTONIC) - t0;
    long load_hwm_kb = proc_status_kb("VmHWM");
    eng_model_info info;
    eng_model_get_info(m, &info);
    if (info.head != ENG_HEAD_BASE) {
        eng_model_free(m);
        return bench_fail("%s: expected a base model (LongformerModel), got %s", o->model,
                          info.architecture);
    }
    for (int i = 0; i < o->nlen; i++)
        if (o->lengths[i] > info.max_tokens) {
            eng_model_free(m);
            return bench_fail("length %d exceeds the model's %d tokens (max_position_embeddings)",
                              o->lengths[i], info.max_tokens);
        }
    bench_model bm = {0};
    if (bench_model_describe(o, &mp, &bm)) {
        eng_model_free(m);
        return -1;
    }
    bm.has_pooler = info.has_pooler;
    bm.isa = info.isa ? info.isa : "?";
    eng_ctx *ctx = eng_ctx_new(m);
    if (!ctx) {
        eng_model_free(m);
        return bench_fail("out of memory");
    }
    printf("# model %s: %s, %d layers, hidden %d, vocab %d, window %d; loaded in %.2f s, "
           "RSS %.0f MB (peak %.0f MB)\n",
           o->model, info.model_type, info.num_layers, info.hidden_size, info.vocab_size,
           info.max_window, load_s, proc_status_kb("VmRSS") / 1024.0, load_hwm_kb / 1024.0);
    printf("# threads %d (OMP_WAIT_POLICY=%s); OpenBLAS: %s, %s\n", omp_get_max_threads(),
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset", openblas_get_config(),
           openblas_get_parallel() == 2   ? "OpenMP threading"
           : openblas_get_parallel() == 1 ? "pthreads threading"
                                          : "single-threaded");
    /* eng_model_info.isa already starts "linear layers ..." when the dtype is not float32 */
    printf("# backend %s: %s%s; attention on kn_gemm %s (OpenBLAS %s from d global tokens on)\n",
           o->backend, strncmp(bm.isa, "linear layers", 13) == 0 ? "" : "linear layers on ", bm.isa,
           bm.attn_isa, bm.blas_core);
    printf("# GFLOP/s: useful FLOPs of the forward (bench_engine.c, useful_flops) per best "
           "second\n");
    printf("# peak = process VmHWM (load included); fwd peak = VmHWM since just before this "
           "length's warm-up\n");
    printf("# cpu/wall: this process's CPU seconds per wall second in the best run; steal%% and\n"
           "# others (cores other processes kept busy) over all timed runs\n");
    printf("# %6s %10s %10s %10s %10s %10s %10s %8s %6s %6s\n", "tokens", "best_s", "median_s",
           "tok/s", "GFLOP/s", "peak_MB", "fwdpk_MB", "cpu/wall", "steal%", "others");
    int rc = 0;
    for (int i = 0; i < o->nlen && !rc; i++)
        rc = bench_length(ctx, &info, &bm, o, o->lengths[i], load_s, load_hwm_kb);
    eng_ctx_free(ctx);
    eng_model_free(m);
    return rc;
}

static int parse_lengths(const char *s, bench_opts *o)
{
    const char *p = s;
    o->nlen = 0;
    while (*p) {
        char tok[32];
        size_t k = strcspn(p, ",");
        if (k == 0 || k >= sizeof tok) return bench_fail("--lengths: bad list '%s'", s);
        memcpy(tok, p, k);
        tok[k] = 0;
        if (o->nlen == (int)(sizeof o->lengths / sizeof *o->lengths))
            return bench_fail("--lengths: more than %zu lengths",
                              sizeof o->lengths / sizeof *o->lengths);
        if (bench_parse_int("--lengths", tok, 2, 1 << 24, &o->lengths[o->nlen++])) return -1;
        p += k;
        if (*p == ',') p++;
    }
    return o->nlen ? 0 : bench_fail("--lengths: empty list");
}

int main(int argc, char **argv)
{
    model_shape ms = {.layers = 12,
                      .hidden = 768,
                      .heads = 12,
                      .inter = 3072,
                      .window = 512,
                      .vocab = 50265,
                      .max_pos = 16386,
                      .seed = 1};
    bench_opts o = {.backend = "cpu",
                    .dtype = "float32",
                    .reps = 0,
                    .threads = 0,
                    .globals = 1,
                    .warmup = 1,
                    .full_attention = -1};
    const char *write_dir = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            bench_fail("%s: missing value (or unknown option)", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--write-random") == 0)
            write_dir = v;
        else if (strcmp(a, "--model") == 0)
            o.model = v;
        else if (strcmp(a, "--lengths") == 0)
            bad = parse_lengths(v, &o);
        else if (strcmp(a, "--reps") == 0)
            bad = bench_parse_int(a, v, 1, 1000, &o.reps);
        else if (strcmp(a, "--threads") == 0)
            bad = bench_parse_int(a, v, 0, 1024, &o.threads);
        else if (strcmp(a, "--globals") == 0)
            bad = bench_parse_int(a, v, 0, 1 << 24, &o.globals);
        else if (strcmp(a, "--warmup") == 0)
            bad = bench_parse_int(a, v, 0, 1, &o.warmup);
        else if (strcmp(a, "--full-attention") == 0)
            bad = bench_parse_int(a, v, -1, 1 << 24, &o.full_attention);
        else if (strcmp(a, "--dump-ids") == 0)
            o.dump_ids = v;
        else if (strcmp(a, "--dump-output") == 0)
            o.dump_out = v;
        else if (strcmp(a, "--compare") == 0)
            o.compare = v;
        else if (strcmp(a, "--dtype") == 0)
            o.dtype = v;
        else if (strcmp(a, "--backend") == 0) {
            o.backend = v;
            if (strcmp(v, "cpu") && strcmp(v, "blas") && strcmp(v, "ref"))
                bad = bench_fail("--backend: '%s' is not cpu, blas or ref", v);
        } else if (strcmp(a, "--layers") == 0)
            bad = bench_parse_int(a, v, 1, 256, &ms.layers);
        else if (strcmp(a, "--hidden") == 0)
            bad = bench_parse_int(a, v, 1, 65536, &ms.hidden);
        else if (strcmp(a, "--heads") == 0)
            bad = bench_parse_int(a, v, 1, 65536, &ms.heads);
        else if (strcmp(a, "--intermediate") == 0)
            bad = bench_parse_int(a, v, 1, 262144, &ms.inter);
        else if (strcmp(a, "--window") == 0)
            bad = bench_parse_int(a, v, 2, 1 << 22, &ms.window);
        else if (strcmp(a, "--vocab") == 0)
            bad = bench_parse_int(a, v, 4, 4000000, &ms.vocab);
        else if (strcmp(a, "--max-pos") == 0)
            bad = bench_parse_int(a, v, 3, 1 << 22, &ms.max_pos);
        else if (strcmp(a, "--seed") == 0)
            bad = bench_parse_int(a, v, 0, 1 << 30, &ms.seed);
        else {
            bench_fail("unknown option %s", a);
            usage(stderr);
            return 2;
        }
    }
    if (bad) return 2;

    if (write_dir) {
        if (o.model)
            bad = bench_fail("--write-random and --model are separate runs");
        else if (ms.hidden % ms.heads)
            bad = bench_fail("--hidden must be a multiple of --heads");
        else if (ms.window % 2)
            bad = bench_fail("--window must be even");
        if (bad) return 2;
        return write_random_model(&ms, write_dir) ? 1 : 0;
    }
    if (!o.model || !o.nlen) {
        usage(stderr);
        return 2;
    }
    if ((o.dump_ids || o.dump_out || o.compare) && o.nlen != 1) {
        bench_fail("--dump-ids/--dump-output/--compare need exactly one length");
        return 2;
    }
    return run_bench(&o) ? 1 : 0;
}
