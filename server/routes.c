/* The route table (method + path -> handler or job kind, error family, admission flags)
 * and the handlers of the routes that do not run on the engine (metadata, probes,
 * metrics). Handlers see srv_req, never libmicrohttpd; bodies are built by proto/.
 *
 * KServe v2 model routes also answer as /v2/models/{m}/versions/{v}/... (Triton's paths):
 * srv_route_unversion takes v out before matching.
 *
 * Engine routes name a job kind (job.h): /v2/models/{m}/infer the v2 job, the text
 * routes (TEI, OpenAI, HF pipelines) the text job with their tei_kind; their handler is
 * srv_job_start, which prepares the job in the uv pool and submits it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/http_meta.h"
#include "request.h"
#include "routes.h"

/* ---- model descriptions ------------------------------------------------------------------ */

static void srv__describe(const srv_model *m, int ready, hm_model *h)
{
    const eng_model_info *in = &m->info;
    memset(h, 0, sizeof *h);
    h->name = m->name;
    h->model_type = in->model_type;
    h->architecture = in->architecture[0] ? in->architecture : in->model_type;
    h->task = m->task;
    h->pooling = eng_pooling_name(in->pooling);
    h->ready = ready;
    h->max_input_tokens = in->max_tokens;
    h->hidden_size = in->hidden_size;
    h->vocab_size = in->vocab_size;
    h->num_layers = in->num_layers;
    h->window = in->max_window;
    h->full_attention_tokens = in->full_attention_tokens;
    h->attention = in->attention;
    h->num_labels = in->num_labels;
    h->labels = in->labels;
    h->backend = in->backend;
    h->isa = in->isa;
    h->dtype = in->dtype;
    if (m->hashing[0]) h->hashing = m->hashing;
    if (in->can_generate)
        h->generation = "greedy by default, token-identical to Hugging Face generate(): with "
                        "use_cache (default) its cached decoding (each new query hashed against "
                        "the cached buckets, attending to its sorted chunk; local layers to the "
                        "cached chunks before it), which is not a recomputation; use_cache false "
                        "recomputes the whole sequence every step as generate(use_cache=False)";
    static const char *const names[] = {"input_ids", "attention_mask", "global_attention_mask",
                                        "token_type_ids"};
    for (int i = 0; i < 4; i++)
        h->inputs[h->ninputs++] = (hm_tensor){names[i], "INT64", 2, {-1, -1, 0}};
    eng_output_desc d[ENG_MAX_OUTPUTS]; /* [B, L (per token), width (when not 0)] */
    const int nd = eng_model_outputs(in, d, ENG_MAX_OUTPUTS);
    for (int i = 0; i < nd; i++) {
        hm_tensor *o = &h->outputs[h->noutputs++];
        *o = (hm_tensor){d[i].name, "FP32", 0, {0, 0, 0}};
        o->shape[o->ndim++] = -1;
        if (d[i].per_token) o->shape[o->ndim++] = -1;
        if (d[i].width) o->shape[o->ndim++] = d[i].width;
    }
}

/* ---- handlers ----------------------------------------------------------------------------- */

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
    if (!ready) r->retry_after = 5;
    return srv_reply(r, ready ? 200 : 503, b, len, NULL);
}

static int route_v2_config(srv_req *r)
{
    hm_model h;
    srv__describe(r->model, srv_ready(r->srv), &h);
    size_t len = 0;
    char *b = hm_v2_config(&h, r->srv->opt.max_queue_delay_us, &len);
    return srv_reply(r, 200, b, len, NULL);
}

static void srv__stats(const srv_model *m, hm_model_stats *h)
{
    const srv_model_stats *s = &m->stats;
#define SRV__D(f) (hm_duration){s->f.count, s->f.ns}
    *h = (hm_model_stats){m->name,
                          s->last_inference_ms,
                          s->inference_count,
                          s->execution_count,
                          SRV__D(success),
                          SRV__D(fail),
                          SRV__D(queue),
                          SRV__D(compute_input),
                          SRV__D(compute_infer),
                          SRV__D(compute_output)};
#undef SRV__D
}

/* /v2/models/stats (every model) and /v2/models/{m}/stats (r->model). */
static int route_v2_stats(srv_req *r)
{
    srv_server *s = r->srv;
    hm_model_stats hs[OPT_MAX_MODELS];
    int n = 0;
    for (int i = 0; i < s->nmodels; i++)
        if (!r->model || r->model == &s->models[i]) srv__stats(&s->models[i], &hs[n++]);
    size_t len = 0;
    char *b = hm_v2_stats(hs, n, &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_v2_repository_index(srv_req *r)
{
    srv_server *s = r->srv;
    hm_model hs[OPT_MAX_MODELS];
    for (int i = 0; i < s->nmodels; i++)
        srv__describe(&s->models[i], srv_ready(s), &hs[i]);
    size_t len = 0;
    char *b = hm_v2_repository_index(hs, s->nmodels, &len);
    return srv_reply(r, 200, b, len, NULL);
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

static long long srv__created(void)
{
    static long long started; /* OpenAI's "created": the first time a client asked */
    if (!started) started = (long long)time(NULL);
    return started;
}

static int route_v1_models(srv_req *r)
{
    srv_server *s = r->srv;
    hm_model hs[OPT_MAX_MODELS + OPT_MAX_ALIASES];
    int n = 0;
    for (int i = 0; i < s->nmodels; i++)
        srv__describe(&s->models[i], srv_ready(s), &hs[n++]);
    for (int i = 0; i < s->nmodels; i++) /* --served-model-name: each alias a model too */
        for (int a = 0; a < s->models[i].tm.naliases; a++) {
            hs[n] = hs[i];
            hs[n++].name = s->models[i].tm.aliases[a];
        }
    size_t len = 0;
    char *b = hm_openai_models(hs, n, srv__created(), &len);
    return srv_reply(r, 200, b, len, NULL);
}

static int route_v1_model(srv_req *r)
{
    if (!srv_model_named(r->srv, r->capture))
        return srv_reply_error(r, HERR_MODEL_NOT_FOUND, "The model '%s' does not exist",
                               r->capture);
    size_t len = 0;
    char *b = hm_openai_model(r->capture, srv__created(), &len);
    return srv_reply(r, 200, b, len, NULL);
}

typedef struct {
    hm_field f[64];
    char keys[64][48];
    /* opt_visit builds the aliases' value on its stack: kept here past its return */
    char aliases[OPT_MAX_ALIASES * 260];
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
        if (sval && type == OPT_ALIAS) {
            snprintf(fs->aliases, sizeof fs->aliases, "%s", sval);
            sval = fs->aliases;
        }
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
    /* text is tokenized on libuv's pool: UV_THREADPOOL_SIZE threads, 4 by default */
    const char *pool = getenv("UV_THREADPOOL_SIZE");
    int workers = pool ? atoi(pool) : 4;
    workers = workers < 1 ? 1 : workers > 1024 ? 1024 : workers; /* as libuv clamps it */
    char *b = hm_info(fs.f, fs.n, LONGSERVE_VERSION, workers, hs, s->nmodels, &len);
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
    if (!srv_ready(s) && s->draining)
        return srv_reply_error(r, HERR_UNAVAILABLE, "draining: shutting down");
    if (!srv_ready(s))
        return srv_reply_error(r, HERR_UNAVAILABLE, "loading: %d of %d models loaded", s->nloaded,
                               s->nmodels);
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

/* ---- the table ------------------------------------------------------------------------------ */

const srv_route srv_routes[] = {
    {"/v2/models/*/infer", SRV_POST, HERR_FAM_KSERVE, SRV_RT_MODEL | SRV_RT_ENGINE, srv_job_start,
     "v2_infer", &srv_job_v2, 0},
    {"/v2/models/*/ready", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL | SRV_RT_LOADING,
     route_v2_model_ready, "v2_model_ready", NULL, 0},
    {"/v2/models/*/config", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL, route_v2_config,
     "v2_model_config", NULL, 0},
    {"/v2/models/*/stats", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL | SRV_RT_LOADING, route_v2_stats,
     "v2_model_stats", NULL, 0},
    {"/v2/models/stats", SRV_GET, HERR_FAM_KSERVE, SRV_RT_LOADING, route_v2_stats, "v2_stats", NULL,
     0},
    {"/v2/models/*", SRV_GET, HERR_FAM_KSERVE, SRV_RT_MODEL, route_v2_model, "v2_model", NULL, 0},
    {"/v2/repository/index", SRV_POST, HERR_FAM_KSERVE, 0, route_v2_repository_index,
     "v2_repository_index", NULL, 0},
    {"/v2", SRV_GET, HERR_FAM_KSERVE, SRV_RT_LOADING, route_v2_server, "v2_server", NULL, 0},
    {"/embed", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "embed", &srv_job_text,
     TEI_EMBED},
    {"/embed_all", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "embed_all", &srv_job_text,
     TEI_EMBED_ALL},
    {"/embed_sparse", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "embed_sparse",
     &srv_job_text, TEI_EMBED_SPARSE},
    {"/v1/embeddings", SRV_POST, HERR_FAM_OPENAI, SRV_RT_ENGINE, srv_job_start, "v1_embeddings",
     &srv_job_text, TEI_OPENAI_EMBED},
    {"/predict", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "predict", &srv_job_text,
     TEI_PREDICT},
    {"/token_classify", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "token_classify",
     &srv_job_text, TEI_TOKCLS},
    {"/fill_mask", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "fill_mask", &srv_job_text,
     TEI_FILL_MASK},
    {"/answer", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "answer", &srv_job_text,
     TEI_ANSWER},
    {"/tokenize", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "tokenize", &srv_job_text,
     TEI_TOKENIZE},
    {"/decode", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "decode", &srv_job_text,
     TEI_DECODE},
    {"/generate", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "generate", &srv_job_gen,
     SRV_GEN_GENERATE},
    {"/generate_stream", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "generate_stream",
     &srv_job_gen, SRV_GEN_STREAM},
    {"/similarity", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "similarity",
     &srv_job_text, TEI_SIMILARITY},
    {"/rerank", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "rerank", &srv_job_text,
     TEI_RERANK},
    {"/", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "tgi_root", &srv_job_root,
     SRV_GEN_ROOT},
    {"/invocations", SRV_POST, HERR_FAM_TEI, SRV_RT_ENGINE, srv_job_start, "invocations",
     &srv_job_root, SRV_GEN_ROOT},
    {"/v2/health/live", SRV_GET, HERR_FAM_KSERVE, SRV_RT_PUBLIC | SRV_RT_LOADING, route_v2_live,
     "v2_live", NULL, 0},
    {"/v2/health/ready", SRV_GET, HERR_FAM_KSERVE, SRV_RT_PUBLIC | SRV_RT_LOADING, route_v2_ready,
     "v2_ready", NULL, 0},
    {"/v1/models", SRV_GET, HERR_FAM_OPENAI, 0, route_v1_models, "v1_models", NULL, 0},
    {"/v1/models/**", SRV_GET, HERR_FAM_OPENAI, 0, route_v1_model, "v1_model", NULL, 0},
    {"/info", SRV_GET, HERR_FAM_TEI, 0, route_info, "info", NULL, 0},
    {"/health", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC | SRV_RT_LOADING, route_health, "health", NULL,
     0},
    {"/ready", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC | SRV_RT_LOADING, route_ready, "ready", NULL,
     0},
    {"/metrics", SRV_GET, HERR_FAM_TEI, SRV_RT_PUBLIC | SRV_RT_LOADING, route_metrics, "metrics",
     NULL, 0},
};
const int srv_nroutes = sizeof srv_routes / sizeof srv_routes[0];

const char *srv_route_unversion(const char *url, char *buf, size_t n, char *version, size_t vlen)
{
    static const char pre[] = "/v2/models/";
    version[0] = 0;
    if (strncmp(url, pre, sizeof pre - 1) != 0) return url;
    const char *m = url + sizeof pre - 1, *v = m + strcspn(m, "/");
    if (v == m || strncmp(v, "/versions/", 10) != 0) return url;
    const char *rest = v + 10 + strcspn(v + 10, "/");
    const size_t vn = (size_t)(rest - (v + 10));
    if (vn == 0 || vn >= vlen || strlen(url) >= n) return url;
    memcpy(version, v + 10, vn);
    version[vn] = 0;
    snprintf(buf, n, "%.*s%s", (int)(v - url), url, rest);
    return buf;
}

/* 1 if path matches pattern segment by segment ('*': one non-empty segment; a final '**':
 * the non-empty rest, slashes included, as OpenAI model ids like "org/name" need). */
static int srv__match(const char *pat, const char *path, char *cap, size_t caplen)
{
    while (*pat && *path) {
        if (strcmp(pat, "**") == 0) {
            size_t n = strlen(path);
            if (n >= caplen) return 0;
            memcpy(cap, path, n + 1);
            return 1;
        }
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
