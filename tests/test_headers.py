#!/usr/bin/env python3
# Every header of the layers compiles on its own, and twice in a row (include guards): for each
# common/ formats/ proto/ kernels/ tokenizer/ engine/ server/ *.h, a one-line C file including
# it goes through the C compiler with the project's flags (-fsyntax-only). Standard library only.
"""Usage: test_headers.py ROOT [--pkg NAME]... -- CC [FLAG]...
  ROOT       the source tree
  --pkg      a pkg-config package whose --cflags the headers may need (best effort)
  CC FLAG..  the compiler command and the project's flags (tests/meson.build passes them)"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

LAYERS = ["common", "formats", "proto", "kernels", "tokenizer", "engine", "server"]

# ---- known exceptions ---------------------------------------------------------------------
# Headers (tree-relative) that do not compile alone yet. Each is a debt: fix the header and
# delete the entry; an entry whose header compiles fails the test, so the list cannot rot.
KNOWN_EXCEPTIONS = [
    # (none)
]


def headers(root):
    out = []
    for layer in LAYERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, layer)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in filenames:
                if f.endswith(".h"):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(out)


def pkg_cflags(pkgs):
    exe = shutil.which("pkg-config") or shutil.which("pkgconf")
    if not exe or not pkgs:
        return []
    flags = []
    for p in pkgs:  # one by one: a missing package costs only its own flags
        r = subprocess.run([exe, "--cflags", p], capture_output=True, text=True)
        if r.returncode == 0:
            # -isystem: a dependency's own warnings are not ours to fix
            flags += ["-isystem" + f[2:] if f.startswith("-I") else f for f in r.stdout.split()]
    return flags


def compile_one(root, rel, cmd, tmp):
    src = os.path.join(tmp, rel.replace("/", "__") + ".c")
    path = os.path.join(root, rel)
    with open(src, "w") as f:
        f.write('#include "%s"\n#include "%s"\n' % (path, path))
    r = subprocess.run(cmd + ["-fsyntax-only", src], capture_output=True, text=True)
    return rel, r.returncode == 0, (r.stdout + r.stderr).strip()


def main(argv):
    if "--" not in argv or len(argv) < 4:
        print(__doc__)
        return 2
    sep = argv.index("--")
    root, opts, cmd = os.path.abspath(argv[1]), argv[2:sep], argv[sep + 1 :]
    pkgs = [opts[i + 1] for i in range(len(opts) - 1) if opts[i] == "--pkg"]
    cmd = cmd + pkg_cflags(pkgs)
    hs = headers(root)
    known = set(KNOWN_EXCEPTIONS)
    problems = 0
    with tempfile.TemporaryDirectory(prefix="ls-headers-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda h: compile_one(root, h, cmd, tmp), hs))
    for rel, ok, log in results:
        if rel in known:
            if ok:
                problems += 1
                print("stale exception %s: it compiles alone now, delete it from "
                      "KNOWN_EXCEPTIONS in tests/test_headers.py" % rel)
            else:
                print("known exception %s: does not compile alone" % rel)
        elif not ok:
            problems += 1
            print("%s does not compile on its own:\n%s\n" % (rel, log))
    for rel in sorted(known - set(hs)):
        problems += 1
        print("stale exception %s: no such header" % rel)
    print("%d headers, each alone: %d problem(s) (%s)" % (len(hs), problems, " ".join(cmd)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
