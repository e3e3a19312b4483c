/* safetensors loading against hostile input: every malformed header, truncated file and
 * bad shard index must end in a clear error (never a crash), valid files must decode
 * exactly (F16/BF16 included), and engine load errors must name the file or tensor. */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../engine/engine.h"
#include "../engine/safetensors.h"
#include "testutil.h"

/* ---- files and directories ------------------------------------------------------------ */

/* One temp dir per run, made and removed by the parent (unchecked fixture), so a failing
 * forked test cannot leave it behind; each test works in its own subdirectory. */
static char tmp_root[64];

static void tmp_setup(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ls_test_st_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void tmp_teardown(void)
{
    if (tmp_root[0]) nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmp_root[0] = 0;
}

/* Makes tmp_root/name (fresh) and writes its path into out. */
static void tmp_dir(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", tmp_root, name);
    nftw(out, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ck_assert_msg(mkdir(out, 0700) == 0, "mkdir %s", out);
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert(len == 0 || fwrite(buf, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

static void write_at(const char *dir, const char *name, const void *buf, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, buf, len);
}

/* testutil.h's slurp as bytes, failing the test when the file cannot be read */
static unsigned char *slurp_bytes(const char *path, size_t *len)
{
    unsigned char *b = (unsigned char *)slurp(path, len);
    ck_assert_msg(b != NULL, "cannot read %s", path);
    return b;
}

/* Copies the regular files of src (not its subdirectories) into a fresh dst. */
static void copy_dir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    ck_assert_msg(d != NULL, "cannot open %s", src);
    struct dirent *de;
    while ((de = readdir(d))) {
        char sp[512];
        struct stat sb;
        snprintf(sp, sizeof sp, "%s/%s", src, de->d_name);
        if (stat(sp, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        size_t n;
        unsigned char *b = slurp_bytes(sp, &n);
        write_at(dst, de->d_name, b, n);
        free(b);
    }
    closedir(d);
}

/* ---- safetensors images ------------------------------------------------------------------ */

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* u64 little-endian header length, header, then dlen data bytes (zeros when data is NULL). */
static unsigned char *image(const char *hdr, size_t hlen, const void *data, size_t dlen,
                            size_t *len)
{
    *len = 8 + hlen + dlen;
    unsigned char *b = calloc(1, *len);
    ck_assert(b != NULL);
    put_u64(b, hlen);
    memcpy(b + 8, hdr, hlen);
    if (data && dlen) memcpy(b + 8 + hlen, data, dlen);
    return b;
}

/* Rewrites the header of a safetensors file through edit(), keeping its data section. */
static void st_edit(const char *path, void (*edit)(cJSON *hdr, const void *arg), const void *arg)
{
    size_t n;
    unsigned char *b = slurp_bytes(path, &n);
    ck_assert(n >= 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | b[i];
    ck_assert(hl <= n - 8);
    cJSON *h = cJSON_ParseWithLength((const char *)b + 8, (size_t)hl);
    ck_assert(h != NULL);
    edit(h, arg);
    char *text = cJSON_PrintUnformatted(h);
    ck_assert(text != NULL);
    size_t len;
    unsigned char *img = image(text, strlen(text), b + 8 + hl, n - 8 - (size_t)hl, &len);
    write_file(path, img, len);
    free(img);
    free(text);
    cJSON_Delete(h);
    free(b);
}

/* Parses a JSON file, lets edit() change it and writes it back. */
static void json_edit(const char *path, void (*edit)(cJSON *root, const void *arg), const void *arg)
{
    size_t n;
    char *b = (char *)slurp_bytes(path, &n);
    cJSON *root = cJSON_Parse(b);
    free(b);
    ck_assert_msg(root != NULL, "%s is not JSON", path);
    edit(root, arg);
    char *text = cJSON_Print(root);
    ck_assert(text != NULL);
    write_file(path, text, strlen(text));
    free(text);
    cJSON_Delete(root);
}

/* An edit: set key (in a JSON object given by path a.b) to a JSON value given as text. */
typedef struct {
    const char *obj; /* NULL: the root; else the name of a child object */
    const char *key;
    const char *json; /* NULL removes the key */
} kv_edit;

static void set_kv(cJSON *root, const void *arg)
{
    const kv_edit *e = arg;
    cJSON *o = e->obj ? cJSON_GetObjectItemCaseSensitive(root, e->obj) : root;
    ck_assert_msg(cJSON_IsObject(o), "no object %s", e->obj);
    cJSON_DeleteItemFromObjectCaseSensitive(o, e->key);
    if (!e->json) return;
    cJSON *v = cJSON_Parse(e->json);
    ck_assert_msg(v != NULL, "bad edit value %s", e->json);
    cJSON_AddItemToObject(o, e->key, v);
}

typedef struct {
    const char *from, *to;
} rename_edit;

static void rename_key(cJSON *root, const void *arg)
{
    const rename_edit *e = arg;
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(root, e->from);
    ck_assert_msg(v != NULL, "no key %s", e->from);
    cJSON_AddItemToObject(root, e->to, v);
}

#define ck_assert_has(err, needle)                                                                 \
    ck_assert_msg(strstr((err), (needle)) != NULL, "message \"%s\" lacks \"%s\"", (err), (needle))

/* st must be `want`; a failure's message must contain n1 and n2 (either may be NULL). */
static void expect(const char *what, ls_status st, ls_status want, const char *err, const char *n1,
                   const char *n2)
{
    ck_assert_msg(st == want, "%s: got %s (%s), want %s", what, ls_status_name(st), err,
                  ls_status_name(want));
    if (st == LS_OK) return;
    ck_assert_msg(!n1 || strstr(err, n1), "%s: \"%s\" lacks \"%s\"", what, err, n1);
    ck_assert_msg(!n2 || strstr(err, n2), "%s: \"%s\" lacks \"%s\"", what, err, n2);
}

/* Replaces a JSON file by raw text, or applies a key edit to it. */
static void rewrite_json(const char *path, const char *raw, const kv_edit *e)
{
    if (raw)
        write_file(path, raw, strlen(raw));
    else
        json_edit(path, set_kv, e);
}

/* ---- a valid file, and exact conversions -------------------------------------------------- */

/* 0x3c00 1, 0xc000 -2, 0x0001 smallest subnormal, 0x03ff largest subnormal, 0x8000 -0,
 * ±inf, 0x7bff largest finite, 0x0400 smallest normal, 0x3555 nearest to 1/3. */
static const uint16_t f16_bits[10] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x8000,
                                      0x7c00, 0xfc00, 0x7bff, 0x0400, 0x3555};
static const float f16_vals[10] = {1.0f,     -2.0f,     0x1p-24f, 0x1.ff8p-15f, -0.0f,
                                   INFINITY, -INFINITY, 65504.0f, 0x1p-14f,     0x1.554p-2f};
/* bf16 is the top half of a float: 0x0001 becomes the float subnormal 2^-133. */
static const uint16_t bf16_bits[6] = {0x3f80, 0xc040, 0x8000, 0x7f80, 0x0001, 0x4049};
static const float bf16_vals[6] = {1.0f, -3.0f, -0.0f, INFINITY, 0x1p-133f, 3.140625f};

static const char valid_hdr[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[24,44]},"
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[44,56]},"
    "\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[56,64]}}";

static unsigned char *valid_image(size_t *len)
{
    unsigned char data[64];
    const float a[6] = {1, 2, 3, 4, 5, -6.5f};
    memcpy(data, a, sizeof a); /* host is little-endian, like the format */
    for (int i = 0; i < 10; i++) {
        data[24 + 2 * i] = (unsigned char)f16_bits[i];
        data[25 + 2 * i] = (unsigned char)(f16_bits[i] >> 8);
    }
    for (int i = 0; i < 6; i++) {
        data[44 + 2 * i] = (unsigned char)bf16_bits[i];
        data[45 + 2 * i] = (unsigned char)(bf16_bits[i] >> 8);
    }
    const int32_t ids[2] = {7, -1};
    memcpy(data + 56, ids, sizeof ids);
    return image(valid_hdr, strlen(valid_hdr), data, sizeof data, len);
}

/* Writes the valid image as tmp_root/name/model.safetensors (path into `path`). */
static unsigned char *valid_file(const char *name, char *dir, size_t dcap, char *path, size_t pcap,
                                 size_t *len)
{
    tmp_dir(name, dir, dcap);
    unsigned char *img = valid_image(len);
    snprintf(path, pcap, "%s/model.safetensors", dir);
    write_file(path, img, *len);
    return img;
}

static void assert_floats_exact(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof(float)) == 0, "%s[%d]: got %a, want %a",
                      what, i, (double)got[i], (double)want[i]);
}

START_TEST(valid_file_tensors)
{
    char dir[256], path[512], err[512] = "";
    size_t len;
    unsigned char *img = valid_file("valid", dir, sizeof dir, path, sizeof path, &len);
    ck_assert_int_eq(st_buffer_check(img, len, "mem", err, sizeof err), LS_OK);

    st_file *f;
    ck_assert_msg(st_file_open(path, &f, err, sizeof err) == LS_OK, "%s", err);
    /* header order, __metadata__ is not a tensor */
    static const char *const names[] = {"a", "h", "b", "ids"};
    static const uint64_t begin[] = {0, 24, 44, 56}, end[] = {24, 44, 56, 64};
    st_tensor t;
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(st_file_tensor(f, i, &t), 0);
        ck_assert_str_eq(t.e->name, names[i]);
        ck_assert_uint_eq(t.e->begin, begin[i]);
        ck_assert_uint_eq(t.e->end, end[i]);
        ck_assert_str_eq(t.file, path);
        /* the pointer is the data section plus begin */
        ck_assert(memcmp(t.data, img + 8 + strlen(valid_hdr) + begin[i], end[i] - begin[i]) == 0);
    }
    ck_assert_int_eq(st_file_tensor(f, 4, &t), -1);
    ck_assert_int_eq(st_file_tensor(f, (size_t)-1, &t), -1);
    st_file_tensor(f, 0, &t);
    ck_assert_int_eq(t.e->dtype, ST_F32);
    ck_assert_int_eq(t.e->ndim, 2);
    ck_assert_int_eq(t.e->shape[0], 2);
    ck_assert_int_eq(t.e->shape[1], 3);
    st_file_free(f);
    st_file_free(NULL);
    free(img);

    st_model m;
    ck_assert_msg(st_model_open(dir, &m, err, sizeof err) == LS_OK, "%s", err);
    ck_assert_uint_eq(m.nfiles, 1);
    ck_assert_int_eq(st_model_find(&m, "nope", &t), -1);
    ck_assert_int_eq(st_model_find(&m, "__metadata__", &t), -1);
    float out[10];

    ck_assert_int_eq(st_model_find(&m, "a", &t), 0);
    const int64_t sa[] = {2, 3};
    ck_assert_msg(st_tensor_to_f32(&t, sa, 2, out, err, sizeof err) == LS_OK, "%s", err);
    const float a[6] = {1, 2, 3, 4, 5, -6.5f};
    assert_floats_exact(out, a, 6, "F32");

    ck_assert_int_eq(st_model_find(&m, "h", &t), 0);
    ck_assert_int_eq(t.e->dtype, ST_F16);
    const int64_t sh[] = {10};
    ck_assert_msg(st_tensor_to_f32(&t, sh, 1, out, err, sizeof err) == LS_OK, "%s", err);
    assert_floats_exact(out, f16_vals, 10, "F16");
    ck_assert(signbit(out[4]));

    ck_assert_int_eq(st_model_find(&m, "b", &t), 0);
    ck_assert_int_eq(t.e->dtype, ST_BF16);
    const int64_t sb[] = {6};
    ck_assert_msg(st_tensor_to_f32(&t, sb, 1, out, err, sizeof err) == LS_OK, "%s", err);
    assert_floats_exact(out, bf16_vals, 6, "BF16");

    /* integers are not weights */
    ck_assert_int_eq(st_model_find(&m, "ids", &t), 0);
    const int64_t si[] = {2};
    ck_assert_int_eq(st_tensor_to_f32(&t, si, 1, out, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, "'ids'");
    ck_assert_has(err, "I32");
    st_model_free(&m);
    st_model_free(&m); /* a freed model is empty, freeing again is harmless */
}
END_TEST

START_TEST(shape_mismatch_names_everything)
{
    char dir[256], path[512], err[512] = "";
    size_t len;
    free(valid_file("mismatch", dir, sizeof dir, path, sizeof path, &len));
    st_file *f;
    ck_assert_msg(st_file_open(path, &f, err, sizeof err) == LS_OK, "%s", err);
    st_tensor t;
    st_file_tensor(f, 0, &t);
    float out[6];
    const int64_t swapped[] = {3, 2}, flat[] = {6}, three[] = {2, 3, 1};
    ck_assert_int_eq(st_tensor_to_f32(&t, swapped, 2, out, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, path);
    ck_assert_has(err, "'a'");
    ck_assert_has(err, "[2,3]");
    ck_assert_has(err, "[3,2]");
    ck_assert_int_eq(st_tensor_to_f32(&t, flat, 1, out, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, "[6]");
    ck_assert_int_eq(st_tensor_to_f32(&t, three, 3, out, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, "[2,3,1]");
    st_file_free(f);
}
END_TEST

/* IEEE half to float by arithmetic, independent of the library's bit twiddling. */
static float f16_ref(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (float)(h & 0x8000 ? -v : v);
}

START_TEST(f16_bf16_exhaustive)
{
    enum { N = 65536 };
    uint8_t *src = malloc(2 * N);
    float *dst = malloc(4 * N);
    ck_assert(src && dst);
    for (int i = 0; i < N; i++)
        src[2 * i] = (uint8_t)i, src[2 * i + 1] = (uint8_t)(i >> 8);
    st_entry e = {
        .name = "all", .dtype = ST_F16, .ndim = 1, .shape = {N}, .begin = 0, .end = 2 * N};
    st_tensor t = {.e = &e, .data = src, .file = "mem"};
    const int64_t shape[] = {N};
    char err[256];
    ck_assert_int_eq(st_tensor_to_f32(&t, shape, 1, dst, err, sizeof err), LS_OK);
    for (int i = 0; i < N; i++) {
        float want = f16_ref((uint16_t)i);
        if (isnan(want))
            ck_assert_msg(isnan(dst[i]) && !!signbit(dst[i]) == !!(i & 0x8000), "f16 %04x", i);
        else
            ck_assert_msg(memcmp(&dst[i], &want, 4) == 0, "f16 %04x: got %a want %a", i,
                          (double)dst[i], (double)want);
    }
    e.dtype = ST_BF16;
    ck_assert_int_eq(st_tensor_to_f32(&t, shape, 1, dst, err, sizeof err), LS_OK);
    for (int i = 0; i < N; i++) {
        uint32_t bits;
        memcpy(&bits, &dst[i], 4);
        ck_assert_msg(bits == (uint32_t)i << 16, "bf16 %04x", i);
    }
    free(src);
    free(dst);
}
END_TEST

/* ---- hostile headers ------------------------------------------------------------------------ */

typedef struct {
    const char *what, *hdr;
    size_t dlen; /* data section bytes after the header */
    ls_status want;
    const char *needle; /* must appear in the message (besides the file name) */
} hdr_case;

#define T1(dt, sh, off) "{\"t\":{\"dtype\":" dt ",\"shape\":" sh ",\"data_offsets\":" off "}}"

static const hdr_case hdr_cases[] = {
    /* not a header at all */
    {"truncated JSON", "{\"t\":", 0, LS_ERR_FORMAT, "not valid JSON"},
    {"binary", "\x01\x02\x03", 0, LS_ERR_FORMAT, "not valid JSON"},
    {"spaces only", "        ", 0, LS_ERR_FORMAT, "not valid JSON"},
    {"array", "[1,2]", 0, LS_ERR_FORMAT, "not a JSON object"},
    {"string", "\"t\"", 0, LS_ERR_FORMAT, "not a JSON object"},
    {"null", "null", 0, LS_ERR_FORMAT, "not a JSON object"},
    {"number", "42", 0, LS_ERR_FORMAT, "not a JSON object"},
    {"entry not an object", "{\"t\":5}", 0, LS_ERR_FORMAT, "'t'"},
    {"entry is an array", "{\"t\":[]}", 0, LS_ERR_FORMAT, "'t'"},
    /* dtype */
    {"unknown dtype", T1("\"F8\"", "[1]", "[0,1]"), 1, LS_ERR_FORMAT, "dtype"},
    {"lower-case dtype", T1("\"f32\"", "[1]", "[0,4]"), 4, LS_ERR_FORMAT, "dtype"},
    {"dtype not a string", T1("4", "[1]", "[0,4]"), 4, LS_ERR_FORMAT, "dtype"},
    {"missing dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LS_ERR_FORMAT, "dtype"},
    /* shape */
    {"missing shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, LS_ERR_FORMAT,
     "shape"},
    {"shape not an array", T1("\"F32\"", "4", "[0,4]"), 4, LS_ERR_FORMAT, "shape"},
    {"nine dims", T1("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4, LS_ERR_FORMAT, "shape"},
    {"negative dim", T1("\"F32\"", "[-1]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"fractional dim", T1("\"F32\"", "[1.5]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"huge dim", T1("\"F32\"", "[1e300]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"infinite dim", T1("\"F32\"", "[1e999]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"dim 2^63", T1("\"F32\"", "[9223372036854775808]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"dim 2^64", T1("\"F32\"", "[18446744073709551616]", "[0,4]"), 4, LS_ERR_FORMAT,
     "non-negative"},
    {"dim as string", T1("\"F32\"", "[\"1\"]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"dim null", T1("\"F32\"", "[null]", "[0,4]"), 4, LS_ERR_FORMAT, "non-negative"},
    {"shape product overflows", T1("\"F32\"", "[4294967296,4294967296,2]", "[0,4]"), 4,
     LS_ERR_FORMAT, "overflow"},
    {"bytes overflow", T1("\"F32\"", "[4294967296,1073741824]", "[0,4]"), 4, LS_ERR_FORMAT, "need"},
    /* data_offsets */
    {"end past data", T1("\"F32\"", "[2]", "[0,8]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"begin past data", T1("\"F32\"", "[0]", "[8,8]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"reversed", T1("\"F32\"", "[1]", "[4,0]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"one offset", T1("\"F32\"", "[1]", "[0]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"three offsets", T1("\"F32\"", "[1]", "[0,4,4]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"offsets as strings", T1("\"F32\"", "[1]", "[\"0\",\"4\"]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"negative offset", T1("\"F32\"", "[1]", "[-4,0]"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"fractional offsets", T1("\"F32\"", "[1]", "[0.5,4.5]"), 5, LS_ERR_FORMAT, "data_offsets"},
    {"offsets an object", T1("\"F32\"", "[1]", "{\"a\":0}"), 4, LS_ERR_FORMAT, "data_offsets"},
    {"offsets 2^64", T1("\"F32\"", "[1]", "[18446744073709551612,18446744073709551616]"), 4,
     LS_ERR_FORMAT, "data_offsets"},
    {"missing offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, LS_ERR_FORMAT,
     "data_offsets"},
    /* size against dtype x shape */
    {"too few bytes", T1("\"F32\"", "[2]", "[0,4]"), 4, LS_ERR_FORMAT, "4 bytes stored"},
    {"too many bytes", T1("\"F16\"", "[3]", "[0,8]"), 8, LS_ERR_FORMAT, "8 bytes stored"},
    {"scalar with no bytes", T1("\"F32\"", "[]", "[0,0]"), 0, LS_ERR_FORMAT, "0 bytes stored"},
    /* between tensors */
    {"overlap",
     "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, LS_ERR_FORMAT, "overlap"},
    {"overlap listed backwards",
     "{\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
     "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     12, LS_ERR_FORMAT, "overlap"},
    {"same range",
     "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"y\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, LS_ERR_FORMAT, "overlap"},
    {"contained",
     "{\"x\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
     "\"y\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
     "\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}",
     16, LS_ERR_FORMAT, "overlap"},
    {"duplicate name",
     "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, LS_ERR_FORMAT, "'x' appears twice"},
    {"bad entry after metadata", "{\"__metadata__\":{},\"t\":{}}", 0, LS_ERR_FORMAT, "'t'"},
    {"junk after the header object", T1("\"F32\"", "[1]", "[0,4]") "  xyz", 4, LS_ERR_FORMAT,
     "not valid JSON"},
    {"second object after the header", "{}{}", 0, LS_ERR_FORMAT, "not valid JSON"},

    /* valid */
    {"empty header", "{}", 0, LS_OK, NULL},
    {"metadata only", "{\"__metadata__\":{\"format\":\"pt\"}}", 0, LS_OK, NULL},
    {"metadata of any type is ignored", "{\"__metadata__\":[1,{\"dtype\":5}]}", 0, LS_OK, NULL},
    {"padded with spaces (as writers do)", T1("\"F32\"", "[1]", "[0,4]") "     ", 4, LS_OK, NULL},
    {"scalar", T1("\"F32\"", "[]", "[0,4]"), 4, LS_OK, NULL},
    {"zero-size", T1("\"F32\"", "[2,0,3]", "[0,0]"), 0, LS_OK, NULL},
    {"zero-size at the end", T1("\"F32\"", "[0]", "[4,4]"), 4, LS_OK, NULL},
    {"empty tensor inside another's range (owns no bytes)",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
     8, LS_OK, NULL},
    {"8 dims", T1("\"U8\"", "[1,1,1,1,1,1,1,2]", "[0,2]"), 2, LS_OK, NULL},
    {"unknown keys ignored",
     "{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8],\"x\":[1]}}", 8, LS_OK, NULL},
    {"every dtype",
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},"
     "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
     "\"d\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[20,24]},"
     "\"e\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[24,26]},"
     "\"f\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[26,28]},"
     "\"g\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[28,30]},"
     "\"h\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[30,31]},"
     "\"i\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[31,32]},"
     "\"j\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[32,33]}}",
     33, LS_OK, NULL},
    {"spare bytes after the last tensor", T1("\"F32\"", "[1]", "[0,4]"), 100, LS_OK, NULL},
};
#define N_HDR_CASES ((int)(sizeof hdr_cases / sizeof hdr_cases[0]))

START_TEST(hostile_header)
{
    const hdr_case *c = &hdr_cases[_i];
    size_t len;
    unsigned char *img = image(c->hdr, strlen(c->hdr), NULL, c->dlen, &len);
    char err[512] = "";
    ls_status st = st_buffer_check(img, len, "img.safetensors", err, sizeof err);
    expect(c->what, st, c->want, err, "img.safetensors", c->needle);
    free(img);
}
END_TEST

/* The length prefix, and files too short to hold one. */
START_TEST(hostile_length_prefix)
{
    char err[512];
    const char hdr[] = T1("\"F32\"", "[1]", "[0,4]");
    size_t len;
    unsigned char *img = image(hdr, strlen(hdr), NULL, 4, &len);
    ck_assert_int_eq(st_buffer_check(img, len, "x", err, sizeof err), LS_OK);

    for (size_t n = 0; n < 8; n++) {
        unsigned char *b = malloc(n ? n : 1); /* exact size, so over-reads are caught */
        memcpy(b, img, n);
        ck_assert_int_eq(st_buffer_check(b, n, "short", err, sizeof err), LS_ERR_FORMAT);
        ck_assert_has(err, "short");
        ck_assert_has(err, "too short");
        free(b);
    }
    ck_assert_int_eq(st_buffer_check(NULL, 0, "null", err, sizeof err), LS_ERR_FORMAT);

    const uint64_t bad[] = {len - 8 + 1,        len, 1ull << 32 | 5, 1ull << 63, UINT64_MAX,
                            (100ull << 20) + 1, 0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put_u64(img, bad[i]);
        ck_assert_msg(st_buffer_check(img, len, "len", err, sizeof err) == LS_ERR_FORMAT,
                      "header length %llu accepted", (unsigned long long)bad[i]);
        ck_assert_has(err, "len");
    }
    /* the whole remainder as header: the data bytes make it invalid JSON */
    put_u64(img, len - 8);
    ck_assert_int_eq(st_buffer_check(img, len, "len", err, sizeof err), LS_ERR_FORMAT);
    /* one byte short: the header is cut inside its JSON */
    put_u64(img, strlen(hdr) - 1);
    ck_assert_int_eq(st_buffer_check(img, len, "len", err, sizeof err), LS_ERR_FORMAT);
    free(img);

    /* a NUL inside the header ends nothing: the JSON is still broken */
    const char nul[] = "{\"t\"\0:1}";
    img = image(nul, sizeof nul - 1, NULL, 0, &len);
    ck_assert_int_eq(st_buffer_check(img, len, "nul", err, sizeof err), LS_ERR_FORMAT);
    free(img);
}
END_TEST

START_TEST(file_errors)
{
    char dir[256], path[512], err[512];
    tmp_dir("files", dir, sizeof dir);
    st_file *f = (st_file *)&f; /* must be reset to NULL on failure */

    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    write_file(path, "", 0);
    ck_assert_int_eq(st_file_open(path, &f, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_ptr_null(f);
    ck_assert_has(err, path);

    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    ck_assert_int_eq(st_file_open(path, &f, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, path);

    ck_assert_int_eq(st_file_open(dir, &f, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, "not a regular file");

    snprintf(path, sizeof path, "%s/seven", dir);
    write_file(path, "\x05\0\0\0\0\0\0", 7);
    ck_assert_int_eq(st_file_open(path, &f, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, path);

    /* an error message buffer is optional */
    ck_assert_int_eq(st_file_open(path, &f, NULL, 0), LS_ERR_FORMAT);
    ck_assert_int_eq(st_buffer_check("", 0, "x", NULL, 0), LS_ERR_FORMAT);

    /* a message longer than the buffer is cut, not overrun */
    char small[8];
    memset(small, 'z', sizeof small);
    ck_assert_int_eq(st_file_open(path, &f, small, 4), LS_ERR_FORMAT);
    ck_assert_uint_eq(strlen(small), 3);
    ck_assert_int_eq(small[4], 'z');
}
END_TEST

/* Cuts a real checkpoint at many lengths: every cut must be refused, none may crash. */
START_TEST(truncated_fixture)
{
    char src[512], dir[256], path[512], err[512];
    snprintf(src, sizeof src, "%s/lf_base/model.safetensors", fixtures());
    size_t n;
    unsigned char *full = slurp_bytes(src, &n);
    ck_assert_int_eq(st_buffer_check(full, n, src, err, sizeof err), LS_OK);

    size_t cuts[17 + 50 + 3], ncut = 0;
    for (size_t i = 0; i <= 16; i++)
        cuts[ncut++] = i;
    for (size_t k = 1; k < 50; k++)
        cuts[ncut++] = n * k / 50;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | full[i];
    cuts[ncut++] = 8 + (size_t)hl; /* header complete, no data */
    cuts[ncut++] = 8 + (size_t)hl - 1;
    cuts[ncut++] = n - 1;
    for (size_t i = 0; i < ncut; i++) {
        unsigned char *b = malloc(cuts[i] ? cuts[i] : 1); /* exact size, so over-reads show */
        memcpy(b, full, cuts[i]);
        ls_status st = st_buffer_check(b, cuts[i], "cut", err, sizeof err);
        ck_assert_msg(st == LS_ERR_FORMAT, "cut at %zu of %zu: %s", cuts[i], n, ls_status_name(st));
        free(b);
    }

    /* the same through the file path (mmap), at every 1/10th */
    tmp_dir("trunc", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    for (size_t k = 0; k < 10; k++) {
        size_t cut = n * k / 10 + (k ? 3 : 0);
        write_file(path, full, cut);
        st_file *f;
        ck_assert_msg(st_file_open(path, &f, err, sizeof err) == LS_ERR_FORMAT, "cut %zu", cut);
        ck_assert_has(err, path);
        st_model m;
        ck_assert_int_eq(st_model_open(dir, &m, err, sizeof err), LS_ERR_FORMAT);
        ck_assert_uint_eq(m.nfiles, 0);
    }
    free(full);
}
END_TEST

/* ---- sharded checkpoints ---------------------------------------------------------------- */

START_TEST(sharded_fixture_loads)
{
    char dir[512], err[512] = "";
    snprintf(dir, sizeof dir, "%s/lf_f16", fixtures());
    st_model m;
    ck_assert_msg(st_model_open(dir, &m, err, sizeof err) == LS_OK, "%s", err);
    ck_assert_uint_eq(m.nfiles, 4);

    /* every tensor of the index is found in the shard it names */
    char ipath[600];
    snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir);
    size_t n;
    char *text = (char *)slurp_bytes(ipath, &n);
    cJSON *ix = cJSON_Parse(text);
    free(text);
    ck_assert(ix != NULL);
    const cJSON *e;
    int count = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ix, "weight_map"))
    {
        st_tensor t;
        ck_assert_msg(st_model_find(&m, e->string, &t) == 0, "%s missing", e->string);
        const char *base = strrchr(t.file, '/');
        ck_assert_str_eq(base + 1, e->valuestring);
        ck_assert_int_eq(t.e->dtype, ST_F16);
        count++;
    }
    cJSON_Delete(ix);
    ck_assert_int_gt(count, 20);

    st_tensor t;
    ck_assert_int_eq(st_model_find(&m, "embeddings.LayerNorm.weight", &t), 0);
    float w[32];
    const int64_t shape[] = {32};
    ck_assert_msg(st_tensor_to_f32(&t, shape, 1, w, err, sizeof err) == LS_OK, "%s", err);
    for (int i = 0; i < 32; i++)
        ck_assert(isfinite(w[i]));
    st_model_free(&m);
}
END_TEST

typedef struct {
    const char *what;
    const char *key, *json; /* weight_map edit (NULL key: edit the root's "weight_map") */
    const char *raw;        /* whole index text instead of an edit */
    ls_status want;
    const char *needle;
} ix_case;

static const ix_case ix_cases[] = {
    {"missing shard", "embeddings.LayerNorm.bias", "\"model-00009-of-00004.safetensors\"", NULL,
     LS_ERR_IO, "model-00009-of-00004.safetensors"},
    {"shard in a subdirectory", "embeddings.LayerNorm.bias",
     "\"sub/model-00001-of-00004.safetensors\"", NULL, LS_ERR_FORMAT, "embeddings.LayerNorm.bias"},
    {"shard outside the directory", "embeddings.LayerNorm.bias", "\"../lf_base/model.safetensors\"",
     NULL, LS_ERR_FORMAT, "invalid file name"},
    {"absolute shard path", "embeddings.LayerNorm.bias", "\"/etc/passwd\"", NULL, LS_ERR_FORMAT,
     "invalid file name"},
    {"shard ..", "embeddings.LayerNorm.bias", "\"..\"", NULL, LS_ERR_FORMAT, "invalid file name"},
    {"shard .", "embeddings.LayerNorm.bias", "\".\"", NULL, LS_ERR_FORMAT, "invalid file name"},
    {"empty shard name", "embeddings.LayerNorm.bias", "\"\"", NULL, LS_ERR_FORMAT,
     "invalid file name"},
    {"shard name not a string", "embeddings.LayerNorm.bias", "1", NULL, LS_ERR_FORMAT,
     "invalid file name"},
    {"shard is the index", "embeddings.LayerNorm.bias", "\"model.safetensors.index.json\"", NULL,
     LS_ERR_FORMAT, "model.safetensors.index.json"},
    {"tensor absent from its shard", "ghost.weight", "\"model-00001-of-00004.safetensors\"", NULL,
     LS_ERR_FORMAT, "'ghost.weight' is not in shard"},
    {"tensor in another shard", "embeddings.LayerNorm.bias", "\"model-00002-of-00004.safetensors\"",
     NULL, LS_ERR_FORMAT, "'embeddings.LayerNorm.bias'"},
    {"weight_map an array", NULL, "[]", NULL, LS_ERR_FORMAT, "weight_map"},
    {"weight_map a string", NULL, "\"model-00001-of-00004.safetensors\"", NULL, LS_ERR_FORMAT,
     "weight_map"},
    {"weight_map null", NULL, "null", NULL, LS_ERR_FORMAT, "weight_map"},
    {"no weight_map", NULL, NULL, NULL, LS_ERR_FORMAT, "weight_map"},
    {"index not JSON", NULL, NULL, "{\"weight_map\": {", LS_ERR_FORMAT, "not valid JSON"},
    {"index empty", NULL, NULL, "", LS_ERR_FORMAT, "not valid JSON"},
    {"index an array", NULL, NULL, "[{\"weight_map\":{}}]", LS_ERR_FORMAT, "weight_map"},
};
#define N_IX_CASES ((int)(sizeof ix_cases / sizeof ix_cases[0]))

START_TEST(hostile_index)
{
    const ix_case *c = &ix_cases[_i];
    char src[512], dir[256], ipath[512], err[512] = "";
    snprintf(src, sizeof src, "%s/lf_f16", fixtures());
    tmp_dir("index", dir, sizeof dir);
    copy_dir(src, dir);
    snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir);
    kv_edit e =
        c->key ? (kv_edit){"weight_map", c->key, c->json} : (kv_edit){NULL, "weight_map", c->json};
    rewrite_json(ipath, c->raw, &e);
    st_model m;
    expect(c->what, st_model_open(dir, &m, err, sizeof err), c->want, err, c->needle, NULL);
    ck_assert_uint_eq(m.nfiles, 0);
    ck_assert_ptr_null(m.files);
}
END_TEST

START_TEST(shard_errors)
{
    char src[512], dir[256], path[512], err[512] = "";
    st_model m;
    tmp_dir("noweights", dir, sizeof dir);
    ck_assert_int_eq(st_model_open(dir, &m, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, "model.safetensors");

    /* a corrupt shard is named in the message */
    snprintf(src, sizeof src, "%s/lf_f16", fixtures());
    tmp_dir("badshard", dir, sizeof dir);
    copy_dir(src, dir);
    snprintf(path, sizeof path, "%s/model-00003-of-00004.safetensors", dir);
    size_t n;
    unsigned char *b = slurp_bytes(path, &n);
    write_file(path, b, n / 2);
    free(b);
    ck_assert_int_eq(st_model_open(dir, &m, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, "model-00003-of-00004.safetensors");

    /* a missing shard file, rather than a bad name */
    tmp_dir("goneshard", dir, sizeof dir);
    copy_dir(src, dir);
    snprintf(path, sizeof path, "%s/model-00004-of-00004.safetensors", dir);
    ck_assert(unlink(path) == 0);
    ck_assert_int_eq(st_model_open(dir, &m, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, "model-00004-of-00004.safetensors");

    /* a shard that is a directory */
    ck_assert(mkdir(path, 0700) == 0);
    ck_assert_int_eq(st_model_open(dir, &m, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, "model-00004-of-00004.safetensors");
}
END_TEST

/* ---- engine: load errors name what is wrong ------------------------------------------------ */

/* Loads dir with default parameters and frees the model; *out must be NULL on failure. */
static ls_status load_dir(const char *what, const char *dir, char *err, size_t errlen)
{
    eng_model *m = (eng_model *)&m; /* a sentinel the loader must overwrite */
    ls_status st = eng_model_load(dir, NULL, &m, err, errlen);
    ck_assert_msg(st == LS_OK ? m != NULL : m == NULL, "%s: model pointer wrong", what);
    eng_model_free(m);
    return st;
}

/* Copies fixture lf_base into tmp_root/name. */
static void lf_copy(const char *name, char *dir, size_t cap, char *cfg, char *st, size_t pcap)
{
    char src[512];
    snprintf(src, sizeof src, "%s/lf_base", fixtures());
    tmp_dir(name, dir, cap);
    copy_dir(src, dir);
    snprintf(cfg, pcap, "%s/config.json", dir);
    snprintf(st, pcap, "%s/model.safetensors", dir);
}

#define LF_COPY(name)                                                                              \
    char dir[256], cfg[512], stp[512], err[1024] = "";                                             \
    lf_copy(name, dir, sizeof dir, cfg, stp, sizeof cfg)

START_TEST(engine_loads_copy)
{
    LF_COPY("eng_ok");
    ck_assert_msg(load_dir("copy", dir, err, sizeof err) == LS_OK, "%s", err);
    /* the sharded F16 and the BF16 fixtures load too */
    char d[512];
    snprintf(d, sizeof d, "%s/lf_f16", fixtures());
    ck_assert_msg(load_dir("f16", d, err, sizeof err) == LS_OK, "%s", err);
    snprintf(d, sizeof d, "%s/lf_bf16", fixtures());
    ck_assert_msg(load_dir("bf16", d, err, sizeof err) == LS_OK, "%s", err);
}
END_TEST

static void set_tensor_field(cJSON *hdr, const void *arg)
{
    const char *const *a = arg; /* tensor, field, JSON value */
    kv_edit e = {a[0], a[1], a[2]};
    set_kv(hdr, &e);
}

START_TEST(engine_wrong_shape)
{
    LF_COPY("eng_shape");
    const char *q = "encoder.layer.1.attention.self.query.weight";
    const char *edit[] = {q, "shape", "[16,64]"}; /* same bytes, wrong shape */
    st_edit(stp, set_tensor_field, edit);
    ck_assert_int_eq(load_dir("shape", dir, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, q);
    ck_assert_has(err, stp);
    ck_assert_has(err, "[16,64]");
    ck_assert_has(err, "[32,32]");
}
END_TEST

START_TEST(engine_wrong_dtype)
{
    LF_COPY("eng_dtype");
    const char *b = "encoder.layer.0.output.dense.bias";
    const char *edit[] = {b, "dtype", "\"I32\""}; /* same size as F32 */
    st_edit(stp, set_tensor_field, edit);
    ck_assert_int_eq(load_dir("dtype", dir, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, b);
    ck_assert_has(err, "I32");
}
END_TEST

START_TEST(engine_missing_tensor)
{
    LF_COPY("eng_missing");
    const char *b = "encoder.layer.1.output.dense.bias";
    rename_edit e = {b, "encoder.layer.1.output.dense.bias_renamed"};
    st_edit(stp, rename_key, &e);
    ck_assert_int_eq(load_dir("missing", dir, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, b);
    ck_assert_has(err, "not found");
}
END_TEST

START_TEST(engine_config_disagrees_with_weights)
{
    LF_COPY("eng_hidden");
    kv_edit e = {NULL, "hidden_size", "64"}; /* still divisible by 4 heads */
    json_edit(cfg, set_kv, &e);
    ck_assert_int_eq(load_dir("hidden", dir, err, sizeof err), LS_ERR_FORMAT);
    ck_assert_has(err, "embeddings.word_embeddings.weight");
    ck_assert_has(err, "[300,32]");
    ck_assert_has(err, "[300,64]");
}
END_TEST

typedef struct {
    const char *what, *key, *json; /* config.json edit; json NULL removes the key */
    const char *raw;               /* whole config.json instead */
    ls_status want;
    const char *needle; /* besides the directory */
} cfg_case;

static const cfg_case cfg_cases[] = {
    {"window list longer than layers", "attention_window", "[4,8,8]", NULL, LS_ERR_CONFIG,
     "attention_window has 3 entries for 2 layers"},
    {"window list shorter than layers", "num_hidden_layers", "3", NULL, LS_ERR_CONFIG,
     "attention_window has 2 entries for 3 layers"},
    {"odd window", "attention_window", "[4,7]", NULL, LS_ERR_CONFIG,
     "config.json: attention_window 7"},
    {"odd window as int", "attention_window", "5", NULL, LS_ERR_CONFIG,
     "config.json: attention_window 5"},
    {"zero window", "attention_window", "[0,8]", NULL, LS_ERR_CONFIG,
     "config.json: attention_window 0"},
    {"negative window", "attention_window", "[-4,8]", NULL, LS_ERR_CONFIG,
     "config.json: attention_window -4"},
    {"window not dividing the largest", "attention_window", "[6,8]", NULL, LS_ERR_CONFIG,
     "does not divide"},
    {"window list of strings", "attention_window", "[\"4\",8]", NULL, LS_ERR_CONFIG,
     "\"attention_window\"[0]"},
    {"window an object", "attention_window", "{}", NULL, LS_ERR_CONFIG, "attention_window"},
    {"hidden not divisible by heads", "num_attention_heads", "5", NULL, LS_ERR_CONFIG, "heads 5"},
    {"zero heads", "num_attention_heads", "0", NULL, LS_ERR_CONFIG, "heads 0"},
    {"zero layers", "num_hidden_layers", "0", NULL, LS_ERR_CONFIG, "layers 0"},
    {"too many layers", "num_hidden_layers", "100000", NULL, LS_ERR_CONFIG, "layers 100000"},
    {"layers INT_MAX", "num_hidden_layers", "2147483647", NULL, LS_ERR_CONFIG, "layers 2147483647"},
    {"hidden a string", "hidden_size", "\"32\"", NULL, LS_ERR_CONFIG, "\"hidden_size\""},
    {"hidden fractional", "hidden_size", "32.5", NULL, LS_ERR_CONFIG, "\"hidden_size\""},
    {"hidden 2^40", "hidden_size", "1099511627776", NULL, LS_ERR_CONFIG, "\"hidden_size\""},
    {"unknown model_type", "model_type", "\"gpt2\"", NULL, LS_ERR_UNSUPPORTED, "gpt2"},
    {"model_type too long", "model_type", "\"longformerlongformerlongformerlongformer\"", NULL,
     LS_ERR_CONFIG, "\"model_type\""},
    {"unknown architecture", "architectures", "[\"LongformerForPainting\"]", NULL,
     LS_ERR_UNSUPPORTED, "LongformerForPainting"},
    {"bad activation", "hidden_act", "\"relu\"", NULL, LS_ERR_UNSUPPORTED, "relu"},
    {"layer_norm_eps a string", "layer_norm_eps", "\"1e-5\"", NULL, LS_ERR_CONFIG,
     "layer_norm_eps"},
    {"pad outside vocab", "pad_token_id", "300", NULL, LS_ERR_CONFIG, "pad_token_id 300"},
    {"id2label with a gap", "id2label", "{\"0\":\"a\",\"2\":\"b\"}", NULL, LS_ERR_CONFIG,
     "id2label"},
    {"config not JSON", NULL, NULL, "{\"model_type\": \"longformer\",", LS_ERR_CONFIG,
     "not valid JSON"},
    {"config empty", NULL, NULL, "", LS_ERR_CONFIG, "not valid JSON"},
    {"config an array", NULL, NULL, "[]", LS_ERR_CONFIG, "not a JSON object"},
};
#define N_CFG_CASES ((int)(sizeof cfg_cases / sizeof cfg_cases[0]))

START_TEST(engine_bad_config)
{
    const cfg_case *c = &cfg_cases[_i];
    char name[32];
    snprintf(name, sizeof name, "eng_cfg%d", _i);
    LF_COPY(name);
    kv_edit e = {NULL, c->key, c->json};
    rewrite_json(cfg, c->raw, &e);
    /* Every message names the directory; most name config.json too, but not the
     * odd-window one, as a window may also come from eng_model_params. */
    expect(c->what, load_dir(c->what, dir, err, sizeof err), c->want, err, dir, c->needle);
}
END_TEST

START_TEST(engine_missing_files)
{
    LF_COPY("eng_nofiles");
    ck_assert(unlink(stp) == 0);
    ck_assert_int_eq(load_dir("no weights", dir, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, dir);
    ck_assert(unlink(cfg) == 0);
    ck_assert_int_eq(load_dir("no config", dir, err, sizeof err), LS_ERR_IO);
    ck_assert_has(err, cfg);
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("file");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, valid_file_tensors);
    tcase_add_test(tc, shape_mismatch_names_everything);
    tcase_add_test(tc, f16_bf16_exhaustive);
    tcase_add_loop_test(tc, hostile_header, 0, N_HDR_CASES);
    tcase_add_test(tc, hostile_length_prefix);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, truncated_fixture);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sharded_fixture_loads);
    tcase_add_loop_test(tc, hostile_index, 0, N_IX_CASES);
    tcase_add_test(tc, shard_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("engine");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, engine_loads_copy);
    tcase_add_test(tc, engine_wrong_shape);
    tcase_add_test(tc, engine_wrong_dtype);
    tcase_add_test(tc, engine_missing_tensor);
    tcase_add_test(tc, engine_config_disagrees_with_weights);
    tcase_add_loop_test(tc, engine_bad_config, 0, N_CFG_CASES);
    tcase_add_test(tc, engine_missing_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(safetensors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
