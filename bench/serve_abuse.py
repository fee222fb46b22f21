"""Abuse ``thinkling serve`` as an adversarial client would, on loopback, and measure what it costs the server.

    OMP_NUM_THREADS=1 python bench/serve_abuse.py --out runs/bench-serve-abuse.json

Builds a tiny model from scratch (``build_tiny`` on the arithmetic oracle's texts, as the tests do), starts
``thinkling serve`` on it in a subprocess (default limits, except ``read_timeout_s`` = ``--read-timeout``
so that the slow-client probes take seconds, not half a minute) and replays, one after the other:

- completions carrying 20,000 prompts of 401 tokens (what got the server OOM-killed), as many as fit the
  8 MiB body limit (the most JSON the server parses), 800 of them (what took it to 4.4 GB), 500 short ones that the limits allow (decoded in slices of ``max_batch_size``) and
  a full batch of long ones (32 prompts x (24 + 488) tokens: half the costliest request allowed, which takes
  45 s on 2 cores);
- chat prompts of 1, 5 and 20 MB; a 100 MB body (sent whole, as most clients send one);
- a slow body (headers, then 10 bytes of a declared 1,000, then nothing) and slow headers (half a header);
- a non-streaming client that disconnects after a second of a 900-token reply;
- SIGTERM with 40 requests of 900 tokens in flight (4 of them streamed): the first batch runs past the
  grace of ``shutdown_timeout_s`` (5 s), so all should be answered with a JSON 503.

For each: the HTTP status (and error code), the seconds to the answer, the slowest ``/health`` answer
while it ran (polled every 50 ms from another thread) and the server's RSS (``VmRSS`` of
``/proc/<pid>/status``) before, at its peak and one second after. The targets: no probe kills the server,
``/health`` under 0.5 s throughout, RSS back within 10% of its baseline (taken after warm-up requests).
Prints a markdown table and the verdict; ``--out`` also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

PROBE_LIMIT_S = 60


def build_model(out: Path) -> Path:
    from thinkling.models.tiny import TinySpec, build_tiny
    from thinkling.tasks.synthetic import oracle_texts

    build_tiny(out, oracle_texts("arithmetic", n=200), TinySpec(), seed=0)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


class Watch(threading.Thread):
    """Polls /health (its own keep-alive connection) and the server's RSS every 50 ms."""

    def __init__(self, port: int, pid: int):
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.lock = threading.Lock()
        self.worst = 0.0
        self.peak = 0.0
        self.failures = 0
        self.stopped = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self.worst, self.peak, self.failures = 0.0, rss_mb(self.pid), 0

    def run(self) -> None:
        conn = None
        while not self.stopped.is_set():
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/health")
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                conn, ok = None, False
            dt = time.perf_counter() - t0
            with self.lock:
                self.worst = max(self.worst, dt)
                self.peak = max(self.peak, rss_mb(self.pid))
                self.failures += not ok
            time.sleep(0.05)


def request(port: int, path: str, body: bytes, timeout: float = PROBE_LIMIT_S, headers: dict | None = None):
    """POST ``body``; returns (status, error code or None, parsed JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        raw = r.read()
    except OSError as e:
        return f"{type(e).__name__}", None, None
    finally:
        conn.close()
    try:
        out = json.loads(raw)
    except ValueError:
        return r.status, "not JSON", None
    return r.status, (out.get("error") or {}).get("code") if isinstance(out, dict) else None, out


def raw_socket(port: int, head: bytes, body_parts, wait_s: float):
    """Send ``head`` then each of ``body_parts`` on a plain socket, then read what comes back within ``wait_s``."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    try:
        try:
            s.sendall(head)
            for part in body_parts:
                s.sendall(part)
        except OSError:
            pass                                  # the server may answer before the body is all sent
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except TimeoutError:
            return "no answer", None
        except OSError as e:
            return f"{type(e).__name__}", None
    finally:
        s.close()
    if not data:
        return "closed", None
    status = int(data.split(b" ", 2)[1])
    _, _, payload = data.partition(b"\r\n\r\n")
    try:
        code = json.loads(payload)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "not JSON"
    return status, code


def stats(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stats")
    out = json.loads(conn.getresponse().read())
    conn.close()
    return out


def chat_body(content: str, **kw) -> bytes:
    return json.dumps({"model": "abuse", "messages": [{"role": "user", "content": content}], **kw}).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--read-timeout", type=float, default=5.0, help="the server's read_timeout_s")
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    model = build_model(Path(tmp.name) / "tiny")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "thinkling.cli", "serve", f"model={model}", "--port", "0", "name=abuse",
           "threads=1", f"read_timeout_s={args.read_timeout}", "log_level=warning"]
    print("server:", " ".join(cmd[1:]).replace(str(model), "<tiny>"), flush=True)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    line, deadline = "", time.monotonic() + 120
    while "ready on" not in line:
        line = proc.stderr.readline()
        if (not line and proc.poll() is not None) or time.monotonic() > deadline:
            sys.exit(f"the server did not start: {line}")
    port = int(line.split("ready on ")[1].split()[0].rsplit(":", 1)[1].split("/")[0])
    log_lines: list[str] = []
    threading.Thread(target=lambda: [log_lines.append(x) for x in proc.stderr], daemon=True).start()

    # warm up: the first decode allocates what every later one reuses
    for i in range(8):
        request(port, "/v1/chat/completions", chat_body(f"a={i}, b=a+1. b?", max_tokens=32, temperature=0))
    request(port, "/v1/completions", json.dumps({"model": "abuse", "prompt": ["a=1"] * 32, "max_tokens": 32}).encode())
    time.sleep(1)
    baseline = rss_mb(proc.pid)
    watch = Watch(port, proc.pid)
    watch.start()
    rows = []

    def probe(name: str, fn, settle: float = 1.0):
        watch.reset()
        before = rss_mb(proc.pid)
        t0 = time.perf_counter()
        status, code = fn()
        dt = time.perf_counter() - t0
        time.sleep(settle)
        after = rss_mb(proc.pid)
        with watch.lock:
            worst, peak, fails = watch.worst, max(watch.peak, after), watch.failures
        alive = proc.poll() is None
        rows.append({"probe": name, "status": status, "code": code, "seconds": dt, "health_max_s": worst,
                     "health_failures": fails, "rss_before_mb": before, "rss_peak_mb": peak, "rss_after_mb": after,
                     "alive": alive})
        print(f"  {name}: {status} {code or ''} in {dt:.2f} s, /health <= {worst:.3f} s, RSS {before:.0f} -> "
              f"{peak:.0f} -> {after:.0f} MB{'' if alive else ', SERVER DIED'}", flush=True)

    def completions(prompts, max_tokens=16):
        def go():
            status, code, _ = request(port, "/v1/completions", json.dumps(
                {"model": "abuse", "prompt": prompts, "max_tokens": max_tokens, "temperature": 0}).encode())
            return status, code
        return go

    ids = [[7 + (i + j) % 300 for j in range(401)] for i in range(20000)]
    probe("completions, 20,000 prompts x 401 tokens", completions(ids))
    n = len(json.dumps({"model": "abuse", "prompt": ids[:1000]})) // 1000     # bytes per prompt
    big = int(0.95 * 8 * 1024 * 1024) // n                                      # the largest body accepted
    probe(f"completions, {big:,} prompts x 401 tokens ({big * n / 2**20:.1f} MB: parsed, then refused)",
          completions(ids[:big]))
    probe("completions, 800 prompts x 401 tokens", completions(ids[:800]))
    del ids
    before = stats(port)
    probe("completions, 500 prompts x 16 tokens (allowed)", completions([[7 + i % 300] * 16 for i in range(500)]))
    after = stats(port)
    sliced = {k: after[k] - before[k] for k in ("batches", "sequences")} | {"largest_batch": after["largest_batch"]}
    probe("completions, 32 prompts x (24 + 488) tokens (a full batch, half the context)",
          completions([[7 + i % 300] * 24 for i in range(32)], max_tokens=488))

    for mb in (1, 5, 20):
        body = chat_body("a=1, b=a+2. " * (mb * 1024 * 1024 // 12))
        probe(f"chat, {mb} MB prompt", lambda b=body: request(port, "/v1/chat/completions", b)[:2])
        del body

    big = 100 * 1024 * 1024
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {big}\r\n\r\n").encode()
    probe("100 MB body", lambda: raw_socket(port, head, (b" " * (1 << 20) for _ in range(100)), PROBE_LIMIT_S))
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    probe("slow body (10 of 1,000 bytes, then nothing)", lambda: raw_socket(port, head, [b'{"model": '], PROBE_LIMIT_S))
    probe("slow headers (half a header, then nothing)",
          lambda: raw_socket(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le", [], PROBE_LIMIT_S))

    def disconnect():
        body = chat_body("a=1, b=a+2. b?", max_tokens=900, temperature=0, ignore_eos=True)
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        t0 = stats(port)["tokens"]
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head + body)
        time.sleep(1.0)
        s.close()
        deadline = time.monotonic() + PROBE_LIMIT_S
        while (st := stats(port))["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        return ("in flight" if st["in_flight"] else "cancelled"), f"{st['tokens'] - t0} of 900 tokens made"
    probe("client disconnects after 1 s (non-streaming)", disconnect)

    def shutdown():
        results = []

        def one(stream):
            body = chat_body("a=1, b=a+2. b?", max_tokens=900, temperature=0, ignore_eos=True, stream=stream)
            if not stream:
                results.append(request(port, "/v1/chat/completions", body)[:2])
                return
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_LIMIT_S)
            conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            events = [json.loads(x[6:]) for x in r.read().decode().split("\n\n") if x.startswith("data: {")]
            results.append((f"{r.status} stream", (events[-1].get("error") or {}).get("code", "no error event")))

        threads = [threading.Thread(target=one, args=(i % 10 == 9,)) for i in range(40)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(PROBE_LIMIT_S)
        rc = proc.wait(PROBE_LIMIT_S)
        counts = Counter(f"{s} {c or ''}".strip() for s, c in results)
        return ", ".join(f"{n} x {k}" for k, n in sorted(counts.items())), f"(exit status {rc})"

    watch.stopped.set()
    t0 = time.perf_counter()
    status, code = shutdown()
    rows.append({"probe": "SIGTERM with 40 requests in flight (4 streamed)", "status": status, "code": code,
                 "seconds": time.perf_counter() - t0, "health_max_s": None, "health_failures": None,
                 "rss_before_mb": None, "rss_peak_mb": None, "rss_after_mb": None, "alive": None})
    print(f"  SIGTERM: {status} {code}", flush=True)

    print(f"\nbaseline RSS after warm-up: {baseline:.0f} MB; the 500-prompt request: {sliced}\n")
    print("| probe | status | answer s | /health max s | RSS before / peak / after MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        rss = ("-" if r["rss_before_mb"] is None else
               f"{r['rss_before_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_after_mb']:.0f}")
        health = "-" if r["health_max_s"] is None else f"{r['health_max_s']:.3f}"
        print(f"| {r['probe']} | {r['status']} {r['code'] or ''} | {r['seconds']:.2f} | {health} | {rss} |")
    probes = [r for r in rows if r["alive"] is not None]
    misses = [f"{r['probe']}: server died" for r in probes if not r["alive"]]
    misses += [f"{r['probe']}: /health took {r['health_max_s']:.3f} s" for r in probes if r["health_max_s"] >= 0.5]
    misses += [f"{r['probe']}: /health failed {r['health_failures']}x" for r in probes if r["health_failures"]]
    misses += [f"{r['probe']}: RSS {r['rss_after_mb']:.0f} MB vs baseline {baseline:.0f}" for r in probes
               if r["rss_after_mb"] > 1.1 * baseline]
    print("\n" + ("every target met: the server survived every probe, /health stayed under 0.5 s and RSS came back "
                  "within 10% of its baseline" if not misses else "targets missed:\n- " + "\n- ".join(misses)))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"baseline_rss_mb": baseline, "sliced": sliced, "rows": rows}, indent=1))
    if proc.poll() is None:
        proc.kill()


if __name__ == "__main__":
    main()
