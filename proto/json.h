/* Internal to proto/: one JSON entry point for every decoder. */
#ifndef PR_JSON_H
#define PR_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses exactly one JSON value from text[0..len): anything but JSON whitespace after
 * the value makes it invalid (cJSON alone would accept trailing junk). NULL on error. */
cJSON *pr_json_parse(const char *text, size_t len);

#endif
