/* OpenAI embeddings response: floats or base64 of little-endian float32. */
#include <string.h>

#include "../common/buf.h"
#include "openai.h"

char *oai_embeddings_encode(const float *const *vecs, int n, int dim, int base64, const char *model,
                            long long prompt_tokens, const tei_echo *echo, size_t *len)
{
    return oai_embeddings_chunks_encode(vecs, NULL, n, dim, base64, model, prompt_tokens, echo,
                                        len);
}

char *oai_embeddings_chunks_encode(const float *const *vecs, const tei_chunk_list *chunks, int n,
                                   int dim, int base64, const char *model, long long prompt_tokens,
                                   const tei_echo *echo, size_t *len)
{
    ls_buf b = {0};
    ls_buf_reserve(&b, (size_t)n * (size_t)dim * 16 + 256);
    ls_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        ls_buf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "",
                      i);
        if (base64)
            ls_buf_floats_b64(&b, vecs[i], (size_t)dim);
        else
            ls_buf_floats(&b, vecs[i], (size_t)dim);
        if (chunks) tei_buf_chunks(&b, &chunks[i], dim, base64);
        ls_buf_puts(&b, "}");
    }
    ls_buf_puts(&b, "],\"model\":");
    ls_buf_str(&b, model, strlen(model));
    ls_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}", prompt_tokens,
                  prompt_tokens);
    if (echo) tei_buf_echo(&b, echo);
    ls_buf_puts(&b, "}");
    return ls_buf_finish(&b, len);
}
