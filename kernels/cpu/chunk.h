/* Internal: the reference chunked attention of one segment (ref.c) and the CPU backend's
 * tiled one (chunk.c). */
#ifndef KN_CPU_CHUNK_H
#define KN_CPU_CHUNK_H

#include "../kernels.h"

/* Segment `s` of a; z is scratch of at least kn__chunk_keys(a) floats. */
void kn__chunk_seg_ref(const kn_chunk_args *a, const kn_chunk_seg *s, float *z);
/* Keys one query of a sees at most (the scratch size kn__chunk_seg_ref needs). */
size_t kn__chunk_keys(const kn_chunk_args *a);

/* The CPU backend's chunk_attn (kernels.h): packed key/value tiles per query chunk, register
 * tiles of the packed GEMM, float32 softmax; OpenMP over (segment, query chunk). */
int kn__chunk_attn_cpu(const kn_chunk_args *a);

/* The reference's LSH hashing and sort (kernels.h lsh_hash, lsh_sort), which the CPU table
 * shares: the engine hashes and sorts in its own loops today. */
int kn__ref_lsh_hash(const kn_lsh_args *a);
int kn__ref_lsh_sort(const int32_t *keys, int32_t *perm, int n, int nkeys);

#endif
