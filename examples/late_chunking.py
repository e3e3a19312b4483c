#!/usr/bin/env python3
"""Index a document's chunks with longserve's late chunking and query them.

One request embeds the whole document once and returns a vector per chunk, each pooled
from token states that saw the whole document (so "it" and "the agreement" in chunk 7 still
know what they refer to). Queries are embedded with a plain /embed and ranked by cosine
(the vectors are L2-normalised, so a dot product). Needs only `requests`.

    python3 examples/late_chunking.py --url http://localhost:3000 --file contract.txt \\
        --chunks sentences=2 "When does the agreement end?" "Who pays the rent?"

--chunks: sentences=K, tokens=N[,overlap=M], separator=TEXT (\\n escapes allowed), or
spans=S:E,S:E (character offsets, Python string indices). --window W sends
"long_document": {"window": W} for documents longer than the model reads at once.
"""

import argparse
import sys

import requests


def chunk_spec(text):
    kind, _, arg = text.partition("=")
    if kind == "sentences":
        return {"sentences": int(arg)}
    if kind == "tokens":
        n, _, rest = arg.partition(",")
        spec = {"tokens": int(n)}
        if rest.startswith("overlap="):
            spec["overlap"] = int(rest[len("overlap="):])
        return spec
    if kind == "separator":
        return {"separator": arg.encode().decode("unicode_escape")}
    if kind == "spans":
        return [[int(a), int(b)] for a, b in (s.split(":") for s in arg.split(","))]
    raise SystemExit(f"--chunks {text!r}: sentences=K, tokens=N[,overlap=M], separator=S, spans=S:E,...")


def index_document(url, text, chunks, window=None, timeout=600):
    """The document's chunks: a list of {"start", "end", "text", "embedding"} (chunks without
    tokens, whose embedding is null, are left out), and the whole document's vector."""
    body = {"inputs": text, "chunks": chunks, "return_text": True}
    if window:
        body["long_document"] = {"window": window}
    r = requests.post(f"{url}/embed", json=body, timeout=timeout)
    r.raise_for_status()
    doc = r.json()[0]
    return [c for c in doc["chunks"] if c["embedding"] is not None], doc["embedding"]


def embed(url, texts, timeout=600):
    r = requests.post(f"{url}/embed", json={"inputs": texts}, timeout=timeout)
    r.raise_for_status()
    return r.json()


def rank(query_vec, chunks):
    """Chunk indices, best first, by cosine to the query (all vectors normalised)."""
    scores = [sum(q * c for q, c in zip(query_vec, ch["embedding"])) for ch in chunks]
    return sorted(range(len(chunks)), key=lambda k: -scores[k]), scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://localhost:3000")
    ap.add_argument("--file", required=True, help="the document (UTF-8 text)")
    ap.add_argument("--chunks", default="sentences=1")
    ap.add_argument("--window", type=int, help="long_document window (tokens)")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("queries", nargs="+")
    a = ap.parse_args()
    with open(a.file, encoding="utf-8") as f:
        text = f.read()
    chunks, _ = index_document(a.url, text, chunk_spec(a.chunks), a.window)
    print(f"indexed {len(chunks)} chunks of {len(text)} characters", file=sys.stderr)
    for q, qv in zip(a.queries, embed(a.url, a.queries)):
        order, scores = rank(qv, chunks)
        print(f"\n{q}")
        for k in order[:a.top]:
            c = chunks[k]
            assert text[c["start"]:c["end"]] == c["text"]  # offsets are Python string indices
            print(f"  {scores[k]:.3f}  [{c['start']}:{c['end']}]  {c['text'][:100]!r}")


if __name__ == "__main__":
    main()
