// CUDA backend entry: the device state (stream, cuBLASLt handle, scratch, first error), the
// table's buffer ops (cudaMalloc, copies on the stream, sync with the kept error), and
// kn_ops_init_cuda_table, which fills the table from each op family's .cu.
#include <cstdio>
#include <cstring>

#include "cu.cuh"

kn_cu_state kn__cu;

int kn__cu_fail(const char *op, const char *what, const char *msg)
{
    if (!kn__cu.failed) {
        kn__cu.failed = 1;
        std::snprintf(kn__cu.err, sizeof kn__cu.err, "cuda %s: %s: %s", op, what, msg);
    }
    return -1;
}

int kn__cu_check(const char *op, const char *what, cudaError_t e)
{
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    (void)cudaGetLastError(); // a failed call also sets the last error: the next launch's
                              // check must not see it again
    return kn__cu_fail(op, what, cudaGetErrorString(e));
}

int kn__cu_check_lt(const char *op, const char *what, cublasStatus_t s)
{
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    char msg[96];
    std::snprintf(msg, sizeof msg, "cuBLASLt status %d", (int)s);
    return kn__cu_fail(op, what, msg);
}

void *kn__cu_scratch(const char *op, size_t size)
{
    if (size <= kn__cu.scratch_size) return kn__cu.scratch;
    size_t want = kn__cu.scratch_size ? kn__cu.scratch_size : (size_t)1 << 20;
    while (want < size)
        want *= 2;
    if (kn__cu_check(op, "wait before growing scratch", cudaStreamSynchronize(kn__cu.stream)))
        return nullptr;
    cudaFree(kn__cu.scratch);
    kn__cu.scratch = nullptr;
    kn__cu.scratch_size = 0;
    void *p = nullptr;
    char what[64];
    std::snprintf(what, sizeof what, "cudaMalloc(%zu) for scratch", want);
    if (kn__cu_check(op, what, cudaMalloc(&p, want))) return nullptr;
    kn__cu.scratch = p;
    kn__cu.scratch_size = want;
    return p;
}

void *kn__cu_stage(const char *op, char *base, size_t *off, const void *src, size_t n)
{
    void *dst = base + *off;
    *off += kn__cu_align(n);
    if (n && kn__cu_check(op, "stage host indices",
                          cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, kn__cu.stream)))
        return nullptr;
    return dst;
}

// ---- buffer ops ------------------------------------------------------------------------------

static void *cu_buf_alloc(size_t size)
{
    void *p = nullptr;
    char what[64];
    std::snprintf(what, sizeof what, "cudaMalloc(%zu)", size);
    if (kn__cu_check("buf_alloc", what, cudaMalloc(&p, size ? size : 1))) return nullptr;
    return p;
}

static void cu_buf_free(void *p)
{
    if (p) kn__cu_check("buf_free", "cudaFree", cudaFree(p));
}

static int cu_upload(void *dst, const void *src, size_t size)
{
    if (!size) return 0;
    return kn__cu_check("upload", "cudaMemcpyAsync host->device",
                        cudaMemcpyAsync(dst, src, size, cudaMemcpyHostToDevice, kn__cu.stream));
}

static int cu_download(void *dst, const void *src, size_t size)
{
    if (!size) return 0;
    if (kn__cu_check("download", "cudaMemcpyAsync device->host",
                     cudaMemcpyAsync(dst, src, size, cudaMemcpyDeviceToHost, kn__cu.stream)))
        return -1;
    return kn__cu_check("download", "cudaStreamSynchronize", cudaStreamSynchronize(kn__cu.stream));
}

static int cu_sync(char *err, size_t errlen)
{
    kn__cu_check("sync", "cudaStreamSynchronize", cudaStreamSynchronize(kn__cu.stream));
    const int failed = kn__cu.failed;
    if (err && errlen) std::snprintf(err, errlen, "%s", failed ? kn__cu.err : "");
    kn__cu.failed = 0;
    kn__cu.err[0] = 0;
    return failed ? -1 : 0;
}

// ---- the table ---------------------------------------------------------------------------------

static int cu_setup(const kn_cuda_params *p, char *err, size_t errlen)
{
    static int done = 0;
    if (done) return 0; // one state per process: the table's ops share it
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        std::snprintf(err, errlen, "no CUDA device (%s)",
                      e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return -1;
    }
    if (p->device < 0 || p->device >= n) {
        std::snprintf(err, errlen, "CUDA device %d asked for, %d present", p->device, n);
        return -1;
    }
    kn__cu.dev = p->device;
    const char *step = "cudaSetDevice";
    e = cudaSetDevice(p->device);
    if (e == cudaSuccess)
        step = "cudaGetDeviceProperties", e = cudaGetDeviceProperties(&kn__cu.prop, p->device);
    if (e == cudaSuccess)
        step = "cudaStreamCreate",
        e = cudaStreamCreateWithFlags(&kn__cu.stream, cudaStreamNonBlocking);
    kn__cu.lt_ws_size = (size_t)32 << 20;
    if (e == cudaSuccess)
        step = "cudaMalloc(cuBLASLt workspace)", e = cudaMalloc(&kn__cu.lt_ws, kn__cu.lt_ws_size);
    if (e != cudaSuccess) {
        std::snprintf(err, errlen, "cuda init: %s: %s", step, cudaGetErrorString(e));
        return -1;
    }
    const cublasStatus_t s = cublasLtCreate(&kn__cu.lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        std::snprintf(err, errlen, "cuda init: cublasLtCreate: status %d", (int)s);
        return -1;
    }
    done = 1;
    return 0;
}

static const char *const dtype_names[] = {"f32", "bf16", "f16"};

extern "C" int kn_ops_init_cuda_table(kn_ops *ops, const kn_cuda_params *p, char *info,
                                      size_t infolen, char *err, size_t errlen)
{
    char ebuf[256];
    if (!err || !errlen) err = ebuf, errlen = sizeof ebuf;
    if (info && infolen) info[0] = 0;
    const kn_cuda_params def = {KN_CUDA_FAST, KN_DTYPE_BF16, 0};
    if (!p) p = &def;
    if (p->variant != KN_CUDA_FAST && p->variant != KN_CUDA_PLAIN) {
        std::snprintf(err, errlen, "cuda: unknown variant %d", p->variant);
        return -1;
    }
    if (p->wdtype < KN_DTYPE_F32 || p->wdtype > KN_DTYPE_F16) {
        std::snprintf(err, errlen, "cuda: unknown dtype %d", p->wdtype);
        return -1;
    }
    if (cu_setup(p, err, errlen)) return -1;
    kn__cu.variant = p->variant;
    kn__cu.wdtype = p->wdtype;
    static char isa[512];
    std::snprintf(isa, sizeof isa, "%s sm_%d%d, %d SMs, %.0f GiB; %s kernels; linear %s (%s)",
                  kn__cu.prop.name, kn__cu.prop.major, kn__cu.prop.minor,
                  kn__cu.prop.multiProcessorCount,
                  (double)kn__cu.prop.totalGlobalMem / (1024.0 * 1024 * 1024),
                  p->variant == KN_CUDA_FAST ? "fast" : "plain", dtype_names[p->wdtype],
                  p->variant == KN_CUDA_FAST ? "cuBLASLt" : "one thread per output");
    ops->backend = p->variant == KN_CUDA_FAST ? "cuda" : "cuda-plain";
    ops->isa = isa;
    ops->device = 1;
    ops->buf_alloc = cu_buf_alloc;
    ops->buf_free = cu_buf_free;
    ops->upload = cu_upload;
    ops->download = cu_download;
    ops->sync = cu_sync;
    kn__cu_gemm_init(ops);
    kn__cu_norm_init(ops);
    kn__cu_act_init(ops);
    kn__cu_embed_init(ops);
    kn__cu_window_init(ops);
    kn__cu_global_init(ops);
    kn__cu_chunk_init(ops);
    kn__cu_lsh_init(ops);
    if (info && infolen) std::snprintf(info, infolen, "%s", isa);
    return 0;
}

// The engine still passes host pointers (engine/ is not on device buffers yet), so the
// table it would get is refused here with the reason; kn_ops_init_cuda_table is the table.
extern "C" int kn_ops_init_cuda(kn_ops *ops, char *err, size_t errlen)
{
    (void)ops;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (err && errlen) {
        if (e != cudaSuccess || n == 0)
            std::snprintf(err, errlen, "no CUDA device (%s)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        else
            std::snprintf(err, errlen,
                          "%d CUDA device(s) found and the CUDA ops are built, but the engine "
                          "does not run on device buffers yet",
                          n);
    }
    return -1;
}
