#!/usr/bin/env python3
"""Greedy generation of a crime-and-punishment-sized random Reformer LM (hf-semantics B11:
6 layers local/lsh, hidden 256, 2 heads x 64, FF 512, num_buckets [64, 128], 1 hash, chunks
64 (1 before, 0 after), axial (512, 1024) / (64, 192), vocab 320, no hash_seed) in Hugging
Face, with and without its cache, next to bench/bench_generate.c.

    /tmp/hfvenv/bin/python bench/hf_reformer_generate.py PROMPT NEW OUTDIR
    build/bench/bench_generate OUTDIR/model OUTDIR/prompt.txt NEW --threads 2

Writes OUTDIR/model (save_pretrained), OUTDIR/prompt.txt (PROMPT random ids) and prints
HF's tokens/s and generated ids for use_cache True and False. torch.manual_seed(0) before
each generate(): longserve's default stream for a model without hash_seed. eos is disabled
(min_new_tokens) so that both sides make NEW tokens. Versions: tools/requirements-fixtures.txt.
"""
import contextlib
import io
import os
import sys
import time

os.environ["OMP_NUM_THREADS"] = "2"
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
from transformers import ReformerConfig, ReformerModelWithLMHead

torch.set_num_threads(2)
P, NEW = int(sys.argv[1]), int(sys.argv[2])
OUT = sys.argv[3] if len(sys.argv) > 3 else "/tmp/rfgen"
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
cfg = ReformerConfig(
    attn_layers=["local", "lsh", "local", "lsh", "local", "lsh"], hidden_size=256,
    num_attention_heads=2, attention_head_size=64, feed_forward_size=512, hidden_act="relu",
    num_hashes=1, num_buckets=[64, 128], lsh_attn_chunk_length=64, local_attn_chunk_length=64,
    lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_num_chunks_before=1,
    local_num_chunks_after=0, axial_pos_shape=[512, 1024], axial_pos_embds_dim=[64, 192],
    max_position_embeddings=524288, vocab_size=320, is_decoder=True, hash_seed=None,
    hidden_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
    local_attention_probs_dropout_prob=0.0, pad_token_id=0, eos_token_id=2,
    architectures=["ReformerModelWithLMHead"])
m = ReformerModelWithLMHead(cfg).eval()
m.save_pretrained(f"{OUT}/model", safe_serialization=True)
ids = torch.randint(3, 320, (1, P))
open(f"{OUT}/prompt.txt", "w").write(" ".join(map(str, ids[0].tolist())) + "\n")
for use_cache in (True, False):
    torch.manual_seed(0)
    # prepare_inputs_for_generation prints a warning per step: keep it out of the table
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        t = time.time()
        out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=NEW, min_new_tokens=NEW, use_cache=use_cache,
                         pad_token_id=0)
        dt = time.time() - t
    new = out[0, P:].tolist()
    print(f"HF {'cache' if use_cache else 'recompute'}: prompt {P}, {len(new)} tokens in "
          f"{dt:.3f} s = {len(new) / dt:.1f} tokens/s, ids {' '.join(map(str, new))}",
          flush=True)
