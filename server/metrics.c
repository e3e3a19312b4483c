/* The metric registry: a fixed set of counters, gauges and histograms and their text
 * rendering. Status labels and model names are fixed lists so that every series exists
 * from the start; the process_* series are read from /proc and getrusage at each scrape. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../engine/engine.h"
#include "../common/buf.h"
#include "metrics.h"

static const int metrics__codes[] = {200, 204, 400, 401, 404, 405, 413, 422, 429, 500, 503, 504};
enum { METRICS__NCODES = sizeof metrics__codes / sizeof metrics__codes[0] };
/* Requests no route took: an unknown path or method, and libmicrohttpd's own refusals
 * (server/http.c), counted as route "(none)". */
static const int metrics__none_codes[] = {400, 404, 405, 413, 414, 431, 500, 505};
enum { METRICS__NNONE = sizeof metrics__none_codes / sizeof metrics__none_codes[0] };

static const char *const metrics__reject_labels[] = {
#define METRICS__LABEL(name, label) label,
    METRICS_REJECT_LIST(METRICS__LABEL)
#undef METRICS__LABEL
};

enum { METRICS__MAXB = 40 };

/* A histogram's buckets and the observations of one series of it. */
typedef struct {
    const char *name, *help;
    double bounds[METRICS__MAXB];
    int nb;
} metrics__hdesc;

typedef struct {
    unsigned long long counts[METRICS__MAXB + 1]; /* per bucket (not cumulative); last: +Inf */
    double sum;
    unsigned long long count;
} metrics__hist;

/* Histograms of the whole server, then those with a series per model. */
enum { H_REQUEST, H_TOKENIZE, H_GLOBAL };
enum {
    HM_QUEUE,
    HM_INFER,
    HM_INPUT,
    HM_BREQUESTS,
    HM_BTOKENS,
    HM_BCOST,
    HM_BPAD,
    HM_BPRED,
    HM_TTFT,
    HM_TPOT,
    HM_COUNT
};

enum { METRICS__MAXOPS = 32 }; /* kernel ops with a series */

typedef struct {
    const char *name;
    metrics__hist h[HM_COUNT];
    double kernel_s[METRICS__MAXOPS]; /* per op, eng_op_name order */
    unsigned long long generated;     /* tokens */
    double queue_depth, queue_cost;
    int busy;
} metrics__model;

struct metrics {
    const char *const *routes;
    int nroutes;
    unsigned long long *requests;            /* [nroutes][NCODES] */
    unsigned long long none[METRICS__NNONE]; /* route "(none)" */
    unsigned long long other_code;
    unsigned long long rejects[METRICS_REJ_COUNT];
    metrics__hdesc hd[H_GLOBAL], hmd[HM_COUNT];
    metrics__hist h[H_GLOBAL];
    metrics__model *models;
    int nmodels;
    unsigned long long truncated;
    int nops;
    double inflight;
    int ready;
    const char *version, *backend;
    double start_time_s; /* process_start_time_seconds */
};

static void metrics__geom(metrics__hdesc *h, const char *name, const char *help, double first,
                          double ratio, int n)
{
    h->name = name;
    h->help = help;
    h->nb = n;
    double b = first;
    for (int i = 0; i < n; i++, b *= ratio)
        h->bounds[i] = b;
}

/* The process's start as Prometheus client libraries read it: /proc/self/stat's starttime
 * (clock ticks after boot) plus /proc/stat's btime; now when /proc says nothing. */
static double metrics__start_time(void)
{
    double boot = 0, ticks = (double)sysconf(_SC_CLK_TCK);
    char line[256], buf[1024];
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) boot = strtod(line + 6, NULL);
    if (f) fclose(f);
    unsigned long long start = 0;
    f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    /* after ")": state is field 3, starttime field 22 */
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p) start = strtoull(p + 1, NULL, 10);
    if (boot > 0 && ticks > 0 && start > 0) return boot + (double)start / ticks;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

metrics *metrics_new(const char *const *routes, int nroutes, const char *const *models, int nmodels,
                     const char *version, const char *backend)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->routes = routes;
    m->nroutes = nroutes;
    m->version = version;
    m->backend = backend;
    m->start_time_s = metrics__start_time();
    m->nops = eng_op_count() < METRICS__MAXOPS ? eng_op_count() : METRICS__MAXOPS;
    m->requests = calloc((size_t)nroutes * METRICS__NCODES, sizeof *m->requests);
    m->models = calloc(nmodels > 0 ? (size_t)nmodels : 1, sizeof *m->models);
    if (!m->requests || !m->models) {
        metrics_free(m);
        return NULL;
    }
    m->nmodels = nmodels;
    for (int i = 0; i < nmodels; i++)
        m->models[i].name = models[i];
    /* seconds: 100 us .. ~100 s in steps of 2x; counts: powers of two */
    metrics__geom(&m->hd[H_REQUEST], "longserve_request_duration_seconds",
                  "Time from a request's arrival to its response", 1e-4, 2, 21);
    metrics__geom(&m->hd[H_TOKENIZE], "longserve_tokenization_duration_seconds",
                  "Time to decode and tokenize a text request (uv work pool)", 1e-5, 2, 24);
    metrics__hdesc *d = m->hmd;
    metrics__geom(&d[HM_QUEUE], "longserve_queue_duration_seconds",
                  "Time a request waited between admission and the start of its batch", 1e-4, 2,
                  21);
    metrics__geom(&d[HM_INFER], "longserve_inference_duration_seconds", "Engine time of one batch",
                  1e-4, 2, 21);
    metrics__geom(&d[HM_INPUT], "longserve_input_tokens", "Tokens per request", 1, 2, 23);
    metrics__geom(&d[HM_BREQUESTS], "longserve_batch_requests", "Requests per batch", 1, 2, 13);
    metrics__geom(&d[HM_BTOKENS], "longserve_batch_tokens", "Tokens per batch", 1, 2, 25);
    metrics__geom(&d[HM_BCOST], "longserve_batch_cost",
                  "Attention-aware cost per batch (token x key products per layer)", 1024, 4, 20);
    static const double pad_bounds[] = {0, 0.05, 0.1, 0.25, 0.5, 0.75, 1};
    d[HM_BPAD] = (metrics__hdesc){
        .name = "longserve_batch_padding_ratio",
        .help = "Padding tokens (attention_mask 0) over all tokens, per batch",
        .nb = (int)(sizeof pad_bounds / sizeof pad_bounds[0]),
    };
    memcpy(d[HM_BPAD].bounds, pad_bounds, sizeof pad_bounds);
    /* actual / predicted engine time of a batch: 1/8 .. 8 in steps of sqrt(2) */
    metrics__geom(&d[HM_BPRED], "longserve_batch_time_ratio",
                  "Engine time of a batch over the time its cost predicted (1: exact)", 0.125,
                  1.4142135623730951, 13);
    metrics__geom(&d[HM_TTFT], "longserve_generation_time_to_first_token_seconds",
                  "Time from a generation request's arrival to its first token", 1e-3, 2, 18);
    metrics__geom(&d[HM_TPOT], "longserve_generation_time_per_output_token_seconds",
                  "Mean time per generated token after the first, per request", 1e-4, 2, 18);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    free(m->requests);
    free(m->models);
    free(m);
}

static void metrics__observe(metrics__hist *h, const metrics__hdesc *d, double v)
{
    int i = 0;
    while (i < d->nb && v > d->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

/* The model's series, or NULL for an index the registry does not know. */
static metrics__model *metrics__m(metrics *m, int model)
{
    return model >= 0 && model < m->nmodels ? &m->models[model] : NULL;
}

static void metrics__model_observe(metrics *m, int model, int which, double v)
{
    metrics__model *mm = metrics__m(m, model);
    if (mm) metrics__observe(&mm->h[which], &m->hmd[which], v);
}

void metrics_request(metrics *m, int route, int http, double seconds)
{
    int c = -1;
    for (int i = 0; i < METRICS__NCODES; i++)
        if (metrics__codes[i] == http) c = i;
    int nc = -1;
    for (int i = 0; i < METRICS__NNONE; i++)
        if (metrics__none_codes[i] == http) nc = i;
    if (route >= 0 && route < m->nroutes && c >= 0)
        m->requests[route * METRICS__NCODES + c]++;
    else if (route < 0 && nc >= 0)
        m->none[nc]++;
    else
        m->other_code++;
    metrics__observe(&m->h[H_REQUEST], &m->hd[H_REQUEST], seconds);
}

void metrics_reject(metrics *m, metrics_reason why)
{
    if ((unsigned)why < METRICS_REJ_COUNT) m->rejects[why]++;
}

void metrics_tokenize_time(metrics *m, double s)
{
    metrics__observe(&m->h[H_TOKENIZE], &m->hd[H_TOKENIZE], s);
}

void metrics_queue_time(metrics *m, int model, double s)
{
    metrics__model_observe(m, model, HM_QUEUE, s);
}

void metrics_input_tokens(metrics *m, int model, double tokens)
{
    metrics__model_observe(m, model, HM_INPUT, tokens);
}

void metrics_batch(metrics *m, int model, int requests, double tokens, double cost, double seconds)
{
    metrics__model_observe(m, model, HM_BREQUESTS, requests);
    metrics__model_observe(m, model, HM_BTOKENS, tokens);
    metrics__model_observe(m, model, HM_BCOST, cost);
    metrics__model_observe(m, model, HM_INFER, seconds);
}

void metrics_batch_time_ratio(metrics *m, int model, double actual_over_predicted)
{
    metrics__model_observe(m, model, HM_BPRED, actual_over_predicted);
}

void metrics_batch_padding(metrics *m, int model, double ratio)
{
    metrics__model_observe(m, model, HM_BPAD, ratio);
}

void metrics_kernel_seconds(metrics *m, int model, const double *seconds, int n)
{
    metrics__model *mm = metrics__m(m, model);
    for (int i = 0; mm && i < n && i < m->nops; i++)
        mm->kernel_s[i] += seconds[i];
}

void metrics_generation_first_token(metrics *m, int model, double seconds)
{
    metrics__model_observe(m, model, HM_TTFT, seconds);
}

void metrics_generated_tokens(metrics *m, int model, int tokens)
{
    metrics__model *mm = metrics__m(m, model);
    if (mm) mm->generated += (unsigned long long)tokens;
}

void metrics_generation_done(metrics *m, int model, int tokens, double seconds_after_first)
{
    if (tokens > 1) metrics__model_observe(m, model, HM_TPOT, seconds_after_first / (tokens - 1));
}

void metrics_truncated(metrics *m)
{
    m->truncated++;
}

void metrics_set_queue(metrics *m, int model, double depth, double cost)
{
    metrics__model *mm = metrics__m(m, model);
    if (!mm) return;
    mm->queue_depth = depth;
    mm->queue_cost = cost;
}

void metrics_set_inflight(metrics *m, double n)
{
    m->inflight = n;
}

void metrics_set_engine_busy(metrics *m, int model, int busy)
{
    metrics__model *mm = metrics__m(m, model);
    if (mm) mm->busy = busy;
}

void metrics_set_ready(metrics *m, int ready)
{
    m->ready = ready;
}

/* ---- rendering ------------------------------------------------------------------------- */

static void metrics__head(ls_buf *b, const char *name, const char *type, const char *help)
{
    ls_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics__gauge(ls_buf *b, const char *name, const char *help, double v)
{
    metrics__head(b, name, "gauge", help);
    ls_buf_printf(b, "%s %.17g\n", name, v);
}

/* One series of a histogram; labels: "" or `model="x",` (with the comma). */
static void metrics__hist_render(ls_buf *b, const metrics__hdesc *d, const metrics__hist *h,
                                 const char *labels)
{
    unsigned long long cum = 0;
    for (int i = 0; i < d->nb; i++) {
        cum += h->counts[i];
        ls_buf_printf(b, "%s_bucket{%sle=\"%.6g\"} %llu\n", d->name, labels, d->bounds[i], cum);
    }
    size_t n = strlen(labels);
    /* the sum and count take the labels without the trailing comma, in braces */
    ls_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n%s_sum%s%.*s%s %.17g\n%s_count%s%.*s%s %llu\n",
                  d->name, labels, h->count, d->name, n ? "{" : "", (int)(n ? n - 1 : 0), labels,
                  n ? "}" : "", h->sum, d->name, n ? "{" : "", (int)(n ? n - 1 : 0), labels,
                  n ? "}" : "", h->count);
}

/* A label value as the exposition format quotes it. */
static void metrics__label(ls_buf *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            ls_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            ls_buf_puts(b, "\\n");
        else
            ls_buf_put(b, v, 1);
    }
}

/* What Prometheus client libraries export of a Linux process: CPU from getrusage, memory
 * from /proc/self/stat (vsize, rss in pages), descriptors from /proc/self/fd and the limit. */
static void metrics__process(ls_buf *b, const metrics *m)
{
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    unsigned long long vsize = 0, rss = 0;
    const char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 23; field++) /* vsize is field 23, rss 24 */
        p = strchr(p + 1, ' ');
    if (p && sscanf(p + 1, "%llu %llu", &vsize, &rss) != 2) vsize = rss = 0;
    long page = sysconf(_SC_PAGESIZE);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d) {
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    struct rlimit rl;
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? (double)rl.rlim_cur
                         : -1;
    metrics__head(b, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds");
    ls_buf_printf(b, "process_cpu_seconds_total %.17g\n", cpu);
    metrics__gauge(b, "process_resident_memory_bytes",
                   "Resident memory size in bytes (weights, activations, buffers)",
                   (double)rss * (double)(page > 0 ? page : 0));
    metrics__gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes",
                   (double)vsize);
    metrics__gauge(b, "process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds", m->start_time_s);
    metrics__gauge(b, "process_open_fds", "Number of open file descriptors", fds);
    if (max_fds >= 0)
        metrics__gauge(b, "process_max_fds", "Maximum number of open file descriptors", max_fds);
}

char *metrics_render(const metrics *m, size_t *len)
{
    ls_buf b = {0};
    metrics__head(&b, "longserve_build_info", "gauge",
                  "Always 1; the labels say what runs: the version and the engine backend "
                  "(--backend)");
    ls_buf_puts(&b, "longserve_build_info{version=\"");
    metrics__label(&b, m->version);
    ls_buf_puts(&b, "\",backend=\"");
    metrics__label(&b, m->backend);
    ls_buf_puts(&b, "\"} 1\n");
    metrics__head(&b, "longserve_requests_total", "counter", "HTTP requests by route and status");
    for (int r = 0; r < m->nroutes; r++)
        for (int c = 0; c < METRICS__NCODES; c++)
            ls_buf_printf(&b, "longserve_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          m->routes[r], metrics__codes[c], m->requests[r * METRICS__NCODES + c]);
    for (int c = 0; c < METRICS__NNONE; c++)
        ls_buf_printf(&b, "longserve_requests_total{route=\"(none)\",status=\"%d\"} %llu\n",
                      metrics__none_codes[c], m->none[c]);
    ls_buf_printf(&b, "longserve_requests_total{route=\"other\",status=\"other\"} %llu\n",
                  m->other_code);
    metrics__head(&b, "longserve_rejected_requests_total", "counter",
                  "Requests refused or dropped, by reason");
    for (int i = 0; i < METRICS_REJ_COUNT; i++)
        ls_buf_printf(&b, "longserve_rejected_requests_total{reason=\"%s\"} %llu\n",
                      metrics__reject_labels[i], m->rejects[i]);
    metrics__head(&b, "longserve_truncated_requests_total", "counter",
                  "Requests whose input was truncated");
    ls_buf_printf(&b, "longserve_truncated_requests_total %llu\n", m->truncated);
    for (int i = 0; i < H_GLOBAL; i++) {
        metrics__head(&b, m->hd[i].name, "histogram", m->hd[i].help);
        metrics__hist_render(&b, &m->hd[i], &m->h[i], "");
    }
    metrics__gauge(&b, "longserve_inflight_requests", "Requests admitted and not yet answered",
                   m->inflight);
    metrics__gauge(&b, "longserve_ready", "1 when every model is loaded and not draining",
                   m->ready);

    /* ---- per model ---- */
    char lab[200];
    for (int i = 0; i < HM_COUNT; i++) {
        metrics__head(&b, m->hmd[i].name, "histogram", m->hmd[i].help);
        for (int k = 0; k < m->nmodels; k++) {
            snprintf(lab, sizeof lab, "model=\"%s\",", m->models[k].name);
            metrics__hist_render(&b, &m->hmd[i], &m->models[k].h[i], lab);
        }
    }
    metrics__head(&b, "longserve_kernel_seconds_total", "counter",
                  "Engine time in each kernel op, per model");
    for (int k = 0; k < m->nmodels; k++)
        for (int i = 0; i < m->nops; i++)
            ls_buf_printf(&b, "longserve_kernel_seconds_total{model=\"%s\",op=\"%s\"} %.17g\n",
                          m->models[k].name, eng_op_name(i), m->models[k].kernel_s[i]);
    metrics__head(&b, "longserve_generated_tokens_total", "counter",
                  "Tokens generated (text generation routes)");
    for (int k = 0; k < m->nmodels; k++)
        ls_buf_printf(&b, "longserve_generated_tokens_total{model=\"%s\"} %llu\n",
                      m->models[k].name, m->models[k].generated);
    metrics__head(&b, "longserve_queued_requests", "gauge", "Requests waiting for the engine");
    for (int k = 0; k < m->nmodels; k++)
        ls_buf_printf(&b, "longserve_queued_requests{model=\"%s\"} %.17g\n", m->models[k].name,
                      m->models[k].queue_depth);
    metrics__head(&b, "longserve_queued_cost", "gauge",
                  "Attention-aware cost waiting for the engine");
    for (int k = 0; k < m->nmodels; k++)
        ls_buf_printf(&b, "longserve_queued_cost{model=\"%s\"} %.17g\n", m->models[k].name,
                      m->models[k].queue_cost);
    metrics__head(&b, "longserve_engine_busy", "gauge",
                  "1 while the model's engine worker runs a batch");
    for (int k = 0; k < m->nmodels; k++)
        ls_buf_printf(&b, "longserve_engine_busy{model=\"%s\"} %d\n", m->models[k].name,
                      m->models[k].busy);
    metrics__process(&b, m);
    return ls_buf_finish(&b, len);
}
