/* Status codes shared by every layer: one X-macro list and one strerror. Negative
 * values are failures. No layer's transport lives here: proto/http_errors.c maps a
 * status to an HTTP code, longserve-run to an exit code. */
#ifndef LS_STATUS_H
#define LS_STATUS_H

#include <stddef.h>

// clang-format off
/*        name                 value  text */
#define LS_STATUS_LIST(X)                                                              \
    X(LS_OK,                     0, "ok")                                              \
    X(LS_ERR_NOMEM,             -1, "out of memory")                                   \
    X(LS_ERR_IO,                -2, "i/o error")                                       \
    X(LS_ERR_FORMAT,            -3, "malformed model file")                            \
    X(LS_ERR_CONFIG,            -4, "invalid model configuration")                     \
    X(LS_ERR_UNSUPPORTED,       -5, "unsupported")                                     \
    X(LS_ERR_BAD_REQUEST,       -6, "bad request")                                     \
    X(LS_ERR_INVALID_INPUT,     -7, "invalid input")                                   \
    X(LS_ERR_TOO_LARGE,         -8, "input too large")                                 \
    X(LS_ERR_DEVICE,            -9, "device error")                                    \
    X(LS_ERR_INTERNAL,         -10, "internal error")                                \
    X(LS_ERR_NOT_FOUND,        -11, "not found")                                     \
    X(LS_ERR_NO_HEAD,          -12, "the model lacks the head this needs")
// clang-format on

typedef enum {
#define LS__ENUM(name, val, text) name = val,
    LS_STATUS_LIST(LS__ENUM)
#undef LS__ENUM
} ls_status;

const char *ls_strerror(ls_status st);
const char *ls_status_name(ls_status st);

/* Formats an error message into buf (may be NULL) and returns st, so that callers can
 * write `return ls_fail(err, errlen, LS_ERR_FORMAT, "%s: ...", path);`. */
ls_status ls_fail(char *buf, size_t len, ls_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
