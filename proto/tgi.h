/* Text generation bodies in the shapes of Hugging Face text-generation-inference (TGI):
 * POST /generate, /generate_stream and TGI's root route. The request decoded into a plain
 * struct (types and ranges checked here, 422 naming the field, as TGI answers), and the
 * response encoders: the /generate object and one Server-Sent Event per token. Shapes:
 * proto/openapi.yaml. */
#ifndef PR_TGI_H
#define PR_TGI_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/status.h"

enum { TGI_MAX_STOP = 8 };

typedef struct {
    char *inputs; /* UTF-8 prompt (owned) */
    size_t len;
    int stream; /* the root route's "stream" */
    char model[128];
    /* "parameters"; -1 / NAN-free defaults mean "absent: the server's default" */
    int max_new_tokens;       /* -1 absent */
    int do_sample;            /* 0/1 */
    float temperature;        /* 0: absent */
    int top_k;                /* 0: absent */
    float top_p;              /* 0: absent */
    float repetition_penalty; /* 0: absent */
    int has_seed;
    uint64_t seed;
    char *stop[TGI_MAX_STOP]; /* owned */
    int nstop;
    int return_full_text;
    int details;
    int decoder_input_details;
    /* longserve's Reformer knobs (also v2 parameters): -1 absent */
    int use_cache;
    int num_hashes;
    long long hash_seed;
} tgi_request;

/* Decodes a body. Malformed JSON or a body that is not an object is LS_ERR_BAD_REQUEST;
 * a field of the wrong type or out of range is LS_ERR_INVALID_INPUT naming it. */
ls_status tgi_request_parse(const char *body, size_t len, tgi_request *r, char *err, size_t errlen);
void tgi_request_free(tgi_request *r);

typedef struct {
    int32_t id;
    const char *text; /* UTF-8 */
    size_t len;
    float logprob;
    int special;
} tgi_token;

typedef enum { TGI_FINISH_LENGTH, TGI_FINISH_EOS, TGI_FINISH_STOP } tgi_finish;

const char *tgi_finish_name(tgi_finish f); /* "length", "eos_token", "stop_sequence" */

/* The /generate body: {"generated_text", "details": {...}} (details only when asked);
 * as_list wraps it in a one-element list (the root route). */
char *tgi_generate_encode(const char *text, size_t len, int details, tgi_finish finish, int ntokens,
                          const uint64_t *seed, const tgi_token *tokens, int n, int as_list,
                          size_t *out_len);
/* One stream event: "data:{"index","token","generated_text","details"}\n\n"; the last
 * event (final) carries the whole text and the details (finish_reason, generated_tokens,
 * seed), the others null. */
void tgi_stream_event(ls_buf *b, int index, const tgi_token *t, int final, const char *text,
                      size_t len, tgi_finish finish, int ntokens, const uint64_t *seed);
/* An error event after the stream has started: data:{"error","error_type"}. */
void tgi_stream_error(ls_buf *b, const char *msg, const char *type);

#endif
