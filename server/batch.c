/* The pack -> forward -> (rerun alone on an input error) -> scatter loop shared by every
 * job kind. Packing follows the rows' own layout: inputs a row lacks get their defaults
 * (type 0, kept) when another row of the batch has them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static int bt__input_error(ls_status st)
{
    return st == LS_ERR_INVALID_INPUT || st == LS_ERR_TOO_LARGE || st == LS_ERR_BAD_REQUEST;
}

typedef struct {
    int32_t *offsets, *ids, *type_ids; /* [nseq+1], [T], [T] or NULL */
    uint8_t *attn, *glob;              /* [T] or NULL */
    int32_t *nhash;                    /* [nseq] or NULL: Reformer per-request settings */
    int64_t *seed;
} bt__pack;

static void bt__pack_free(bt__pack *p)
{
    free(p->offsets);
    free(p->ids);
    free(p->type_ids);
    free(p->attn);
    free(p->glob);
    free(p->nhash);
    free(p->seed);
}

/* LS_ERR_BAD_REQUEST when the rows mix explicit and automatic global masks. */
static ls_status bt__pack_build(const bt_ops *ops, void *const *jobs, int n, bt__pack *p,
                                eng_batch *b, bt_stats *st, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    size_t T = 0, S = 0;
    int any_type = 0, any_attn = 0, globs = 0, any_lsh = 0;
    for (int i = 0; i < n; i++) {
        const int rows = ops->nrows(jobs[i]);
        for (int k = 0; k < rows; k++) {
            bt_row r;
            ops->row(jobs[i], k, &r);
            T += (size_t)r.n;
            S++;
            any_type |= r.type_ids != NULL;
            any_attn |= r.attn != NULL;
            globs += r.glob != NULL;
            any_lsh |= r.num_hashes || r.has_hash_seed;
        }
    }
    if (globs && (size_t)globs != S)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "rows with and without global masks");
    if (T > INT32_MAX) return ls_fail(err, errlen, LS_ERR_TOO_LARGE, "batch of %zu tokens", T);
    int bad = !(p->offsets = malloc((S + 1) * sizeof *p->offsets));
    bad |= !(p->ids = malloc((T + 1) * sizeof *p->ids));
    if (any_type) bad |= !(p->type_ids = malloc((T + 1) * sizeof *p->type_ids));
    if (any_attn) bad |= !(p->attn = malloc(T + 1));
    if (globs) bad |= !(p->glob = malloc(T + 1));
    if (any_lsh) {
        bad |= !(p->nhash = malloc((S + 1) * sizeof *p->nhash));
        bad |= !(p->seed = malloc((S + 1) * sizeof *p->seed));
    }
    if (bad) {
        bt__pack_free(p);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory packing %zu tokens", T);
    }
    size_t t = 0, s = 0, pad = 0;
    for (int i = 0; i < n; i++) {
        const int rows = ops->nrows(jobs[i]);
        for (int k = 0; k < rows; k++) {
            bt_row r;
            ops->row(jobs[i], k, &r);
            const size_t nt = (size_t)r.n;
            if (p->nhash) {
                p->nhash[s] = r.num_hashes;
                p->seed[s] = r.has_hash_seed ? r.hash_seed : -1;
            }
            p->offsets[s++] = (int32_t)t;
            memcpy(p->ids + t, r.ids, nt * sizeof *p->ids);
            if (p->type_ids) {
                if (r.type_ids)
                    memcpy(p->type_ids + t, r.type_ids, nt * sizeof *p->type_ids);
                else
                    memset(p->type_ids + t, 0, nt * sizeof *p->type_ids);
            }
            if (p->attn) {
                if (r.attn)
                    memcpy(p->attn + t, r.attn, nt);
                else
                    memset(p->attn + t, 1, nt);
            }
            for (size_t q = 0; r.attn && q < nt; q++)
                pad += r.attn[q] == 0;
            if (p->glob) memcpy(p->glob + t, r.glob, nt);
            t += nt;
        }
    }
    p->offsets[S] = (int32_t)T;
    *b = (eng_batch){
        .nseq = (int)S,
        .offsets = p->offsets,
        .ids = p->ids,
        .type_ids = p->type_ids,
        .attn_mask = p->attn,
        .global_mask = p->glob,
        .num_hashes = p->nhash,
        .hash_seed = p->seed,
    };
    if (st) {
        st->tokens += T;
        st->pad += pad;
    }
    return LS_OK;
}

ls_status bt_run(eng_ctx *ctx, const bt_ops *ops, void *const *jobs, int n, bt_stats *stats,
                 char *err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        ops->reset(jobs[i]);
    char msg[256] = "";
    bt__pack p = {0};
    eng_batch b;
    eng_outputs out;
    bt_stats mine = {0};
    ls_status st = bt__pack_build(ops, jobs, n, &p, &b, &mine, msg, sizeof msg);
    if (!st) st = eng_ctx_forward(ctx, &b, &out, msg, sizeof msg);
    if (n > 1 && bt__input_error(st)) {
        /* each job alone: the verdict and its message are that request's own */
        bt__pack_free(&p);
        for (int i = 0; i < n; i++)
            bt_run(ctx, ops, &jobs[i], 1, stats, NULL, 0);
        return LS_OK;
    }
    if (stats) {
        stats->tokens += mine.tokens;
        stats->pad += mine.pad;
    }
    if (st) {
        for (int i = 0; i < n; i++)
            ops->fail(jobs[i], st, msg);
        bt__pack_free(&p);
        if (bt__input_error(st)) return LS_OK; /* the request's fault, reported in the job */
        return ls_fail(err, errlen, st, "%s", msg);
    }
    size_t tok = 0, seq = 0;
    for (int i = 0; i < n; i++) {
        ops->keep(jobs[i], &out, tok, seq);
        const int rows = ops->nrows(jobs[i]);
        for (int k = 0; k < rows; k++) {
            bt_row r;
            ops->row(jobs[i], k, &r);
            tok += (size_t)r.n;
            seq++;
        }
    }
    bt__pack_free(&p);
    return LS_OK;
}

/* ---- a job in steps ------------------------------------------------------------------------ */

int bt_steps_plan(bt_steps *s, const eng_model_info *info, double cost, double step_cost,
                  int force_per)
{
    memset(s, 0, sizeof *s);
    const int L = info->num_layers;
    if (!info->can_step || L < 2) return 0;
    if (force_per > 0) {
        s->per = force_per < L ? force_per : L;
    } else {
        if (step_cost <= 0 || cost <= step_cost) return 0;
        const double per = step_cost / (cost / L); /* layers one turn holds, at least one */
        s->per = per < 1 ? 1 : per >= L ? L : (int)per;
        if (s->per >= L) s->per = 0;
    }
    s->layers = s->per ? L : 0;
    return s->per;
}

double bt_steps_next_cost(const bt_steps *s, double cost)
{
    if (!s->per) return cost;
    const int left = s->fwd ? eng_fwd_layers_left(s->fwd) : s->layers;
    return cost * (double)(left < s->per ? left : s->per) / (double)s->layers;
}

int bt_steps_more(const bt_steps *s)
{
    return s->fwd != NULL;
}

void bt_steps_free(bt_steps *s)
{
    eng_fwd_free(s->fwd);
    s->fwd = NULL;
}

/* The step failed with st: the job's verdict, the state freed. */
static ls_status bt__step_fail(const bt_ops *ops, void *job, bt_steps *s, ls_status st,
                               const char *msg, char *err, size_t errlen)
{
    bt_steps_free(s);
    ops->fail(job, st, msg);
    if (bt__input_error(st)) return LS_OK;
    return ls_fail(err, errlen, st, "%s", msg);
}

ls_status bt_step(eng_ctx *ctx, const bt_ops *ops, void *job, bt_steps *s, bt_stats *stats,
                  char *err, size_t errlen)
{
    char msg[256] = "";
    ls_status st;
    if (!s->started) {
        ops->reset(job);
        s->started = 1;
        bt__pack p;
        eng_batch b;
        if ((st = bt__pack_build(ops, &job, 1, &p, &b, stats, msg, sizeof msg)))
            return bt__step_fail(ops, job, s, st, msg, err, errlen);
        st = eng_fwd_start(ctx, &b, &s->fwd, msg, sizeof msg);
        bt__pack_free(&p); /* the state copied what the steps need */
        if (st) return bt__step_fail(ops, job, s, st, msg, err, errlen);
    }
    if (!s->fwd) return LS_OK; /* finished: nothing to run */
    if ((st = eng_fwd_step(ctx, s->fwd, s->per, msg, sizeof msg)))
        return bt__step_fail(ops, job, s, st, msg, err, errlen);
    if (eng_fwd_layers_left(s->fwd)) return LS_OK;
    eng_outputs out;
    if ((st = eng_fwd_finish(ctx, s->fwd, &out, msg, sizeof msg)))
        return bt__step_fail(ops, job, s, st, msg, err, errlen);
    ops->keep(job, &out, 0, 0);
    bt_steps_free(s);
    return LS_OK;
}
