#!/usr/bin/env python3
"""Generate longserve's Reformer reference fixtures under tests/fixtures/reformer/.

Same conventions as tools/make_fixtures.py (tests/fixtures/README.md): tiny, randomly
initialised Hugging Face Reformer models (ReformerModel and every task head) saved with
``save_pretrained``; for every case a KServe v2 request body and the Hugging Face outputs
for exactly that request (float32 safetensors, tensors named like the HF output fields);
``index.txt`` lists the cases as ``<model> <case> <options>``.  Also writes

- ``generate.json``: greedy ``generate`` of a byte-level LM, with and without the
  incremental LSH cache (hf-semantics B5.11);
- ``randn.safetensors``: ``torch.manual_seed(s); torch.randn(n)`` for torch's two float32
  CPU kernels (AVX2 and the scalar one), for engine/torch_rng.c (hf-semantics B12).

LSH rotations come from torch's CPU generator, and torch.randn's float32 kernel depends on
the CPU capability torch runs with, so this script pins ``ATEN_CPU_CAPABILITY=avx2`` (and
stops if torch does not run at AVX2): the fixtures are the same on every x86-64 machine
with AVX2, and their rotations are engine/torch_rng.c's ENG_RANDN_PATH_AVX2.

Everything runs on the CPU in float32, eval mode, 2 threads, fixed seeds.
Written against (see tools/requirements-fixtures.txt):
    torch 2.15.0, transformers 5.24.0, safetensors 0.8.0, numpy 2.4.6

Regenerate:
    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/hfvenv/bin/python tools/make_reformer_fixtures.py
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
if __name__ == "__main__" and os.environ.get("ATEN_CPU_CAPABILITY") is None:
    os.environ["ATEN_CPU_CAPABILITY"] = "avx2"

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    ReformerConfig,
    ReformerForMaskedLM,
    ReformerForQuestionAnswering,
    ReformerForSequenceClassification,
    ReformerModel,
    ReformerModelWithLMHead,
)
from transformers.models.reformer.modeling_reformer import LSHSelfAttention

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import check_close, dir_size, pad_rows, reinit_weights  # noqa: E402

torch.set_num_threads(2)
transformers.utils.logging.disable_progress_bar()

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "reformer"

PAD, UNK, EOS = 0, 1, 2  # ReformerConfig defaults: pad 0, eos 2
FIRST_ORDINARY = 3       # ordinary tokens are drawn from [3, vocab)

INDEX = []    # (model, case, options)
SUMMARY = []  # (model, case, B, L, Lp, dtype, {output: shape}, bytes, hashing)
NOTES = {}    # model -> description, (model, case) -> description
MODELS = []   # model names in order of writing


# --------------------------------------------------------------------------
# Cases, requests, references
# --------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor = None
    datatype: str = "INT64"  # request datatype for every input: INT64 or INT32
    hash_seed: int = None    # per-request override (set on every LSH layer before the forward)
    num_hashes: int = None   # per-request override (the forward's num_hashes= argument)
    note: str = ""

    def request_inputs(self):
        return {k: v for k, v in [("input_ids", self.input_ids),
                                  ("attention_mask", self.attention_mask)] if v is not None}

    def parameters(self):
        return {k: v for k, v in [("hash_seed", self.hash_seed),
                                  ("num_hashes", self.num_hashes)] if v is not None}

    def options(self):
        p = self.parameters()
        return ",".join(f"{k}={v}" for k, v in p.items()) if p else "-"


def request_body(case):
    inputs = []
    for name, t in case.request_inputs().items():
        inputs.append({"name": name, "shape": list(t.shape), "datatype": case.datatype,
                       "data": [int(x) for x in t.reshape(-1).tolist()]})
    body = {"inputs": inputs}
    if case.parameters():
        body["parameters"] = case.parameters()
    return body


OUTPUT_NAMES = {
    "ReformerModel": ["last_hidden_state"],
    "ReformerModelWithLMHead": ["logits"],
    "ReformerForMaskedLM": ["logits"],
    "ReformerForSequenceClassification": ["logits"],
    "ReformerForQuestionAnswering": ["start_logits", "end_logits"],
}


def lsh_layers(model):
    return [m for m in model.modules() if isinstance(m, LSHSelfAttention)]


def set_hash_seed(model, seed):
    """The runtime override: HF reads LSHSelfAttention.hash_seed before every hashing."""
    for m in lsh_layers(model):
        m.hash_seed = seed


DEFAULT_HASH_SEED = 0  # engine.h ENG_DEFAULT_HASH_SEED


def run_reference(model, case):
    """HF outputs for exactly the request (its inputs and its parameters)."""
    saved = [m.hash_seed for m in lsh_layers(model)]
    if case.hash_seed is not None:
        set_hash_seed(model, case.hash_seed)
    kwargs = dict(case.request_inputs())
    if case.num_hashes is not None:
        kwargs["num_hashes"] = case.num_hashes
    try:
        # a model without hash_seed hashes with the global generator: longserve's default
        # stream is this one (ENG_DEFAULT_HASH_SEED); seeded layers re-seed anyway
        torch.manual_seed(DEFAULT_HASH_SEED)
        with torch.no_grad():
            out = model(**kwargs, use_cache=False, return_dict=True)
    finally:
        for m, s in zip(lsh_layers(model), saved):
            m.hash_seed = s
    return {n: getattr(out, n).detach().to(torch.float32).contiguous()
            for n in OUTPUT_NAMES[type(model).__name__]}


class HashProbe:
    """Records every LSH hashing of a model: distinct buckets and the smallest argmax margin.

    The margin (gap between the best and second-best rotated coordinate, over real tokens)
    says how far an engine's qk may drift before a bucket flips.
    """

    def __init__(self, model):
        self.calls = []
        for m in lsh_layers(model):
            m._hash_vectors = self._wrap(m, m._hash_vectors)

    def _wrap(self, m, orig):
        def hashed(vectors, num_hashes, attention_mask, increase_num_buckets=False):
            before = torch.get_rng_state()
            out = orig(vectors, num_hashes, attention_mask, increase_num_buckets)
            after = torch.get_rng_state()
            torch.set_rng_state(before)
            if m.hash_seed is not None:
                torch.manual_seed(m.hash_seed)
            factors = [m.num_buckets] if isinstance(m.num_buckets, int) else list(m.num_buckets)
            rot = torch.randn((m.num_attention_heads, vectors.shape[-1], num_hashes,
                               sum(factors) // 2), dtype=vectors.dtype)
            torch.set_rng_state(after)
            y = torch.einsum("bmtd,mdhr->bmhtr", vectors, rot)
            real = (torch.ones(vectors.shape[0], vectors.shape[2], dtype=torch.bool)
                    if attention_mask is None else attention_mask.to(torch.bool))
            margin, start = float("inf"), 0
            for f in factors:
                s = y[..., start:start + f // 2]
                start += f // 2
                top2 = torch.cat([s, -s], dim=-1).topk(2, dim=-1).values
                gap = (top2[..., 0] - top2[..., 1])  # [b, m, h, t]
                gap = gap.permute(0, 3, 1, 2)[real]
                margin = min(margin, gap.min().item())
            self.calls.append({"layer": m.layer_idx, "buckets": out.detach().clone(),
                               "distinct": len(torch.unique(out)), "margin": margin,
                               "rotations": rot.numel()})
            return out
        return hashed

    def take(self):
        calls, self.calls = self.calls, []
        return calls


def hashing_summary(calls):
    if not calls:
        return "no hashing"
    d = "/".join(str(c["distinct"]) for c in calls)
    margin = min(c["margin"] for c in calls)
    return f"{len(calls)} LSH hashings, distinct offset buckets {d}, min margin {margin:.2e}"


def padded_length(cfg, L):
    layers = set(cfg.attn_layers)
    if layers == {"lsh"}:
        lcm = mn = cfg.lsh_attn_chunk_length
    elif layers == {"local"}:
        lcm = mn = cfg.local_attn_chunk_length
    else:
        lcm = int(np.lcm(cfg.lsh_attn_chunk_length, cfg.local_attn_chunk_length))
        mn = min(cfg.lsh_attn_chunk_length, cfg.local_attn_chunk_length)
    return L + (lcm - L % lcm) if (L % lcm != 0 and L > mn) else L


def write_case(model_name, case, outputs, cfg, calls):
    cases_dir = OUT / model_name / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    req = cases_dir / f"{case.name}.request.json"
    exp = cases_dir / f"{case.name}.expected.safetensors"
    req.write_text(json.dumps(request_body(case), separators=(",", ":")) + "\n")
    save_file(outputs, str(exp))
    INDEX.append((model_name, case.name, case.options()))
    B, L = case.input_ids.shape
    SUMMARY.append((model_name, case.name, B, L, padded_length(cfg, L), case.datatype,
                    {k: list(v.shape) for k, v in outputs.items()},
                    req.stat().st_size + exp.stat().st_size, hashing_summary(calls)))
    NOTES[(model_name, case.name)] = case.note


def reformer_config(**kw):
    base = dict(hidden_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
                local_attention_probs_dropout_prob=0.0, pad_token_id=PAD, eos_token_id=EOS,
                chunk_size_lm_head=0, chunk_size_feed_forward=0)
    base.update(kw)
    return ReformerConfig(**base)


def build(name, cls, cfg, seed, note):
    """A model of `cls` with weights re-drawn from `seed`, saved to OUT/name."""
    NOTES[name] = note
    MODELS.append(name)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    reinit_weights(model, seed)
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    saved = json.loads((d / "config.json").read_text())
    assert saved["architectures"] == [cls.__name__], saved["architectures"]
    assert saved.get("hash_seed") == cfg.hash_seed
    return model


def emit_cases(model, name, cases, check=None):
    """Compute, verify (reloaded model, and a second run) and write every case.

    `check(case, calls)` may assert what the case claims to exercise.
    """
    cls = type(model)
    reloaded = cls.from_pretrained(OUT / name, dtype=torch.float32).eval()
    probe = HashProbe(model)
    for case in cases:
        want = run_reference(model, case)
        calls = probe.take()
        again = run_reference(model, case)
        probe.take()
        for k in want:
            assert torch.equal(want[k], again[k]), f"{name}/{case.name}: not reproducible"
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want)
        if check:
            check(case, calls)
        expect_hashing(model.config, case, calls)
        write_case(name, case, want, model.config, calls)


def expect_hashing(cfg, case, calls):
    """LSH layers hash iff the padded length exceeds the LSH chunk (B5.2)."""
    n_lsh = cfg.attn_layers.count("lsh")
    Lp = padded_length(cfg, case.input_ids.shape[1])
    want = n_lsh if Lp > (cfg.lsh_attn_chunk_length or 0) else 0
    assert len(calls) == want, f"{case.name}: {len(calls)} hashings, expected {want}"
    for c in calls:
        assert c["distinct"] > 1, f"{case.name}: a single bucket"


def tokens(gen, n, vocab):
    return torch.randint(FIRST_ORDINARY, vocab, (n,), generator=gen).tolist()


def rows(gen, lengths, vocab):
    """Right-padded rows of random ordinary tokens: (input_ids, attention_mask)."""
    return pad_rows([tokens(gen, n, vocab) for n in lengths], PAD)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

def make_lsh_enc():
    name = "rf_lsh_enc"
    cfg = reformer_config(
        attn_layers=["lsh", "lsh", "lsh"], is_decoder=False, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=64, vocab_size=300,
        hidden_act="relu", num_buckets=8, num_hashes=2, lsh_attn_chunk_length=8,
        lsh_num_chunks_before=1, lsh_num_chunks_after=1, axial_pos_embds=True,
        axial_pos_shape=[8, 16], axial_pos_embds_dim=[16, 16], max_position_embeddings=128,
        hash_seed=7)
    model = build(name, ReformerModel, cfg, 1001,
                  "ReformerModel, is_decoder False, 3 LSH layers (LSH only), hidden 32, 2 heads "
                  "x 16, FF 64 relu, vocab 300, num_buckets 8 (int), num_hashes 2, lsh chunk 8 "
                  "with 1 chunk before and 1 after, axial positions [8, 16] / dims [16, 16], "
                  "max_pos 128, hash_seed 7 in config.json.")
    gen = torch.Generator().manual_seed(2001)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [5], V)
    cases.append(Case("short5_nomask", ids,
                      note="B=1, L=5 < chunk 8: standard self-attention, no hashing; no mask."))
    ids, am = rows(gen, [8], V)
    cases.append(Case("eq_chunk8", ids, am,
                      note="B=1, L=8 == chunk: still the no-hashing path; all-ones mask."))
    ids, am = rows(gen, [64, 41], V)
    cases.append(Case("many64_padded", ids, am,
                      note="B=2, L=64 = 8 chunks, rows 64/41 (row 1 zero-padded): padding "
                           "bucket, masked keys, wrap-around both ways."))
    ids, _ = rows(gen, [45], V)
    cases.append(Case("autopad45_nomask", ids,
                      note="B=1, L=45 (not a multiple of 8): HF pads to 48 and creates a mask, "
                           "so the padding bucket is active; no mask in the request."))
    ids, am = rows(gen, [32, 32], V)
    cases.append(Case("hashes3_int32", ids, am, datatype="INT32", num_hashes=3,
                      note="B=2, L=32 (4 chunks), per-request num_hashes 3 (config says 2); "
                           "INT32."))
    emit_cases(model, name, cases)


def make_local_mlm():
    name = "rf_local_mlm"
    cfg = reformer_config(
        attn_layers=["local", "local"], is_decoder=False, hidden_size=32,
        num_attention_heads=4, attention_head_size=8, feed_forward_size=64, vocab_size=120,
        hidden_act="gelu", local_attn_chunk_length=8, local_num_chunks_before=1,
        local_num_chunks_after=1, axial_pos_embds=False, max_position_embeddings=96)
    model = build(name, ReformerForMaskedLM, cfg, 1002,
                  "ReformerForMaskedLM, is_decoder False, 2 local layers (local only), hidden "
                  "32, 4 heads x 8, FF 64 gelu, vocab 120, local chunk 8 with 1 before and 1 "
                  "after (non-causal wrap-around is attended), plain position embedding "
                  "(axial_pos_embds False, max_pos 96), no hash_seed (no LSH).")
    gen = torch.Generator().manual_seed(2002)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [6], V)
    cases.append(Case("short6_nomask", ids, note="B=1, L=6 < chunk: full attention; no mask."))
    ids, am = rows(gen, [8], V)
    cases.append(Case("eq_chunk8_int32", ids, am, datatype="INT32",
                      note="B=1, L=8 == chunk; INT32."))
    ids, am = rows(gen, [48, 30], V)
    cases.append(Case("many48_padded", ids, am,
                      note="B=2, L=48 = 6 chunks, rows 48/30: key padding mask; chunk 0 sees "
                           "the last chunk."))
    ids, _ = rows(gen, [37], V)
    cases.append(Case("autopad37_nomask", ids,
                      note="B=1, L=37: HF pads to 40 (mask created); no mask in the request."))
    emit_cases(model, name, cases)


def make_mixed_lm():
    name = "rf_mixed_lm"
    cfg = reformer_config(
        attn_layers=["local", "lsh", "local", "lsh"], is_decoder=True, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=64, vocab_size=200,
        hidden_act="relu", num_buckets=[2, 4], num_hashes=3, lsh_attn_chunk_length=8,
        lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=4,
        local_num_chunks_before=1, local_num_chunks_after=0, axial_pos_embds=True,
        axial_pos_shape=[8, 16], axial_pos_embds_dim=[12, 20], max_position_embeddings=128,
        hash_seed=11)
    model = build(name, ReformerModelWithLMHead, cfg, 1003,
                  "ReformerModelWithLMHead, is_decoder True, mixed local/lsh/local/lsh, hidden "
                  "32, 2 heads x 16, FF 64 relu, vocab 200, num_buckets [2, 4] (factorised, 8 "
                  "buckets), num_hashes 3, lsh chunk 8 (1 before, 0 after), local chunk 4 (1 "
                  "before, 0 after): lcm 8, min 4; axial [8, 16] / dims [12, 20], hash_seed 11.")
    gen = torch.Generator().manual_seed(2003)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [3], V)
    cases.append(Case("short3_nomask", ids,
                      note="B=1, L=3 < both chunks: no padding, full causal attention."))
    ids, _ = rows(gen, [6], V)
    cases.append(Case("autopad6_nomask", ids,
                      note="B=1, L=6 > min chunk 4, not a multiple of 8: padded to 8 (mask "
                           "created); local layers chunk (2 chunks), LSH layers take the "
                           "no-hashing path (8 == lsh chunk)."))
    ids, am = rows(gen, [8], V)
    cases.append(Case("eq_lcm8", ids, am, note="B=1, L=8 == lcm; all-ones mask."))
    ids, am = rows(gen, [40, 27], V)
    cases.append(Case("many40_padded", ids, am,
                      note="B=2, L=40 = 5 lsh chunks / 10 local chunks, rows 40/27: padding "
                           "bucket (NB'=9), causal masks, factorised buckets."))
    ids, _ = rows(gen, [37], V)
    cases.append(Case("autopad37_nomask", ids,
                      note="B=1, L=37: padded to 40 with a created mask; no mask in the "
                           "request."))
    ids, am = rows(gen, [24], V)
    cases.append(Case("hashes1_override", ids, am, num_hashes=1,
                      note="B=1, L=24, per-request num_hashes 1 (config says 3)."))
    emit_cases(model, name, cases)


def make_seqcls():
    name = "rf_seqcls"
    cfg = reformer_config(
        attn_layers=["lsh", "local", "lsh"], is_decoder=False, hidden_size=48,
        num_attention_heads=3, attention_head_size=16, feed_forward_size=96, vocab_size=150,
        hidden_act="gelu", num_buckets=4, num_hashes=4, lsh_attn_chunk_length=16,
        lsh_num_chunks_before=0, lsh_num_chunks_after=1, local_attn_chunk_length=16,
        local_num_chunks_before=0, local_num_chunks_after=1, axial_pos_embds=True,
        axial_pos_shape=[8, 16], axial_pos_embds_dim=[16, 32], max_position_embeddings=128,
        hash_seed=3, num_labels=3)
    model = build(name, ReformerForSequenceClassification, cfg, 1004,
                  "ReformerForSequenceClassification (3 labels), is_decoder False, lsh/local/"
                  "lsh, hidden 48, 3 heads x 16, FF 96 gelu, vocab 150, num_buckets 4, "
                  "num_hashes 4, lsh chunk 16 (0 before, 1 after), local chunk 16 (0 before, 1 "
                  "after), axial [8, 16] / dims [16, 32], hash_seed 3.")
    gen = torch.Generator().manual_seed(2004)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [10], V)
    cases.append(Case("short10_nomask", ids, note="B=1, L=10 < chunk 16; no mask."))
    ids, _ = rows(gen, [16, 16], V)
    cases.append(Case("eq_chunk16_nomask", ids, note="B=2, L=16 == chunk; no mask."))
    ids, am = rows(gen, [96, 70, 33], V)
    cases.append(Case("many96_padded", ids, am,
                      note="B=3, L=96 = 6 chunks, rows 96/70/33: padding bucket, 4 rounds "
                           "combined by logsumexp weights."))
    ids, am = rows(gen, [50], V)
    cases.append(Case("autopad50", ids, am, datatype="INT32",
                      note="B=1, L=50 with an all-ones mask: padded to 64 (mask extended with "
                           "zeros); INT32."))
    emit_cases(model, name, cases)


def make_qa_long():
    name = "rf_qa_long"
    cfg = reformer_config(
        attn_layers=["lsh", "local"], is_decoder=False, hidden_size=16,
        num_attention_heads=2, attention_head_size=8, feed_forward_size=32, vocab_size=100,
        hidden_act="relu", num_buckets=[8, 16], num_hashes=2, lsh_attn_chunk_length=32,
        lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=64,
        local_num_chunks_before=1, local_num_chunks_after=1, axial_pos_embds=True,
        axial_pos_shape=[64, 64], axial_pos_embds_dim=[8, 8], max_position_embeddings=4096,
        hash_seed=5)
    model = build(name, ReformerForQuestionAnswering, cfg, 1005,
                  "ReformerForQuestionAnswering, is_decoder False, lsh/local, hidden 16, 2 "
                  "heads x 8, FF 32 relu, vocab 100, num_buckets [8, 16] (128 buckets), "
                  "num_hashes 2, lsh chunk 32 (1 before, 0 after), local chunk 64 (1 before, 1 "
                  "after): lcm 64; axial [64, 64] / dims [8, 8], max_pos 4096, hash_seed 5.")
    gen = torch.Generator().manual_seed(2005)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [20], V)
    cases.append(Case("short20_nomask", ids, note="B=1, L=20 < both chunks; no mask."))
    ids, am = rows(gen, [200, 130], V)
    cases.append(Case("mid200_padded", ids, am,
                      note="B=2, rows 200/130: padded to 256 (8 lsh chunks, 4 local chunks)."))
    ids, _ = rows(gen, [3000], V)
    cases.append(Case("long3000_nomask", ids,
                      note="B=1, L=3000: padded to 3008 (94 lsh chunks, 47 local chunks), "
                           "mask created; no mask in the request."))
    emit_cases(model, name, cases)


def make_null_buckets():
    """num_buckets null (B5.9): HF chooses the buckets on a module's first hashing call from
    that call's padded length and keeps them; every case runs on a freshly loaded model, the
    choice longserve reproduces per sequence."""
    name = "rf_null_buckets"
    cfg = reformer_config(
        attn_layers=["lsh", "local", "lsh"], is_decoder=False, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=64, vocab_size=120,
        hidden_act="gelu", num_buckets=None, num_hashes=2, lsh_attn_chunk_length=8,
        lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_attn_chunk_length=8,
        local_num_chunks_before=1, local_num_chunks_after=0, axial_pos_embds=True,
        axial_pos_shape=[16, 32], axial_pos_embds_dim=[16, 16], max_position_embeddings=512,
        hash_seed=21)
    model = build(name, ReformerModel, cfg, 1009,
                  "ReformerModel with **num_buckets null** (lsh/local/lsh, hidden 32, 2 heads x "
                  "16, 2 hashes, chunk 8 with 1 before and 1 after, max_pos 512, hash_seed 21): "
                  "each case runs on a freshly loaded copy, since HF keeps the buckets its "
                  "first call chose (L=40: [8]; L=200: factorised [4, 8], above 2*max(sqrt(512 "
                  "div 8), 8) = 16).")
    assert json.loads((OUT / name / "config.json").read_text()).get("num_buckets") is None
    gen = torch.Generator().manual_seed(2009)
    cases = []
    for L, want in ((40, 8), (200, [4, 8]), (5, None)):
        ids, _ = rows(gen, [L], cfg.vocab_size)
        cases.append((Case(f"null_buckets_len{L}", ids,
                           note=f"B=1, L={L}: buckets chosen as {want} on a fresh model."), want))
    for case, want in cases:
        fresh = ReformerModel.from_pretrained(OUT / name, dtype=torch.float32).eval()
        out = run_reference(fresh, case)
        chosen = [m.num_buckets for m in lsh_layers(fresh)]
        assert all(c == want for c in chosen), (case.name, chosen, want)
        again = run_reference(ReformerModel.from_pretrained(OUT / name, dtype=torch.float32)
                              .eval(), case)
        for k in out:
            assert torch.equal(out[k], again[k]), f"{name}/{case.name}: not reproducible"
        write_case(name, case, out, fresh.config, [])


def make_runtime_seed():
    name = "rf_runtime_seed"
    cfg = reformer_config(
        attn_layers=["lsh", "lsh"], is_decoder=True, hidden_size=32, num_attention_heads=2,
        attention_head_size=16, feed_forward_size=64, vocab_size=200, hidden_act="relu",
        num_buckets=4, num_hashes=1, lsh_attn_chunk_length=8, lsh_num_chunks_before=1,
        lsh_num_chunks_after=0, axial_pos_embds=True, axial_pos_shape=[8, 16],
        axial_pos_embds_dim=[16, 16], max_position_embeddings=128, hash_seed=None)
    model = build(name, ReformerModel, cfg, 1006,
                  "ReformerModel, is_decoder True, 2 LSH layers, hidden 32, 2 heads x 16, FF "
                  "64 relu, vocab 200, num_buckets 4, num_hashes 1, lsh chunk 8 (1 before, 0 "
                  "after), axial [8, 16] / dims [16, 16]. **No hash_seed in config.json**: "
                  "hashing cases carry parameters {\"hash_seed\": S}; the reference sets "
                  "`LSHSelfAttention.hash_seed = S` on every LSH layer before the forward "
                  "(so every layer re-seeds and draws the same rotations, as with a config "
                  "hash_seed).")
    assert "hash_seed" not in json.loads((OUT / name / "config.json").read_text()) or \
        json.loads((OUT / name / "config.json").read_text())["hash_seed"] is None
    gen = torch.Generator().manual_seed(2006)
    V = cfg.vocab_size
    cases = []
    ids, _ = rows(gen, [7], V)
    cases.append(Case("short7_noseed", ids,
                      note="B=1, L=7 < chunk: no hashing, so deterministic without a seed."))
    ids, am = rows(gen, [32], V)
    cases.append(Case("seed5_len32", ids, am, hash_seed=5,
                      note="B=1, L=32 (4 chunks), runtime hash_seed 5."))
    ids, am = rows(gen, [40, 29], V)
    cases.append(Case("seed9_hashes2_padded", ids, am, hash_seed=9, num_hashes=2,
                      note="B=2, rows 40/29, runtime hash_seed 9 and num_hashes 2."))
    ids, _ = rows(gen, [21], V)
    cases.append(Case("seed_2pow32_plus7", ids, hash_seed=2**32 + 7,
                      note="B=1, L=21 (padded to 24), runtime hash_seed 4294967303: torch "
                           "seeds MT19937 with the low 32 bits (7)."))
    emit_cases(model, name, cases)


def make_local_dec():
    name = "rf_local_dec"
    cfg = reformer_config(
        attn_layers=["local", "local"], is_decoder=True, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=48, vocab_size=90,
        hidden_act="gelu", local_attn_chunk_length=4, local_num_chunks_before=2,
        local_num_chunks_after=0, axial_pos_embds=True, axial_pos_shape=[4, 16],
        axial_pos_embds_dim=[8, 24], max_position_embeddings=64)
    model = build(name, ReformerModel, cfg, 1008,
                  "ReformerModel, is_decoder True, 2 local layers, hidden 32, 2 heads x 16, FF "
                  "48 gelu, vocab 90, local chunk 4 with 2 chunks before and 0 after, axial "
                  "[4, 16] / dims [8, 24], max_pos 64.")
    gen = torch.Generator().manual_seed(2008)
    V = cfg.vocab_size
    cases = []
    ids, am = rows(gen, [4], V)
    cases.append(Case("eq_chunk4", ids, am, note="B=1, L=4 == chunk."))
    ids, am = rows(gen, [30, 17, 9], V)
    cases.append(Case("padded30", ids, am,
                      note="B=3, rows 30/17/9: padded to 32 (8 chunks), causal + key mask."))
    ids, _ = rows(gen, [64], V)
    cases.append(Case("full64_nomask", ids,
                      note="B=1, L=64 = prod(axial_pos_shape) = max_pos; no mask."))
    emit_cases(model, name, cases)


# --------------------------------------------------------------------------
# Byte-level LM and greedy generation
# --------------------------------------------------------------------------

BYTE_PROMPTS = ["Hello, world!",
                "The quick brown fox jumps over the lazy dog.",
                "Reformer: LSH attention, chunk after chunk"]
GEN_NEW_TOKENS = 32
BYTE_EOS = 1  # ids 0 (pad) and 1 are reserved in a byte vocabulary (id = byte + 2)


def byte_ids(text):
    return [b + 2 for b in text.encode("utf-8")]


def byte_text(ids):
    return bytes(i - 2 for i in ids if i >= 2).decode("utf-8", errors="replace")


def make_byte_lm():
    name = "rf_byte_lm"
    cfg = reformer_config(
        attn_layers=["local", "lsh", "local", "lsh"], is_decoder=True, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=64, vocab_size=258,
        hidden_act="relu", num_buckets=4, num_hashes=2, lsh_attn_chunk_length=8,
        lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=8,
        local_num_chunks_before=1, local_num_chunks_after=0, axial_pos_embds=True,
        axial_pos_shape=[16, 32], axial_pos_embds_dim=[16, 16], max_position_embeddings=512,
        hash_seed=13, eos_token_id=BYTE_EOS, pad_token_id=PAD)
    model = build(name, ReformerModelWithLMHead, cfg, 1007,
                  "Byte-level ReformerModelWithLMHead (enwik8-style: id = UTF-8 byte + 2, no "
                  "tokenizer files), is_decoder True, local/lsh/local/lsh, hidden 32, 2 heads "
                  "x 16, FF 64 relu, vocab 258, num_buckets 4, num_hashes 2, lsh and local "
                  "chunk 8 (1 before, 0 after), axial [16, 32] / dims [16, 16], max_pos 512, "
                  "hash_seed 13, pad 0, eos 1. generate.json holds greedy generations.")
    cases = []
    for i, text in enumerate(BYTE_PROMPTS):
        ids = torch.tensor([byte_ids(text)])
        cases.append(Case(f"prompt{i}", ids,
                          note=f"B=1, L={ids.shape[1]}: the bytes of {text!r}; no mask."))
    ids, am = pad_rows([byte_ids(t) for t in BYTE_PROMPTS], PAD)
    cases.append(Case("prompts_batch", ids, am,
                      note=f"B=3, the three prompts right-padded to L={ids.shape[1]}."))
    emit_cases(model, name, cases)
    write_generate(model, name)


def make_gen_noseed():
    name = "rf_gen_noseed"
    cfg = reformer_config(
        attn_layers=["lsh", "local", "lsh"], is_decoder=True, hidden_size=32,
        num_attention_heads=2, attention_head_size=16, feed_forward_size=64, vocab_size=258,
        hidden_act="relu", num_buckets=[2, 4], num_hashes=3, lsh_attn_chunk_length=16,
        lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_attn_chunk_length=4,
        local_num_chunks_before=2, local_num_chunks_after=0, axial_pos_embds=True,
        axial_pos_shape=[16, 32], axial_pos_embds_dim=[16, 16], max_position_embeddings=512,
        hash_seed=None, eos_token_id=BYTE_EOS, pad_token_id=PAD)
    model = build(name, ReformerModelWithLMHead, cfg, 1008,
                  "Byte-level ReformerModelWithLMHead **without hash_seed**: lsh/local/lsh, "
                  "hidden 32, 2 heads x 16, FF 64 relu, vocab 258, num_buckets [2, 4], "
                  "num_hashes 3, lsh chunk 16 (1 before), local chunk 4 (2 before), axial "
                  "[16, 32] / dims [16, 16], eos 1. The reference runs torch.manual_seed(0) "
                  "right before each forward and each generate(): the two LSH layers draw "
                  "consecutive rotations from that stream (longserve's default). B=1 only: "
                  "HF draws one rotation per batch, longserve one stream per sequence.")
    gen = torch.Generator().manual_seed(2008)
    cases = []
    for L in (40, 64, 9):
        ids, _ = rows(gen, [L], cfg.vocab_size)
        cases.append(Case(f"default_stream_len{L}", ids,
                          note=f"B=1, L={L}: the default rotation stream (no seed anywhere)."))
    emit_cases(model, name, cases)
    return write_generate(model, name, GEN_NOSEED_PROMPTS, "generate_noseed.json")


GEN_NOSEED_PROMPTS = ["Hi", "Hello, world!", "A prompt long enough to be hashed at once: 44"]


def write_generate(model, name, texts=BYTE_PROMPTS, fname="generate.json"):
    model.generation_config.pad_token_id = PAD
    model.generation_config.eos_token_id = BYTE_EOS
    prompts = []
    for text in texts:
        ids = torch.tensor([byte_ids(text)])
        runs = {}
        for use_cache in (True, False):
            torch.manual_seed(DEFAULT_HASH_SEED)  # the default stream of a model without seed
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=GEN_NEW_TOKENS, do_sample=False,
                                     use_cache=use_cache)
            runs[use_cache] = out[0, ids.shape[1]:].tolist()
        # use_cache=False is greedy over full forwards: check that against our own loop
        seq = ids[0].tolist()
        torch.manual_seed(DEFAULT_HASH_SEED)
        for _ in range(len(runs[False])):
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits
            seq.append(int(logits[0, -1].argmax()))
        assert seq[ids.shape[1]:] == runs[False], "uncached generate != full-forward argmax"
        cached, full = runs[True], runs[False]
        first = next((i for i, (a, b) in enumerate(zip(cached, full)) if a != b), None)
        prompts.append({
            "text": text,
            "prompt_ids": ids[0].tolist(),
            "new_ids_use_cache": cached,
            "new_ids_no_cache": full,
            "text_use_cache": byte_text(cached),
            "text_no_cache": byte_text(full),
            "differ": cached != full,
            "first_difference": first,
            "eos_use_cache": BYTE_EOS in cached,
            "eos_no_cache": BYTE_EOS in full,
        })
    doc = {
        "model": name,
        "generate": {"max_new_tokens": GEN_NEW_TOKENS, "do_sample": False,
                     "pad_token_id": PAD, "eos_token_id": BYTE_EOS},
        "encoding": "id = utf-8 byte + 2; ids 0 (pad) and 1 (eos) are reserved",
        "note": "new_ids_* are the generated ids only (prompt excluded), stopping early at "
                "eos. use_cache=False recomputes the whole sequence every step (with HF's "
                "automatic padding to the lcm of the chunk lengths); use_cache=True re-hashes single "
                "queries against cached buckets (hf-semantics B5.11), so the two may differ.",
        "prompts": prompts,
    }
    (OUT / fname).write_text(json.dumps(doc, indent=1) + "\n")
    return prompts


# --------------------------------------------------------------------------
# torch.randn reference values (engine/torch_rng.c)
# --------------------------------------------------------------------------

RANDN_SEEDS = [0, 1, 42, 2**32 + 7]
RANDN_SIZES = [1, 3, 15, 16, 17, 31, 100, 12288, 1048576]
RANDN_DRAWS = [(3, [100, 17]), (3, [3, 3, 20, 1]), (8, [12288, 12288])]  # consecutive draws
RANDN_WHOLE = 12288  # longer draws are stored as slices: head, middle, tail
RANDN_SLICE = 1024


def randn_slices(n, whole):
    if whole:
        return [(0, n)]
    return [(0, RANDN_SLICE), (n // 2 - RANDN_SLICE // 2, RANDN_SLICE),
            (n - RANDN_SLICE, RANDN_SLICE)]


def randn_worker(cap, path):
    """Runs in a child process with ATEN_CPU_CAPABILITY=cap; writes the values to `path`."""
    got = torch.backends.cpu.get_cpu_capability()
    if got != cap.upper():
        sys.exit(f"randn worker: asked for capability {cap}, torch runs {got}")
    prefix = {"avx2": "avx2", "default": "scalar"}[cap]
    draws = [(seed, [n]) for seed in RANDN_SEEDS for n in RANDN_SIZES] + RANDN_DRAWS
    out = {}
    for seed, sizes in draws:
        torch.manual_seed(seed)
        vals = torch.cat([torch.randn(n) for n in sizes])
        # short draws whole, 12288 whole for two seeds; the middle slice of the
        # 12288+12288 draw spans the boundary between the two calls
        n = len(vals)
        whole = n < RANDN_WHOLE or (n == RANDN_WHOLE and len(sizes) == 1 and seed in (0, 42))
        name = f"{prefix}.s{seed}.n{'+'.join(map(str, sizes))}"
        for off, k in randn_slices(n, whole):
            out[name + (f"@{off}" if off else "")] = vals[off:off + k].clone()
    save_file(out, path)


def make_randn():
    tensors = {}
    for cap in ("avx2", "default"):
        tmp = OUT / f".randn_{cap}.safetensors"
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        subprocess.run([sys.executable, __file__, "--randn-worker", cap, str(tmp)], env=env,
                       check=True)
        from safetensors.torch import load_file
        tensors.update(load_file(str(tmp)))
        tmp.unlink()
    # the two kernels must really differ, or the test would not tell them apart
    a, s = tensors["avx2.s0.n12288"], tensors["scalar.s0.n12288"]
    assert not torch.equal(a, s)
    # one metadata key: safetensors writes several in an order that varies from run to run
    meta = {"names": "<path>.s<seed>.n<n1>[+<n2>...][@<offset>]: torch.manual_seed(seed), "
                     "then torch.randn(n1), torch.randn(n2), ... concatenated, values from "
                     "offset on; path avx2 = ATEN_CPU_CAPABILITY=avx2, scalar = default"}
    save_file(dict(sorted(tensors.items())), str(OUT / "randn.safetensors"), metadata=meta)
    return len(tensors), sum(t.numel() for t in tensors.values())


# --------------------------------------------------------------------------
# Index, README, summary
# --------------------------------------------------------------------------

def write_index():
    lines = ["# longserve Reformer fixtures: <model> <case> <options>",
             "# options: '-' or comma-separated hash_seed=S / num_hashes=N (per-request "
             "overrides, also in the request's \"parameters\")",
             "# generated by tools/make_reformer_fixtures.py -- do not edit"]
    lines += [f"{m} {c} {o}" for m, c, o in INDEX]
    (OUT / "index.txt").write_text("\n".join(lines) + "\n")


def write_readme(gen_prompts, randn_counts):
    hashing = {(m, c): h for m, c, _, _, _, _, _, _, h in SUMMARY}
    lp = {(m, c): (L, Lp) for m, c, _, L, Lp, _, _, _, _ in SUMMARY}
    out = ["# Reformer reference fixtures",
           "",
           "Generated by `tools/make_reformer_fixtures.py` (do not edit by hand), with the",
           "conventions of `tests/fixtures/README.md`: tiny randomly initialised Hugging Face",
           "Reformer models saved with `save_pretrained` (safetensors, float32), per-case KServe",
           "v2 request bodies (`cases/<case>.request.json`) and the Hugging Face outputs for",
           "exactly those requests (`cases/<case>.expected.safetensors`, tensors named like the",
           "HF output fields). `index.txt` lists every case as `<model> <case> <options>`;",
           "options are `-` or per-request overrides `hash_seed=S,num_hashes=N`, which the",
           "request also carries in its top-level `\"parameters\"` object.",
           "",
           f"Versions: torch {torch.__version__.split('+')[0]}, transformers "
           f"{transformers.__version__}, safetensors {safetensors.__version__}, numpy "
           f"{np.__version__} (CPU, float32, eval mode, 2 threads, "
           f"ATEN_CPU_CAPABILITY={os.environ['ATEN_CPU_CAPABILITY']}).",
           "",
           "Regenerate:",
           "",
           "```sh",
           "python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install -r "
           "tools/requirements-fixtures.txt && /tmp/hfvenv/bin/python "
           "tools/make_reformer_fixtures.py",
           "```",
           "",
           "Randomness. Every case whose padded length exceeds the LSH chunk hashes, and its",
           "rotations come from torch's CPU generator: `torch.manual_seed(hash_seed)` then",
           "`torch.randn([heads, head_size, num_hashes, rotation_size / 2])`, redrawn by every",
           "LSH layer (hf-semantics B5.10). The seed is the config's `hash_seed`, or the",
           "request's `parameters.hash_seed` (model `rf_runtime_seed`, whose config has none).",
           "The script pins `ATEN_CPU_CAPABILITY=avx2`, so the rotations are",
           "`eng_torch_randn(hash_seed, ...)` (engine/torch_rng.h, path AVX2) to the bit.",
           "Each case line says how many hashings ran, how many distinct (round-offset)",
           "buckets they produced and the smallest argmax margin over real tokens: a",
           "margin of 1e-3 means an engine's query/key vectors must agree to better than",
           "that for its buckets to agree.",
           "",
           "Padded positions (attention_mask 0) are included in the expected tensors, with",
           "Hugging Face's values; HF's own automatic padding to a multiple of the chunk",
           "length (B2) is cut off again, so outputs always have the request's length L.",
           "",
           f"`randn.safetensors`: {randn_counts[0]} tensors, {randn_counts[1]} values of",
           "`torch.manual_seed(s); torch.randn(n)` for both of torch's float32 CPU kernels;",
           "tensor `<path>.s<seed>.n<n1>[+<n2>...][@<offset>]` holds the draws n1, n2, ...",
           "made one after the other after one manual_seed, concatenated, from `offset` on.",
           "Read by tests/test_torch_rng.c.",
           "",
           "`generate.json`: greedy `generate(max_new_tokens="
           f"{GEN_NEW_TOKENS}, do_sample=False)` of `rf_byte_lm` for "
           f"{len(gen_prompts)} prompts, with `use_cache=True` and `use_cache=False`; "
           + ", ".join(f"prompt {i}: {'differ' if p['differ'] else 'identical'}"
                       + (f" from new token {p['first_difference']}" if p["differ"] else "")
                       for i, p in enumerate(gen_prompts)) + ".",
           ""]
    for m in MODELS:
        out += [f"## {m}", "", NOTES[m], ""]
        for mm, c, o in INDEX:
            if mm == m:
                opt = "" if o == "-" else f" [`{o}`]"
                L, Lp = lp[(m, c)]
                pad = f" Lp={Lp}." if Lp != L else ""
                h = hashing[(m, c)]
                h = "" if h == "no hashing" else f" LSH: {h}."
                out.append(f"- `{c}`{opt}: {NOTES[(m, c)]}{pad}{h}")
        out.append("")
    (OUT / "README.md").write_text("\n".join(out))


def print_summary(gen_prompts):
    print(f"{'model':<16} {'case':<22} {'B':>2} {'L':>5} {'Lp':>5} {'dtype':<6} {'bytes':>8}  "
          "outputs; hashing")
    for m, c, B, L, Lp, dt, shapes, size, h in SUMMARY:
        outs = ", ".join(f"{k}{v}" for k, v in shapes.items())
        print(f"{m:<16} {c:<22} {B:>2} {L:>5} {Lp:>5} {dt:<6} {size:>8}  {outs}; {h}")
    print()
    for m in MODELS:
        print(f"{m:<16} {dir_size(OUT / m):>8} bytes")
    for i, p in enumerate(gen_prompts):
        print(f"generate prompt {i}: cache {p['new_ids_use_cache'][:8]}... "
              f"no cache {p['new_ids_no_cache'][:8]}... differ={p['differ']} "
              f"first={p['first_difference']} eos={p['eos_use_cache']}/{p['eos_no_cache']}")
    print(f"\ntotal tests/fixtures/reformer: {dir_size(OUT)} bytes, {len(INDEX)} cases")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--randn-worker":
        randn_worker(sys.argv[2], sys.argv[3])
        return
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != "AVX2":
        sys.exit(f"torch runs at CPU capability {cap}; these fixtures need AVX2 "
                 "(ATEN_CPU_CAPABILITY=avx2 on an x86-64 CPU with AVX2)")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)

    make_lsh_enc()
    make_local_mlm()
    make_mixed_lm()
    make_seqcls()
    make_qa_long()
    make_runtime_seed()
    make_local_dec()
    make_byte_lm()
    make_gen_noseed()
    make_null_buckets()
    gen_prompts = json.loads((OUT / "generate.json").read_text())["prompts"]
    randn_counts = make_randn()

    write_index()
    write_readme(gen_prompts, randn_counts)
    for f in OUT.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)  # safetensors writes 0600
    print_summary(gen_prompts)


if __name__ == "__main__":
    main()
