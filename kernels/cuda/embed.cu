// Embeddings: out[t] = word[ids[t]] + pos[pos_ids[t]] + type[tt[t]] (tt NULL: row 0), summed
// in that order as the reference does. One block per token; trivial, so one version.
#include "cu.cuh"

__global__ void k_embed(const int32_t *ids, const int32_t *pos_ids, const int32_t *tt,
                        const float *word, const float *pos, const float *type, float *out, int H)
{
    const int t = blockIdx.x;
    const float *a = word + (size_t)ids[t] * H, *p = pos + (size_t)pos_ids[t] * H;
    const float *c = type + (size_t)(tt ? tt[t] : 0) * H;
    for (int h = threadIdx.x; h < H; h += blockDim.x)
        out[(size_t)t * H + h] = (a[h] + p[h]) + c[h];
}

static void cu_embed(const int32_t *ids, const int32_t *pos_ids, const int32_t *tt,
                     const float *word, const float *pos, const float *type, float *out, int T,
                     int H)
{
    if (T <= 0) return;
    k_embed<<<T, 256, 0, kn__cu.stream>>>(ids, pos_ids, tt, word, pos, type, out, H);
    KN_CU_LAUNCHED("embed", "k_embed");
}

void kn__cu_embed_init(kn_ops *ops)
{
    ops->embed = cu_embed;
}
