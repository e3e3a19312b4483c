#!/usr/bin/env python3
# The include rules of shared/DESIGN.md §2 as a test: which folder may include which, where
# cJSON, libmicrohttpd, libuv and CUDA headers may appear, no CUDA conditionals in engine/,
# no include cycle among server/ headers. Standard library only; `--self-test` proves it bites.
"""Usage: test_layers.py [ROOT]      scan the tree at ROOT (default: this file's ../)
       test_layers.py --self-test  build a synthetic tree with one violation per rule and
                                   check that each is reported (and a clean tree is not)"""

import os
import re
import sys
import tempfile

# ---- the rules ----------------------------------------------------------------------------

# Project folders a folder's files may include from (its own folder is always allowed).
# Folders not listed here (tests/, bench/, fuzz/) may include from anywhere.
LAYERS = {
    "common": set(),
    "formats": {"common"},
    "tokenizer": {"common", "formats"},
    "proto": {"common", "formats"},
    "kernels": set(),
    "engine": {"common", "formats", "kernels", "tokenizer"},
    # not in DESIGN.md by name: the product never includes test, bench or tool code
    "server": {"common", "formats", "proto", "kernels", "tokenizer", "engine"},
}
PROJECT_FOLDERS = set(LAYERS) | {"tests", "bench", "fuzz", "tools"}
CJSON_FOLDERS = {"formats", "proto", "tests", "fuzz"}
CUDA_HEADER = re.compile(
    r"^(cuda|cub/|cublas|cufft|curand|cusolver|cusparse|nvrtc|nvml|nvtx|thrust/|"
    r"cooperative_groups|device_launch_parameters|__clang_cuda)"
)
CUDA_CONDITIONAL = re.compile(r"cuda|nvcc", re.IGNORECASE)

# Rule names, as reported and as used in KNOWN_EXCEPTIONS.
RULES = {
    "engine-http": "engine/ includes nothing from proto/ or server/",
    "layer": "a folder includes only from the folders below it",
    "cjson": "<cjson/cJSON.h> only in formats/, proto/ (and tests/, fuzz/)",
    "microhttpd": "<microhttpd.h> only in server/http.c",
    "uv": "<uv.h> only in server/",
    "cuda-header": "CUDA headers only in kernels/cuda/",
    "engine-cuda-if": "engine/ has no CUDA conditionals (#ifdef CUDA, __CUDACC__, LS_CUDA ...)",
    "server-cycle": "server/ headers include each other in no cycle",
}

# ---- known exceptions ---------------------------------------------------------------------
# Violations the current tree has and that are to be fixed, as (file, rule, include or
# condition as written). Each entry is a debt: fix the code and delete the entry. An entry
# that no longer matches anything fails the test, so the list cannot rot.
KNOWN_EXCEPTIONS = [
    # (none)
]

# ---- scanning -----------------------------------------------------------------------------

SOURCE_EXT = (".c", ".h", ".cu", ".cuh", ".cc", ".cpp")
SKIP_DIRS = {"tools", ".git", "subprojects", "models"}
TOKEN = re.compile(
    r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.DOTALL
)
DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")
INCLUDE = re.compile(r'^([<"])([^>"]+)[>"]')


def is_build_dir(path):
    return any(
        os.path.exists(os.path.join(path, m))
        for m in ("meson-private", "build.ninja", "CMakeCache.txt", "meson-info")
    )


def source_files(root):
    """Paths relative to root (with '/'), sorted, of every source file the rules cover."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            drel = d if rel == "." else rel + "/" + d
            if d.startswith(".") or os.path.islink(full) or is_build_dir(full):
                continue
            if (rel == "." and (d in SKIP_DIRS or d.startswith("build"))) or drel in (
                "tests/fixtures",
                "fuzz/corpus",
            ):
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for f in filenames:
            if f.endswith(SOURCE_EXT):
                out.append(f if rel == "." else rel + "/" + f)
    return sorted(out)


def strip_comments(text):
    """The text with comments blanked (newlines kept, so line numbers hold)."""

    def blank(m):
        s = m.group(0)
        return re.sub(r"[^\n]", " ", s) if s[0] == "/" else s

    return TOKEN.sub(blank, text)


def directives(text):
    """(line number, directive name, rest) of each preprocessor line, continuations joined."""
    lines = strip_comments(text).split("\n")
    i = 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        m = DIRECTIVE.match(line)
        if m:
            yield start, m.group(1), m.group(2).strip()
        i += 1


def folder_of(rel):
    return rel.split("/", 1)[0] if "/" in rel else ""


def resolve(root, rel, name):
    """The tree-relative path a quoted include names: next to the including file, else from
    the root. A name that is no file of the tree is a system header (None), unless it is
    spelled relative ("../x/y.h"): then the path it names, even if missing."""
    here = os.path.dirname(rel)
    for cand in (os.path.join(here, name), name):
        norm = os.path.normpath(cand).replace(os.sep, "/")
        if not norm.startswith("../") and os.path.isfile(os.path.join(root, norm)):
            return norm
    if not name.startswith("."):
        return None
    norm = os.path.normpath(os.path.join(here, name)).replace(os.sep, "/")
    return None if norm.startswith("../") else norm


def scan(root):
    """Every violation as (file, line, rule, what), sorted."""
    found = []
    server_edges = {}  # server/x.h -> [(line, server/y.h)]
    for rel in source_files(root):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        top = folder_of(rel)
        for line, name, rest in directives(text):
            if name in ("if", "ifdef", "ifndef", "elif", "elifdef", "elifndef"):
                if top == "engine" and CUDA_CONDITIONAL.search(rest):
                    cond = "#%s %s" % (name, " ".join(rest.split()))
                    found.append((rel, line, "engine-cuda-if", cond))
                continue
            if name not in ("include", "include_next"):
                continue
            m = INCLUDE.match(rest)
            if not m:
                continue
            quoted, spelled = m.group(1) == '"', m.group(2).strip()
            target = resolve(root, rel, spelled) if quoted else None
            tfolder = folder_of(target) if target else ""
            if target and tfolder in PROJECT_FOLDERS:
                if top == "engine" and tfolder in ("proto", "server"):
                    found.append((rel, line, "engine-http", spelled))
                elif top in LAYERS and tfolder != top and tfolder not in LAYERS[top]:
                    found.append((rel, line, "layer", spelled))
                if top == "server" and target.startswith("server/") and rel.endswith(".h"):
                    server_edges.setdefault(rel, []).append((line, target))
                continue
            # a system header (or a quoted name that is no file of the tree)
            base = spelled
            if base in ("cjson/cJSON.h", "cJSON.h") and top not in CJSON_FOLDERS:
                found.append((rel, line, "cjson", spelled))
            if base == "microhttpd.h" and rel != "server/http.c":
                found.append((rel, line, "microhttpd", spelled))
            if base == "uv.h" or base.startswith("uv/"):
                if top != "server":
                    found.append((rel, line, "uv", spelled))
            if CUDA_HEADER.match(base) and not rel.startswith("kernels/cuda/"):
                found.append((rel, line, "cuda-header", spelled))
    found += server_cycles(server_edges)
    return sorted(set(found))


def server_cycles(edges):
    """One violation per include cycle among server/ headers, at the edge closing it."""
    out, seen_cycles = [], set()
    state = {}  # 1 on the stack, 2 done

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for line, nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cyc = stack[stack.index(nxt):]
                key = frozenset(cyc)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    out.append((node, line, "server-cycle", " -> ".join(cyc + [nxt])))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return out


def check(root, exceptions, out=print):
    """Reports violations and stale exceptions through out; returns the number of problems."""
    found = scan(root)
    used, problems = set(), 0
    for rel, line, rule, what in found:
        key = (rel, rule, what)
        if key in exceptions:
            used.add(key)
            out("known exception %s:%d: [%s] %s" % (rel, line, rule, what))
            continue
        problems += 1
        out("%s:%d: [%s] %s: %s" % (rel, line, rule, RULES[rule], what))
    for key in exceptions:
        if key not in used:
            problems += 1
            out("stale exception %s [%s] %s: it no longer occurs, delete it from "
                  "KNOWN_EXCEPTIONS in tests/test_layers.py" % key)
    return problems


# ---- self-test: a synthetic tree with one violation per rule ------------------------------

# file -> content; "# bad:<rule>" in a line marks the violation it must report there.
SYNTHETIC = {
    "common/status.h": '#include <stddef.h>\n#include "buf.h"\n',
    "common/buf.h": "/* #include \"../engine/engine.h\" is only a comment */\n",
    "common/bad.c": '#include "status.h"\n#include "../formats/cfg.h" // bad:layer\n',
    "formats/cfg.h": '#include "../common/status.h"\n',
    "formats/json.c": "#include <cjson/cJSON.h>\n",
    "formats/bad.c": '#include "cfg.h"\n#include "../tokenizer/tok.h" // bad:layer\n',
    "tokenizer/tok.h": '#include "../common/status.h"\n#include "../formats/cfg.h"\n',
    "tokenizer/bad.c": '#include "tok.h"\n#  include "../engine/engine.h" // bad:layer\n',
    "proto/v2.c": '#include <cjson/cJSON.h>\n#include "../formats/cfg.h"\n',
    "proto/bad.c": '#include "../tokenizer/tok.h" // bad:layer\n',
    "kernels/kernels.h": "#ifdef __cplusplus\n#endif\n",
    "kernels/cuda/backend.cu": '#include <cuda_runtime.h>\n#include "../kernels.h"\n',
    "kernels/cpu/bad.c": '#include "../kernels.h"\n#include "../../common/status.h" // bad:layer\n'
    "#include <cublasLt.h> // bad:cuda-header\n",
    "engine/engine.h": '#include "../common/status.h"\n#include "../kernels/kernels.h"\n',
    "engine/bad_http.c": '#include "engine.h"\n#include "../server/srv.h" // bad:engine-http\n',
    "engine/bad_proto.c": '#include "../proto/v2.h" // bad:engine-http\n',
    "engine/bad_layer.c": '#include "../tests/testutil.h" // bad:layer\n',
    "engine/bad_cjson.c": "#include <cjson/cJSON.h> // bad:cjson\n",
    "engine/bad_if.c": "#ifdef LS_CUDA // bad:engine-cuda-if\n#endif\n"
    "#if defined(X) /* bad:engine-cuda-if */ && \\\n    defined(__CUDACC__)\n#endif\n",
    "engine/bad_cuda.c": "#include <cuda.h> // bad:cuda-header\n"
    '#include "cuda_runtime.h" // bad:cuda-header\n',
    "server/http.c": '#include <microhttpd.h>\n#include <uv.h>\n#include "srv.h"\n',
    "server/srv.h": '#include <uv.h>\n#include "a.h"\n#include "../engine/engine.h"\n',
    "server/a.h": '#include "b.h"\n',
    "server/b.h": '#include "../server/a.h" // bad:server-cycle\n',
    "server/bad_mhd.c": "#include <microhttpd.h> // bad:microhttpd\n",
    "server/bad_layer.c": '#include "../bench/x.h" // bad:layer\n',
    "proto/bad_uv.c": "#include <uv.h> // bad:uv\n",
    "bench/x.h": '#include "../server/srv.h"\n#include <cjson/cJSON.h> // bad:cjson\n',
    "tests/t.c": "#include <cjson/cJSON.h>\n#include <microhttpd.h> // bad:microhttpd\n",
    "fuzz/f.c": '#include <cjson/cJSON.h>\n#include "../server/srv.h"\n',
    "tools/x.c": "#include <uv.h>\n#include <cuda.h>\n",
    "tests/fixtures/x.c": "#include <uv.h>\n",
    "build/meson-private/x.c": "#include <uv.h>\n",
}


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def self_test():
    failures = []
    quiet = lambda _: None  # noqa: E731

    def expect(cond, msg):
        if not cond:
            failures.append(msg)

    with tempfile.TemporaryDirectory(prefix="ls-layers-") as root:
        write_tree(root, SYNTHETIC)
        want = set()
        for rel, text in SYNTHETIC.items():
            for i, line in enumerate(text.split("\n"), 1):
                for rule in re.findall(r"bad:([\w-]+)", line):
                    want.add((rel, i, rule))
        got = {(rel, line, rule) for rel, line, rule, _ in scan(root)}
        for w in sorted(want - got):
            expect(False, "not reported: %s:%d [%s]" % w)
        for g in sorted(got - want):
            expect(False, "reported but not a violation: %s:%d [%s]" % g)
        expect({r for _, _, r in want} == set(RULES), "the synthetic tree misses a rule")
        # exceptions silence their violation; a stale one is a failure
        exc = {("proto/bad_uv.c", "uv", "uv.h")}
        expect(check(root, exc, quiet) == len(want) - 1, "a known exception was not honoured")
        exc.add(("proto/bad_uv.c", "uv", "gone.h"))
        expect(check(root, exc, quiet) == len(want), "a stale exception was not reported")
    with tempfile.TemporaryDirectory(prefix="ls-layers-") as root:
        clean = {k: re.sub(r"^.*bad:.*$", "", v, flags=re.M) for k, v in SYNTHETIC.items()}
        write_tree(root, clean)
        expect(scan(root) == [], "a clean tree reported %s" % scan(root))
    for f in failures:
        print("SELF-TEST FAILED: " + f)
    print("self-test: %s" % ("FAILED" if failures else "ok, every rule reported"))
    return 1 if failures else 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    n = len(source_files(root))
    problems = check(root, set(KNOWN_EXCEPTIONS))
    print("%d files scanned, %d problem(s)" % (n, problems))
    if problems:
        print("rules (shared/DESIGN.md §2):")
        for name, text in RULES.items():
            print("  %-15s %s" % (name, text))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
