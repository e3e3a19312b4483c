import sys
from tokenizers import pre_tokenizers as P
ws = P.Whitespace(); bl = P.ByteLevel(add_prefix_space=False, use_regex=True)
out = open(sys.argv[1], "w")
for c in range(0x110000):
    if 0xD800 <= c <= 0xDFFF: continue
    ch = chr(c)
    out.write("%x %d %d %d\n" % (c, len(ws.pre_tokenize_str("a" + ch + "a")), len(bl.pre_tokenize_str("a" + ch + "a")), len(bl.pre_tokenize_str("1" + ch + "1"))))
