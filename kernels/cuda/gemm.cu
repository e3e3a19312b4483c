// Linear layers on the device: weights prepared once in the table's dtype (f32, bf16, f16),
// y = x·wᵀ + b with float32 accumulation and float32 output. Fast: cuBLASLt, one matmul per
// row group (so a group's numbers are those it gets alone) with the bias as its epilogue;
// bf16/f16 activations are rounded from float32 into scratch first. Plain: one thread per
// output. cuBLASLt's GELU epilogues are the tanh approximation, not HF's exact erf GELU, so
// the table's gelu stays a separate op.
#include <cstdio>
#include <cstdlib>

#include "cu.cuh"

// ---- kernels ----------------------------------------------------------------------------------

template <class T> __global__ void k_convert(const float *in, T *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = kn_cvt<T>(in[i]);
}

// y[m, n]: the T-rounded x row against the T weight row, float32 sums in k order.
template <class T>
__global__ void k_linear_plain(const float *x, const T *w, const float *b, float *y, int M, int N,
                               int K)
{
    const int n = blockIdx.x * blockDim.x + threadIdx.x, m = blockIdx.y;
    if (n >= N || m >= M) return;
    const float *xr = x + (size_t)m * K;
    const T *wr = w + (size_t)n * K;
    float acc = 0.0f;
    for (int k = 0; k < K; k++)
        acc = fmaf(kn_round<T>(xr[k]), kn_f32(wr[k]), acc);
    y[(size_t)m * N + n] = acc + (b ? b[n] : 0.0f);
}

// ---- launchers ----------------------------------------------------------------------------------

static size_t dtype_size(int dtype)
{
    return dtype == KN_DTYPE_F32 ? 4 : 2;
}

int kn__cu_convert(const char *op, const float *in, void *out, size_t n, int dtype)
{
    if (!n) return 0;
    const int blocks = kn_ix_blocks((long long)n, 256, 4096);
    if (dtype == KN_DTYPE_BF16)
        k_convert<<<blocks, 256, 0, kn__cu.stream>>>(in, (__nv_bfloat16 *)out, n);
    else if (dtype == KN_DTYPE_F16)
        k_convert<<<blocks, 256, 0, kn__cu.stream>>>(in, (__half *)out, n);
    else
        k_convert<<<blocks, 256, 0, kn__cu.stream>>>(in, (float *)out, n);
    return KN_CU_LAUNCHED(op, "k_convert");
}

static int linear_plain(const char *op, const float *x, const void *w, int dtype, const float *b,
                        float *y, int M, int N, int K)
{
    if (!M || !N) return 0;
    const dim3 grid((N + 127) / 128, M);
    if (dtype == KN_DTYPE_BF16)
        k_linear_plain<<<grid, 128, 0, kn__cu.stream>>>(x, (const __nv_bfloat16 *)w, b, y, M, N, K);
    else if (dtype == KN_DTYPE_F16)
        k_linear_plain<<<grid, 128, 0, kn__cu.stream>>>(x, (const __half *)w, b, y, M, N, K);
    else
        k_linear_plain<<<grid, 128, 0, kn__cu.stream>>>(x, (const float *)w, b, y, M, N, K);
    return KN_CU_LAUNCHED(op, "k_linear_plain");
}

// The largest power of two (at most 256) that divides p's address.
static uint32_t ptr_align(const void *p)
{
    const uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && a % al)
        al >>= 1;
    return al;
}

// Row-major y[M,N] = x[M,K]·w[N,K]ᵀ seen column-major: D (N×M) = op(A)·B with A = w read as
// a K×N column-major matrix and transposed (op T), B = x as K×M column-major. The bias
// epilogue adds b[n] down D's rows, i.e. to every row m of y.
static int linear_lt(const char *op, const void *x, const void *w, int dtype, const float *b,
                     float *y, int M, int N, int K)
{
    const cudaDataType ab = dtype == KN_DTYPE_BF16  ? CUDA_R_16BF
                            : dtype == KN_DTYPE_F16 ? CUDA_R_16F
                                                    : CUDA_R_32F;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cublasLtEpilogue_t epi = b ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    const size_t ws = kn__cu.lt_ws_size;
    cublasLtMatmulHeuristicResult_t res = {};
    int nres = 0;
    int rc = kn__cu_check_lt(op, "cublasLtMatmulDescCreate",
                             cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    rc = rc ? rc
            : kn__cu_check_lt(op, "set TRANSA",
                              cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                             sizeof ta));
    rc = rc ? rc
            : kn__cu_check_lt(op, "set TRANSB",
                              cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                             sizeof tb));
    rc = rc ? rc
            : kn__cu_check_lt(op, "set EPILOGUE",
                              cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                             &epi, sizeof epi));
    if (!rc && b)
        rc = kn__cu_check_lt(
            op, "set BIAS_POINTER",
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
    rc = rc ? rc : kn__cu_check_lt(op, "layout A", cublasLtMatrixLayoutCreate(&la, ab, K, N, K));
    rc = rc ? rc : kn__cu_check_lt(op, "layout B", cublasLtMatrixLayoutCreate(&lb, ab, K, M, K));
    rc = rc ? rc
            : kn__cu_check_lt(op, "layout D", cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, N));
    rc = rc ? rc : kn__cu_check_lt(op, "preference", cublasLtMatmulPreferenceCreate(&pref));
    rc = rc ? rc
            : kn__cu_check_lt(op, "set MAX_WORKSPACE",
                              cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    // the heuristic assumes 256-byte aligned operands unless told: row groups start anywhere
    const uint32_t align[4] = {ptr_align(w), ptr_align(x), ptr_align(y), ptr_align(y)};
    const cublasLtMatmulPreferenceAttributes_t aattr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && !rc; i++)
        rc = kn__cu_check_lt(
            op, "set MIN_ALIGNMENT",
            cublasLtMatmulPreferenceSetAttribute(pref, aattr[i], &align[i], sizeof align[i]));
    rc = rc ? rc
            : kn__cu_check_lt(op, "cublasLtMatmulAlgoGetHeuristic",
                              cublasLtMatmulAlgoGetHeuristic(kn__cu.lt, desc, la, lb, lc, lc, pref,
                                                             1, &res, &nres));
    if (!rc && nres == 0) {
        char msg[96];
        std::snprintf(msg, sizeof msg, "no algorithm for %dx%dx%d", M, N, K);
        rc = kn__cu_fail(op, "cublasLtMatmulAlgoGetHeuristic", msg);
    }
    const float one = 1.0f, zero = 0.0f;
    rc = rc ? rc
            : kn__cu_check_lt(op, "cublasLtMatmul",
                              cublasLtMatmul(kn__cu.lt, desc, &one, w, la, x, lb, &zero, y, lc, y,
                                             lc, &res.algo, kn__cu.lt_ws, ws, kn__cu.stream));
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
    return rc;
}

// ---- entries ------------------------------------------------------------------------------------

static int cu_weight_prepare(kn_weight *wt)
{
    const int dtype = kn__cu.wdtype;
    const size_t n = (size_t)wt->N * wt->K;
    kn_cu_weight *cw = (kn_cu_weight *)std::calloc(1, sizeof *cw);
    if (!cw) return kn__cu_fail("weight_prepare", "calloc", "out of host memory");
    cw->dtype = dtype;
    char what[80];
    std::snprintf(what, sizeof what, "cudaMalloc(%zu) for a %dx%d weight", n * dtype_size(dtype),
                  wt->N, wt->K);
    int rc = kn__cu_check("weight_prepare", what, cudaMalloc(&cw->w, n * dtype_size(dtype)));
    if (!rc && dtype == KN_DTYPE_F32) {
        rc = kn__cu_check(
            "weight_prepare", "upload",
            cudaMemcpyAsync(cw->w, wt->w, n * 4, cudaMemcpyHostToDevice, kn__cu.stream));
    } else if (!rc) { // the float32 weight through scratch, rounded on the device
        float *tmp = (float *)kn__cu_scratch("weight_prepare", n * 4);
        rc = tmp ? kn__cu_check(
                       "weight_prepare", "upload",
                       cudaMemcpyAsync(tmp, wt->w, n * 4, cudaMemcpyHostToDevice, kn__cu.stream))
                 : -1;
        rc = rc ? rc : kn__cu_convert("weight_prepare", tmp, cw->w, n, dtype);
    }
    if (!rc)
        rc = kn__cu_check("weight_prepare", "cudaStreamSynchronize",
                          cudaStreamSynchronize(kn__cu.stream));
    if (rc) {
        cudaFree(cw->w);
        std::free(cw);
        return -1;
    }
    wt->prep = cw;
    return 0;
}

static void cu_weight_release(kn_weight *wt)
{
    kn_cu_weight *cw = (kn_cu_weight *)wt->prep;
    if (!cw) return;
    kn__cu_check("weight_release", "cudaFree", cudaFree(cw->w));
    std::free(cw);
    wt->prep = nullptr;
}

static void cu_linear(const float *x, const kn_weight *wt, const float *b, float *y, int M, int N,
                      int K, const int32_t *groups, int ngroups)
{
    const kn_cu_weight *cw = (const kn_cu_weight *)wt->prep;
    if (!cw) {
        kn__cu_fail("linear", "weight", "not prepared by this table");
        return;
    }
    if (kn__cu.variant == KN_CUDA_PLAIN) { // every row on its own: batch invariant
        linear_plain("linear", x, cw->w, cw->dtype, b, y, M, N, K);
        return;
    }
    const void *xa = x;
    if (cw->dtype != KN_DTYPE_F32) { // the activations rounded to the weights' type
        void *xs = kn__cu_scratch("linear", (size_t)M * K * 2);
        if (!xs || kn__cu_convert("linear", x, xs, (size_t)M * K, cw->dtype)) return;
        xa = xs;
    }
    const size_t es = dtype_size(cw->dtype);
    const int ng = groups ? ngroups : 1;
    for (int g = 0; g < ng; g++) {
        const int r0 = groups ? groups[g] : 0, r1 = groups ? groups[g + 1] : M;
        if (r1 <= r0) continue;
        if (linear_lt("linear", (const char *)xa + (size_t)r0 * K * es, cw->w, cw->dtype, b,
                      y + (size_t)r0 * N, r1 - r0, N, K))
            return;
    }
}

int kn__cu_linear_f32(const char *op, const float *x, const float *w, const float *b, float *y,
                      int M, int N, int K)
{
    if (!M || !N) return 0;
    if (kn__cu.variant == KN_CUDA_PLAIN) return linear_plain(op, x, w, KN_DTYPE_F32, b, y, M, N, K);
    return linear_lt(op, x, w, KN_DTYPE_F32, b, y, M, N, K);
}

void kn__cu_gemm_init(kn_ops *ops)
{
    ops->weight_prepare = cu_weight_prepare;
    ops->weight_release = cu_weight_release;
    ops->linear = cu_linear;
}
