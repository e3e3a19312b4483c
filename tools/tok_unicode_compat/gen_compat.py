# Generates tokenizer/tok_unicode_compat.h: where HF tokenizers 0.23.3's Unicode tables (several
# Rust crates of different Unicode versions) disagree with utf8proc 2.8 (Unicode 15).
# Inputs: hf.txt (hfprops.py, run with HF tokenizers) and c.txt (cprops.c, our code without
# the compat tables), one line per code point.
import sys
H={}; C={}
for l in open('hf.txt'):
    p=l.split(); H[int(p[0],16)]=p[1:]
for l in open('c.txt'):
    p=l.split(); C[int(p[0],16)]=p[1:]
def ranges(cs):
    cs=sorted(cs); out=[]
    for c in cs:
        if out and out[-1][1]==c-1: out[-1][1]=c
        else: out.append([c,c])
    return out
flags={'punct':0,'control':1,'numeric':2,'mn':4,'mark':5}
sets={k:[] for k in flags}
for c in H:
    if c==0: continue
    for k,i in flags.items():
        if H[c][0][i]!=C[c][0][i]: sets[k].append(c)
canon=[c for c in H if c and H[c][1]!=C[c][1] and H[c][1]=='%x'%c]
compat=[c for c in H if c and H[c][2]!=C[c][2] and H[c][2]=='%x'%c]
lower=[(c,int(H[c][5],16)) for c in H if c and H[c][5]!=C[c][5]]
assert all(',' not in H[c][5] for c,_ in lower)
o=sys.stdout
o.write('''/* Where Hugging Face tokenizers 0.23.3 and utf8proc 2.8 (Unicode 15.0) disagree about a
 * character. HF takes each property from a different crate, each frozen at its own Unicode
 * version: punctuation, controls and marks from unicode_categories (about Unicode 8),
 * decompositions from unicode-normalization-alignments (about Unicode 12), case mapping and
 * numerics from Rust's std (Unicode 16). Generated, not written: every code point was run
 * through HF's BertPreTokenizer, BertNormalizer, StripAccents, Digits, NF(K)C/NF(K)D and
 * Lowercase and through ours without these lists, and the differences are what is below.
 * Ranges are inclusive [first, last]. */
#ifndef ENG_TOK_UNICODE_COMPAT_H
#define ENG_TOK_UNICODE_COMPAT_H

#include <stdint.h>

''')
def emit(name, rs, doc):
    o.write('/* %s */\nstatic const uint32_t %s[][2] = {\n' % (doc, name))
    line='   '
    for a,b in rs:
        item=' {0x%x, 0x%x},' % (a,b)
        if len(line)+len(item)>96: o.write(line+'\n'); line='   '
        line+=item
    o.write(line+'\n};\n\n')
emit('tok__hf_flip_punct', ranges(sets['punct']), 'general category P* (BertPreTokenizer, Punctuation): HF says the opposite')
emit('tok__hf_flip_control', ranges(sets['control']), 'Cc/Cf/Co removed by BertNormalizer clean_text: HF says the opposite')
emit('tok__hf_flip_numeric', ranges(sets['numeric']), 'N* (Digits): HF says the opposite')
emit('tok__hf_flip_mn', ranges(sets['mn']), 'Mn (BertNormalizer strip_accents): HF says the opposite')
emit('tok__hf_flip_mark', ranges(sets['mark']), 'M* (StripAccents): HF says the opposite')
emit('tok__hf_keep_canon', ranges(canon), 'no canonical decomposition in HF (NFD, NFC)')
emit('tok__hf_keep_compat', ranges(compat), 'no compatibility decomposition in HF (NFKD, NFKC)')
o.write('/* lowercase mappings HF has and utf8proc lacks: {from, to} */\nstatic const uint32_t tok__hf_lower_map[][2] = {\n')
line='   '
for a,b in sorted(lower):
    item=' {0x%x, 0x%x},' % (a,b)
    if len(line)+len(item)>96: o.write(line+'\n'); line='   '
    line+=item
o.write(line+'\n};\n\n')
# --- regex classes: HF's Oniguruma (\p{L}, \p{N}) and regex crate (\w) know newer Unicode
# than PCRE2 10.42; inputs hfre.txt (hfre.py) and cre_base.txt (cre.c without these lists)
HR={int(l.split()[0],16):l.split()[1:] for l in open('hfre.txt')}
CR={int(l.split()[0],16):l.split()[1:] for l in open('cre_base.txt')}
extra={'W':[],'L':[],'N':[]}
for c in HR:
    for i,n in enumerate('WLN'):
        if HR[c][i]!=CR[c][i]:
            assert HR[c][i]=='1', (c, n)
            extra[n].append(c)
def frag(rs):
    parts=[]
    for a,b in rs:
        parts.append('\\\\x{%x}' % a if a==b else '\\\\x{%x}-\\\\x{%x}' % (a,b))
    lines=[]; cur=''
    for p in parts:
        if len(cur)+len(p)>80: lines.append(cur); cur=''
        cur+=p
    lines.append(cur)
    return ' \\\n    '.join('"%s"' % l for l in lines)
body=''
for n,doc in (('W','\\\\w of the regex crate (Whitespace pre-tokenizer, single_word added tokens)'),('L','\\\\p{L} of Oniguruma (ByteLevel, Split, Replace patterns)'),('N','\\\\p{N} of Oniguruma')):
    body+='/* code points %s has and PCRE2 10.42 lacks, as a class fragment */\n#define TOK__HF_EXTRA_%s \\\n    %s\n\n' % (doc.replace('\\\\','\\'), n, frag(ranges(extra[n])))
import re
sys.stdout.write('')

o.write(body + '#endif\n')
