/* Decoding of the JSON parts of a safetensors checkpoint: the per-file header and the
 * sharded-checkpoint index. Produces plain C structs; the engine does the mmapping. */
#ifndef PR_SAFETENSORS_HEADER_H
#define PR_SAFETENSORS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

#define ST_MAX_DIMS 8

typedef enum {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data section, end exclusive */
} st_entry;

typedef struct {
    st_entry *entries;
    size_t n;
} st_header;

/* Parses `json` (len bytes, not NUL-terminated) as a safetensors header whose data
 * section has data_len bytes. Checks dtypes, shapes, that every tensor's byte range
 * matches its shape and lies inside the data, and that ranges do not overlap.
 * `file` names the file in error messages. */
ls_status st_header_parse(const char *json, size_t len, uint64_t data_len, const char *file,
                          st_header *out, char *err, size_t errlen);
void st_header_free(st_header *h);

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

/* model.safetensors.index.json: maps tensor names to shard file names. */
typedef struct {
    char **names;
    char **files;
    size_t n;
} st_index;

ls_status st_index_parse(const char *json, size_t len, const char *file, st_index *out, char *err,
                         size_t errlen);
void st_index_free(st_index *ix);

#endif
