/* Logging: one line per event on stderr, as text or JSON (--json-output), with the
 * request id when there is one. Secrets are never passed here. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

void log_init(int json);
/* Drops every line from now on (the fuzz targets, which run the server in-process). */
void log_quiet(int on);
/* level: "info", "warn", "error"; event: a short snake_case name ("request",
 * "listening", "shutdown"); req_id may be NULL. */
void log_event(const char *level, const char *event, const char *req_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
