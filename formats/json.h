/* The one JSON entry point of every decoder: the model-directory readers here and the
 * HTTP body codecs in proto/. */
#ifndef FMT_JSON_H
#define FMT_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses exactly one JSON value from text[0..len): anything but JSON whitespace after
 * the value makes it invalid (cJSON alone would accept trailing junk). NULL on error. */
cJSON *fmt_json_parse(const char *text, size_t len);

#endif
