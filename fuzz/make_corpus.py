#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (committed; rerun only to change them).

A few valid inputs per target, taken from tests/fixtures where possible, plus
near-valid ones that sit just past a check, so that mutations start next to the
parsers' edges. Keep the whole corpus small (< 200 KB): it runs in every test pass.
"""
import json
import pathlib
import shutil
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = ROOT / "fuzz" / "corpus"


def st_image(header, data=b"", hlen=None):
    """A safetensors image; header is a dict or raw text, hlen overrides the prefix."""
    text = header if isinstance(header, (str, bytes)) else json.dumps(header, separators=(",", ":"))
    if isinstance(text, str):
        text = text.encode()
    return struct.pack("<Q", len(text) if hlen is None else hlen) + text + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors():
    d = OUT / "safetensors"
    f16 = struct.pack("<4H", 0x3C00, 0x8000, 0x0001, 0x7C00)
    bf16 = struct.pack("<2H", 0x3F80, 0xC040)
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    seeds = {
        "valid_f32": st_image({"__metadata__": {"format": "pt"}, "w": t("F32", [2, 3], 0, 24)}, f32),
        "valid_mixed": st_image(
            {"h": t("F16", [2, 2], 0, 8), "b": t("BF16", [2], 8, 12), "i": t("I64", [1], 12, 20),
             "s": t("F32", [], 20, 24), "z": t("U8", [0, 3], 24, 24), "q": t("BOOL", [1], 24, 25)},
            f16 + bf16 + struct.pack("<q", -7) + struct.pack("<f", 0.5) + b"\x01"),
        # writers pad the header with spaces to a multiple of 8
        "valid_padded": st_image('{"a":{"dtype":"I8","shape":[3],"data_offsets":[0,3]}}   ', b"xyz"),
        "empty_header": st_image({}),
        "near_overlap": st_image({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, bytes(12)),
        "near_duplicate": st_image('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                   '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', bytes(8)),
        "near_size": st_image({"a": t("F16", [3], 0, 4)}, bytes(4)),
        "near_offsets": st_image({"a": t("F32", [1], 4, 0)}, bytes(4)),
        "near_dims": st_image({"a": t("F32", [4294967296, 4294967296, 2], 0, 4)}, bytes(4)),
        "near_hlen": st_image({"a": t("F32", [1], 0, 4)}, bytes(4), hlen=1 << 63),
    }
    for name, b in seeds.items():
        (d / (name + ".safetensors")).write_bytes(b)
    # real files written by the safetensors library, one whole and one cut short
    real = FIX / "lf_base" / "cases" / "short_nomask.expected.safetensors"
    shutil.copyfile(real, d / "real_expected.safetensors")
    (d / "real_cut.safetensors").write_bytes(real.read_bytes()[:600])
    real = FIX / "lf_seqcls" / "cases" / "explicit_no_global.expected.safetensors"
    shutil.copyfile(real, d / "real_small.safetensors")


def config():
    d = OUT / "config"
    for m in sorted(p.parent.name for p in FIX.glob("*/config.json")):
        shutil.copyfile(FIX / m / "config.json", d / (m + ".json"))
    for m in sorted(p.parent.name for p in (FIX / "reformer").glob("*/config.json")):
        shutil.copyfile(FIX / "reformer" / m / "config.json", d / (m + ".json"))
    seeds = {
        "minimal": {},
        "window_int": {"model_type": "longformer", "attention_window": 6, "num_hidden_layers": 3},
        "labels": {"model_type": "roberta", "id2label": {"0": "NEG", "1": "NEU", "2": "POS"},
                   "num_labels": 3, "architectures": ["RobertaForSequenceClassification"]},
        "nulls": {"model_type": None, "hidden_size": None, "attention_window": None, "id2label": None},
        "near_types": {"hidden_size": "32", "layer_norm_eps": "1e-5", "attention_window": [4, "8"]},
        "near_labels": {"id2label": {"0": "a", "2": "b"}, "num_labels": -1},
        "near_windows": {"attention_window": list(range(257))},
    }
    for name, obj in seeds.items():
        (d / (name + ".json")).write_text(json.dumps(obj))
    (d / "near_long_string.json").write_text('{"model_type":"' + "x" * 32 + '"}')
    # numbers json.dumps will not write
    (d / "near_range.json").write_text('{"hidden_size":2147483648,"num_hidden_layers":1e999,'
                                       '"layer_norm_eps":-0,"vocab_size":-2147483649}')


def v2():
    d = OUT / "v2"
    for model, case in [("lf_base", "short_nomask"), ("lf_mlm", "short4"),
                        ("bert_tiny", "fit7_window_exact"), ("lf_base", "eq_window_global0"),
                        ("lf_tokcls", "b3_int32_noglobal"), ("lf_seqcls", "explicit_no_global")]:
        shutil.copyfile(FIX / model / "cases" / (case + ".request.json"), d / (model + "_" + case + ".json"))
    ids = {"name": "input_ids", "datatype": "INT64", "shape": [2, 3], "data": [[0, 5, 2], [0, 6, 2]]}
    seeds = {
        "all_inputs": {"id": "req-1", "inputs": [
            ids,
            {"name": "attention_mask", "datatype": "INT32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, 0]},
            {"name": "global_attention_mask", "datatype": "INT64", "shape": [2, 3], "data": [1, 0, 0, 1, 0, 0]},
            {"name": "token_type_ids", "datatype": "INT32", "shape": [2, 3], "data": [0, 0, 0, 0, 0, 0]}],
            "outputs": [{"name": "logits"}, {"name": "last_hidden_state"}]},
        "id_escapes": {"id": "a\"b\\c\u0001\u00e9", "inputs": [ids]},
        "near_shape": {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3],
                                   "data": [0, 5, 2, 0, 6]}]},
        "near_mismatch": {"inputs": [ids, {"name": "attention_mask", "datatype": "INT64",
                                           "shape": [3, 2], "data": [1, 1, 1, 1, 1, 1]}]},
        "near_twice": {"inputs": [ids, ids]},
        "near_large": {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1000000000, 1000000000],
                                   "data": []}]},
        "near_range": {"inputs": [{"name": "input_ids", "datatype": "INT32", "shape": [1, 2],
                                   "data": [2147483648, 0.5]}]},
        "near_outputs": {"inputs": [ids], "outputs": [{"name": 1}, "x"]},
    }
    for name, obj in seeds.items():
        (d / (name + ".json")).write_text(json.dumps(obj))


def sbert():
    d = OUT / "sbert"
    st = FIX / "embed" / "st_tiny"
    shutil.copyfile(st / "modules.json", d / "modules.json")
    shutil.copyfile(st / "1_Pooling" / "config.json", d / "pooling.json")
    mods = lambda *ms: [{"idx": i, "name": str(i), "path": p, "type": t} for i, (t, p) in enumerate(ms)]
    pool = lambda **kw: dict({"word_embedding_dimension": 32}, **kw)
    seeds = {
        "modules_short_names": [{"type": "Transformer"}, {"type": "Pooling", "path": "p"},
                                {"type": "Normalize"}],
        "pooling_named": pool(pooling_mode="mean_sqrt_len_tokens"),
        "pooling_named_and_flag": pool(pooling_mode="cls", pooling_mode_cls_token=True),
        "near_modules_dotdot": mods(("sentence_transformers.models.Pooling", "../1_Pooling")),
        "near_modules_absolute": mods(("sentence_transformers.models.Pooling", "/etc")),
        "near_modules_long_path": mods(("sentence_transformers.models.Pooling", "p" * 300)),
        "near_modules_unknown": mods(("sentence_transformers.models.Transformer", ""),
                                     ("sentence_transformers.models.Dense", "2_Dense")),
        "near_modules_types": [{"type": 5}, {"type": "Pooling", "path": None}],
        "near_modules_object": {"type": "sentence_transformers.models.Pooling"},
        "near_pooling_two": pool(pooling_mode_cls_token=True, pooling_mode_max_tokens=True),
        "near_pooling_none": pool(pooling_mode_cls_token=False, pooling_mode="sum"),
        "near_pooling_types": pool(pooling_mode_mean_tokens=1),
        "near_pooling_array": [pool(pooling_mode_mean_tokens=True)],
        "pooling_include_prompt": pool(pooling_mode_mean_tokens=True, include_prompt=False),
        "near_pooling_include_prompt": pool(pooling_mode_mean_tokens=True, include_prompt="no"),
        "prompts": {"prompts": {"query": "query: ", "passage": "passage: ", "": ""},
                    "default_prompt_name": "query", "similarity_fn_name": "cosine"},
        "prompts_null": {"prompts": None, "default_prompt_name": None},
        "near_prompts_default_unknown": {"prompts": {"query": "q: "}, "default_prompt_name": "doc"},
        "near_prompts_not_string": {"prompts": {"query": 1}},
        "near_prompts_array": {"prompts": ["query: "]},
        "near_prompts_default_type": {"prompts": {"a": "b"}, "default_prompt_name": 0},
    }
    for name, obj in seeds.items():
        (d / (name + ".json")).write_text(json.dumps(obj))
    (d / "near_cut.json").write_bytes((st / "1_Pooling" / "config.json").read_bytes()[:70])
    # a duplicate prompt name (json.dumps cannot write one)
    (d / "near_prompts_duplicate.json").write_text('{"prompts": {"q": "a", "q": "b"}}')


def zipped():
    """fuzz_zip: byte 0 = coding (bit 0: gzip, else zlib "deflate") and limit ((b >> 1) KiB)."""
    d = OUT / "zip"
    body = (FIX / "lf_base" / "cases" / "multiple_many_global.request.json").read_bytes()
    gz = lambda b: zlib.compress(b, wbits=31)
    raw = zlib.compressobj(wbits=-15)
    seeds = {
        "gzip_v2_body": bytes([1 | 32 << 1]) + gz(body),
        "zlib_v2_body": bytes([32 << 1]) + zlib.compress(body),
        "raw_deflate": bytes([32 << 1]) + raw.compress(body) + raw.flush(),
        "gzip_headers": bytes([1 | 4 << 1]) + b"gzip, deflate;q=0.5, identity;q=0",
        "near_gzip_truncated": bytes([1 | 32 << 1]) + gz(body)[:40],
        "near_gzip_over_limit": bytes([1 | 1 << 1]) + gz(b"0" * 5000),
        "near_gzip_two_members": bytes([1 | 32 << 1]) + gz(b"{}") + gz(b"[]"),
        "near_zlib_bad_check": bytes([32 << 1]) + zlib.compress(body)[:-1] + b"\x00",
    }
    for name, data in seeds.items():
        (d / name).write_bytes(data)


def main():
    for target in ("safetensors", "config", "v2", "sbert", "zip"):
        shutil.rmtree(OUT / target, ignore_errors=True)
        (OUT / target).mkdir(parents=True)
    safetensors()
    config()
    v2()
    sbert()
    zipped()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{sum(1 for p in OUT.rglob('*') if p.is_file())} files, {total} bytes")
    assert total < 200_000


if __name__ == "__main__":
    main()
