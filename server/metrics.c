/* The metric registry: a fixed set of counters, gauges and histograms and their text
 * rendering. Status labels are a fixed list so that every series exists from the start. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "../engine/engine.h"
#include "../common/buf.h"
#include "metrics.h"

static const int metrics__codes[] = {200, 204, 400, 401, 404, 405, 413, 422, 429, 500, 503, 504};
enum { METRICS__NCODES = sizeof metrics__codes / sizeof metrics__codes[0] };

static const char *const metrics__reject_labels[] = {
#define METRICS__LABEL(name, label) label,
    METRICS_REJECT_LIST(METRICS__LABEL)
#undef METRICS__LABEL
};

enum { METRICS__MAXB = 40 };

typedef struct {
    const char *name, *help;
    double bounds[METRICS__MAXB];
    int nb;
    unsigned long long counts[METRICS__MAXB + 1]; /* per bucket (not cumulative); last: +Inf */
    double sum;
    unsigned long long count;
} metrics__hist;

enum {
    H_REQUEST,
    H_QUEUE,
    H_TOKENIZE,
    H_INFER,
    H_INPUT,
    H_BSIZE,
    H_BTOKENS,
    H_BCOST,
    H_BPAD,
    H_BPRED,
    H_TTFT,
    H_TPOT,
    H_COUNT
};

enum { METRICS__MAXOPS = 32 }; /* kernel ops with a series */

struct metrics {
    const char *const *routes;
    int nroutes;
    unsigned long long *requests; /* [nroutes][NCODES] */
    unsigned long long other_code;
    unsigned long long rejects[METRICS_REJ_COUNT];
    metrics__hist h[H_COUNT];
    unsigned long long truncated;
    unsigned long long generated; /* tokens */
    int nops;
    double kernel_s[METRICS__MAXOPS]; /* per op, eng_op_name order */
    double queue_depth, queue_cost, inflight, engine_busy;
    int ready;
};

static void metrics__geom(metrics__hist *h, const char *name, const char *help, double first,
                          double ratio, int n)
{
    h->name = name;
    h->help = help;
    h->nb = n;
    double b = first;
    for (int i = 0; i < n; i++, b *= ratio)
        h->bounds[i] = b;
}

metrics *metrics_new(const char *const *routes, int nroutes)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->routes = routes;
    m->nroutes = nroutes;
    m->nops = eng_op_count() < METRICS__MAXOPS ? eng_op_count() : METRICS__MAXOPS;
    m->requests = calloc((size_t)nroutes * METRICS__NCODES, sizeof *m->requests);
    if (!m->requests) {
        free(m);
        return NULL;
    }
    /* seconds: 100 us .. ~100 s in steps of 2x; counts: powers of two */
    metrics__geom(&m->h[H_REQUEST], "longserve_request_duration_seconds",
                  "Time from a request's arrival to its response", 1e-4, 2, 21);
    metrics__geom(&m->h[H_QUEUE], "longserve_queue_duration_seconds",
                  "Time a request waited between admission and the start of its batch", 1e-4, 2,
                  21);
    metrics__geom(&m->h[H_TOKENIZE], "longserve_tokenization_duration_seconds",
                  "Time to decode and tokenize a text request (uv work pool)", 1e-5, 2, 24);
    metrics__geom(&m->h[H_INFER], "longserve_inference_duration_seconds",
                  "Engine time of one batch", 1e-4, 2, 21);
    metrics__geom(&m->h[H_INPUT], "longserve_input_tokens", "Tokens per request", 1, 2, 23);
    metrics__geom(&m->h[H_BSIZE], "longserve_batch_size", "Requests per batch", 1, 2, 13);
    metrics__geom(&m->h[H_BTOKENS], "longserve_batch_tokens", "Tokens per batch", 1, 2, 25);
    metrics__geom(&m->h[H_BCOST], "longserve_batch_cost",
                  "Attention-aware cost per batch (token x key products per layer)", 1024, 4, 20);
    static const double pad_bounds[] = {0, 0.05, 0.1, 0.25, 0.5, 0.75, 1};
    metrics__hist *hp = &m->h[H_BPAD];
    hp->name = "longserve_batch_padding_ratio";
    hp->help = "Padding tokens (attention_mask 0) over all tokens, per batch";
    hp->nb = (int)(sizeof pad_bounds / sizeof pad_bounds[0]);
    memcpy(hp->bounds, pad_bounds, sizeof pad_bounds);
    /* actual / predicted engine time of a batch: 1/8 .. 8 in steps of sqrt(2) */
    metrics__geom(&m->h[H_BPRED], "longserve_batch_time_ratio",
                  "Engine time of a batch over the time its cost predicted (1: exact)", 0.125,
                  1.4142135623730951, 13);
    metrics__geom(&m->h[H_TTFT], "longserve_generation_time_to_first_token_seconds",
                  "Time from a generation request's arrival to its first token", 1e-3, 2, 18);
    metrics__geom(&m->h[H_TPOT], "longserve_generation_time_per_output_token_seconds",
                  "Mean time per generated token after the first, per request", 1e-4, 2, 18);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    free(m->requests);
    free(m);
}

static void metrics__observe(metrics__hist *h, double v)
{
    int i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void metrics_request(metrics *m, int route, int http, double seconds)
{
    int c = -1;
    for (int i = 0; i < METRICS__NCODES; i++)
        if (metrics__codes[i] == http) c = i;
    if (route >= 0 && route < m->nroutes && c >= 0)
        m->requests[route * METRICS__NCODES + c]++;
    else
        m->other_code++;
    metrics__observe(&m->h[H_REQUEST], seconds);
}

void metrics_reject(metrics *m, metrics_reason why)
{
    if ((unsigned)why < METRICS_REJ_COUNT) m->rejects[why]++;
}

void metrics_queue_time(metrics *m, double s)
{
    metrics__observe(&m->h[H_QUEUE], s);
}

void metrics_tokenize_time(metrics *m, double s)
{
    metrics__observe(&m->h[H_TOKENIZE], s);
}

void metrics_input_tokens(metrics *m, double tokens)
{
    metrics__observe(&m->h[H_INPUT], tokens);
}

void metrics_batch(metrics *m, int requests, double tokens, double cost, double seconds)
{
    metrics__observe(&m->h[H_BSIZE], requests);
    metrics__observe(&m->h[H_BTOKENS], tokens);
    metrics__observe(&m->h[H_BCOST], cost);
    metrics__observe(&m->h[H_INFER], seconds);
}

void metrics_batch_time_ratio(metrics *m, double actual_over_predicted)
{
    metrics__observe(&m->h[H_BPRED], actual_over_predicted);
}

void metrics_batch_padding(metrics *m, double ratio)
{
    metrics__observe(&m->h[H_BPAD], ratio);
}

void metrics_kernel_seconds(metrics *m, const double *seconds, int n)
{
    for (int i = 0; i < n && i < m->nops; i++)
        m->kernel_s[i] += seconds[i];
}

void metrics_generation_first_token(metrics *m, double seconds)
{
    metrics__observe(&m->h[H_TTFT], seconds);
}

void metrics_generated_tokens(metrics *m, int tokens)
{
    m->generated += (unsigned long long)tokens;
}

void metrics_generation_done(metrics *m, int tokens, double seconds_after_first)
{
    if (tokens > 1) metrics__observe(&m->h[H_TPOT], seconds_after_first / (tokens - 1));
}

void metrics_truncated(metrics *m)
{
    m->truncated++;
}

void metrics_set_queue(metrics *m, double depth, double cost)
{
    m->queue_depth = depth;
    m->queue_cost = cost;
}

void metrics_set_inflight(metrics *m, double n)
{
    m->inflight = n;
}

void metrics_set_engine_busy(metrics *m, double n)
{
    m->engine_busy = n;
}

void metrics_set_ready(metrics *m, int ready)
{
    m->ready = ready;
}

/* ---- rendering ------------------------------------------------------------------------- */

static void metrics__gauge(ls_buf *b, const char *name, const char *help, double v)
{
    ls_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void metrics__hist_render(ls_buf *b, const metrics__hist *h)
{
    ls_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    unsigned long long cum = 0;
    for (int i = 0; i < h->nb; i++) {
        cum += h->counts[i];
        ls_buf_printf(b, "%s_bucket{le=\"%.6g\"} %llu\n", h->name, h->bounds[i], cum);
    }
    ls_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", h->name,
                  h->count, h->name, h->sum, h->name, h->count);
}

/* Resident set size from /proc/self/statm (pages), 0 when unavailable. */
static double metrics__rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int ok = f && fscanf(f, "%llu %llu", &size, &resident) == 2;
    if (f) fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return ok && page > 0 ? (double)resident * (double)page : 0.0;
}

char *metrics_render(const metrics *m, size_t *len)
{
    ls_buf b = {0};
    ls_buf_printf(&b, "# HELP longserve_requests_total HTTP requests by route and status\n"
                      "# TYPE longserve_requests_total counter\n");
    for (int r = 0; r < m->nroutes; r++)
        for (int c = 0; c < METRICS__NCODES; c++)
            ls_buf_printf(&b, "longserve_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          m->routes[r], metrics__codes[c], m->requests[r * METRICS__NCODES + c]);
    ls_buf_printf(&b, "longserve_requests_total{route=\"other\",status=\"other\"} %llu\n",
                  m->other_code);
    ls_buf_printf(&b, "# HELP longserve_rejected_requests_total Requests refused or dropped, "
                      "by reason\n# TYPE longserve_rejected_requests_total counter\n");
    for (int i = 0; i < METRICS_REJ_COUNT; i++)
        ls_buf_printf(&b, "longserve_rejected_requests_total{reason=\"%s\"} %llu\n",
                      metrics__reject_labels[i], m->rejects[i]);
    ls_buf_printf(&b,
                  "# HELP longserve_truncated_requests_total Requests whose input was "
                  "truncated\n# TYPE longserve_truncated_requests_total counter\n"
                  "longserve_truncated_requests_total %llu\n",
                  m->truncated);
    ls_buf_printf(&b,
                  "# HELP longserve_generated_tokens_total Tokens generated (text generation "
                  "routes)\n# TYPE longserve_generated_tokens_total counter\n"
                  "longserve_generated_tokens_total %llu\n",
                  m->generated);
    ls_buf_printf(&b, "# HELP longserve_kernel_seconds_total Engine time in each kernel op\n"
                      "# TYPE longserve_kernel_seconds_total counter\n");
    for (int i = 0; i < m->nops; i++)
        ls_buf_printf(&b, "longserve_kernel_seconds_total{op=\"%s\"} %.17g\n", eng_op_name(i),
                      m->kernel_s[i]);
    for (int i = 0; i < H_COUNT; i++)
        metrics__hist_render(&b, &m->h[i]);
    metrics__gauge(&b, "longserve_queue_depth", "Requests waiting for the engine", m->queue_depth);
    metrics__gauge(&b, "longserve_queued_cost", "Attention-aware cost waiting for the engine",
                   m->queue_cost);
    metrics__gauge(&b, "longserve_inflight_requests", "Requests admitted and not yet answered",
                   m->inflight);
    metrics__gauge(&b, "longserve_engine_busy", "Engine workers running a batch", m->engine_busy);
    metrics__gauge(&b, "longserve_ready", "1 when every model is loaded and not draining",
                   m->ready);
    metrics__gauge(&b, "process_resident_memory_bytes",
                   "Resident memory of the process (weights, activations, buffers)",
                   metrics__rss_bytes());
    return ls_buf_finish(&b, len);
}
