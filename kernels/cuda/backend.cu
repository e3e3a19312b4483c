// CUDA backend entry: finds a usable device. The device ops (cuBLASLt GEMMs, window and
// global attention) are the GPU issue's work; until they exist this backend reports
// itself unavailable, so the engine never mixes host pointers with device kernels.
#include <cstdio>

#include <cuda_runtime.h>

#include "../kernels.h" // carries its own extern "C"

extern "C" int kn_ops_init_cuda(kn_ops *ops, char *err, size_t errlen)
{
    (void)ops;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (err && errlen)
            std::snprintf(err, errlen, "no CUDA device (%s)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return -1;
    }
    if (err && errlen)
        std::snprintf(err, errlen, "%d CUDA device(s) found, but the CUDA ops are not built yet",
                      n);
    return -1;
}

extern "C" int kn_ops_init_cuda_table(kn_ops *ops, const kn_cuda_params *p, char *info,
                                      size_t infolen, char *err, size_t errlen)
{
    (void)p;
    if (info && infolen) info[0] = 0;
    return kn_ops_init_cuda(ops, err, errlen);
}
