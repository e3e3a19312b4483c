// Elementwise activations in place, float32: exact GELU 0.5·x·(1 + erf(x/√2)) (HF's "gelu",
// as 0.5·x·erfc(−x/√2), which keeps its precision where 1 + erf cancels),
// tanh, ReLU. Memory-bound and trivial, so one version each (grid-stride loops).
#include "cu.cuh"

enum { KN_ACT_GELU, KN_ACT_TANH, KN_ACT_RELU };

template <int ACT> __global__ void k_act(float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float v = x[i];
        if (ACT == KN_ACT_GELU)
            x[i] = 0.5f * v * erfcf(-v * 0.70710678118654752f); // 1 + erf without cancelling
        else if (ACT == KN_ACT_TANH)
            x[i] = tanhf(v);
        else
            x[i] = v > 0.0f ? v : 0.0f;
    }
}

template <int ACT> static void act(const char *op, float *x, size_t n)
{
    if (!n) return;
    k_act<ACT><<<kn_ix_blocks((long long)n, 256, 8192), 256, 0, kn__cu.stream>>>(x, n);
    KN_CU_LAUNCHED(op, "k_act");
}

static void cu_gelu(float *x, size_t n)
{
    act<KN_ACT_GELU>("gelu", x, n);
}

static void cu_tanh(float *x, size_t n)
{
    act<KN_ACT_TANH>("tanh", x, n);
}

static void cu_relu(float *x, size_t n)
{
    act<KN_ACT_RELU>("relu", x, n);
}

void kn__cu_act_init(kn_ops *ops)
{
    ops->gelu = cu_gelu;
    ops->ffn = nullptr; // not fused: the engine composes linear, gelu, linear
    ops->tanh = cu_tanh;
    ops->relu = cu_relu;
}
