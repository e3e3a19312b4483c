/* Content codings (gzip, deflate) of request and reply bodies with zlib: parsing the
 * headers that name them, inflating under a limit, compressing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "zip.h"

int srv_zip_coding(const char *v)
{
    if (!v) return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, " \t,;");
    if (n == 0 || (n == 8 && strncasecmp(v, "identity", 8) == 0)) return 0;
    if ((n == 4 && strncasecmp(v, "gzip", 4) == 0) || (n == 6 && strncasecmp(v, "x-gzip", 6) == 0))
        return v[n + strspn(v + n, " \t")] ? -1 : SRV_ENC_GZIP; /* one coding, not a list */
    if (n == 7 && strncasecmp(v, "deflate", 7) == 0)
        return v[n + strspn(v + n, " \t")] ? -1 : SRV_ENC_DEFLATE;
    return -1;
}

unsigned srv_zip_accepts(const char *v)
{
    unsigned bits = 0;
    for (const char *p = v; p && *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,;");
        const char *end = p + strcspn(p, ",");
        const char *q = memchr(p, ';', (size_t)(end - p));
        int refused = 0; /* "gzip;q=0" */
        if (q) {
            const char *qv = strstr(q, "q=");
            refused = qv && qv < end && strtod(qv + 2, NULL) <= 0.0;
        }
        unsigned b = n == 4 && strncasecmp(p, "gzip", 4) == 0      ? SRV_ENC_GZIP
                     : n == 7 && strncasecmp(p, "deflate", 7) == 0 ? SRV_ENC_DEFLATE
                     : n == 1 && *p == '*'                         ? SRV_ENC_GZIP | SRV_ENC_DEFLATE
                                                                   : 0;
        if (!refused) bits |= b;
        p = end;
    }
    return bits;
}

int srv_zip_choose(unsigned accepts)
{
    return accepts & SRV_ENC_GZIP ? SRV_ENC_GZIP : accepts & SRV_ENC_DEFLATE ? SRV_ENC_DEFLATE : 0;
}

/* One inflate pass with zlib's windowBits wbits (gzip: 16+15, zlib: 15, raw: -15). */
static int zip__inflate(int wbits, const char *in, size_t n, size_t limit, char **out,
                        size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, wbits) != Z_OK) return -3;
    size_t cap = n * 4 + 256 < limit + 1 ? n * 4 + 256 : limit + 1, len = 0;
    char *b = malloc(cap + 1);
    int rc = b ? 0 : -3;
    z.next_in = (Bytef *)in;
    while (!rc) {
        /* zlib counts in uInt: feed at most 1 GiB at a time */
        if (z.avail_in == 0 && (size_t)((const char *)z.next_in - in) < n) {
            size_t left = n - (size_t)((const char *)z.next_in - in);
            z.avail_in = (uInt)(left < (1u << 30) ? left : (1u << 30));
        }
        if (len == cap) {
            if (cap > limit) {
                rc = -1;
                break;
            }
            size_t nc = cap * 2 < limit + 1 ? cap * 2 : limit + 1;
            char *nb = realloc(b, nc + 1);
            if (!nb) {
                rc = -3;
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t room = cap - len;
        z.next_out = (Bytef *)b + len;
        z.avail_out = (uInt)(room < (1u << 30) ? room : (1u << 30));
        uInt before = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        len += before - z.avail_out;
        if (zr == Z_STREAM_END) {
            /* anything after the stream (a second gzip member, junk) is refused */
            if ((size_t)((const char *)z.next_in - in) != n || z.avail_in) rc = -2;
            break;
        }
        if (zr == Z_MEM_ERROR)
            rc = -3;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            rc = -2;
        else if (zr == Z_BUF_ERROR && len < cap && z.avail_in == 0 &&
                 (size_t)((const char *)z.next_in - in) == n)
            rc = -2; /* the stream ends before its end */
    }
    inflateEnd(&z);
    if (!rc && len > limit) rc = -1;
    if (rc) {
        free(b);
        return rc;
    }
    b[len] = 0;
    *out = b;
    *outlen = len;
    return 0;
}

int srv_zip_inflate(int coding, const char *in, size_t n, size_t limit, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (coding == SRV_ENC_GZIP) return zip__inflate(16 + MAX_WBITS, in, n, limit, out, outlen);
    int rc = zip__inflate(MAX_WBITS, in, n, limit, out, outlen);
    if (rc == -2) rc = zip__inflate(-MAX_WBITS, in, n, limit, out, outlen);
    return rc;
}

char *srv_zip_deflate(int coding, const char *in, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* level 1: replies are compressed on the way out, speed matters more than the last 10% */
    if (deflateInit2(&z, 1, Z_DEFLATED, coding == SRV_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    char *b = malloc(cap);
    if (!b || n > UINT32_MAX || cap > UINT32_MAX) {
        deflateEnd(&z);
        free(b);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)b;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(b);
        return NULL;
    }
    return b;
}
