# per code point, what HF tokenizers 0.23.3 does: punct, control, nfd, nfkd, nfc, nfkc, lower, numeric, ws, mn-strip
import sys
from tokenizers import normalizers as N, pre_tokenizers as P
bp = P.BertPreTokenizer(); dg = P.Digits(individual_digits=True); ws = P.WhitespaceSplit()
clean = N.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
strip = N.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
sa = N.StripAccents()
nf = {k: getattr(N, k)() for k in ("NFD", "NFKD", "NFC", "NFKC")}
low = N.Lowercase()
out = open(sys.argv[1], "w", encoding="utf-8")
for c in range(0x110000):
    if 0xD800 <= c <= 0xDFFF: continue
    ch = chr(c)
    f = []
    f.append(int(len(bp.pre_tokenize_str("a" + ch + "a")) == 3))
    f.append(int(clean.normalize_str(ch) == ""))
    f.append(int(len(dg.pre_tokenize_str("a" + ch + "a")) == 3))
    f.append(int(len(ws.pre_tokenize_str("a" + ch + "a")) == 2))
    f.append(int(strip.normalize_str("a" + ch) == "a"))
    f.append(int(sa.normalize_str("a" + ch) == "a"))
    s = [nf[k].normalize_str(ch) for k in ("NFD", "NFKD", "NFC", "NFKC")] + [low.normalize_str(ch)]
    out.write("%x %s %s\n" % (c, "".join(map(str, f)), " ".join(",".join("%x" % ord(x) for x in v) or "-" for v in s)))
