/* The one JSON entry point of every decoder: the model-directory readers here and the
 * HTTP body codecs in proto/. */
#ifndef FMT_JSON_H
#define FMT_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses exactly one JSON value from text[0..len): anything but JSON whitespace after
 * the value makes it invalid (cJSON alone would accept trailing junk). NULL on error. */
cJSON *fmt_json_parse(const char *text, size_t len);

/* For JSON whose strings become C strings (request bodies): text must be JSON that
 * fmt_json_parse accepted. Finds the first string holding \u0000 (cJSON would end the
 * string there and silently cut the text) or a raw control byte (JSON forbids them, cJSON
 * lets them through). Returns 0 when there is none; otherwise 1, with why naming the field
 * ("`inputs[1]`: NUL (\u0000) in a string is not accepted"). The model-directory readers do
 * not call it: a vocabulary may hold "\u0000" as a token. */
int fmt_json_check_strings(const char *text, size_t len, char *why, size_t whylen);

#endif
