#!/usr/bin/env python3
"""Generate the late-chunking fixtures under tests/fixtures/chunks/.

1. lf_tok/: a tiny random LongformerModel (hidden 32, 2 heads, 2 layers, attention_window
   [4, 8], max_position_embeddings 258: 256 tokens) with the byte-level BPE tokenizer of
   tests/fixtures/embed/lf_seqcls_tok (RoBERTa template).
2. cases.json: requests with "chunks" to /embed and /v1/embeddings on lf_tok and on
   tests/fixtures/embed/st_tiny (a BERT model, served with --window 8 on inputs longer than
   its 64 positions, so with Longformer attention), and what the server must answer: for
   each input the document vector and each chunk's span, token count, truncation flag and
   vector, computed here from Hugging Face's own last_hidden_state of the whole document
   (or of each long_document window) pooled over the chunk's tokens, then L2-normalised.

The reference re-implements the server's documented rules independently (README "Late
chunking"): a chunk's tokens run from the first content token whose character span meets
the chunk's to the last; the chunkers; long_document windows (window W, stride S: content
C = W - specials, windows start every S content tokens); a chunk is pooled from the window
that holds it whole with the largest margin to a window edge (an edge at the document's
start or end counts as unbounded), else each token from the window where it is most
central. The BERT reference is a LongformerModel converted from st_tiny's weights as
tools/make_fixtures.py converts bert_tiny (global q/k/v = q/k/v, position table tiled),
with global attention on position 0 as the server sets it for BERT (or the explicit mask).

CPU, float32, eval mode, fixed seeds. Regenerate:
    /tmp/hfvenv/bin/python tools/make_chunk_fixtures.py
(versions: tools/requirements-fixtures.txt; they are recorded in cases.json)
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer
from transformers import BertModel, LongformerConfig, LongformerModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures  # noqa: E402  (the BERT -> Longformer conversion of the bert golden fixtures)

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures"
OUT = FIX / "chunks"
ST = FIX / "embed" / "st_tiny"
BPE = FIX / "embed" / "lf_seqcls_tok" / "tokenizer.json"
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "numpy": np.__version__}

SPACE = " \t\n\v\f\r"


# ---- the rules the server documents, written again here ---------------------------------

def span_tokens(ts, te, start, end):
    hit = [t for t in range(len(ts))
           if (start <= ts[t] < end if ts[t] == te[t] else ts[t] < end and te[t] > start)]
    return (hit[0], hit[-1] + 1) if hit else (0, 0)


def trimmed(text, a, b):
    while a < b and text[a] in SPACE:
        a += 1
    while b > a and text[b - 1] in SPACE:
        b -= 1
    return [(a, b)] if a < b else []


def by_sentences(text, k):
    out, group, n, i = [], 0, 0, 0
    while i < len(text):
        if text[i] not in ".!?":
            i += 1
            continue
        e = i
        while e < len(text) and text[e] in ".!?":
            e += 1
        while e < len(text) and text[e] in "\"')]":
            e += 1
        if e < len(text) and text[e] not in SPACE:
            i = e
            continue
        n += 1
        if n == k:
            out += trimmed(text, group, e)
            group, n = e, 0
        i = e
    return out + trimmed(text, group, len(text))


def by_separator(text, sep):
    out, a = [], 0
    while True:
        i = text.find(sep, a)
        if i < 0:
            return out + trimmed(text, a, len(text))
        out += trimmed(text, a, i)
        a = i + len(sep)


def by_tokens(ts, te, n, overlap):
    out, t0 = [], 0
    while t0 < len(ts):
        t1 = min(t0 + n, len(ts))
        out.append((ts[t0], te[t1 - 1], t0, t1))
        if t1 == len(ts):
            break
        t0 += n - overlap
    return out


def best_window(wins, ntok, t0, t1):
    best, margin = -1, -1
    for w, (c0, c1) in enumerate(wins):
        if c0 > t0 or c1 < t1:
            continue
        left = float("inf") if c0 == 0 else t0 - c0
        right = float("inf") if c1 == ntok else c1 - t1
        if min(left, right) > margin:
            best, margin = w, min(left, right)
    return best


def pool(x, how):
    x = x.astype(np.float64)
    return {"mean": x.mean(0), "cls": x[0], "max": x.max(0)}[how]


def l2(v):
    return v / max(np.linalg.norm(v), 1e-12)


# ---- models ----------------------------------------------------------------------------------

def make_lf_tok():
    d = OUT / "lf_tok"
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1212)
    cfg = LongformerConfig(vocab_size=320, hidden_size=32, num_attention_heads=2,
                           num_hidden_layers=2, intermediate_size=64, attention_window=[4, 8],
                           max_position_embeddings=258, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, sep_token_id=2, type_vocab_size=1, layer_norm_eps=1e-5,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = LongformerModel(cfg).eval()
    g = torch.Generator().manual_seed(1212)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)
    model.save_pretrained(d, safe_serialization=True)
    shutil.copy(BPE, d / "tokenizer.json")
    return LongformerModel.from_pretrained(d, dtype=torch.float32).eval()


def bert_as_longformer(window, rows):
    src = BertModel.from_pretrained(ST, dtype=torch.float32, attn_implementation="eager").eval()
    table = src.embeddings.position_embeddings.weight.detach()
    return make_fixtures.longformer_from_encoder(src, window, rows,
                                                 make_fixtures.bert_positions_tiled(table, rows))


# ---- the reference answer of one request -----------------------------------------------------

class Served:
    def __init__(self, name, model, tok_path, max_tokens, bert, pooling):
        self.name, self.model, self.bert, self.pooling = name, model, bert, pooling
        self.tok, self.max_tokens = Tokenizer.from_file(str(tok_path)), max_tokens

    def hidden(self, ids, glob):
        ids_t = torch.tensor([ids])
        kw = {"attention_mask": torch.ones_like(ids_t)}
        if self.bert:
            kw["position_ids"] = torch.arange(len(ids)).unsqueeze(0)
            kw["token_type_ids"] = torch.zeros_like(ids_t)
        if glob is not None:
            kw["global_attention_mask"] = torch.tensor([glob])
        elif self.bert:  # the server's automatic global token for BERT: position 0
            kw["global_attention_mask"] = torch.tensor([[1] + [0] * (len(ids) - 1)])
        with torch.no_grad():
            return self.model(ids_t, **kw).last_hidden_state[0].numpy()


def encode(served, text, truncate, max_tokens, direction="right"):
    tok = served.tok
    tok.no_truncation()
    if truncate:
        tok.enable_truncation(max_tokens, direction=direction)
    enc = tok.encode(text)
    tok.no_truncation()
    full = tok.encode(text)
    return enc, full


def content(enc):
    sp = enc.special_tokens_mask
    lead = 0
    while lead < len(sp) and sp[lead]:
        lead += 1
    trail = 0
    while trail < len(sp) - lead and sp[len(sp) - 1 - trail]:
        trail += 1
    idx = list(range(lead, len(sp) - trail))
    return lead, trail, [enc.offsets[t][0] for t in idx], [enc.offsets[t][1] for t in idx]


def reference(served, text, chunks, body, spans=None, max_tokens=None):
    truncate = bool(body.get("truncate"))
    ga = body.get("global_attention")
    pooling = body.get("pooling", served.pooling)
    left = body.get("truncation_direction") == "left"
    enc, full = encode(served, text, truncate, max_tokens or served.max_tokens,
                       "left" if left else "right")
    dim = body.get("dimensions")
    lead, trail, ts, te = content(enc)
    n = len(ts)
    if "tokens" in chunks if isinstance(chunks, dict) else False:
        ck = by_tokens(ts, te, chunks["tokens"], chunks.get("overlap", 0))
    else:
        if isinstance(chunks, dict) and "sentences" in chunks:
            sp = by_sentences(text, chunks["sentences"])
        elif isinstance(chunks, dict):
            sp = by_separator(text, chunks["separator"])
        else:
            sp = spans
        ck = [(s, e) + span_tokens(ts, te, s, e) for s, e in sp]
    cut = [False] * len(ck)
    if len(enc.ids) != len(full.ids) and not (isinstance(chunks, dict) and "tokens" in chunks):
        _, _, fs, fe = content(full)
        keep0 = len(fs) - n if left else 0
        for k, (s, e, _, _) in enumerate(ck):
            f0, f1 = span_tokens(fs, fe, s, e)
            cut[k] = f1 > f0 and (f0 < keep0 or f1 > keep0 + n)
    # windows, as the server cuts them
    ids = enc.ids
    ld = body.get("long_document")
    C = n
    S = n
    if ld:
        C = ld["window"] - lead - trail
        S = ld.get("stride") or (C + 1) // 2
    nwin = 1 if n <= C else 1 + (n - C + S - 1) // S
    wins, states, pooled, ntoks = [], [], [], []
    for w in range(nwin):
        c0, c1 = (0, n) if nwin == 1 else (w * S, min(w * S + C, n))
        row = ids[:lead] + ids[lead + c0:lead + c1] + ids[len(ids) - trail:]
        glob = None
        if ga:
            glob = [0] * len(row)
            if ga.get("cls"):
                glob[0] = 1
            if ga.get("chunk_starts"):
                for (_, _, t0, t1) in ck:
                    if t1 > t0 and c0 <= t0 < c1:
                        glob[lead + t0 - c0] = 1
        h = served.hidden(row, glob)
        wins.append((c0, c1))
        states.append(h)
        pooled.append(pool(h, pooling))
        ntoks.append(len(row))
    if nwin == 1:
        doc = pooled[0]
    else:
        doc = sum(nt * p for nt, p in zip(ntoks, pooled)) / sum(ntoks)
    norm = l2 if body.get("normalize", True) else (lambda v: v)
    out = {"embedding": norm(doc.astype(np.float32).astype(np.float64)[:dim]).tolist(),
           "chunks": []}
    for k, (s, e, t0, t1) in enumerate(ck):
        c = {"start": s, "end": e, "tokens": t1 - t0, "truncated": cut[k], "embedding": None}
        if body.get("return_text"):
            c["text"] = text[s:e]
        if t1 > t0:
            w = best_window(wins, n, t0, t1)
            if w >= 0:
                x = states[w][lead + t0 - wins[w][0]:lead + t1 - wins[w][0]]
                c["window"] = w
            else:
                rows = []
                for t in range(t0, t1):
                    tw = best_window(wins, n, t, t + 1)
                    rows.append(states[tw][lead + t - wins[tw][0]])
                x = np.stack(rows)
                c["window"] = "per-token"
            c["embedding"] = norm(pool(x, pooling).astype(np.float32).astype(np.float64)[:dim]).tolist()
        out["chunks"].append(c)
    out["tokens"] = len(enc.ids)
    out["windows"] = nwin
    return out


# ---- the documents ---------------------------------------------------------------------------

DOC = ("The Lessor leases the flat to the Tenant. It is let for one year.\n\n"
       "The Tenant pays the rent monthly. The agreement ends on the last day!\n\n"
       "Either party may end it early? Only with notice.")
UNI = "Café déjà vu: 日本語 text 🎉 and naïve résumé. Ünïcödé spans count code points."
LONG = ("Longformer reads whole documents. Its attention is a sliding window. "
        "A few tokens are global! The cost grows linearly? Yes, with the length. "
        "Contracts, papers and notes fit. Each chunk keeps its context.")


def cases(lf, st):
    out = []

    def add(name, served, route, body, texts, spans=None, flags=None):
        chunks = body["chunks"]
        want = []
        for i, t in enumerate(texts):
            sp = spans[i] if spans and isinstance(spans[0][0], list) else spans
            mt = int(flags[flags.index("--max-input-tokens") + 1]) if flags and \
                "--max-input-tokens" in flags else None
            want.append(reference(served, t, chunks, body, sp, mt))
        out.append({"name": name, "model": served.name, "route": route, "body": body,
                    "flags": flags or [], "expected": want})

    # explicit spans: an empty one, whitespace only, overlapping, one token (one character
    # inside a word), a span ending mid-word, the whole text
    spans = [[0, 10], [4, 4], [40, 42], [5, 30], [20, 21], [61, 66], [0, len(DOC)], [42, 44]]
    add("lf_spans", lf, "/embed", {"inputs": DOC, "chunks": spans, "return_text": True}, [DOC],
        spans)
    uspans = [[0, 4], [5, 9], [14, 17], [23, 24], [25, 30], [34, 46], [48, 55], [0, len(UNI)]]
    add("lf_unicode_spans", lf, "/embed", {"inputs": UNI, "chunks": uspans, "return_text": True},
        [UNI], uspans)
    add("lf_unicode_max_nonorm", lf, "/embed",
        {"inputs": UNI, "chunks": uspans, "pooling": "max", "normalize": False}, [UNI], uspans)
    add("lf_tokens", lf, "/embed", {"inputs": DOC[:120], "chunks": {"tokens": 7, "overlap": 2}},
        [DOC[:120]])
    add("lf_sentences", lf, "/embed", {"inputs": DOC[:110], "chunks": {"sentences": 2},
                                       "pooling": "cls"}, [DOC[:110]])
    add("lf_separator_openai", lf, "/v1/embeddings",
        {"input": [DOC, DOC[66:]], "chunks": {"separator": "\n\n"}, "return_text": True},
        [DOC, DOC[66:]])
    add("lf_chunk_starts", lf, "/embed",
        {"inputs": DOC[:100], "chunks": {"sentences": 1},
         "global_attention": {"cls": True, "chunk_starts": True}}, [DOC[:100]])
    # long documents: windows of 40 tokens every 16 content tokens; sentence chunks cross
    # window boundaries; the whole text and a 60-character span fit no window whole
    long_spans = [[0, 33], [30, 90], [60, 62], [100, 140], [0, len(LONG)], [170, 200]]
    add("lf_long_spans", lf, "/embed",
        {"inputs": LONG, "chunks": long_spans, "long_document": {"window": 40, "stride": 16}},
        [LONG], long_spans)
    add("lf_long_sentences", lf, "/v1/embeddings",
        {"input": LONG, "chunks": {"sentences": 1}, "long_document": {"window": 40},
         "global_attention": {"chunk_starts": True}}, [LONG])
    # short chunks everywhere: most lie in two or three windows, and the most central one is
    # often not the first that holds them
    add("lf_long_tokens", lf, "/embed",
        {"inputs": LONG, "chunks": {"tokens": 3}, "long_document": {"window": 40, "stride": 16}},
        [LONG])
    trunc_spans = [[0, 20], [60, 120], [150, 190]]
    add("lf_truncated", lf, "/embed", {"inputs": LONG, "chunks": trunc_spans, "truncate": True},
        [LONG], trunc_spans, flags=["--max-input-tokens", "64"])
    add("lf_truncated_left_dims", lf, "/v1/embeddings",
        {"input": LONG, "chunks": trunc_spans, "truncate": True, "truncation_direction": "left",
         "dimensions": 12, "return_text": True}, [LONG], trunc_spans,
        flags=["--max-input-tokens", "64"])
    # BERT with Longformer attention (window 8) on inputs longer than its 64 positions
    add("bert_sentences", st, "/embed", {"inputs": LONG, "chunks": {"sentences": 2}}, [LONG],
        flags=["--window", "8"])
    add("bert_spans_batch", st, "/v1/embeddings",
        {"input": [LONG, DOC], "chunks": [long_spans, spans], "return_text": True},
        [LONG, DOC], [long_spans, spans], flags=["--window", "8"])
    add("bert_tokens_global", st, "/embed",
        {"inputs": DOC, "chunks": {"tokens": 9, "overlap": 3},
         "global_attention": {"cls": True, "chunk_starts": True}}, [DOC], flags=["--window", "8"])
    return out


def main():
    lf_model = make_lf_tok()
    lf = Served("lf_tok", lf_model, OUT / "lf_tok" / "tokenizer.json", 256, False, "mean")
    st = Served("st_tiny", bert_as_longformer(8, 512), ST / "tokenizer.json", 1 << 20, True,
                "mean")
    all_cases = cases(lf, st)
    for c in all_cases:
        for e in c["expected"]:
            assert e["tokens"] > 0
    doc = {"versions": VERSIONS,
           "note": "generated by tools/make_chunk_fixtures.py; vectors are HF last_hidden_state "
                   "pooled over each chunk's tokens, L2-normalised",
           "cases": all_cases}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    lines = ["# Late-chunking fixtures", "",
             "Generated by `tools/make_chunk_fixtures.py` (do not edit by hand); read by",
             "`tests/test_server_chunks.c`. `lf_tok/`: a tiny random LongformerModel (hidden 32,",
             "2 heads, 2 layers, attention_window [4, 8], 256 tokens) with the byte-level BPE",
             "tokenizer of `embed/lf_seqcls_tok`. `cases.json`: requests with `chunks` and the",
             "answers computed from Hugging Face's `last_hidden_state` (the module docstring of",
             "the script says how). `st_tiny` cases serve `embed/st_tiny` (BERT, 64 positions)",
             "with `--window 8` on inputs longer than 64 tokens; the reference is a",
             "LongformerModel converted from its weights.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ".", ""]
    for c in all_cases:
        e = c["expected"]
        lines.append(f"- `{c['name']}` ({c['model']}, `{c['route']}`"
                     f"{', ' + ' '.join(c['flags']) if c['flags'] else ''}): "
                     f"`chunks` {json.dumps(c['body']['chunks'])[:60]}; "
                     + "; ".join(f"input {i}: {x['tokens']} tokens, {x['windows']} window(s), "
                                 f"{len(x['chunks'])} chunks" for i, x in enumerate(e)) + ".")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    for c in all_cases:
        print(c["name"], [(e["tokens"], e["windows"], len(e["chunks"])) for e in c["expected"]],
              [ch.get("window") for e in c["expected"] for ch in e["chunks"]])


if __name__ == "__main__":
    main()
