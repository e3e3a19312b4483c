#!/usr/bin/env python3
"""Generate tests/fixtures/tokenizers/components/: one small tokenizer per group of
`tokenizers` components that the main fixtures (tools/make_tokenizer_fixtures.py) do not
use, with Hugging Face's expected output for the shared corpus (../corpus.jsonl, every line
but the 100,000-character document).

Each tokenizer is derived, in code, from a committed tokenizer.json of the main fixtures
(vocabularies reused; no download, no network), except `bpe_suffix` and `bpe_fallback`,
which are trained here on the corpus texts and then kept, like the main script's trained
files (HF's BPE trainer is not bit-reproducible: --retrain trains them again). The rest is
byte-identical from run to run.

Written against tools/requirements-tokenizers.txt (tokenizers 0.23.3, CPython 3.11.7):
    /tmp/hfvenv/bin/python tools/make_tokenizer_component_fixtures.py [--retrain]
Needs the main fixtures in place (it reads their corpus and tokenizer.json files).
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import sys
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer
from tokenizers import decoders as D
from tokenizers import models as M
from tokenizers import normalizers as N
from tokenizers import pre_tokenizers as P
from tokenizers import processors as PP
from tokenizers import trainers as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tokenizer_fixtures import describe_tokenizer, expected_for, sha256_file, write_jsonl

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "tests" / "fixtures" / "tokenizers"
OUT = MAIN / "components"
SKIP_KINDS = {"big_document"}


def load_json(name):
    return json.loads((MAIN / name / "tokenizer.json").read_text(encoding="utf-8"))


def from_dict(d):
    return Tokenizer.from_str(json.dumps(d, ensure_ascii=False))


def corpus_texts(corpus):
    """Training text: the corpus without U+0000, which no vocabulary here may hold (the C
    loader's JSON parser, cJSON, ends strings at NUL)."""
    for r in corpus:
        for t in (r["text"], r.get("pair")):
            if t and t.strip():
                yield t.replace("\x00", "")


# --------------------------------------------------------------------------------------
# The tokenizers.  Each docstring names the components it is there for.
# --------------------------------------------------------------------------------------

def wordlevel_scripts(corpus):
    """WordLevel (wordpiece_cased's whole words); Nmt, NFKD, StripAccents, NFC, Replace
    (regex); CharDelimiterSplit, UnicodeScripts, Punctuation (contiguous); RobertaProcessing
    without trim_offsets; decoders Replace (regex) and Strip."""
    wp = load_json("wordpiece_cased")
    vocab = {k: v for k, v in wp["model"]["vocab"].items() if not k.startswith("##")}
    tok = Tokenizer(M.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = N.Sequence([N.Nmt(), N.NFKD(), N.StripAccents(), N.NFC(),
                                 N.Replace(Regex("[0-9]+"), "0")])
    tok.pre_tokenizer = P.Sequence([P.CharDelimiterSplit(" "), P.UnicodeScripts(),
                                    P.Punctuation(behavior="contiguous")])
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.post_processor = PP.RobertaProcessing(("[SEP]", vocab["[SEP]"]),
                                              ("[CLS]", vocab["[CLS]"]),
                                              trim_offsets=False, add_prefix_space=False)
    tok.decoder = D.Sequence([D.Replace(Regex(r"\[(UNK|PAD)\]"), "?"),
                              D.Strip(content="?", left=1, right=0)])
    return tok


CTC_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789'|"


def wordlevel_ctc(corpus):
    """Character-level WordLevel with the CTC decoder (wav2vec2-like): NFKD, StripAccents,
    Lowercase, Replace (string); FixedLength(1); no post-processor."""
    vocab = {"<pad>": 0, "<unk>": 1}
    for c in CTC_CHARS:
        vocab[c] = len(vocab)
    tok = Tokenizer(M.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = N.Sequence([N.NFKD(), N.StripAccents(), N.Lowercase(), N.Replace(" ", "|")])
    tok.pre_tokenizer = P.FixedLength(length=1)
    tok.add_special_tokens([AddedToken("<pad>", special=True, normalized=False)])
    tok.decoder = D.CTC(pad_token="<pad>", word_delimiter_token="|", cleanup=True)
    return tok


def wordlevel_fixed(corpus):
    """FixedLength(3) over WhitespaceSplit words, WordLevel on 3-character chunks (unknown
    mostly), BertNormalizer with clean_text only; no decoder (tokens joined by spaces)."""
    vocab = {"[UNK]": 0}
    for t in corpus_texts(corpus):
        for w in t.split():
            for i in range(0, len(w), 3):
                c = w[i:i + 3]
                if c.isascii() and c not in vocab and len(vocab) < 3000:
                    vocab[c] = len(vocab)
    tok = Tokenizer(M.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = N.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                      strip_accents=False, lowercase=False)
    tok.pre_tokenizer = P.Sequence([P.WhitespaceSplit(), P.FixedLength(length=3)])
    return tok


def bpe_bytenorm(corpus):
    """The bpe_roberta model behind the ByteLevel normalizer and a Split on "Ġ" (merged
    with next); dropout null; post-processor Sequence[ByteLevel, TemplateProcessing]."""
    d = load_json("bpe_roberta")
    d["model"]["dropout"] = None
    tok = from_dict(d)
    tok.normalizer = N.ByteLevel()
    tok.pre_tokenizer = P.Split(Regex("Ġ"), behavior="merged_with_next")
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = PP.Sequence([
        PP.ByteLevel(trim_offsets=True, add_prefix_space=False),
        PP.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B:1 </s>:1",
                              special_tokens=[("<s>", bos), ("</s>", eos)])])
    tok.decoder = D.ByteLevel()
    return tok


def train_bpe_suffix(corpus):
    """BPE with end_of_word_suffix (CLIP-like) and the BPEDecoder; NFC, Lowercase, Replace
    (regex), Strip; WhitespaceSplit, Digits (grouped), Punctuation; TemplateProcessing with
    a two-token special piece."""
    tok = Tokenizer(M.BPE(unk_token="<unk>", end_of_word_suffix="</w>", fuse_unk=False))
    tok.normalizer = N.Sequence([N.NFC(), N.Lowercase(), N.Replace(Regex(r"\s+"), " "),
                                 N.Strip()])
    tok.pre_tokenizer = P.Sequence([P.WhitespaceSplit(), P.Digits(individual_digits=False),
                                    P.Punctuation(behavior="isolated")])
    trainer = T.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                           special_tokens=["<unk>", "<s>", "</s>"], end_of_word_suffix="</w>",
                           limit_alphabet=300)
    tok.train_from_iterator(corpus_texts(corpus), trainer=trainer)
    return tok


def finish_bpe_suffix(tok):
    s, e = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = PP.TemplateProcessing(
        single="<bos>:0 $A:0 </s>:0", pair="<bos>:0 $A:0 </s>:0 $B:1 </s>:1",
        special_tokens=[{"id": "<bos>", "ids": [s, e], "tokens": ["<s>", "</s>"]},
                        ("</s>", e)])
    tok.decoder = D.BPEDecoder(suffix="</w>")
    return tok


def train_bpe_fallback(corpus):
    """Llama-2 style BPE: Prepend("▁") and Replace(" ", "▁"), no pre-tokenizer, byte_fallback
    with fuse_unk; decoders Replace, ByteFallback, Fuse, Strip."""
    tok = Tokenizer(M.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = N.Sequence([N.Prepend("▁"), N.Replace(" ", "▁")])
    trainer = T.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                           special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120)
    tok.train_from_iterator(corpus_texts(corpus), trainer=trainer)
    # the 256 byte tokens after the trained vocabulary
    d = json.loads(tok.to_str())
    n = max(d["model"]["vocab"].values()) + 1
    for b in range(256):
        d["model"]["vocab"][f"<0x{b:02X}>"] = n + b
    return from_dict(d)


def finish_bpe_fallback(tok):
    tok.post_processor = PP.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1",
        special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.decoder = D.Sequence([D.Replace("▁", " "), D.ByteFallback(), D.Fuse(),
                              D.Strip(content=" ", left=1, right=0)])
    return tok


def unigram_first(corpus):
    """Strip ahead of Metaspace(prepend_scheme="first"): no "▁" is prepended to a piece that
    does not start at offset 0 of the original text (leading whitespace stripped, text after
    an added token)."""
    tok = from_dict(load_json("unigram_sp"))
    tok.normalizer = N.Sequence([N.Strip(), N.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = P.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = D.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    return tok


def unigram_bytes(corpus):
    """Unigram with byte_fallback (unigram_sp's pieces plus the 256 byte pieces), Nmt and
    NFKC; Punctuation (merged_with_next) then Metaspace(never, split=False); decoders
    Metaspace(never), ByteFallback, Fuse."""
    d = load_json("unigram_sp")
    low = min(s for _, s in d["model"]["vocab"])
    d["model"]["vocab"] += [[f"<0x{b:02X}>", low - 1.0] for b in range(256)]
    d["model"]["byte_fallback"] = True
    tok = from_dict(d)
    tok.normalizer = N.Sequence([N.Nmt(), N.NFKC()])
    tok.pre_tokenizer = P.Sequence([P.Punctuation(behavior="merged_with_next"),
                                    P.Metaspace(replacement="▁", prepend_scheme="never",
                                                split=False)])
    tok.decoder = D.Sequence([D.Metaspace(replacement="▁", prepend_scheme="never"),
                              D.ByteFallback(), D.Fuse()])
    return tok


def wordpiece_opts(corpus):
    """WordPiece with prefix "@@" and max_input_chars_per_word 12; BertNormalizer with
    strip_accents and no lowercase nor CJK spacing; Whitespace, Digits (individual);
    BertProcessing; WordPiece decoder without cleanup."""
    d = load_json("wordpiece_cased")
    d["model"]["vocab"] = {("@@" + k[2:] if k.startswith("##") else k): v
                           for k, v in d["model"]["vocab"].items()}
    d["model"]["continuing_subword_prefix"] = "@@"
    d["model"]["max_input_chars_per_word"] = 12
    tok = from_dict(d)
    tok.normalizer = N.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                      strip_accents=True, lowercase=False)
    tok.pre_tokenizer = P.Sequence([P.Whitespace(), P.Digits(individual_digits=True)])
    tok.decoder = D.WordPiece(prefix="@@", cleanup=False)
    return tok


DERIVED = {"wordlevel_scripts": wordlevel_scripts, "wordlevel_ctc": wordlevel_ctc,
           "wordlevel_fixed": wordlevel_fixed, "bpe_bytenorm": bpe_bytenorm,
           "unigram_first": unigram_first, "unigram_bytes": unigram_bytes,
           "wordpiece_opts": wordpiece_opts}
TRAINED = {"bpe_suffix": (train_bpe_suffix, finish_bpe_suffix),
           "bpe_fallback": (train_bpe_fallback, finish_bpe_fallback)}
NAMES = list(DERIVED) + list(TRAINED)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--retrain", action="store_true",
                    help="train bpe_suffix and bpe_fallback again (changes their ids)")
    args = ap.parse_args()
    corpus_all = [json.loads(l) for l in open(MAIN / "corpus.jsonl", encoding="utf-8")]
    corpus = [r for r in corpus_all if r["kind"] not in SKIP_KINDS]
    OUT.mkdir(exist_ok=True)
    toks = {}
    for name in NAMES:
        p = OUT / name / "tokenizer.json"
        if name in TRAINED:
            train, finish = TRAINED[name]
            if p.is_file() and not args.retrain:
                print(f"keeping {name}/tokenizer.json (--retrain to train it again)")
                tok = Tokenizer.from_file(str(p))
            else:
                print(f"training {name}")
                tok = train(corpus)
            tok = finish(tok)
        else:
            tok = DERIVED[name](corpus)
        (OUT / name).mkdir(exist_ok=True)
        with open(p, "w", encoding="utf-8", newline="\n") as f:
            f.write(tok.to_str(pretty=False))
        toks[name] = Tokenizer.from_file(str(p))  # expected outputs from the file on disk
    for name in NAMES:
        print(f"encoding corpus with {name}", flush=True)
        write_jsonl(OUT / name / "expected.jsonl", expected_for(toks[name], corpus))
    files = {}
    for p in sorted(OUT.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            files[str(p.relative_to(OUT))] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    manifest = {
        "generator": "tools/make_tokenizer_component_fixtures.py",
        "versions": {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__},
        "corpus": "../corpus.jsonl without the lines of kind " + ", ".join(sorted(SKIP_KINDS)),
        "skip_kinds": sorted(SKIP_KINDS),
        "corpus_lines": len(corpus),
        "encode_errors": {n: sum(1 for l in open(OUT / n / "expected.jsonl", encoding="utf-8")
                                 if '"error"' in l[:40]) for n in NAMES},
        "tokenizers": {n: describe_tokenizer(toks[n]) for n in NAMES},
        "files": files,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT}: {len(NAMES)} tokenizers, {len(corpus)} lines, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
