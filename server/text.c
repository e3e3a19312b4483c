/* Text routes: request -> tokens -> rows (prepare, uv pool), rows -> engine -> per-row
 * results (batch run, engine worker), results -> the protocol's answer (encode, uv pool).
 * The post-processing itself (pooling, softmax, labels, top-k, answer spans) is the
 * engine's (engine/pipeline.h); here it is fed arrays and its results become protocol structs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/chunk.h"
#include "../engine/pipeline.h"
#include "../proto/openai.h"
#include "text.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *txt__route_name(tei_kind k)
{
    static const char *const names[] = {"/embed",      "/embed_all",      "/v1/embeddings",
                                        "/predict",    "/token_classify", "/fill_mask",
                                        "/answer",     "/tokenize",       "/decode",
                                        "/similarity", "/rerank",         "/embed_sparse"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static int txt__head_for(tei_kind k)
{
    switch (k) {
    case TEI_EMBED:
    case TEI_EMBED_ALL:
    case TEI_OPENAI_EMBED:
    case TEI_SIMILARITY:
        return ENG_HEAD_BASE;
    case TEI_PREDICT:
    case TEI_RERANK:
        return ENG_HEAD_SEQCLS;
    case TEI_TOKCLS:
        return ENG_HEAD_TOKCLS;
    case TEI_FILL_MASK:
    case TEI_EMBED_SPARSE:
        return ENG_HEAD_MLM;
    case TEI_ANSWER:
        return ENG_HEAD_QA;
    default:
        return -1; /* any */
    }
}

int txt_model_named(const txt_model *m, const char *name)
{
    if (m->name && strcmp(m->name, name) == 0) return 1;
    for (int i = 0; i < m->naliases; i++)
        if (strcmp(m->aliases[i], name) == 0) return 1;
    return 0;
}

/* A model must have a tokenizer unless every input is token ids. */
static int txt__needs_tok(const tei_request *rq)
{
    if (rq->kind == TEI_DECODE) return 1;
    for (int i = 0; i < rq->n; i++)
        if (rq->in[i].text) return 1;
    return 0;
}

static ls_status txt__pick_model(txt_job *j, const txt_model *const *models, int nmodels,
                                 int any_name, char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    const int head = txt__head_for(rq->kind), tok = txt__needs_tok(rq);
    const char *route = txt__route_name(rq->kind);
    /* TEI answers /embed_sparse on a model without SPLADE pooling with 424 */
    const ls_status wrong_head =
        rq->kind == TEI_EMBED_SPARSE ? LS_ERR_NO_HEAD : LS_ERR_INVALID_INPUT;
    if (rq->model[0]) {
        for (int i = 0; i < nmodels; i++) {
            const txt_model *m = models[i];
            if (!txt_model_named(m, rq->model) && !(any_name && nmodels == 1)) continue;
            if (head >= 0 && (int)m->info->head != head)
                return ls_fail(err, errlen, wrong_head,
                               "model '%s' is a %s model; %s needs a %s model", m->name,
                               eng_head_task(m->info->head), route, eng_head_task((eng_head)head));
            if (tok && !m->tok)
                return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                               "model '%s' has no tokenizer.json: it serves token ids "
                               "(/v2/models/%s/infer) but not text",
                               m->name, m->name);
            j->m = m;
            return LS_OK;
        }
        return ls_fail(err, errlen, LS_ERR_NOT_FOUND, "model '%.100s' is not served here",
                       rq->model);
    }
    for (int i = 0; i < nmodels; i++) {
        const txt_model *m = models[i];
        if ((head < 0 || (int)m->info->head == head) && (!tok || m->tok)) {
            j->m = m;
            return LS_OK;
        }
    }
    return ls_fail(err, errlen, wrong_head,
                   "no model served here answers %s: it needs a %s model with a tokenizer.json",
                   route, eng_head_task((eng_head)head));
}

static void txt__header(txt_job *j, const char *name, long long v)
{
    size_t k = strlen(j->headers);
    snprintf(j->headers + k, sizeof j->headers - k, "%s: %lld\r\n", name, v);
}

/* How the job's rows attend (engine: eng_model_attention), into its echo and the
 * x-longserve-attention header: "<attention>[; window=W]; tokens=N; windows=K". Tokens are
 * the inputs' tokens each once: long_document windows overlap, and the overlap is compute,
 * not input. */
static void txt__attention(txt_job *j)
{
    const eng_model_info *info = j->m->info;
    int full = 0, other = 0;
    for (int k = 0; k < j->nrows; k++) {
        if (strcmp(eng_model_attention(info, (size_t)j->rows[k].n), "full") == 0)
            full++;
        else
            other++;
    }
    tei_echo *e = &j->echo;
    e->tokens = j->rq.ld_given ? e->tokens_in : e->tokens_used;
    const int sliding = other && strcmp(info->attention, "sliding_window") == 0;
    e->attention = !other ? "full" : full && sliding ? "full+sliding_window" : info->attention;
    e->attention_window = sliding ? info->max_window : 0;
    size_t k = strlen(j->headers);
    char win[32] = "";
    if (e->attention_window) snprintf(win, sizeof win, "; window=%d", e->attention_window);
    snprintf(j->headers + k, sizeof j->headers - k,
             "x-longserve-attention: %s%s; tokens=%lld; windows=%d\r\n", e->attention, win,
             e->tokens, e->windows);
}

static txt_row *txt__row_new(txt_job *j, int n, int input, int with_glob)
{
    txt_row *r = &j->rows[j->nrows];
    memset(r, 0, sizeof *r);
    size_t bytes = (size_t)n * (2 * sizeof(int32_t) + 1) + 1;
    char *mem = ls_arena_alloc(&j->arena, bytes);
    if (!mem) return NULL;
    r->ids = (int32_t *)mem;
    r->type_ids = r->ids + n;
    r->glob = with_glob ? (uint8_t *)(r->type_ids + n) : NULL;
    if (r->glob) memset(r->glob, 0, (size_t)n);
    r->n = n;
    r->input = input;
    r->mask_pos = -1;
    j->nrows++;
    return r;
}

/* ---- prepare: global attention ----------------------------------------------------------------
 */

/* Fills row r's explicit global mask from the request; 422 for positions outside the
 * row or more globals than the limit. */
static ls_status txt__global(const tei_request *rq, const txt_chunks *ck, txt_row *r,
                             int max_global, long long *count, char *err, size_t errlen)
{
    const int n = r->n;
    if (rq->ga_cls && n > 0) r->glob[0] = 1;
    for (int k = 0; rq->ga_chunk_starts && ck && k < ck->n; k++) { /* in this row's content */
        const int t = ck->c[k].t0;
        if (ck->c[k].t1 > t && t >= r->c0 && t < r->c0 + r->nc) r->glob[r->lead + t - r->c0] = 1;
    }
    for (int k = 0; k < rq->ga_nidx; k++) {
        if (rq->ga_idx[k] >= n)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "global_attention.token_indices[%d] = %d is outside the %d tokens of "
                           "input %d",
                           k, rq->ga_idx[k], n, r->input);
        r->glob[rq->ga_idx[k]] = 1;
    }
    for (int k = 0; k < rq->ga_nspans; k++) {
        int32_t s = rq->ga_spans[2 * k], e = rq->ga_spans[2 * k + 1];
        if (e > n)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "global_attention.spans[%d] = [%d, %d) is outside the %d tokens of "
                           "input %d",
                           k, s, e, n, r->input);
        memset(r->glob + s, 1, (size_t)(e - s));
    }
    int g = 0;
    for (int t = 0; t < n; t++)
        g += r->glob[t];
    if (g > max_global)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "too many global tokens: input %d asks for %d, the limit is %d "
                       "(--max-global-tokens)",
                       r->input, g, max_global);
    *count += g;
    return LS_OK;
}

/* ---- prepare: tokenize and build rows
 * ------------------------------------------------------------ */

/* The content tokens of an encoding: all but the *lead special tokens before them and the
 * *trail after them. */
static int txt__content(const tok_encoding *e, int *lead, int *trail)
{
    const int n = (int)e->n;
    *lead = *trail = 0;
    while (*lead < n && e->special_mask[*lead])
        (*lead)++;
    while (*trail < n - *lead && e->special_mask[n - 1 - *trail])
        (*trail)++;
    return n - *lead - *trail;
}

/* ---- prepare: chunks (late chunking) ------------------------------------------------------ */

/* Input i's chunks from the request: explicit spans (checked against the text's characters)
 * or a chunker, their content tokens, the bytes of their spans, and which ones truncation
 * cut (a second, untruncated tokenization tells, only when the input was truncated).
 * lead: special tokens before the content; content: the content tokens kept; left: the
 * truncation cut the text's start. */
static ls_status txt__chunk_input(txt_job *j, int i, const txt_limits *lim, int lead, int content,
                                  int left, char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    const tei_input *in = &rq->in[i];
    const tok_encoding *e = j->enc[i];
    if (!j->ck && !(j->ck = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *j->ck)))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    txt_chunks *ck = &j->ck[i];
    /* code point -> byte offset, [nchar + 1] */
    int32_t *at = ls_arena_alloc(&j->arena, (in->len + 1) * sizeof *at);
    int32_t *ts = ls_arena_alloc(&j->arena, ((size_t)content + 1) * sizeof *ts);
    int32_t *te = ls_arena_alloc(&j->arena, ((size_t)content + 1) * sizeof *te);
    if (!at || !ts || !te) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    int nchar = 0;
    for (size_t b = 0; b < in->len; b++)
        if (((unsigned char)in->text[b] & 0xC0) != 0x80) at[nchar++] = (int32_t)b;
    at[nchar] = (int32_t)in->len;
    for (int t = 0; t < content; t++)
        ts[t] = e->offsets[lead + t].char_start, te[t] = e->offsets[lead + t].char_end;
    int n = 0;
    switch (rq->ck_kind) {
    case TEI_CHUNKS_TOKENS:
        n = eng_chunk_by_tokens(ts, te, content, rq->ck_tokens, rq->ck_overlap, NULL, 0);
        break;
    case TEI_CHUNKS_SENTENCES:
        n = eng_chunk_by_sentences(in->text, in->len, rq->ck_sentences, NULL, 0);
        break;
    case TEI_CHUNKS_SEPARATOR:
        n = eng_chunk_by_separator(in->text, in->len, rq->ck_sep, rq->ck_seplen, NULL, 0);
        break;
    default:
        n = rq->ck_count[i];
        break;
    }
    long long total = n;
    for (int k = 0; k < i; k++)
        total += j->ck[k].n;
    if (total > lim->max_chunks)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "the request asks for %lld chunks (inputs 0..%d); the limit is %d "
                       "(--max-chunks)",
                       total, i, lim->max_chunks);
    ck->n = n;
    ck->c = ls_arena_calloc(&j->arena, (size_t)n + 1, sizeof *ck->c);
    ck->bstart = ls_arena_calloc(&j->arena, (size_t)n + 1, sizeof *ck->bstart);
    ck->bend = ls_arena_calloc(&j->arena, (size_t)n + 1, sizeof *ck->bend);
    ck->cut = ls_arena_calloc(&j->arena, (size_t)n + 1, 1);
    if (!ck->c || !ck->bstart || !ck->bend || !ck->cut)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    switch (rq->ck_kind) {
    case TEI_CHUNKS_TOKENS:
        eng_chunk_by_tokens(ts, te, content, rq->ck_tokens, rq->ck_overlap, ck->c, n);
        break;
    case TEI_CHUNKS_SENTENCES:
        eng_chunk_by_sentences(in->text, in->len, rq->ck_sentences, ck->c, n);
        break;
    case TEI_CHUNKS_SEPARATOR:
        eng_chunk_by_separator(in->text, in->len, rq->ck_sep, rq->ck_seplen, ck->c, n);
        break;
    default:
        for (int k = 0; k < n; k++) {
            const int32_t *sp = rq->ck_spans + 2 * (rq->ck_first[i] + k);
            if (sp[1] > nchar)
                return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                               "chunks[%d] = [%d, %d) is outside the %d characters (code points) "
                               "of input %d",
                               k, sp[0], sp[1], nchar, i);
            ck->c[k] = (eng_chunk){sp[0], sp[1], 0, 0};
        }
        break;
    }
    if (rq->ck_kind != TEI_CHUNKS_TOKENS) eng_chunk_tokens(ts, te, content, ck->c, n);
    for (int k = 0; k < n; k++)
        ck->bstart[k] = at[ck->c[k].start], ck->bend[k] = at[ck->c[k].end];
    if (e->n == e->n_untruncated || rq->ck_kind == TEI_CHUNKS_TOKENS) return LS_OK;
    /* truncated: the chunks' tokens in the whole text tell which ones lost some */
    tok_encode_params p = tok_encode_default_params();
    tok_encoding *full = NULL;
    char msg[256];
    ls_status st = tok_encode(j->m->tok, in->text, in->len, NULL, 0, &p, &full, msg, sizeof msg);
    if (st) return ls_fail(err, errlen, st, "input %d: %s", i, msg);
    int flead, ftrail;
    const int fcontent = txt__content(full, &flead, &ftrail);
    int32_t *fs = malloc(((size_t)fcontent + 1) * sizeof *fs);
    int32_t *fe = malloc(((size_t)fcontent + 1) * sizeof *fe);
    eng_chunk *fc = malloc(((size_t)n + 1) * sizeof *fc);
    if (fs && fe && fc) {
        for (int t = 0; t < fcontent; t++)
            fs[t] = full->offsets[flead + t].char_start, fe[t] = full->offsets[flead + t].char_end;
        memcpy(fc, ck->c, (size_t)n * sizeof *fc);
        eng_chunk_tokens(fs, fe, fcontent, fc, n);
        const int keep0 = left ? fcontent - content : 0;
        for (int k = 0; k < n; k++)
            ck->cut[k] = fc[k].t1 > fc[k].t0 && (fc[k].t0 < keep0 || fc[k].t1 > keep0 + content);
    } else {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    }
    free(fs), free(fe), free(fc);
    tok_encoding_free(full);
    return st;
}

/* Rows of input i when it is text. */
static ls_status txt__text_rows(txt_job *j, int i, const txt_limits *lim, long long max_seq,
                                char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    const tei_input *in = &rq->in[i];
    const int explicit_glob = rq->ga_given;
    tei_trunc tr = rq->truncate == TEI_TRUNC_DEFAULT
                       ? (lim->auto_truncate ? rq->direction : TEI_TRUNC_NONE)
                       : rq->truncate;
    if (rq->ld_given) tr = TEI_TRUNC_NONE; /* windows instead */
    tok_encode_params p = tok_encode_default_params();
    if (tr != TEI_TRUNC_NONE) {
        p.max_length = (int)max_seq;
        p.direction = tr == TEI_TRUNC_LEFT ? TOK_TRUNC_LEFT : TOK_TRUNC_RIGHT;
    }
    char msg[256];
    ls_status st = tok_encode(j->m->tok, in->text, in->len, in->pair, in->pair_len, &p, &j->enc[i],
                              msg, sizeof msg);
    if (st) return ls_fail(err, errlen, st, "input %d: %s", i, msg);
    const tok_encoding *e = j->enc[i];
    j->echo.tokens_in += (long long)e->n_untruncated;
    if (e->n != e->n_untruncated) j->echo.truncated = 1;
    if (!rq->ld_given && (long long)e->n > max_seq)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "input %d has %zu tokens; the model accepts at most %lld (send "
                       "\"truncate\": true or \"long_document\")",
                       i, e->n, max_seq);
    int lead, trail, n = (int)e->n;
    const int content = txt__content(e, &lead, &trail);
    if (rq->ck_kind != TEI_CHUNKS_NONE &&
        (st = txt__chunk_input(j, i, lim, lead, content, tr == TEI_TRUNC_LEFT, err, errlen)))
        return st;
    int C = n, S = n; /* content tokens per window and the step between windows */
    if (rq->ld_given) {
        if (rq->ld_window > max_seq)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "long_document.window %d is over the %lld tokens the model accepts",
                           rq->ld_window, max_seq);
        C = rq->ld_window - lead - trail;
        if (C < 1)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "long_document.window %d leaves no room beside the %d special tokens",
                           rq->ld_window, lead + trail);
        S = rq->ld_stride ? rq->ld_stride : (C + 1) / 2;
        if (S > C)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "long_document.stride %d is over the %d content tokens of a window "
                           "(window %d minus %d special tokens): text would be skipped",
                           S, C, rq->ld_window, lead + trail);
    }
    int nwin = content <= C ? 1 : 1 + (content - C + S - 1) / S;
    txt_row *grown = realloc(j->rows, (size_t)(j->nrows + nwin) * sizeof *grown);
    if (!grown) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    j->rows = grown;
    for (int w = 0; w < nwin; w++) {
        int c0 = w * S, c1 = c0 + C < content ? c0 + C : content;
        if (nwin == 1) c0 = 0, c1 = content;
        const int rn = lead + (c1 - c0) + trail;
        txt_row *r = txt__row_new(j, rn, i, explicit_glob);
        if (!r) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        r->lead = lead, r->c0 = c0, r->nc = c1 - c0;
        int k = 0;
        for (int t = 0; t < lead; t++, k++)
            r->ids[k] = e->ids[t], r->type_ids[k] = e->type_ids[t];
        for (int t = lead + c0; t < lead + c1; t++, k++)
            r->ids[k] = e->ids[t], r->type_ids[k] = e->type_ids[t];
        for (int t = n - trail; t < n; t++, k++)
            r->ids[k] = e->ids[t], r->type_ids[k] = e->type_ids[t];
        j->echo.tokens_used += rn;
        if (w == 0) r->skip = j->prompt_skip < rn ? j->prompt_skip : rn - 1; /* the prompt */
        if (explicit_glob && (st = txt__global(rq, j->ck ? &j->ck[i] : NULL, r, lim->max_global,
                                               &j->echo.global_tokens, err, errlen)))
            return st;
    }
    j->echo.windows += nwin;
    if (rq->kind == TEI_FILL_MASK) {
        txt_row *r = &j->rows[j->nrows - 1];
        const int32_t mask_id = j->m->info->mask_id;
        int nmask = 0;
        for (int t = 0; t < r->n; t++)
            if (r->ids[t] == mask_id) {
                if (!nmask++) r->mask_pos = t;
            }
        if (mask_id < 0 || nmask != 1)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input %d has %d mask tokens (%s); /fill_mask needs exactly one", i,
                           nmask, mask_id >= 0 ? tok_id_to_token(j->m->tok, mask_id) : "none");
    }
    return LS_OK;
}

/* The row of input i when it is token ids (no special tokens added, as OpenAI sends them). */
static ls_status txt__id_rows(txt_job *j, int i, const txt_limits *lim, long long max_seq,
                              char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    const tei_input *in = &rq->in[i];
    if (rq->ld_given || rq->ck_kind != TEI_CHUNKS_NONE)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "%s needs text inputs (input %d is token ids)",
                       rq->ld_given ? "long_document" : "chunks", i);
    for (size_t t = 0; t < in->nids; t++)
        if (in->ids[t] >= j->m->info->vocab_size)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input %d: token id %d at position %zu is outside the vocabulary "
                           "[0, %d)",
                           i, in->ids[t], t, j->m->info->vocab_size);
    tei_trunc tr = rq->truncate == TEI_TRUNC_DEFAULT
                       ? (lim->auto_truncate ? rq->direction : TEI_TRUNC_NONE)
                       : rq->truncate;
    size_t n = in->nids, off = 0;
    if ((long long)n > max_seq) {
        if (tr == TEI_TRUNC_NONE)
            return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                           "input %d has %zu tokens; the model accepts at most %lld (send "
                           "\"truncate\": true)",
                           i, n, max_seq);
        if (tr == TEI_TRUNC_LEFT) off = n - (size_t)max_seq;
        n = (size_t)max_seq;
        j->echo.truncated = 1;
    }
    txt_row *grown = realloc(j->rows, (size_t)(j->nrows + 1) * sizeof *grown);
    if (!grown) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    j->rows = grown;
    txt_row *r = txt__row_new(j, (int)n, i, rq->ga_given);
    if (!r) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    memcpy(r->ids, in->ids + off, n * sizeof *r->ids);
    memset(r->type_ids, 0, n * sizeof *r->type_ids);
    j->echo.tokens_in += (long long)in->nids;
    j->echo.tokens_used += (long long)n;
    j->echo.windows++;
    if (rq->ga_given)
        return txt__global(rq, NULL, r, lim->max_global, &j->echo.global_tokens, err, errlen);
    return LS_OK;
}

/* ---- prepare: /tokenize and /decode (no engine) -----------------------------------------------
 */

/* --max-input-tokens bounds /tokenize like the engine routes: without it a 2 MB body
 * gives a reply of a hundred megabytes (a JSON object per token). */
static ls_status txt__tokenize(txt_job *j, const txt_limits *lim, char **reply, size_t *reply_len,
                               char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    tei_token **lists = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *lists);
    int *counts = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *counts);
    ls_status st = lists && counts ? LS_OK : ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    tok_encode_params p = tok_encode_default_params();
    p.add_special_tokens = rq->add_special_tokens;
    for (int i = 0; !st && i < rq->n; i++) {
        char msg[256];
        const tei_input *in = &rq->in[i];
        if ((st = tok_encode(j->m->tok, in->text, in->len, NULL, 0, &p, &j->enc[i], msg,
                             sizeof msg))) {
            ls_fail(err, errlen, st, "input %d: %s", i, msg);
            break;
        }
        const tok_encoding *e = j->enc[i];
        if (e->n && !(lists[i] = ls_arena_calloc(&j->arena, e->n, sizeof *lists[i]))) {
            st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
            break;
        }
        counts[i] = (int)e->n;
        j->echo.tokens_in += (long long)e->n;
        if (j->echo.tokens_in > lim->max_input_tokens) {
            st = ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                         "the request has %lld tokens in inputs 0..%d; the limit is %lld "
                         "(--max-input-tokens)",
                         j->echo.tokens_in, i, lim->max_input_tokens);
            break;
        }
        for (size_t t = 0; t < e->n; t++) {
            tei_token *k = &lists[i][t];
            size_t tl;
            k->id = e->ids[t];
            k->token = tok_encoding_token(e, t, &tl);
            k->token_len = tl;
            k->special = e->special_mask[t];
            if (k->special) { /* TEI: the token's string, no offsets */
                k->text = k->token;
                k->text_len = tl;
                k->start = k->stop = k->char_start = k->char_end = -1;
            } else {
                const tok_offsets *o = &e->offsets[t];
                k->text = in->text + o->byte_start;
                k->text_len = (size_t)(o->byte_end - o->byte_start);
                k->start = o->byte_start;
                k->stop = o->byte_end;
                k->char_start = o->char_start;
                k->char_end = o->char_end;
            }
        }
    }
    if (!st &&
        !(*reply = tei_tokenize_encode((const tei_token *const *)lists, counts, rq->n, reply_len)))
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory encoding the response");
    return st;
}

static ls_status txt__decode(txt_job *j, char **reply, size_t *reply_len, char *err, size_t errlen)
{
    const tei_request *rq = &j->rq;
    char **texts = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *texts);
    ls_status st = texts ? LS_OK : ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < rq->n; i++) {
        char msg[256];
        if ((st = tok_decode(j->m->tok, rq->in[i].ids, rq->in[i].nids, rq->skip_special_tokens,
                             &texts[i], NULL, msg, sizeof msg)))
            ls_fail(err, errlen, st, "ids %d: %s", i, msg);
    }
    if (!st && !(*reply = tei_decode_encode(texts, rq->n, reply_len)))
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory encoding the response");
    for (int i = 0; texts && i < rq->n; i++)
        free(texts[i]); /* tok_decode's */
    return st;
}

/* ---- prepare: sentence-transformers prompts -----------------------------------------------------
 */

static int txt__takes_prompt(tei_kind k)
{
    return k == TEI_EMBED || k == TEI_OPENAI_EMBED || k == TEI_EMBED_ALL || k == TEI_EMBED_SPARSE ||
           k == TEI_SIMILARITY;
}

/* As sentence-transformers' encode(prompt_name=...): the prompt the request names (else the
 * model's default_prompt_name) is prepended to every text input; with the Pooling module's
 * include_prompt false, the prompt's tokens (those of the prompt tokenized alone, less a
 * trailing special token) are left out of the pooled tokens. 422 for a name the model does not
 * have, or a prompt with token-id inputs. */
static ls_status txt__prompt(txt_job *j, char *err, size_t errlen)
{
    tei_request *rq = &j->rq;
    const eng_model_info *info = j->m->info;
    const int named = rq->prompt_name[0] != 0;
    if (named && !txt__takes_prompt(rq->kind))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "`prompt_name` applies to /embed, /embed_all, /embed_sparse, "
                       "/similarity and /v1/embeddings");
    if (!txt__takes_prompt(rq->kind)) return LS_OK;
    int p = named ? -1 : info->default_prompt;
    for (int k = 0; named && k < info->nprompts; k++)
        if (strcmp(info->prompt_names[k], rq->prompt_name) == 0) p = k;
    if (named && p < 0) {
        char names[256] = "";
        for (int k = 0; k < info->nprompts; k++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s'%s'", k ? ", " : "",
                     info->prompt_names[k]);
        }
        return info->nprompts
                   ? ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                             "`prompt_name` '%s' is not one of model '%s' prompts (%s)",
                             rq->prompt_name, j->m->name, names)
                   : ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                             "model '%s' has no prompts (config_sentence_transformers.json): "
                             "`prompt_name` '%s' cannot apply",
                             j->m->name, rq->prompt_name);
    }
    if (p < 0) return LS_OK;
    /* chunk spans are character offsets into the text as sent: a prompt would shift them */
    if (rq->ck_kind != TEI_CHUNKS_NONE)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "`chunks` cannot be combined with a prompt (%s '%s' of model '%s')",
                       named ? "`prompt_name`" : "the default prompt", info->prompt_names[p],
                       j->m->name);
    const char *prompt = info->prompt_texts[p];
    const size_t plen = strlen(prompt);
    for (int i = 0; i < rq->n; i++) {
        tei_input *in = &rq->in[i];
        if (!in->text) {
            if (!named) continue; /* the default prompt applies to texts; ids are as sent */
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input %d is token ids: `prompt_name` needs text inputs", i);
        }
        char *t = malloc(plen + in->len + 1);
        if (!t) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        memcpy(t, prompt, plen);
        memcpy(t + plen, in->text, in->len + 1);
        free(in->text);
        in->text = t;
        in->len += plen;
    }
    if (info->include_prompt) return LS_OK;
    tok_encoding *e = NULL;
    char msg[256];
    const tok_encode_params tp = tok_encode_default_params(); /* with the special tokens */
    ls_status st = tok_encode(j->m->tok, prompt, plen, NULL, 0, &tp, &e, msg, sizeof msg);
    if (st) {
        tok_encoding_free(e);
        return ls_fail(err, errlen, st, "the prompt '%s': %s", info->prompt_names[p], msg);
    }
    j->prompt_skip = (int)e->n - (e->n && e->special_mask[e->n - 1]);
    tok_encoding_free(e);
    return LS_OK;
}

/* ---- prepare ----------------------------------------------------------------------------------
 */

static long long txt__nchunks(const txt_job *j)
{
    long long n = 0;
    for (int i = 0; j->ck && i < j->rq.n; i++)
        n += j->ck[i].n;
    return n;
}

ls_status txt_job_prepare(txt_job *j, tei_kind kind, const char *body, size_t len,
                          const txt_model *const *models, int nmodels, const txt_limits *lim,
                          char **reply, size_t *reply_len, char *err, size_t errlen)
{
    memset(j, 0, sizeof *j);
    *reply = NULL;
    ls_status st = tei_request_parse(kind, body, len, lim->max_inputs, &j->rq, err, errlen);
    if (st) return st;
    tei_request *rq = &j->rq;
    if ((st = txt__pick_model(j, models, nmodels, lim->any_model_name, err, errlen)) ||
        (st = txt__prompt(j, err, errlen)))
        return st;
    if (!(j->enc = calloc((size_t)rq->n, sizeof *j->enc)))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    if (kind == TEI_TOKENIZE) return txt__tokenize(j, lim, reply, reply_len, err, errlen);
    if (kind == TEI_DECODE) return txt__decode(j, reply, reply_len, err, errlen);

    if (rq->dimensions > j->m->info->hidden_size)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "`dimensions` %d is over the %d values of model '%s' embeddings",
                       rq->dimensions, j->m->info->hidden_size, j->m->name);
    if (rq->ld_given && kind != TEI_EMBED && kind != TEI_OPENAI_EMBED && kind != TEI_SIMILARITY)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "long_document applies to /embed, /v1/embeddings and /similarity (pooled "
                       "embeddings)");
    if (rq->ld_given && (rq->ga_nidx || rq->ga_nspans))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "global_attention.token_indices/spans cannot be combined with "
                       "long_document (positions would differ per window); \"cls\" can");
    if (rq->ga_chunk_starts && rq->ck_kind == TEI_CHUNKS_NONE)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "global_attention.chunk_starts needs \"chunks\"");
    long long max_seq = j->m->info->max_tokens;
    if (max_seq > lim->max_input_tokens) max_seq = lim->max_input_tokens;
    for (int i = 0; i < rq->n; i++) {
        st = rq->in[i].text ? txt__text_rows(j, i, lim, max_seq, err, errlen)
                            : txt__id_rows(j, i, lim, max_seq, err, errlen);
        if (st) return st;
    }
    if (j->echo.tokens_used > lim->max_input_tokens)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "the request has %lld tokens in all; the limit is %lld "
                       "(--max-input-tokens)",
                       j->echo.tokens_used, lim->max_input_tokens);
    txt__attention(j);
    txt__header(j, "x-compute-tokens", j->echo.tokens);
    txt__header(j, "x-tokens-in", j->echo.tokens_in);
    txt__header(j, "x-tokens-used", j->echo.tokens_used);
    txt__header(j, "x-truncated", j->echo.truncated);
    if (rq->ga_given) txt__header(j, "x-global-tokens", j->echo.global_tokens);
    if (rq->ld_given) txt__header(j, "x-long-document-windows", j->echo.windows);
    if (j->ck) txt__header(j, "x-chunks", txt__nchunks(j));
    if (rq->num_hashes) txt__header(j, "x-num-hashes", rq->num_hashes);
    if (rq->has_hash_seed) txt__header(j, "x-hash-seed", rq->hash_seed);
    return LS_OK;
}

void txt_job_free(txt_job *j)
{
    if (!j) return;
    for (int i = 0; j->enc && i < j->rq.n; i++)
        tok_encoding_free(j->enc[i]);
    free(j->enc);
    free(j->rows);
    bt_steps_free(&j->steps);
    ls_arena_free(&j->arena);
    tei_request_free(&j->rq);
    memset(j, 0, sizeof *j);
}

size_t txt_job_tokens(const txt_job *j)
{
    size_t n = 0;
    for (int i = 0; i < j->nrows; i++)
        n += (size_t)j->rows[i].n;
    return n;
}

int txt_job_explicit_global(const txt_job *j)
{
    return j->rq.ga_given;
}

/* ---- run: pack, forward, keep each row's part
 * ---------------------------------------------------- */

static eng_pooling txt__pooling(const txt_job *j)
{
    switch (j->rq.pooling) {
    case TEI_POOL_CLS:
        return ENG_POOL_CLS;
    case TEI_POOL_MEAN:
        return ENG_POOL_MEAN;
    case TEI_POOL_MAX:
        return ENG_POOL_MAX;
    default:
        return j->m->info->pooling;
    }
}

/* Row r's results from the batch outputs; tok0: its first token in the batch, seq: its
 * sequence index. */
static ls_status txt__keep(txt_job *j, txt_row *r, const eng_outputs *o, size_t tok0, size_t seq)
{
    const eng_model_info *info = j->m->info;
    const size_t n = (size_t)r->n;
    const eng_tensor *t;
    size_t count = 0;
    switch (j->rq.kind) {
    case TEI_EMBED:
    case TEI_OPENAI_EMBED:
    case TEI_SIMILARITY:
    case TEI_EMBED_ALL: {
        if (!(t = eng_outputs_find(o, ENG_OUT_LAST_HIDDEN_STATE))) break;
        const size_t H = (size_t)t->width;
        const float *x = t->data + tok0 * H; /* (n, H) */
        if (j->rq.kind == TEI_EMBED_ALL) {
            if (!(r->out = ls_arena_alloc(&j->arena, n * H * sizeof *r->out))) return LS_ERR_NOMEM;
            memcpy(r->out, x, n * H * sizeof *r->out);
            return LS_OK;
        }
        if (!(r->out = ls_arena_alloc(&j->arena, H * sizeof *r->out))) return LS_ERR_NOMEM;
        /* a prompt's tokens left out (include_prompt false) except for CLS pooling, as
         * sentence-transformers */
        const eng_pooling pool = txt__pooling(j);
        const size_t skip = pool == ENG_POOL_CLS ? 0 : (size_t)r->skip;
        eng_pipe_pool(x + skip * H, n - skip, H, pool, r->out);
        r->states = x; /* the chunks are pooled from it once every row is kept */
        return LS_OK;
    }
    case TEI_PREDICT:
    case TEI_RERANK:
        if (!(t = eng_outputs_find(o, ENG_OUT_LOGITS))) break;
        count = (size_t)info->num_labels;
        if (!(r->out = ls_arena_alloc(&j->arena, count * sizeof *r->out))) return LS_ERR_NOMEM;
        memcpy(r->out, t->data + seq * (size_t)t->width, count * sizeof *r->out);
        return LS_OK;
    case TEI_TOKCLS:
        if (!(t = eng_outputs_find(o, ENG_OUT_LOGITS))) break;
        count = n * (size_t)t->width;
        if (!(r->out = ls_arena_alloc(&j->arena, count * sizeof *r->out))) return LS_ERR_NOMEM;
        memcpy(r->out, t->data + tok0 * (size_t)t->width, count * sizeof *r->out);
        return LS_OK;
    case TEI_EMBED_SPARSE:
        if (!(t = eng_outputs_find(o, ENG_OUT_LOGITS))) break;
        count = (size_t)t->width;
        if (!(r->out = ls_arena_alloc(&j->arena, count * sizeof *r->out))) return LS_ERR_NOMEM;
        eng_pipe_splade(t->data + tok0 * count, n, count, r->out);
        return LS_OK;
    case TEI_FILL_MASK:
        if (!(t = eng_outputs_find(o, ENG_OUT_LOGITS))) break;
        count = (size_t)t->width;
        if (!(r->out = ls_arena_alloc(&j->arena, count * sizeof *r->out))) return LS_ERR_NOMEM;
        memcpy(r->out, t->data + (tok0 + (size_t)r->mask_pos) * count, count * sizeof *r->out);
        return LS_OK;
    case TEI_ANSWER: {
        const eng_tensor *s = eng_outputs_find(o, ENG_OUT_START_LOGITS),
                         *e = eng_outputs_find(o, ENG_OUT_END_LOGITS);
        if (!s || !e) break;
        if (!(r->out = ls_arena_alloc(&j->arena, 2 * n * sizeof *r->out))) return LS_ERR_NOMEM;
        memcpy(r->out, s->data + tok0, n * sizeof *r->out);
        memcpy(r->out + n, e->data + tok0, n * sizeof *r->out);
        return LS_OK;
    }
    default:
        break;
    }
    return LS_ERR_INTERNAL;
}

static int txt__nrows(const void *job)
{
    return ((const txt_job *)job)->nrows;
}

static void txt__row(const void *job, int i, bt_row *out)
{
    const txt_job *j = job;
    const txt_row *r = &j->rows[i];
    *out = (bt_row){.n = r->n,
                    .ids = r->ids,
                    .type_ids = r->type_ids,
                    .glob = r->glob,
                    .num_hashes = j->rq.num_hashes,
                    .has_hash_seed = j->rq.has_hash_seed,
                    .hash_seed = j->rq.hash_seed};
}

static void txt__reset(void *job)
{
    txt_job *j = job;
    j->st = LS_OK;
    j->err[0] = 0;
}

static void txt__fail(void *job, ls_status st, const char *msg)
{
    txt_job *j = job;
    j->st = st;
    snprintf(j->err, sizeof j->err, "%s", msg);
}

/* Input i's chunk vectors: each pooled over its tokens' states from the window where it is
 * most central (eng_chunk_window; a chunk no window holds whole takes each token from the
 * window where that token is most central), cut to `dimensions` and normalised as the
 * document vector. out[k].vec is NULL for a chunk without tokens. */
static ls_status txt__chunk_vectors(txt_job *j, int i, tei_chunk *out)
{
    const txt_chunks *ck = &j->ck[i];
    const int H = j->m->info->hidden_size, dim = j->rq.dimensions ? j->rq.dimensions : H;
    const int normalize = j->rq.normalize < 0 ? 1 : j->rq.normalize;
    int nwin = 0, ntok = 0, maxc = 1;
    for (int k = 0; k < j->nrows; k++)
        if (j->rows[k].input == i) nwin++;
    const txt_row **win = ls_arena_calloc(&j->arena, (size_t)nwin + 1, sizeof *win);
    int *c0 = ls_arena_calloc(&j->arena, (size_t)nwin + 1, sizeof *c0);
    int *c1 = ls_arena_calloc(&j->arena, (size_t)nwin + 1, sizeof *c1);
    if (!win || !c0 || !c1) return LS_ERR_NOMEM;
    nwin = 0;
    for (int k = 0; k < j->nrows; k++) {
        const txt_row *r = &j->rows[k];
        if (r->input != i) continue;
        win[nwin] = r, c0[nwin] = r->c0, c1[nwin] = r->c0 + r->nc;
        if (c1[nwin] > ntok) ntok = c1[nwin];
        nwin++;
    }
    for (int k = 0; k < ck->n; k++)
        if (ck->c[k].t1 - ck->c[k].t0 > maxc) maxc = ck->c[k].t1 - ck->c[k].t0;
    float *gather = ls_arena_alloc(&j->arena, (size_t)maxc * (size_t)H * sizeof *gather);
    if (!gather) return LS_ERR_NOMEM;
    for (int k = 0; k < ck->n; k++) {
        const eng_chunk *c = &ck->c[k];
        const int nt = c->t1 - c->t0;
        out[k] = (tei_chunk){.start = c->start,
                             .end = c->end,
                             .tokens = nt,
                             .truncated = ck->cut[k],
                             .text = j->rq.return_text ? j->rq.in[i].text + ck->bstart[k] : NULL,
                             .text_len = (size_t)(ck->bend[k] - ck->bstart[k])};
        if (nt == 0) continue;
        float *v = ls_arena_alloc(&j->arena, (size_t)H * sizeof *v);
        if (!v) return LS_ERR_NOMEM;
        const int w = eng_chunk_window(c0, c1, nwin, ntok, c->t0, c->t1);
        const float *x; /* (nt, H) */
        if (w >= 0) {
            x = win[w]->states + (size_t)(win[w]->lead + c->t0 - c0[w]) * (size_t)H;
        } else {
            for (int t = c->t0; t < c->t1; t++) {
                const int tw = eng_chunk_window(c0, c1, nwin, ntok, t, t + 1);
                memcpy(gather + (size_t)(t - c->t0) * (size_t)H,
                       win[tw]->states + (size_t)(win[tw]->lead + t - c0[tw]) * (size_t)H,
                       (size_t)H * sizeof *gather);
            }
            x = gather;
        }
        eng_pipe_pool(x, (size_t)nt, (size_t)H, txt__pooling(j), v);
        if (normalize) eng_pipe_l2_normalize(v, dim);
        out[k].vec = v;
    }
    return LS_OK;
}

/* Every input's chunks for the encoders (NULL when out of memory). */
static tei_chunk_list *txt__chunk_lists(txt_job *j)
{
    tei_chunk_list *l = ls_arena_calloc(&j->arena, (size_t)j->rq.n, sizeof *l);
    for (int i = 0; l && i < j->rq.n; i++) {
        tei_chunk *c = ls_arena_calloc(&j->arena, (size_t)j->ck[i].n + 1, sizeof *c);
        if (!c || txt__chunk_vectors(j, i, c)) return NULL;
        l[i] = (tei_chunk_list){c, j->ck[i].n};
    }
    return l;
}

static void txt__keep_rows(void *job, const eng_outputs *out, size_t tok0, size_t seq0)
{
    txt_job *j = job;
    size_t t = tok0, s = seq0;
    for (int k = 0; k < j->nrows; k++) {
        txt_row *r = &j->rows[k];
        ls_status rs = txt__keep(j, r, out, t, s);
        if (rs && !j->st)
            j->st = ls_fail(j->err, sizeof j->err, rs, "keeping the results of row %d: %s", k,
                            ls_strerror(rs));
        t += (size_t)r->n;
        s++;
    }
    /* every row of the job is in this batch's outputs: pool the chunks now, so that no
     * token states outlive the batch */
    if (j->ck && !j->st && !(j->cklists = txt__chunk_lists(j)))
        j->st = ls_fail(j->err, sizeof j->err, LS_ERR_NOMEM, "out of memory pooling the chunks");
    for (int k = 0; k < j->nrows; k++)
        j->rows[k].states = NULL;
}

static const bt_ops txt__ops = {.nrows = txt__nrows,
                                .row = txt__row,
                                .reset = txt__reset,
                                .keep = txt__keep_rows,
                                .fail = txt__fail};

ls_status txt_batch_run(eng_ctx *ctx, txt_job *const *jobs, int n, bt_stats *stats, char *err,
                        size_t errlen)
{
    return bt_run(ctx, &txt__ops, (void *const *)jobs, n, stats, err, errlen);
}

ls_status txt_job_step(eng_ctx *ctx, txt_job *j, bt_stats *stats, char *err, size_t errlen)
{
    return bt_step(ctx, &txt__ops, j, &j->steps, stats, err, errlen);
}

/* ---- encode: post-processing and the protocol's answer
 * --------------------------------------------- */

/* Per input: its windows' pooled vectors aggregated, cut to the first `dimensions` values
 * when asked (sentence-transformers' truncate_dim, OpenAI's dimensions), then L2-normalised
 * when asked. vecs[i] points into the returned block. */
static float *txt__embeddings(txt_job *j, const float **vecs)
{
    const int H = j->m->info->hidden_size, n = j->rq.n;
    float *all = ls_arena_calloc(&j->arena, (size_t)n * (size_t)H, sizeof *all);
    const float **wv = ls_arena_calloc(&j->arena, (size_t)j->nrows + 1, sizeof *wv); /* windows */
    int *wn = ls_arena_calloc(&j->arena, (size_t)j->nrows + 1, sizeof *wn);
    const int normalize = j->rq.normalize < 0 ? 1 : j->rq.normalize;
    for (int i = 0; all && wv && wn && i < n; i++) {
        int nwin = 0;
        for (int k = 0; k < j->nrows; k++)
            if (j->rows[k].input == i) wv[nwin] = j->rows[k].out, wn[nwin++] = j->rows[k].n;
        float *v = all + (size_t)i * (size_t)H;
        eng_pipe_windows(wv, wn, nwin, H, v);
        if (normalize) eng_pipe_l2_normalize(v, j->rq.dimensions ? j->rq.dimensions : H);
        vecs[i] = v;
    }
    return wv && wn ? all : NULL;
}

static int txt__fn(const tei_request *rq)
{
    switch (rq->fn) {
    case TEI_FN_NONE:
        return ENG_PIPE_FN_NONE;
    case TEI_FN_SIGMOID:
        return ENG_PIPE_FN_SIGMOID;
    case TEI_FN_SOFTMAX:
        return ENG_PIPE_FN_SOFTMAX;
    default:
        return rq->raw_scores ? ENG_PIPE_FN_NONE : ENG_PIPE_FN_DEFAULT;
    }
}

static char *txt__predict(txt_job *j, size_t *len)
{
    const eng_model_info *info = j->m->info;
    const int L = info->num_labels, n = j->rq.n;
    tei_score **lists = ls_arena_calloc(&j->arena, (size_t)n, sizeof *lists);
    int *counts = ls_arena_calloc(&j->arena, (size_t)n, sizeof *counts);
    char(*names)[24] = ls_arena_calloc(&j->arena, (size_t)L, sizeof *names);
    eng_pipe_score *sc = ls_arena_calloc(&j->arena, (size_t)L, sizeof *sc);
    char *body = NULL;
    int ok = lists && counts && names && sc;
    for (int i = 0; ok && i < n; i++) {
        if (eng_pipe_classify(j->rows[i].out, L, txt__fn(&j->rq), sc, NULL, 0) ||
            !(lists[i] = ls_arena_calloc(&j->arena, (size_t)L, sizeof *lists[i])))
            ok = 0;
        for (int k = 0; ok && k < L; k++) {
            const int l = sc[k].label;
            lists[i][k] =
                (tei_score){eng_model_label(info, l, names[l], sizeof names[l]), sc[k].score};
        }
        counts[i] = j->rq.top_k && j->rq.top_k < L ? j->rq.top_k : L;
    }
    /* Hugging Face's Inference API (a body with "parameters") answers a list per input */
    if (ok)
        body = tei_predict_encode((const tei_score *const *)lists, counts, n,
                                  j->rq.batched || j->rq.hf_params, len);
    return body;
}

/* A cross-encoder's score of each (query, text) pair, best first (ties by index, as a
 * stable sort): with one label its sigmoid (raw_scores: its logit), as TEI; with more, the
 * last label's softmax probability (raw_scores: its logit), the "relevant" class of
 * two-label cross-encoders. */
static char *txt__rerank(txt_job *j, size_t *len)
{
    const int L = j->m->info->num_labels, n = j->rq.n;
    tei_rank *ranks = ls_arena_calloc(&j->arena, (size_t)n, sizeof *ranks);
    eng_pipe_score *sc = ls_arena_calloc(&j->arena, (size_t)L, sizeof *sc);
    if (!ranks || !sc) return NULL;
    for (int i = 0; i < n; i++) {
        if (eng_pipe_classify(j->rows[i].out, L,
                              j->rq.raw_scores ? ENG_PIPE_FN_NONE : ENG_PIPE_FN_DEFAULT, sc, NULL,
                              0))
            return NULL;
        float score = 0;
        for (int k = 0; k < L; k++)
            if (sc[k].label == L - 1) score = sc[k].score;
        ranks[i] = (tei_rank){i, score, j->rq.return_text ? j->rq.in[i].pair : NULL};
    }
    for (int i = 1; i < n; i++) /* insertion sort: stable, n is a client batch */
        for (int k = i; k > 0 && ranks[k].score > ranks[k - 1].score; k--) {
            tei_rank t = ranks[k];
            ranks[k] = ranks[k - 1];
            ranks[k - 1] = t;
        }
    return tei_rerank_encode(ranks, n, len);
}

static char *txt__tokcls(txt_job *j, size_t *len)
{
    const eng_model_info *info = j->m->info;
    const int L = info->num_labels, n = j->rq.n;
    tei_entity **lists = ls_arena_calloc(&j->arena, (size_t)n, sizeof *lists);
    int *counts = ls_arena_calloc(&j->arena, (size_t)n, sizeof *counts);
    char(*names)[24] = ls_arena_calloc(&j->arena, (size_t)L, sizeof *names);
    const char **label = ls_arena_calloc(&j->arena, (size_t)L, sizeof *label);
    uint8_t *ignore = ls_arena_calloc(&j->arena, (size_t)L, 1); /* [L] 1: ignored label */
    char *body = NULL;
    int ok = lists && counts && names && label && ignore;
    for (int k = 0; ok && k < L; k++) {
        label[k] = eng_model_label(info, k, names[k], sizeof names[k]);
        for (int g = 0; g < j->rq.nignore; g++)
            ignore[k] |= strcmp(j->rq.ignore_labels[g], label[k]) == 0;
    }
    for (int i = 0; ok && i < n; i++) {
        const tok_encoding *e = j->enc[i];
        const txt_row *r = &j->rows[i];
        eng_pipe_entity *ents = ls_arena_calloc(&j->arena, (size_t)r->n + 1, sizeof *ents);
        if (!ents || !(lists[i] = ls_arena_calloc(&j->arena, (size_t)r->n + 1, sizeof *lists[i])) ||
            eng_pipe_token_classify(r->out, r->n, L, e->special_mask, ignore, ents, &counts[i],
                                    NULL, 0))
            ok = 0;
        for (int k = 0; ok && k < counts[i]; k++) {
            const int t = ents[k].index;
            size_t wl;
            const char *w = tok_encoding_token(e, (size_t)t, &wl);
            lists[i][k] = (tei_entity){label[ents[k].label],     ents[k].score,         t, w, wl,
                                       e->offsets[t].char_start, e->offsets[t].char_end};
        }
    }
    if (ok)
        body = tei_tokcls_encode((const tei_entity *const *)lists, counts, n, j->rq.batched, len);
    return body;
}

static char *txt__fill(txt_job *j, size_t *len)
{
    const int V = j->m->info->vocab_size, n = j->rq.n, K = j->rq.top_k < V ? j->rq.top_k : V;
    tei_fill **lists = ls_arena_calloc(&j->arena, (size_t)n, sizeof *lists);
    int *counts = ls_arena_calloc(&j->arena, (size_t)n, sizeof *counts);
    char **strs = ls_arena_calloc(&j->arena, (size_t)n * (size_t)K * 2, sizeof *strs);
    int32_t *ids = ls_arena_calloc(&j->arena, (size_t)K + 1, sizeof *ids);
    float *scores = ls_arena_calloc(&j->arena, (size_t)K + 1, sizeof *scores);
    char *body = NULL;
    int ok = lists && counts && strs && ids && scores;
    for (int i = 0; ok && i < n; i++) {
        txt_row *r = &j->rows[i];
        int found = 0;
        if (!(lists[i] = ls_arena_calloc(&j->arena, (size_t)K + 1, sizeof *lists[i])) ||
            eng_pipe_top_k(r->out, V, K, ids, scores, &found, NULL, 0))
            ok = 0;
        for (int k = 0; ok && k < found; k++) {
            const int32_t saved = r->ids[r->mask_pos];
            char msg[128];
            char **ts = &strs[((size_t)i * (size_t)K + (size_t)k) * 2];
            r->ids[r->mask_pos] = ids[k];
            /* as the pipeline: token_str = decode([id]); sequence = decode(ids with the mask
             * replaced, skipping special tokens) */
            if (tok_decode(j->m->tok, &r->ids[r->mask_pos], 1, 0, &ts[0], NULL, msg, sizeof msg) ||
                tok_decode(j->m->tok, r->ids, (size_t)r->n, 1, &ts[1], NULL, msg, sizeof msg))
                ok = 0;
            r->ids[r->mask_pos] = saved;
            if (ok) lists[i][k] = (tei_fill){scores[k], ids[k], ts[0], ts[1]};
            counts[i]++;
        }
    }
    if (ok) body = tei_fill_encode((const tei_fill *const *)lists, counts, n, j->rq.batched, len);
    for (size_t k = 0; strs && k < (size_t)n * (size_t)K * 2; k++)
        free(strs[k]); /* tok_decode's */
    return body;
}

/* The QA pipeline's answer (eng_pipe_answer) as the context's text and characters. */
static char *txt__answer(txt_job *j, size_t *len)
{
    const txt_row *r = &j->rows[0];
    const tok_encoding *e = j->enc[0];
    const int n = r->n;
    eng_pipe_span a;
    if (eng_pipe_answer(r->out, r->out + n, e->sequence_ids, n, j->rq.max_answer_len, &a, NULL, 0))
        return NULL;
    if (a.start < 0) return tei_answer_encode("", 0, 0, 0, 0, &j->echo, len);
    const tok_offsets *s = &e->offsets[a.start], *t = &e->offsets[a.end];
    return tei_answer_encode(j->rq.in[0].pair + s->byte_start,
                             (size_t)(t->byte_end - s->byte_start), a.score, s->char_start,
                             t->char_end, &j->echo, len);
}

char *txt_job_encode(txt_job *j, size_t *len)
{
    char *body = NULL;
    const tei_request *rq = &j->rq;
    switch (rq->kind) {
    case TEI_EMBED:
    case TEI_OPENAI_EMBED: {
        const float **vecs = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *vecs);
        float *all = vecs ? txt__embeddings(j, vecs) : NULL;
        const int dim = rq->dimensions ? rq->dimensions : j->m->info->hidden_size;
        const tei_chunk_list *ck = j->cklists;
        if (all && rq->kind == TEI_EMBED)
            body = ck ? tei_embed_chunks_encode(vecs, ck, rq->n, dim, len)
                      : tei_embed_encode(vecs, rq->n, dim, len);
        else if (all)
            body = oai_embeddings_chunks_encode(vecs, ck, rq->n, dim, rq->base64,
                                                rq->model[0] ? rq->model : j->m->name,
                                                j->echo.tokens, &j->echo, len);
        break;
    }
    case TEI_SIMILARITY: { /* cosine of the source's embedding with each sentence's */
        const float **vecs = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *vecs);
        float *sim = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *sim);
        if (vecs && sim && txt__embeddings(j, vecs)) {
            for (int i = 1; i < rq->n; i++)
                sim[i - 1] = eng_pipe_cosine(vecs[0], vecs[i], j->m->info->hidden_size);
            body = tei_similarity_encode(sim, rq->n - 1, len);
        }
        break;
    }
    case TEI_RERANK:
        body = txt__rerank(j, len);
        break;
    case TEI_EMBED_ALL: {
        const float **rows = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *rows);
        int *ntok = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *ntok);
        if (rows && ntok) {
            for (int k = 0; k < j->nrows; k++) {
                rows[j->rows[k].input] = j->rows[k].out;
                ntok[j->rows[k].input] = j->rows[k].n;
            }
            body = tei_embed_all_encode(rows, ntok, rq->n, j->m->info->hidden_size, len);
        }
        break;
    }
    case TEI_EMBED_SPARSE: {
        const float **vecs = ls_arena_calloc(&j->arena, (size_t)rq->n, sizeof *vecs);
        for (int k = 0; vecs && k < j->nrows; k++)
            vecs[j->rows[k].input] = j->rows[k].out;
        if (vecs) body = tei_embed_sparse_encode(vecs, rq->n, j->m->info->vocab_size, len);
        break;
    }
    case TEI_PREDICT:
        body = txt__predict(j, len);
        break;
    case TEI_TOKCLS:
        body = txt__tokcls(j, len);
        break;
    case TEI_FILL_MASK:
        body = txt__fill(j, len);
        break;
    case TEI_ANSWER:
        body = txt__answer(j, len);
        break;
    default:
        break;
    }
    if (!body)
        j->st = ls_fail(j->err, sizeof j->err, LS_ERR_NOMEM, "out of memory encoding the response");
    return body;
}
