/* Reading the small files of a model directory (config.json, tokenizer.json, an index,
 * the sentence-transformers files) and of the configuration (an API key file). */
#ifndef LS_FILE_H
#define LS_FILE_H

#include <stddef.h>

#include "status.h"

/* Reads the whole file at path, of at most `limit` bytes, into *buf (malloc'd, with a NUL
 * after the last byte, so text parsers may treat it as a string); *len gets its size.
 * LS_ERR_IO when it cannot be opened or read, LS_ERR_FORMAT when it is over the limit,
 * LS_ERR_NOMEM; err names the file. */
ls_status ls_read_file(const char *path, size_t limit, char **buf, size_t *len, char *err,
                       size_t errlen);

#endif
