/* The CUDA kernels' index arithmetic (kernels/cuda/index.h), compiled as plain C and checked
 * exhaustively against brute force over a grid of shapes: ragged batches with empty and odd
 * sequences, window edges, 0/1/many global tokens, chunk counts with wrap-around, LSH
 * factorisations and ties. No GPU needed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cuda/index.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Ragged batches: sequence lengths (0 = an empty sequence), one batch per row. */
static const int batches[][6] = {
    {1, -1}, {17, -1}, {64, -1}, {65, -1}, {0, 5, 0, -1}, {3, 128, 1, 77, -1}, {200, 0, 63, -1},
};
enum { NB = sizeof batches / sizeof *batches };

static int batch_offsets(const int *lens, int32_t *off)
{
    int n = 0;
    off[0] = 0;
    for (; lens[n] >= 0; n++)
        off[n + 1] = off[n] + lens[n];
    return n;
}

START_TEST(ragged_tiles)
{
    /* every row of every sequence is in exactly one tile, of its own sequence, in order */
    const int bqs[] = {1, 16, 64};
    for (int bi = 0; bi < NB; bi++)
        for (int qi = 0; qi < 3; qi++) {
            const int BQ = bqs[qi];
            int32_t off[8], toff[8];
            const int ns = batch_offsets(batches[bi], off);
            toff[0] = 0;
            for (int s = 0; s < ns; s++)
                toff[s + 1] = toff[s] + kn_ix_tiles(off[s + 1] - off[s], BQ);
            int seen[600] = {0}, next = 0;
            for (int t = 0; t < toff[ns]; t++) {
                const int s = kn_ix_tile_seq(toff, ns, t);
                ck_assert(toff[s] <= t && t < toff[s + 1]);
                int q0, q1;
                kn_ix_tile_rows(off, toff, s, t, BQ, &q0, &q1);
                ck_assert_int_eq(q0, next); /* tiles in row order, no gap */
                ck_assert(q1 > q0 && q1 - q0 <= BQ && q0 >= off[s] && q1 <= off[s + 1]);
                for (int r = q0; r < q1; r++)
                    seen[r]++;
                next = q1;
            }
            ck_assert_int_eq(next, off[ns]);
            for (int r = 0; r < off[ns]; r++)
                ck_assert_int_eq(seen[r], 1);
        }
}
END_TEST

START_TEST(band_limits)
{
    /* per query and per tile, the band is exactly the brute-force set; a tile is "full"
     * exactly when no (query, key) pair of it is out of distance */
    const int ws[] = {0, 1, 2, 7, 16, 64, 300};
    const int bqs[] = {1, 16, 64};
    for (int bi = 0; bi < NB; bi++)
        for (int wi = 0; wi < 7; wi++) {
            const int w = ws[wi];
            int32_t off[8];
            const int ns = batch_offsets(batches[bi], off);
            for (int s = 0; s < ns; s++) {
                const int b = off[s], e = off[s + 1];
                for (int i = b; i < e; i++) {
                    int lo, hi, blo = -1, bhi = -1;
                    kn_ix_band(i, b, e, w, &lo, &hi);
                    for (int j = b; j < e; j++)
                        if (abs(i - j) <= w) {
                            if (blo < 0) blo = j;
                            bhi = j + 1;
                        }
                    ck_assert_int_eq(lo, blo);
                    ck_assert_int_eq(hi, bhi);
                }
                for (int qi = 0; qi < 3; qi++)
                    for (int q0 = b; q0 < e; q0 += bqs[qi]) {
                        const int q1 = kn_ix_min(q0 + bqs[qi], e);
                        int lo, hi, ulo = e, uhi = b;
                        kn_ix_tile_band(q0, q1, b, e, w, &lo, &hi);
                        for (int i = q0; i < q1; i++) {
                            int l, h;
                            kn_ix_band(i, b, e, w, &l, &h);
                            ulo = kn_ix_min(ulo, l);
                            uhi = kn_ix_max(uhi, h);
                        }
                        ck_assert_int_eq(lo, ulo);
                        ck_assert_int_eq(hi, uhi);
                        for (int k0 = lo; k0 < hi; k0 += 16) {
                            const int k1 = kn_ix_min(k0 + 16, hi);
                            int full = 1;
                            for (int i = q0; i < q1; i++)
                                for (int j = k0; j < k1; j++)
                                    full &= abs(i - j) <= w;
                            ck_assert_int_eq(kn_ix_tile_full(q0, q1, k0, k1, w), full);
                        }
                    }
            }
        }
}
END_TEST

START_TEST(window_key_tiles)
{
    /* the fused kernel's key tiles (global columns, then the band) visit, for every local
     * query, exactly the keys the reference takes: each global token once, each local key
     * of the window once, no padding, no global token through the band */
    const int ngs[] = {0, 1, 3, 70};
    for (int bi = 0; bi < NB; bi++)
        for (int gi = 0; gi < 4; gi++)
            for (int w = 0; w < 40; w += 13) {
                int32_t off[8];
                const int ns = batch_offsets(batches[bi], off);
                uint8_t kind[600];
                for (int r = 0; r < off[ns]; r++)
                    kind[r] = (uint8_t)(urand() % 7 == 0 ? 0 : 1); /* some padding */
                for (int s = 0; s < ns; s++) {
                    const int b = off[s], e = off[s + 1], len = e - b;
                    const int ng = kn_ix_min(ngs[gi], len);
                    int32_t glob[80];
                    for (int g = 0; g < ng; g++) { /* ascending distinct rows */
                        glob[g] = b + (int)((long long)g * len / ng);
                        kind[glob[g]] = 2;
                    }
                    const int BQ = 16, BK = 32;
                    for (int q0 = b; q0 < e; q0 += BQ) {
                        const int q1 = kn_ix_min(q0 + BQ, e);
                        int lo, hi;
                        kn_ix_tile_band(q0, q1, b, e, w, &lo, &hi);
                        const int nt = kn_ix_window_ntiles(ng, lo, hi, BK);
                        for (int i = q0; i < q1; i++) {
                            if (kind[i] != 1) continue;
                            int got[600] = {0}, want[600] = {0};
                            for (int g = 0; g < ng; g++)
                                want[glob[g]]++;
                            for (int j = kn_ix_max(b, i - w); j <= i + w && j < e; j++)
                                if (kind[j] == 1) want[j]++;
                            for (int tk = 0; tk < nt; tk++) {
                                int start;
                                const int isg = kn_ix_window_tile(tk, ng, lo, BK, &start);
                                for (int c = 0; c < BK; c++) {
                                    if (isg) {
                                        if (start + c < ng) got[glob[start + c]]++;
                                    } else if (start + c < hi &&
                                               kn_ix_band_key(i, start + c, b, e, w,
                                                              kind[start + c])) {
                                        got[start + c]++;
                                    }
                                }
                            }
                            ck_assert(memcmp(got, want, sizeof got) == 0);
                        }
                    }
                }
            }
}
END_TEST

START_TEST(chunk_neighbours)
{
    /* key slot t of query chunk c is the row the reference loop reaches at step t, over
     * chunk counts 1..5 (wrap-around both ways), before/after 0..2 and the n <= chunk case */
    const int Cs[] = {1, 2, 4, 8, 64};
    for (int ci = 0; ci < 5; ci++)
        for (int nc = 1; nc <= 5; nc++)
            for (int nb = 0; nb <= 2; nb++)
                for (int na = 0; na <= 2; na++)
                    for (int shortcut = 0; shortcut < 2; shortcut++) {
                        const int chunk = Cs[ci];
                        const int n = shortcut ? chunk - (chunk > 1) : chunk * nc;
                        if (shortcut && nc > 1) continue;
                        const kn_ix_chunk g = kn_ix_chunk_geom(n, chunk, nb, na);
                        const int C = n > chunk ? chunk : n, NC = n / C;
                        const int b = n > chunk ? nb : 0, a = n > chunk ? na : 0;
                        ck_assert_int_eq(g.C, C);
                        ck_assert_int_eq(g.nc, NC);
                        ck_assert_int_eq(g.nk, (1 + b + a) * C);
                        for (int c = 0; c < NC; c++) {
                            int t = 0;
                            for (int j = -b; j <= a; j++) {
                                const int kc = ((c + j) % NC + NC) % NC;
                                for (int r = kc * C; r < kc * C + C; r++, t++)
                                    ck_assert_int_eq(kn_ix_chunk_key_row(&g, c, t), r);
                            }
                            ck_assert_int_eq(t, g.nk);
                        }
                    }
}
END_TEST

START_TEST(chunk_masks)
{
    /* replacement in HF's order: padding, causal, then self over both */
    for (int keep = 0; keep < 2; keep++)
        for (int causal = 0; causal < 2; causal++)
            for (int self = 0; self < 2; self++)
                for (int pk = 0; pk < 3; pk++) {
                    const int pq = 1;
                    float want = 0.25f;
                    if (!keep) want = -1e9f;
                    if (causal && pk > pq) want = -1e9f;
                    if (self && pk == pq) want = -1e5f;
                    ck_assert(kn_ix_chunk_mask(0.25f, keep, causal, self, pk, pq) == want);
                }
}
END_TEST

START_TEST(lsh_argmax_and_buckets)
{
    /* argmax over concat(y, -y), first index on ties (exact ties drawn on purpose), and the
     * factorised bucket b0 + f0·b1 + ... */
    for (int it = 0; it < 2000; it++) {
        float y[32] = {0};
        const int half = 1 + (int)(urand() % 16);
        for (int i = 0; i < half; i++)
            y[i] = (float)((int)(urand() % 5) - 2); /* small integers: many ties, +0/-0 */
        float cat[64] = {0};
        for (int i = 0; i < half; i++)
            cat[i] = y[i], cat[half + i] = -y[i];
        int best = 0;
        for (int i = 1; i < 2 * half; i++)
            if (cat[i] > cat[best]) best = i;
        ck_assert_int_eq(kn_ix_argmax_pm(y, half), best);
    }
    const int32_t facs[][3] = {{8, 0, 0}, {4, 8, 0}, {2, 2, 2}, {64, 128, 0}};
    const int nfs[] = {1, 2, 3, 2};
    for (int f = 0; f < 4; f++)
        for (int it = 0; it < 200; it++) {
            float y[200];
            int tot = 0;
            for (int i = 0; i < nfs[f]; i++)
                tot += facs[f][i] / 2;
            for (int i = 0; i < tot; i++)
                y[i] = (float)(urand() % 1000) / 999.0f - 0.5f;
            int want = 0, mul = 1, col = 0;
            for (int i = 0; i < nfs[f]; i++) {
                want += mul * kn_ix_argmax_pm(y + col, facs[f][i] / 2);
                mul *= facs[f][i];
                col += facs[f][i] / 2;
            }
            const int got = kn_ix_lsh_bucket(y, facs[f], nfs[f]);
            ck_assert_int_eq(got, want);
            ck_assert(got >= 0 && got < mul);
        }
}
END_TEST

typedef struct {
    uint32_t key;
    int32_t idx;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx - y->idx; /* stable: the flat index breaks ties */
}

START_TEST(lsh_sort_keys)
{
    /* sorting flat indices h·L + t stably by the round-offset bucket gives HF's order (key
     * B·(nH·L) + i, B = bucket + h·NBp); key_bits covers every key */
    const int Ls[] = {1, 8, 33, 128}, nHs[] = {1, 2, 4}, NBs[] = {2, 8, 9, 64};
    for (int li = 0; li < 4; li++)
        for (int hi = 0; hi < 3; hi++)
            for (int bi = 0; bi < 4; bi++) {
                const int L = Ls[li], nH = nHs[hi], NBp = NBs[bi], n = L * nH;
                kv *a = malloc(sizeof *a * n), *h = malloc(sizeof *h * n);
                for (int i = 0; i < n; i++) {
                    const int bucket = (int)(urand() % NBp);
                    a[i].key = kn_ix_lsh_key(i / L, bucket, NBp);
                    a[i].idx = i;
                    h[i].key = 0;
                    h[i].idx = i;
                    /* HF's key as 64 bits, its order split back into (key, idx) */
                    const uint64_t hk =
                        (uint64_t)(bucket + (i / L) * NBp) * (uint64_t)(nH * L) + (uint64_t)i;
                    h[i].key = (uint32_t)(hk / (uint64_t)(nH * L));
                    ck_assert_uint_lt(a[i].key, (uint32_t)(nH * NBp));
                    ck_assert_uint_lt(a[i].key >> kn_ix_key_bits((uint32_t)(nH * NBp)), 1);
                }
                qsort(a, n, sizeof *a, kv_cmp);
                qsort(h, n, sizeof *h, kv_cmp);
                for (int i = 0; i < n; i++) {
                    ck_assert_int_eq(a[i].idx, h[i].idx);
                    if (i) ck_assert(a[i - 1].idx / L <= a[i].idx / L); /* rounds in order */
                }
                free(a), free(h);
            }
    ck_assert_int_eq(kn_ix_key_bits(1), 1);
    ck_assert_int_eq(kn_ix_key_bits(2), 1);
    ck_assert_int_eq(kn_ix_key_bits(3), 2);
    ck_assert_int_eq(kn_ix_key_bits(256), 8);
    ck_assert_int_eq(kn_ix_key_bits(257), 9);
    ck_assert_int_eq(kn_ix_blocks(0, 256, 100), 1);
    ck_assert_int_eq(kn_ix_blocks(257, 256, 100), 2);
    ck_assert_int_eq(kn_ix_blocks(1ll << 40, 256, 4096), 4096);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_index");
    TCase *tc = tcase_create("index");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ragged_tiles);
    tcase_add_test(tc, band_limits);
    tcase_add_test(tc, window_key_tiles);
    tcase_add_test(tc, chunk_neighbours);
    tcase_add_test(tc, chunk_masks);
    tcase_add_test(tc, lsh_argmax_and_buckets);
    tcase_add_test(tc, lsh_sort_keys);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
