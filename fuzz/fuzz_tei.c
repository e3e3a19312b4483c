/* Fuzz target: text-route bodies (TEI, OpenAI, HF pipelines) from untrusted bytes. Byte 0
 * picks the route; tei_request_parse must refuse with a message or give a request whose
 * fields are consistent; free must be safe after either. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "../proto/tei.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    tei_kind kind = (tei_kind)(data[0] % (TEI_EMBED_SPARSE + 1)); /* every route kind */
    tei_request r;
    char err[256] = "";
    ls_status st =
        tei_request_parse(kind, (const char *)data + 1, size - 1, 32, &r, err, sizeof err);
    if (st != LS_OK) {
        REQUIRE(st == LS_ERR_BAD_REQUEST || st == LS_ERR_TOO_LARGE || st == LS_ERR_INVALID_INPUT ||
                st == LS_ERR_NOMEM);
        REQUIRE(err[0] && memchr(err, 0, sizeof err));
        return 0;
    }
    REQUIRE(r.n >= 1 && r.n <= 32);
    for (int i = 0; i < r.n; i++) {
        const tei_input *in = &r.in[i];
        REQUIRE(in->text || in->ids);
        if (in->text) REQUIRE(strlen(in->text) <= in->len && ls_utf8_check(in->text, in->len) < 0);
        if (in->pair) REQUIRE(ls_utf8_check(in->pair, in->pair_len) < 0);
    }
    REQUIRE(r.ga_nidx >= 0 && r.ga_nspans >= 0);
    tei_request_free(&r);
    return 0;
}
