/* The kernel table's entry points for the libFuzzer build of fuzz_http, whose server runs
 * no model: kernels/cpu does not build with clang 14 (GCC's optimize attribute, AVX vector
 * arguments under target attributes), and nothing here may compute. Any call aborts. */
#include <stdio.h>
#include <stdlib.h>

#include "../kernels/kernels.h"

static void absent(const char *fn)
{
    fprintf(stderr, "fuzz_http: %s called, but this build has no kernels\n", fn);
    abort();
}

const char *const kn_op_names[] = {NULL};

void kn_ops_init_ref(kn_ops *ops)
{
    (void)ops;
    absent("kn_ops_init_ref");
}

void kn_ops_init_cpu(kn_ops *ops)
{
    (void)ops;
    absent("kn_ops_init_cpu");
}

void kn_ops_init_cpu_blas(kn_ops *ops)
{
    (void)ops;
    absent("kn_ops_init_cpu_blas");
}

int kn_ops_init_cuda(kn_ops *ops, char *err, size_t errlen)
{
    (void)ops, (void)err, (void)errlen;
    absent("kn_ops_init_cuda");
    return -1;
}

void kn_cpu_set_threads(int n)
{
    (void)n;
    absent("kn_cpu_set_threads");
}
