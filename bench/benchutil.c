/* Helpers the CPU benchmarks share (benchutil.h): errors and integer flags, clocks, /proc/stat
 * samples around a timing, and sorting timings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "benchutil.h"

int bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

int bench_parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return bench_fail("%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    *out = (int)v;
    return 0;
}

double bench_now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_cpu_sample_take(bench_cpu_sample *c)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8] = {0}; /* user nice system idle iowait irq softirq steal */
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return -1;
    c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
    c->steal = v[7];
    c->total = 0;
    for (int i = 0; i < 8; i++)
        c->total += v[i];
    c->own_cpu_s = bench_now_s(CLOCK_PROCESS_CPUTIME_ID);
    c->wall_s = bench_now_s(CLOCK_MONOTONIC);
    return 0;
}

void bench_cpu_sample_diff(const bench_cpu_sample *a, const bench_cpu_sample *b, double *steal_pct,
                           double *other_cores)
{
    *steal_pct = *other_cores = -1;
    double wall = b->wall_s - a->wall_s;
    long hz = sysconf(_SC_CLK_TCK);
    if (b->total <= a->total || wall <= 0 || hz <= 0) return;
    *steal_pct = 100.0 * (double)(b->steal - a->steal) / (double)(b->total - a->total);
    double other =
        ((double)(b->busy - a->busy) / (double)hz - (b->own_cpu_s - a->own_cpu_s)) / wall;
    *other_cores = other > 0 ? other : 0;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *sorted, int n)
{
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}
