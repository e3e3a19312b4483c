/* Model loading: config.json → hf_config → checks → weights copied to float32 buffers
 * owned by the model (F32/F16/BF16 on disk; q/k/v fused into one matrix per layer).
 * Every tensor is looked up by its Hugging Face name with the checkpoint's prefix. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "../common/file.h"
#include "../formats/sbert.h"
#include "../tokenizer/tokenizer.h"
#include "model.h"
#include "safetensors.h"

eng_model_params eng_model_default_params(void)
{
    return (eng_model_params){
        .window = 512, .full_attention = -1, .backend = "cpu", .dtype = "float32", .threads = 0};
}

const char *eng_pooling_name(eng_pooling p)
{
    static const char *const names[] = {"cls", "mean", "max", "mean_sqrt_len"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

const char *eng_head_task(eng_head h)
{
    switch (h) {
    case ENG_HEAD_BASE:
        return "feature-extraction";
    case ENG_HEAD_MLM:
        return "fill-mask";
    case ENG_HEAD_SEQCLS:
        return "text-classification";
    case ENG_HEAD_TOKCLS:
        return "token-classification";
    case ENG_HEAD_QA:
        return "question-answering";
    }
    return "unknown";
}

typedef struct {
    eng_model *m;
    const char *dir;
    char prefix[32]; /* "longformer.", "roberta.", "bert." or "" */
    char *err;
    size_t errlen;
} eng__loader;

static void *eng__alloc(eng_model *m, size_t bytes)
{
    void **na = realloc(m->allocs, (m->nallocs + 1) * sizeof *na);
    if (!na) return NULL;
    m->allocs = na;
    void *p = malloc(bytes ? bytes : 1);
    if (p) m->allocs[m->nallocs++] = p;
    return p;
}

static int eng__find(eng__loader *ld, const char *name, st_tensor *t)
{
    if (st_model_find(&ld->m->st, name, t) == 0) return 0;
    /* very old checkpoints call LayerNorm parameters gamma/beta */
    size_t n = strlen(name);
    char alt[256];
    if (n > 7 && n < sizeof alt && strcmp(name + n - 7, ".weight") == 0 &&
        strstr(name, "LayerNorm")) {
        snprintf(alt, sizeof alt, "%.*s.gamma", (int)(n - 7), name);
        return st_model_find(&ld->m->st, alt, t);
    }
    if (n > 5 && n < sizeof alt && strcmp(name + n - 5, ".bias") == 0 &&
        strstr(name, "LayerNorm")) {
        snprintf(alt, sizeof alt, "%.*s.beta", (int)(n - 5), name);
        return st_model_find(&ld->m->st, alt, t);
    }
    return -1;
}

/* Loads tensor `name` (printf-style) with the given shape into dst (which must hold it).
 * Missing tensors are an error when `required`, else return LS_ERR_UNSUPPORTED quietly. */
static ls_status eng__load_into(eng__loader *ld, float *dst, int required, int64_t d0, int64_t d1,
                                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static ls_status eng__load_into(eng__loader *ld, float *dst, int required, int64_t d0, int64_t d1,
                                const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    st_tensor t;
    if (eng__find(ld, name, &t) != 0) {
        if (!required) return LS_ERR_UNSUPPORTED;
        return ls_fail(ld->err, ld->errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s' not found in the checkpoint (model_type %s, "
                       "architecture %s)",
                       ld->dir, name, ld->m->cfg.model_type, ld->m->cfg.architecture);
    }
    int64_t shape[2] = {d0, d1};
    return st_tensor_to_f32(&t, shape, d1 ? 2 : 1, dst, ld->err, ld->errlen);
}

/* One tensor: F32 weights are used in place in the mapping, others converted into a
 * buffer the model owns. *out stays NULL when optional and absent. */
static ls_status eng__load(eng__loader *ld, float **out, int required, int64_t d0, int64_t d1,
                           const char *name)
{
    *out = NULL;
    char full[256];
    snprintf(full, sizeof full, "%s%s", name[0] == '/' ? "" : ld->prefix,
             name[0] == '/' ? name + 1 : name);
    st_tensor t;
    if (eng__find(ld, full, &t) == 0) {
        int64_t shape[2] = {d0, d1};
        ls_status st = st_tensor_check_shape(&t, shape, d1 ? 2 : 1, ld->err, ld->errlen);
        if (st) return st; /* before any allocation sized by the config */
        if (st_tensor_f32_view(&t)) {
            *out = (float *)st_tensor_f32_view(&t); /* read-only by convention */
            return LS_OK;
        }
    }
    float *p = eng__alloc(ld->m, sizeof(float) * (size_t)d0 * (size_t)(d1 ? d1 : 1));
    if (!p) return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", ld->dir);
    ls_status st = eng__load_into(ld, p, required, d0, d1, "%s", full);
    if (st == LS_OK) *out = p;
    return st == LS_ERR_UNSUPPORTED && !required ? LS_OK : st;
}

static int eng__gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Reformer's config (hf-semantics B1, B2, B8): sizes, chunking, buckets, axial shape, head. */
static ls_status eng__check_reformer(eng__loader *ld)
{
    eng_model *m = ld->m;
    hf_config *c = &m->cfg;
    const hf_reformer *r = &c->reformer;
    const char *f = ld->dir;
    m->fam = ENG_FAM_REFORMER;
    if (c->hidden_size <= 0 || c->hidden_size > 65536 || c->num_attention_heads <= 0 ||
        c->num_attention_heads > 1024 || r->head_size <= 0 || r->head_size > 4096 ||
        r->feed_forward_size <= 0 || r->feed_forward_size > 262144 || c->vocab_size <= 0 ||
        c->vocab_size > 4000000 || c->max_position_embeddings <= 0 ||
        c->max_position_embeddings > 1 << 24)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: sizes out of range (hidden %d, heads %d, head size %d, "
                       "feed-forward %d, vocab %d, positions %d)",
                       f, c->hidden_size, c->num_attention_heads, r->head_size,
                       r->feed_forward_size, c->vocab_size, c->max_position_embeddings);
    if (strcmp(c->hidden_act, "relu") && strcmp(c->hidden_act, "gelu"))
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: hidden_act \"%s\" is not supported (relu, gelu)", f,
                       c->hidden_act);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: layer_norm_eps %g out of range", f, c->layer_norm_eps);
    if (r->lsh_chunk <= 0 || r->local_chunk <= 0 || r->lsh_chunk > 1 << 16 ||
        r->local_chunk > 1 << 16 || r->lsh_before < 0 || r->lsh_after < 0 || r->local_before < 0 ||
        r->local_after < 0 || r->lsh_before + r->lsh_after > 64 ||
        r->local_before + r->local_after > 64)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: chunk lengths must be positive and chunks before/after "
                       "non-negative (lsh %d %d/%d, local %d %d/%d)",
                       f, r->lsh_chunk, r->lsh_before, r->lsh_after, r->local_chunk,
                       r->local_before, r->local_after);
    if (r->num_hashes < 1 || r->num_hashes > 64)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: num_hashes %d out of range [1, 64]", f, r->num_hashes);
    for (int i = 0; i < r->n_buckets; i++)
        if (r->num_buckets[i] < 2 || r->num_buckets[i] % 2 || r->num_buckets[i] > 1 << 16)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s/config.json: num_buckets entries must be even and >= 2 (got %d)", f,
                           r->num_buckets[i]);
    m->H = c->hidden_size;
    m->nh = c->num_attention_heads;
    m->d = r->head_size;
    m->A = m->nh * m->d;
    m->I = r->feed_forward_size;
    m->L = c->num_hidden_layers;
    m->V = c->vocab_size;
    int any_lsh = 0, any_local = 0;
    for (int l = 0; l < m->L; l++)
        r->lsh[l] ? (any_lsh = 1) : (any_local = 1);
    const int a = r->lsh_chunk, b = r->local_chunk;
    m->rf_lcm = !any_local ? a : !any_lsh ? b : a / eng__gcd(a, b) * b;
    m->rf_min = !any_local ? a : !any_lsh ? b : (a < b ? a : b);
    long long limit = c->max_position_embeddings;
    if (r->axial) {
        long long prod = 1;
        int dims = 0;
        for (int k = 0; k < r->n_axes; k++) {
            if (r->axial_shape[k] <= 0 || r->axial_dim[k] <= 0)
                return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                               "%s/config.json: axial_pos_shape and axial_pos_embds_dim must be "
                               "positive",
                               f);
            prod *= r->axial_shape[k];
            dims += r->axial_dim[k];
            if (prod > 1 << 24) prod = 1 << 24;
        }
        if (dims != m->H)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s/config.json: axial_pos_embds_dim sums to %d, hidden_size is %d", f,
                           dims, m->H);
        if (prod < limit) limit = prod;
    }
    /* the longest input whose padded length fits the positions (B2) */
    long long mt = limit / m->rf_lcm * m->rf_lcm;
    if (mt < m->rf_min && limit >= m->rf_min) mt = m->rf_min;
    if (mt < limit && limit <= m->rf_min) mt = limit;
    m->max_tokens = (int)mt;
    if (m->max_tokens <= 0)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: %lld positions leave no room for one chunk", f, limit);
    const char *arch = c->architecture;
    if (!*arch || strcmp(arch, "ReformerModel") == 0)
        m->head = ENG_HEAD_BASE;
    else if (strcmp(arch, "ReformerModelWithLMHead") == 0 ||
             strcmp(arch, "ReformerForMaskedLM") == 0)
        m->head = ENG_HEAD_MLM;
    else if (strcmp(arch, "ReformerForSequenceClassification") == 0)
        m->head = ENG_HEAD_SEQCLS;
    else if (strcmp(arch, "ReformerForQuestionAnswering") == 0)
        m->head = ENG_HEAD_QA;
    else
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: architecture %s is not supported", f, arch);
    m->rf = calloc((size_t)m->L, sizeof *m->rf);
    if (!m->rf) return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", f);
    for (int l = 0; l < m->L; l++)
        m->rf[l].lsh = r->lsh[l];
    return LS_OK;
}

static ls_status eng__check_config(eng__loader *ld, const eng_model_params *p)
{
    eng_model *m = ld->m;
    hf_config *c = &m->cfg;
    const char *f = ld->dir;
    if (strcmp(c->model_type, "longformer") == 0)
        m->fam = ENG_FAM_LONGFORMER;
    else if (strcmp(c->model_type, "roberta") == 0)
        m->fam = ENG_FAM_ROBERTA;
    else if (strcmp(c->model_type, "bert") == 0)
        m->fam = ENG_FAM_BERT;
    else if (strcmp(c->model_type, "reformer") == 0)
        return eng__check_reformer(ld);
    else
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: model_type \"%s\" is not served by this engine "
                       "(longformer, bert, roberta)",
                       f, c->model_type);
    if (c->hidden_size <= 0 || c->num_attention_heads <= 0 ||
        c->hidden_size % c->num_attention_heads || c->num_hidden_layers <= 0 ||
        c->num_hidden_layers > HF_MAX_LAYERS || c->intermediate_size <= 0 || c->vocab_size <= 0 ||
        c->max_position_embeddings <= 0 || c->type_vocab_size <= 0 || c->hidden_size > 65536 ||
        c->intermediate_size > 262144 || c->vocab_size > 4000000 ||
        c->max_position_embeddings > 1 << 22 || c->type_vocab_size > 1024)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: sizes out of range (hidden %d, heads %d, layers %d, "
                       "intermediate %d, vocab %d, positions %d, types %d)",
                       f, c->hidden_size, c->num_attention_heads, c->num_hidden_layers,
                       c->intermediate_size, c->vocab_size, c->max_position_embeddings,
                       c->type_vocab_size);
    if (strcmp(c->hidden_act, "gelu") != 0)
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: hidden_act \"%s\" is not supported (gelu)", f,
                       c->hidden_act);
    if (strcmp(c->position_embedding_type, "absolute") != 0)
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: position_embedding_type \"%s\" is not supported", f,
                       c->position_embedding_type);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: layer_norm_eps %g out of range", f, c->layer_norm_eps);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                       "%s/config.json: pad_token_id %d outside the vocabulary", f,
                       c->pad_token_id);

    m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    if (!m->layers) return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", f);
    m->H = c->hidden_size;
    m->I = c->intermediate_size;
    m->nh = c->num_attention_heads;
    m->d = m->H / m->nh;
    m->L = c->num_hidden_layers;
    m->V = c->vocab_size;

    /* windows: Longformer from config.json, per layer; others from the parameter */
    int maxw = 0;
    for (int l = 0; l < m->L; l++) {
        int w;
        if (m->fam == ENG_FAM_LONGFORMER) {
            if (c->n_attention_window == 0)
                w = 512;
            else if (c->n_attention_window == 1)
                w = c->attention_window[0];
            else if (c->n_attention_window != m->L)
                return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                               "%s/config.json: attention_window has %d entries for %d layers", f,
                               c->n_attention_window, m->L);
            else
                w = c->attention_window[l];
        } else {
            w = p->window;
        }
        if (w <= 0 || w % 2 || w > 1 << 22)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           m->fam == ENG_FAM_LONGFORMER
                               ? "%s/config.json: attention_window %d of layer %d must be even "
                                 "and positive"
                               : "%s: attention window %d (--window) of layer %d must be even "
                                 "and positive",
                           f, w, l);
        m->layers[l].window = w;
        if (w > maxw) maxw = w;
    }
    /* Hugging Face pads to the largest window and requires it to be a multiple of every
     * layer's window; a config that breaks this cannot run there, so it is refused. */
    for (int l = 0; l < m->L; l++)
        if (maxw % m->layers[l].window)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s/config.json: layer %d window %d does not divide the largest "
                           "window %d",
                           f, l, m->layers[l].window, maxw);

    /* head from the architecture */
    const char *a = c->architecture;
    const char *suffix = strstr(a, "For");
    if (!*a || !suffix)
        m->head = ENG_HEAD_BASE;
    else if (strcmp(suffix, "ForMaskedLM") == 0)
        m->head = ENG_HEAD_MLM;
    else if (strcmp(suffix, "ForSequenceClassification") == 0)
        m->head = ENG_HEAD_SEQCLS;
    else if (strcmp(suffix, "ForTokenClassification") == 0)
        m->head = ENG_HEAD_TOKCLS;
    else if (strcmp(suffix, "ForQuestionAnswering") == 0)
        m->head = ENG_HEAD_QA;
    else
        return ls_fail(ld->err, ld->errlen, LS_ERR_UNSUPPORTED,
                       "%s/config.json: architecture %s is not supported", f, a);

    /* Longest input: Longformer/RoBERTa positions start at pad+1, so max_pos - pad - 1
     * real tokens; BERT/RoBERTa served long reuse their table, limited only by memory. */
    if (m->fam == ENG_FAM_LONGFORMER) {
        m->max_tokens = c->max_position_embeddings - c->pad_token_id - 1;
        if (m->max_tokens <= 0)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s/config.json: max_position_embeddings %d leaves no positions", f,
                           c->max_position_embeddings);
    } else {
        m->tile_positions = 1;
        m->max_tokens = 1 << 20;
        if (m->fam == ENG_FAM_ROBERTA && c->max_position_embeddings <= c->pad_token_id + 1)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s/config.json: max_position_embeddings %d leaves no positions", f,
                           c->max_position_embeddings);
        /* the trained length: RoBERTa's positions start at pad + 1 (HF's
         * create_position_ids_from_input_ids), BERT's at 0 */
        const int trained = m->fam == ENG_FAM_ROBERTA
                                ? c->max_position_embeddings - c->pad_token_id - 1
                                : c->max_position_embeddings;
        if (p->full_attention < -1)
            return ls_fail(ld->err, ld->errlen, LS_ERR_CONFIG,
                           "%s: full attention length %d (--full-attention) must be -1 (the "
                           "trained length), 0 (never) or positive",
                           f, p->full_attention);
        m->full_upto = p->full_attention < 0 ? trained : p->full_attention;
    }
    return LS_OK;
}

static const char *const eng__prefixes[] = {"longformer.", "roberta.", "bert.", ""};

/* Loads attention.self.<names[i]>.{weight,bias} of layer l stacked into one (n·H, H)
 * matrix and one (n·H) bias, so that one GEMM computes all n projections. */
static ls_status eng__load_fused(eng__loader *ld, int l, const char *const *names, int n, float **w,
                                 float **b)
{
    const int64_t H = ld->m->H;
    *w = eng__alloc(ld->m, sizeof(float) * (size_t)(n * H * H));
    *b = eng__alloc(ld->m, sizeof(float) * (size_t)(n * H));
    if (!*w || !*b) return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", ld->dir);
    ls_status st = LS_OK;
    for (int i = 0; i < n && !st; i++) {
        st = eng__load_into(ld, *w + i * H * H, 1, H, H,
                            "%sencoder.layer.%d.attention.self.%s.weight", ld->prefix, l, names[i]);
        if (!st)
            st =
                eng__load_into(ld, *b + i * H, 1, H, 0, "%sencoder.layer.%d.attention.self.%s.bias",
                               ld->prefix, l, names[i]);
    }
    return st;
}

static ls_status eng__load_layer(eng__loader *ld, int l)
{
    eng_model *m = ld->m;
    eng_layer *y = &m->layers[l];
    const int64_t H = m->H, I = m->I;
    char n[160];
    ls_status st;
#define LAYER(field, req, d0, d1, nm)                                                              \
    do {                                                                                           \
        snprintf(n, sizeof n, "encoder.layer.%d.%s", l, nm);                                       \
        if ((st = eng__load(ld, &y->field, req, d0, d1, n))) return st;                            \
    } while (0)

    /* fused q|k|v: three tensors into one (3H, H) matrix */
    static const char *const qkv[] = {"query", "key", "value"};
    if ((st = eng__load_fused(ld, l, qkv, 3, &y->qkv_w, &y->qkv_b))) return st;
    if (m->fam == ENG_FAM_LONGFORMER) {
        LAYER(gq_w, 1, H, H, "attention.self.query_global.weight");
        LAYER(gq_b, 1, H, 0, "attention.self.query_global.bias");
        static const char *const kv[] = {"key_global", "value_global"};
        if ((st = eng__load_fused(ld, l, kv, 2, &y->gkv_w, &y->gkv_b))) return st;
    }
    LAYER(ao_w, 1, H, H, "attention.output.dense.weight");
    LAYER(ao_b, 1, H, 0, "attention.output.dense.bias");
    LAYER(ln1_g, 1, H, 0, "attention.output.LayerNorm.weight");
    LAYER(ln1_b, 1, H, 0, "attention.output.LayerNorm.bias");
    LAYER(ff1_w, 1, I, H, "intermediate.dense.weight");
    LAYER(ff1_b, 1, I, 0, "intermediate.dense.bias");
    LAYER(ff2_w, 1, H, I, "output.dense.weight");
    LAYER(ff2_b, 1, H, 0, "output.dense.bias");
    LAYER(ln2_g, 1, H, 0, "output.LayerNorm.weight");
    LAYER(ln2_b, 1, H, 0, "output.LayerNorm.bias");
#undef LAYER
    return LS_OK;
}

/* Task heads. Names starting with '/' are outside the encoder prefix. */
static ls_status eng__load_head(eng__loader *ld)
{
    eng_model *m = ld->m;
    const int64_t H = m->H, V = m->V, nl = m->cfg.num_labels;
    const int bert = m->fam == ENG_FAM_BERT;
    ls_status st = LS_OK;
    switch (m->head) {
    case ENG_HEAD_BASE:
        break;
    case ENG_HEAD_MLM: {
        const char *dw = bert ? "/cls.predictions.transform.dense.weight" : "/lm_head.dense.weight";
        const char *db = bert ? "/cls.predictions.transform.dense.bias" : "/lm_head.dense.bias";
        const char *lg =
            bert ? "/cls.predictions.transform.LayerNorm.weight" : "/lm_head.layer_norm.weight";
        const char *lb =
            bert ? "/cls.predictions.transform.LayerNorm.bias" : "/lm_head.layer_norm.bias";
        const char *ow = bert ? "/cls.predictions.decoder.weight" : "/lm_head.decoder.weight";
        const char *ob = bert ? "/cls.predictions.bias" : "/lm_head.bias";
        const char *ob2 = bert ? "/cls.predictions.decoder.bias" : "/lm_head.decoder.bias";
        if ((st = eng__load(ld, &m->mlm_dense_w, 1, H, H, dw)) ||
            (st = eng__load(ld, &m->mlm_dense_b, 1, H, 0, db)) ||
            (st = eng__load(ld, &m->mlm_ln_g, 1, H, 0, lg)) ||
            (st = eng__load(ld, &m->mlm_ln_b, 1, H, 0, lb)) ||
            (st = eng__load(ld, &m->mlm_dec_w, 0, V, H, ow)))
            return st;
        if (!m->mlm_dec_w) m->mlm_dec_w = m->word; /* tied to the word embeddings */
        if ((st = eng__load(ld, &m->mlm_dec_b, 0, V, 0, ob))) return st;
        if (!m->mlm_dec_b && (st = eng__load(ld, &m->mlm_dec_b, 1, V, 0, ob2))) return st;
        break;
    }
    case ENG_HEAD_SEQCLS:
        if (bert) { /* BERT: pooler, then one linear layer */
            if (!m->pool_w)
                return ls_fail(ld->err, ld->errlen, LS_ERR_FORMAT,
                               "%s: BertForSequenceClassification needs pooler weights", ld->dir);
            if ((st = eng__load(ld, &m->cls_out_w, 1, nl, H, "/classifier.weight")) ||
                (st = eng__load(ld, &m->cls_out_b, 1, nl, 0, "/classifier.bias")))
                return st;
        } else {
            if ((st = eng__load(ld, &m->cls_dense_w, 1, H, H, "/classifier.dense.weight")) ||
                (st = eng__load(ld, &m->cls_dense_b, 1, H, 0, "/classifier.dense.bias")) ||
                (st = eng__load(ld, &m->cls_out_w, 1, nl, H, "/classifier.out_proj.weight")) ||
                (st = eng__load(ld, &m->cls_out_b, 1, nl, 0, "/classifier.out_proj.bias")))
                return st;
        }
        break;
    case ENG_HEAD_TOKCLS:
        if ((st = eng__load(ld, &m->cls_out_w, 1, nl, H, "/classifier.weight")) ||
            (st = eng__load(ld, &m->cls_out_b, 1, nl, 0, "/classifier.bias")))
            return st;
        break;
    case ENG_HEAD_QA:
        if ((st = eng__load(ld, &m->qa_w, 1, 2, H, "/qa_outputs.weight")) ||
            (st = eng__load(ld, &m->qa_b, 1, 2, 0, "/qa_outputs.bias")))
            return st;
        break;
    }
    return st;
}

/* Tensor `name` (checkpoint prefix added) of any rank, as eng__load does for rank 1 and 2. */
static ls_status eng__load_nd(eng__loader *ld, float **out, const int64_t *shape, int ndim,
                              const char *name)
{
    *out = NULL;
    char full[256];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    st_tensor t;
    if (eng__find(ld, full, &t) != 0)
        return ls_fail(ld->err, ld->errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s' not found in the checkpoint (model_type %s, "
                       "architecture %s)",
                       ld->dir, full, ld->m->cfg.model_type, ld->m->cfg.architecture);
    ls_status st = st_tensor_check_shape(&t, shape, ndim, ld->err, ld->errlen);
    if (st) return st;
    if (st_tensor_f32_view(&t)) {
        *out = (float *)st_tensor_f32_view(&t);
        return LS_OK;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *p = eng__alloc(ld->m, sizeof(float) * n);
    if (!p) return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", ld->dir);
    if ((st = st_tensor_to_f32(&t, shape, ndim, p, ld->err, ld->errlen))) return st;
    *out = p;
    return LS_OK;
}

/* Reformer's weights (hf-semantics B9), prefix "reformer." or none. */
static ls_status eng__load_reformer(eng__loader *ld)
{
    eng_model *m = ld->m;
    const hf_config *c = &m->cfg;
    const hf_reformer *r = &c->reformer;
    const int64_t H = m->H, A = m->A, I = m->I, V = m->V, nl = c->num_labels;
    st_tensor t;
    snprintf(ld->prefix, sizeof ld->prefix, "%s",
             st_model_find(&m->st, "reformer.embeddings.word_embeddings.weight", &t) == 0
                 ? "reformer."
                 : "");
    ls_status st;
    if ((st = eng__load(ld, &m->word, 1, V, H, "embeddings.word_embeddings.weight"))) return st;
    if (r->axial) {
        for (int k = 0; k < r->n_axes; k++) {
            int64_t shape[HF_MAX_AXES + 1];
            for (int i = 0; i < r->n_axes; i++)
                shape[i] = i == k ? r->axial_shape[k] : 1;
            shape[r->n_axes] = r->axial_dim[k];
            char name[96];
            snprintf(name, sizeof name, "embeddings.position_embeddings.weights.%d", k);
            if ((st = eng__load_nd(ld, &m->axial[k], shape, r->n_axes + 1, name))) return st;
        }
    } else if ((st = eng__load(ld, &m->pos, 1, c->max_position_embeddings, H,
                               "embeddings.position_embeddings.embedding.weight"))) {
        return st;
    }
    for (int l = 0; l < m->L; l++) {
        eng_rf_layer *y = &m->rf[l];
        char n[160];
#define RF(field, d0, d1, nm)                                                                      \
    do {                                                                                           \
        snprintf(n, sizeof n, "encoder.layers.%d.%s", l, nm);                                      \
        if ((st = eng__load(ld, &y->field, 1, d0, d1, n))) return st;                              \
    } while (0)
        RF(ln1_g, H, 0, "attention.layer_norm.weight");
        RF(ln1_b, H, 0, "attention.layer_norm.bias");
        RF(ao_w, H, A, "attention.output.dense.weight");
        RF(ln2_g, H, 0, "feed_forward.layer_norm.weight");
        RF(ln2_b, H, 0, "feed_forward.layer_norm.bias");
        RF(ff1_w, I, H, "feed_forward.dense.dense.weight");
        RF(ff1_b, I, 0, "feed_forward.dense.dense.bias");
        RF(ff2_w, H, I, "feed_forward.output.dense.weight");
        RF(ff2_b, H, 0, "feed_forward.output.dense.bias");
#undef RF
        static const char *const lsh[] = {"query_key", "value", "query_key"};
        static const char *const local[] = {"query", "key", "value"};
        const char *const *names = y->lsh ? lsh : local;
        y->proj_w = eng__alloc(m, sizeof(float) * (size_t)(3 * A * H));
        if (!y->proj_w)
            return ls_fail(ld->err, ld->errlen, LS_ERR_NOMEM, "%s: out of memory", ld->dir);
        for (int i = 0; i < 3; i++)
            if ((st = eng__load_into(ld, y->proj_w + i * A * H, 1, A, H,
                                     "%sencoder.layers.%d.attention.self_attention.%s.weight",
                                     ld->prefix, l, names[i])))
                return st;
    }
    if ((st = eng__load(ld, &m->rf_ln_g, 1, 2 * H, 0, "encoder.layer_norm.weight")) ||
        (st = eng__load(ld, &m->rf_ln_b, 1, 2 * H, 0, "encoder.layer_norm.bias")))
        return st;
    switch (m->head) {
    case ENG_HEAD_BASE:
    case ENG_HEAD_TOKCLS:
        break;
    case ENG_HEAD_MLM:
        /* the forward adds lm_head.decoder.bias; a separate lm_head.bias (transformers v5
         * saves both, and they differ) is not used; older checkpoints tie the two */
        if ((st = eng__load(ld, &m->mlm_dec_w, 1, V, 2 * H, "/lm_head.decoder.weight")) ||
            (st = eng__load(ld, &m->mlm_dec_b, 0, V, 0, "/lm_head.decoder.bias")))
            return st;
        if (!m->mlm_dec_b && (st = eng__load(ld, &m->mlm_dec_b, 1, V, 0, "/lm_head.bias")))
            return st;
        break;
    case ENG_HEAD_SEQCLS:
        if ((st = eng__load(ld, &m->cls_dense_w, 1, H, 2 * H, "/classifier.dense.weight")) ||
            (st = eng__load(ld, &m->cls_dense_b, 1, H, 0, "/classifier.dense.bias")) ||
            (st = eng__load(ld, &m->cls_out_w, 1, nl, H, "/classifier.out_proj.weight")) ||
            (st = eng__load(ld, &m->cls_out_b, 1, nl, 0, "/classifier.out_proj.bias")))
            return st;
        break;
    case ENG_HEAD_QA:
        if ((st = eng__load(ld, &m->qa_w, 1, 2, 2 * H, "/qa_outputs.weight")) ||
            (st = eng__load(ld, &m->qa_b, 1, 2, 0, "/qa_outputs.bias")))
            return st;
        break;
    }
    return LS_OK;
}

static ls_status eng__load_weights(eng__loader *ld)
{
    if (ld->m->fam == ENG_FAM_REFORMER) return eng__load_reformer(ld);
    eng_model *m = ld->m;
    const hf_config *c = &m->cfg;
    const int64_t H = m->H;
    st_tensor t;
    int found = 0;
    for (size_t i = 0; i < sizeof eng__prefixes / sizeof *eng__prefixes && !found; i++) {
        char name[96];
        snprintf(name, sizeof name, "%sembeddings.word_embeddings.weight", eng__prefixes[i]);
        if (st_model_find(&ld->m->st, name, &t) == 0) {
            snprintf(ld->prefix, sizeof ld->prefix, "%s", eng__prefixes[i]);
            found = 1;
        }
    }
    if (!found)
        return ls_fail(ld->err, ld->errlen, LS_ERR_FORMAT,
                       "%s: no tensor '[longformer.|roberta.|bert.]embeddings.word_embeddings."
                       "weight' in the checkpoint",
                       ld->dir);
    ls_status st;
    if ((st = eng__load(ld, &m->word, 1, m->V, H, "embeddings.word_embeddings.weight")) ||
        (st = eng__load(ld, &m->pos, 1, c->max_position_embeddings, H,
                        "embeddings.position_embeddings.weight")) ||
        (st = eng__load(ld, &m->type, 1, c->type_vocab_size, H,
                        "embeddings.token_type_embeddings.weight")) ||
        (st = eng__load(ld, &m->emb_ln_g, 1, H, 0, "embeddings.LayerNorm.weight")) ||
        (st = eng__load(ld, &m->emb_ln_b, 1, H, 0, "embeddings.LayerNorm.bias")))
        return st;
    for (int l = 0; l < m->L; l++)
        if ((st = eng__load_layer(ld, l))) return st;
    if ((st = eng__load(ld, &m->pool_w, 0, H, H, "pooler.dense.weight"))) return st;
    if (m->pool_w && (st = eng__load(ld, &m->pool_b, 1, H, 0, "pooler.dense.bias"))) return st;
    return eng__load_head(ld);
}

static eng_pooling eng__pooling(sb_pooling p)
{
    switch (p) {
    case SB_POOL_CLS:
        return ENG_POOL_CLS;
    case SB_POOL_MAX:
        return ENG_POOL_MAX;
    case SB_POOL_MEAN_SQRT_LEN:
        return ENG_POOL_MEAN_SQRT_LEN;
    case SB_POOL_MEAN:
        break;
    }
    return ENG_POOL_MEAN;
}

/* The text side of a model directory: tokenizer.json (optional) and the mask token of a
 * fill-mask model, sentence-transformers pooling (modules.json, <Pooling>/config.json;
 * mean when absent) and its Normalize module. */
static ls_status eng__load_text(eng_model *m, const char *dir, char *err, size_t errlen)
{
    m->pooling = ENG_POOL_MEAN;
    m->mask_id = -1;
    m->prompts.default_index = -1;
    m->include_prompt = 1;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &sb) == 0) {
        ls_status st = tok_load(path, &m->tok, err, errlen);
        if (st) return st;
        /* an id past the embedding table would read outside it */
        if (tok_vocab_size(m->tok) > m->V)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "%s: ids go up to %d (model.vocab and added_tokens) but config.json "
                           "vocab_size is %d",
                           path, tok_vocab_size(m->tok) - 1, m->V);
        static const char *const masks[] = {"<mask>", "[MASK]", "<MASK>"};
        for (int i = 0; i < 3 && m->mask_id < 0; i++)
            m->mask_id = tok_token_to_id(m->tok, masks[i]);
    } else if (m->fam == ENG_FAM_REFORMER && m->V == 258) {
        /* google/reformer-enwik8 ships no tokenizer: UTF-8 bytes, id = byte + 2 (B10) */
        ls_status st = tok_load_bytes(2, &m->tok, err, errlen);
        if (st) return st;
    }
    snprintf(path, sizeof path, "%s/modules.json", dir);
    if (stat(path, &sb) != 0) return LS_OK;
    size_t len;
    char *text, pdir[256];
    ls_status st = ls_read_file(path, 1 << 20, &text, &len, err, errlen);
    if (st) return st;
    st = sb_modules_parse(text, len, path, pdir, sizeof pdir, &m->st_normalize, err, errlen);
    free(text);
    /* prompts (sentence-transformers' encode(prompt_name=...), default_prompt_name) */
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    if (!st && stat(path, &sb) == 0 &&
        !(st = ls_read_file(path, 1 << 20, &text, &len, err, errlen))) {
        st = sb_prompts_parse(text, len, path, &m->prompts, err, errlen);
        free(text);
    }
    if (st || !pdir[0]) return st;
    snprintf(path, sizeof path, "%s/%s/config.json", dir, pdir);
    if ((st = ls_read_file(path, 1 << 20, &text, &len, err, errlen))) return st;
    sb_pooling pool = SB_POOL_MEAN;
    st = sb_pooling_parse(text, len, path, &pool, err, errlen);
    if (!st) st = sb_pooling_include_prompt(text, len, path, &m->include_prompt, err, errlen);
    free(text);
    m->pooling = eng__pooling(pool);
    m->st_config = !st;
    return st;
}

/* The linear layers' weights, prepared once by the backend (packed for its GEMM). */
static kn_weight *eng__weights(eng_model *m, int i)
{
    if (m->fam == ENG_FAM_REFORMER) {
        if (i < m->L * 4) {
            eng_rf_layer *y = &m->rf[i / 4];
            kn_weight *const w[] = {&y->proj, &y->ao, &y->ff1, &y->ff2};
            return w[i % 4];
        }
        i -= m->L * 4;
        kn_weight *const w[] = {&m->mlm_dec, &m->cls_dense, &m->cls_out, &m->qa};
        return i < 4 ? w[i] : NULL;
    }
    const int per = 5, nl = m->L * per;
    if (i < nl) {
        eng_layer *y = &m->layers[i / per];
        kn_weight *const w[] = {&y->qkv, &y->gq, &y->ao, &y->ff1, &y->ff2};
        return w[i % per];
    }
    kn_weight *const w[] = {&m->pool,      &m->mlm_dense, &m->mlm_dec,
                            &m->cls_dense, &m->cls_out,   &m->qa};
    return i - nl < (int)(sizeof w / sizeof w[0]) ? w[i - nl] : NULL;
}

static ls_status eng__prepare_weights(eng_model *m, char *err, size_t errlen)
{
    const int H = m->H, I = m->I, nl = m->cfg.num_labels;
    for (int l = 0; m->rf && l < m->L; l++) {
        eng_rf_layer *y = &m->rf[l];
        y->proj = (kn_weight){y->proj_w, 3 * m->A, H, NULL};
        y->ao = (kn_weight){y->ao_w, H, m->A, NULL};
        y->ff1 = (kn_weight){y->ff1_w, I, H, NULL};
        y->ff2 = (kn_weight){y->ff2_w, H, I, NULL};
    }
    const int HK = m->rf ? 2 * H : H; /* what the heads read: Reformer's 2H */
    for (int l = 0; m->layers && l < m->L; l++) {
        eng_layer *y = &m->layers[l];
        y->qkv = (kn_weight){y->qkv_w, 3 * H, H, NULL};
        y->gq = (kn_weight){y->gq_w, H, H, NULL};
        y->ao = (kn_weight){y->ao_w, H, H, NULL};
        y->ff1 = (kn_weight){y->ff1_w, I, H, NULL};
        y->ff2 = (kn_weight){y->ff2_w, H, I, NULL};
    }
    m->pool = (kn_weight){m->pool_w, H, H, NULL};
    m->mlm_dense = (kn_weight){m->mlm_dense_w, H, H, NULL};
    m->mlm_dec = (kn_weight){m->mlm_dec_w, m->V, HK, NULL};
    m->cls_dense = (kn_weight){m->cls_dense_w, H, HK, NULL};
    m->cls_out = (kn_weight){m->cls_out_w, nl, H, NULL};
    m->qa = (kn_weight){m->qa_w, 2, HK, NULL};
    snprintf(m->isa, sizeof m->isa, "%s", m->ops.isa ? m->ops.isa : "");
    if (!m->ops.weight_prepare) return LS_OK;
    kn_weight *w;
    for (int i = 0; (w = eng__weights(m, i)); i++) {
        if (!w->w) continue;
        if (m->ops.weight_prepare(w))
            return ls_fail(err, errlen, LS_ERR_NOMEM,
                           "out of memory preparing a (%d, %d) weight for the %s backend", w->N,
                           w->K, m->ops.backend);
        /* the backend reads its own copy now: the checkpoint's pages of this matrix can go
         * (not the word embeddings a tied decoder shares) */
        if (w->w != m->word) st_model_release(&m->st, w->w, sizeof(float) * (size_t)w->N * w->K);
    }
    snprintf(m->isa, sizeof m->isa, "%s", m->ops.isa ? m->ops.isa : ""); /* as packed */
    return LS_OK;
}

/* The linear layers' precision: bf16 = 0 (float32) or 1 (bfloat16, the cpu backend only;
 * not for a Reformer with LSH layers). Decided from the config, before any weight loads. */
static ls_status eng__dtype(const eng_model_params *p, const hf_config *cfg, const char *dir,
                            int *bf16, char *err, size_t errlen)
{
    const char *d = p->dtype && *p->dtype ? p->dtype : "float32";
    *bf16 = strcmp(d, "bfloat16") == 0 || strcmp(d, "bf16") == 0;
    if (!*bf16 && strcmp(d, "float32") != 0 && strcmp(d, "f32") != 0 && strcmp(d, "fp32") != 0)
        return ls_fail(err, errlen, LS_ERR_CONFIG, "--dtype %s: not float32 or bfloat16 (bf16)%s",
                       d,
                       strcmp(d, "float16") == 0 || strcmp(d, "f16") == 0
                           ? "; float16 has no fast path on a CPU, bfloat16 has"
                           : "");
    if (*bf16 && strcmp(p->backend, "cpu") != 0)
        return ls_fail(err, errlen, LS_ERR_CONFIG,
                       "--dtype %s: only the cpu backend computes in bfloat16 (not %s)", d,
                       p->backend);
    const int reformer = strcmp(cfg->model_type, "reformer") == 0;
    for (int l = 0; *bf16 && reformer && l < cfg->num_hidden_layers && l < HF_MAX_LAYERS; l++)
        if (cfg->reformer.lsh[l])
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "--dtype %s: %s has LSH attention layers, and LSH picks each token's "
                           "bucket by an argmax that bfloat16's rounding moves (outputs off by "
                           "up to 30%% on the test fixtures): float32 only",
                           d, dir);
    return LS_OK;
}

ls_status eng_model_load(const char *dir, const eng_model_params *p, eng_model **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    eng_model_params dp = eng_model_default_params();
    if (!p) p = &dp;
    eng_model *m = calloc(1, sizeof *m);
    if (!m) return ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", dir);
    eng__loader ld = {.m = m, .dir = dir, .err = err, .errlen = errlen};

    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    ls_status st = ls_read_file(path, 16u << 20, &text, &len, err, errlen);
    if (!st) st = hf_config_parse(text, len, path, &m->cfg, err, errlen);
    free(text);
    if (st) {
        free(m);
        return st;
    }
    st = eng__check_config(&ld, p);
    if (!st) st = eng__dtype(p, &m->cfg, dir, &m->bf16, err, errlen);

    if (!st) {
        if (strcmp(p->backend, "ref") == 0) {
            kn_ops_init_ref(&m->ops);
        } else if (strcmp(p->backend, "cpu") == 0 && m->bf16) {
            char kerr[320] = "";
            if (kn_ops_init_cpu_bf16(&m->ops, kerr, sizeof kerr) != 0)
                st = ls_fail(err, errlen, LS_ERR_CONFIG, "--dtype %s: %s", p->dtype, kerr);
        } else if (strcmp(p->backend, "cpu") == 0) {
            kn_ops_init_cpu(&m->ops);
        } else if (strcmp(p->backend, "blas") == 0) {
            kn_ops_init_cpu_blas(&m->ops);
        } else if (strcmp(p->backend, "cuda") == 0) {
            kn_ops_init_cpu(&m->ops);
            char kerr[256] = "";
            if (kn_ops_init_cuda(&m->ops, kerr, sizeof kerr) != 0)
                st = ls_fail(err, errlen, LS_ERR_DEVICE, "backend cuda: %s", kerr);
        } else {
            st = ls_fail(err, errlen, LS_ERR_CONFIG,
                         "unknown backend \"%s\" (cpu, blas, ref, cuda)", p->backend);
        }
        kn_cpu_set_threads(p->threads);
    }
    if (!st) st = st_model_open(dir, &m->st, err, errlen);
    for (size_t i = 0; !st && p->on_file && i < m->st.nfiles; i++) {
        st_file_info fi;
        st_file_get_info(m->st.files[i], &fi);
        const eng_load_file lf = {.path = fi.path,
                                  .bytes = fi.bytes,
                                  .tensors = fi.tensors,
                                  .seconds = fi.seconds,
                                  .index = (int)i + 1,
                                  .count = (int)m->st.nfiles};
        p->on_file(p->on_file_arg, &lf);
    }
    if (!st) st = eng__load_weights(&ld);
    if (!st) st = eng__prepare_weights(m, err, errlen);
    if (!st) st = eng__load_text(m, dir, err, errlen);
    if (st) {
        eng_model_free(m);
        return st;
    }
    eng_model_info info;
    eng_model_get_info(m, &info);
    m->nouts = eng_model_outputs(&info, m->outs, ENG_MAX_OUTPUTS);
    *out = m;
    return LS_OK;
}

void eng_model_free(eng_model *m)
{
    if (!m) return;
    kn_weight *w;
    for (int i = 0; (m->layers || m->rf) && m->ops.weight_release && (w = eng__weights(m, i)); i++)
        if (w->prep) m->ops.weight_release(w);
    for (size_t i = 0; i < m->nallocs; i++)
        free(m->allocs[i]);
    free(m->allocs);
    st_model_free(&m->st);
    tok_free(m->tok);
    sb_prompts_free(&m->prompts);
    free(m->layers);
    free(m->rf);
    hf_config_free(&m->cfg);
    free(m);
}

void eng_model_get_info(const eng_model *m, eng_model_info *info)
{
    int maxw = 0;
    for (int l = 0; m->layers && l < m->L; l++)
        if (m->layers[l].window > maxw) maxw = m->layers[l].window;
    if (m->rf) maxw = m->rf_lcm; /* Reformer: its padding multiple */
    *info = (eng_model_info){
        .model_type = m->cfg.model_type,
        .architecture = m->cfg.architecture,
        .head = m->head,
        .vocab_size = m->V,
        .hidden_size = m->rf ? 2 * m->H : m->H, /* Reformer: its outputs' 2H */
        .num_layers = m->L,
        .num_labels = m->cfg.num_labels,
        .type_vocab_size = m->cfg.type_vocab_size,
        .max_tokens = m->max_tokens,
        .max_window = maxw,
        .pad_token_id = m->cfg.pad_token_id,
        .sep_token_id = m->cfg.sep_token_id,
        .has_pooler = m->pool_w != NULL,
        .backend = m->ops.backend,
        .isa = m->isa,
        .dtype = m->bf16 ? "bfloat16" : "float32",
        .labels = (const char *const *)m->cfg.id2label,
        .pooling = m->pooling,
        .st_config = m->st_config,
        .st_normalize = m->st_normalize,
        .mask_id = m->mask_id,
        .full_attention_tokens = m->full_upto,
        .attention = "sliding_window",
        .prompt_names = (const char *const *)m->prompts.names,
        .prompt_texts = (const char *const *)m->prompts.texts,
        .nprompts = m->prompts.n,
        .default_prompt = m->prompts.default_index,
        .include_prompt = m->include_prompt,
    };
    info->attn_keys = maxw + 1;
    info->can_step = !m->rf;
    if (m->rf) {
        const hf_reformer *r = &m->cfg.reformer;
        double keys = 0;
        for (int l = 0; l < m->L; l++) {
            info->lsh_layers += m->rf[l].lsh;
            keys += m->rf[l].lsh
                        ? (double)r->lsh_chunk * (1 + r->lsh_before + r->lsh_after) * r->num_hashes
                        : (double)r->local_chunk * (1 + r->local_before + r->local_after);
        }
        info->attn_keys = keys / m->L;
        info->attention = info->lsh_layers == m->L ? "lsh"
                          : info->lsh_layers       ? "lsh+local"
                                                   : "local";
        info->num_hashes = m->cfg.reformer.num_hashes;
        info->has_hash_seed = m->cfg.reformer.has_hash_seed;
        info->hash_seed = m->cfg.reformer.hash_seed;
        info->can_generate = eng_model_can_generate(m, NULL, 0);
    }
}

const tok_tokenizer *eng_model_tokenizer(const eng_model *m)
{
    return m->tok;
}

const char *eng_model_label(const eng_model_info *info, int k, char *buf, size_t n)
{
    if (info->labels && info->labels[k]) return info->labels[k];
    snprintf(buf, n, "LABEL_%d", k);
    return buf;
}

const char *eng_model_attention(const eng_model_info *info, size_t len)
{
    return len <= (size_t)info->full_attention_tokens ? "full" : info->attention;
}

double eng_model_cost(const eng_model_info *info, size_t rows, size_t len, size_t globals)
{
    const double dense = 6.0 * info->hidden_size, local = info->attn_keys;
    const double tokens = (double)rows * (double)len;
    /* a row's linear layers read every weight once per row tile however few its tokens
     * (kernels/cpu: tiles never span two sequences), so a short row's dense work costs what
     * ENG_COST_MIN_ROW tokens cost: 3,000 rows of 4 tokens (long_document window 4, stride 1)
     * took 14x what their tokens alone predicted */
    const double dense_rows =
        (double)rows * (double)(len > ENG_COST_MIN_ROW ? len : ENG_COST_MIN_ROW);
    /* full attention: every token attends the whole row, and no token is global */
    if (len <= (size_t)info->full_attention_tokens)
        return dense_rows * dense + tokens * (double)len;
    /* every token attends its window and the globals; each global token attends its row */
    return dense_rows * dense + tokens * local + (double)globals * (double)len * 2.0;
}

double eng_model_token_cost(const eng_model_info *info)
{
    return 6.0 * info->hidden_size + info->attn_keys;
}

int eng_model_outputs(const eng_model_info *info, eng_output_desc *out, int max)
{
    eng_output_desc d[ENG_MAX_OUTPUTS];
    int n = 0;
    switch (info->head) {
    case ENG_HEAD_BASE:
        d[n++] =
            (eng_output_desc){ENG_OUT_LAST_HIDDEN_STATE, "last_hidden_state", 1, info->hidden_size};
        if (info->has_pooler)
            d[n++] =
                (eng_output_desc){ENG_OUT_POOLER_OUTPUT, "pooler_output", 0, info->hidden_size};
        break;
    case ENG_HEAD_MLM:
        d[n++] = (eng_output_desc){ENG_OUT_LOGITS, "logits", 1, info->vocab_size};
        break;
    case ENG_HEAD_SEQCLS:
        d[n++] = (eng_output_desc){ENG_OUT_LOGITS, "logits", 0, info->num_labels};
        break;
    case ENG_HEAD_TOKCLS:
        d[n++] = (eng_output_desc){ENG_OUT_LOGITS, "logits", 1, info->num_labels};
        break;
    case ENG_HEAD_QA:
        d[n++] = (eng_output_desc){ENG_OUT_START_LOGITS, "start_logits", 1, 0};
        d[n++] = (eng_output_desc){ENG_OUT_END_LOGITS, "end_logits", 1, 0};
        break;
    }
    for (int i = 0; i < n && i < max; i++)
        out[i] = d[i];
    return n;
}

const eng_tensor *eng_outputs_find(const eng_outputs *o, eng_output_id id)
{
    for (int i = 0; i < o->n; i++)
        if (o->t[i].id == id) return &o->t[i];
    return NULL;
}
