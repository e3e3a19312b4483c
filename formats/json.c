/* Strict JSON parsing on top of cJSON (nothing may follow the value but whitespace), and the
 * string check request bodies get: no \u0000, no raw control bytes. */
#include <stdio.h>
#include <string.h>

#include "json.h"

cJSON *fmt_json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) return NULL;
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(v);
            return NULL;
        }
    return v;
}

/* One open container on the way to the bad string; only the first FMT__DEPTH are kept for
 * the path (cJSON itself nests up to 1000). */
#define FMT__DEPTH 16
typedef struct {
    int array;
    long idx;
    const char *key; /* the object's current key, raw JSON bytes without the quotes */
    size_t klen;
} fmt__level;

static void fmt__path(char *out, size_t outlen, const fmt__level *lv, int depth, int in_key)
{
    size_t n = 0;
    out[0] = 0;
    int shown = depth < FMT__DEPTH ? depth : FMT__DEPTH;
    for (int d = 0; d < shown && n < outlen; d++) {
        int r;
        if (lv[d].array)
            r = snprintf(out + n, outlen - n, "[%ld]", lv[d].idx);
        else if (d == depth - 1 && in_key)
            r = snprintf(out + n, outlen - n, "%s(a key)", n ? "." : "");
        else if (lv[d].key)
            r = snprintf(out + n, outlen - n, "%s%.*s", n ? "." : "",
                         (int)(lv[d].klen > 64 ? 64 : lv[d].klen), lv[d].key);
        else
            r = 0;
        if (r < 0) break;
        n += (size_t)r;
    }
    if (depth > shown && n < outlen) snprintf(out + n, outlen - n, "...");
    if (!out[0]) snprintf(out, outlen, "the body");
}

int fmt_json_check_strings(const char *text, size_t len, char *why, size_t whylen)
{
    fmt__level lv[FMT__DEPTH];
    int depth = 0, expect_key = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (depth < FMT__DEPTH) lv[depth] = (fmt__level){c == '[', 0, NULL, 0};
            depth++;
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth > 0) depth--;
            expect_key = 0;
        } else if (c == ',' && depth > 0 && depth <= FMT__DEPTH) {
            if (lv[depth - 1].array)
                lv[depth - 1].idx++;
            else
                expect_key = 1;
        } else if (c == ',') {
            expect_key = depth > FMT__DEPTH; /* deeper than kept: a key is as likely as not */
        } else if (c == '"') {
            int is_key = expect_key;
            size_t s = ++i;
            const char *bad = NULL;
            unsigned char ctl = 0;
            for (; i < len && text[i] != '"'; i++) {
                unsigned char u = (unsigned char)text[i];
                if (u == '\\') {
                    if (i + 5 < len && !memcmp(text + i + 1, "u0000", 5)) bad = "NUL";
                    i++; /* the escaped byte; "\\u0000" is a backslash then the text u0000 */
                } else if (u < 0x20) {
                    bad = "ctl", ctl = u;
                }
                if (bad) break;
            }
            if (bad) {
                char path[256];
                fmt__path(path, sizeof path, lv, depth, is_key);
                if (bad[0] == 'N')
                    snprintf(why, whylen, "`%s`: NUL (\\u0000) in a string is not accepted", path);
                else
                    snprintf(why, whylen,
                             "`%s`: a raw control byte (0x%02x) in a string is not valid JSON "
                             "(write it as \\u%04x)",
                             path, ctl, ctl);
                return 1;
            }
            if (is_key && depth > 0 && depth <= FMT__DEPTH) {
                lv[depth - 1].key = text + s;
                lv[depth - 1].klen = i - s;
            }
            expect_key = 0;
        }
    }
    return 0;
}
