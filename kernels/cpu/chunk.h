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

#endif
