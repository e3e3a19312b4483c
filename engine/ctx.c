/* The forward context (struct eng_ctx, engine/ctx.h): creation and release, scratch
 * buffers grown to the largest batch and reused, and per-op timing. Shared by every
 * model family's forward; the forwards themselves live in longformer.c (and siblings). */
#include <stdlib.h>
#include <time.h>

#include "ctx.h"

double eng__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int eng_op_count(void)
{
    return KN_OP_COUNT;
}

const char *eng_op_name(int i)
{
    return i >= 0 && i < KN_OP_COUNT ? kn_op_names[i] : NULL;
}

void eng_ctx_op_seconds(const eng_ctx *c, double *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = i < KN_OP_COUNT ? c->op_seconds[i] : 0.0;
}

double eng_ctx_forward_seconds(const eng_ctx *c)
{
    return c->forward_seconds;
}

eng_ctx *eng_ctx_new(const eng_model *m)
{
    eng_ctx *c = calloc(1, sizeof *c);
    if (c) c->m = m;
    return c;
}

static void eng__ctx_release(eng_ctx *c)
{
    free(c->pos);
    free(c->kind);
    free(c->full);
    free(c->seq_w);
    free(c->x);
    free(c->qkv);
    free(c->att);
    free(c->tmp);
    free(c->inter);
    free(c->ffn);
    free(c->ffn_off);
    free(c->ffn_call);
    free(c->ffn_groups);
    free(c->head);
    free(c->glob);
    free(c->xg);
    free(c->qg);
    free(c->glob_off);
    free(c->each);
    free(c->seq_a);
    free(c->seq_b);
    free(c->seq_out);
    free(c->rf_out);
}

void eng_ctx_free(eng_ctx *c)
{
    if (!c) return;
    eng__ctx_release(c);
    free(c);
}

static int eng__grow(void **p, size_t bytes)
{
    void *np = realloc(*p, bytes ? bytes : 1);
    if (!np) return -1;
    *p = np;
    return 0;
}

/* Buffers grow to the largest batch seen and are reused. */
ls_status eng__reserve(eng_ctx *c, size_t T, size_t G, size_t S, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const size_t H = (size_t)m->H;
    size_t wide = 2;
    if (m->head == ENG_HEAD_MLM) wide = (size_t)m->V;
    size_t nl = (size_t)(m->cfg.num_labels > 2 ? m->cfg.num_labels : 2);
    if (m->head == ENG_HEAD_TOKCLS && nl > wide) wide = nl;
    int bad = 0;
    if (T > c->cap_t) {
        bad |= eng__grow((void **)&c->pos, T * sizeof(int32_t));
        bad |= eng__grow((void **)&c->kind, T);
        bad |= eng__grow((void **)&c->x, T * H * sizeof(float));
        bad |= eng__grow((void **)&c->qkv, T * 3 * H * sizeof(float));
        bad |= eng__grow((void **)&c->att, T * H * sizeof(float));
        bad |= eng__grow((void **)&c->tmp, T * H * sizeof(float));
        bad |= eng__grow((void **)&c->inter, T * wide * sizeof(float));
        size_t fr = T < ENG_FFN_ROWS ? T : ENG_FFN_ROWS;
        bad |= eng__grow((void **)&c->ffn, fr * (size_t)m->I * sizeof(float));
        bad |= eng__grow((void **)&c->head, T * 2 * sizeof(float));
        if (!bad) c->cap_t = T;
    }
    if (G > c->cap_g || !c->glob) {
        bad |= eng__grow((void **)&c->glob, (G ? G : 1) * sizeof(int32_t));
        bad |= eng__grow((void **)&c->xg, (G ? G : 1) * H * sizeof(float));
        bad |= eng__grow((void **)&c->qg, (G ? G : 1) * H * sizeof(float));
        if (!bad) c->cap_g = G;
    }
    if (S > c->cap_s || !c->glob_off) {
        bad |= eng__grow((void **)&c->glob_off, (S + 1) * sizeof(int32_t));
        bad |= eng__grow((void **)&c->each, (S + 1) * sizeof(int32_t));
        bad |= eng__grow((void **)&c->full, S ? S : 1);
        bad |= eng__grow((void **)&c->seq_w, (S ? S : 1) * sizeof(int32_t));
        if (!bad)
            for (size_t i = 0; i <= S; i++)
                c->each[i] = (int32_t)i;
        bad |= eng__grow((void **)&c->seq_a, S * H * sizeof(float));
        bad |= eng__grow((void **)&c->seq_b, S * H * sizeof(float));
        bad |= eng__grow((void **)&c->seq_out, S * nl * sizeof(float));
        if (!bad) c->cap_s = S;
    }
    size_t P = S + T / ENG_FFN_ROWS + 1; /* pieces: at most one per sequence + one per cut */
    if (P > c->cap_p || !c->ffn_off) {
        bad |= eng__grow((void **)&c->ffn_off, (P + 1) * sizeof(int32_t));
        bad |= eng__grow((void **)&c->ffn_call, (P + 1) * sizeof(int32_t));
        bad |= eng__grow((void **)&c->ffn_groups, (P + 1) * sizeof(int32_t));
        if (!bad) c->cap_p = P;
    }
    if (bad)
        return ls_fail(err, errlen, LS_ERR_NOMEM,
                       "out of memory for a batch of %zu tokens in %zu sequences", T, S);
    return LS_OK;
}
