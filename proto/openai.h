/* OpenAI /v1/embeddings response encoding (the request is decoded by tei_request_parse
 * with TEI_OPENAI_EMBED: one struct for every text route). */
#ifndef PR_OPENAI_H
#define PR_OPENAI_H

#include <stddef.h>

#include "tei.h"

/* {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...] or "base64"}],
 *  "model","usage":{"prompt_tokens","total_tokens"},"longserve":{...}} */
char *oai_embeddings_encode(const float *const *vecs, int n, int dim, int base64, const char *model,
                            long long prompt_tokens, const tei_echo *echo, size_t *len);
/* The same with each input's chunks (late chunking) in its data item: "chunks" and
 * "truncated_chunks" as tei_buf_chunks writes them; chunks NULL: none. */
char *oai_embeddings_chunks_encode(const float *const *vecs, const tei_chunk_list *chunks, int n,
                                   int dim, int base64, const char *model, long long prompt_tokens,
                                   const tei_echo *echo, size_t *len);

#endif
