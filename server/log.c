/* Log lines: timestamp, level, event, request id, message; JSON escaping done here
 * because a log line must never fail to print. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log__json, log__off;

void log_init(int json)
{
    log__json = json;
}

static void log__str(char *out, size_t n, const char *s)
{
    size_t k = 0;
    out[k++] = '"';
    for (; *s && k + 8 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c < 0x20) {
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '"';
    out[k] = 0;
}

void log_quiet(int on)
{
    log__off = on;
}

void log_event(const char *level, const char *event, const char *req_id, const char *fmt, ...)
{
    if (log__off) return;
    char msg[2048], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);
    if (log__json) {
        char jmsg[4200], jid[160];
        log__str(jmsg, sizeof jmsg, msg);
        log__str(jid, sizeof jid, req_id ? req_id : "");
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"%s%s,\"message\":%s}\n",
                ts, level, event, req_id ? ",\"request_id\":" : "", req_id ? jid : "", jmsg);
    } else {
        fprintf(stderr, "%s %-5s %s%s%s %s\n", ts, level, event, req_id ? " req=" : "",
                req_id ? req_id : "", msg);
    }
    fflush(stderr);
}
