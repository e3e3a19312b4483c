/* Read-only access to a Hugging Face safetensors checkpoint, single file or sharded
 * (model.safetensors.index.json). Files are mmapped; headers are validated before any
 * tensor is touched (formats/safetensors_header.c). */
#ifndef ENG_SAFETENSORS_H
#define ENG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../formats/safetensors_header.h"
#include "../common/status.h"

typedef struct st_file st_file;

typedef struct {
    const st_entry *e;
    const void *data; /* e->end - e->begin bytes */
    const char *file; /* file name, for messages */
} st_tensor;

typedef struct {
    st_file **files;
    size_t nfiles;
} st_model;

/* Opens one .safetensors file: mmaps it and validates the header. */
ls_status st_file_open(const char *path, st_file **out, char *err, size_t errlen);
void st_file_free(st_file *f);
/* What load logs say of an open file. */
typedef struct {
    const char *path;
    uint64_t bytes;
    size_t tensors;
    double seconds; /* st_file_open's time: mapping and header validation */
} st_file_info;
void st_file_get_info(const st_file *f, st_file_info *out);
/* The tensors of an open file, in header order; returns -1 past the end. */
int st_file_tensor(const st_file *f, size_t i, st_tensor *out);
/* Validates a safetensors image already in memory (used by the fuzzer and tests). */
ls_status st_buffer_check(const void *buf, size_t len, const char *name, char *err, size_t errlen);

/* Opens dir/model.safetensors, or every shard named by dir/model.safetensors.index.json. */
ls_status st_model_open(const char *dir, st_model *out, char *err, size_t errlen);
void st_model_free(st_model *m);
/* Looks a tensor up by name; returns 0 when found. */
int st_model_find(const st_model *m, const char *name, st_tensor *out);

/* Checks a tensor's shape against `shape` (ndim dims); the message names file, tensor
 * and both shapes. */
ls_status st_tensor_check_shape(const st_tensor *t, const int64_t *shape, int ndim, char *err,
                                size_t errlen);
/* The tensor's data as float32 in place (no copy) when it is stored as F32 and aligned;
 * NULL otherwise. The pointer lives as long as the file's mapping. */
const float *st_tensor_f32_view(const st_tensor *t);

/* Lets the kernel drop the pages of [p, p+n) when they lie in one of the files' read-only
 * mappings (a weight the backend has copied into its own form): they are read from the
 * file again if touched. Returns 1 when p was in a mapping, 0 otherwise (nothing done). */
int st_model_release(const st_model *m, const void *p, size_t n);

/* Copies a tensor into dst as float32, checking its shape against `shape` (ndim dims).
 * Accepts F32, F16 and BF16. The message names the file and the tensor. */
ls_status st_tensor_to_f32(const st_tensor *t, const int64_t *shape, int ndim, float *dst,
                           char *err, size_t errlen);

#endif
