/* OpenAI embeddings response: floats or base64 of little-endian float32. */
#include <string.h>

#include "jbuf.h"
#include "openai.h"

char *oai_embeddings_encode(const float *const *vecs, int n, int dim, int base64, const char *model,
                            long long prompt_tokens, const tei_echo *echo, size_t *len)
{
    pr_buf b = {0};
    pr_buf_reserve(&b, (size_t)n * (size_t)dim * 16 + 256);
    pr_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        pr_buf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "",
                      i);
        if (base64)
            pr_buf_floats_b64(&b, vecs[i], (size_t)dim);
        else
            pr_buf_floats(&b, vecs[i], (size_t)dim);
        pr_buf_puts(&b, "}");
    }
    pr_buf_puts(&b, "],\"model\":");
    pr_buf_str(&b, model, strlen(model));
    pr_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}", prompt_tokens,
                  prompt_tokens);
    if (echo) pr_buf_echo(&b, echo);
    pr_buf_puts(&b, "}");
    return pr_buf_finish(&b, len);
}
