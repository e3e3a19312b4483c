/* Internal to proto/: a growing output buffer for JSON bodies printed by hand (bodies
 * with many floats are too big to build as cJSON trees). Out of memory is sticky: every
 * later write is a no-op and pr_buf_finish returns NULL. */
#ifndef PR_JBUF_H
#define PR_JBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} pr_buf;

void pr_buf_reserve(pr_buf *b, size_t more);
void pr_buf_put(pr_buf *b, const char *s, size_t n);
void pr_buf_puts(pr_buf *b, const char *s);
void pr_buf_printf(pr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string of s[0..n) (UTF-8 passes through; quotes, backslashes and control
 * characters are escaped). */
void pr_buf_str(pr_buf *b, const char *s, size_t n);
/* A float32 with 9 significant digits (round-trips), null when not finite. */
void pr_buf_float(pr_buf *b, float v);
/* A JSON array of n floats. */
void pr_buf_floats(pr_buf *b, const float *v, size_t n);
/* The base64 of the little-endian bytes of n float32 values, as a JSON string. */
void pr_buf_floats_b64(pr_buf *b, const float *v, size_t n);
/* ,"longserve":{...}: what the long-document knobs did (tei.h), for object responses. */
struct tei_echo;
void pr_buf_echo(pr_buf *b, const struct tei_echo *e);
/* The body (NUL-terminated, malloc'd), or NULL when a write ran out of memory. */
char *pr_buf_finish(pr_buf *b, size_t *len);

#endif
