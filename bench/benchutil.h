/* Helpers the CPU benchmarks share: errors and integer flags, clocks, the machine-wide
 * CPU use around a timing (what other processes and the hypervisor took), sorted timings. */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H

#include <time.h>

/* Prints "<program>: message" to stderr and returns -1. */
int bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* *out = s as an integer in [lo, hi]; 0, or bench_fail naming flag. */
int bench_parse_int(const char *flag, const char *s, long lo, long hi, int *out);

double bench_now_s(clockid_t clk);

/* Machine-wide CPU use from /proc/stat, to tell how much of a timing other processes and
 * the hypervisor took. */
typedef struct {
    unsigned long long busy, steal, total; /* jiffies over all CPUs */
    double own_cpu_s, wall_s;              /* this process */
} bench_cpu_sample;

/* 0, or -1 when /proc/stat cannot be read. */
int bench_cpu_sample_take(bench_cpu_sample *c);
/* Steal as a percentage of all CPU time, and the cores other processes kept busy on
 * average, between two samples; -1 when unknown. */
void bench_cpu_sample_diff(const bench_cpu_sample *a, const bench_cpu_sample *b, double *steal_pct,
                           double *other_cores);

/* qsort comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* Median of n sorted values. */
double bench_median(const double *sorted, int n);

#endif
