/* Helpers shared by the test programs: where the fixtures are, and reading a file. */
#ifndef LS_TESTUTIL_H
#define LS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

/* tests/fixtures, from LS_FIXTURES (set by tests/meson.build) or relative to the cwd. */
static inline const char *fixtures(void)
{
    const char *f = getenv("LS_FIXTURES");
    return f ? f : "tests/fixtures";
}

/* The whole file, NUL-terminated (malloc'd), or NULL; *len (if given) gets its size. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    char *b = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

#endif
