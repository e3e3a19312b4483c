#!/usr/bin/env python3
"""Fixtures for /embed_sparse and for sentence-transformers prompts (tests/fixtures/embed/).

1. sparse_expected.json: SPLADE vectors of a few texts on lf_mlm_tok (the masked-LM head of
   tools/make_embed_fixtures.py): Hugging Face LongformerForMaskedLM's logits, then
   torch.max(torch.log(1 + torch.relu(logits)), dim=tokens) over every token of the
   sequence (special tokens included, as TEI and sentence-transformers' SpladePooling), kept
   as TEI answers it: the non-zero values with their vocabulary index.
2. st_prompts/: st_tiny's weights and tokenizer with a config_sentence_transformers.json
   holding "prompts" and "default_prompt_name" and a Pooling config with
   "include_prompt": false; st_prompts/expected.json: SentenceTransformer.encode of a few
   texts with each prompt_name, with the default prompt, and for st_tiny (include_prompt
   true) with prompt= the same prompt text.

CPU, float32, eval mode. Versions are recorded in the JSON files.
Regenerate:  /tmp/hfvenv/bin/python tools/make_sparse_prompt_fixtures.py
(venv: tools/requirements-fixtures.txt + sentence-transformers==6.2.0 + tokenizers)
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import json
import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import BertForMaskedLM, LongformerForMaskedLM

# the same venv, versions record and JSON writer as the other text-route fixtures
from make_embed_fixtures import OUT as EMB
from make_embed_fixtures import VERSIONS, dump

SPARSE_TEXTS = [
    "paris is the capital of france",
    "the quick brown fox jumps over the lazy dog",
    "long documents need sparse attention to be read in one pass, the model reads contracts papers clinical notes and logs",
    "a",
]

PROMPT_TEXTS = ["the quick brown fox", "paris is the capital of france", "who lives in london"]
PROMPTS = {"query": "query: ", "passage": "passage: ", "classify": "Classify the text: "}


def splade(logits) -> list:
    """TEI's answer for one sequence: the non-zero values of max_t log(1 + relu(logits[t]))."""
    vec = torch.max(torch.log(1 + torch.relu(logits)), dim=0).values
    return [{"index": i, "value": float(vec[i])} for i in torch.nonzero(vec).flatten().tolist()]


def sparse_ids() -> list:
    """bert_mlm (no tokenizer: token-id inputs), the ids of its golden case fit9 and a
    prefix of them; the window covers the input, so the engine's attention is BERT's."""
    d = EMB.parent / "bert_mlm"
    ids = json.loads((d / "cases" / "fit9.request.json").read_text())["inputs"][0]["data"]
    model = BertForMaskedLM.from_pretrained(str(d)).eval()
    cases = []
    for seq in (ids, ids[:4]):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([seq])).logits[0]
        cases.append({"ids": seq, "vocab_size": int(logits.shape[1]), "sparse": splade(logits)})
    return cases


def sparse() -> None:
    d = EMB / "lf_mlm_tok"
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    model = LongformerForMaskedLM.from_pretrained(str(d)).eval()
    cases = []
    for text in SPARSE_TEXTS:
        ids = tok.encode(text).ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]  # (tokens, vocab)
        cases.append({"text": text, "ids": ids, "vocab_size": int(logits.shape[1]),
                      "sparse": splade(logits)})
    dump(EMB / "sparse_expected.json",
         {"generator": "tools/make_sparse_prompt_fixtures.py", "versions": VERSIONS,
          "model": "embed/lf_mlm_tok",
          "formula": "max over all tokens of log(1 + relu(LongformerForMaskedLM logits))",
          "cases": cases, "id_model": "bert_mlm", "id_window": 16, "id_cases": sparse_ids()})
    print(f"sparse_expected.json: {len(cases)} cases")


def prompt_model(name: str, include_prompt: bool, default: str | None) -> Path:
    """st_tiny's files with prompts in config_sentence_transformers.json."""
    src, dst = EMB / "st_tiny", EMB / name
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "1_Pooling").mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "tokenizer.json", "modules.json",
              "sentence_bert_config.json"):
        shutil.copy(src / f, dst / f)
    pool = json.loads((src / "1_Pooling" / "config.json").read_text())
    pool["include_prompt"] = include_prompt
    dump(dst / "1_Pooling" / "config.json", pool)
    dump(dst / "config_sentence_transformers.json",
         {"prompts": PROMPTS, "default_prompt_name": default, "similarity_fn_name": "cosine"})
    return dst


def prompts() -> None:
    from sentence_transformers import SentenceTransformer

    for name, include, default in (("st_prompts", False, "query"), ("st_prompts_incl", True, None)):
        d = prompt_model(name, include, default)
        st = SentenceTransformer(str(d), device="cpu").eval()
        assert st.default_prompt_name == default and st[1].include_prompt == include
        out = {"generator": "tools/make_sparse_prompt_fixtures.py", "versions": VERSIONS,
               "texts": PROMPT_TEXTS, "prompts": PROMPTS, "default_prompt_name": default,
               "include_prompt": include, "embeddings": {}}
        # no prompt_name: the default prompt (or none)
        out["embeddings"][""] = st.encode(PROMPT_TEXTS, convert_to_numpy=True).tolist()
        for p in PROMPTS:
            out["embeddings"][p] = st.encode(PROMPT_TEXTS, prompt_name=p, convert_to_numpy=True).tolist()
        # what the prompt's tokens are (ST's prompt_length: the prompt alone, less a trailing special)
        out["prompt_lengths"] = {p: st[0]._get_prompt_length(t) for p, t in PROMPTS.items()}
        dump(d / "expected.json", out)
        print(f"{name}/expected.json: include_prompt {include}, default {default!r}, "
              f"prompt lengths {out['prompt_lengths']}")


if __name__ == "__main__":
    sparse()
    prompts()
