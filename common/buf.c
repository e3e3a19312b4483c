/* The hand-printed JSON output buffer shared by the response encoders. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void ls_buf_reserve(ls_buf *b, size_t more)
{
    if (b->oom || b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

void ls_buf_put(ls_buf *b, const char *s, size_t n)
{
    ls_buf_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void ls_buf_puts(ls_buf *b, const char *s)
{
    ls_buf_put(b, s, strlen(s));
}

void ls_buf_printf(ls_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        ls_buf_put(b, tmp, (size_t)k);
        return;
    }
    ls_buf_reserve(b, (size_t)k);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void ls_buf_str(ls_buf *b, const char *s, size_t n)
{
    ls_buf_reserve(b, n + 2);
    ls_buf_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        ls_buf_put(b, s + run, i - run);
        run = i + 1;
        char tmp[8];
        if (ch == '"' || ch == '\\')
            snprintf(tmp, sizeof tmp, "\\%c", ch);
        else if (ch == '\n')
            snprintf(tmp, sizeof tmp, "\\n");
        else if (ch == '\t')
            snprintf(tmp, sizeof tmp, "\\t");
        else if (ch == '\r')
            snprintf(tmp, sizeof tmp, "\\r");
        else
            snprintf(tmp, sizeof tmp, "\\u%04x", ch);
        ls_buf_puts(b, tmp);
    }
    ls_buf_put(b, s + run, n - run);
    ls_buf_put(b, "\"", 1);
}

void ls_buf_float(ls_buf *b, float v)
{
    ls_buf_reserve(b, 24);
    if (b->oom) return;
    if (isfinite(v))
        b->n += (size_t)snprintf(b->p + b->n, 24, "%.9g", (double)v);
    else
        b->n += (size_t)snprintf(b->p + b->n, 24, "null");
}

void ls_buf_floats(ls_buf *b, const float *v, size_t n)
{
    ls_buf_reserve(b, n * 16 + 2);
    ls_buf_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) ls_buf_put(b, ",", 1);
        ls_buf_float(b, v[i]);
    }
    ls_buf_put(b, "]", 1);
}

void ls_buf_floats_b64(ls_buf *b, const float *v, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t bytes = n * 4;
    ls_buf_reserve(b, (bytes + 2) / 3 * 4 + 2);
    ls_buf_put(b, "\"", 1);
    if (b->oom) return;
    unsigned char tri[3];
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int s = 0; s < 4; s++) { /* little-endian whatever the host */
            tri[k++] = (unsigned char)(u >> (8 * s));
            if (k == 3) {
                char q[4] = {tab[tri[0] >> 2], tab[((tri[0] & 3) << 4) | (tri[1] >> 4)],
                             tab[((tri[1] & 15) << 2) | (tri[2] >> 6)], tab[tri[2] & 63]};
                ls_buf_put(b, q, 4);
                k = 0;
            }
        }
    }
    if (k) {
        if (k == 1) tri[1] = 0;
        tri[2] = 0;
        char q[4] = {tab[tri[0] >> 2], tab[((tri[0] & 3) << 4) | (tri[1] >> 4)],
                     k == 2 ? tab[(tri[1] & 15) << 2] : '=', '='};
        ls_buf_put(b, q, 4);
    }
    ls_buf_put(b, "\"", 1);
}

char *ls_buf_finish(ls_buf *b, size_t *len)
{
    if (!b->oom && !b->p) ls_buf_put(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    if (len) *len = b->n;
    char *p = b->p;
    b->p = NULL;
    return p;
}
