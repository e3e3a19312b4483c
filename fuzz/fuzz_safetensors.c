/* Fuzz target: a safetensors file from untrusted bytes. st_buffer_check must refuse it
 * with a message or accept it; an accepted header must keep the promises the loader
 * relies on (ranges inside the data, sizes matching dtype x shape, no aliasing), and
 * converting any accepted float tensor must stay inside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
/* libFuzzer's generic mutator (driver.c provides one for the plain build) */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* abort() rather than assert(): checks must survive -DNDEBUG release builds. */
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static void check_header(const st_header *h, uint64_t data_len)
{
    for (size_t i = 0; i < h->n; i++) {
        const st_entry *e = &h->entries[i];
        REQUIRE(e->name && e->ndim >= 0 && e->ndim <= ST_MAX_DIMS);
        REQUIRE(e->begin <= e->end && e->end <= data_len);
        uint64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            REQUIRE(e->shape[d] >= 0);
            numel *= (uint64_t)e->shape[d]; /* cannot wrap: its byte size is checked below */
        }
        REQUIRE(numel * st_dtype_size(e->dtype) == e->end - e->begin);
        /* pairwise, unlike the parser's sort, so a shortcut there would show */
        for (size_t j = 0; j < i && h->n <= 512; j++) {
            const st_entry *o = &h->entries[j];
            REQUIRE(strcmp(o->name, e->name) != 0);
            int empty = e->begin == e->end || o->begin == o->end;
            REQUIRE(empty || e->end <= o->begin || o->end <= e->begin);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    ls_status st = st_buffer_check(data, size, "fuzz.safetensors", err, sizeof err);
    if (st != LS_OK) {
        REQUIRE(st == LS_ERR_FORMAT || st == LS_ERR_NOMEM);
        REQUIRE(err[0] && memchr(err, 0, sizeof err));
        return 0;
    }
    /* Accepted: parse the header again to look inside. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | data[i];
    st_header h;
    const uint64_t data_len = size - 8 - hl;
    REQUIRE(st_header_parse((const char *)data + 8, (size_t)hl, data_len, "fuzz", &h, err,
                            sizeof err) == LS_OK);
    check_header(&h, data_len);
    const uint8_t *base = data + 8 + hl;
    for (size_t i = 0; i < h.n; i++) {
        const st_entry *e = &h.entries[i];
        size_t numel = (size_t)((e->end - e->begin) / st_dtype_size(e->dtype));
        if (numel > (1u << 16)) continue;
        float *dst = malloc(numel ? numel * sizeof *dst : 1);
        REQUIRE(dst);
        st_tensor t = {.e = e, .data = base + e->begin, .file = "fuzz"};
        ls_status cs = st_tensor_to_f32(&t, e->shape, e->ndim, dst, err, sizeof err);
        int is_float = e->dtype == ST_F32 || e->dtype == ST_F16 || e->dtype == ST_BF16;
        REQUIRE(is_float ? cs == LS_OK : cs == LS_ERR_FORMAT);
        free(dst);
    }
    st_header_free(&h);
    return 0;
}

/* Any edit that grows or shrinks the header breaks the length prefix, and the input
 * then dies at the first check. Half the time, mutate the header alone and rewrite the
 * prefix, so that mutations reach the JSON, shape and range checks. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint64_t hl = 0;
    for (int i = 7; size >= 8 && i >= 0; i--)
        hl = hl << 8 | data[i];
    if (seed % 2 || size < 8 || hl == 0 || hl > size - 8)
        return LLVMFuzzerMutate(data, size, max_size);
    size_t dlen = size - 8 - (size_t)hl;
    uint8_t *tail = malloc(dlen ? dlen : 1);
    if (!tail) return LLVMFuzzerMutate(data, size, max_size);
    memcpy(tail, data + 8 + hl, dlen);
    size_t nh = LLVMFuzzerMutate(data + 8, (size_t)hl, max_size - 8 - dlen);
    memcpy(data + 8 + nh, tail, dlen);
    free(tail);
    for (int i = 0; i < 8; i++)
        data[i] = (uint8_t)((uint64_t)nh >> (8 * i));
    return 8 + nh + dlen;
}
