/* The Longformer forward (and BERT/RoBERTa served with Longformer attention), following
 * shared/reference/hf-semantics.md Part A step by step on a packed ragged batch:
 * masks → positions → embeddings → layers (window + global attention, FFN) → head. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

/* The feed-forward chunk plan (see ffn_off): depends on each sequence alone, so that
 * chunking keeps a sequence's numbers independent of its batch-mates. */
static void eng__ffn_plan(eng_ctx *c, const eng_batch *b)
{
    int np = 0, nc = 0, rows = 0;
    c->ffn_off[0] = 0;
    c->ffn_call[0] = 0;
    for (int s = 0; s < b->nseq; s++)
        for (int r = b->offsets[s]; r < b->offsets[s + 1]; r += ENG_FFN_ROWS) {
            int end = r + ENG_FFN_ROWS < b->offsets[s + 1] ? r + ENG_FFN_ROWS : b->offsets[s + 1];
            if (rows + (end - r) > ENG_FFN_ROWS) { /* close the current call */
                c->ffn_call[++nc] = np;
                rows = 0;
            }
            c->ffn_off[++np] = end;
            rows += end - r;
        }
    if (np > c->ffn_call[nc]) c->ffn_call[++nc] = np;
    c->nffn_calls = nc;
}

/* ---- inputs: validation, merged mask, automatic global attention, positions ---------- */

static ls_status eng__prepare(eng_ctx *c, const eng_batch *b, size_t *nglob, char *err,
                              size_t errlen)
{
    const eng_model *m = c->m;
    const hf_config *cfg = &m->cfg;
    const int T = b->offsets[b->nseq];
    for (int t = 0; t < T; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= m->V)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input_ids: token id %d at position %d is outside the vocabulary "
                           "[0, %d)",
                           b->ids[t], t, m->V);
        if (b->type_ids && (b->type_ids[t] < 0 || b->type_ids[t] >= cfg->type_vocab_size))
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "token_type_ids: %d at position %d is outside [0, %d)", b->type_ids[t],
                           t, cfg->type_vocab_size);
    }
    size_t g = 0;
    for (int s = 0; s < b->nseq; s++) {
        const int lo = b->offsets[s], hi = b->offsets[s + 1], n = hi - lo;
        if (n > m->max_tokens)
            return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                           "sequence %d has %d tokens; the model accepts at most %d", s, n,
                           m->max_tokens);
        /* bert/roberta within full_upto tokens: full attention as BertModel/RobertaModel
         * (every token attends every non-padding token, padding rows included; no global
         * token: global_mask changes nothing there) */
        const int full = m->full_upto > 0 && n <= m->full_upto;
        c->full[s] = (uint8_t)full;
        if (full) {
            int keep_any = 0;
            for (int t = lo; t < hi; t++)
                keep_any |= b->attn_mask ? b->attn_mask[t] != 0 : 1;
            /* a row with no token to attend keeps Longformer's zero rows (HF would spread
             * its rows evenly over the masked keys) */
            for (int t = lo; t < hi; t++)
                c->kind[t] = (uint8_t)(!b->attn_mask || b->attn_mask[t]
                                           ? KN_TOK_LOCAL
                                           : (keep_any ? KN_TOK_PAD_QUERY : KN_TOK_PAD));
        }
        /* automatic global attention, exactly where Hugging Face puts it */
        int auto_upto = 0; /* positions lo .. lo+auto_upto-1 become global */
        if (!full && !b->global_mask && n > 0) {
            if (m->fam != ENG_FAM_LONGFORMER || m->head == ENG_HEAD_SEQCLS) auto_upto = 1;
            if (m->fam == ENG_FAM_LONGFORMER && m->head == ENG_HEAD_QA) {
                int nsep = 0, first = -1;
                for (int t = lo; t < hi; t++)
                    if (b->ids[t] == cfg->sep_token_id && nsep++ == 0) first = t - lo;
                if (nsep != 3)
                    return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                                   "sequence %d has %d separator tokens (id %d); question "
                                   "answering needs exactly 3 (<s> question </s></s> context "
                                   "</s>) or an explicit global_attention_mask",
                                   s, nsep, cfg->sep_token_id);
                auto_upto = first;
            }
        }
        /* merged mask: 0 padding, 1 local, 2 global; padding stays padding */
        for (int t = lo; t < hi && !full; t++) {
            int keep = b->attn_mask ? b->attn_mask[t] != 0 : 1;
            int glob = b->global_mask ? b->global_mask[t] != 0 : t - lo < auto_upto;
            c->kind[t] = (uint8_t)(keep ? (glob ? KN_TOK_GLOBAL : KN_TOK_LOCAL) : KN_TOK_PAD);
            if (c->kind[t] == KN_TOK_GLOBAL) g++;
        }
        /* positions (A3): RoBERTa-style from the ids, BERT-style by index; tiled past
         * the trained table for converted BERT/RoBERTa */
        const int pad = cfg->pad_token_id, maxp = cfg->max_position_embeddings;
        int run = 0;
        for (int t = lo; t < hi; t++) {
            int p;
            if (m->fam == ENG_FAM_BERT) {
                p = (t - lo) % maxp;
            } else {
                p = b->ids[t] != pad ? pad + ++run : pad;
                if (p >= maxp) {
                    if (!m->tile_positions)
                        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                                       "sequence %d needs position %d; the model has %d", s, p,
                                       maxp);
                    p = pad + 1 + (p - pad - 1) % (maxp - pad - 1);
                }
            }
            c->pos[t] = p;
        }
    }
    *nglob = g;
    return LS_OK;
}

/* ---- one encoder layer (A4–A6) ---------------------------------------------------------- */

static ls_status eng__layer(eng_ctx *c, const eng_layer *y, const eng_batch *b, size_t G, char *err,
                            size_t errlen)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    const int T = b->offsets[b->nseq], H = m->H, I = m->I;

    /* q | k | v for every token: (T, 3H) */
    ENG_OP(c, k, linear, c->x, &y->qkv, y->qkv_b, c->qkv, T, 3 * H, H, b->offsets, b->nseq);

    /* per-sequence windows only when a sequence attends fully (else every kernel call is
     * the one it was before full attention existed) */
    int any_full = 0;
    for (int s = 0; s < b->nseq; s++) {
        const int n = b->offsets[s + 1] - b->offsets[s];
        c->seq_w[s] = c->full[s] ? (n > 1 ? n - 1 : 1) : y->window / 2;
        any_full |= c->full[s];
    }
    kn_attn_args a = {
        .q = c->qkv,
        .k = c->qkv + H,
        .v = c->qkv + 2 * H,
        .ld = 3 * H,
        .out = c->att,
        .ldo = H,
        .nseq = b->nseq,
        .offsets = b->offsets,
        .kind = c->kind,
        .glob = c->glob,
        .glob_off = c->glob_off,
        .nh = m->nh,
        .d = m->d,
        .w = y->window / 2,
        .seq_w = any_full ? c->seq_w : NULL,
        .scale = 1.0f / sqrtf((float)m->d),
    };
    int rc;
    ENG_OP_RC(rc, c, k, window_attn, &a);
    if (rc) return ls_fail(err, errlen, LS_ERR_NOMEM, "window attention: out of scratch memory");

    if (G) {
        /* global queries: rows of global tokens through query_global (or query); keys
         * and values are the op's business (it gets x and the weights) */
        for (size_t i = 0; i < G; i++)
            memcpy(c->xg + i * H, c->x + (size_t)c->glob[i] * H, sizeof(float) * H);
        if (y->gq_w) {
            ENG_OP(c, k, linear, c->xg, &y->gq, y->gq_b, c->qg, (int)G, H, H, c->glob_off, b->nseq);
            a.wkg = y->gkv_w;
            a.bkg = y->gkv_b;
            a.wvg = y->gkv_w + (size_t)H * H;
            a.bvg = y->gkv_b + H;
        } else { /* BERT/RoBERTa: the global projections are the local ones */
            for (size_t i = 0; i < G; i++)
                memcpy(c->qg + i * H, c->qkv + (size_t)c->glob[i] * 3 * H, sizeof(float) * H);
            a.wkg = y->qkv_w + (size_t)H * H;
            a.bkg = y->qkv_b + H;
            a.wvg = y->qkv_w + (size_t)2 * H * H;
            a.bvg = y->qkv_b + 2 * H;
        }
        a.qg = c->qg;
        a.ldqg = H;
        a.x = c->x;
        a.hidden = H;
        ENG_OP_RC(rc, c, k, global_attn, &a);
        if (rc)
            return ls_fail(err, errlen, LS_ERR_NOMEM, "global attention: out of scratch memory");
    }

    /* a = LN(dense(att) + x) */
    ENG_OP(c, k, linear, c->att, &y->ao, y->ao_b, c->tmp, T, H, H, b->offsets, b->nseq);
    ENG_OP(c, k, add_layernorm, c->tmp, c->x, y->ln1_g, y->ln1_b, (float)m->cfg.layer_norm_eps, T,
           H);
    /* x' = LN(W2·gelu(W1·a) + a): fused by the table where it can, else in chunks of at
     * most ENG_FFN_ROWS rows so the (rows, I) inner buffer stays small */
    int fused = 0;
    if (k->ffn) {
        ENG_OP_RC(rc, c, k, ffn, c->tmp, &y->ff1, y->ff1_b, &y->ff2, y->ff2_b, c->x, T, H, I);
        fused = rc == 0;
    }
    for (int q = 0; q < c->nffn_calls && !fused; q++) {
        const int p0 = c->ffn_call[q], p1 = c->ffn_call[q + 1];
        const int r0 = c->ffn_off[p0], rows = c->ffn_off[p1] - r0;
        for (int p = p0; p <= p1; p++)
            c->ffn_groups[p - p0] = c->ffn_off[p] - r0;
        const float *in = c->tmp + (size_t)r0 * H;
        ENG_OP(c, k, linear, in, &y->ff1, y->ff1_b, c->ffn, rows, I, H, c->ffn_groups, p1 - p0);
        ENG_OP(c, k, gelu, c->ffn, (size_t)rows * I);
        ENG_OP(c, k, linear, c->ffn, &y->ff2, y->ff2_b, c->x + (size_t)r0 * H, rows, H, I,
               c->ffn_groups, p1 - p0);
    }
    ENG_OP(c, k, add_layernorm, c->x, c->tmp, y->ln2_g, y->ln2_b, (float)m->cfg.layer_norm_eps, T,
           H);
    return LS_OK;
}

/* ---- heads (A8) --------------------------------------------------------------------------- */

static void eng__first_rows(const eng_ctx *c, const eng_batch *b, float *dst)
{
    const int H = c->m->H;
    for (int s = 0; s < b->nseq; s++)
        memcpy(dst + (size_t)s * H, c->x + (size_t)b->offsets[s] * H, sizeof(float) * H);
}

static void eng__head(eng_ctx *c, const eng_batch *b, eng_outputs *out)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    const int T = b->offsets[b->nseq], H = m->H, S = b->nseq, nl = m->cfg.num_labels;
    const float *data[ENG_MAX_OUTPUTS] = {NULL}; /* in the order of m->outs */
    switch (m->head) {
    case ENG_HEAD_BASE:
        data[0] = c->x; /* last_hidden_state */
        if (m->pool_w) {
            eng__first_rows(c, b, c->seq_a);
            ENG_OP(c, k, linear, c->seq_a, &m->pool, m->pool_b, c->seq_b, S, H, H, c->each, S);
            ENG_OP(c, k, tanh, c->seq_b, (size_t)S * H);
            data[1] = c->seq_b; /* pooler_output */
        }
        break;
    case ENG_HEAD_MLM:
        ENG_OP(c, k, linear, c->x, &m->mlm_dense, m->mlm_dense_b, c->tmp, T, H, H, b->offsets,
               b->nseq);
        ENG_OP(c, k, gelu, c->tmp, (size_t)T * H);
        ENG_OP(c, k, add_layernorm, c->tmp, NULL, m->mlm_ln_g, m->mlm_ln_b,
               (float)m->cfg.layer_norm_eps, T, H);
        ENG_OP(c, k, linear, c->tmp, &m->mlm_dec, m->mlm_dec_b, c->inter, T, m->V, H, b->offsets,
               b->nseq);
        data[0] = c->inter; /* logits (T, V) */
        break;
    case ENG_HEAD_SEQCLS:
        eng__first_rows(c, b, c->seq_a);
        if (m->cls_dense_w) { /* Longformer/RoBERTa: dense, tanh, out_proj on <s> */
            ENG_OP(c, k, linear, c->seq_a, &m->cls_dense, m->cls_dense_b, c->seq_b, S, H, H,
                   c->each, S);
        } else { /* BERT: pooler, then classifier */
            ENG_OP(c, k, linear, c->seq_a, &m->pool, m->pool_b, c->seq_b, S, H, H, c->each, S);
        }
        ENG_OP(c, k, tanh, c->seq_b, (size_t)S * H);
        ENG_OP(c, k, linear, c->seq_b, &m->cls_out, m->cls_out_b, c->seq_out, S, nl, H, c->each, S);
        data[0] = c->seq_out; /* logits (nseq, labels) */
        break;
    case ENG_HEAD_TOKCLS:
        ENG_OP(c, k, linear, c->x, &m->cls_out, m->cls_out_b, c->inter, T, nl, H, b->offsets,
               b->nseq);
        data[0] = c->inter; /* logits (T, labels) */
        break;
    case ENG_HEAD_QA:
        ENG_OP(c, k, linear, c->x, &m->qa, m->qa_b, c->inter, T, 2, H, b->offsets, b->nseq);
        for (int t = 0; t < T; t++) { /* (T, 2) → start (T) | end (T) */
            c->head[t] = c->inter[2 * t];
            c->head[T + t] = c->inter[2 * t + 1];
        }
        data[0] = c->head;     /* start_logits */
        data[1] = c->head + T; /* end_logits */
        break;
    }
    out->n = m->nouts;
    for (int i = 0; i < m->nouts; i++) {
        const eng_output_desc *d = &m->outs[i];
        out->t[i] = (eng_tensor){d->name, d->per_token, d->width, data[i], d->id};
    }
}

static ls_status eng__longformer_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out,
                                         char *err, size_t errlen);

ls_status eng_ctx_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out, char *err,
                          size_t errlen)
{
    const double t0 = eng__now();
    memset(out, 0, sizeof *out);
    const ls_status st = c->m->fam == ENG_FAM_REFORMER
                             ? eng__reformer_forward(c, b, out, err, errlen)
                             : eng__longformer_forward(c, b, out, err, errlen);
    c->forward_seconds += eng__now() - t0;
    return st;
}

/* Checks and lays out b, and runs the embeddings into c->x (A3): what every forward of b
 * starts with; *G: its global tokens. */
static ls_status eng__lf_begin(eng_ctx *c, const eng_batch *b, size_t *G, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    if (b->nseq <= 0 || !b->offsets || b->offsets[0] != 0 || !b->ids)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "empty batch");
    for (int s = 0; s < b->nseq; s++)
        if (b->offsets[s + 1] < b->offsets[s])
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "batch offsets decrease at %d", s);
    const size_t T = (size_t)b->offsets[b->nseq];
    if (T == 0) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "no tokens");

    ls_status st = eng__reserve(c, T, 0, (size_t)b->nseq, err, errlen);
    *G = 0;
    if (!st) st = eng__prepare(c, b, G, err, errlen);
    if (!st) st = eng__reserve(c, T, *G, (size_t)b->nseq, err, errlen);
    if (st) return st;
    /* global token lists per sequence, ascending (HF's nonzero order) */
    size_t g = 0;
    for (int s = 0; s < b->nseq; s++) {
        c->glob_off[s] = (int32_t)g;
        for (int t = b->offsets[s]; t < b->offsets[s + 1]; t++)
            if (c->kind[t] == KN_TOK_GLOBAL) c->glob[g++] = t;
    }
    c->glob_off[b->nseq] = (int32_t)g;
    eng__ffn_plan(c, b);

    /* embeddings: word + position + type, LayerNorm (A3) */
    const kn_ops *k = &m->ops;
    ENG_OP(c, k, embed, b->ids, c->pos, b->type_ids, m->word, m->pos, m->type, c->x, (int)T, m->H);
    ENG_OP(c, k, add_layernorm, c->x, NULL, m->emb_ln_g, m->emb_ln_b, (float)m->cfg.layer_norm_eps,
           (int)T, m->H);
    return LS_OK;
}

static ls_status eng__longformer_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out,
                                         char *err, size_t errlen)
{
    const eng_model *m = c->m;
    size_t G;
    ls_status st = eng__lf_begin(c, b, &G, err, errlen);
    for (int l = 0; !st && l < m->L; l++)
        st = eng__layer(c, &m->layers[l], b, G, err, errlen);
    if (!st) eng__head(c, b, out);
    return st;
}

/* ---- the forward in steps (engine.h eng_fwd_*) --------------------------------------------
 * Between steps the context runs other batches, so a step restores what eng__layer reads of
 * the batch's layout (token kinds, full-attention flags, global lists, the feed-forward plan, all
 * functions of b alone) and computes in the state's own hidden-state buffer: the same numbers as
 * the one-shot forward, in the same order. */

struct eng_fwd {
    int nseq, L, done; /* sequences; layers of the model, run */
    size_t T, G;
    int32_t *offsets;  /* (nseq+1) */
    uint8_t *kind;     /* (T) KN_TOK_* */
    int32_t *glob;     /* (G) global token rows */
    int32_t *glob_off; /* (nseq+1) */
    uint8_t *full;     /* (nseq) 1: the sequence attends fully (bert/roberta) */
    float *x;          /* (T, H) hidden states after `done` layers */
};

void eng_fwd_free(eng_fwd *f)
{
    if (!f) return;
    free(f->offsets);
    free(f->kind);
    free(f->glob);
    free(f->glob_off);
    free(f->full);
    free(f->x);
    free(f);
}

ls_status eng_fwd_start(eng_ctx *c, const eng_batch *b, eng_fwd **out, char *err, size_t errlen)
{
    *out = NULL;
    if (c->m->fam == ENG_FAM_REFORMER)
        return ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                       "a Reformer forward runs in one piece (reversible layers)");
    const double t0 = eng__now();
    size_t G;
    ls_status st = eng__lf_begin(c, b, &G, err, errlen);
    if (st) {
        c->forward_seconds += eng__now() - t0;
        return st;
    }
    const size_t T = (size_t)b->offsets[b->nseq], S = (size_t)b->nseq, H = (size_t)c->m->H;
    eng_fwd *f = calloc(1, sizeof *f);
    if (f) {
        f->nseq = b->nseq, f->L = c->m->L, f->T = T, f->G = G;
        f->offsets = malloc((S + 1) * sizeof *f->offsets);
        f->kind = malloc(T);
        f->glob = malloc((G ? G : 1) * sizeof *f->glob);
        f->glob_off = malloc((S + 1) * sizeof *f->glob_off);
        f->full = malloc(S);
        f->x = malloc(T * H * sizeof *f->x);
    }
    if (!f || !f->offsets || !f->kind || !f->glob || !f->glob_off || !f->full || !f->x) {
        eng_fwd_free(f);
        c->forward_seconds += eng__now() - t0;
        return ls_fail(err, errlen, LS_ERR_NOMEM,
                       "out of memory for the stepped state of %zu tokens in %zu sequences", T, S);
    }
    memcpy(f->offsets, b->offsets, (S + 1) * sizeof *f->offsets);
    memcpy(f->kind, c->kind, T);
    memcpy(f->glob, c->glob, G * sizeof *f->glob);
    memcpy(f->glob_off, c->glob_off, (S + 1) * sizeof *f->glob_off);
    memcpy(f->full, c->full, S);
    memcpy(f->x, c->x, T * H * sizeof *f->x);
    c->forward_seconds += eng__now() - t0;
    *out = f;
    return LS_OK;
}

/* The context's buffers laid out for f again (they may have served other batches). */
static ls_status eng__fwd_restore(eng_ctx *c, const eng_fwd *f, eng_batch *b, char *err,
                                  size_t errlen)
{
    *b = (eng_batch){.nseq = f->nseq, .offsets = f->offsets};
    ls_status st = eng__reserve(c, f->T, f->G, (size_t)f->nseq, err, errlen);
    if (st) return st;
    memcpy(c->kind, f->kind, f->T);
    memcpy(c->glob, f->glob, f->G * sizeof *c->glob);
    memcpy(c->glob_off, f->glob_off, ((size_t)f->nseq + 1) * sizeof *c->glob_off);
    memcpy(c->full, f->full, (size_t)f->nseq);
    eng__ffn_plan(c, b);
    return LS_OK;
}

int eng_fwd_layers_left(const eng_fwd *f)
{
    return f->L - f->done;
}

ls_status eng_fwd_step(eng_ctx *c, eng_fwd *f, int n, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const double t0 = eng__now();
    eng_batch b;
    ls_status st = eng__fwd_restore(c, f, &b, err, errlen);
    if (!st) {
        float *own = c->x; /* the layers compute in the state's buffer */
        c->x = f->x;
        for (int i = 0; !st && i < n && f->done < m->L; i++, f->done++)
            st = eng__layer(c, &m->layers[f->done], &b, f->G, err, errlen);
        c->x = own;
    }
    c->forward_seconds += eng__now() - t0;
    return st;
}

ls_status eng_fwd_finish(eng_ctx *c, eng_fwd *f, eng_outputs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (f->done < c->m->L)
        return ls_fail(err, errlen, LS_ERR_INTERNAL, "the head after %d of %d layers", f->done,
                       c->m->L);
    const double t0 = eng__now();
    eng_batch b;
    ls_status st = eng__fwd_restore(c, f, &b, err, errlen);
    if (!st) {
        memcpy(c->x, f->x, f->T * (size_t)c->m->H * sizeof *c->x);
        eng__head(c, &b, out);
    }
    c->forward_seconds += eng__now() - t0;
    return st;
}
