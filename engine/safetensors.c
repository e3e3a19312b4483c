/* safetensors files: mmap, header validation, shard resolution and float conversion.
 * An st_file owns its mapping and parsed header; an st_model owns its files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/file.h"
#include "safetensors.h"

/* Headers above this size are refused (the format's reference reader uses 100 MB). */
#define ST_MAX_HEADER (100u << 20)

struct st_file {
    char *path;
    void *map;
    size_t size;
    const uint8_t *data; /* start of the data section */
    st_header hdr;
    double open_s; /* st_file_open's time: mapping and header validation */
};

static ls_status st__parse_image(const uint8_t *buf, size_t len, const char *name, st_header *hdr,
                                 const uint8_t **data, char *err, size_t errlen)
{
    if (len < 8)
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: %zu bytes is too short for a safetensors file", name, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i]; /* little-endian u64 */
    if (n > ST_MAX_HEADER || n > len - 8)
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: header length %llu exceeds the file (%zu bytes) or the 100 MB limit",
                       name, (unsigned long long)n, len);
    ls_status st =
        st_header_parse((const char *)buf + 8, (size_t)n, len - 8 - n, name, hdr, err, errlen);
    if (st) return st;
    *data = buf + 8 + n;
    return LS_OK;
}

ls_status st_buffer_check(const void *buf, size_t len, const char *name, char *err, size_t errlen)
{
    st_header h;
    const uint8_t *data;
    ls_status st = st__parse_image(buf, len, name, &h, &data, err, errlen);
    if (!st) st_header_free(&h);
    return st;
}

static double st__now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ls_status st_file_open(const char *path, st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    const double t0 = st__now_s();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ls_fail(err, errlen, LS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ls_fail(err, errlen, LS_ERR_IO, "%s: not a regular file", path);
    }
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        close(fd);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            close(fd);
            st_file_free(f);
            return ls_fail(err, errlen, LS_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    ls_status st = st__parse_image(f->map, f->size, path, &f->hdr, &f->data, err, errlen);
    if (st) {
        st_file_free(f);
        return st;
    }
    f->open_s = st__now_s() - t0;
    *out = f;
    return LS_OK;
}

void st_file_get_info(const st_file *f, st_file_info *out)
{
    *out = (st_file_info){f->path, (uint64_t)f->size, f->hdr.n, f->open_s};
}

void st_file_free(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->size);
    st_header_free(&f->hdr);
    free(f->path);
    free(f);
}

int st_file_tensor(const st_file *f, size_t i, st_tensor *out)
{
    if (i >= f->hdr.n) return -1;
    out->e = &f->hdr.entries[i];
    out->data = f->data + out->e->begin;
    out->file = f->path;
    return 0;
}

static char *st__join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void st_model_free(st_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nfiles; i++)
        st_file_free(m->files[i]);
    free(m->files);
    m->files = NULL;
    m->nfiles = 0;
}

static ls_status st__model_add(st_model *m, const char *path, char *err, size_t errlen)
{
    st_file **nf = realloc(m->files, (m->nfiles + 1) * sizeof *nf);
    if (!nf) return ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", path);
    m->files = nf;
    ls_status st = st_file_open(path, &m->files[m->nfiles], err, errlen);
    if (!st) m->nfiles++;
    return st;
}

ls_status st_model_open(const char *dir, st_model *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *single = st__join(dir, "model.safetensors");
    char *index = st__join(dir, "model.safetensors.index.json");
    ls_status st = LS_OK;
    if (!single || !index) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    if (access(single, F_OK) == 0) {
        st = st__model_add(out, single, err, errlen);
        goto done;
    }
    if (access(index, F_OK) != 0) {
        st = ls_fail(err, errlen, LS_ERR_IO,
                     "%s: neither model.safetensors nor model.safetensors.index.json found "
                     "(pickle checkpoints are not loaded; convert them with tools/)",
                     dir);
        goto done;
    }
    char *text = NULL;
    size_t len = 0;
    st = ls_read_file(index, 64u << 20, &text, &len, err, errlen);
    if (st) goto done;
    st_index ix;
    st = st_index_parse(text, len, index, &ix, err, errlen);
    free(text);
    if (st) goto done;
    /* open each distinct shard once, in order of first mention */
    for (size_t i = 0; i < ix.n && !st; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(ix.files[i], ix.files[j]) == 0;
        if (seen) continue;
        char *p = st__join(dir, ix.files[i]);
        st = p ? st__model_add(out, p, err, errlen)
               : ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", dir);
        free(p);
    }
    /* every tensor the index names must be in the shard it names */
    for (size_t i = 0; i < ix.n && !st; i++) {
        st_tensor t;
        if (st_model_find(out, ix.names[i], &t) != 0 ||
            strcmp(strrchr(t.file, '/') + 1, ix.files[i]) != 0)
            st = ls_fail(err, errlen, LS_ERR_FORMAT, "%s: tensor '%s' is not in shard %s", index,
                         ix.names[i], ix.files[i]);
    }
    st_index_free(&ix);
done:
    free(single);
    free(index);
    if (st) st_model_free(out);
    return st;
}

int st_model_find(const st_model *m, const char *name, st_tensor *out)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        const st_file *f = m->files[i];
        for (size_t j = 0; j < f->hdr.n; j++)
            if (strcmp(f->hdr.entries[j].name, name) == 0) {
                out->e = &f->hdr.entries[j];
                out->data = f->data + f->hdr.entries[j].begin;
                out->file = f->path;
                return 0;
            }
    }
    return -1;
}

static float st__f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

const float *st_tensor_f32_view(const st_tensor *t)
{
    if (t->e->dtype != ST_F32 || (uintptr_t)t->data % _Alignof(float)) return NULL;
    return (const float *)t->data;
}

ls_status st_tensor_check_shape(const st_tensor *t, const int64_t *shape, int ndim, char *err,
                                size_t errlen)
{
    const st_entry *e = t->e;
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = e->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", have[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
                     (long long)shape[i]);
        for (int i = 0; i < e->ndim; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? "," : "",
                     (long long)e->shape[i]);
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s' has shape [%s], config says [%s]", t->file, e->name, have,
                       want);
    }
    return LS_OK;
}

ls_status st_tensor_to_f32(const st_tensor *t, const int64_t *shape, int ndim, float *dst,
                           char *err, size_t errlen)
{
    const st_entry *e = t->e;
    ls_status st = st_tensor_check_shape(t, shape, ndim, err, errlen);
    if (st) return st;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    const uint8_t *src = t->data;
    switch (e->dtype) {
    case ST_F32:
        memcpy(dst, src, n * 4);
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = st__f16((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        break;
    default:
        return ls_fail(err, errlen, LS_ERR_FORMAT,
                       "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16", t->file,
                       e->name, st_dtype_name(e->dtype));
    }
    return LS_OK;
}

int st_model_release(const st_model *m, const void *p, size_t n)
{
    const uintptr_t a = (uintptr_t)p, e = a + n;
    for (size_t i = 0; i < m->nfiles; i++) {
        const st_file *f = m->files[i];
        const uintptr_t b = (uintptr_t)f->map, fe = b + f->size;
        if (!f->map || a < b || e > fe) continue;
        const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        const uintptr_t lo = (a + page - 1) / page * page, hi = e / page * page;
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        return 1;
    }
    return 0;
}
