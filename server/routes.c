/* The route table (method + path -> handler, error family, admission flags) and the
 * handlers. Handlers see srv_req, never libmicrohttpd; bodies are built by proto/.
 *
 * Text routes (TEI /embed, /embed_all, /predict, /tokenize, /decode, OpenAI
 * /v1/embeddings, HF pipelines /token_classify, /fill_mask, /answer) are SRV_RT_ENGINE
 * routes without a model in the path (the body's "model" picks one, else the first
 * model whose head fits): srv_text_start decodes and tokenizes in the uv work pool
 * (server/text.c), then submits through the same srv_submit as /v2/models/{m}/infer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/http_meta.h"
#include "srv.h"

/* ---- replies -------------------------------------------------------------------------- */

int srv_reply(srv_req *r, int http, char *body, size_t len, const char *ctype)
{
    free(r->out);
    r->http = http;
    r->out = body;
    r->out_len = body ? len : 0;
    r->ctype = ctype ? ctype : "application/json";
    if (!body && http == 200) { /* the body could not be built */
        r->http = 500;
        r->ctype = "text/plain";
    }
    r->state = SRV_REQ_REPLIED;
    return SRV_DONE;
}

static int srv__vreply_error(srv_req *r, herr_kind k, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int http = 500;
    size_t len = 0;
    char *body = herr_encode(r->family, k, msg, &http, &len);
    if (k == HERR_OVERLOADED) r->retry_after = srv_retry_after(r->srv);
    if (k == HERR_UNAVAILABLE) r->retry_after = 5;
    return srv_reply(r, body ? http : 500, body, len, "application/json");
}

int srv_reply_error(srv_req *r, herr_kind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = srv__vreply_error(r, k, fmt, ap);
    va_end(ap);
    return rc;
}

int srv_reject(srv_req *r, metrics_reason why, herr_kind k, const char *fmt, ...)
{
    metrics_reject(r->srv->metrics, why);
    va_list ap;
    va_start(ap, fmt);
    int rc = srv__vreply_error(r, k, fmt, ap);
    va_end(ap);
    return rc;
}

srv_model *srv_model_find(srv_server *s, const char *name)
{
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, name) == 0) return &s->models[i];
    return NULL;
}

int srv_ready(const srv_server *s)
{
    return s->ready && !s->draining;
}

/* ---- model descriptions ------------------------------------------------------------------ */

static void srv__describe(const srv_model *m, int ready, hm_model *h)
{
    const eng_model_info *in = &m->info;
    memset(h, 0, sizeof *h);
    h->name = m->name;
    h->model_type = in->model_type;
    h->architecture = in->architecture[0] ? in->architecture : in->model_type;
    h->task = m->task;
    h->ready = ready;
    h->max_input_tokens = in->max_tokens;
    h->hidden_size = in->hidden_size;
    h->vocab_size = in->vocab_size;
    h->num_layers = in->num_layers;
    h->window = in->max_window;
    h->num_labels = in->num_labels;
    h->labels = in->labels;
    static const char *const names[] = {"input_ids", "attention_mask", "global_attention_mask",
                                        "token_type_ids"};
    for (int i = 0; i < 4; i++)
        h->inputs[h->ninputs++] = (hm_tensor){names[i], "INT64", 2, {-1, -1, 0}};
    hm_tensor *o = h->outputs;
    switch (in->head) {
    case ENG_HEAD_BASE:
        o[h->noutputs++] = (hm_tensor){"last_hidden_state", "FP32", 3, {-1, -1, in->hidden_size}};
        if (in->has_pooler)
            o[h->noutputs++] = (hm_tensor){"pooler_output", "FP32", 2, {-1, in->hidden_size, 0}};
        break;
    case ENG_HEAD_MLM:
        o[h->noutputs++] = (hm_tensor){"logits", "FP32", 3, {-1, -1, in->vocab_size}};
        break;
    case ENG_HEAD_SEQCLS:
        o[h->noutputs++] = (hm_tensor){"logits", "FP32", 2, {-1, in->num_labels, 0}};
        break;
    case ENG_HEAD_TOKCLS:
        o[h->noutputs++] = (hm_tensor){"logits", "FP32", 3, {-1, -1, in->num_labels}};
        break;
    case ENG_HEAD_QA:
        o[h->noutputs++] = (hm_tensor){"start_logits", "FP32", 2, {-1, -1, 0}};
        o[h->noutputs++] = (hm_tensor){"end_logits", "FP32", 2, {-1, -1, 0}};
        break;
    }
}

/* ---- handlers ----------------------------------------------------------------------------- */

static int route_v2_infer(srv_req *r)
{
    srv_model *m = r->model;
    char err[512];
    size_t max = (size_t)r->srv->opt.max_input_tokens;
    if (max > V2_MAX_ELEMS) max = V2_MAX_ELEMS;
    ls_status st = v2_job_decode(&m->info, r->body, r->len, max, &r->v2, err, sizeof err);
    if (st) return srv_reject(r, METRICS_REJ_INVALID, herr_from_status(st), "%s", err);
    return srv_submit(r);
}

static int route_v2_model(srv_req *r)
{
    hm_model h;
    srv__describe(r->model, srv_ready(r->srv), &h);
    size_t len = 0;
    char *b = hm_v2_model(&h, &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_v2_model_ready(srv_req *r)
{
    int ready = srv_ready(r->srv);
    size_t len = 0;
    char *b = hm_v2_model_ready(r->model->name, ready, &len);
    return srv_reply(r, ready ? 200 : 503, b, len, NULL);
}

static int route_v2_server(srv_req *r)
{
    size_t len = 0;
    char *b = hm_v2_server("longserve", LONGSERVE_VERSION, &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_v2_live(srv_req *r)
{
    size_t len = 0;
    char *b = hm_v2_health(1, srv_ready(r->srv), &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_v2_ready(srv_req *r)
{
    int ready = srv_ready(r->srv);
    size_t len = 0;
    char *b = hm_v2_health(1, ready, &len);
    if (!ready) r->retry_after = 5;
    return srv_reply(r, ready ? 200 : 503, b, len, NULL);
}

static int route_v1_models(srv_req *r)
{
    srv_server *s = r->srv;
    hm_model hs[OPT_MAX_MODELS];
    for (int i = 0; i < s->nmodels; i++)
        srv__describe(&s->models[i], srv_ready(s), &hs[i]);
    size_t len = 0;
    static long long started;
    if (!started) started = (long long)time(NULL);
    char *b = hm_openai_models(hs, s->nmodels, started, &len);
    return srv_reply(r, 200, b, len, NULL);
}

typedef struct {
    hm_field f[64];
    char keys[64][48];
    int n;
} srv__fields;

static void srv__collect(void *arg, const char *key, opt_type type, int flags, long long ival,
                         const char *sval)
{
    srv__fields *fs = arg;
    if ((flags & OPT_NOINFO) || type == OPT_MODEL || fs->n >= 64) return;
    hm_field *f = &fs->f[fs->n];
    snprintf(fs->keys[fs->n], sizeof fs->keys[0], "%s", key);
    f->key = fs->keys[fs->n++];
    switch (type) {
    case OPT_INT:
        *f = (hm_field){f->key, HM_INT, ival, NULL};
        break;
    case OPT_BOOL:
        *f = (hm_field){f->key, HM_BOOL, ival, NULL};
        break;
    default:
        *f = (hm_field){f->key, sval ? HM_STR : HM_NULL, 0, sval};
        break;
    }
}

static int route_info(srv_req *r)
{
    srv_server *s = r->srv;
    srv__fields fs = {.n = 0};
    opt_visit(&s->opt, srv__collect, &fs);
    hm_model hs[OPT_MAX_MODELS];
    for (int i = 0; i < s->nmodels; i++)
        srv__describe(&s->models[i], srv_ready(s), &hs[i]);
    size_t len = 0;
    char *b = hm_info(fs.f, fs.n, LONGSERVE_VERSION, hs, s->nmodels, &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_health(srv_req *r)
{
    /* liveness: the loop answers; never waits on the engine */
    size_t len = 0;
    char *b = hm_status("live", &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_ready(srv_req *r)
{
    srv_server *s = r->srv;
    if (!srv_ready(s))
        return srv_reply_error(r, HERR_UNAVAILABLE, "%s",
                               s->draining ? "draining: shutting down" : "not ready");
    size_t len = 0;
    char *b = hm_status("ready", &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_metrics(srv_req *r)
{
    size_t len = 0;
    char *b = metrics_render(r->srv->metrics, &len);
    return srv_reply(r, 200, b, len, "text/plain; version=0.0.4; charset=utf-8");
}

static int route_embed(srv_req *r)
{
    return srv_text_start(r, TEI_EMBED);
}

static int route_embed_all(srv_req *r)
{
    return srv_text_start(r, TEI_EMBED_ALL);
}

static int route_openai_embeddings(srv_req *r)
{
    return srv_text_start(r, TEI_OPENAI_EMBED);
}

static int route_predict(srv_req *r)
{
    return srv_text_start(r, TEI_PREDICT);
}

static int route_token_classify(srv_req *r)
{
    return srv_text_start(r, TEI_TOKCLS);
}

static int route_fill_mask(srv_req *r)
{
    return srv_text_start(r, TEI_FILL_MASK);
}

static int route_answer(srv_req *r)
{
    return srv_text_start(r, TEI_ANSWER);
}

static int route_tokenize(srv_req *r)
{
    return srv_text_start(r, TEI_TOKENIZE);
}

static int route_decode(srv_req *r)
{
    return srv_text_start(r, TEI_DECODE);
}

/* ---- the table ------------------------------------------------------------------------------ */

const srv_route srv_routes[] = {
    {"/v2/models/*/infer", SRV_POST, HERR_FAM_KSERVE, SRV_RT_MODEL | SRV_RT_ENGINE, route_v2_infer,
     "v2_infer"},
    {"/v2/models/*/ready", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL, route_v2_model_ready,
     "v2_model_ready"},
    {"/v2/models/*", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL, route_v2_model, "v2_model"},
    {"/v2", SRV_GET, HERR_FAM_KSERVE, 0, route_v2_server, "v2_server"},
    {"/embed", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_embed, "embed"},
    {"/embed_all", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_embed_all, "embed_all"},
    {"/v1/embeddings", SRV_POST, HERR_FAM_OPENAI, SRV_RT_ENGINE, route_openai_embeddings,
     "v1_embeddings"},
    {"/predict", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_predict, "predict"},
    {"/token_classify", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_token_classify,
     "token_classify"},
    {"/fill_mask", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_fill_mask, "fill_mask"},
    {"/answer", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_answer, "answer"},
    {"/tokenize", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_tokenize, "tokenize"},
    {"/decode", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, route_decode, "decode"},
    {"/v2/health/live", SRV_GET, HERR_FAM_KSERVE, SRV_RT_PUBLIC, route_v2_live, "v2_live"},
    {"/v2/health/ready", SRV_GET, HERR_FAM_KSERVE, SRV_RT_PUBLIC, route_v2_ready, "v2_ready"},
    {"/v1/models", SRV_GET, HERR_FAM_OPENAI, 0, route_v1_models, "v1_models"},
    {"/info", SRV_GET, HERR_FAM_TEI, 0, route_info, "info"},
    {"/health", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC, route_health, "health"},
    {"/ready", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC, route_ready, "ready"},
    {"/metrics", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC, route_metrics, "metrics"},
};
const int srv_nroutes = sizeof srv_routes / sizeof srv_routes[0];

/* 1 if path matches pattern segment by segment ('*': one non-empty segment). */
static int srv__match(const char *pat, const char *path, char *cap, size_t caplen)
{
    while (*pat && *path) {
        if (*pat == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= caplen) return 0;
            memcpy(cap, path, n);
            cap[n] = 0;
            path += n;
            pat++;
            continue;
        }
        if (*pat++ != *path++) return 0;
    }
    return *pat == 0 && *path == 0;
}

int srv_route_match(const char *path, unsigned method, unsigned *allow, char *capture,
                    size_t caplen)
{
    int found = -1;
    *allow = 0;
    for (int i = 0; i < srv_nroutes; i++) {
        char cap[128] = "";
        if (!srv__match(srv_routes[i].pattern, path, cap, sizeof cap)) continue;
        *allow |= srv_routes[i].methods;
        if ((srv_routes[i].methods & method) && found < 0) {
            found = i;
            snprintf(capture, caplen, "%s", cap);
        }
    }
    return found;
}
