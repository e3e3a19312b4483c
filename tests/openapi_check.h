/* A small OpenAPI 3.0 response checker for the integration tests: proto/openapi.yaml is
 * loaded with libyaml into a cJSON tree and a response body is validated against the JSON
 * schema its route documents (the JSON-Schema subset the spec uses: type and nullable,
 * properties, required, items, additionalProperties, enum, oneOf/anyOf (at least one
 * matches), allOf, minItems/maxItems, minLength/maxLength, minimum/maximum, $ref). */
#ifndef LONGSERVE_TESTS_OPENAPI_CHECK_H
#define LONGSERVE_TESTS_OPENAPI_CHECK_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* oa_validate's results. */
enum {
    OA_OK = 0,          /* the body matches the documented schema */
    OA_MISMATCH = 1,    /* it does not (or is not JSON); err says where */
    OA_UNDOCUMENTED = 2 /* the spec documents no JSON body for this route/method/status */
};

/* Loads a YAML file into a cJSON tree (mapping -> object, sequence -> array; plain scalars
 * that read as numbers, true/false or null become those; quoted scalars stay strings).
 * NULL with a message in err on failure. Free with cJSON_Delete. */
cJSON *oa_load_yaml(const char *path, char *err, size_t errlen);

/* Validates body against paths[path_template][method].responses[status] (or "default"),
 * content."application/json".schema. Returns OA_OK, OA_MISMATCH or OA_UNDOCUMENTED, with a
 * JSON-pointer path and the reason in err (e.g. "/data/0/embedding/3: expected number"). */
int oa_validate(const cJSON *spec, const char *method, const char *path_template, int status,
                const char *body, char *err, size_t errlen);

/* 1 if paths[path_template][method].responses[status].content lists content_type (path
 * items and responses may be $refs). */
int oa_documents(const cJSON *spec, const char *method, const char *path_template, int status,
                 const char *content_type);

/* Validates one response header's value (NULL: absent) against the header object that
 * paths[path_template][method].responses[status].headers documents for it (name matched
 * case-insensitively): an absent one only fails when documented `required: true`; a value
 * must match its schema's `type: integer` and `pattern` (POSIX extended). OA_UNDOCUMENTED
 * when the response documents no such header. */
int oa_validate_header(const cJSON *spec, const char *method, const char *path_template, int status,
                       const char *name, const char *value, char *err, size_t errlen);
/* A response's header `name` into out (n bytes), or NULL when it has none. */
typedef const char *(*oa_header_fn)(const void *ctx, const char *name, char *out, size_t n);
/* Every header the response documents, checked as oa_validate_header with the values
 * get(ctx, name) gives; OA_OK or OA_MISMATCH. */
int oa_check_headers(const cJSON *spec, const char *method, const char *path_template, int status,
                     oa_header_fn get, const void *ctx, char *err, size_t errlen);

/* Validates an already parsed instance against a schema of spec (for tests of the checker). */
int oa_validate_json(const cJSON *spec, const cJSON *schema, const cJSON *instance, char *err,
                     size_t errlen);

/* The key of spec.paths that a concrete request path (query string ignored) falls under,
 * literal segments preferred over {parameters}; NULL when none. */
const char *oa_match_path(const cJSON *spec, const char *path);

#endif
