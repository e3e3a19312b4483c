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
        for (int i = 0; i < m; i++) {                                                              \
            float *row = z + (size_t)i * ldz;                                                      \
            const int32_t pi = qpos[i];                                                            \
            const kn_v8i vpi = {pi, pi, pi, pi, pi, pi, pi, pi};                                   \
            const int32_t cm = causal ? -1 : 0, sm = self_mask ? -1 : 0;                           \
            const kn_v8i vcausal = {cm, cm, cm, cm, cm, cm, cm, cm};                               \
            const kn_v8i vself = {sm, sm, sm, sm, sm, sm, sm, sm};                                 \
            const kn_v8f big = kn__vsplat(-1e9f), self = kn__vsplat(-1e5f);                        \
            kn_v8f vmx = kn__vsplat(-INFINITY);                                                    \
            for (int c = 0; c < nk; c += 8) {                                                      \
                kn_v8f v;                                                                          \
                kn_v8i kp, kd;                                                                     \
                memcpy(&v, row + c, sizeof v);                                                     \
                memcpy(&kp, kpos + c, sizeof kp);                                                  \
                memcpy(&kd, kdead + c, sizeof kd);                                                 \
                v = kn__vsel(kd | ((kp > vpi) & vcausal), big, v);                                 \
                v = kn__vsel((kp == vpi) & vself, self, v);                                        \
                if (c + 8 > nk) { /* lanes past nk: -inf, no weight */                             \
                    const kn_v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};                                  \
                    v = kn__vsel(lane < nk - c, v, kn__vsplat(-INFINITY));                         \
                }                                                                                  \
                memcpy(row + c, &v, sizeof v);                                                     \
                vmx = kn__vsel(v > vmx, v, vmx);                                                   \
            }                                                                                      \
            float m1 = -INFINITY;                                                                  \
            for (int k = 0; k < 8; k++)                                                            \
                m1 = vmx[k] > m1 ? vmx[k] : m1;                                                    \
            const kn_v8f vm = kn__vsplat(m1);                                                      \
            kn_v8f vs = kn__vsplat(0.0f);                                                          \
            for (int c = 0; c < nk; c += 8) {                                                      \
                kn_v8f v;                                                                          \
                memcpy(&v, row + c, sizeof v);                                                     \
                v = kn__vexpf_neg(v - vm);                                                         \
                vs += v;                                                                           \
                memcpy(row + c, &v, sizeof v);                                                     \
            }                                                                                      \
            float s1 = 0.0f;                                                                       \
            for (int k = 0; k < 8; k++)                                                            \
                s1 += vs[k];                                                                       \
            mx[i] = m1;                                                                            \
            sum[i] = s1;                                                                           \
        }                                                                                          \
    }

#if defined(__x86_64__) && defined(__GNUC__)
KN__CHUNK_EXP(kn__chunk_exp_avx512,
              __attribute__((target("avx512f,fma"), optimize("fp-contract=fast"))))
KN__CHUNK_EXP(kn__chunk_exp_avx2, __attribute__((target("avx2,fma"), optimize("fp-contract=fast"))))
#define KN__EXP_X86(f) f
#else
#define KN__EXP_X86(f) kn__chunk_exp_portable
#endif
KN__CHUNK_EXP(kn__chunk_exp_portable, __attribute__((optimize("fp-contract=fast"))))

typedef void (*kn__chunk_exp_fn)(float *, int, int, int, const int32_t *, const int32_t *,
                                 const int32_t *, int, int, float *, float *);
static const kn__chunk_exp_fn kn__chunk_exp[KN_ISA_COUNT] = {
    [KN_ISA_PORTABLE] = kn__chunk_exp_portable,
    [KN_ISA_AVX2] = KN__EXP_X86(kn__chunk_exp_avx2),
    [KN_ISA_AVX512] = KN__EXP_X86(kn__chunk_exp_avx512),
    [KN_ISA_AVX512_EMU] = KN__EXP_X86(kn__chunk_exp_avx2),
};

/* One thread's tile: the packed keys and values of one task, and MR rows of scores. */
typedef struct {
    float *kp;      /* [nkpad/nr][d][nr] */
    float *vp;      /* [ceil(d/nr)][nk][nr] */
    float *z;       /* [mr][nkpad] */
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

    /* gather: key column kk is row r of the segment */
    int kk = 0;
    for (int j = -nb; j <= na; j++) {
        const int kc = ((c + j) % nc + nc) % nc;
        for (int r = kc * C; r < kc * C + C; r++, kk++) {
            const float *k = s->k + (size_t)r * s->ld, *v = s->v + (size_t)r * s->ld;
            float *kpan = t->kp + (size_t)(kk / nr) * d * nr + kk % nr;
            for (int e = 0; e < d; e++)
                kpan[(size_t)e * nr] = k[e] * ks;
            for (int ch = 0; ch < nchunk; ch++) {
                const int w = d - ch * nr < nr ? d - ch * nr : nr;
                float *dst = t->vp + ((size_t)ch * nk + kk) * nr;
                memcpy(dst, v + ch * nr, sizeof(float) * (size_t)w);
                for (int e = w; e < nr; e++)
                    dst[e] = 0.0f;
            }
            const int pr = s->pos[r];
            t->kpos[kk] = pr;
            t->kdead[kk] = s->keep && !s->keep[pr] ? -1 : 0;
        }
    }
    for (; kk < nkpad; kk++) { /* the last panel's spare keys: zeros, never weighed */
        float *kpan = t->kp + (size_t)(kk / nr) * d * nr + kk % nr;
        for (int e = 0; e < d; e++)
            kpan[(size_t)e * nr] = 0.0f;
    }
    for (kk = nk; kk < ldz; kk++)
        t->kpos[kk] = 0, t->kdead[kk] = 0;

    const kn__chunk_exp_fn expf8 = kn__chunk_exp[isa];
    for (int r0 = 0; r0 < C; r0 += mr) {
        const int m = C - r0 < mr ? C - r0 : mr, i0 = c * C + r0;
        const float *q = s->q + (size_t)i0 * s->ld;
        for (int p = 0; p < nkpad / nr; p++)
            kn_gemm_tile(isa, m, nk - p * nr < nr ? nk - p * nr : nr, d, q, s->ld,
                         t->kp + (size_t)p * d * nr, t->z + (size_t)p * nr, ldz, 0);
        float mx[32], sum[32]; /* mr <= 32 */
        expf8(t->z, ldz, m, nk, t->kpos, t->kdead, s->pos + i0, a->causal, a->self_mask, mx, sum);
        for (int ch = 0; ch < nchunk; ch++)
            kn_gemm_tile(isa, m, d - ch * nr < nr ? d - ch * nr : nr, nk, t->z, ldz,
                         t->vp + (size_t)ch * nk * nr, s->out + (size_t)i0 * s->ldo + ch * nr,
                         s->ldo, 0);
        for (int i = 0; i < m; i++) {
            const float lse = mx[i] + logf(sum[i]); /* float32, as torch.logsumexp */
            if (s->lse) s->lse[i0 + i] = lse;
            const float f = expf(mx[i] - lse); /* 1/sum, or 1 when lse rounds to max */
            float *o = s->out + (size_t)(i0 + i) * s->ldo;
            for (int e = 0; e < d; e++)
                o[e] *= f;
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
            .z = kn__chunk_alloc((size_t)mr * nkpad),
            .kpos = malloc(sizeof(int32_t) * nkpad),
            .kdead = malloc(sizeof(int32_t) * nkpad),
        };
        const int ok = t.kp && t.vp && t.z && t.kpos && t.kdead;
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
        free(t.kp), free(t.vp), free(t.z), free(t.kpos), free(t.kdead);
    }
    free(first);
    return failed ? -1 : 0;
}
