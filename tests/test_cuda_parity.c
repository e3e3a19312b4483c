/* CUDA parity: every op of the CUDA table, plain and fast, against the CPU reference table over
 * a grid of shapes (ragged batches with padding, window edges, 0/1/many global tokens, head
 * sizes on and off the fast kernels' path, chunk counts with wrap-around, several bucket
 * factorisations), in each precision: float32 ≤ 1e-5 relative (max-abs over max-abs), bf16
 * and fp16 ≤ 1e-2. Outputs are poisoned with NaN before each run, so an unwritten element
 * fails. Exits 77 (skipped) when the build has no CUDA or there is no device. Run with
 * CK_FORK=no: CUDA must not be used after fork(). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "kntest.h"

/* ---- the tables: the reference, and the CUDA table in each (variant, dtype) ---------------- */

static kn_ops ref, cu;
static const char *const vnames[] = {"fast", "plain"}, *const dnames[] = {"f32", "bf16", "f16"};

/* The CUDA state is one per process: (re)initialising switches the table's variant. */
static void use(int variant, int dtype)
{
    kn_cuda_params p = {variant, dtype, 0};
    char info[512], err[512];
    ck_assert_msg(kn_ops_init_cuda_table(&cu, &p, info, sizeof info, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(cu.device, 1);
}

static double tol(int dtype)
{
    return dtype == KN_DTYPE_F32 ? 1e-5 : 1e-2;
}

static void synced(void)
{
    char err[512];
    ck_assert_msg(cu.sync(err, sizeof err) == 0, "%s", err);
}

/* Device copy of n host bytes (NULL src: NaN poison for floats). */
static void *dev(const void *src, size_t n)
{
    void *d = cu.buf_alloc(n);
    ck_assert_ptr_nonnull(d);
    if (src) {
        ck_assert_int_eq(cu.upload(d, src, n), 0);
    } else {
        float *nan = malloc(n + 4);
        for (size_t i = 0; i < n / 4; i++)
            nan[i] = NAN;
        ck_assert_int_eq(cu.upload(d, nan, n), 0);
        free(nan);
    }
    return d;
}

static void back(void *dst, const void *d, size_t n)
{
    ck_assert_int_eq(cu.download(dst, d, n), 0);
    synced();
}

/* ---- buffers and errors ----------------------------------------------------------------- */

START_TEST(buffers_and_errors)
{
    use(KN_CUDA_FAST, KN_DTYPE_BF16);
    float *h = randv(4096, 1), b2[4096];
    float *d = dev(h, sizeof b2);
    ck_assert_uint_eq((uintptr_t)d % 256, 0);
    back(b2, d, sizeof b2);
    ck_assert(memcmp(h, b2, sizeof b2) == 0);
    cu.buf_free(d);
    cu.buf_free(NULL);
    /* a failed allocation: NULL, then sync reports it with context once, then is clean */
    ck_assert_ptr_null(cu.buf_alloc((size_t)1 << 62));
    char err[512];
    ck_assert_int_ne(cu.sync(err, sizeof err), 0);
    ck_assert_msg(strstr(err, "buf_alloc") && strstr(err, "cudaMalloc"), "%s", err);
    ck_assert_int_eq(cu.sync(err, sizeof err), 0);
    free(h);
}
END_TEST

/* ---- linear -------------------------------------------------------------------------------- */

START_TEST(linear)
{
    const int shapes[][3] = {{1, 1, 1},     {7, 13, 5},     {64, 96, 32}, {130, 33, 70},
                             {13, 17, 257}, {200, 31, 600}, {97, 65, 513}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        const size_t ny = (size_t)M * N;
        float *x = randv((size_t)M * K, 1), *w = randv((size_t)N * K, 1), *b = randv(N, 1);
        float *yr = malloc(ny * 4), *yp = malloc(ny * 4), *yf = malloc(ny * 4);
        for (int bias = 0; bias < 2; bias++) {
            lin(&ref, x, w, bias ? b : NULL, yr, M, N, K, NULL, 0);
            for (int dt = 0; dt < 3; dt++) {
                for (int v = 1; v >= 0; v--) {
                    use(v, dt);
                    float *dx = dev(x, (size_t)M * K * 4), *db = dev(b, (size_t)N * 4);
                    float *dy = dev(NULL, ny * 4);
                    lin(&cu, dx, w, bias ? db : NULL, dy, M, N, K, NULL, 0);
                    back(v ? yp : yf, dy, ny * 4);
                    cu.buf_free(dx), cu.buf_free(db), cu.buf_free(dy);
                }
                ck_assert_msg(rel_err(yp, yr, ny) <= tol(dt), "plain %s %dx%dx%d: %g", dnames[dt],
                              M, N, K, rel_err(yp, yr, ny));
                ck_assert_msg(rel_err(yf, yp, ny) <= tol(dt), "fast %s %dx%dx%d: %g", dnames[dt], M,
                              N, K, rel_err(yf, yp, ny));
            }
        }
        free(x), free(w), free(b), free(yr), free(yp), free(yf);
    }
}
END_TEST

START_TEST(linear_groups_are_batch_invariant)
{
    /* a group's rows, bit for bit, whatever else is in the call */
    const int M = 300, N = 96, K = 160;
    const int32_t groups[] = {0, 1, 77, 78, 300};
    float *x = randv((size_t)M * K, 1), *w = randv((size_t)N * K, 1), *b = randv(N, 1);
    float *all = malloc((size_t)M * N * 4), *one = malloc((size_t)M * N * 4);
    for (int dt = 0; dt < 3; dt++)
        for (int v = 0; v < 2; v++) {
            use(v, dt);
            float *dx = dev(x, (size_t)M * K * 4), *db = dev(b, N * 4), *dy = dev(NULL, M * N * 4);
            lin(&cu, dx, w, db, dy, M, N, K, groups, 4);
            back(all, dy, (size_t)M * N * 4);
            for (int g = 0; g < 4; g++) {
                const int r0 = groups[g], rows = groups[g + 1] - r0;
                lin(&cu, dx + (size_t)r0 * K, w, db, dy, rows, N, K, NULL, 0);
                back(one, dy, (size_t)rows * N * 4);
                ck_assert_msg(memcmp(one, all + (size_t)r0 * N, (size_t)rows * N * 4) == 0,
                              "%s %s: group %d differs alone", vnames[v], dnames[dt], g);
            }
            cu.buf_free(dx), cu.buf_free(db), cu.buf_free(dy);
        }
    free(x), free(w), free(b), free(all), free(one);
}
END_TEST

/* ---- embed, add_layernorm, activations ---------------------------------------------------- */

START_TEST(embed_norm_act)
{
    const int T = 37, H = 768, V = 50, P = 40;
    int32_t ids[37], pos[37], tt[37];
    for (int t = 0; t < T; t++)
        ids[t] = (int)(urand() * V), pos[t] = (int)(urand() * P), tt[t] = t % 2;
    float *word = randv((size_t)V * H, 1), *pe = randv((size_t)P * H, 1), *ty = randv(2 * H, 1);
    float *a = malloc((size_t)T * H * 4), *c = malloc((size_t)T * H * 4);
    const int Hs[] = {1, 7, 64, 768, 1000};
    for (int v = 0; v < 2; v++) {
        use(v, KN_DTYPE_F32);
        for (int withtt = 0; withtt < 2; withtt++) { /* embed: the same sums, bit for bit */
            ref.embed(ids, pos, withtt ? tt : NULL, word, pe, ty, a, T, H);
            int32_t *di = dev(ids, sizeof ids), *dp = dev(pos, sizeof pos),
                    *dt = dev(tt, sizeof tt);
            float *dw = dev(word, (size_t)V * H * 4), *dpe = dev(pe, (size_t)P * H * 4);
            float *dty = dev(ty, 2 * H * 4), *dout = dev(NULL, (size_t)T * H * 4);
            cu.embed(di, dp, withtt ? dt : NULL, dw, dpe, dty, dout, T, H);
            back(c, dout, (size_t)T * H * 4);
            ck_assert(memcmp(a, c, (size_t)T * H * 4) == 0);
            cu.buf_free(di), cu.buf_free(dp), cu.buf_free(dt), cu.buf_free(dw), cu.buf_free(dpe);
            cu.buf_free(dty), cu.buf_free(dout);
        }
        for (int hi = 0; hi < 5; hi++)
            for (int res = 0; res < 2; res++) {
                const int h = Hs[hi];
                const size_t n = (size_t)T * h;
                float *x = randv(n, 3), *r = randv(n, 1), *g = randv(h, 1), *bb = randv(h, 1);
                memcpy(a, x, n * 4);
                ref.add_layernorm(a, res ? r : NULL, g, bb, 1e-5f, T, h);
                float *dx = dev(x, n * 4), *dr = dev(r, n * 4), *dg = dev(g, h * 4);
                float *db = dev(bb, h * 4);
                cu.add_layernorm(dx, res ? dr : NULL, dg, db, 1e-5f, T, h);
                back(c, dx, n * 4);
                /* H = 1: the row minus its mean is 0, both give b */
                ck_assert_msg(rel_err(c, a, n) <= 1e-5, "%s layernorm H=%d: %g", vnames[v], h,
                              rel_err(c, a, n));
                cu.buf_free(dx), cu.buf_free(dr), cu.buf_free(dg), cu.buf_free(db);
                free(x), free(r), free(g), free(bb);
            }
    }
    /* activations over their useful range */
    const size_t n = 200001;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (int op = 0; op < 3; op++) {
        for (size_t i = 0; i < n; i++)
            x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
        float *dx = dev(x, n * 4);
        (op == 0 ? ref.gelu : op == 1 ? ref.tanh : ref.relu)(x, n);
        (op == 0 ? cu.gelu : op == 1 ? cu.tanh : cu.relu)(dx, n);
        back(y, dx, n * 4);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(fabs((double)x[i] - y[i]) <= 4e-6 * fabs(x[i]) + 1e-12, "op %d at %zu",
                          op, i);
        cu.buf_free(dx);
    }
    free(x), free(y), free(word), free(pe), free(ty), free(a), free(c);
}
END_TEST

/* ---- window and global attention ----------------------------------------------------------- */

typedef struct {
    int nseq, T, nh, d, H, w, hidden, G;
    int32_t off[8], goff[8], glob[256];
    uint8_t kind[2048];
    float *qkv, *qg, *x, *wkg, *bkg, *wvg, *bvg;
} attn_case;

/* nglob per sequence: 0, 1 (the first token) or many (every 7th and the last). */
static void attn_make(attn_case *c, const int *lens, int nseq, int nh, int d, int w, int nglob)
{
    memset(c, 0, sizeof *c);
    c->nseq = nseq, c->nh = nh, c->d = d, c->H = nh * d, c->w = w, c->hidden = 40;
    int t = 0, g = 0;
    for (int s = 0; s < nseq; s++) {
        c->off[s] = t, c->goff[s] = g;
        for (int i = 0; i < lens[s]; i++, t++) {
            uint8_t kd = KN_TOK_LOCAL;
            if (s == 1 && i >= lens[s] - 5) kd = KN_TOK_PAD;
            if (s == 2 && i == 4) kd = KN_TOK_PAD;
            if (kd && nglob == 1 && i == 0) kd = KN_TOK_GLOBAL;
            if (kd && nglob == 2 && (i % 7 == 0 || i == lens[s] - 1)) kd = KN_TOK_GLOBAL;
            c->kind[t] = kd;
            if (kd == KN_TOK_GLOBAL) c->glob[g++] = t;
        }
    }
    c->off[nseq] = t, c->goff[nseq] = g, c->T = t, c->G = g;
    c->qkv = randv((size_t)t * 3 * c->H, 2);
    c->qg = randv((size_t)(g ? g : 1) * c->H, 2);
    c->x = randv((size_t)t * c->hidden, 1);
    c->wkg = randv((size_t)c->H * c->hidden, 0.5f);
    c->wvg = randv((size_t)c->H * c->hidden, 0.5f);
    c->bkg = randv(c->H, 0.5f);
    c->bvg = randv(c->H, 0.5f);
}

static void attn_free(attn_case *c)
{
    free(c->qkv), free(c->qg), free(c->x), free(c->wkg), free(c->wvg), free(c->bkg), free(c->bvg);
}

/* The args over the given (host or device) copies of the case's tensors. */
static kn_attn_args attn_args(const attn_case *c, const float *qkv, float *out, const uint8_t *kind,
                              const int32_t *glob, const float *qg, const float *x,
                              const float *wkg, const float *bkg, const float *wvg,
                              const float *bvg)
{
    return (kn_attn_args){.q = qkv,
                          .k = qkv + c->H,
                          .v = qkv + 2 * c->H,
                          .ld = 3 * c->H,
                          .out = out,
                          .ldo = c->H,
                          .nseq = c->nseq,
                          .offsets = c->off,
                          .kind = kind,
                          .glob = glob,
                          .glob_off = c->goff,
                          .nh = c->nh,
                          .d = c->d,
                          .w = c->w,
                          .scale = 1.0f / sqrtf((float)c->d),
                          .qg = qg,
                          .ldqg = c->H,
                          .x = x,
                          .hidden = c->hidden,
                          .wkg = wkg,
                          .bkg = bkg,
                          .wvg = wvg,
                          .bvg = bvg};
}

/* window then global through the CUDA table; out holds the result; 1: after window only */
static void attn_cuda(const attn_case *c, float *out, int window_only)
{
    const size_t n = (size_t)c->T * c->H;
    float *qkv = dev(c->qkv, n * 3 * 4), *o = dev(NULL, n * 4);
    uint8_t *kind = dev(c->kind, c->T ? c->T : 1);
    int32_t *glob = dev(c->glob, sizeof c->glob);
    float *qg = dev(c->qg, (size_t)(c->G ? c->G : 1) * c->H * 4);
    float *x = dev(c->x, (size_t)c->T * c->hidden * 4);
    float *wkg = dev(c->wkg, (size_t)c->H * c->hidden * 4), *bkg = dev(c->bkg, c->H * 4);
    float *wvg = dev(c->wvg, (size_t)c->H * c->hidden * 4), *bvg = dev(c->bvg, c->H * 4);
    kn_attn_args a = attn_args(c, qkv, o, kind, glob, qg, x, wkg, bkg, wvg, bvg);
    ck_assert_int_eq(cu.window_attn(&a), 0);
    if (!window_only) ck_assert_int_eq(cu.global_attn(&a), 0);
    back(out, o, n * 4);
    cu.buf_free(qkv), cu.buf_free(o), cu.buf_free(kind), cu.buf_free(glob), cu.buf_free(qg);
    cu.buf_free(x), cu.buf_free(wkg), cu.buf_free(bkg), cu.buf_free(wvg), cu.buf_free(bvg);
}

/* max-abs over max-abs of the rows that are not global (window only) or of all rows */
static double attn_err(const attn_case *c, const float *got, const float *want, int window_only)
{
    double md = 0, mb = 0;
    for (int t = 0; t < c->T; t++) {
        if (window_only && c->kind[t] == KN_TOK_GLOBAL) continue;
        for (int h = 0; h < c->H; h++) {
            const size_t i = (size_t)t * c->H + h;
            const double d = fabs((double)got[i] - want[i]);
            md = isnan(d) ? INFINITY : (d > md ? d : md);
            mb = fabs(want[i]) > mb ? fabs(want[i]) : mb;
        }
    }
    return mb > 0 ? md / mb : md;
}

START_TEST(window_and_global_attn)
{
    /* window edges (w 1 .. past the sequence), 0/1/many globals, ragged batches with padding
     * and a one-token sequence, d = 64 (the fast kernel) and d = 32 (plain everywhere) */
    const int lens_a[] = {150, 70, 9, 1}, lens_b[] = {1}, lens_c[] = {300, 129};
    const struct {
        const int *lens;
        int nseq;
    } batches[] = {{lens_a, 4}, {lens_b, 1}, {lens_c, 2}};
    const int ws[] = {1, 8, 32, 64, 400};
    const int ds[] = {64, 32};
    for (int bi = 0; bi < 3; bi++)
        for (int wi = 0; wi < 5; wi++)
            for (int ng = 0; ng < 3; ng++)
                for (int di = 0; di < 2; di++) {
                    attn_case c;
                    attn_make(&c, batches[bi].lens, batches[bi].nseq, 2, ds[di], ws[wi], ng);
                    const size_t n = (size_t)c.T * c.H;
                    float *want = calloc(n, 4), *got = malloc(n * 4);
                    kn_attn_args ra = attn_args(&c, c.qkv, want, c.kind, c.glob, c.qg, c.x, c.wkg,
                                                c.bkg, c.wvg, c.bvg);
                    ck_assert_int_eq(ref.window_attn(&ra), 0);
                    for (int dt = 0; dt < 3; dt++)
                        for (int v = 0; v < 2; v++) {
                            use(v, dt);
                            /* plain kernels and float32 tables are float32 everywhere */
                            const double t = v == KN_CUDA_PLAIN ? 1e-5 : tol(dt);
                            attn_cuda(&c, got, 1);
                            ck_assert_msg(attn_err(&c, got, want, 1) <= t,
                                          "window %s %s batch %d w %d globals %d d %d: %g",
                                          vnames[v], dnames[dt], bi, c.w, ng, c.d,
                                          attn_err(&c, got, want, 1));
                        }
                    ck_assert_int_eq(ref.global_attn(&ra), 0);
                    for (int v = 0; v < 2; v++) {
                        use(v, KN_DTYPE_BF16);
                        attn_cuda(&c, got, 0);
                        const double t = v == KN_CUDA_PLAIN ? 1e-5 : tol(KN_DTYPE_BF16);
                        ck_assert_msg(attn_err(&c, got, want, 0) <= t,
                                      "window+global %s batch %d w %d globals %d d %d: %g",
                                      vnames[v], bi, c.w, ng, c.d, attn_err(&c, got, want, 0));
                        for (int r = 0; r < c.T; r++) /* padding rows are exactly zero */
                            if (c.kind[r] == KN_TOK_PAD)
                                for (int h = 0; h < c.H; h++)
                                    ck_assert(got[(size_t)r * c.H + h] == 0.0f);
                    }
                    free(want), free(got);
                    attn_free(&c);
                }
}
END_TEST

/* ---- chunked attention ------------------------------------------------------------------- */

static void chunk_case(const int *ns, int nseg, int d, int chunk, int before, int after, int causal,
                       int self_mask, int masked, float key_scale)
{
    const int ld = 3 * d;
    kn_chunk_seg hs[4], ds[4];
    float *hq[4], *hout[4], *hlse[4], *dq[4], *dout[4], *dlse[4];
    int32_t *hpos[4], *dpos[4];
    uint8_t *hkeep[4], *dkeep[4];
    for (int s = 0; s < nseg; s++) {
        const int n = ns[s];
        hq[s] = randv((size_t)n * ld, 1);
        hout[s] = malloc((size_t)n * d * 4), hlse[s] = malloc((size_t)n * 4);
        hpos[s] = malloc((size_t)n * 4), hkeep[s] = malloc((size_t)n);
        for (int i = 0; i < n; i++) /* a permutation of positions, as LSH sorting gives */
            hpos[s][i] = i;
        for (int i = n - 1; i > 0; i--) {
            const int j = (int)(urand() * (i + 1)), t = hpos[s][i];
            hpos[s][i] = hpos[s][j], hpos[s][j] = t;
        }
        for (int i = 0; i < n; i++)
            hkeep[s][i] = (uint8_t)(masked != 2 && urand() > 0.2);
        hs[s] = (kn_chunk_seg){hq[s],   hq[s] + d, hq[s] + 2 * d,
                               ld,      hout[s],   d,
                               hlse[s], hpos[s],   masked ? hkeep[s] : NULL,
                               n};
    }
    kn_chunk_args ra = {hs, nseg, d, chunk, before, after, causal, self_mask, key_scale};
    ck_assert_int_eq(ref.chunk_attn(&ra), 0);
    for (int v = 0; v < 2; v++) {
        use(v, KN_DTYPE_F32);
        for (int s = 0; s < nseg; s++) {
            const int n = ns[s];
            dq[s] = dev(hq[s], (size_t)n * ld * 4);
            dout[s] = dev(NULL, (size_t)n * d * 4), dlse[s] = dev(NULL, (size_t)n * 4);
            dpos[s] = dev(hpos[s], (size_t)n * 4), dkeep[s] = dev(hkeep[s], n);
            ds[s] = (kn_chunk_seg){dq[s],   dq[s] + d, dq[s] + 2 * d,
                                   ld,      dout[s],   d,
                                   dlse[s], dpos[s],   masked ? dkeep[s] : NULL,
                                   n};
        }
        kn_chunk_args da = ra;
        da.seg = ds;
        ck_assert_int_eq(cu.chunk_attn(&da), 0);
        for (int s = 0; s < nseg; s++) {
            const int n = ns[s];
            float *o = malloc((size_t)n * d * 4), *l = malloc((size_t)n * 4);
            back(o, dout[s], (size_t)n * d * 4);
            back(l, dlse[s], (size_t)n * 4);
            ck_assert_msg(rel_err(o, hout[s], (size_t)n * d) <= 1e-5,
                          "chunk %s n %d chunk %d %d/%d causal %d self %d masked %d d %d: %g",
                          vnames[v], n, chunk, before, after, causal, self_mask, masked, d,
                          rel_err(o, hout[s], (size_t)n * d));
            ck_assert_msg(rel_err(l, hlse[s], n) <= 1e-5, "lse %s: %g", vnames[v],
                          rel_err(l, hlse[s], n));
            free(o), free(l);
            cu.buf_free(dq[s]), cu.buf_free(dout[s]), cu.buf_free(dlse[s]);
            cu.buf_free(dpos[s]), cu.buf_free(dkeep[s]);
        }
    }
    for (int s = 0; s < nseg; s++)
        free(hq[s]), free(hout[s]), free(hlse[s]), free(hpos[s]), free(hkeep[s]);
}

START_TEST(chunk_attn)
{
    const struct {
        int n, chunk, before, after, causal, self_mask, masked;
    } cfg[] = {
        {5, 8, 1, 0, 0, 0, 0},   {8, 8, 1, 1, 1, 1, 0},  {24, 8, 1, 0, 0, 0, 1},
        {32, 4, 2, 0, 1, 0, 1},  {48, 8, 2, 2, 0, 1, 1}, {16, 8, 1, 1, 0, 1, 1},
        {16, 8, 2, 0, 1, 1, 0},  {24, 8, 2, 2, 1, 0, 1}, {21, 7, 1, 0, 1, 1, 1},
        {13, 32, 1, 0, 1, 1, 1}, {12, 3, 1, 1, 0, 1, 1}, {256, 64, 1, 0, 1, 1, 1},
    };
    const int ds[] = {8, 64, 128, 160};
    for (size_t t = 0; t < sizeof cfg / sizeof *cfg; t++)
        for (int di = 0; di < 4; di++)
            chunk_case(&cfg[t].n, 1, ds[di], cfg[t].chunk, cfg[t].before, cfg[t].after,
                       cfg[t].causal, cfg[t].self_mask, cfg[t].masked,
                       di % 2 ? 1.0f : 1.0f / sqrtf((float)ds[di]));
    const int ns[3] = {1024, 512, 200}; /* several segments, LSH-sized */
    chunk_case(ns, 3, 128, 256, 1, 0, 1, 1, 1, 1.0f);
    /* every key masked: each p is 1 and the output is the sum of the values */
    const int n4 = 4;
    chunk_case(&n4, 1, 8, 8, 1, 0, 0, 0, 2, 1.0f);
}
END_TEST

/* ---- LSH hashing and sorting ------------------------------------------------------------- */

START_TEST(lsh_hash_sort)
{
    const struct {
        int L, d, nH, nf, f[2], pad;
    } cfg[] = {{64, 16, 1, 1, {8, 0}, 0}, {257, 64, 2, 1, {32, 0}, 1}, {128, 32, 4, 2, {4, 8}, 1}};
    for (int ci = 0; ci < 3; ci++) {
        const int L = cfg[ci].L, d = cfg[ci].d, nH = cfg[ci].nH;
        int rot2 = 0, NB = 1;
        for (int f = 0; f < cfg[ci].nf; f++)
            rot2 += cfg[ci].f[f] / 2, NB *= cfg[ci].f[f];
        float *qk = randv((size_t)L * d, 1), *rot = randv((size_t)d * nH * rot2, 1);
        uint8_t *keep = malloc(L);
        for (int t = 0; t < L; t++)
            keep[t] = (uint8_t)(t < L - 7);
        int32_t *want = malloc((size_t)nH * L * 4), *got = malloc((size_t)nH * L * 4);
        int32_t *pw = malloc((size_t)nH * L * 4), *pg = malloc((size_t)nH * L * 4);
        kn_lsh_args a = {qk,   d,           rot, L, d, nH, cfg[ci].nf, {cfg[ci].f[0], cfg[ci].f[1]},
                         keep, cfg[ci].pad, want};
        ck_assert_int_eq(ref.lsh_hash(&a), 0);
        const int nkeys = nH * (cfg[ci].pad ? NB + 1 : NB);
        ck_assert_int_eq(ref.lsh_sort(want, pw, nH * L, nkeys), 0);
        for (int v = 0; v < 2; v++) {
            use(v, KN_DTYPE_F32);
            float *dqk = dev(qk, (size_t)L * d * 4), *drot = dev(rot, (size_t)d * nH * rot2 * 4);
            uint8_t *dkeep = dev(keep, L);
            int32_t *db = dev(NULL, (size_t)nH * L * 4), *dp = dev(NULL, (size_t)nH * L * 4);
            kn_lsh_args da = a;
            da.qk = dqk, da.rot = drot, da.keep = dkeep, da.buckets = db;
            ck_assert_int_eq(cu.lsh_hash(&da), 0);
            back(got, db, (size_t)nH * L * 4);
            /* float32 sums against double: a bucket may flip where two rotated values tie
             * within rounding; random data makes that rare */
            int diff = 0;
            for (int i = 0; i < nH * L; i++)
                diff += got[i] != want[i];
            ck_assert_msg(diff <= nH * L / 200, "%s hash: %d of %d buckets differ", vnames[v], diff,
                          nH * L);
            /* the sort of the reference's buckets: exactly the reference's permutation */
            ck_assert_int_eq(cu.upload(db, want, (size_t)nH * L * 4), 0);
            ck_assert_int_eq(cu.lsh_sort(db, dp, nH * L, nkeys), 0);
            back(pg, dp, (size_t)nH * L * 4);
            ck_assert_msg(memcmp(pg, pw, (size_t)nH * L * 4) == 0, "%s sort differs", vnames[v]);
            cu.buf_free(dqk), cu.buf_free(drot), cu.buf_free(dkeep), cu.buf_free(db);
            cu.buf_free(dp);
        }
        free(qk), free(rot), free(keep), free(want), free(got), free(pw), free(pg);
    }
}
END_TEST

int main(void)
{
    kn_ops_init_ref(&ref);
    kn_cuda_params p = {KN_CUDA_PLAIN, KN_DTYPE_F32, 0};
    char info[512], err[512];
    if (kn_ops_init_cuda_table(&cu, &p, info, sizeof info, err, sizeof err) != 0) {
        printf("cuda_parity: skipped: %s\n", err);
        return 77;
    }
    printf("cuda_parity: %s\n", info);
    Suite *s = suite_create("cuda_parity");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, buffers_and_errors);
    tcase_add_test(tc, linear);
    tcase_add_test(tc, linear_groups_are_batch_invariant);
    tcase_add_test(tc, embed_norm_act);
    tcase_add_test(tc, window_and_global_attn);
    tcase_add_test(tc, chunk_attn);
    tcase_add_test(tc, lsh_hash_sort);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA must not be used after fork() */
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
