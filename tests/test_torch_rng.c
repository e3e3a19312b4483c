/* engine/torch_rng.c against std::mt19937 and against torch itself: the values of
 * torch.manual_seed(s); torch.randn(n) stored in tests/fixtures/reformer/randn.safetensors
 * by tools/make_reformer_fixtures.py, for both of torch's float32 kernels. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/safetensors.h"
#include "../engine/torch_rng.h"
#include "testutil.h"

START_TEST(mt19937_matches_std)
{
    /* std::mt19937(seed): the first five outputs and the 10000th */
    static const struct {
        uint64_t seed;
        uint32_t first[5], at10000;
    } ref[] = {
        {5489, {3499211612u, 581869302u, 3890346734u, 3586334585u, 545404204u}, 4123659995u},
        {42, {1608637542u, 3421126067u, 4083286876u, 787846414u, 3143890026u}, 1399405940u},
        /* torch.manual_seed keeps the low 32 bits: 2**32 + 7 seeds like 7 */
        {(1ull << 32) + 7,
         {327741615u, 976413892u, 3349725721u, 1369975286u, 1882953283u},
         588343604u},
    };
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        eng_mt19937 st;
        eng_mt_seed(&st, ref[k].seed);
        for (int i = 0; i < 5; i++)
            ck_assert_uint_eq(eng_mt_next(&st), ref[k].first[i]);
        for (int i = 5; i < 9999; i++)
            eng_mt_next(&st);
        ck_assert_uint_eq(eng_mt_next(&st), ref[k].at10000);
    }
}
END_TEST

/* Distance in units in the last place, over the sign too (-0 and +0 are 1 apart). */
static int64_t ulp_diff(float a, float b)
{
    int32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    int64_t ox = x < 0 ? (int64_t)INT32_MIN - x : x, oy = y < 0 ? (int64_t)INT32_MIN - y : y;
    return ox > oy ? ox - oy : oy - ox;
}

/* A tensor name "<path>.s<seed>.n<n1>[+<n2>...][@<offset>]": the draws n1, n2, ... taken
 * one after the other after one manual_seed(seed), concatenated; the tensor holds the values
 * from `offset` on. */
typedef struct {
    eng_randn_path path;
    uint64_t seed;
    size_t n[8];
    int ndraws;
    size_t offset;
} randn_case;

static int parse_name(const char *name, randn_case *c)
{
    const char *p;
    if (strncmp(name, "avx2.", 5) == 0)
        c->path = ENG_RANDN_PATH_AVX2, p = name + 5;
    else if (strncmp(name, "scalar.", 7) == 0)
        c->path = ENG_RANDN_PATH_SCALAR, p = name + 7;
    else
        return -1;
    char *end;
    if (*p++ != 's') return -1;
    c->seed = strtoull(p, &end, 10);
    if (end == p || strncmp(end, ".n", 2) != 0) return -1;
    p = end + 2;
    c->ndraws = 0;
    for (;;) {
        if (c->ndraws == 8) return -1;
        c->n[c->ndraws++] = strtoull(p, &end, 10);
        if (end == p) return -1;
        p = end;
        if (*p != '+') break;
        p++;
    }
    c->offset = 0;
    if (*p == '@') {
        c->offset = strtoull(p + 1, &end, 10);
        p = end;
    }
    return *p ? -1 : 0;
}

START_TEST(randn_matches_torch)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/reformer/randn.safetensors", fixtures());
    st_file *f;
    ck_assert_msg(st_file_open(path, &f, err, sizeof err) == LS_OK, "%s", err);
    int64_t worst[2] = {0, 0};
    size_t ncases[2] = {0, 0}, nvalues[2] = {0, 0}, ndiff[2] = {0, 0};
    st_tensor t;
    for (size_t i = 0; st_file_tensor(f, i, &t) == 0; i++) {
        randn_case c;
        ck_assert_msg(parse_name(t.e->name, &c) == 0, "bad tensor name '%s'", t.e->name);
        const float *want = st_tensor_f32_view(&t);
        ck_assert_msg(want != NULL, "%s: not aligned F32", t.e->name);
        size_t stored = (size_t)((t.e->end - t.e->begin) / sizeof(float)), total = 0;
        for (int d = 0; d < c.ndraws; d++)
            total += c.n[d];
        ck_assert_msg(c.offset + stored <= total, "%s: %zu values stored", t.e->name, stored);

        float *got = malloc(total * sizeof *got);
        eng_mt19937 st;
        eng_mt_seed(&st, c.seed);
        for (int d = 0, at = 0; d < c.ndraws; at += (int)c.n[d], d++)
            eng_torch_randn_next(&st, got + at, c.n[d], c.path);
        int64_t w = 0;
        for (size_t k = 0; k < stored; k++) {
            int64_t u = ulp_diff(got[c.offset + k], want[k]);
            if (u > w) w = u;
            ndiff[c.path] += u != 0;
        }
        ck_assert_msg(w <= 2, "%s: max ulp difference %lld", t.e->name, (long long)w);
        if (w > worst[c.path]) worst[c.path] = w;
        ncases[c.path]++;
        nvalues[c.path] += stored;
        free(got);

        /* the one-call form is the AVX2 path after one seed */
        if (c.path == ENG_RANDN_PATH_AVX2 && c.ndraws == 1 && c.offset == 0) {
            float *once = malloc(c.n[0] * sizeof *once);
            eng_torch_randn(c.seed, once, c.n[0]);
            for (size_t k = 0; k < stored; k++)
                ck_assert_int_le(ulp_diff(once[k], want[k]), 2);
            free(once);
        }
    }
    st_file_free(f);
    for (int p = 0; p < 2; p++) {
        printf("torch_rng: %s path: %zu cases, %zu values, %zu differ, max ulp %lld\n",
               p == ENG_RANDN_PATH_AVX2 ? "avx2" : "scalar", ncases[p], nvalues[p], ndiff[p],
               (long long)worst[p]);
        ck_assert_uint_gt(ncases[p], 0);
    }
}
END_TEST

START_TEST(tail_block_is_redrawn)
{
    /* n = 17: the first 16 are one block; then 16 fresh uniforms overwrite slots 1..16, so
     * slot 0 is the first block's and the rest come from draws 17..32. */
    float a[17], b[32];
    eng_torch_randn(3, a, 17);
    eng_mt19937 st;
    eng_mt_seed(&st, 3);
    eng_torch_randn_next(&st, b, 16, ENG_RANDN_PATH_AVX2);
    ck_assert_float_eq(a[0], b[0]);
    eng_mt_seed(&st, 3);
    eng_mt_next(&st); /* the 17th uniform of the first fill is drawn and lost */
    for (int i = 0; i < 16; i++)
        eng_mt_next(&st);
    eng_torch_randn_next(&st, b, 16, ENG_RANDN_PATH_AVX2);
    ck_assert_mem_eq(a + 1, b, 16 * sizeof(float));
}
END_TEST

Suite *torch_rng_suite(void)
{
    Suite *s = suite_create("torch_rng");
    TCase *tc = tcase_create("torch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mt19937_matches_std);
    tcase_add_test(tc, randn_matches_torch);
    tcase_add_test(tc, tail_block_is_redrawn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(torch_rng_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
