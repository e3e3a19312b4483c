/* The HTTP adapter: libmicrohttpd under the libuv loop (server/http.c). */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "server.h"

/* Listens on --hostname:--port (s->port gets the bound port) and sets s->resume. */
int http_start(srv_server *s, char *err, size_t errlen);
/* Stops listening and closes the adapter's handles; http_stop twice is a no-op. */
void http_stop(srv_server *s);

#endif
