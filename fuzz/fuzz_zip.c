/* Fuzz target: Content-Encoding request bodies (server/zip.c) from untrusted bytes. The
 * first byte chooses the coding and the limit; srv_zip_inflate must refuse with one of its
 * codes or give at most `limit` bytes, NUL-terminated; whatever it gives must come back the
 * same through srv_zip_deflate and srv_zip_inflate; the header parsers must take the rest
 * as a header value without reading past it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../server/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): checks must survive -DNDEBUG release builds. */
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static void roundtrip(int coding, const char *in, size_t n)
{
    size_t zl = 0, bl = 0;
    char *z = srv_zip_deflate(coding, in, n, &zl), *back = NULL;
    if (!z) return; /* out of memory */
    int rc = srv_zip_inflate(coding, z, zl, n, &back, &bl);
    REQUIRE(rc == 0 || rc == -3);
    REQUIRE(rc != 0 || (bl == n && memcmp(back, in, n) == 0 && back[n] == 0));
    free(z);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const int coding = data[0] & 1 ? SRV_ENC_GZIP : SRV_ENC_DEFLATE;
    const size_t limit = (size_t)(data[0] >> 1) << 10; /* 0 .. 127 KiB */
    const char *in = (const char *)data + 1;
    const size_t n = size - 1;
    char *out = NULL;
    size_t outlen = 0;
    int rc = srv_zip_inflate(coding, in, n, limit, &out, &outlen);
    REQUIRE(rc == 0 || rc == -1 || rc == -2 || rc == -3);
    if (rc == 0) {
        REQUIRE(out && outlen <= limit && out[outlen] == 0);
        roundtrip(coding, out, outlen);
    } else {
        REQUIRE(out == NULL);
    }
    free(out);
    roundtrip(coding, in, n);
    /* the header values (NUL-terminated copies) */
    char *h = malloc(n + 1);
    if (!h) return 0;
    memcpy(h, in, n);
    h[n] = 0;
    const int c = srv_zip_coding(h);
    REQUIRE(c == 0 || c == -1 || c == SRV_ENC_GZIP || c == SRV_ENC_DEFLATE);
    const unsigned a = srv_zip_accepts(h);
    REQUIRE((a & ~(unsigned)(SRV_ENC_GZIP | SRV_ENC_DEFLATE)) == 0);
    const int ch = srv_zip_choose(a);
    REQUIRE(ch == 0 || ((unsigned)ch & a) == (unsigned)ch);
    free(h);
    return 0;
}
