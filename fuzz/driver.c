/* A libFuzzer stand-in that needs no clang: feeds every file of a seed corpus, then N
 * deterministic mutations of them, to the target's LLVMFuzzerTestOneInput. It runs as
 * an ordinary test, so every build exercises the parsers on hostile bytes.
 *
 *     fuzz_v2_driver [-n mutations] [-s seed] [-m max_len] corpus_dir_or_file...
 *     fuzz_v2_driver -x ITER -o crash.bin [same options and corpus]   # write one input
 *
 * Mutation ITER depends only on the seed, ITER and the corpus, so a crash reported as
 * "mutation 1234" is reproduced by -x 1234 and then replayed with `-n 0 crash.bin`. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target may steer mutations as under libFuzzer; this file then plays LLVMFuzzerMutate. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
    __attribute__((weak));
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Present only in sanitizer builds: lets a sanitizer report say which input it was. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

typedef struct {
    uint8_t *p;
    size_t n;
    char *path;
} blob;

static blob *corpus;
static size_t ncorpus;

/* ---- corpus -------------------------------------------------------------------------- */

static int read_blob(const char *path, size_t max_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *p = malloc(max_len);
    size_t n = p ? fread(p, 1, max_len, f) : 0;
    fclose(f);
    char *name = strdup(path);
    blob *nc = p && name ? realloc(corpus, (ncorpus + 1) * sizeof *nc) : NULL;
    if (!nc) {
        free(p);
        free(name);
        return -1;
    }
    corpus = nc;
    corpus[ncorpus++] = (blob){p, n, name};
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's regular files, in name order so that runs are reproducible. */
static int read_dir(const char *dir, size_t max_len)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) && !rc) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(path))) rc = -1;
        if (nn) names = nn, n += !rc;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (!rc) rc = read_blob(names[i], max_len);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- mutations -------------------------------------------------------------------------- */

static uint64_t rng;

static uint64_t next(void) /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(next() % n) : 0;
}

/* Values at the edges of the parsers' range checks. */
/* clang-format off */
static const char *const numbers[] = {
    "0", "-0", "1", "-1", "2", "7", "0.5", "-0.5", "1e308", "1e999", "-1e999", "4294967296",
    "2147483647", "2147483648", "-2147483649", "1000000000", "9007199254740993",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "[]", "{}", "\"\"",
    "null",
};
/* clang-format on */
#define NNUM (sizeof numbers / sizeof numbers[0])

/* Tokens and key names that steer the JSON parsers into their corners; one list serves
 * every target. */
/* clang-format off */
static const char *const dict[] = {
    "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u0000", "\\ud800", "null", "true", "false",
    "[[[[[[[[", "]]]]]]]]",
    /* safetensors */
    "__metadata__", "dtype", "shape", "data_offsets", "F32", "F16", "BF16", "I64", "BOOL",
    /* config.json */
    "model_type", "longformer", "bert", "roberta", "attention_window", "id2label",
    "num_labels", "hidden_size", "num_hidden_layers", "architectures", "layer_norm_eps",
    /* v2 */
    "inputs", "outputs", "name", "datatype", "INT64", "INT32", "data", "id", "input_ids",
    "attention_mask", "global_attention_mask", "token_type_ids",
};
/* clang-format on */
#define NDICT (sizeof dict / sizeof dict[0])

static const uint8_t magic_bytes[] = {0,   1,   0x7f, 0x80, 0xff, '{', '}', '[', ']', '"',
                                      ':', ',', '-',  '.',  'e',  '0', '9', ' ', '\\'};

/* Inserts k bytes at `at` (src may be NULL for room only); stays within cap. */
static void insert(uint8_t *b, size_t *n, size_t cap, size_t at, const uint8_t *src, size_t k)
{
    if (*n + k > cap) k = cap - *n;
    memmove(b + at + k, b + at, *n - at);
    if (src)
        memcpy(b + at, src, k);
    else
        for (size_t i = 0; i < k; i++)
            b[at + i] = (uint8_t)next();
    *n += k;
}

static void mutate_once(uint8_t *b, size_t *n, size_t cap)
{
    size_t at = below(*n + 1); /* a position, *n meaning the end */
    switch (below(12)) {
    case 0: /* flip a bit */
        if (*n) b[at % *n] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* random byte */
        if (*n) b[at % *n] = (uint8_t)next();
        break;
    case 2: /* a byte that means something to a parser */
        if (*n) b[at % *n] = magic_bytes[below(sizeof magic_bytes)];
        break;
    case 3: /* truncate */
        *n = at;
        break;
    case 4: { /* delete a chunk */
        size_t k = below(*n - at + 1) % 64;
        memmove(b + at, b + at + k, *n - at - k);
        *n -= k;
        break;
    }
    case 5: /* insert random bytes */
        insert(b, n, cap, at, NULL, 1 + below(8));
        break;
    case 6: { /* duplicate a chunk of itself */
        if (!*n) break;
        size_t from = below(*n), k = 1 + below(*n - from) % 64;
        uint8_t tmp[64];
        memcpy(tmp, b + from, k);
        insert(b, n, cap, at, tmp, k);
        break;
    }
    case 7: /* insert a dictionary token or an edge number */
    case 8: {
        const char *t = below(3) ? dict[below(NDICT)] : numbers[below(NNUM)];
        insert(b, n, cap, at, (const uint8_t *)t, strlen(t));
        break;
    }
    case 9: { /* replace a number with an edge value */
        size_t i = at;
        while (i < *n && !(b[i] >= '0' && b[i] <= '9'))
            i++;
        if (i == *n) break;
        size_t j = i;
        while (j < *n && ((b[j] >= '0' && b[j] <= '9') || b[j] == '.' || b[j] == 'e'))
            j++;
        memmove(b + i, b + j, *n - j);
        *n -= j - i;
        const char *t = numbers[below(NNUM)];
        insert(b, n, cap, i, (const uint8_t *)t, strlen(t));
        break;
    }
    case 10: { /* a little-endian u64 (a safetensors header length) at 0 or anywhere */
        static const uint64_t vals[] = {
            0, 1, 7, 8, 0xffffffffull, 1ull << 32, 1ull << 63, UINT64_MAX, 100ull << 20};
        uint64_t v = below(3) ? vals[below(sizeof vals / sizeof *vals)] : (uint64_t)below(*n + 16);
        size_t pos = below(2) ? 0 : at;
        for (int i = 0; i < 8 && pos + (size_t)i < *n; i++)
            b[pos + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    case 11: { /* splice: keep a prefix, append another seed's suffix */
        const blob *o = &corpus[below(ncorpus)];
        size_t from = below(o->n + 1);
        *n = at;
        insert(b, n, cap, *n, o->p + from, o->n - from);
        break;
    }
    }
}

/* libFuzzer's entry point for a custom mutator's own edits: one random edit here. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
{
    if (size > max_size) size = max_size;
    mutate_once(data, &size, max_size);
    return size;
}

/* Builds mutation `iter` into b; returns its length. */
static size_t make_input(uint64_t seed, uint64_t iter, uint8_t *b, size_t cap)
{
    rng = seed ^ (iter * 0xd1342543de82ef95ull);
    next();
    const blob *s = &corpus[below(ncorpus)];
    size_t n = s->n < cap ? s->n : cap;
    memcpy(b, s->p, n);
    /* mostly one edit, so that many inputs still get past the first checks */
    for (size_t k = below(4) ? 1 : 2 + below(3); k; k--)
        n = LLVMFuzzerCustomMutator ? LLVMFuzzerCustomMutator(b, n, cap, (unsigned)next())
                                    : LLVMFuzzerMutate(b, n, cap);
    return n;
}

/* ---- running ------------------------------------------------------------------------------ */

static const char *cur_file; /* the corpus file being run, or NULL */
static uint64_t cur_iter = UINT64_MAX;

static void say(const char *s)
{
    (void)!write(2, s, strlen(s));
}

static void report(void)
{
    if (cur_file) {
        say("fuzz driver: crashed on corpus file ");
        say(cur_file);
        say("\n");
    } else if (cur_iter != UINT64_MAX) {
        char num[24], *p = num + sizeof num;
        uint64_t v = cur_iter;
        *--p = 0;
        do
            *--p = (char)('0' + v % 10);
        while (v /= 10);
        say("fuzz driver: crashed on mutation ");
        say(p);
        say("; write it out with -x ");
        say(p);
        say(" -o crash.bin (same -s, -m and corpus)\n");
    }
}

static void on_signal(int sig)
{
    report();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The target gets an exactly sized copy, so a read past the end is caught by ASan or
 * valgrind instead of landing in spare capacity. */
static void run_one(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    if (n) memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-n mutations] [-s seed] [-m max_len] [-x iter -o file] "
            "corpus_dir_or_file...\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t nmut = 10000, seed = 0x6c6f6e6773657276ull, extract = UINT64_MAX;
    size_t max_len = 1 << 16;
    const char *out = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:m:x:o:")) != -1) {
        switch (opt) {
        case 'n':
            nmut = strtoull(optarg, NULL, 0);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'm':
            max_len = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'x':
            extract = strtoull(optarg, NULL, 0);
            break;
        case 'o':
            out = optarg;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind >= argc || max_len == 0 || (extract != UINT64_MAX) != (out != NULL)) usage(argv[0]);
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            return 2;
        }
        if ((S_ISDIR(sb.st_mode) ? read_dir(argv[i], max_len) : read_blob(argv[i], max_len)))
            return 2;
    }
    if (!ncorpus) {
        fprintf(stderr, "%s: empty corpus\n", argv[0]);
        return 2;
    }
    uint8_t *buf = malloc(max_len);
    if (!buf) return 2;

    if (out) {
        size_t n = make_input(seed, extract, buf, max_len);
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
            perror(out);
            return 2;
        }
        fprintf(stderr, "wrote mutation %llu (%zu bytes) to %s\n", (unsigned long long)extract, n,
                out);
        return 0;
    }

    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(report);
    } else {
        const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
            signal(sigs[i], on_signal);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t total = 0;
    for (size_t i = 0; i < ncorpus; i++) {
        cur_file = corpus[i].path;
        run_one(corpus[i].p, corpus[i].n);
        total += corpus[i].n;
    }
    cur_file = NULL;
    for (uint64_t it = 0; it < nmut; it++) {
        size_t n = make_input(seed, it, buf, max_len);
        cur_iter = it;
        run_one(buf, n);
        total += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("fuzz driver: %zu corpus inputs + %llu mutations (%zu bytes) in %.2f s, no crash\n",
           ncorpus, (unsigned long long)nmut, total, s);
    free(buf);
    for (size_t i = 0; i < ncorpus; i++)
        free(corpus[i].p), free(corpus[i].path);
    free(corpus);
    return 0;
}
