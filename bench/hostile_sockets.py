#!/usr/bin/env python3
"""Issue 13's socket case: N sockets (5,000) held open against a fresh longserve, idle or
sending one byte a second, from the prober's own address (127.0.0.1) or from others
(127.0.0.2 ...); a socket the server closes is opened again at once, as an attacker
would. While they are held, new connections from 127.0.0.1 send GET /health and
POST /embed, one at a time, and the time to each answer is recorded.

    python3 bench/hostile_sockets.py [--n 5000] [--probes 16] [--server build/server/longserve]
                                     [--model st_tiny=tests/fixtures/embed/st_tiny]
                                     [--scenario idle-same ...] [-- server options...]

Prints one line per scenario (median and worst seconds per route, the answers' statuses),
the server's open fds and RSS 2 s after the holders started, and how many times the
holders had to reconnect (the server closes a socket after --header-timeout). Needs
an open-file limit above 2 x N (raised here to the hard limit); standard library only.
"""
import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQ = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4096  # never ends


class Holders:
    """N sockets kept open from the given source addresses; trickle: one byte a second each."""

    def __init__(self, port, n, sources, trickle):
        self.port, self.n, self.sources, self.trickle = port, n, sources, trickle
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # fd -> [socket, bytes sent]
        self.reopened = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        for i in range(n):
            self.open(i)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.sources[i % len(self.sources)], 0))
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.socks[s.fileno()] = [s, 0, i]
        self.sel.register(s, selectors.EVENT_READ)

    def close(self, fd):
        s, _, i = self.socks.pop(fd)
        self.sel.unregister(s)
        s.close()
        return i

    def run(self):
        last = time.monotonic()
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.1):
                fd = key.fd
                try:
                    gone = not key.fileobj.recv(65536)
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone and not self.stop.is_set():
                    i = self.close(fd)
                    self.reopened += 1
                    self.open(i)
            now = time.monotonic()
            if self.trickle and now - last >= 1.0:
                last = now
                for ent in list(self.socks.values()):
                    s, k = ent[0], ent[1]
                    try:
                        s.send(REQ[k % len(REQ):k % len(REQ) + 1])
                        ent[1] += 1
                    except OSError:
                        pass

    def close_all(self):
        self.stop.set()
        self.thread.join()
        for fd in list(self.socks):
            self.close(fd)


def recv_all(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d


def http(port, method, path, body=None, timeout=60.0):
    """One request on a new connection from 127.0.0.1: (status, seconds)."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind(("127.0.0.1", 0))
    try:
        s.connect(("127.0.0.1", port))
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        data = recv_all(s)
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    finally:
        s.close()
    return status, time.monotonic() - t0


def metrics(port, names):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
        s.close()
    except OSError:  # refused (--max-connections-per-ip)
        return {}
    got = {}
    for line in data.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in names:
            got[parts[0]] = float(parts[1])
    return got


def scenario(args, name, extra):
    trickle = name.startswith("trickle")
    sources = ["127.0.0.1"] if name.endswith("same") else [
        f"127.0.{2 + k // 250}.{2 + k % 250}" for k in range(args.sources)]
    with tempfile.TemporaryDirectory() as tmp:
        pf = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "log"), "w")
        cmd = [args.server, "--model-id", args.model, "--hostname", "127.0.0.1", "--port", "0",
               "--port-file", pf] + extra
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        srv = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            for _ in range(600):
                if os.path.exists(pf) and open(pf).read().strip():
                    break
                time.sleep(0.1)
            port = int(open(pf).read())
            for _ in range(600):
                if http(port, "GET", "/ready")[0] == 200:
                    break
                time.sleep(0.1)
            body = json.dumps({"inputs": "a short probe"}).encode()
            base = http(port, "POST", "/embed", body)
            h = Holders(port, args.n, sources, trickle)
            time.sleep(2.0)  # the connects land (accepted or in the listen backlog)
            m = metrics(port, ("process_open_fds", "process_resident_memory_bytes"))
            health, embed = [], []
            for _ in range(args.probes):
                health.append(http(port, "GET", "/health"))
                embed.append(http(port, "POST", "/embed", body))
                time.sleep(1.0)
            reopened = h.reopened
            h.close_all()
        finally:
            srv.terminate()
            srv.wait(60)
            log.close()
    row = {"scenario": name, "n": args.n, "sources": len(sources),
           "server_open_fds": m.get("process_open_fds"),
           "server_rss_mb": round(m.get("process_resident_memory_bytes", 0) / 2**20, 1),
           "reopened_by_holders": reopened, "embed_alone_s": round(base[1], 4)}
    for route, res in (("health", health), ("embed", embed)):
        secs = [t for _, t in res]
        row[route + "_median_s"] = round(statistics.median(secs), 3)
        row[route + "_max_s"] = round(max(secs), 3)
        row[route + "_statuses"] = sorted({st for st, _ in res})
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--probes", type=int, default=16, help="each: /health, /embed, 1 s pause")
    ap.add_argument("--sources", type=int, default=100, help="other addresses, for *-other")
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "server", "longserve"))
    ap.add_argument("--model", default="st_tiny=" + os.path.join(ROOT, "tests", "fixtures",
                                                                  "embed", "st_tiny"))
    ap.add_argument("--scenario", action="append",
                    choices=["idle-same", "trickle-same", "idle-other", "trickle-other"])
    ap.add_argument("extra", nargs="*", help="server options (after --)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * args.n + 100:
        sys.exit(f"open-file limit {hard} is too low for {args.n} sockets")
    for name in args.scenario or ["idle-same", "trickle-same", "idle-other", "trickle-other"]:
        print(json.dumps(scenario(args, name, args.extra)), flush=True)


if __name__ == "__main__":
    main()
