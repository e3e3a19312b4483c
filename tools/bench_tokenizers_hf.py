#!/usr/bin/env python3
"""Hugging Face `tokenizers` single-thread throughput on a 1 MB English text.

The reference numbers that longserve's own tokenizer benchmark is compared with.  For
each tokenizer in tests/fixtures/tokenizers/ (minilm, wordpiece_cased, bpe_roberta,
unigram_sp; --all adds unigram_t5, bpe_extras, bpe_split) it measures, best of N runs:

  mode=doc    tokenizer.encode(text)            the whole 1 MB as one string
  mode=lines  tokenizer.encode_batch(lines)     lines = text.split("\\n")

both with add_special_tokens=True, no truncation, no padding, and prints

  RESULT hf <name> mode=<doc|lines> mb_s=<MB/s> tokens=<n> best_s=<seconds>

MB = 10^6 bytes; throughput is always the full file size (1,000,000 bytes, newlines
included) divided by the best wall time.  Single thread: RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false are set before `tokenizers` is imported.

The text: /tmp/ls-bench-1mb.txt (or --text PATH).  If the file is absent it is built
deterministically from the Python standard library's English documentation (the
pydoc topics, the licence, then the docstrings of the top-level modules in name
order) and cut to exactly 1,000,000 bytes.  With CPython 3.11.7 its sha256 is
BENCH_SHA256 below; the C benchmark must read the same file.

Usage:
    /tmp/hfvenv/bin/python tools/bench_tokenizers_hf.py [--all] [--repeat 5] [--text PATH]
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import ast
import hashlib
import sys
import sysconfig
import time
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "tokenizers"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
DEFAULT_TEXT = Path("/tmp/ls-bench-1mb.txt")
SIZE = 1_000_000
BENCH_SHA256 = "ece0c6fa77c030d9d9e25fc3cd175bfdd3bfcb472165fbb07596fdc1e01a1914"  # CPython 3.11.7
NAMES = ["minilm", "wordpiece_cased", "bpe_roberta", "unigram_sp"]
MORE = ["unigram_t5", "bpe_extras", "bpe_split"]


def docstrings(path):
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    out = []
    for node in [tree] + [n for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]:
        d = ast.get_docstring(node, clean=True)
        if d:
            out.append(d)
    return out


def build_text():
    ns = {}
    exec(compile((STDLIB / "pydoc_data" / "topics.py").read_text(encoding="utf-8"),
                 "topics.py", "exec"), ns)
    topics = ns["topics"]
    parts = [topics[k] for k in sorted(topics)]
    parts.append((STDLIB / "LICENSE.txt").read_text(encoding="utf-8"))
    n = sum(len(p.encode("utf-8")) + 2 for p in parts)
    for p in sorted(STDLIB.glob("*.py")):
        if n > SIZE:
            break
        for d in docstrings(p):
            parts.append(d)
            n += len(d.encode("utf-8")) + 2
    b = "\n\n".join(parts).encode("utf-8")[:SIZE]
    text = b.decode("utf-8", errors="ignore")
    text += " " * (SIZE - len(text.encode("utf-8")))
    assert len(text.encode("utf-8")) == SIZE
    return text


def load_text(path):
    if not path.exists():
        text = build_text()
        path.write_text(text, encoding="utf-8", newline="")
        print(f"wrote {path}")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if path == DEFAULT_TEXT and sha != BENCH_SHA256:
        print(f"warning: {path} has sha256 {sha}, not the CPython 3.11.7 reference "
              f"{BENCH_SHA256}; results are not comparable with other machines' numbers",
              file=sys.stderr)
    return data.decode("utf-8"), sha


def best_of(fn, repeat):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default=str(DEFAULT_TEXT))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="also the pipeline-coverage tokenizers")
    ap.add_argument("--fixtures", default=str(FIXTURES))
    args = ap.parse_args()

    text, sha = load_text(Path(args.text))
    nbytes = len(text.encode("utf-8"))
    lines = text.split("\n")
    print(f"text {args.text}: {nbytes} bytes, {len(text)} characters, {len(lines)} lines, "
          f"sha256 {sha[:16]}...; tokenizers {tokenizers.__version__}, "
          f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}, best of {args.repeat}")
    for name in NAMES + (MORE if args.all else []):
        tok = Tokenizer.from_file(str(Path(args.fixtures) / name / "tokenizer.json"))
        tok.no_truncation()  # the MiniLM file carries truncation=128 and padding=128
        tok.no_padding()
        tok.encode("warm up")
        t, enc = best_of(lambda: tok.encode(text, add_special_tokens=True), args.repeat)
        print(f"RESULT hf {name} mode=doc mb_s={nbytes / 1e6 / t:.2f} tokens={len(enc.ids)} "
              f"best_s={t:.4f}", flush=True)
        t, encs = best_of(lambda: tok.encode_batch(lines, add_special_tokens=True), args.repeat)
        print(f"RESULT hf {name} mode=lines mb_s={nbytes / 1e6 / t:.2f} "
              f"tokens={sum(len(e.ids) for e in encs)} best_s={t:.4f}", flush=True)


if __name__ == "__main__":
    main()
