/* A growing output buffer for bodies printed by hand: JSON responses (bodies with many
 * floats are too big to build as cJSON trees) and the metrics exposition. Out of memory
 * is sticky: every later write is a no-op and ls_buf_finish returns NULL. */
#ifndef LS_BUF_H
#define LS_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} ls_buf;

void ls_buf_reserve(ls_buf *b, size_t more);
void ls_buf_put(ls_buf *b, const char *s, size_t n);
void ls_buf_puts(ls_buf *b, const char *s);
void ls_buf_printf(ls_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string of s[0..n) (UTF-8 passes through; quotes, backslashes and control
 * characters are escaped). */
void ls_buf_str(ls_buf *b, const char *s, size_t n);
/* A float32 with 9 significant digits (round-trips), null when not finite. */
void ls_buf_float(ls_buf *b, float v);
/* A JSON array of n floats. */
void ls_buf_floats(ls_buf *b, const float *v, size_t n);
/* The base64 of the little-endian bytes of n float32 values, as a JSON string. */
void ls_buf_floats_b64(ls_buf *b, const float *v, size_t n);
/* The body (NUL-terminated, malloc'd), or NULL when a write ran out of memory. */
char *ls_buf_finish(ls_buf *b, size_t *len);

#endif
