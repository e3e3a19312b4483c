/* The one UTF-8 validator: well-formed UTF-8 as Unicode defines it (table 3-7), so overlong
 * forms, surrogates (U+D800..U+DFFF), code points over U+10FFFF and truncated sequences are
 * refused. Used by proto/ (request bodies) and the tokenizer (texts, added tokens). */
#ifndef LS_UTF8_H
#define LS_UTF8_H

#include <stddef.h>

/* The byte offset of the first byte of s[0..n) that does not start a well-formed sequence
 * (a lead byte whose sequence is ill-formed or cut short), or -1 when all of it is valid. */
ptrdiff_t ls_utf8_check(const char *s, size_t n);

/* The length (1..4) of the well-formed sequence at s[0..n) (n >= 1), or 0 with *bad set to
 * the length of its maximal ill-formed subpart (>= 1): what one U+FFFD replaces when
 * decoding lossily, as Rust's String::from_utf8_lossy does. */
int ls_utf8_seq(const unsigned char *s, size_t n, int *bad);

#endif
