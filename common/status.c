/* Status names and messages, generated from LS_STATUS_LIST. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "status.h"

const char *ls_strerror(ls_status st)
{
    switch (st) {
#define LS__TEXT(name, val, text)                                                                  \
    case name:                                                                                     \
        return text;
        LS_STATUS_LIST(LS__TEXT)
#undef LS__TEXT
    }
    return "unknown status";
}

const char *ls_status_name(ls_status st)
{
    switch (st) {
#define LS__NAME(name, val, text)                                                                  \
    case name:                                                                                     \
        return #name;
        LS_STATUS_LIST(LS__NAME)
#undef LS__NAME
    }
    return "LS_UNKNOWN";
}

ls_status ls_fail(char *buf, size_t len, ls_status st, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return st;
}
