#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/tok_internal.h"
static tok__norm mk(tj_normalizer *j) { tok__norm n; char e[100]; if (tok__norm_build(&n, j, e, sizeof e)) { puts(e); exit(1);} return n; }
static int run(tok__norm *n, const char *s, size_t len, char *out) {
  tok__arena a = {0}; tok__arena_reserve(&a, len + 1); memcpy(a.b, s, len);
  for (size_t i = 0; i < len;) { size_t l = tok__lead_len((unsigned char)s[i]); for (size_t k=0;k<l;k++) a.al[i+k]=(tok__al){i,i+l}; i+=l; }
  a.len = len; tok__split sp = {0, len, 0, len, -1};
  tok__normalize(n, &a, &sp, NULL); memcpy(out, a.b + sp.off, sp.len); out[sp.len]=0; int r = sp.len; free(a.b); free(a.al); return r; }
static void pr(FILE *f, const char *s) { if (!*s) { fputs("-", f); return; } int first=1; while (*s) { int l; uint32_t c = tok__dec(s,&l); fprintf(f, first?"%x":",%x", c); first=0; s+=l; } }
int main(int argc, char **argv) {
  (void)argc; tok__unicode_init(); FILE *f = fopen(argv[1], "w");
  tj_normalizer jclean = {.type=TJ_NORM_BERT,.clean_text=1}, jstrip={.type=TJ_NORM_BERT,.strip_accents=1}, jsa={.type=TJ_NORM_STRIP_ACCENTS},
    jnfd={.type=TJ_NORM_NFD}, jnfkd={.type=TJ_NORM_NFKD}, jnfc={.type=TJ_NORM_NFC}, jnfkc={.type=TJ_NORM_NFKC}, jlow={.type=TJ_NORM_LOWERCASE};
  tok__norm clean=mk(&jclean), strip=mk(&jstrip), sa=mk(&jsa), nf[4]={mk(&jnfd),mk(&jnfkd),mk(&jnfc),mk(&jnfkc)}, low=mk(&jlow);
  char buf[16], o[256];
  for (uint32_t c = 0; c < 0x110000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    int l = tok__enc(c, buf + 1); buf[0] = 'a';
    int ws = tok__is_whitespace(c);
    fprintf(f, "%x %d", c, !ws && tok__is_bert_punc(c));
    fprintf(f, "%d", run(&clean, buf + 1, l, o) == 0);
    fprintf(f, "%d", tok__is_numeric(c));
    fprintf(f, "%d", ws);
    run(&strip, buf, l + 1, o); fprintf(f, "%d", !strcmp(o, "a"));
    run(&sa, buf, l + 1, o); fprintf(f, "%d", !strcmp(o, "a"));
    for (int k = 0; k < 4; k++) { run(&nf[k], buf + 1, l, o); fputc(' ', f); pr(f, o); }
    run(&low, buf + 1, l, o); fputc(' ', f); pr(f, o);
    fputc('\n', f);
  }
  fclose(f); return 0; }
