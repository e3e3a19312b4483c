/* HTTP error kinds and their bodies, generated from HERR_LIST: one table says which
 * status code, TEI error_type and OpenAI type/code each failure gets. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http_errors.h"

static const struct {
    int http;
    const char *tei, *oai_type, *oai_code, *reason;
} herr__tab[HERR_COUNT] = {
#define HERR__ROW(name, http, tei, oat, oac) [name] = {http, tei, oat, oac, oac},
    HERR_LIST(HERR__ROW)
#undef HERR__ROW
};

herr_kind herr_from_status_in(ls_status st, herr_family fam)
{
    if (st == LS_ERR_NOT_FOUND && fam == HERR_FAM_OPENAI) return HERR_MODEL_NOT_FOUND;
    return herr_from_status(st);
}

herr_kind herr_from_status(ls_status st)
{
    switch (st) {
    case LS_ERR_BAD_REQUEST:
        return HERR_BAD_REQUEST;
    case LS_ERR_TOO_LARGE:
        return HERR_TOO_LARGE;
    case LS_ERR_INVALID_INPUT:
    case LS_ERR_UNSUPPORTED:
    case LS_ERR_NOT_FOUND:
        return HERR_INVALID;
    case LS_ERR_NO_HEAD:
        return HERR_BACKEND;
    default: /* the server's own failures: memory, files, device, bugs */
        return HERR_INTERNAL;
    }
}

int herr_http(herr_kind k)
{
    return (unsigned)k < HERR_COUNT ? herr__tab[k].http : 500;
}

const char *herr_reason(herr_kind k)
{
    return (unsigned)k < HERR_COUNT ? herr__tab[k].reason : "internal_error";
}

char *herr_encode(herr_family fam, herr_kind k, const char *msg, int *http, size_t *len)
{
    if ((unsigned)k >= HERR_COUNT) k = HERR_INTERNAL;
    *http = herr__tab[k].http;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok;
    if (fam == HERR_FAM_OPENAI) {
        cJSON *e = cJSON_AddObjectToObject(root, "error");
        ok = e && cJSON_AddStringToObject(e, "message", msg) &&
             cJSON_AddStringToObject(e, "type", herr__tab[k].oai_type) &&
             cJSON_AddStringToObject(e, "code", herr__tab[k].oai_code);
    } else {
        ok = cJSON_AddStringToObject(root, "error", msg) != NULL;
        if (ok && fam == HERR_FAM_TEI)
            ok = cJSON_AddStringToObject(root, "error_type", herr__tab[k].tei) != NULL;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (s && len) *len = strlen(s);
    return s;
}
