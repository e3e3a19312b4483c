/* HTTP content codings with zlib: request bodies sent with Content-Encoding gzip or
 * deflate are inflated (under the payload limit) before any handler sees them, and replies
 * are compressed when the client's Accept-Encoding takes gzip or deflate (tritonclient's
 * request_ and response_compression_algorithm). "deflate" is the zlib format (RFC 9110);
 * a raw deflate stream, which some clients send instead, is accepted too. */
#ifndef SRV_ZIP_H
#define SRV_ZIP_H

#include <stddef.h>

enum { SRV_ENC_GZIP = 1, SRV_ENC_DEFLATE = 2 };

/* Replies smaller than this go out uncompressed: below it, compression saves nothing. */
#define SRV_ZIP_MIN_BYTES 1024

/* A Content-Encoding value: 0 identity (or absent), SRV_ENC_GZIP, SRV_ENC_DEFLATE, -1 any
 * other coding. */
int srv_zip_coding(const char *content_encoding);
/* The SRV_ENC_* bits an Accept-Encoding value takes (a q=0 refuses; "*" takes both). */
unsigned srv_zip_accepts(const char *accept_encoding);
/* The coding a reply gets: gzip when accepted, else deflate when accepted, else 0. */
int srv_zip_choose(unsigned accepts);

/* in[0..n) inflated into *out (malloc'd, NUL-terminated, *outlen bytes). Returns 0, -1 when
 * the result would exceed limit bytes, -2 when the data are not valid for the coding, -3
 * when out of memory. */
int srv_zip_inflate(int coding, const char *in, size_t n, size_t limit, char **out, size_t *outlen);
/* in[0..n) compressed with coding (malloc'd), or NULL when out of memory. */
char *srv_zip_deflate(int coding, const char *in, size_t n, size_t *outlen);

#endif
