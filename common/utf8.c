/* The UTF-8 validator shared by proto/ and the tokenizer, and the sequence reader that
 * the tokenizer's lossy decoding builds on. */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

int ls_utf8_seq(const unsigned char *s, size_t n, int *bad)
{
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range (table 3-7) */
    if (b >= 0xc2 && b <= 0xdf)
        need = 1;
    else if (b == 0xe0)
        need = 2, lo = 0xa0; /* no overlong 3-byte forms */
    else if (b >= 0xe1 && b <= 0xec)
        need = 2;
    else if (b == 0xed)
        need = 2, hi = 0x9f; /* no surrogates */
    else if (b >= 0xee && b <= 0xef)
        need = 2;
    else if (b == 0xf0)
        need = 3, lo = 0x90; /* no overlong 4-byte forms */
    else if (b >= 0xf1 && b <= 0xf3)
        need = 3;
    else if (b == 0xf4)
        need = 3, hi = 0x8f; /* nothing over U+10FFFF */
    else
        return *bad = 1, 0;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return *bad = i, 0;
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf)) return *bad = i, 0;
    }
    return need + 1;
}

ptrdiff_t ls_utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int bad = 0, k = ls_utf8_seq(s + i, n - i, &bad);
        if (!k) return (ptrdiff_t)i;
        i += (size_t)k;
    }
    return -1;
}
