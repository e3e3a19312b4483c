/* Late chunking (engine/chunk.h): character spans to token ranges, the token, sentence
 * and separator chunkers, and the choice of the long-document window a chunk is pooled
 * from. Texts are valid UTF-8 (the wire layer checks); positions are code points. */
#include <limits.h>
#include <string.h>

#include "chunk.h"

void eng_chunk_tokens(const int32_t *tok_start, const int32_t *tok_end, int ntok, eng_chunk *c,
                      int nc)
{
    for (int k = 0; k < nc; k++) {
        int first = -1, last = -1;
        for (int t = 0; t < ntok; t++) {
            const int s = tok_start[t], e = tok_end[t];
            const int meets =
                s == e ? c[k].start <= s && s < c[k].end : s < c[k].end && e > c[k].start;
            if (!meets) continue;
            if (first < 0) first = t;
            last = t;
        }
        c[k].t0 = first < 0 ? 0 : first;
        c[k].t1 = first < 0 ? 0 : last + 1;
    }
}

static void eng__chunk_put(eng_chunk *out, int cap, int count, int start, int end, int t0, int t1)
{
    if (count < cap) out[count] = (eng_chunk){start, end, t0, t1};
}

int eng_chunk_by_tokens(const int32_t *tok_start, const int32_t *tok_end, int ntok, int n,
                        int overlap, eng_chunk *out, int cap)
{
    int count = 0;
    const int step = n - overlap;
    for (int t0 = 0; ntok > 0 && step > 0; t0 += step) {
        const int t1 = t0 + n < ntok ? t0 + n : ntok;
        eng__chunk_put(out, cap, count++, tok_start[t0], tok_end[t1 - 1], t0, t1);
        if (t1 == ntok) break;
    }
    return count;
}

static int eng__space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Code points in s[0..n). */
static int eng__chars(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Appends text[a, b) trimmed of white space as a chunk when something is left. */
static int eng__chunk_trimmed(const char *text, size_t a, size_t b, eng_chunk *out, int cap,
                              int count)
{
    while (a < b && eng__space((unsigned char)text[a]))
        a++;
    while (b > a && eng__space((unsigned char)text[b - 1]))
        b--;
    if (a == b) return count;
    const int s = eng__chars(text, a);
    eng__chunk_put(out, cap, count, s, s + eng__chars(text + a, b - a), 0, 0);
    return count + 1;
}

int eng_chunk_by_sentences(const char *text, size_t len, int k, eng_chunk *out, int cap)
{
    /* sentence ends (byte offsets just past each sentence), then groups of k */
    int count = 0, in_group = 0;
    size_t group_start = 0;
    for (size_t i = 0; i < len;) {
        const char c = text[i];
        if (c != '.' && c != '!' && c != '?') {
            i++;
            continue;
        }
        size_t e = i;
        while (e < len && (text[e] == '.' || text[e] == '!' || text[e] == '?'))
            e++;
        while (e < len && (text[e] == '"' || text[e] == '\'' || text[e] == ')' || text[e] == ']'))
            e++;
        if (e < len && !eng__space((unsigned char)text[e])) {
            i = e;
            continue;
        }
        if (++in_group == k) {
            count = eng__chunk_trimmed(text, group_start, e, out, cap, count);
            group_start = e;
            in_group = 0;
        }
        i = e;
    }
    return eng__chunk_trimmed(text, group_start, len, out, cap, count);
}

int eng_chunk_by_separator(const char *text, size_t len, const char *sep, size_t seplen,
                           eng_chunk *out, int cap)
{
    int count = 0;
    size_t a = 0;
    for (size_t i = 0; seplen && i + seplen <= len;) {
        if (memcmp(text + i, sep, seplen) != 0) {
            i++;
            continue;
        }
        count = eng__chunk_trimmed(text, a, i, out, cap, count);
        a = i += seplen;
    }
    return eng__chunk_trimmed(text, a, len, out, cap, count);
}

int eng_chunk_window(const int *c0, const int *c1, int nwin, int ntok, int t0, int t1)
{
    int best = -1;
    long long best_margin = -1;
    for (int w = 0; w < nwin; w++) {
        if (c0[w] > t0 || c1[w] < t1) continue;
        const long long left = c0[w] == 0 ? LLONG_MAX : t0 - c0[w];
        const long long right = c1[w] == ntok ? LLONG_MAX : c1[w] - t1;
        const long long m = left < right ? left : right;
        if (m > best_margin) best = w, best_margin = m;
    }
    return best;
}
