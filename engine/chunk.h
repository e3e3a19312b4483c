/* chunk.h — late chunking on plain arrays: which of a document's tokens a chunk covers,
 * the server-side chunkers, and which long-document window pools a chunk:
 *
 *     eng_chunk c[64];
 *     int n = eng_chunk_by_separator(text, len, "\n\n", 2, c, 64); // character spans
 *     eng_chunk_tokens(tok_start, tok_end, ntok, c, n);            // -> tokens [t0, t1)
 *     int w = eng_chunk_window(win_c0, win_c1, nwin, ntok, c[k].t0, c[k].t1);
 *     // then pool the chunk's token states with eng_pipe_pool (pipeline.h)
 *
 * Characters are Unicode code points of the UTF-8 text (Python string indices); tokens
 * are the document's content tokens (its special tokens left out), numbered from 0. */
#ifndef ENG_CHUNK_H
#define ENG_CHUNK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int start, end; /* characters [start, end) */
    int t0, t1;     /* content tokens [t0, t1); t0 == t1: the chunk has none */
} eng_chunk;

/* The tokens of each chunk's character span: from the first content token whose
 * characters [s, e) meet the span (s < end && e > start, or a zero-width token with
 * start <= s < end) to the last such token. tok_start/tok_end: [ntok] character offsets
 * of the content tokens, in order. A span that meets no token gets t0 == t1. */
void eng_chunk_tokens(const int32_t *tok_start, const int32_t *tok_end, int ntok, eng_chunk *c,
                      int nc);

/* The chunkers fill out[0 .. min(count, cap)) and return count (all the chunks there are),
 * so that a first call with cap 0 sizes the array. */

/* Chunks of n content tokens, each starting n - overlap after the previous one (0 <=
 * overlap < n), until one reaches the last token; spans from the first token's start to
 * the last token's end. */
int eng_chunk_by_tokens(const int32_t *tok_start, const int32_t *tok_end, int ntok, int n,
                        int overlap, eng_chunk *out, int cap);

/* Groups of k sentences. A sentence ends after a run of '.', '!' or '?' (and the closing
 * quotes or brackets ") ' ] that follow it) that is followed by white space or the end
 * of the text; the text after the last such end is a last sentence. A sentence's span
 * leaves out the white space (ASCII space, \t \n \v \f \r) around it. */
int eng_chunk_by_sentences(const char *text, size_t len, int k, eng_chunk *out, int cap);

/* The pieces of the text between occurrences of sep (bytes), each without the white space
 * around it; pieces that are empty then are left out. */
int eng_chunk_by_separator(const char *text, size_t len, const char *sep, size_t seplen,
                           eng_chunk *out, int cap);

/* The window (content tokens [c0[w], c1[w]) of ntok) that holds tokens [t0, t1) whole and
 * where they are most central: the largest min(left, right) margin, a margin at the
 * document's edge counting as unbounded (there is no context to miss there); the first
 * of equals. -1 when no window holds them whole (pool each token from the window where
 * it is most central: eng_chunk_window(..., t, t + 1)). */
int eng_chunk_window(const int *c0, const int *c1, int nwin, int ntok, int t0, int t1);

#endif
