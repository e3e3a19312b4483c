#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/tok_internal.h"
static tok__pre mk(tj_pretok *j) { tok__pre n; char e[200]; if (tok__pre_build(&n, j, e, sizeof e)) { puts(e); exit(1);} return n; }
static int run(tok__pre *p, const char *s, size_t len, pcre2_match_data *md) {
  tok__arena a = {0}; tok__arena_reserve(&a, len + 1); memcpy(a.b, s, len);
  for (size_t i = 0; i < len;) { size_t l = tok__lead_len((unsigned char)s[i]); for (size_t k=0;k<l;k++) a.al[i+k]=(tok__al){i,i+l}; i+=l; }
  a.len = len; tok__splits in = {0}, tmp = {0}; tok__splits_push(&in, (tok__split){0, len, 0, len, -1});
  tok__pre_tokenize(p, &a, &in, &tmp, md); int n = in.n; free(in.v); free(tmp.v); free(a.b); free(a.al); return n; }
int main(int argc, char **argv) {
  (void)argc; tok__unicode_init(); FILE *f = fopen(argv[1], "w");
  tj_pretok jw = {.type = TJ_PRE_WHITESPACE}, jb = {.type = TJ_PRE_BYTE_LEVEL, .use_regex = 1};
  tok__pre w = mk(&jw), b = mk(&jb);
  pcre2_match_data *md = pcre2_match_data_create(16, NULL);
  char buf[16];
  for (uint32_t c = 0; c < 0x110000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    buf[0] = 'a'; int l = tok__enc(c, buf + 1); buf[l + 1] = 'a';
    int n1 = run(&w, buf, l + 2, md), n2 = run(&b, buf, l + 2, md);
    buf[0] = '1'; buf[l + 1] = '1';
    int n3 = run(&b, buf, l + 2, md);
    fprintf(f, "%x %d %d %d\n", c, n1, n2, n3);
  }
  fclose(f); return 0; }
