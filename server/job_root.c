/* The root route of TGI and TEI (POST /, and /invocations as SageMaker calls it): the model
 * the body names (else the first one) chooses. A model that generates answers as TGI's
 * root (the generation job); any other as TEI routes its root by model type: an embedding
 * model /embed (/similarity for {"inputs": {"source_sentence", ...}}), a sequence classifier
 * /predict (/rerank for {"query", "texts"}), and the pipelines' heads their routes, so that
 * huggingface_hub's InferenceClient(base_url=...) works for every task. */
#include <stddef.h>

#include "request.h"

static void *jroot_prepare(const srv_req *r, srv_job_reply *rep)
{
    srv_server *s = r->srv;
    char model[128];
    tei_shape shape;
    tei_root_peek(r->body, r->len, model, sizeof model, &shape);
    const srv_model *m = model[0] ? srv_model_named(s, model) : &s->models[0];
    if (!m) m = &s->models[0]; /* the route's parser reports the unknown name */
    if (m->info.can_generate) {
        rep->kind = &srv_job_gen;
        return srv_job_gen.prepare(r, rep);
    }
    tei_kind k = TEI_EMBED;
    switch (m->info.head) {
    case ENG_HEAD_SEQCLS:
        k = shape == TEI_SHAPE_RERANK ? TEI_RERANK : TEI_PREDICT;
        break;
    case ENG_HEAD_TOKCLS:
        k = TEI_TOKCLS;
        break;
    case ENG_HEAD_MLM:
        k = TEI_FILL_MASK;
        break;
    case ENG_HEAD_QA:
        k = TEI_ANSWER;
        break;
    default:
        k = shape == TEI_SHAPE_SIMILARITY ? TEI_SIMILARITY : TEI_EMBED;
        break;
    }
    rep->kind = &srv_job_text;
    return srv_job_text_prepare(r, k, rep);
}

static void jroot_free(void *job)
{
    (void)job; /* never holds one: the kind it names does */
}

const srv_job_kind srv_job_root = {
    .name = "root",
    .id = 3,
    .tokenizes = 1,
    .prepare = jroot_prepare,
    .free = jroot_free,
};
