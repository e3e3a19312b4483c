/* Op names, generated from KN_OP_LIST, for logs, metrics and the parity tests; the host
 * memory behind the CPU tables' buffer ops. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

const char *const kn_op_names[] = {
#define KN__NAME(name) #name,
    KN_OP_LIST(KN__NAME)
#undef KN__NAME
};
const int kn_op_count = sizeof kn_op_names / sizeof kn_op_names[0];

static void *kn__host_alloc(size_t size)
{
    void *p = NULL;
    /* 256-byte aligned like cudaMalloc, so code tested on the CPU makes no weaker promise */
    if (posix_memalign(&p, 256, size ? size : 1)) return NULL;
    return p;
}

static void kn__host_free(void *p)
{
    free(p);
}

static int kn__host_copy(void *dst, const void *src, size_t size)
{
    if (size) memcpy(dst, src, size);
    return 0;
}

static int kn__host_sync(char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    return 0;
}

void kn_ops_set_host_buffers(kn_ops *ops)
{
    ops->device = 0;
    ops->buf_alloc = kn__host_alloc;
    ops->buf_free = kn__host_free;
    ops->upload = kn__host_copy;
    ops->download = kn__host_copy;
    ops->sync = kn__host_sync;
}
