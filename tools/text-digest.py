#!/usr/bin/env python3
# Prints one sha256 per text-route request answered by a longserve binary on the fixture
# models (status, the x-* headers and the body), so that two builds can be shown to
# answer every route with the same bytes:
#   tools/text-digest.py build/server/longserve > after.txt; diff before.txt after.txt
import hashlib, json, os, subprocess, sys, tempfile, time, urllib.request, urllib.error

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fx = os.path.join(root, "tests", "fixtures", "embed")
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build/server/longserve")
models = {"st": "st_tiny", "seqcls": "lf_seqcls_tok", "tokcls": "lf_tokcls_tok",
          "mlm": "lf_mlm_tok", "qa": "lf_qa_tok"}
text = "The quick brown fox jumps over the lazy dog. " * 3
long_text = " ".join("word%d tells a longer story" % i for i in range(200))
reqs = [
    ("/embed", {"inputs": text}), ("/embed", {"inputs": [text, "short one"], "normalize": False}),
    ("/embed", {"inputs": text, "pooling": "cls"}), ("/embed", {"inputs": text, "pooling": "max"}),
    ("/embed", {"inputs": long_text, "long_document": {"window": 32, "stride": 16}}),
    ("/embed", {"inputs": long_text, "truncate": True}),
    ("/embed", {"inputs": long_text, "truncate": True, "truncation_direction": "left"}),
    ("/embed", {"inputs": text, "global_attention": {"cls": True, "token_indices": [3, 5]}}),
    ("/embed", {"inputs": text, "model": "seqcls"}),
    ("/embed_all", {"inputs": [text, "tiny"]}),
    ("/v1/embeddings", {"input": [text, "two"], "model": "st"}),
    ("/v1/embeddings", {"input": [[5, 6, 7, 8]], "model": "st", "encoding_format": "base64"}),
    ("/predict", {"inputs": "i like this movie very much"}),
    ("/predict", {"inputs": ["i like it", "this film was terrible"], "raw_scores": True}),
    ("/predict", {"inputs": [["what is the capital", "paris is the capital"]]}),
    ("/token_classify", {"inputs": "hugging face is based in new york city"}),
    ("/token_classify", {"inputs": ["one two three", "four five"]}),
    ("/fill_mask", {"inputs": "paris is the <mask> of france"}),
    ("/fill_mask", {"inputs": "paris is the <mask> of france", "parameters": {"top_k": 3}}),
    ("/answer", {"inputs": {"question": "where is it", "context": "it is in paris, france, near the river"}}),
    ("/tokenize", {"inputs": [text, "héllo wörld"]}),
    ("/decode", {"ids": [0, 100, 200, 2]}),
    ("/embed", {"inputs": ""}), ("/embed", {"inputs": 5}), ("/fill_mask", {"inputs": "no mask"}),
]

def main():
    tmp = tempfile.mkdtemp()
    pf = os.path.join(tmp, "port")
    args = [binary, "--hostname", "127.0.0.1", "--port", "0", "--port-file", pf, "--threads", "1"]
    for name, d in models.items():
        args += ["--model-id", "%s=%s" % (name, os.path.join(fx, d))]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if os.path.exists(pf):
                break
            time.sleep(0.1)
        port = int(open(pf).read())
        for _ in range(600):  # the port is written once listening; models load after
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/ready" % port, timeout=10).status == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        for route, body in reqs:
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, route),
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                r = urllib.request.urlopen(req, timeout=60)
                status, hdrs, data = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                status, hdrs, data = e.code, e.headers, e.read()
            xs = sorted("%s: %s" % (k.lower(), v) for k, v in hdrs.items() if k.lower().startswith("x-") and k.lower() != "x-request-id")
            h = hashlib.sha256(("%d\n%s\n" % (status, "\n".join(xs))).encode() + data).hexdigest()[:16]
            print(route, status, h, json.dumps(body)[:60])
    finally:
        p.terminate()
        p.wait()

main()
