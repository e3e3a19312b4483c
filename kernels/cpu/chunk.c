/* Chunked attention (Reformer) for the fast CPU backend, tiled.
 *
 * One task = (segment, query chunk): the chunk's keys, (1 + before + after)·C of them in the
 * order the reference takes them (key chunks (c + j) mod nc, j = -before .. after; a chunk
 * met twice through wrap-around is taken twice), are packed once per task into the GEMM's
 * panels, keys times key_scale (as the reference scales them):
 *     kp: NR-key panels (d x NR)               (B of Z = Q·Kᵀ)
 *     vp: NR-column chunks of d (nk x NR each)  (B of O = P·V)
 * and then each register tile of MR queries is scored (kn_gemm_tile over the key panels,
 * queries read in place), masked by replacement (-1e9 padding, then causal, then -1e5
 * self), turned into exps in float32 with the 8-wide exp, and multiplied by the values
 * while its MR x nk scores are still in L1. lse = max + log Σ exp(z − max) and
 * p = exp(z − max)·exp(max − lse), so a row whose keys are all masked gets p = 1 as the
 * reference (and Hugging Face) give it. Tasks of all segments are spread over the threads;
 * the buffers are one task's tile per thread, whatever n is. Every row's numbers depend
 * only on its own segment. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "chunk.h"
#include "gemm.h"
/* vmath.h's row kernels other than the exps are not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "vmath.h"

/* Mask and exps of m score rows z (row stride ldz, nk keys each): the key rows' positions
 * kpos and their padding verdict kdead (-1 padding, 0 kept), both padded to a multiple of 8;
 * qpos the rows' positions. Each z[c] becomes exp(z' − max) (z' the masked score), mx[i]
 * the row's max and sum[i] the sum of its exps. */
#define KN__CHUNK_EXP(NAME, ATTR)                                                                  \
    ATTR static void NAME(float *z, int ldz, int m, int nk, const int32_t *kpos,                   \
                          const int32_t *kdead, const int32_t *qpos, int causal, int self_mask,    \
                          float *mx, float *sum)                                                   \
    {                                                                                              \
        const kn_v8f big = kn__vsplat(-1e9f), self = kn__vsplat(-1e5f);                            \
        const kn_v8f ninf = kn__vsplat(-INFINITY);                                                 \
        const int32_t cm = causal ? -1 : 0, sm = self_mask ? -1 : 0;                               \
        const kn_v8i vcausal = {cm, cm, cm, cm, cm, cm, cm, cm};                                   \
        const kn_v8i vself = {sm, sm, sm, sm, sm, sm, sm, sm};                                     \
        const kn_v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};                                              \
        const kn_v8i tail = lane < (nk % 8 ? nk % 8 : 8); /* the last group's lanes in nk */       \
        const int ng = (nk + 7) / 8;                                                               \
        for (int i = 0; i < m; i++) {                                                              \
            float *row = z + (size_t)i * ldz;                                                      \
            const int32_t pi = qpos[i];                                                            \
            const kn_v8i vpi = {pi, pi, pi, pi, pi, pi, pi, pi};                                   \
            kn_v8f vmx = ninf;                                                                     \
            for (int g = 0; g < ng; g++) {                                                         \
                kn_v8f v = *(const kn_v8f *)(row + 8 * g);                                         \
                const kn_v8i kp = *(const kn_v8i *)(kpos + 8 * g);                                 \
                const kn_v8i kd = *(const kn_v8i *)(kdead + 8 * g);                                \
                v = kn__vsel(kd | ((kp > vpi) & vcausal), big, v);                                 \
                v = kn__vsel((kp == vpi) & vself, self, v);                                        \
                if (g == ng - 1) v = kn__vsel(tail, v, ninf); /* lanes past nk: no weight */       \
                *(kn_v8f *)(row + 8 * g) = v;                                                      \
                vmx = kn__vsel(v > vmx, v, vmx);                                                   \
            }                                                                                      \
            float m1 = vmx[0];                                                                     \
            for (int k = 1; k < 8; k++)                                                            \
                m1 = vmx[k] > m1 ? vmx[k] : m1;                                                    \
            const kn_v8f vm = kn__vsplat(m1);                                                      \
            kn_v8f vs = kn__vsplat(0.0f);                                                          \
            for (int g = 0; g < ng; g++) {                                                         \
                const kn_v8f v = kn__vexpf_neg(*(const kn_v8f *)(row + 8 * g) - vm);               \
                vs += v;                                                                           \
                *(kn_v8f *)(row + 8 * g) = v;                                                      \
            }                                                                                      \
            float s1 = 0.0f;                                                                       \
            for (int k = 0; k < 8; k++)                                                            \
                s1 += vs[k];                                                                       \
            mx[i] = m1;                                                                            \
            sum[i] = s1;                                                                           \
        }                                                                                          \
    }

#if defined(__x86_64__) && defined(__GNUC__)
KN__CHUNK_EXP(kn__chunk_exp_avx512, __attribute__((target("avx512f,fma"))) KN_FP_CONTRACT)
KN__CHUNK_EXP(kn__chunk_exp_avx2, __attribute__((target("avx2,fma"))) KN_FP_CONTRACT)
#define KN__EXP_X86(f) f
#else
#define KN__EXP_X86(f) kn__chunk_exp_portable
#endif
KN__CHUNK_EXP(kn__chunk_exp_portable, KN_FP_CONTRACT)

typedef void (*kn__chunk_exp_fn)(float *, int, int, int, const int32_t *, const int32_t *,
                                 const int32_t *, int, int, float *, float *);
static const kn__chunk_exp_fn kn__chunk_exp[KN_ISA_COUNT] = {
    [KN_ISA_PORTABLE] = kn__chunk_exp_portable,
    [KN_ISA_AVX2] = KN__EXP_X86(kn__chunk_exp_avx2),
    [KN_ISA_AVX512] = KN__EXP_X86(kn__chunk_exp_avx512),
    [KN_ISA_AVX512_EMU] = KN__EXP_X86(kn__chunk_exp_avx2),
};

enum { KN__RB = 4 }; /* register tiles per block of query rows */

/* One thread's tile: the packed keys and values of one task, and a block's scores. */
typedef struct {
    float *kp;      /* [nkpad/nr][d][nr] */
    float *vp;      /* [ceil(d/nr)][nk][nr] */
    float *z;       /* [KN__RB·mr][nkpad] */
    int32_t *krow;  /* [nkpad] each key's row in the segment */
    int32_t *kpos;  /* [nkpad] */
    int32_t *kdead; /* [nkpad] */
} kn__chunk_tile;

/* Query chunks of segment s (tasks). */
static int kn__chunk_tasks(const kn_chunk_args *a, const kn_chunk_seg *s)
{
    return s->n <= 0 ? 0 : s->n > a->chunk ? s->n / a->chunk : 1;
}

static void kn__chunk_task(const kn_chunk_args *a, const kn_chunk_seg *s, int c, kn_isa isa,
                           const kn__chunk_tile *t)
{
    const int n = s->n, d = a->d, chunked = n > a->chunk;
    const int C = chunked ? a->chunk : n, nc = n / C;
    const int nb = chunked ? a->before : 0, na = chunked ? a->after : 0;
    const int nk = (1 + nb + na) * C, mr = kn_isa_mr(isa), nr = kn_isa_nr(isa);
    const int nkpad = (nk + nr - 1) / nr * nr, nchunk = (d + nr - 1) / nr;
    const int nk8 = (nk + 7) / 8 * 8, ldz = nkpad > nk8 ? nkpad : nk8;
    const float ks = a->key_scale;

    /* key column kk is row krow[kk] of the segment */
    int kk = 0;
    for (int j = -nb; j <= na; j++) {
        const int kc = ((c + j) % nc + nc) % nc;
        for (int r = kc * C; r < kc * C + C; r++, kk++) {
            const int pr = s->pos[r];
            t->krow[kk] = r;
            t->kpos[kk] = pr;
            t->kdead[kk] = s->keep && !s->keep[pr] ? -1 : 0;
        }
    }
    for (kk = nk; kk < ldz; kk++)
        t->kpos[kk] = 0, t->kdead[kk] = 0;
    /* key panels, a panel's nr keys at a time (its spare keys zeros, never weighed), and
     * the values' column chunks */
    for (int p = 0; p < nkpad / nr; p++) {
        const float *k[64]; /* nr <= 64 */
        const int np = nk - p * nr < nr ? nk - p * nr : nr;
        for (int j = 0; j < np; j++)
            k[j] = s->k + (size_t)t->krow[p * nr + j] * s->ld;
        float *kpan = t->kp + (size_t)p * d * nr;
        for (int e = 0; e < d; e++) {
            float *dst = kpan + (size_t)e * nr;
            for (int j = 0; j < np; j++)
                dst[j] = k[j][e] * ks;
            for (int j = np; j < nr; j++)
                dst[j] = 0.0f;
        }
    }
    for (kk = 0; kk < nk; kk++) {
        const float *v = s->v + (size_t)t->krow[kk] * s->ld;
        for (int ch = 0; ch < nchunk; ch++) {
            const int w = d - ch * nr < nr ? d - ch * nr : nr;
            float *dst = t->vp + ((size_t)ch * nk + kk) * nr;
            for (int e = 0; e < w; e++)
                dst[e] = v[ch * nr + e];
            for (int e = w; e < nr; e++)
                dst[e] = 0.0f;
        }
    }

    /* blocks of KN__RB register tiles: each key panel and value chunk is used by the
     * block's tiles while it is in L1 */
    const kn__chunk_exp_fn expf8 = kn__chunk_exp[isa];
    for (int b0 = 0; b0 < C; b0 += KN__RB * mr) {
        const int bm = C - b0 < KN__RB * mr ? C - b0 : KN__RB * mr, i0 = c * C + b0;
        const float *q = s->q + (size_t)i0 * s->ld;
        for (int p = 0; p < nkpad / nr; p++)
            for (int r0 = 0; r0 < bm; r0 += mr)
                kn_gemm_tile(isa, bm - r0 < mr ? bm - r0 : mr, nk - p * nr < nr ? nk - p * nr : nr,
                             d, q + (size_t)r0 * s->ld, s->ld, t->kp + (size_t)p * d * nr,
                             t->z + (size_t)r0 * ldz + p * nr, ldz, 0);
        float mx[KN__RB * 32], sum[KN__RB * 32]; /* mr <= 32 */
        expf8(t->z, ldz, bm, nk, t->kpos, t->kdead, s->pos + i0, a->causal, a->self_mask, mx, sum);
        float *o = s->out + (size_t)i0 * s->ldo;
        for (int ch = 0; ch < nchunk; ch++)
            for (int r0 = 0; r0 < bm; r0 += mr)
                kn_gemm_tile(isa, bm - r0 < mr ? bm - r0 : mr, d - ch * nr < nr ? d - ch * nr : nr,
                             nk, t->z + (size_t)r0 * ldz, ldz, t->vp + (size_t)ch * nk * nr,
                             o + (size_t)r0 * s->ldo + ch * nr, s->ldo, 0);
        for (int i = 0; i < bm; i++) {
            const float lse = mx[i] + logf(sum[i]); /* float32, as torch.logsumexp */
            if (s->lse) s->lse[i0 + i] = lse;
            const float f = expf(mx[i] - lse); /* 1/sum, or 1 when lse rounds to max */
            float *oi = o + (size_t)i * s->ldo;
            for (int e = 0; e < d; e++)
                oi[e] *= f;
        }
    }
}

static void *kn__chunk_alloc(size_t floats)
{
    return aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
}

int kn__chunk_attn_cpu(const kn_chunk_args *a)
{
    const kn_isa isa = kn_isa_active();
    const int nr = kn_isa_nr(isa), mr = kn_isa_mr(isa), d = a->d;
    const size_t nk = kn__chunk_keys(a), nkpad = (nk + (size_t)nr - 1) / nr * nr + 8;
    const size_t dpad = (size_t)(d + nr - 1) / nr * nr;
    int ntask = 0;
    for (int i = 0; i < a->nseg; i++)
        ntask += kn__chunk_tasks(a, &a->seg[i]);
    if (!ntask) return 0;
    int *first = malloc(sizeof(int) * (size_t)(a->nseg + 1)); /* each segment's first task */
    if (!first) return -1;
    first[0] = 0;
    for (int i = 0; i < a->nseg; i++)
        first[i + 1] = first[i] + kn__chunk_tasks(a, &a->seg[i]);
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (ntask > 1)
    {
        kn__chunk_tile t = {
            .kp = kn__chunk_alloc(nkpad * (size_t)d),
            .vp = kn__chunk_alloc(nk * dpad),
            .z = kn__chunk_alloc((size_t)KN__RB * mr * nkpad),
            .krow = malloc(sizeof(int32_t) * nkpad),
            .kpos = malloc(sizeof(int32_t) * nkpad),
            .kdead = malloc(sizeof(int32_t) * nkpad),
        };
        const int ok = t.kp && t.vp && t.z && t.krow && t.kpos && t.kdead;
        failed |= !ok;
        int sg = 0;
#pragma omp for schedule(dynamic, 1)
        for (int x = 0; x < ntask; x++) {
            if (!ok) continue;
            if (x < first[sg]) sg = 0;
            while (x >= first[sg + 1])
                sg++;
            kn__chunk_task(a, &a->seg[sg], x - first[sg], isa, &t);
        }
        free(t.kp), free(t.vp), free(t.z), free(t.krow), free(t.kpos), free(t.kdead);
    }
    free(first);
    return failed ? -1 : 0;
}
