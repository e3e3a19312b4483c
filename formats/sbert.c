/* sentence-transformers modules.json, Pooling config and config_sentence_transformers.json
 * (prompts) decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sbert.h"

const char *sb_pooling_name(sb_pooling p)
{
    switch (p) {
    case SB_POOL_CLS:
        return "cls";
    case SB_POOL_MEAN:
        return "mean";
    case SB_POOL_MAX:
        return "max";
    case SB_POOL_MEAN_SQRT_LEN:
        return "mean_sqrt_len";
    }
    return "?";
}

ls_status sb_modules_parse(const char *json, size_t len, const char *file, char *pooling_dir,
                           size_t dirlen, int *normalize, char *err, size_t errlen)
{
    pooling_dir[0] = 0;
    *normalize = 0;
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not valid JSON", file);
    ls_status st = LS_OK;
    if (!cJSON_IsArray(root)) {
        st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: expected an array of modules", file);
        goto done;
    }
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, root)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(m, "path");
        if (!cJSON_IsString(type) || (path && !cJSON_IsString(path))) {
            st = ls_fail(err, errlen, LS_ERR_CONFIG,
                         "%s: module %d needs a string \"type\" (and \"path\")", file, i);
            goto done;
        }
        const char *t = type->valuestring, *dot = strrchr(t, '.');
        const char *cls = dot ? dot + 1 : t;
        if (strcmp(cls, "Pooling") == 0) {
            const char *p = path ? path->valuestring : "";
            if (strstr(p, "..") || p[0] == '/' || strlen(p) >= dirlen) {
                st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: module %d has path '%.64s'", file, i,
                             p);
                goto done;
            }
            snprintf(pooling_dir, dirlen, "%s", p);
        } else if (strcmp(cls, "Normalize") == 0) {
            *normalize = 1;
        } else if (strcmp(cls, "Transformer") != 0) {
            st = ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                         "%s: module %d (%.64s) is not supported (Transformer, Pooling and "
                         "Normalize are)",
                         file, i, t);
            goto done;
        }
        i++;
    }
done:
    cJSON_Delete(root);
    return st;
}

ls_status sb_pooling_parse(const char *json, size_t len, const char *file, sb_pooling *out,
                           char *err, size_t errlen)
{
    static const struct {
        const char *key;
        sb_pooling mode;
    } modes[] = {
        {"pooling_mode_cls_token", SB_POOL_CLS},
        {"pooling_mode_mean_tokens", SB_POOL_MEAN},
        {"pooling_mode_max_tokens", SB_POOL_MAX},
        {"pooling_mode_mean_sqrt_len_tokens", SB_POOL_MEAN_SQRT_LEN},
    };
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not valid JSON", file);
    ls_status st = LS_OK;
    int n = 0;
    if (!cJSON_IsObject(root)) {
        st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: expected an object", file);
        goto done;
    }
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(root, "pooling_mode");
    if (cJSON_IsString(pm)) { /* newer files name the mode */
        static const char *const names[] = {"cls", "mean", "max", "mean_sqrt_len_tokens"};
        for (int k = 0; k < 4; k++)
            if (strcmp(pm->valuestring, names[k]) == 0) {
                *out = (sb_pooling)k;
                n = 1;
            }
    }
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, modes[k].key);
        if (v && !cJSON_IsBool(v)) {
            st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: %s must be true or false", file,
                         modes[k].key);
            goto done;
        }
        if (cJSON_IsTrue(v) && !(cJSON_IsString(pm) && n == 1 && *out == modes[k].mode)) {
            *out = modes[k].mode;
            n++;
        }
    }
    if (n == 0)
        st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: no pooling_mode_* is true", file);
    else if (n > 1)
        st = ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                     "%s: several pooling modes (concatenated) are not supported", file);
done:
    cJSON_Delete(root);
    return st;
}

ls_status sb_pooling_include_prompt(const char *json, size_t len, const char *file, int *include,
                                    char *err, size_t errlen)
{
    *include = 1;
    cJSON *root = fmt_json_parse(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: expected a JSON object", file);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "include_prompt");
    ls_status st = LS_OK;
    if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v))
        st = ls_fail(err, errlen, LS_ERR_CONFIG, "%s: include_prompt must be true or false", file);
    else if (cJSON_IsFalse(v))
        *include = 0;
    cJSON_Delete(root);
    return st;
}

void sb_prompts_free(sb_prompts *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->texts[i]);
    }
    free(p->names);
    free(p->texts);
    memset(p, 0, sizeof *p);
    p->default_index = -1;
}

static ls_status sb__prompts(const cJSON *root, const char *file, sb_prompts *out, char *err,
                             size_t errlen)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    if (ps && !cJSON_IsNull(ps) && !cJSON_IsObject(ps))
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: \"prompts\" must be an object", file);
    const int n = cJSON_IsObject(ps) ? cJSON_GetArraySize(ps) : 0;
    if (n > 0 && (!(out->names = calloc((size_t)n, sizeof *out->names)) ||
                  !(out->texts = calloc((size_t)n, sizeof *out->texts))))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    const cJSON *p, *list = n > 0 ? ps : NULL;
    cJSON_ArrayForEach(p, list)
    {
        if (!cJSON_IsString(p) || !p->string)
            return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: prompt %d is not a string", file,
                           out->n);
        for (int k = 0; k < out->n; k++)
            if (strcmp(out->names[k], p->string) == 0)
                return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: prompt '%.64s' is given twice",
                               file, p->string);
        if (!(out->names[out->n] = strdup(p->string)) ||
            !(out->texts[out->n] = strdup(p->valuestring))) {
            free(out->names[out->n]);
            return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        }
        out->n++;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "default_prompt_name");
    if (!d || cJSON_IsNull(d)) return LS_OK;
    if (!cJSON_IsString(d))
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: default_prompt_name must be a string",
                       file);
    for (int k = 0; k < out->n; k++)
        if (strcmp(out->names[k], d->valuestring) == 0) out->default_index = k;
    if (out->default_index < 0)
        return ls_fail(err, errlen, LS_ERR_CONFIG,
                       "%s: default_prompt_name '%.64s' is not one of the %d prompts", file,
                       d->valuestring, out->n);
    return LS_OK;
}

ls_status sb_prompts_parse(const char *json, size_t len, const char *file, sb_prompts *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->default_index = -1;
    cJSON *root = fmt_json_parse(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: expected a JSON object", file);
    }
    ls_status st = sb__prompts(root, file, out, err, errlen);
    cJSON_Delete(root);
    if (st) sb_prompts_free(out);
    return st;
}
