/* cu.cuh — what the CUDA backend's .cu files share: the device state (one per process: the
 * stream every op runs on, the cuBLASLt handle, a growing scratch area, the first error
 * since the last sync) and the error helpers. Only the .cu files of kernels/cuda include it. */
#ifndef KN_CUDA_CU_CUH
#define KN_CUDA_CU_CUH

#include <cstddef>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../kernels.h"
#include "index.h"

struct kn_cu_state {
    int dev;
    int variant; /* KN_CUDA_FAST or KN_CUDA_PLAIN */
    int wdtype;  /* KN_DTYPE_* */
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws; /* cuBLASLt workspace */
    size_t lt_ws_size;
    void *scratch; /* grows; ops carve it per call (stream order keeps uses apart) */
    size_t scratch_size;
    cudaDeviceProp prop;
    int failed;
    char err[512];
};
extern kn_cu_state kn__cu;

/* Records the first failure (op name and message) for sync; returns -1. */
int kn__cu_fail(const char *op, const char *what, const char *msg);
/* Checks a CUDA runtime result (e) or the last launch error (e == cudaSuccess: asks
 * cudaGetLastError); returns 0 or kn__cu_fail's -1. */
int kn__cu_check(const char *op, const char *what, cudaError_t e);
int kn__cu_check_lt(const char *op, const char *what, cublasStatus_t s);
/* At least size bytes of scratch, 256-byte aligned, valid until the next call; NULL after
 * recording the failure. Growing waits for the stream (older ops may still read it). */
void *kn__cu_scratch(const char *op, size_t size);
/* Copies n host bytes into scratch at *off (advanced, 256-aligned); NULL on failure. */
void *kn__cu_stage(const char *op, char *base, size_t *off, const void *src, size_t n);

#define KN_CU_LAUNCHED(op, what) kn__cu_check(op, what, cudaSuccess)

/* Bytes rounded up to the scratch alignment. */
static inline size_t kn__cu_align(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

/* A prepared linear weight (kn_weight.prep): the device copy in the table's dtype. */
struct kn_cu_weight {
    void *w; /* [N, K] row-major, dtype */
    int dtype;
};

/* float <-> the operand types of the kernels, one spelling for all three. */
template <class T> __device__ __forceinline__ T kn_cvt(float v);
template <> __device__ __forceinline__ float kn_cvt<float>(float v)
{
    return v;
}
template <> __device__ __forceinline__ __nv_bfloat16 kn_cvt<__nv_bfloat16>(float v)
{
    return __float2bfloat16(v);
}
template <> __device__ __forceinline__ __half kn_cvt<__half>(float v)
{
    return __float2half(v);
}
__device__ __forceinline__ float kn_f32(float v)
{
    return v;
}
__device__ __forceinline__ float kn_f32(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}
__device__ __forceinline__ float kn_f32(__half v)
{
    return __half2float(v);
}
/* v rounded to T and back: the value a T operand holds. */
template <class T> __device__ __forceinline__ float kn_round(float v)
{
    return kn_f32(kn_cvt<T>(v));
}

/* One key z of the plain attention kernels' three passes over a query's keys: pass 0 keeps the
 * max, pass 1 the sum of exps, pass 2 adds p·v (v: d values) to the output row o. */
__device__ __forceinline__ void kn_plain_softmax_pass(int pass, float z, float *mx, float *sum,
                                                      const float *v, float *o, int d)
{
    if (pass == 0) {
        *mx = fmaxf(*mx, z);
    } else if (pass == 1) {
        *sum += expf(z - *mx);
    } else {
        const float p = expf(z - *mx) / *sum;
        for (int c = 0; c < d; c++)
            o[c] = fmaf(p, v[c], o[c]);
    }
}

/* out[i] = T(in[i]) on the stream; 0 or -1. */
int kn__cu_convert(const char *op, const float *in, void *out, size_t n, int dtype);

/* The op families' entries (gemm.cu, norm.cu, act.cu, embed.cu, window.cu, global.cu,
 * chunk.cu, lsh.cu): each fills its entries of the table for the state's variant. */
void kn__cu_gemm_init(kn_ops *ops);
void kn__cu_norm_init(kn_ops *ops);
void kn__cu_act_init(kn_ops *ops);
void kn__cu_embed_init(kn_ops *ops);
void kn__cu_window_init(kn_ops *ops);
void kn__cu_global_init(kn_ops *ops);
void kn__cu_chunk_init(kn_ops *ops);
void kn__cu_lsh_init(kn_ops *ops);

/* y[M,N] = x[M,K]·w[N,K]ᵀ (+ b) in float32 on the stream, w float32 on the device: the
 * global keys/values of global.cu go through it. 0 or -1. */
int kn__cu_linear_f32(const char *op, const float *x, const float *w, const float *b, float *y,
                      int M, int N, int K);

#endif
