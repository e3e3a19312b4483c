/* A small HTTP/1.1 client on plain sockets to 127.0.0.1, for the integration tests and
 * bench/bench_load.c: connect, send a request (or raw bytes, for malformed requests), read
 * one whole response (Content-Length, chunked, or up to the close) into status, head and
 * body. One request at a time per connection (no pipelining). Needs no test framework. */
#ifndef LS_TESTS_HTTPC_H
#define LS_TESTS_HTTPC_H

#include <stddef.h>

typedef struct {
    int status;
    char head[8192]; /* the status line and the headers, without the blank line */
    char *body;      /* NUL-terminated, chunked framing removed (malloc'd) */
    size_t len;
} hresp;

/* Where failures go. Every call below that fails returns -1 after passing a message
 * ("connect: Connection refused") to this function, which may not return: the tests make
 * it fail the test. Without one (the default) failures are only returned. */
void httpc_on_error(void (*fail)(const char *msg));

void hresp_free(hresp *r);

/* A TCP connection to 127.0.0.1:port (TCP_NODELAY, a 120 s receive timeout so that a
 * hung server fails instead of hanging), or -1. */
int hconnect(int port);

/* All of buf[0..n), or -1. */
int hsend(int fd, const void *buf, size_t n);

/* A request: "METHOD path HTTP/1.1", Host, "Connection: close" unless headers (each line
 * ending in \r\n, or NULL) name a Connection, Content-Length when body is not NULL, then
 * body[0..len). 0 or -1. */
int hsend_request(int fd, const char *method, const char *path, const char *headers,
                  const char *body, size_t len);

/* One whole response into *r (hresp_free it); its status, or -1 (then r->body is NULL). */
int hread(int fd, hresp *r);

/* The value of a response header (case-insensitive name) copied into out, or NULL. */
const char *hheader(const hresp *r, const char *name, char *out, size_t n);

#endif
