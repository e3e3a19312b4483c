/* Fuzz target: the sentence-transformers files from untrusted bytes. Every input goes to
 * sb_modules_parse (modules.json), sb_pooling_parse and sb_pooling_include_prompt
 * (1_Pooling/config.json) and sb_prompts_parse (config_sentence_transformers.json): each
 * must refuse with a message or give values its header promises, the same way twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/sbert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): checks must survive -DNDEBUG release builds. */
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define TERMINATED(a) (memchr((a), 0, sizeof(a)) != NULL)

/* A refusal is one of the documented statuses with a message. */
static void refused(ls_status st, const char *err, size_t errlen)
{
    REQUIRE(st == LS_ERR_CONFIG || st == LS_ERR_UNSUPPORTED || st == LS_ERR_NOMEM);
    REQUIRE(err[0] && memchr(err, 0, errlen));
}

static void modules(const char *json, size_t size)
{
    char dir[256], small[8], err[256] = "", err2[256] = "";
    int norm = -1, norm2 = -1;
    ls_status st =
        sb_modules_parse(json, size, "modules.json", dir, sizeof dir, &norm, err, sizeof err);
    if (st != LS_OK) {
        refused(st, err, sizeof err);
    } else {
        /* a Pooling path stays inside the model directory and fits its buffer */
        REQUIRE(TERMINATED(dir) && strlen(dir) < sizeof dir);
        REQUIRE(strstr(dir, "..") == NULL && dir[0] != '/');
        REQUIRE(norm == 0 || norm == 1);
    }
    /* a smaller buffer: the same answer, or a refusal naming a path that does not fit (any
     * Pooling module's: a later one's path replaces an earlier one's) */
    ls_status st2 = sb_modules_parse(json, size, "modules.json", small, sizeof small, &norm2, err2,
                                     sizeof err2);
    if (st2 != LS_OK) {
        refused(st2, err2, sizeof err2);
        REQUIRE(st != LS_OK || strstr(err2, " has path '") != NULL);
    } else {
        REQUIRE(st == LS_OK && strcmp(small, dir) == 0 && norm2 == norm);
    }
}

static void pooling(const char *json, size_t size)
{
    char err[256] = "", err2[256] = "";
    sb_pooling p = (sb_pooling)-1, p2 = (sb_pooling)-1;
    ls_status st = sb_pooling_parse(json, size, "1_Pooling/config.json", &p, err, sizeof err);
    if (st != LS_OK) {
        refused(st, err, sizeof err);
    } else {
        REQUIRE(p == SB_POOL_CLS || p == SB_POOL_MEAN || p == SB_POOL_MAX ||
                p == SB_POOL_MEAN_SQRT_LEN);
        REQUIRE(strcmp(sb_pooling_name(p), "?") != 0);
    }
    ls_status st2 = sb_pooling_parse(json, size, "1_Pooling/config.json", &p2, err2, sizeof err2);
    REQUIRE(st2 == st && (st != LS_OK || p2 == p) && strcmp(err, err2) == 0);
}

static void prompts(const char *json, size_t size)
{
    char err[256] = "", err2[256] = "";
    int inc = -1;
    ls_status st =
        sb_pooling_include_prompt(json, size, "1_Pooling/config.json", &inc, err, sizeof err);
    if (st != LS_OK)
        refused(st, err, sizeof err);
    else
        REQUIRE(inc == 0 || inc == 1);
    sb_prompts p, p2;
    err[0] = 0;
    st = sb_prompts_parse(json, size, "config_sentence_transformers.json", &p, err, sizeof err);
    if (st != LS_OK) {
        refused(st, err, sizeof err);
        REQUIRE(p.n == 0 && p.names == NULL && p.default_index == -1); /* nothing to free */
    } else {
        /* unique names, NUL-terminated texts, a default that is one of them */
        REQUIRE(p.n >= 0 && p.default_index >= -1 && p.default_index < p.n);
        for (int i = 0; i < p.n; i++) {
            REQUIRE(p.names[i] && p.texts[i]);
            for (int k = 0; k < i; k++)
                REQUIRE(strcmp(p.names[i], p.names[k]) != 0);
        }
    }
    ls_status st2 =
        sb_prompts_parse(json, size, "config_sentence_transformers.json", &p2, err2, sizeof err2);
    REQUIRE(st2 == st && strcmp(err, err2) == 0 && p2.n == p.n &&
            p2.default_index == p.default_index);
    for (int i = 0; st == LS_OK && i < p.n; i++)
        REQUIRE(strcmp(p.names[i], p2.names[i]) == 0 && strcmp(p.texts[i], p2.texts[i]) == 0);
    sb_prompts_free(&p);
    sb_prompts_free(&p2);
    sb_prompts_free(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    modules((const char *)data, size);
    pooling((const char *)data, size);
    prompts((const char *)data, size);
    return 0;
}
