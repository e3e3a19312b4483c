/* sentence-transformers model files: modules.json (the module pipeline: Transformer,
 * Pooling, Normalize) and the Pooling module's config.json, decoded into plain values.
 * Only decoding here; the server reads the files and pools. */
#ifndef PR_SBERT_H
#define PR_SBERT_H

#include <stddef.h>

#include "../common/status.h"

typedef enum { SB_POOL_CLS, SB_POOL_MEAN, SB_POOL_MAX, SB_POOL_MEAN_SQRT_LEN } sb_pooling;

const char *sb_pooling_name(sb_pooling p);

/* modules.json: *pooling_dir gets the Pooling module's path ("" when there is none),
 * *normalize 1 when a Normalize module follows. `file` names the file in errors. */
ls_status sb_modules_parse(const char *json, size_t len, const char *file, char *pooling_dir,
                           size_t dirlen, int *normalize, char *err, size_t errlen);
/* 1_Pooling/config.json: exactly one pooling_mode_* set (several would be concatenated,
 * which is not supported: LS_ERR_UNSUPPORTED). */
ls_status sb_pooling_parse(const char *json, size_t len, const char *file, sb_pooling *out,
                           char *err, size_t errlen);

#endif
