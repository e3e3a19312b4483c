/* Parser for safetensors headers and index files (cJSON stays inside proto/).
 * Everything read from the file is treated as hostile: sizes are checked for
 * overflow and every range is checked against the data section. */
#include <stdlib.h>
#include <string.h>

#include "json.h"

#include "safetensors_header.h"

static const struct {
    const char *name;
    st_dtype t;
    size_t size;
} st__dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2},   {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
    {"I64", ST_I64, 8}, {"I32", ST_I32, 4},   {"I16", ST_I16, 2},   {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};
#define ST__NDTYPES (sizeof st__dtypes / sizeof st__dtypes[0])

size_t st_dtype_size(st_dtype t)
{
    for (size_t i = 0; i < ST__NDTYPES; i++)
        if (st__dtypes[i].t == t) return st__dtypes[i].size;
    return 0;
}

const char *st_dtype_name(st_dtype t)
{
    for (size_t i = 0; i < ST__NDTYPES; i++)
        if (st__dtypes[i].t == t) return st__dtypes[i].name;
    return "?";
}

static int st__dtype_parse(const char *s, st_dtype *t)
{
    for (size_t i = 0; i < ST__NDTYPES; i++)
        if (strcmp(s, st__dtypes[i].name) == 0) {
            *t = st__dtypes[i].t;
            return 1;
        }
    return 0;
}

/* A JSON number that is a non-negative integer representable exactly in a double. */
static int st__uint(const cJSON *v, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > (double)max || d > 9007199254740992.0 || d != (double)(uint64_t)d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static int st__cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

void st_header_free(st_header *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->n; i++)
        free(h->entries[i].name);
    free(h->entries);
    h->entries = NULL;
    h->n = 0;
}

static ls_status st__entry_parse(const cJSON *item, uint64_t data_len, const char *file,
                                 st_entry *e, char *err, size_t errlen)
{
    const char *nm = item->string;
    if (!cJSON_IsObject(item))
        return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s': entry is not an object", file,
                       nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !st__dtype_parse(dt->valuestring, &e->dtype))
        return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s': missing or unknown dtype",
                       file, nm);
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > ST_MAX_DIMS)
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s': shape must be an array of at most %d dims", file, nm,
                       ST_MAX_DIMS);
    uint64_t numel = 1;
    e->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh)
    {
        uint64_t v;
        if (!st__uint(d, (uint64_t)INT64_MAX, &v))
            return ls_fail(err, errlen, LS_ERR_FORMAT,
                           "%s: tensor '%s': shape entries must be non-negative integers", file,
                           nm);
        if (v && numel > UINT64_MAX / v)
            return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s': shape overflows", file,
                           nm);
        numel *= v;
        e->shape[e->ndim++] = (int64_t)v;
    }
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !st__uint(cJSON_GetArrayItem(of, 0), data_len, &b) ||
        !st__uint(cJSON_GetArrayItem(of, 1), data_len, &en) || b > en)
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets must be [begin, end] within the %llu-byte "
                       "data section",
                       file, nm, (unsigned long long)data_len);
    size_t es = st_dtype_size(e->dtype);
    if (numel > UINT64_MAX / es || numel * es != en - b)
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s': %llu bytes stored but dtype %s and shape need %llu", file,
                       nm, (unsigned long long)(en - b), st_dtype_name(e->dtype),
                       (unsigned long long)(numel * es));
    e->begin = b;
    e->end = en;
    return LS_OK;
}

ls_status st_header_parse(const char *json, size_t len, uint64_t data_len, const char *file,
                          st_header *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: header is not valid JSON", file);
    ls_status st = LS_OK;
    st_entry **order = NULL;
    if (!cJSON_IsObject(root)) {
        st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: header is not a JSON object", file);
        goto done;
    }
    size_t cap = (size_t)cJSON_GetArraySize(root);
    out->entries = calloc(cap ? cap : 1, sizeof *out->entries);
    if (!out->entries) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (!item->string) continue;
        if (strcmp(item->string, "__metadata__") == 0) continue;
        for (size_t i = 0; i < out->n; i++)
            if (strcmp(out->entries[i].name, item->string) == 0) {
                st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s' appears twice", file,
                             item->string);
                goto done;
            }
        st_entry *e = &out->entries[out->n];
        st = st__entry_parse(item, data_len, file, e, err, errlen);
        if (st) goto done;
        e->name = strdup(item->string);
        if (!e->name) {
            st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
        out->n++;
    }
    /* Overlapping byte ranges would let two tensors alias; refuse them. Empty tensors
     * own no bytes and cannot overlap anything. */
    order = malloc((out->n ? out->n : 1) * sizeof *order);
    if (!order) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    size_t nz = 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->entries[i].end > out->entries[i].begin) order[nz++] = &out->entries[i];
    qsort(order, nz, sizeof *order, st__cmp_begin);
    for (size_t i = 1; i < nz; i++)
        if (order[i]->begin < order[i - 1]->end) {
            st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", file,
                         order[i - 1]->name, order[i]->name);
            goto done;
        }
done:
    free(order);
    cJSON_Delete(root);
    if (st) st_header_free(out);
    return st;
}

void st_index_free(st_index *ix)
{
    if (!ix) return;
    for (size_t i = 0; i < ix->n; i++) {
        free(ix->names[i]);
        free(ix->files[i]);
    }
    free(ix->names);
    free(ix->files);
    memset(ix, 0, sizeof *ix);
}

ls_status st_index_parse(const char *json, size_t len, const char *file, st_index *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: not valid JSON", file);
    ls_status st = LS_OK;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: no \"weight_map\" object", file);
        goto done;
    }
    size_t cap = (size_t)cJSON_GetArraySize(map);
    out->names = calloc(cap ? cap : 1, sizeof *out->names);
    out->files = calloc(cap ? cap : 1, sizeof *out->files);
    if (!out->names || !out->files) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, map)
    {
        const char *f = cJSON_GetStringValue(item);
        /* Shard names must stay inside the model directory. */
        if (!f || !*f || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0) {
            st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s' maps to an invalid file name",
                         file, item->string);
            goto done;
        }
        out->names[out->n] = strdup(item->string);
        out->files[out->n] = strdup(f);
        out->n++;
        if (!out->names[out->n - 1] || !out->files[out->n - 1]) {
            st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (st) st_index_free(out);
    return st;
}
