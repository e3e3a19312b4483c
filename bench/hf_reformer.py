#!/usr/bin/env python3
"""Reformer forward next to Hugging Face: an enwik8-sized random ReformerModel (hf-semantics
B11: 12 layers, hidden 1024, 8 heads x 128, FF 4096, LSH at layers 2/6/10 with 4 hashes and 512
buckets, chunks 256/128, axial (128, 512)), hash_seed 7 so the buckets are reproducible.

    /tmp/hfvenv/bin/python bench/hf_reformer.py 4096 /tmp/rfbench
    /usr/bin/time -f "%e s %M KB" build/server/longserve-run --model /tmp/rfbench/model \
        --threads 2 < /tmp/rfbench/req4096.json > /tmp/rfbench/ours4096.json

Writes the model (save_pretrained, safetensors), a v2 request of L random byte ids, HF's
last_hidden_state (out<L>.pt) and prints HF's forward seconds (one warm-up, one timed run,
2 threads). Versions: tools/requirements-fixtures.txt.
"""
import json
import os
import sys
import time

os.environ["OMP_NUM_THREADS"] = "2"
import torch
from transformers import ReformerConfig, ReformerModel
torch.set_num_threads(2); torch.manual_seed(0)
cfg = ReformerConfig(attention_head_size=128, attn_layers=["local","local","lsh","local","local","local","lsh","local","local","local","lsh","local"],
    hidden_size=1024, num_attention_heads=8, feed_forward_size=4096, num_hashes=4, num_buckets=512,
    lsh_attn_chunk_length=256, local_attn_chunk_length=128, lsh_num_chunks_before=1, lsh_num_chunks_after=0,
    local_num_chunks_before=1, local_num_chunks_after=0, axial_pos_shape=[128,512], axial_pos_embds_dim=[256,768],
    max_position_embeddings=65536, vocab_size=258, is_decoder=True, hash_seed=7, hidden_dropout_prob=0.0,
    local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0, architectures=["ReformerModel"])
m = ReformerModel(cfg).eval()
L = int(sys.argv[1])
OUT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/rfbench"
os.makedirs(OUT, exist_ok=True)
m.save_pretrained(f"{OUT}/model", safe_serialization=True)
ids = torch.randint(2, 258, (1, L))
json.dump({"inputs":[{"name":"input_ids","shape":[1,L],"datatype":"INT64","data":ids[0].tolist()}]}, open(f"{OUT}/req{L}.json","w"))
with torch.no_grad():
    m(ids)  # warm-up
    t=time.time(); o=m(ids).last_hidden_state; dt=time.time()-t
print(f"HF L={L} forward {dt:.2f} s")
torch.save(o, f"{OUT}/out{L}.pt")
