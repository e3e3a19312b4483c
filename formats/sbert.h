/* sentence-transformers model files: modules.json (the module pipeline: Transformer,
 * Pooling, Normalize), the Pooling module's config.json and config_sentence_transformers.json
 * (prompts), decoded into plain values.
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

/* The Pooling config's "include_prompt" (absent: 1, sentence-transformers' default): 0 when
 * the prompt's tokens are left out of the pooled tokens. */
ls_status sb_pooling_include_prompt(const char *json, size_t len, const char *file, int *include,
                                    char *err, size_t errlen);

/* config_sentence_transformers.json's "prompts" ({name: text}, absent or null: none) and
 * "default_prompt_name" (absent or null: none; otherwise one of the prompts, as
 * sentence-transformers requires). Names are unique (a JSON object's last duplicate wins in
 * sentence-transformers: here a duplicate is refused). */
typedef struct {
    char **names, **texts; /* [n], owned, NUL-terminated */
    int n;
    int default_index; /* -1: no default prompt */
} sb_prompts;

ls_status sb_prompts_parse(const char *json, size_t len, const char *file, sb_prompts *out,
                           char *err, size_t errlen);
void sb_prompts_free(sb_prompts *p); /* NULL or zeroed: no-op */

#endif
