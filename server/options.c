/* The option table made into flags, environment variables, usage text and /info. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/file.h"
#include "options.h"

typedef struct {
    const char *flag;
    opt_type type;
    long long lo, hi;
    const char *def;
    int flags;
    const char *help;
    size_t off;
} opt__row;

static const opt__row opt__tab[] = {
#define OPT__ROW(flag, f, type, lo, hi, def, flags, help)                                          \
    {flag, type, lo, hi, def, flags, help, offsetof(opt_options, f)},
    OPT_LIST(OPT__ROW)
#undef OPT__ROW
};
enum { OPT__N = sizeof opt__tab / sizeof opt__tab[0] };

static char *opt__keep(opt_options *o, const char *s, size_t n)
{
    if (o->nstrings >= (int)(sizeof o->strings / sizeof o->strings[0])) return NULL;
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    return o->strings[o->nstrings++] = c;
}

static int opt__model(opt_options *o, const char *v, char *err, size_t errlen)
{
    if (o->nmodels >= OPT_MAX_MODELS) {
        snprintf(err, errlen, "--model-id: at most %d models", OPT_MAX_MODELS);
        return -1;
    }
    opt_model *m = &o->model_id[o->nmodels];
    const char *eq = strchr(v, '=');
    const char *path = eq ? eq + 1 : v;
    size_t plen = strlen(path);
    while (plen > 1 && path[plen - 1] == '/')
        plen--;
    if (plen == 0 || plen >= sizeof m->path) {
        snprintf(err, errlen, "--model-id '%s': the directory is empty or too long", v);
        return -1;
    }
    memcpy(m->path, path, plen);
    m->path[plen] = 0;
    const char *name = eq ? v : strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    size_t nlen = eq ? (size_t)(eq - v) : strlen(name);
    if (nlen == 0 || nlen >= sizeof m->name) {
        snprintf(err, errlen, "--model-id '%s': the name is empty or too long", v);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i])) {
            snprintf(err, errlen,
                     "--model-id '%s': a name may hold letters, digits, '-', '_' and '.'", v);
            return -1;
        }
    memcpy(m->name, name, nlen);
    m->name[nlen] = 0;
    for (int i = 0; i < o->nmodels; i++)
        if (strcmp(o->model_id[i].name, m->name) == 0) {
            snprintf(err, errlen, "--model-id: the name '%s' is given twice", m->name);
            return -1;
        }
    o->nmodels++;
    return 0;
}

/* --served-model-name: kept as given; opt__aliases resolves it once the models are known */
static int opt__alias(opt_options *o, const char *v, char *err, size_t errlen)
{
    if (o->naliases >= OPT_MAX_ALIASES) {
        snprintf(err, errlen, "--served-model-name: at most %d names", OPT_MAX_ALIASES);
        return -1;
    }
    if (!*v || strlen(v) >= sizeof o->alias_spec[0]) {
        snprintf(err, errlen, "--served-model-name '%s': empty or too long", v);
        return -1;
    }
    snprintf(o->alias_spec[o->naliases++], sizeof o->alias_spec[0], "%s", v);
    return 0;
}

/* ALIAS names model NAME (ALIAS=NAME) or the only model (ALIAS); an alias may not be the
 * name of a model or another alias. */
static int opt__aliases(opt_options *o, char *err, size_t errlen)
{
    for (int i = 0; i < o->naliases; i++) {
        const char *spec = o->alias_spec[i], *eq = strchr(spec, '=');
        opt_alias *a = &o->served_model_name[i];
        size_t n = eq ? (size_t)(eq - spec) : strlen(spec);
        if (n == 0 || n >= sizeof a->alias) {
            snprintf(err, errlen, "--served-model-name '%s': the name is empty or too long", spec);
            return -1;
        }
        memcpy(a->alias, spec, n);
        a->alias[n] = 0;
        a->model = -1;
        if (!eq && o->nmodels == 1) a->model = 0;
        for (int m = 0; eq && m < o->nmodels; m++)
            if (strcmp(o->model_id[m].name, eq + 1) == 0) a->model = m;
        if (a->model < 0) {
            snprintf(err, errlen,
                     eq ? "--served-model-name '%s': no --model-id is named '%s'"
                        : "--served-model-name '%s': several models are served; give ALIAS=NAME%s",
                     spec, eq ? eq + 1 : "");
            return -1;
        }
        for (int m = 0; m < o->nmodels; m++)
            if (strcmp(o->model_id[m].name, a->alias) == 0) {
                snprintf(err, errlen, "--served-model-name '%s': a model is already named so",
                         spec);
                return -1;
            }
        for (int k = 0; k < i; k++)
            if (strcmp(o->served_model_name[k].alias, a->alias) == 0) {
                snprintf(err, errlen, "--served-model-name: '%s' is given twice", a->alias);
                return -1;
            }
    }
    return 0;
}

static int opt__set(opt_options *o, const opt__row *r, const char *v, const char *src, char *err,
                    size_t errlen)
{
    void *field = (char *)o + r->off;
    switch (r->type) {
    case OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno || x < r->lo || x > r->hi) {
            snprintf(err, errlen, "%s: '%s' is not an integer in [%lld, %lld]", src, v, r->lo,
                     r->hi);
            return -1;
        }
        *(long long *)field = x;
        return 0;
    }
    case OPT_BOOL: {
        static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0",
                                                                                    "no", "off"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(v, yes[i]) == 0) return *(int *)field = 1, 0;
            if (strcasecmp(v, no[i]) == 0) return *(int *)field = 0, 0;
        }
        snprintf(err, errlen, "%s: '%s' is not true or false", src, v);
        return -1;
    }
    case OPT_STR: {
        char *c = opt__keep(o, v, strlen(v));
        if (!c) {
            snprintf(err, errlen, "%s: out of memory", src);
            return -1;
        }
        *(char **)field = c;
        return 0;
    }
    case OPT_MODEL:
        return opt__model(o, v, err, errlen);
    case OPT_ALIAS:
        return opt__alias(o, v, err, errlen);
    }
    return -1;
}

static void opt__env_name(const char *flag, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "LONGSERVE_");
    for (; *flag && k + 1 < n; flag++)
        buf[k++] = *flag == '-' ? '_' : (char)toupper(*flag);
    buf[k] = 0;
}

void opt_usage(FILE *f)
{
    fprintf(f, "usage: longserve --model-id [NAME=]DIR [options]\n"
               "Serves Longformer/BERT/RoBERTa/Reformer models over HTTP (KServe v2, TEI, OpenAI "
               "routes).\n"
               "Every option can also be set with the environment variable in brackets.\n\n");
    for (int i = 0; i < OPT__N; i++) {
        const opt__row *r = &opt__tab[i];
        char env[64];
        opt__env_name(r->flag, env, sizeof env);
        const char *meta = r->type == OPT_INT ? " N" : r->type == OPT_BOOL ? "[=BOOL]" : " VALUE";
        fprintf(f, "  --%s%s  [%s]\n      %s", r->flag, meta, env, r->help);
        if (r->def[0] && !(r->flags & OPT_SECRET)) fprintf(f, " (default %s)", r->def);
        fputc('\n', f);
    }
}

static int opt__read_key_file(opt_options *o, char *err, size_t errlen)
{
    FILE *f = fopen(o->api_key_file, "r");
    if (!f) {
        snprintf(err, errlen, "--api-key-file %s: %s", o->api_key_file, strerror(errno));
        return -1;
    }
    char line[4096];
    size_t n = fgets(line, sizeof line, f) ? strcspn(line, "\r\n") : 0;
    fclose(f);
    while (n && isspace((unsigned char)line[n - 1])) /* an editor's trailing blanks */
        n--;
    if (n == 0) {
        snprintf(err, errlen, "--api-key-file %s: the first line is empty", o->api_key_file);
        return -1;
    }
    if (!(o->api_key = opt__keep(o, line, n))) {
        snprintf(err, errlen, "--api-key-file: out of memory");
        return -1;
    }
    memset(line, 0, sizeof line);
    return 0;
}

/* One PEM file of a --tls-* flag, whole, into *out (owned by o). */
static int opt__read_pem(opt_options *o, const char *flag, const char *path, const char *what,
                         char **out, char *err, size_t errlen)
{
    char *text = NULL, msg[512];
    size_t len = 0;
    if (ls_read_file(path, 1 << 20, &text, &len, msg, sizeof msg)) {
        snprintf(err, errlen, "--%s %s", flag, msg);
        return -1;
    }
    int ok = len && memchr(text, 0, len) == NULL && strstr(text, "-----BEGIN ") != NULL;
    if (ok && !(*out = opt__keep(o, text, len))) {
        snprintf(err, errlen, "--%s: out of memory", flag);
        ok = -1;
    } else if (!ok) {
        snprintf(err, errlen, "--%s %s: not a PEM file (no -----BEGIN line): expected %s", flag,
                 path, what);
    }
    memset(text, 0, len);
    free(text);
    return ok == 1 ? 0 : -1;
}

static int opt__tls(opt_options *o, char *err, size_t errlen)
{
    if (!o->tls_cert[0] && !o->tls_key[0] && !o->tls_client_ca[0]) return 0;
    if (!o->tls_cert[0] || !o->tls_key[0]) {
        snprintf(err, errlen, "give --tls-cert and --tls-key together%s",
                 o->tls_client_ca[0] ? " (--tls-client-ca needs both)" : "");
        return -1;
    }
    if (opt__read_pem(o, "tls-cert", o->tls_cert, "a certificate", &o->tls_cert_pem, err, errlen) ||
        opt__read_pem(o, "tls-key", o->tls_key, "a private key", &o->tls_key_pem, err, errlen))
        return -1;
    if (o->tls_client_ca[0] && opt__read_pem(o, "tls-client-ca", o->tls_client_ca,
                                             "CA certificates", &o->tls_ca_pem, err, errlen))
        return -1;
    return 0;
}

int opt_parse(opt_options *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < OPT__N; i++)
        if (opt__tab[i].type != OPT_MODEL && opt__tab[i].type != OPT_ALIAS &&
            opt__set(o, &opt__tab[i], opt__tab[i].def, "default", err, errlen))
            return -1;
    for (int i = 0; i < OPT__N; i++) {
        char env[64];
        opt__env_name(opt__tab[i].flag, env, sizeof env);
        const char *v = getenv(env);
        if (!v || !*v) continue;
        if (opt__tab[i].type == OPT_MODEL || opt__tab[i].type == OPT_ALIAS) {
            char buf[4096]; /* several: comma-separated */
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                if (opt__set(o, &opt__tab[i], t, env, err, errlen)) return -1;
        } else if (opt__set(o, &opt__tab[i], v, env, err, errlen)) {
            return -1;
        }
    }
    int cli_models = 0, cli_aliases = 0;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            opt_usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("longserve %s\n", LONGSERVE_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (options start with --)", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt__row *r = NULL;
        for (int i = 0; i < OPT__N; i++)
            if (strlen(opt__tab[i].flag) == nlen && strncmp(opt__tab[i].flag, name, nlen) == 0)
                r = &opt__tab[i];
        if (!r) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && r->type == OPT_BOOL) v = "true";
        if (!v) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", r->flag);
                return -1;
            }
            v = argv[++a];
        }
        if (r->type == OPT_MODEL && !cli_models++) o->nmodels = 0; /* flags replace env */
        if (r->type == OPT_ALIAS && !cli_aliases++) o->naliases = 0;
        char src[80];
        snprintf(src, sizeof src, "--%s", r->flag);
        if (opt__set(o, r, v, src, err, errlen)) return -1;
    }
    if (o->nmodels == 0) {
        snprintf(err, errlen, "no model: give --model-id [NAME=]DIR (or LONGSERVE_MODEL_ID)");
        return -1;
    }
    if (opt__aliases(o, err, errlen)) return -1;
    if (o->accept_any_model_name && o->nmodels != 1) {
        snprintf(err, errlen, "--accept-any-model-name needs exactly one --model-id (%d given)",
                 o->nmodels);
        return -1;
    }
    if (o->api_key_file[0]) {
        if (o->api_key[0]) {
            snprintf(err, errlen, "give --api-key or --api-key-file, not both");
            return -1;
        }
        if (opt__read_key_file(o, err, errlen)) return -1;
    }
    return opt__tls(o, err, errlen);
}

void opt_free(opt_options *o)
{
    if (!o) return;
    for (int i = 0; i < o->nstrings; i++) {
        /* secrets are wiped before the memory goes back */
        if (o->strings[i] == o->api_key || o->strings[i] == o->tls_key_pem)
            memset(o->strings[i], 0, strlen(o->strings[i]));
        free(o->strings[i]);
    }
    memset(o, 0, sizeof *o);
}

void opt_visit(const opt_options *o, opt_visit_fn fn, void *arg)
{
    for (int i = 0; i < OPT__N; i++) {
        const opt__row *r = &opt__tab[i];
        char key[64];
        size_t k = 0;
        for (const char *p = r->flag; *p && k + 1 < sizeof key; p++)
            key[k++] = *p == '-' ? '_' : *p;
        key[k] = 0;
        const void *field = (const char *)o + r->off;
        switch (r->type) {
        case OPT_INT:
            fn(arg, key, r->type, r->flags, *(const long long *)field, NULL);
            break;
        case OPT_BOOL:
            fn(arg, key, r->type, r->flags, *(const int *)field, NULL);
            break;
        case OPT_STR: {
            const char *s = *(char *const *)field;
            if (r->flags & OPT_SECRET) s = s && *s ? "set" : NULL;
            fn(arg, key, r->type, r->flags, 0, s);
            break;
        }
        case OPT_MODEL:
            for (int m = 0; m < o->nmodels; m++) {
                char v[1200];
                snprintf(v, sizeof v, "%s=%s", o->model_id[m].name, o->model_id[m].path);
                fn(arg, key, r->type, r->flags, m, v);
            }
            break;
        case OPT_ALIAS: { /* one value: "alias=model,..." (null when none) */
            char v[OPT_MAX_ALIASES * 260] = "";
            size_t k = 0;
            for (int a = 0; a < o->naliases && k < sizeof v; a++)
                k += (size_t)snprintf(v + k, sizeof v - k, "%s%s=%s", a ? "," : "",
                                      o->served_model_name[a].alias,
                                      o->model_id[o->served_model_name[a].model].name);
            fn(arg, key, r->type, r->flags, 0, o->naliases ? v : NULL);
            break;
        }
        }
    }
}
