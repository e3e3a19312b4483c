/* kn_ops_init_cuda for builds without CUDA: the device backend is absent. */
#include <stdio.h>

#include "../kernels.h"

int kn_ops_init_cuda(kn_ops *ops, char *err, size_t errlen)
{
    (void)ops;
    if (err && errlen) snprintf(err, errlen, "this build has no CUDA support (-Dcuda=disabled)");
    return -1;
}

int kn_ops_init_cuda_table(kn_ops *ops, const kn_cuda_params *p, char *info, size_t infolen,
                           char *err, size_t errlen)
{
    (void)ops, (void)p;
    if (info && infolen) info[0] = 0;
    return kn_ops_init_cuda(ops, err, errlen);
}
