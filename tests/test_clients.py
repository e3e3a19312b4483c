#!/usr/bin/env python3
"""The real client packages, unmodified, against the real server (suite `clients`).

openai, tritonclient.http (+ .aio) and huggingface_hub's InferenceClient talk to
build/server/longserve on 127.0.0.1 (ephemeral ports, fixture models) and every answer is
compared with the fixtures' reference numbers:
  - st_tiny (tests/fixtures/embed/st_tiny/expected.json): sentence-transformers' embeddings;
  - the text heads (tests/fixtures/embed/pipelines.json): Hugging Face pipelines' outputs;
  - lf_base (tests/fixtures/lf_base/cases/*): Hugging Face LongformerModel's tensors;
  - the default model (models/all-MiniLM-L6-v2, when tools/fetch-default-model.sh fetched it;
    tests/fixtures/embed/minilm_expected.json): sentence-transformers' embeddings;
  - st_prompts (tests/fixtures/embed/st_prompts/expected.json): sentence-transformers'
    encode(prompt_name=...).
to <= 1e-4 relative error (max |diff| / max |expected|). Each check prints one table row.
Where promtool and prometheus are installed, /metrics also goes through `promtool check
metrics` and a real Prometheus scrape (rows skipped with a message otherwise).

The packages live in a virtualenv made by tools/client-venv.sh ($LONGSERVE_CLIENT_VENV, by
default /tmp/longserve-clients); without it the test says so and exits 77 (skipped). It runs
itself again under that virtualenv's python.
"""

import os
import sys

VENV = os.environ.get("LONGSERVE_CLIENT_VENV", "/tmp/longserve-clients")
VENV_PY = os.path.join(VENV, "bin", "python")

if os.environ.get("LS_CLIENTS_IN_VENV") != "1":
    if not os.access(VENV_PY, os.X_OK):
        print(f"SKIP: no client virtualenv at {VENV} (make it with tools/client-venv.sh)")
        sys.exit(77)
    os.environ["LS_CLIENTS_IN_VENV"] = "1"
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])

import asyncio
import importlib.metadata
import base64
import json
import signal
import struct
import subprocess
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

import numpy as np

try:
    import huggingface_hub
    import openai
    import tritonclient
    import tritonclient.http as tclient
    import tritonclient.http.aio as taio
    from huggingface_hub import InferenceClient
except ImportError as e:
    print(f"SKIP: {VENV} lacks a client package ({e}); run tools/client-venv.sh")
    sys.exit(77)

HERE = Path(__file__).resolve().parent
FIX = Path(os.environ.get("LS_FIXTURES", HERE / "fixtures"))
BIN = os.environ.get("LONGSERVE", str(HERE.parent / "build" / "server" / "longserve"))
DEFAULT_MODEL = FIX.parent.parent / "models" / "all-MiniLM-L6-v2"
TOL = 1e-4

ROWS = []
FAILED = []


def rel_err(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape}, expected {want.shape}")
    scale = np.max(np.abs(want))
    return float(np.max(np.abs(got - want)) / (scale if scale > 0 else 1.0))


def close(got, want, what: str) -> float:
    e = rel_err(got, want)
    if not e <= TOL:
        raise AssertionError(f"{what}: relative error {e:.3g} > {TOL}")
    return e


def check(client: str, call: str):
    """Runs fn() as one row of the table: its return value is the result column."""

    def wrap(fn):
        try:
            result = fn()
            ROWS.append((client, call, "works; " + result))
            print(f"| {client} | `{call}` | works; {result} |", flush=True)
        except Exception as e:  # one failing row must not hide the others
            FAILED.append(call)
            ROWS.append((client, call, f"FAILED: {e!r}"))
            print(f"| {client} | `{call}` | FAILED: {type(e).__name__}: {e} |", flush=True)
            traceback.print_exc()
        return fn

    return wrap


# ---- the server -------------------------------------------------------------------------------


class Server:
    """longserve on 127.0.0.1 with an ephemeral port (--port 0 --port-file); ready on return."""

    def __init__(self, models, *extra):
        self.tmp = tempfile.TemporaryDirectory(prefix="ls-clients-")
        self.port_file = os.path.join(self.tmp.name, "port")
        self.log = open(os.path.join(self.tmp.name, "log"), "w+")
        argv = [BIN]
        for m in models:
            argv += ["--model-id", m]
        argv += ["--hostname", "127.0.0.1", "--port", "0", "--port-file", self.port_file,
                 "--threads", "1", *extra]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._wait_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _alive(self):
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise RuntimeError(f"longserve exited {self.proc.returncode}: {self.log.read()[-2000:]}")

    def _wait_port(self) -> int:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            self._alive()
            try:
                text = Path(self.port_file).read_text().strip()
                if text:
                    return int(text)
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("longserve wrote no port within 60 s")

    def _wait_ready(self):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            self._alive()
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("longserve not ready within 120 s")

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- reference numbers ------------------------------------------------------------------------


def load_json(rel: str):
    return json.loads((FIX / rel).read_text(encoding="utf-8"))


def read_safetensors(path: Path) -> dict:
    """The float32 tensors of a .safetensors file (the format is 8 bytes of header length, a
    JSON header, then the data), without the safetensors package."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {t['dtype']}")
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(t["shape"])
    return out


def truncate_renorm(v, d):
    v = np.asarray(v, dtype=np.float64)[:d]
    return v / np.linalg.norm(v)


ST = load_json("embed/st_tiny/expected.json")
ST_TEXTS = [c["text"] for c in ST["cases"]]
ST_EMB = np.array([c["embedding"] for c in ST["cases"]])
PIPE = load_json("embed/pipelines.json")


def v2_case(model: str, case: str):
    req = load_json(f"{model}/cases/{case}.request.json")
    want = read_safetensors(FIX / model / "cases" / f"{case}.expected.safetensors")
    return req, want


def triton_inputs(mod, req):
    """The request's tensors as the client's InferInput objects (binary by default)."""
    dt = {"INT64": np.int64, "INT32": np.int32}
    ins = []
    for t in req["inputs"]:
        a = np.array(t["data"], dtype=dt[t["datatype"]]).reshape(t["shape"])
        i = mod.InferInput(t["name"], list(a.shape), t["datatype"])
        i.set_data_from_numpy(a)
        ins.append(i)
    return ins


# ---- openai -----------------------------------------------------------------------------------


def openai_checks(srv: Server):
    c = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
    ver = openai.__version__

    @check(f"openai {ver}", 'embeddings.create(model="st_tiny", input=[6 texts])')
    def _():
        r = c.embeddings.create(model="st_tiny", input=ST_TEXTS)
        got = [d.embedding for d in sorted(r.data, key=lambda d: d.index)]
        e = close(got, ST_EMB, "float vectors")
        assert r.model == "st_tiny", r.model
        assert r.usage.prompt_tokens == sum(len(c["ids"]) for c in ST["cases"]), r.usage
        return f"6 vectors = sentence-transformers' to {e:.1e}; usage.prompt_tokens {r.usage.prompt_tokens}"

    @check(f"openai {ver}", 'embeddings.create(..., encoding_format="base64")')
    def _():
        # the client asks for base64 itself when no format is given and decodes it with numpy;
        # ask explicitly and decode by hand, so the wire format is what is checked
        r = c.embeddings.with_raw_response.create(model="st_tiny", input=ST_TEXTS[:2],
                                                  encoding_format="base64")
        body = json.loads(r.text)
        got = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in body["data"]]
        e = close(got, ST_EMB[:2], "base64 vectors")
        return f"float32 little-endian base64 = sentence-transformers' to {e:.1e}"

    @check(f"openai {ver}", "AsyncOpenAI().embeddings.create (4 concurrent)")
    def _():
        async def go():
            ac = openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
            try:
                rs = await asyncio.gather(
                    *[ac.embeddings.create(model="st_tiny", input=t) for t in ST_TEXTS[:4]])
            finally:
                await ac.close()
            return [r.data[0].embedding for r in rs]

        e = close(asyncio.run(go()), ST_EMB[:4], "async vectors")
        return f"= sentence-transformers' to {e:.1e}"

    @check(f"openai {ver}", "models.list()")
    def _():
        ids = [m.id for m in c.models.list()]
        for want in ("st_tiny", "lf_base", "st_prompts", "text-embedding-3-small"):
            assert want in ids, ids
        return f"ids {ids}"

    @check(f"openai {ver}", 'models.retrieve("st_tiny"), ("text-embedding-3-small")')
    def _():
        m = c.models.retrieve("st_tiny")
        a = c.models.retrieve("text-embedding-3-small")
        assert m.id == "st_tiny" and m.object == "model", m
        assert a.id == "text-embedding-3-small", a
        return f"Model(id={m.id!r}, owned_by={m.owned_by!r}); the alias too"

    @check(f"openai {ver}", 'models.retrieve("nope")')
    def _():
        try:
            c.models.retrieve("nope")
        except openai.NotFoundError as e:
            assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.code)
            return "NotFoundError 404, code model_not_found (as OpenAI)"
        raise AssertionError("no error")

    @check(f"openai {ver}", 'embeddings.create(..., dimensions=8), (dimensions=32 = hidden)')
    def _():
        r = c.embeddings.create(model="st_tiny", input=ST_TEXTS[:3], dimensions=8)
        got = [d.embedding for d in r.data]
        want = [truncate_renorm(v, 8) for v in ST_EMB[:3]]
        e = close(got, want, "dimensions=8")
        r = c.embeddings.create(model="st_tiny", input=ST_TEXTS[:1], dimensions=32)
        e2 = close([r.data[0].embedding], ST_EMB[:1], "dimensions=32")
        try:
            c.embeddings.create(model="st_tiny", input="a", dimensions=33)
            raise AssertionError("dimensions=33 accepted")
        except openai.UnprocessableEntityError:
            pass
        return (f"8 values = the full vector truncated and re-normalised to {e:.1e}; 32: the full "
                f"one to {e2:.1e}; 33 (> hidden): 422")

    @check(f"openai {ver}", 'embeddings.create(model="text-embedding-3-small") via --served-model-name')
    def _():
        r = c.embeddings.create(model="text-embedding-3-small", input=ST_TEXTS[:2])
        e = close([d.embedding for d in r.data], ST_EMB[:2], "alias vectors")
        assert r.model == "text-embedding-3-small", r.model
        return f"st_tiny's vectors to {e:.1e}; response model echoes the alias"

    @check(f"openai {ver}", 'embeddings.create(model="st_prompts", extra_body={"prompt_name": ...})')
    def _():
        exp = load_json("embed/st_prompts/expected.json")
        e = 0.0
        for name, want in exp["embeddings"].items():
            extra = {"prompt_name": name} if name else None
            r = c.embeddings.create(model="st_prompts", input=exp["texts"], extra_body=extra)
            e = max(e, close([d.embedding for d in r.data], want, f"prompt {name!r}"))
        try:
            c.embeddings.create(model="st_tiny", input="a", extra_body={"prompt_name": "query"})
            raise AssertionError("a prompt_name on a model without prompts was accepted")
        except openai.UnprocessableEntityError:
            pass
        return (f"each prompt and the default one = sentence-transformers' encode(prompt_name=) "
                f"(include_prompt false) to {e:.1e}; a model without prompts: 422")

    @check(f"openai {ver}", 'embeddings.create(model="gpt-unknown")')
    def _():
        try:
            c.embeddings.create(model="gpt-unknown", input="a")
        except openai.NotFoundError as e:
            assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.code)
            return "NotFoundError 404, code model_not_found"
        raise AssertionError("no error")



def openai_minilm_checks(srv: Server):
    """The default model: 384 dimensions, served as "minilm" with the Hub's name as an alias."""
    c = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
    ver = openai.__version__
    mini = load_json("embed/minilm_expected.json")
    texts = [x["text"] for x in mini["cases"]][:4]
    want = np.array([x["embedding"] for x in mini["cases"]][:4])

    @check(f"openai {ver}", 'embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2" '
           '(alias of "minilm"), dimensions=128 and 384)')
    def _():
        name = "sentence-transformers/all-MiniLM-L6-v2"
        r = c.embeddings.create(model=name, input=texts)
        e = close([d.embedding for d in r.data], want, "minilm")
        r = c.embeddings.create(model=name, input=texts, dimensions=128)
        e128 = close([d.embedding for d in r.data], [truncate_renorm(v, 128) for v in want], "128")
        r = c.embeddings.create(model=name, input=texts, dimensions=384)
        e384 = close([d.embedding for d in r.data], want, "384")
        assert r.model == name, r.model
        return (f"= sentence-transformers' to {e:.1e}; dimensions=128 truncated+renormalised "
                f"to {e128:.1e}; 384 to {e384:.1e}")


# ---- tritonclient -----------------------------------------------------------------------------


def triton_checks(srv: Server):
    hostport = f"127.0.0.1:{srv.port}"
    c = tclient.InferenceServerClient(hostport)
    ver = importlib.metadata.version("tritonclient")
    cases = [v2_case("lf_base", k) for k in ("short_nomask", "multiple_many_global")]

    def compare(res, want, names=("last_hidden_state", "pooler_output")):
        return max(close(res.as_numpy(n), want[n], n) for n in names)

    @check(f"tritonclient.http {ver}", 'infer("lf_base", inputs) with the defaults (binary)')
    def _():
        e = max(compare(c.infer("lf_base", triton_inputs(tclient, req)), want)
                for req, want in cases)
        return f"2 cases (INT64; INT32 + global mask) = HF's last_hidden_state, pooler_output to {e:.1e}"

    @check(f"tritonclient.http {ver}", "infer(outputs=[binary_data=True], [binary_data=False])")
    def _():
        req, want = cases[1]
        out = []
        for binary in (True, False):
            outs = [tclient.InferRequestedOutput("last_hidden_state", binary_data=binary)]
            r = c.infer("lf_base", triton_inputs(tclient, req), outputs=outs)
            assert r.get_output("pooler_output") is None, "an output that was not asked for"
            out.append(compare(r, want, ("last_hidden_state",)))
        return f"binary to {out[0]:.1e}, JSON to {out[1]:.1e}; only the output asked for"

    @check(f"tritonclient.http {ver}", 'infer(..., request_compression_algorithm="gzip", '
           'response_compression_algorithm="gzip")')
    def _():
        req, want = cases[1]
        e1 = compare(c.infer("lf_base", triton_inputs(tclient, req),
                             request_compression_algorithm="gzip"), want)
        e2 = compare(c.infer("lf_base", triton_inputs(tclient, req),
                             request_compression_algorithm="deflate",
                             response_compression_algorithm="gzip"), want)
        return f"gzip request to {e1:.1e}; deflate request + gzip reply to {e2:.1e}"

    @check(f"tritonclient.http {ver}", 'infer(..., model_version="1"); is_model_ready(m, "1"/"2")')
    def _():
        req, want = cases[0]
        e = compare(c.infer("lf_base", triton_inputs(tclient, req), model_version="1"), want)
        assert c.is_model_ready("lf_base", "1") is True
        assert c.is_model_ready("lf_base", "2") is False
        assert c.is_model_ready("lf_base") is True
        assert c.is_server_live() and c.is_server_ready()
        try:
            c.infer("lf_base", triton_inputs(tclient, req), model_version="2")
            raise AssertionError("version 2 answered")
        except tritonclient.utils.InferenceServerException as ex:
            assert ex.status() == "404" or "404" in str(ex.status()), ex.status()
        return f"version 1 to {e:.1e}; ready(1) True, ready(2) False, infer version 2: 404"

    @check(f"tritonclient.http {ver}", "get_model_metadata, get_model_config")
    def _():
        md = c.get_model_metadata("lf_base")
        assert md["name"] == "lf_base", md
        assert {i["name"] for i in md["inputs"]} >= {"input_ids", "attention_mask"}, md
        cfg = c.get_model_config("lf_base")
        assert cfg["name"] == "lf_base" and cfg["max_batch_size"] == 0, cfg
        outs = {o["name"]: o for o in cfg["output"]}
        assert outs["last_hidden_state"]["dims"] == [-1, -1, 32], outs
        return f"config outputs {sorted(outs)}, max_batch_size 0"

    @check(f"tritonclient.http {ver}", "get_inference_statistics, get_model_repository_index")
    def _():
        # one inference the model refuses (a token id past the vocabulary: 422) is a failure
        bad = np.array([[0, 99999, 2]], dtype=np.int64)
        i = tclient.InferInput("input_ids", list(bad.shape), "INT64")
        i.set_data_from_numpy(bad)
        try:
            c.infer("lf_base", [i])
            raise AssertionError("token id 99999 accepted")
        except tritonclient.utils.InferenceServerException as ex:
            assert "99999" in ex.message(), ex.message()
        s = c.get_inference_statistics("lf_base")
        st = s["model_stats"][0]
        # the seven successful infers above (version 2 is refused at its path, not counted)
        ok = int(st["inference_stats"]["success"]["count"])
        fail = int(st["inference_stats"]["fail"]["count"])
        assert st["name"] == "lf_base" and ok == 7 and fail == 1, st
        assert int(st["inference_count"]) == 7, st
        idx = c.get_model_repository_index()
        names = {m["name"]: m for m in idx}
        assert set(names) == {"st_tiny", "lf_base", "st_prompts"}, idx
        assert names["lf_base"]["state"] == "READY", idx
        return (f"lf_base: {ok} successes and {fail} failure counted as sent; "
                f"index {sorted(names)} READY")

    @check(f"tritonclient.http.aio {ver}", "await infer() with the defaults; is_model_ready")
    def _():
        async def go():
            ac = taio.InferenceServerClient(hostport)
            try:
                assert await ac.is_model_ready("lf_base", "1")
                rs = await asyncio.gather(*[ac.infer("lf_base", triton_inputs(taio, req))
                                            for req, _ in cases])
            finally:
                await ac.close()
            return rs

        rs = asyncio.run(go())
        e = max(compare(r, want) for r, (_, want) in zip(rs, cases))
        return f"2 concurrent = HF's to {e:.1e}"


# ---- Prometheus ---------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on now (for Prometheus, which cannot report an ephemeral
    port it chose); it fails loudly, not silently, in the unlikely case it is taken meanwhile."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_checks(srv: Server):
    import shutil

    promtool, prom = shutil.which("promtool"), shutil.which("prometheus")
    if not promtool or not prom:
        print("| prometheus | `promtool check metrics`, a real scrape | skipped: promtool/prometheus "
              "not installed (apt-get install prometheus) |", flush=True)
        return

    @check("promtool", "promtool check metrics < GET /metrics (after the calls above)")
    def _():
        with urllib.request.urlopen(srv.url + "/metrics", timeout=30) as r:
            text = r.read()
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
        assert p.returncode == 0, p.stdout + p.stderr
        families = text.count(b"\n# TYPE ")
        return f"clean ({families} metric families)"

    @check("prometheus", "a real scrape of /metrics (scrape_interval 1s)")
    def _():
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="ls-prom-") as d:
            cfg = Path(d) / "prometheus.yml"
            cfg.write_text("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                           "scrape_configs:\n- job_name: longserve\n"
                           f"  static_configs: [{{targets: ['127.0.0.1:{srv.port}']}}]\n")
            log = open(Path(d) / "log", "w+")
            p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={d}/tsdb",
                                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                 stdout=log, stderr=subprocess.STDOUT)
            try:
                api = f"http://127.0.0.1:{port}/api/v1"
                t0, last = time.monotonic(), None
                while time.monotonic() - t0 < 90:  # generous: the wait is for an event, not a time
                    if p.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"prometheus exited {p.returncode}: {log.read()[-1500:]}")
                    try:
                        with urllib.request.urlopen(api + "/query?query=longserve_build_info",
                                                    timeout=5) as r:
                            last = json.loads(r.read())
                        if last["data"]["result"]:
                            break
                    except OSError:
                        pass
                    time.sleep(0.2)
                res = last and last["data"]["result"]
                assert res, f"no longserve_build_info sample within 90 s: {last}"
                with urllib.request.urlopen(api + "/targets", timeout=5) as r:
                    tg = json.loads(r.read())["data"]["activeTargets"]
                assert tg and tg[0]["health"] == "up", tg
                q = "longserve_requests_total"
                with urllib.request.urlopen(api + "/query?query=" + q, timeout=5) as r:
                    n = len(json.loads(r.read())["data"]["result"])
                assert n > 0, "no longserve_requests_total series"
            finally:
                p.terminate()
                p.wait(timeout=30)
                log.close()
        return (f"target up, longserve_build_info{{version={res[0]['metric'].get('version')!r}}} "
                f"and {n} longserve_requests_total series ingested")


# ---- huggingface_hub --------------------------------------------------------------------------


def hub_checks(servers: dict):
    ver = huggingface_hub.__version__
    who = f"huggingface_hub {ver}"

    @check(who, "InferenceClient(model=URL).feature_extraction(text)")
    def _():
        c = InferenceClient(model=servers["st_tiny"].url)
        e = max(close(c.feature_extraction(t), ST_EMB[i : i + 1], t) for i, t in
                enumerate(ST_TEXTS))
        return f"6 texts = sentence-transformers' to {e:.1e}"

    # the client reads /info only for its "hf-inference" provider (Inference Endpoints: TEI/TGI)
    def info_of(name):
        return InferenceClient(model=servers[name].url, provider="hf-inference").get_endpoint_info()

    @check(who, 'InferenceClient(model=URL, provider="hf-inference").get_endpoint_info()')
    def _():
        info = info_of("st_tiny")
        for k in ("model_id", "model_sha", "model_dtype", "model_type", "max_concurrent_requests",
                  "max_input_length", "max_batch_tokens", "max_batch_requests",
                  "max_client_batch_size", "auto_truncate", "tokenization_workers", "version",
                  "sha", "docker_label", "served_model_name"):
            assert k in info, (k, sorted(info))
        assert info["model_type"] == {"embedding": {"pooling": "mean"}}, info["model_type"]
        cls = info_of("seqcls")["model_type"]
        labels = [x["label"] for x in PIPE["predict"]["outputs"][0]]
        assert set(cls["classifier"]["id2label"].values()) == set(labels), cls
        mlm = info_of("mlm")["model_type"]
        assert mlm == {"embedding": {"pooling": "splade"}}, mlm
        return (f"TEI's fields; model_type {info['model_type']}, a classifier's id2label/label2id, "
                f"a masked-LM model's pooling splade")

    @check(who, 'feature_extraction(text, prompt_name="passage"), and with the default prompt')
    def _():
        c = InferenceClient(model=servers["st_prompts"].url)
        exp = load_json("embed/st_prompts/expected.json")
        e = 0.0
        for i, t in enumerate(exp["texts"]):
            e = max(e, close(c.feature_extraction(t, prompt_name="passage"),
                             exp["embeddings"]["passage"][i : i + 1], t))
            e = max(e, close(c.feature_extraction(t), exp["embeddings"][""][i : i + 1], t))
        return f"= sentence-transformers' encode(prompt_name=) to {e:.1e}"

    @check(who, "sentence_similarity(source, other_sentences)")
    def _():
        c = InferenceClient(model=servers["st_tiny"].url)
        got = c.sentence_similarity(ST_TEXTS[0], other_sentences=ST_TEXTS[1:])
        n = ST_EMB / np.linalg.norm(ST_EMB, axis=1, keepdims=True)
        e = close(got, n[1:] @ n[0], "cosines")
        return f"5 cosines = those of sentence-transformers' vectors to {e:.1e}"

    @check(who, "text_classification(text), (text, top_k=2)")
    def _():
        c = InferenceClient(model=servers["seqcls"].url)
        e = 0.0
        for text, want in zip(PIPE["predict"]["inputs"], PIPE["predict"]["outputs"]):
            got = c.text_classification(text)
            top = c.text_classification(text, top_k=2)
            assert [g.label for g in top] == [w["label"] for w in want[:2]], (top, want)
            got_all = {g.label: g.score for g in got}
            assert set(got_all) <= {w["label"] for w in want}, got
            for g in got + top:
                w = next(w for w in want if w["label"] == g.label)
                e = max(e, close([g.score], [w["score"]], g.label))
        return f"labels and scores = the text-classification pipeline's to {e:.1e}; top_k=2 its best 2"

    @check(who, "token_classification(text)")
    def _():
        c = InferenceClient(model=servers["tokcls"].url)
        e = 0.0
        n = 0
        for text, want in zip(PIPE["token_classify"]["inputs"], PIPE["token_classify"]["outputs"]):
            got = c.token_classification(text)
            assert len(got) == len(want), (len(got), len(want))
            for g, w in zip(got, want):
                label = getattr(g, "entity", None) or g.entity_group
                assert (label, g.word, g.start, g.end) == (w["entity"], w["word"], w["start"],
                                                           w["end"]), (g, w)
                e = max(e, close([g.score], [w["score"]], g.word))
                n += 1
        return f"{n} tokens: entity, word, start, end = the pipeline's, scores to {e:.1e}"

    @check(who, "fill_mask(text)")
    def _():
        c = InferenceClient(model=servers["mlm"].url)
        e = 0.0
        for text, want in zip(PIPE["fill_mask"]["inputs"], PIPE["fill_mask"]["outputs"]):
            got = c.fill_mask(text)
            assert [g.token for g in got] == [w["token"] for w in want], (got, want)
            assert [g.sequence for g in got] == [w["sequence"] for w in want], (got, want)
            e = max(e, close([g.score for g in got], [w["score"] for w in want], text))
        return f"top-5 tokens, sequences = the fill-mask pipeline's, scores to {e:.1e}"

    @check(who, "question_answering(question, context)")
    def _():
        c = InferenceClient(model=servers["qa"].url)
        e = 0.0
        for inp, want in zip(PIPE["answer"]["inputs"], PIPE["answer"]["outputs"]):
            got = c.question_answering(question=inp["question"], context=inp["context"])
            assert (got.answer, got.start, got.end) == (want["answer"], want["start"],
                                                        want["end"]), (got, want)
            e = max(e, close([got.score], [want["score"]], inp["question"]))
        return f"3 answers, start, end = the question-answering pipeline's, scores to {e:.1e}"


def main() -> int:
    if not os.access(BIN, os.X_OK):
        print(f"longserve not found at {BIN} (set LONGSERVE)")
        return 1
    minilm = (DEFAULT_MODEL / "model.safetensors").exists()
    print(f"clients from {VENV}: openai {openai.__version__}, huggingface_hub "
          f"{huggingface_hub.__version__}; server {BIN}")
    print("| client | call | result |\n|---|---|---|", flush=True)
    models = [f"st_tiny={FIX}/embed/st_tiny", f"lf_base={FIX}/lf_base",
              f"st_prompts={FIX}/embed/st_prompts"]
    extra = ["--served-model-name", "text-embedding-3-small=st_tiny"]
    with Server(models, *extra) as srv:
        openai_checks(srv)
        triton_checks(srv)
        prometheus_checks(srv)
    if minilm:
        with Server([f"minilm={DEFAULT_MODEL}"], "--window", "512", "--served-model-name",
                    "sentence-transformers/all-MiniLM-L6-v2") as srv:
            openai_minilm_checks(srv)
    else:
        print(f"| openai | all-MiniLM-L6-v2: alias, `dimensions=128`, `=384` | skipped: "
              f"{DEFAULT_MODEL} absent (tools/fetch-default-model.sh) |", flush=True)
    heads = {"st_tiny": "embed/st_tiny", "seqcls": "embed/lf_seqcls_tok",
             "tokcls": "embed/lf_tokcls_tok", "mlm": "embed/lf_mlm_tok", "qa": "embed/lf_qa_tok",
             "st_prompts": "embed/st_prompts"}
    # one task per server, as TEI: InferenceClient(model=URL) posts to "/" and the server
    # answers as its (first) model's task
    servers = {}
    try:
        for name, rel in heads.items():
            servers[name] = Server([f"{name}={FIX / rel}"])
        hub_checks(servers)
    finally:
        for s in servers.values():
            s.stop()
    print(f"\n{len(ROWS)} rows, {len(FAILED)} failed" + (f": {FAILED}" if FAILED else ""))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
