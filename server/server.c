/* Questions about the whole server that several files ask: which model, ready or not,
 * how long a refused client should wait. */
#include <string.h>

#include "server.h"

srv_model *srv_model_find(srv_server *s, const char *name)
{
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, name) == 0 || txt_model_named(&s->models[i].tm, name))
            return &s->models[i];
    return NULL;
}

srv_model *srv_model_named(srv_server *s, const char *name)
{
    srv_model *m = srv_model_find(s, name);
    return m || !s->opt.accept_any_model_name || s->nmodels != 1 ? m : &s->models[0];
}

int srv_ready(const srv_server *s)
{
    return s->ready && !s->draining;
}

int srv_retry_after(const srv_server *s)
{
    /* the time the admitted work needs at each model's measured engine speed (the
     * models' workers run in parallel: the slowest queue decides) */
    double sec = 0;
    for (int i = 0; i < s->nloaded; i++) {
        const srv_model *m = &s->models[i];
        double q = sched_queued_cost(&m->q), t = m->cost_per_s > 0 ? q / m->cost_per_s : 1;
        if (t > sec) sec = t;
    }
    if (sec < 1) sec = 1;
    if (sec > 60) sec = 60;
    return (int)(sec + 0.999);
}

void srv_handle_closed(uv_handle_t *h)
{
    srv_server *s = h->loop->data;
    s->handles--;
}
