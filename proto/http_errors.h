/* HTTP error responses: the one place a failure becomes an HTTP status and a body in the
 * shape of the protocol family the route follows.
 *
 * ls_status covers what the engine and the codecs can fail with; the HTTP edge adds
 * conditions that only exist there (unknown route, wrong method, queue full, draining,
 * deadline, bad API key). Both meet in herr_kind, and herr_encode is the only function
 * that turns one into a status code and a body. */
#ifndef PR_HTTP_ERRORS_H
#define PR_HTTP_ERRORS_H

#include <stddef.h>

#include "../common/status.h"

/* The JSON error envelope each protocol family expects. */
typedef enum {
    HERR_FAM_KSERVE, /* {"error": msg} (Open Inference Protocol) */
    HERR_FAM_TEI,    /* {"error": msg, "error_type": type} (text-embeddings-inference) */
    HERR_FAM_OPENAI, /* {"error": {"message", "type", "code"}} */
} herr_family;

// clang-format off
/*       name               http  TEI error_type   OpenAI type                  OpenAI code */
#define HERR_LIST(X)                                                                        \
    X(HERR_BAD_REQUEST,      400, "validation",    "invalid_request_error",     "invalid_request")  \
    X(HERR_UNAUTHORIZED,     401, "unauthorized",  "authentication_error",      "invalid_api_key")  \
    X(HERR_NOT_FOUND,        404, "not_found",     "invalid_request_error",     "not_found")        \
    X(HERR_MODEL_NOT_FOUND,  404, "not_found",     "invalid_request_error",     "model_not_found")  \
    X(HERR_METHOD,           405, "validation",    "invalid_request_error",     "method_not_allowed") \
    X(HERR_TOO_LARGE,        413, "payload_limit", "invalid_request_error",     "payload_too_large") \
    X(HERR_URI_TOO_LONG,     414, "validation",    "invalid_request_error",     "uri_too_long")     \
    X(HERR_INVALID,          422, "validation",    "invalid_request_error",     "invalid_input")    \
    X(HERR_BACKEND,          424, "backend",       "invalid_request_error",     "model_type")       \
    X(HERR_OVERLOADED,       429, "overloaded",    "rate_limit_error",          "server_is_overloaded") \
    X(HERR_HEADERS_TOO_LARGE, 431, "validation",   "invalid_request_error",     "headers_too_large") \
    X(HERR_INTERNAL,         500, "backend",       "server_error",              "internal_error")   \
    X(HERR_UNAVAILABLE,      503, "unhealthy",     "service_unavailable_error", "service_unavailable") \
    X(HERR_TIMEOUT,          504, "timeout",       "timeout_error",             "deadline_exceeded") \
    X(HERR_HTTP_VERSION,     505, "validation",    "invalid_request_error",     "http_version_not_supported")
// clang-format on

typedef enum {
#define HERR__ENUM(name, http, tei, oat, oac) name,
    HERR_LIST(HERR__ENUM)
#undef HERR__ENUM
        HERR_COUNT
} herr_kind;

/* The edge's kind for an engine/codec status: the one place a status gets an HTTP code.
 * A model a body names that is not served (LS_ERR_NOT_FOUND) is 404 model_not_found in
 * OpenAI's family, as its clients expect, and 422 in the others (DESIGN §4). */
/* A model without the head a route needs where TEI answers 424 (/embed_sparse on a model
 * without SPLADE pooling: LS_ERR_NO_HEAD) is 424 "backend". */
herr_kind herr_from_status(ls_status st);
herr_kind herr_from_status_in(ls_status st, herr_family fam);
int herr_http(herr_kind k);
/* Short snake_case reason, for metrics labels and logs ("overloaded", "not_found", ...). */
const char *herr_reason(herr_kind k);

/* The error body for family fam: malloc'd, NUL-terminated JSON, *http set to the status
 * code. NULL only when out of memory (the caller then sends a bodiless 500). */
char *herr_encode(herr_family fam, herr_kind k, const char *msg, int *http, size_t *len);

#endif
