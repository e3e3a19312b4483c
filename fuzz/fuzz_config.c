/* Fuzz target: config.json from untrusted bytes. hf_config_parse must refuse it with a
 * message or fill the struct consistently; hf_config_free must be safe after either,
 * and twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/hfconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): checks must survive -DNDEBUG release builds. */
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define TERMINATED(a) (memchr((a), 0, sizeof(a)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hf_config c;
    char err[256] = "";
    ls_status st = hf_config_parse((const char *)data, size, "config.json", &c, err, sizeof err);
    if (st != LS_OK) {
        REQUIRE(st == LS_ERR_CONFIG || st == LS_ERR_NOMEM);
        REQUIRE(err[0] && TERMINATED(err));
        REQUIRE(c.id2label == NULL); /* the parser already released it */
    } else {
        REQUIRE(TERMINATED(c.model_type) && TERMINATED(c.architecture));
        REQUIRE(TERMINATED(c.hidden_act) && TERMINATED(c.position_embedding_type));
        REQUIRE(c.n_attention_window >= 0 && c.n_attention_window <= HF_MAX_LAYERS);
        REQUIRE(c.num_labels >= 1);
        if (c.id2label)
            for (int i = 0; i < c.num_labels; i++)
                REQUIRE(c.id2label[i] != NULL);
    }
    hf_config_free(&c);
    hf_config_free(&c);
    return 0;
}
