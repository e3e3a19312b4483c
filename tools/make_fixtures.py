#!/usr/bin/env python3
"""Generate longserve's golden reference fixtures under tests/fixtures/.

Builds tiny, randomly initialised Hugging Face models (Longformer and its task
heads, BERT and RoBERTa), saves each with ``save_pretrained`` and writes, for
every test case, a KServe v2 / Open Inference Protocol request body plus the
Hugging Face outputs for exactly that request (float32 safetensors).  The C
golden test replays the requests against the engine and compares.

Everything runs on the CPU in float32, eval mode, 2 threads, fixed seeds.
Written against (see tools/requirements-fixtures.txt):
    torch 2.15.0, transformers 5.24.0, safetensors 0.8.0, numpy 2.4.6

Regenerate:
    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/hfvenv/bin/python tools/make_fixtures.py
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    LongformerConfig,
    LongformerForMaskedLM,
    LongformerForQuestionAnswering,
    LongformerForSequenceClassification,
    LongformerForTokenClassification,
    LongformerModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)

torch.set_num_threads(2)
transformers.utils.logging.disable_progress_bar()

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures"

# Model directories this script owns (deleted and rewritten on every run).
MODEL_DIRS = ["lf_base", "lf_mlm", "lf_seqcls", "lf_tokcls", "lf_qa",
              "lf_bf16", "lf_f16", "bert_tiny", "roberta_tiny",
              "bert_mlm", "bert_seqcls", "bert_tokcls", "bert_qa",
              "roberta_mlm", "roberta_seqcls", "roberta_tokcls", "roberta_qa"]
GENERATED_FILES = ["index.txt", "README.md"]

# Token ids shared by the RoBERTa-style models: <s>=0, <pad>=1, </s>=2.
BOS, PAD, EOS = 0, 1, 2
FIRST_ORDINARY = 3  # ordinary tokens are drawn from [3, vocab)

# Bookkeeping filled while writing; used for index.txt, README.md and the summary.
INDEX = []    # (model, case, options)
SUMMARY = []  # (model, case, B, L, dtype, {output: shape}, bytes)
NOTES = {}    # model -> description, case -> description (for README.md)


# --------------------------------------------------------------------------
# Helpers: weights, inputs, cases
# --------------------------------------------------------------------------

def reinit_weights(model, seed):
    """Re-draw every parameter so outputs are far from degenerate.

    Linear/Embedding weights ~ N(0, 0.2), biases ~ N(0, 0.1), LayerNorm weight
    ~ 1 + N(0, 0.1).  Tied parameters are visited once (named_parameters
    de-duplicates shared tensors), so ties survive.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = "LayerNorm" in name or "layer_norm" in name
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def round_weights_(model, dtype):
    """Round every parameter to `dtype` in place while keeping float32 storage."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))


def longformer_config(**kw):
    base = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                layer_norm_eps=1e-5, pad_token_id=PAD, bos_token_id=BOS,
                eos_token_id=EOS, sep_token_id=EOS, type_vocab_size=1,
                hidden_act="gelu")
    base.update(kw)
    return LongformerConfig(**base)


def random_tokens(gen, n, vocab):
    return torch.randint(FIRST_ORDINARY, vocab, (n,), generator=gen).tolist()


def pad_rows(rows, pad_id, length=None):
    """Right-pad token rows; returns (input_ids, attention_mask) as [B, L]."""
    L = length or max(len(r) for r in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def text_rows(gen, lengths, vocab, bos=BOS, eos=EOS):
    """Rows `<s> tokens </s>` of the given total lengths (no pad inside)."""
    return [[bos] + random_tokens(gen, n - 2, vocab) + [eos] for n in lengths]


def positions_mask(shape, per_row):
    """A [B, L] 0/1 mask with ones at the listed positions of each row."""
    m = torch.zeros(shape, dtype=torch.long)
    for i, pos in enumerate(per_row):
        for j in pos:
            m[i, j] = 1
    return m


@dataclass
class Case:
    name: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor = None
    global_attention_mask: torch.Tensor = None
    token_type_ids: torch.Tensor = None
    datatype: str = "INT64"  # request datatype for every input: INT64 or INT32
    options: str = "-"       # index.txt options column
    note: str = ""
    extra: dict = field(default_factory=dict)  # reference-only kwargs (never in the request)

    def request_inputs(self):
        return {k: v for k, v in [("input_ids", self.input_ids),
                                  ("attention_mask", self.attention_mask),
                                  ("global_attention_mask", self.global_attention_mask),
                                  ("token_type_ids", self.token_type_ids)]
                if v is not None}


def request_body(case):
    inputs = []
    for name, t in case.request_inputs().items():
        inputs.append({"name": name, "shape": list(t.shape), "datatype": case.datatype,
                       "data": [int(x) for x in t.reshape(-1).tolist()]})
    return {"inputs": inputs}


OUTPUT_NAMES = {
    "LongformerModel": ["last_hidden_state", "pooler_output"],
    "BertModel": ["last_hidden_state", "pooler_output"],
    "RobertaModel": ["last_hidden_state", "pooler_output"],
    "LongformerForMaskedLM": ["logits"],
    "LongformerForSequenceClassification": ["logits"],
    "LongformerForTokenClassification": ["logits"],
    "LongformerForQuestionAnswering": ["start_logits", "end_logits"],
    "BertForMaskedLM": ["logits"],
    "BertForSequenceClassification": ["logits"],
    "BertForTokenClassification": ["logits"],
    "BertForQuestionAnswering": ["start_logits", "end_logits"],
    "RobertaForMaskedLM": ["logits"],
    "RobertaForSequenceClassification": ["logits"],
    "RobertaForTokenClassification": ["logits"],
    "RobertaForQuestionAnswering": ["start_logits", "end_logits"],
}


def run_reference(model, case):
    """HF outputs for exactly the request's inputs (plus reference-only extras)."""
    kwargs = dict(case.request_inputs())
    kwargs.update(case.extra)
    with torch.no_grad():
        out = model(**kwargs, return_dict=True)
    return {n: getattr(out, n).detach().to(torch.float32).contiguous()
            for n in OUTPUT_NAMES[type(model).__name__]}


def write_case(model_name, case, outputs):
    cases_dir = OUT / model_name / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    req = cases_dir / f"{case.name}.request.json"
    exp = cases_dir / f"{case.name}.expected.safetensors"
    req.write_text(json.dumps(request_body(case), separators=(",", ":")) + "\n")
    save_file(outputs, str(exp))
    INDEX.append((model_name, case.name, case.options))
    B, L = case.input_ids.shape
    SUMMARY.append((model_name, case.name, B, L, case.datatype,
                    {k: list(v.shape) for k, v in outputs.items()},
                    req.stat().st_size + exp.stat().st_size))
    NOTES[(model_name, case.name)] = case.note


def check_close(tag, got, want, atol=1e-5):
    for k in want:
        d = (got[k] - want[k]).abs().max().item()
        if not torch.allclose(got[k], want[k], atol=atol, rtol=1e-5):
            sys.exit(f"verification failed: {tag} {k}: max abs diff {d}")


def save_model(model, name, **save_kw):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True, **save_kw)
    return d


def emit_cases(model, name, cases, reload_cls):
    """Compute, write and verify cases for a model whose directory is already saved."""
    reloaded = reload_cls.from_pretrained(OUT / name, dtype=torch.float32).eval()
    for case in cases:
        want = run_reference(model, case)
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want)
        write_case(name, case, want)


# --------------------------------------------------------------------------
# Longformer models
# --------------------------------------------------------------------------

def make_lf_base():
    name = "lf_base"
    NOTES[name] = ("LongformerModel, hidden 32, 4 heads, 2 layers, intermediate 64, "
                   "per-layer attention_window [4, 8], vocab 300, max_pos 130, float32, one file.")
    torch.manual_seed(101)
    cfg = longformer_config(vocab_size=300, hidden_size=32, num_attention_heads=4,
                            num_hidden_layers=2, intermediate_size=64,
                            attention_window=[4, 8], max_position_embeddings=130)
    model = LongformerModel(cfg).eval()
    reinit_weights(model, 101)
    save_model(model, name)

    gen = torch.Generator().manual_seed(1101)
    V = cfg.vocab_size
    cases = []

    ids, _ = pad_rows(text_rows(gen, [5], V), PAD)
    cases.append(Case("short_nomask", ids,
                      note="B=1, L=5 < max window 8; only input_ids (no mask, no global)."))

    ids, am = pad_rows(text_rows(gen, [8], V), PAD)
    cases.append(Case("eq_window_global0", ids, am, positions_mask(ids.shape, [[0]]),
                      note="B=1, L=8 == max window; global on <s>."))

    ids, am = pad_rows(text_rows(gen, [64, 64], V), PAD)
    gam = positions_mask(ids.shape, [[0, 1, 2, 3, 20, 22, 40, 63], [0, 10, 13, 14, 15, 50]])
    cases.append(Case("multiple_many_global", ids, am, gam, datatype="INT32",
                      note="B=2, L=64 = 8x window; 8 and 6 global tokens, adjacent runs and "
                           "globals inside each other's windows, last token global; INT32."))

    ids, am = pad_rows(text_rows(gen, [45, 30, 17], V), PAD)
    gam = positions_mask(ids.shape, [[], [0, 5, 6, 7, 29, 35], [0, 16, 20, 40]])
    cases.append(Case("padded_mixed_global", ids, am, gam,
                      note="B=3, real lengths 45/30/17 (L=45, not a window multiple); "
                           "0/5/2 real global tokens plus global flags on padded positions "
                           "(row 1 pos 35, row 2 pos 20 and 40) that must stay masked."))

    ids, am = pad_rows(text_rows(gen, [120], V), PAD)
    gam = positions_mask(ids.shape, [[0, 77]])
    tt = torch.zeros_like(ids)
    cases.append(Case("long120_tokentype", ids, am, gam, token_type_ids=tt,
                      note="B=1, L=120 (15x window); globals at 0 and 77; explicit all-zero "
                           "token_type_ids."))

    emit_cases(model, name, cases, LongformerModel)


def make_lf_mlm():
    name = "lf_mlm"
    NOTES[name] = ("LongformerForMaskedLM, hidden 48, 3 heads (head dim 16), 3 layers, "
                   "intermediate 96, attention_window 6 (an int in config.json), vocab 250, "
                   "tied decoder (decoder weight = word embeddings, decoder bias = lm_head.bias).")
    torch.manual_seed(202)
    cfg = longformer_config(vocab_size=250, hidden_size=48, num_attention_heads=3,
                            num_hidden_layers=3, intermediate_size=96,
                            attention_window=6, max_position_embeddings=40)
    model = LongformerForMaskedLM(cfg).eval()
    reinit_weights(model, 202)
    assert model.lm_head.decoder.weight is model.longformer.embeddings.word_embeddings.weight
    # LongformerModel.__init__ rewrites the int window into a per-layer list in the
    # shared config; store the int form so config.json covers that variant.
    model.config.attention_window = 6
    save_model(model, name)
    assert json.loads((OUT / name / "config.json").read_text())["attention_window"] == 6

    gen = torch.Generator().manual_seed(1202)
    V = cfg.vocab_size
    cases = []

    ids, _ = pad_rows(text_rows(gen, [4], V), PAD)
    cases.append(Case("short4", ids, note="B=1, L=4 < window 6; no mask, no global."))

    ids, am = pad_rows(text_rows(gen, [18, 18], V), PAD)
    cases.append(Case("mult18_global0", ids, am, positions_mask(ids.shape, [[0], [0]]),
                      note="B=2, L=18 = 3x window; global on <s> in both rows."))

    ids, am = pad_rows(text_rows(gen, [25, 19], V), PAD)
    gam = positions_mask(ids.shape, [[0, 3, 4, 12], [0, 18, 22]])
    cases.append(Case("padded25_int32", ids, am, gam, datatype="INT32",
                      note="B=2, real lengths 25/19 (not a window multiple); globals adjacent "
                           "(3,4) and on the last real token; global flag on padding (row 1 "
                           "pos 22); INT32."))

    emit_cases(model, name, cases, LongformerForMaskedLM)


def make_lf_seqcls():
    name = "lf_seqcls"
    NOTES[name] = ("LongformerForSequenceClassification, num_labels 3, hidden 32, 2 heads, "
                   "2 layers, attention_window [8, 4], vocab 200.")
    torch.manual_seed(303)
    cfg = longformer_config(vocab_size=200, hidden_size=32, num_attention_heads=2,
                            num_hidden_layers=2, intermediate_size=64,
                            attention_window=[8, 4], max_position_embeddings=64,
                            num_labels=3)
    model = LongformerForSequenceClassification(cfg).eval()
    reinit_weights(model, 303)
    save_model(model, name)

    gen = torch.Generator().manual_seed(1303)
    V = cfg.vocab_size
    cases = []

    ids, am = pad_rows(text_rows(gen, [30, 21], V), PAD)
    cases.append(Case("auto_global_padded", ids, am,
                      note="B=2, real lengths 30/21; no global_attention_mask, so HF puts "
                           "global attention on position 0 automatically."))

    ids, am = pad_rows(text_rows(gen, [40], V), PAD)
    gam = positions_mask(ids.shape, [[0, 1, 8, 9, 10, 11, 12, 30, 33, 39]])
    cases.append(Case("explicit_many_global", ids, am, gam, datatype="INT32",
                      note="B=1, L=40; 10 explicit global tokens (runs, overlapping windows); "
                           "INT32."))

    ids, am = pad_rows(text_rows(gen, [12], V), PAD)
    cases.append(Case("explicit_no_global", ids, am, torch.zeros_like(ids),
                      note="B=1, L=12; an explicit all-zero global_attention_mask disables "
                           "the automatic <s> global (differs from omitting it)."))

    emit_cases(model, name, cases, LongformerForSequenceClassification)


def make_lf_tokcls():
    name = "lf_tokcls"
    NOTES[name] = ("LongformerForTokenClassification, num_labels 5, hidden 32, 2 heads, "
                   "2 layers, attention_window [4, 12], vocab 200.")
    torch.manual_seed(404)
    cfg = longformer_config(vocab_size=200, hidden_size=32, num_attention_heads=2,
                            num_hidden_layers=2, intermediate_size=64,
                            attention_window=[4, 12], max_position_embeddings=64,
                            num_labels=5)
    model = LongformerForTokenClassification(cfg).eval()
    reinit_weights(model, 404)
    save_model(model, name)

    gen = torch.Generator().manual_seed(1404)
    V = cfg.vocab_size
    cases = []

    ids, _ = pad_rows(text_rows(gen, [12], V), PAD)
    cases.append(Case("eq_window12", ids, note="B=1, L=12 == max window; no mask, no global."))

    ids, am = pad_rows(text_rows(gen, [50, 33], V), PAD)
    gam = positions_mask(ids.shape, [[0, 24, 25, 49], [0, 1, 2, 40]])
    cases.append(Case("padded50_global", ids, am, gam,
                      note="B=2, real lengths 50/33; adjacent globals, last-token global, "
                           "global flag on padding (row 1 pos 40)."))

    ids, am = pad_rows(text_rows(gen, [13, 13, 9], V), PAD)
    cases.append(Case("b3_int32_noglobal", ids, am, datatype="INT32",
                      note="B=3, L=13 (not a window multiple), one padded row; no global; "
                           "INT32."))

    emit_cases(model, name, cases, LongformerForTokenClassification)


def qa_row(gen, q_len, c_len, vocab):
    """`<s> Q </s></s> C </s>`: exactly three separator tokens."""
    return ([BOS] + random_tokens(gen, q_len, vocab) + [EOS, EOS]
            + random_tokens(gen, c_len, vocab) + [EOS])


def make_lf_qa():
    name = "lf_qa"
    NOTES[name] = ("LongformerForQuestionAnswering, hidden 32, 4 heads, 2 layers, "
                   "attention_window [8, 8], sep_token_id 2, vocab 200.")
    torch.manual_seed(505)
    cfg = longformer_config(vocab_size=200, hidden_size=32, num_attention_heads=4,
                            num_hidden_layers=2, intermediate_size=64,
                            attention_window=[8, 8], max_position_embeddings=80,
                            num_labels=2, sep_token_id=EOS)
    model = LongformerForQuestionAnswering(cfg).eval()
    reinit_weights(model, 505)
    save_model(model, name)

    gen = torch.Generator().manual_seed(1505)
    V = cfg.vocab_size
    cases = []

    ids, am = pad_rows([qa_row(gen, 4, 20, V), qa_row(gen, 7, 9, V)], PAD)
    cases.append(Case("auto_global_padded", ids, am,
                      note="B=2, real lengths 28/20; no global_attention_mask: HF makes "
                           "every token before the first </s> (<s> + question) global."))

    ids, am = pad_rows([qa_row(gen, 5, 60, V)], PAD)
    cases.append(Case("auto_global_long", ids,
                      note="B=1, L=69; automatic question global attention; input_ids only."))

    ids, am = pad_rows([qa_row(gen, 3, 26, V)], PAD)
    gam = positions_mask(ids.shape, [[0, 1, 2, 3, 4, 5, 17]])
    cases.append(Case("explicit_global", ids, am, gam, datatype="INT32",
                      note="B=1, L=33; explicit global mask (question plus both </s> and a "
                           "context token), overriding the automatic one; INT32."))

    emit_cases(model, name, cases, LongformerForQuestionAnswering)


def make_lf_lowp(name, dtype, seed, shard):
    """LongformerModel whose stored weights are bf16/f16.

    The reference is the float32 model holding the rounded values, so the
    expected outputs are exactly what an engine that up-casts on load computes.
    """
    label = {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    NOTES[name] = (f"LongformerModel stored in {label}; hidden 32, 2 heads, 2 layers, "
                   f"attention_window [4, 4], vocab 160."
                   + (" Sharded into several model-0000x-of-0000y.safetensors with "
                      "model.safetensors.index.json." if shard else ""))
    torch.manual_seed(seed)
    cfg = longformer_config(vocab_size=160, hidden_size=32, num_attention_heads=2,
                            num_hidden_layers=2, intermediate_size=64,
                            attention_window=[4, 4], max_position_embeddings=48)
    model = LongformerModel(cfg).eval()
    reinit_weights(model, seed)
    round_weights_(model, dtype)

    gen = torch.Generator().manual_seed(seed + 1000)
    V = cfg.vocab_size
    cases = []
    ids, am = pad_rows(text_rows(gen, [11], V), PAD)
    cases.append(Case("plain11", ids, am, note="B=1, L=11; no global."))
    ids, am = pad_rows(text_rows(gen, [37, 26], V), PAD)
    gam = positions_mask(ids.shape, [[0, 9, 10], [0, 30]])
    cases.append(Case("padded_global", ids, am, gam,
                      note="B=2, real lengths 37/26; globals incl. adjacent pair and a "
                           "global flag on padding (row 1 pos 30)."))
    expected = [run_reference(model, c) for c in cases]

    save_model(model.to(dtype), name, **({"max_shard_size": "20KB"} if shard else {}))
    stored = {}
    for f in sorted((OUT / name).glob("*.safetensors")):
        with safetensors.safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                stored[k] = sf.get_slice(k).get_dtype()
    assert set(stored.values()) == {"BF16" if dtype == torch.bfloat16 else "F16"}, stored
    if shard:
        assert (OUT / name / "model.safetensors.index.json").exists()

    reloaded = LongformerModel.from_pretrained(OUT / name, dtype=torch.float32).eval()
    for case, want in zip(cases, expected):
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want,
                    atol=0)
        write_case(name, case, want)


# --------------------------------------------------------------------------
# BERT and RoBERTa (plain, and "converted" to Longformer for long inputs)
# --------------------------------------------------------------------------

def longformer_from_encoder(src, window, max_pos, position_table):
    """A LongformerModel carrying a BERT/RoBERTa encoder's weights.

    query/key/value_global are copies of query/key/value; the position table is
    replaced by `position_table` (already extended to `max_pos` rows).
    """
    sc = src.config
    cfg = LongformerConfig(
        vocab_size=sc.vocab_size, hidden_size=sc.hidden_size,
        num_hidden_layers=sc.num_hidden_layers, num_attention_heads=sc.num_attention_heads,
        intermediate_size=sc.intermediate_size, hidden_act=sc.hidden_act,
        layer_norm_eps=sc.layer_norm_eps, type_vocab_size=sc.type_vocab_size,
        pad_token_id=sc.pad_token_id, max_position_embeddings=max_pos,
        attention_window=window, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    lf = LongformerModel(cfg).eval()
    sd = dict(src.state_dict())
    sd["embeddings.position_embeddings.weight"] = position_table
    for i in range(sc.num_hidden_layers):
        p = f"encoder.layer.{i}.attention.self."
        for proj in ("query", "key", "value"):
            for t in ("weight", "bias"):
                sd[f"{p}{proj}_global.{t}"] = sd[f"{p}{proj}.{t}"].clone()
    missing, unexpected = lf.load_state_dict(sd, strict=False)
    if missing or unexpected:
        sys.exit(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    return lf


def emit_converted(name, case, models, window, rows, tile):
    """Writes a case whose reference is the LongformerModel converted from each of models
    (the saved model and its reload, which must agree) with `window` and a position table
    of `rows` rows made by tile(table, rows)."""
    results = []
    for src in models:
        table = src.embeddings.position_embeddings.weight.detach()
        lf = longformer_from_encoder(src, window, rows, tile(table, rows))
        results.append(run_reference(lf, case))
    check_close(f"{name}/{case.name} (reloaded)", results[1], results[0])
    write_case(name, case, results[0])


def bert_positions_tiled(table, rows):
    """BERT: new row k = original row k mod max_pos."""
    idx = torch.arange(rows) % table.shape[0]
    return table[idx].clone()


def roberta_positions_tiled(table, rows):
    """RoBERTa (Longformer paper): rows 0,1 kept; row 2+k = original row 2 + k mod (P-2)."""
    P = table.shape[0]
    idx = torch.cat([torch.arange(2), 2 + torch.arange(rows - 2) % (P - 2)])
    return table[idx].clone()


def make_bert():
    name = "bert_tiny"
    NOTES[name] = ("BertModel, hidden 32, 2 heads, 2 layers, intermediate 64, max_pos 40, "
                   "type_vocab 2, pad 0, vocab 200, layer_norm_eps 1e-12. fit* cases: plain "
                   "BertModel outputs, window covers the input. long* cases: inputs longer "
                   "than max_pos; reference is a LongformerModel converted from these weights "
                   "(global q/k/v = copies of q/k/v, position table tiled: row k = row k mod 40, "
                   "position_ids = arange(L) for every row incl. padding, global attention on "
                   "position 0 only, passed explicitly in the request).")
    torch.manual_seed(707)
    cfg = BertConfig(vocab_size=200, hidden_size=32, num_attention_heads=2,
                     num_hidden_layers=2, intermediate_size=64, max_position_embeddings=40,
                     type_vocab_size=2, pad_token_id=0, hidden_act="gelu",
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     attn_implementation="eager")
    model = BertModel(cfg).eval()
    reinit_weights(model, 707)
    save_model(model, name)
    reloaded = BertModel.from_pretrained(OUT / name, dtype=torch.float32,
                                         attn_implementation="eager").eval()

    gen = torch.Generator().manual_seed(1707)
    V = cfg.vocab_size

    def bert_ids(lengths):
        rows = [random_tokens(gen, n, V) for n in lengths]
        return pad_rows(rows, 0)

    def token_types(shape, boundaries):
        tt = torch.zeros(shape, dtype=torch.long)
        for i, b in enumerate(boundaries):
            tt[i, b:] = 1
        return tt

    fit = []
    ids, _ = bert_ids([20])
    fit.append(Case("fit20_tokentype", ids, token_type_ids=token_types(ids.shape, [12]),
                    options="window=40",
                    note="B=1, L=20, segment B from 12; window 40 covers the input."))
    ids, am = bert_ids([40, 40])
    fit.append(Case("fit40_b2_int32", ids, am, token_type_ids=token_types(ids.shape, [25, 5]),
                    datatype="INT32", options="window=80",
                    note="B=2, L=40 = max_pos; all-ones attention_mask; INT32; window 80."))
    ids, _ = bert_ids([7])
    fit.append(Case("fit7_window_exact", ids, options="window=12",
                    note="B=1, L=7, only input_ids; window 12 is the smallest even N with "
                         "N/2 >= L-1."))
    for case in fit:
        want = run_reference(model, case)
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want)
        write_case(name, case, want)

    long_cases = []
    ids, am = bert_ids([100])
    long_cases.append(Case(
        "long100_w16", ids, am, positions_mask(ids.shape, [[0]]),
        token_types(ids.shape, [61]), options="window=16",
        note="B=1, L=100 > max_pos 40; window 16; global at 0; segment B from 61."))
    ids, am = bert_ids([57, 44])
    long_cases.append(Case(
        "long57_w8_padded", ids, am, positions_mask(ids.shape, [[0], [0]]),
        token_types(ids.shape, [30, 20]), datatype="INT32", options="window=8",
        note="B=2, real lengths 57/44 (L=57, not a window multiple); window 8; global at 0; "
             "row 1 right-padded with id 0 (padded positions use position id = their index); "
             "INT32."))
    for case in long_cases:
        B, L = case.input_ids.shape
        case.extra = {"position_ids": torch.arange(L).expand(B, L).clone()}

    rows = max(c.input_ids.shape[1] for c in long_cases)
    for case in long_cases:
        window = int(case.options.split("=")[1])
        emit_converted(name, case, (model, reloaded), window, rows, bert_positions_tiled)

    # Full attention within the trained length (the engine's default): plain BertModel at a
    # window far smaller than the input, padding rows included (HF computes them).
    ids, am = bert_ids([40, 27])
    full = Case("full40_w4_padded", ids, am, token_type_ids=token_types(ids.shape, [22, 9]),
                options="window=4",
                note="B=2, L=40 = max_pos, real lengths 40/27 (row 1 right-padded, its padding "
                     "rows as HF computes them); window 4, far under the input: the engine "
                     "attends fully within the trained length, as BertModel.")
    want = run_reference(model, full)
    check_close(f"{name}/{full.name} (reloaded)", run_reference(reloaded, full), want)
    write_case(name, full, want)
    # --full-attention 0 (Longformer attention at every length), within the trained length:
    # the converted LongformerModel with window 8, global on position 0.
    ids, am = bert_ids([30])
    old = Case("lf30_w8_full0", ids, am, positions_mask(ids.shape, [[0]]),
               options="window=8,full=0",
               note="B=1, L=30 < max_pos; full attention off (full=0): reference is the "
                    "converted LongformerModel, window 8, global at 0 (explicit).")
    old.extra = {"position_ids": torch.arange(30).expand(1, 30).clone()}
    emit_converted(name, old, (model, reloaded), 8, rows, bert_positions_tiled)


def make_roberta():
    name = "roberta_tiny"
    NOTES[name] = ("RobertaModel, hidden 32, 2 heads, 2 layers, intermediate 64, pad 1, "
                   "max_pos 34 (32 real positions, ids start at padding_idx+1 = 2), "
                   "type_vocab 1, vocab 200, layer_norm_eps 1e-5. fit*: plain RobertaModel, "
                   "window covers the input. long*: reference is a LongformerModel converted "
                   "from these weights as in the Longformer paper (rows 0,1 kept, row 2+k = "
                   "row 2 + k mod 32), positions computed by HF from input_ids (not passed), "
                   "global attention on position 0 (explicit in the request).")
    torch.manual_seed(808)
    cfg = RobertaConfig(vocab_size=200, hidden_size=32, num_attention_heads=2,
                        num_hidden_layers=2, intermediate_size=64, max_position_embeddings=34,
                        type_vocab_size=1, pad_token_id=PAD, bos_token_id=BOS,
                        eos_token_id=EOS, layer_norm_eps=1e-5, hidden_act="gelu",
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        attn_implementation="eager")
    model = RobertaModel(cfg).eval()
    reinit_weights(model, 808)
    save_model(model, name)
    reloaded = RobertaModel.from_pretrained(OUT / name, dtype=torch.float32,
                                            attn_implementation="eager").eval()

    gen = torch.Generator().manual_seed(1808)
    V = cfg.vocab_size

    ids, am = pad_rows(text_rows(gen, [32, 32], V), PAD)
    fit = Case("fit32_b2", ids, am, options="window=64",
               note="B=2, L=32 = all real positions; window 64 covers the input.")
    want = run_reference(model, fit)
    check_close(f"{name}/{fit.name} (reloaded)", run_reference(reloaded, fit), want)
    write_case(name, fit, want)

    ids, am = pad_rows(text_rows(gen, [90, 71], V), PAD)
    long_case = Case("long90_w16_padded", ids, am, positions_mask(ids.shape, [[0], [0]]),
                     options="window=16",
                     note="B=2, real lengths 90/71 (> 32 positions); window 16; global at 0; "
                          "row 1 right-padded (pad positions get position id 1).")
    emit_converted(name, long_case, (model, reloaded), 16, 2 + ids.shape[1],
                   roberta_positions_tiled)

    # Full attention within the trained length (32 real positions) at a small window.
    ids, am = pad_rows(text_rows(gen, [32, 19], V), PAD)
    full = Case("full32_w4_padded", ids, am, options="window=4",
                note="B=2, L=32 = all real positions, real lengths 32/19 (row 1 right-padded "
                     "with pad 1, its rows as HF computes them); window 4: the engine attends "
                     "fully within the trained length, as RobertaModel.")
    want = run_reference(model, full)
    check_close(f"{name}/{full.name} (reloaded)", run_reference(reloaded, full), want)
    write_case(name, full, want)


# --------------------------------------------------------------------------
# BERT and RoBERTa task heads (plain HF models; the window covers the input)
# --------------------------------------------------------------------------

def _window_for(L):
    """Smallest even N with N/2 >= L-1 (the sliding window covers the whole input)."""
    return max(2, 2 * (L - 1))


def make_bert_head(name, cls, seed, num_labels=None, id2label=None, desc=""):
    """A tiny BertFor* model; fit-only cases checked against the plain HF model."""
    NOTES[name] = (f"{cls.__name__}, hidden 32, 2 heads, 2 layers, intermediate 64, "
                   f"max_pos 40, type_vocab 2, pad 0, vocab 120, layer_norm_eps 1e-12"
                   f"{desc}. Reference: the plain HF model; the window covers the input "
                   f"(the engine's automatic global on token 0 then equals full attention).")
    torch.manual_seed(seed)
    kw = {}
    if id2label is not None:
        kw.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    elif num_labels is not None:
        kw.update(num_labels=num_labels)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_attention_heads=2,
                     num_hidden_layers=2, intermediate_size=64, max_position_embeddings=40,
                     type_vocab_size=2, pad_token_id=0, hidden_act="gelu",
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     attn_implementation="eager", **kw)
    model = cls(cfg).eval()
    reinit_weights(model, seed)
    save_model(model, name)
    reloaded = cls.from_pretrained(OUT / name, dtype=torch.float32,
                                   attn_implementation="eager").eval()

    gen = torch.Generator().manual_seed(seed + 1000)
    V = cfg.vocab_size

    def bert_ids(lengths):
        return pad_rows([random_tokens(gen, n, V) for n in lengths], 0)

    def token_types(shape, boundaries):
        tt = torch.zeros(shape, dtype=torch.long)
        for i, b in enumerate(boundaries):
            tt[i, b:] = 1
        return tt

    cases = []
    ids, _ = bert_ids([9])
    cases.append(Case("fit9", ids, options=f"window={_window_for(9)}",
                      note="B=1, L=9, only input_ids; window covers the input."))
    ids, am = bert_ids([23, 23])
    cases.append(Case("fit23_b2_tokentype_int32", ids, am,
                      token_type_ids=token_types(ids.shape, [14, 6]), datatype="INT32",
                      options=f"window={_window_for(23)}",
                      note="B=2, L=23, all-ones attention_mask, segment B from 14 / 6; INT32."))
    ids, am = bert_ids([40, 17])
    cases.append(Case("full40_w4_padded", ids, am, token_type_ids=token_types(ids.shape, [25, 8]),
                      options="window=4",
                      note="B=2, L=40 = max_pos, real lengths 40/17 (row 1 right-padded); "
                           "window 4: full attention within the trained length."))
    for case in cases:
        want = run_reference(model, case)
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want)
        write_case(name, case, want)


def make_roberta_head(name, cls, seed, num_labels=None, id2label=None, desc=""):
    """A tiny RobertaFor* model; fit-only cases checked against the plain HF model."""
    NOTES[name] = (f"{cls.__name__}, hidden 32, 2 heads, 2 layers, intermediate 64, pad 1, "
                   f"max_pos 34 (32 real positions), type_vocab 1, vocab 120, "
                   f"layer_norm_eps 1e-5{desc}. Reference: the plain HF model; the window "
                   f"covers the input.")
    torch.manual_seed(seed)
    kw = {}
    if id2label is not None:
        kw.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    elif num_labels is not None:
        kw.update(num_labels=num_labels)
    cfg = RobertaConfig(vocab_size=120, hidden_size=32, num_attention_heads=2,
                        num_hidden_layers=2, intermediate_size=64, max_position_embeddings=34,
                        type_vocab_size=1, pad_token_id=PAD, bos_token_id=BOS,
                        eos_token_id=EOS, layer_norm_eps=1e-5, hidden_act="gelu",
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        attn_implementation="eager", **kw)
    model = cls(cfg).eval()
    reinit_weights(model, seed)
    save_model(model, name)
    reloaded = cls.from_pretrained(OUT / name, dtype=torch.float32,
                                   attn_implementation="eager").eval()

    gen = torch.Generator().manual_seed(seed + 1000)
    V = cfg.vocab_size
    cases = []
    ids, _ = pad_rows(text_rows(gen, [7], V), PAD)
    cases.append(Case("fit7", ids, options=f"window={_window_for(7)}",
                      note="B=1, L=7, only input_ids; window covers the input."))
    ids, am = pad_rows(text_rows(gen, [30, 30], V), PAD)
    cases.append(Case("fit30_b2_int32", ids, am, datatype="INT32",
                      options=f"window={_window_for(30)}",
                      note="B=2, L=30, all-ones attention_mask; INT32."))
    ids, am = pad_rows(text_rows(gen, [32, 13], V), PAD)
    cases.append(Case("full32_w4_padded", ids, am, options="window=4",
                      note="B=2, L=32 = all real positions, real lengths 32/13 (row 1 "
                           "right-padded); window 4: full attention within the trained length."))
    for case in cases:
        want = run_reference(model, case)
        check_close(f"{name}/{case.name} (reloaded)", run_reference(reloaded, case), want)
        write_case(name, case, want)


SEQCLS_LABELS = {0: "negative", 1: "neutral", 2: "positive"}


def make_heads():
    make_bert_head("bert_mlm", BertForMaskedLM, 911,
                   desc="; tied decoder (cls.predictions.decoder = word embeddings, "
                        "bias cls.predictions.bias), no pooler")
    make_bert_head("bert_seqcls", BertForSequenceClassification, 912, id2label=SEQCLS_LABELS,
                   desc="; pooler + classifier, 3 labels with id2label")
    make_bert_head("bert_tokcls", BertForTokenClassification, 913, num_labels=4,
                   desc="; classifier, 4 labels, no pooler")
    make_bert_head("bert_qa", BertForQuestionAnswering, 914,
                   desc="; qa_outputs, no pooler")
    make_roberta_head("roberta_mlm", RobertaForMaskedLM, 921,
                      desc="; lm_head dense/layer_norm, tied decoder, lm_head.bias")
    make_roberta_head("roberta_seqcls", RobertaForSequenceClassification, 922,
                      id2label=SEQCLS_LABELS,
                      desc="; classifier.dense + out_proj on <s>, 3 labels with id2label")
    make_roberta_head("roberta_tokcls", RobertaForTokenClassification, 923, num_labels=4,
                      desc="; classifier, 4 labels")
    make_roberta_head("roberta_qa", RobertaForQuestionAnswering, 924,
                      desc="; qa_outputs")


# --------------------------------------------------------------------------
# Index, README, summary
# --------------------------------------------------------------------------

def write_index():
    lines = ["# longserve golden fixtures: <model> <case> <options>",
             "# options: '-' or window=N[,full=K] (BERT/RoBERTa: the sliding window the engine",
             "# uses past full attention; full=K: --full-attention K, default the trained length)",
             "# generated by tools/make_fixtures.py -- do not edit"]
    lines += [f"{m} {c} {o}" for m, c, o in INDEX]
    (OUT / "index.txt").write_text("\n".join(lines) + "\n")


def write_readme():
    out = ["# Golden reference fixtures",
           "",
           "Generated by `tools/make_fixtures.py` (do not edit by hand). Tiny randomly",
           "initialised Hugging Face models, each saved with `save_pretrained`",
           "(safetensors), plus per-case KServe v2 request bodies",
           "(`cases/<case>.request.json`) and the Hugging Face outputs for exactly those",
           "inputs (`cases/<case>.expected.safetensors`, float32, tensors named like the",
           "HF output fields). `index.txt` lists every case as `<model> <case> <options>`.",
           "",
           f"Versions: torch {torch.__version__.split('+')[0]}, transformers "
           f"{transformers.__version__}, safetensors {safetensors.__version__}, numpy "
           f"{np.__version__} (CPU, float32, eval mode).",
           "",
           "Regenerate:",
           "",
           "```sh",
           "python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install -r "
           "tools/requirements-fixtures.txt && /tmp/hfvenv/bin/python tools/make_fixtures.py",
           "```",
           "",
           "Padded positions are included in the expected tensors: Hugging Face",
           "Longformer's values (padding queries get a zero attention output), and for the",
           "full* cases BertModel/RobertaModel's (padding rows attend like the others).",
           ""]
    for m in MODEL_DIRS:
        out.append(f"## {m}")
        out.append("")
        out.append(NOTES[m])
        out.append("")
        for mm, c, o in INDEX:
            if mm == m:
                opt = "" if o == "-" else f" [`{o}`]"
                out.append(f"- `{c}`{opt}: {NOTES[(m, c)]}")
        out.append("")
    (OUT / "README.md").write_text("\n".join(out))


def dir_size(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def print_summary():
    print(f"{'model':<13} {'case':<22} {'B':>2} {'L':>4} {'dtype':<6} {'bytes':>8}  outputs")
    for m, c, B, L, dt, shapes, size in SUMMARY:
        outs = ", ".join(f"{k}{v}" for k, v in shapes.items())
        print(f"{m:<13} {c:<22} {B:>2} {L:>4} {dt:<6} {size:>8}  {outs}")
    print()
    for m in MODEL_DIRS:
        files = sorted(p.name for p in (OUT / m).iterdir() if p.is_file())
        print(f"{m:<13} {dir_size(OUT / m):>8} bytes  {' '.join(files)}")
    print(f"\ntotal tests/fixtures: {dir_size(OUT)} bytes, {len(INDEX)} cases")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for d in MODEL_DIRS:
        shutil.rmtree(OUT / d, ignore_errors=True)
    for f in GENERATED_FILES:
        (OUT / f).unlink(missing_ok=True)

    make_lf_base()
    make_lf_mlm()
    make_lf_seqcls()
    make_lf_tokcls()
    make_lf_qa()
    make_lf_lowp("lf_bf16", torch.bfloat16, 606, shard=False)
    make_lf_lowp("lf_f16", torch.float16, 616, shard=True)
    make_bert()
    make_roberta()
    make_heads()

    write_index()
    write_readme()
    print_summary()


if __name__ == "__main__":
    main()
