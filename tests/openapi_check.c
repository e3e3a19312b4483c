/* See openapi_check.h. */
#include "openapi_check.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <regex.h>

#include <yaml.h>

/* ---- YAML -> cJSON --------------------------------------------------------------------- */

/* A plain scalar as YAML 1.2's core schema reads it: null, bool, number, else a string. */
static cJSON *plain_scalar(const char *s)
{
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return cJSON_CreateNull();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return cJSON_CreateTrue();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return cJSON_CreateFalse();
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (*p == '.') p++;
    if (isdigit((unsigned char)*p)) {
        char *end;
        double v = strtod(s, &end);
        if (*end == 0 && isfinite(v)) return cJSON_CreateNumber(v);
    }
    return cJSON_CreateString(s);
}

static cJSON *yaml_node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 200) return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)n->data.scalar.value;
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(s)
                                                               : cJSON_CreateString(s);
    }
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            cJSON *v = yaml_node_json(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (!v) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
             pr++) {
            yaml_node_t *k = yaml_document_get_node(doc, pr->key);
            cJSON *v = yaml_node_json(doc, yaml_document_get_node(doc, pr->value), depth + 1);
            if (!k || k->type != YAML_SCALAR_NODE || !v) {
                cJSON_Delete(v);
                cJSON_Delete(o);
                return NULL;
            }
            /* keys stay strings ('200' and 200 alike); a repeated key: the last wins */
            const char *key = (const char *)k->data.scalar.value;
            if (cJSON_GetObjectItemCaseSensitive(o, key))
                cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
            else
                cJSON_AddItemToObject(o, key, v);
        }
        return o;
    }
    default:
        return NULL;
    }
}

cJSON *oa_load_yaml(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    cJSON *out = NULL;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        snprintf(err, errlen, "yaml_parser_initialize failed");
        return NULL;
    }
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
                 p.problem_mark.column + 1, p.problem ? p.problem : "YAML error");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        out = root ? yaml_node_json(&doc, root, 0) : NULL;
        if (!out) snprintf(err, errlen, "%s: empty document or unsupported node", path);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return out;
}

/* ---- JSON schema subset ------------------------------------------------------------------- */

typedef struct {
    const cJSON *spec;
    char ptr[512]; /* JSON pointer of the instance being checked */
    char *err;
    size_t errlen;
} vctx;

static int fail(vctx *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", c->ptr[0] ? c->ptr : "(root)", msg);
    return OA_MISMATCH;
}

/* "#/a/b~1c" within spec, or NULL. */
static const cJSON *resolve_pointer(const cJSON *spec, const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0) return NULL;
    const cJSON *n = spec;
    const char *p = ref + 2;
    while (n && *p) {
        char tok[256];
        size_t k = 0;
        for (; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '~' && (p[1] == '0' || p[1] == '1')) ch = *++p == '0' ? '~' : '/';
            if (k + 1 < sizeof tok) tok[k++] = ch;
        }
        tok[k] = 0;
        if (*p == '/') p++;
        n = cJSON_IsArray(n) ? cJSON_GetArrayItem(n, atoi(tok))
                             : cJSON_GetObjectItemCaseSensitive(n, tok);
    }
    return n;
}

/* Follows $ref chains (at most 32). */
static const cJSON *deref(const cJSON *spec, const cJSON *s)
{
    for (int i = 0; i < 32 && cJSON_IsObject(s); i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "$ref");
        if (!cJSON_IsString(r)) return s;
        s = resolve_pointer(spec, r->valuestring);
    }
    return s;
}

static const char *kind(const cJSON *v)
{
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "invalid";
}

static int is_integer(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

static int type_is(const char *t, const cJSON *v)
{
    if (!strcmp(t, "integer")) return is_integer(v);
    return !strcmp(t, kind(v));
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int validate(vctx *c, const cJSON *schema, const cJSON *v, int depth);

/* Validates v at ptr/<seg>; ptr is restored after. */
static int validate_child(vctx *c, const cJSON *schema, const cJSON *v, const char *seg, int depth)
{
    size_t n = strlen(c->ptr);
    size_t k = n;
    if (k + 1 < sizeof c->ptr) c->ptr[k++] = '/';
    for (const char *s = seg; *s && k + 2 < sizeof c->ptr; s++) {
        if (*s == '~' || *s == '/') {
            c->ptr[k++] = '~';
            c->ptr[k++] = *s == '~' ? '0' : '1';
        } else {
            c->ptr[k++] = *s;
        }
    }
    c->ptr[k] = 0;
    int rc = validate(c, schema, v, depth + 1);
    c->ptr[n] = 0;
    return rc;
}

/* oneOf / anyOf: at least one alternative matches. */
static int validate_alternatives(vctx *c, const char *kw, const cJSON *alts, const cJSON *v,
                                 int depth)
{
    char first[512] = "";
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, alts)
    {
        char e[512] = "";
        vctx sub = *c;
        sub.err = e;
        sub.errlen = sizeof e;
        if (validate(&sub, a, v, depth + 1) == OA_OK) return OA_OK;
        if (i++ == 0) snprintf(first, sizeof first, "%s", e);
    }
    return fail(c, "matches none of the %d %s alternatives (the first: %s)", i, kw, first);
}

static int validate(vctx *c, const cJSON *schema, const cJSON *v, int depth)
{
    if (depth > 64) return fail(c, "schema nesting too deep");
    const cJSON *s = deref(c->spec, schema);
    if (!s) return fail(c, "unresolvable $ref in the spec");
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s) ? OA_OK : fail(c, "no value allowed here");
    if (!cJSON_IsObject(s)) return fail(c, "the spec's schema here is not an object");

    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(s, "nullable");
    if (cJSON_IsNull(v) && cJSON_IsTrue(nullable)) return OA_OK;

    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (cJSON_IsString(type)) {
        if (!type_is(type->valuestring, v))
            return fail(c, "expected %s, got %s", type->valuestring, kind(v));
    } else if (cJSON_IsArray(type)) {
        int ok = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, type) ok |= cJSON_IsString(t) && type_is(t->valuestring, v);
        if (!ok) {
            char *want = cJSON_PrintUnformatted(type);
            int rc = fail(c, "expected one of %s, got %s", want ? want : "?", kind(v));
            free(want);
            return rc;
        }
    }

    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (cJSON_IsArray(en)) {
        int ok = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, en) ok |= cJSON_Compare(e, v, 1);
        if (!ok) {
            char *got = cJSON_PrintUnformatted(v);
            int rc = fail(c, "%s is not in the enum", got ? got : "?");
            free(got);
            return rc;
        }
    }

    const cJSON *all = cJSON_GetObjectItemCaseSensitive(s, "allOf");
    if (cJSON_IsArray(all)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, all)
        {
            int rc = validate(c, a, v, depth + 1);
            if (rc) return rc;
        }
    }
    static const char *const alts[] = {"oneOf", "anyOf"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(s, alts[i]);
        if (cJSON_IsArray(a)) {
            int rc = validate_alternatives(c, alts[i], a, v, depth);
            if (rc) return rc;
        }
    }

    if (cJSON_IsNumber(v)) {
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minimum");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maximum");
        if (cJSON_IsNumber(mn) && v->valuedouble < mn->valuedouble)
            return fail(c, "%g is below the minimum %g", v->valuedouble, mn->valuedouble);
        if (cJSON_IsNumber(mx) && v->valuedouble > mx->valuedouble)
            return fail(c, "%g is above the maximum %g", v->valuedouble, mx->valuedouble);
    }
    if (cJSON_IsString(v)) {
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minLength");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
        double n = (double)utf8_len(v->valuestring);
        if (cJSON_IsNumber(mn) && n < mn->valuedouble)
            return fail(c, "string shorter than minLength %g", mn->valuedouble);
        if (cJSON_IsNumber(mx) && n > mx->valuedouble)
            return fail(c, "string longer than maxLength %g", mx->valuedouble);
    }
    if (cJSON_IsArray(v)) {
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minItems");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxItems");
        double n = cJSON_GetArraySize(v);
        if (cJSON_IsNumber(mn) && n < mn->valuedouble)
            return fail(c, "%g items, fewer than minItems %g", n, mn->valuedouble);
        if (cJSON_IsNumber(mx) && n > mx->valuedouble)
            return fail(c, "%g items, more than maxItems %g", n, mx->valuedouble);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
        if (items) {
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, v)
            {
                char seg[24];
                snprintf(seg, sizeof seg, "%d", i++);
                int rc = validate_child(c, items, e, seg, depth);
                if (rc) return rc;
            }
        }
    }
    if (cJSON_IsObject(v)) {
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
        const cJSON *r;
        cJSON_ArrayForEach(
            r, req) if (cJSON_IsString(r) &&
                        !cJSON_GetObjectItemCaseSensitive(
                            v, r->valuestring)) return fail(c, "required member \"%s\" is missing",
                                                            r->valuestring);
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        const cJSON *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
        const cJSON *m;
        cJSON_ArrayForEach(m, v)
        {
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, m->string);
            int rc = OA_OK;
            if (ps)
                rc = validate_child(c, ps, m, m->string, depth);
            else if (cJSON_IsFalse(addl))
                return fail(c, "member \"%s\" is not allowed", m->string);
            else if (cJSON_IsObject(addl))
                rc = validate_child(c, addl, m, m->string, depth);
            if (rc) return rc;
        }
    }
    return OA_OK;
}

int oa_validate_json(const cJSON *spec, const cJSON *schema, const cJSON *instance, char *err,
                     size_t errlen)
{
    vctx c = {.spec = spec, .err = err, .errlen = errlen};
    if (errlen) err[0] = 0;
    return validate(&c, schema, instance, 0);
}

/* ---- routes ---------------------------------------------------------------------------------- */

const char *oa_match_path(const cJSON *spec, const char *path)
{
    size_t plen = strcspn(path, "?#");
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(spec, "paths");
    const char *best = NULL;
    int best_params = 1 << 30;
    const cJSON *e;
    cJSON_ArrayForEach(e, paths)
    {
        const char *t = e->string, *p = path, *pend = path + plen;
        int params = 0, ok = 1;
        while (ok && *t && p < pend) {
            if (*t != '/' || *p != '/') {
                ok = 0;
                break;
            }
            t++, p++;
            size_t tl = strcspn(t, "/"), pl = 0;
            while (p + pl < pend && p[pl] != '/')
                pl++;
            if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}')
                ok = pl > 0, params++;
            else
                ok = tl == pl && strncmp(t, p, tl) == 0;
            t += tl, p += pl;
        }
        if (ok && !*t && p == pend && params < best_params) best = e->string, best_params = params;
    }
    return best;
}

int oa_validate(const cJSON *spec, const char *method, const char *path_template, int status,
                const char *body, char *err, size_t errlen)
{
    if (errlen) err[0] = 0;
    char m[16];
    size_t i = 0;
    for (; method[i] && i + 1 < sizeof m; i++)
        m[i] = (char)tolower((unsigned char)method[i]);
    m[i] = 0;
    /* a path item may be a $ref to another (the versioned v2 routes) */
    const cJSON *item =
        deref(spec, cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(spec, "paths"), path_template));
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(item, m);
    if (!op && status == 405) {
        /* a method the path lacks: its 405 is written under the methods it has */
        const cJSON *o;
        cJSON_ArrayForEach(o, item) if (cJSON_GetObjectItemCaseSensitive(
                                            cJSON_GetObjectItemCaseSensitive(o, "responses"),
                                            "405")) op = o;
    }
    if (!op) {
        snprintf(err, errlen, "%s %s is not in the spec", method, path_template);
        return OA_UNDOCUMENTED;
    }
    const cJSON *responses = cJSON_GetObjectItemCaseSensitive(op, "responses");
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(responses, st);
    if (!resp) resp = cJSON_GetObjectItemCaseSensitive(responses, "default");
    resp = deref(spec, resp);
    if (!resp) {
        snprintf(err, errlen, "%s %s documents no %d response", method, path_template, status);
        return OA_UNDOCUMENTED;
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "content"),
                                         "application/json"),
        "schema");
    if (!schema) {
        snprintf(err, errlen, "%s %s %d documents no application/json schema", method,
                 path_template, status);
        return OA_UNDOCUMENTED;
    }
    cJSON *v = cJSON_Parse(body ? body : "");
    if (!v) {
        snprintf(err, errlen, "(root): the body is not JSON: %.80s", body ? body : "");
        return OA_MISMATCH;
    }
    int rc = oa_validate_json(spec, schema, v, err, errlen);
    cJSON_Delete(v);
    return rc;
}

/* paths[path_template][method].responses[status], $refs followed; NULL when absent. */
static const cJSON *oa__response(const cJSON *spec, const char *method, const char *path_template,
                                 int status)
{
    char m[16];
    size_t i = 0;
    for (; method[i] && i + 1 < sizeof m; i++)
        m[i] = (char)tolower((unsigned char)method[i]);
    m[i] = 0;
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const cJSON *item =
        deref(spec, cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(spec, "paths"), path_template));
    return deref(spec, cJSON_GetObjectItemCaseSensitive(
                           cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(item, m), "responses"),
                           st));
}

int oa_documents(const cJSON *spec, const char *method, const char *path_template, int status,
                 const char *content_type)
{
    const cJSON *resp = oa__response(spec, method, path_template, status);
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "content"),
                                            content_type) != NULL;
}

int oa_validate_header(const cJSON *spec, const char *method, const char *path_template, int status,
                       const char *name, const char *value, char *err, size_t errlen)
{
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(
        oa__response(spec, method, path_template, status), "headers");
    const cJSON *h = NULL, *e;
    cJSON_ArrayForEach(e, headers)
    {
        if (e->string && strcasecmp(e->string, name) == 0) h = deref(spec, e);
    }
    if (!h) return OA_UNDOCUMENTED;
    if (!value) {
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(h, "required");
        if (!cJSON_IsTrue(req)) return OA_OK;
        snprintf(err, errlen, "header %s is required and absent", name);
        return OA_MISMATCH;
    }
    const cJSON *schema = deref(spec, cJSON_GetObjectItemCaseSensitive(h, "schema"));
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "integer") == 0) {
        char *end;
        strtoll(value, &end, 10);
        if (!*value || *end) {
            snprintf(err, errlen, "header %s: '%s' is not an integer", name, value);
            return OA_MISMATCH;
        }
    }
    if (cJSON_IsString(pattern)) {
        regex_t re;
        if (regcomp(&re, pattern->valuestring, REG_EXTENDED | REG_NOSUB)) {
            snprintf(err, errlen, "header %s: pattern '%s' does not compile", name,
                     pattern->valuestring);
            return OA_MISMATCH;
        }
        const int miss = regexec(&re, value, 0, NULL, 0);
        regfree(&re);
        if (miss) {
            snprintf(err, errlen, "header %s: '%s' does not match '%s'", name, value,
                     pattern->valuestring);
            return OA_MISMATCH;
        }
    }
    return OA_OK;
}

int oa_check_headers(const cJSON *spec, const char *method, const char *path_template, int status,
                     oa_header_fn get, const void *ctx, char *err, size_t errlen)
{
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(
        oa__response(spec, method, path_template, status), "headers");
    const cJSON *e;
    cJSON_ArrayForEach(e, headers)
    {
        if (!e->string) continue;
        char value[512];
        const char *v = get(ctx, e->string, value, sizeof value);
        if (oa_validate_header(spec, method, path_template, status, e->string, v, err, errlen) ==
            OA_MISMATCH)
            return OA_MISMATCH;
    }
    return OA_OK;
}
