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


def shrink_tokenizer(tj, n=128):
    """A fixture's tokenizer.json cut to its first n ids, so that it stays a small seed
    that still loads: merges and added tokens outside the kept vocabulary go, a big
    precompiled charsmap becomes NFKC."""
    m = tj["model"]
    if isinstance(m.get("vocab"), dict):
        m["vocab"] = {k: v for k, v in m["vocab"].items() if v < n}
    elif isinstance(m.get("vocab"), list):
        m["vocab"] = m["vocab"][:n]
    if "merges" in m:
        keep = []
        for mg in m["merges"]:
            a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
            if a in m["vocab"] and b in m["vocab"] and a + b in m["vocab"]:
                keep.append(mg)
        m["merges"] = keep
    tj["added_tokens"] = [a for a in tj.get("added_tokens") or [] if a["id"] < n]

    def norm(x):
        if isinstance(x, dict):
            if x.get("type") == "Precompiled" and len(x.get("precompiled_charsmap") or "") > 4096:
                return {"type": "NFKC"}
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list):
            return [norm(v) for v in x]
        return x

    tj["normalizer"] = norm(tj.get("normalizer"))
    return tj


def tokenizer_json():
    """The tokenizer.json loader (formats/tokenizer_json.c and tokenizer/tok_*.c): every
    fixture tokenizer cut small, hand-written files for the other components, and the
    crafted ids of issue 13 row 8 (id 2147483647, a vocabulary offset by 1e9)."""
    d = OUT / "tokenizer_json"
    tdir = FIX / "tokenizers"
    for tj_path in sorted(tdir.rglob("tokenizer.json")):
        name = "fix_" + "_".join(tj_path.relative_to(tdir).parts[:-1])
        tj = shrink_tokenizer(json.loads(tj_path.read_text()))
        (d / (name + ".json")).write_text(json.dumps(tj, ensure_ascii=False))
    wp = lambda **kw: dict({"model": {"type": "WordPiece", "unk_token": "[UNK]",
                                      "vocab": {"[UNK]": 0, "a": 1, "##b": 2, "ab": 3}}}, **kw)
    bpe = {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<unk>": 3}, "merges": ["a b"],
           "unk_token": "<unk>", "byte_fallback": False}
    seeds = {
        "wordpiece_min": wp(),
        "bpe_min": {"model": bpe, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True},
                    "decoder": {"type": "ByteLevel"}},
        "bpe_pairs": {"model": dict(bpe, merges=[["a", "b"]])},
        "unigram_min": {"model": {"type": "Unigram", "unk_id": 0,
                                  "vocab": [["<unk>", 0.0], ["a", -1.0], ["b", -2.0]]}},
        "wordlevel_min": {"model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1},
                                    "unk_token": "<unk>"}},
        "components": wp(
            normalizer={"type": "Sequence", "normalizers": [
                {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                 "strip_accents": None, "lowercase": True},
                {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
                {"type": "Prepend", "prepend": "_"}, {"type": "Strip", "left": True, "right": True},
                {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]},
            pre_tokenizer={"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"},
                {"type": "Digits", "individual_digits": True},
                {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithPrevious",
                 "invert": False},
                {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                 "split": True}]},
            post_processor={"type": "TemplateProcessing",
                            "single": [{"SpecialToken": {"id": "[UNK]", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}}],
                            "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                     {"Sequence": {"id": "B", "type_id": 1}}],
                            "special_tokens": {"[UNK]": {"id": "[UNK]", "ids": [0],
                                                         "tokens": ["[UNK]"]}}},
            decoder={"type": "Sequence", "decoders": [
                {"type": "WordPiece", "prefix": "##", "cleanup": True},
                {"type": "Replace", "pattern": {"String": "_"}, "content": " "},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            truncation={"max_length": 8, "direction": "Left", "strategy": "LongestFirst",
                        "stride": 0},
            added_tokens=[{"id": 4, "content": "[X]", "special": True, "single_word": False,
                           "lstrip": True, "rstrip": False, "normalized": False}]),
        # row 8: ids that would size tables by the largest id
        "near_id_max": wp(model={"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 2147483647}}),
        "near_id_offset": {"model": {"type": "WordLevel", "unk_token": "<unk>",
                                     "vocab": {"<unk>": 1000000000, "a": 1000000001,
                                               "b": 1000000002}}},
        "near_added_id_max": wp(added_tokens=[{"id": 2147483647, "content": "[X]",
                                               "special": True}]),
        "near_added_offset": wp(added_tokens=[{"id": 1000000000 + i, "content": f"[X{i}]",
                                               "special": True} for i in range(4)]),
        "id_spread_edge": wp(model={"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1055}}),
        "near_id_spread": wp(model={"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 5000}}),
        "near_id_negative": wp(model={"type": "WordPiece", "vocab": {"[UNK]": 0, "a": -1}}),
        "near_unigram_unk": {"model": {"type": "Unigram", "unk_id": 2147483647,
                                       "vocab": [["<unk>", 0.0]]}},
        "near_template_id": wp(post_processor={
            "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[C]", "type_id": 0}}],
            "pair": [], "special_tokens": {"[C]": {"id": "[C]", "ids": [2147483647],
                                                   "tokens": ["[C]"]}}}),
        "near_regex": wp(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(a|"},
                                        "behavior": "Isolated"}),
    }
    for name, obj in seeds.items():
        (d / (name + ".json")).write_text(json.dumps(obj))
    (d / "near_cut.json").write_text(json.dumps(seeds["components"])[:300])


def http():
    """Request byte streams for the HTTP adapter (fuzz_http.c runs the server with
    --payload-limit 4096, --connection-memory 8192, --api-key k3y, CORS for any origin)."""
    import gzip
    import zlib
    d = OUT / "http"
    body = b'{"inputs":"hello world","normalize":true}'
    auth = b"Authorization: Bearer k3y\r\n"
    post = lambda path, extra=b"", b=body: (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth +
                                          b"Content-Type: application/json\r\n" + extra +
                                          b"Content-Length: " + str(len(b)).encode() +
                                          b"\r\n\r\n" + b)
    chunks = lambda b: b"".join(b"%x;ext=1\r\n%s\r\n" % (len(b[i:i + 16]), b[i:i + 16])
                                for i in range(0, len(b), 16)) + b"0\r\nX-Trailer: t\r\n\r\n"
    seeds = {
        "get_health": b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "get_metrics_10": b"GET /metrics HTTP/1.0\r\n\r\n",
        "head_ready": b"HEAD /ready HTTP/1.1\r\nHost: x\r\n\r\n",
        "options_cors": b"OPTIONS /embed HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n"
                        b"Access-Control-Request-Method: POST\r\n\r\n",
        "post_embed": post(b"/embed"),
        "post_openai": post(b"/v1/embeddings", b=b'{"input":"a","model":"fuzz"}'),
        "post_v2_versioned": post(b"/v2/models/fuzz/versions/1/infer"),
        "post_chunked": (b"POST /embed HTTP/1.1\r\nHost: x\r\n" + auth +
                         b"Transfer-Encoding: chunked\r\n\r\n" + chunks(body)),
        "post_gzip": post(b"/embed", b"Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\n",
                          gzip.compress(body, mtime=0)),
        "post_deflate": post(b"/embed", b"Content-Encoding: deflate\r\n", zlib.compress(body)),
        "post_expect": post(b"/embed", b"Expect: 100-continue\r\n"),
        "pipelined": (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"/embed") +
                      b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        "get_query": b"GET /info?a=b&c=%zz HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        "get_bad_utf8": b"GET /%ff%fe/x HTTP/1.1\r\nHost: x\r\n\r\n",
        "near_nul_path": b"GET /health%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "near_no_key": post(b"/embed").replace(auth, b""),
        "near_method": b"DELETE /embed HTTP/1.1\r\nHost: x\r\n\r\n",
        "near_cl_te": post(b"/embed", b"Transfer-Encoding: chunked\r\n"),
        "near_two_cl": post(b"/embed", b"Content-Length: 3\r\n"),
        "near_te_gzip": (b"POST /embed HTTP/1.1\r\nHost: x\r\n" + auth +
                         b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunks(body)),
        "near_cl_bad": post(b"/embed").replace(b"Content-Length: ", b"Content-Length: 1x"),
        "near_cl_huge": post(b"/embed").replace(b"Content-Length: ", b"Content-Length: 99999999999999999999"),
        "near_chunk_bad": (b"POST /embed HTTP/1.1\r\nHost: x\r\n" + auth +
                           b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
        "near_over_limit": post(b"/embed", b=b'{"inputs":"' + b"a" * 5000 + b'"}'),
        "near_zip_bomb": post(b"/embed", b"Content-Encoding: gzip\r\n", gzip.compress(b" " * 100000, mtime=0)),
        "near_no_host": b"GET /health HTTP/1.1\r\n\r\n",
        "near_version": b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
        "near_header_line": b"GET /health HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        "near_long_uri": b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "near_long_header": b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 8200 + b"\r\n\r\n",
        "near_request_line": b"GARBAGE\r\n\r\n",
    }
    for name, b in seeds.items():
        (d / (name + ".http")).write_bytes(b)


def main():
    for target in ("safetensors", "config", "v2", "sbert", "zip", "tokenizer_json", "http"):
        shutil.rmtree(OUT / target, ignore_errors=True)
        (OUT / target).mkdir(parents=True)
    safetensors()
    config()
    v2()
    sbert()
    zipped()
    tokenizer_json()
    http()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{sum(1 for p in OUT.rglob('*') if p.is_file())} files, {total} bytes")
    assert total < 200_000


if __name__ == "__main__":
    main()
