"""Teacher-backend generation throughput: what batching and concurrency buy, and vLLM vs transformers.

    python bench/generate_throughput.py --prompts 64 --max-tokens 64 [--parts a,b,c] [--model PATH]

One model (a tiny Llama built from scratch with the default ``TinySpec``, or ``--model PATH``), the same
``--prompts`` arithmetic chat prompts, greedy, ``--max-tokens`` cap. Tokens are the generated tokens each
backend reports (end-of-turn included). One markdown table per part:

- **a**: the ``hf`` engine (``HFEngine``: length-sorted, left-padded batches with the KV cache) vs a
  per-example ``model.generate`` loop (issue goal: >= 5x);
- **b**: the ``openai`` backend at concurrency 16 vs 1 against ``thinkling serve`` (in this process,
  ``serve_in_thread``) and, when ``THINKLING_VLLM_PYTHON`` names the vLLM venv's python
  (``scripts/vllm_venv.sh``), against vLLM's OpenAI server;
- **c**: the ``vllm`` offline backend (run in the vLLM venv, engine start and a warm-up excluded) vs the
  ``hf`` backend.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = os.environ.get("THINKLING_VLLM_PYTHON", "")


def build_model(out: Path) -> Path:
    from thinkling.models.tiny import TinySpec, build_tiny
    from thinkling.tasks.synthetic import oracle_texts

    return build_tiny(out, oracle_texts("arithmetic", n=100), TinySpec(), seed=0)


def make_requests(n: int):
    from thinkling.engines import Request
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    probs = task.problems("test", n=n, seed=1)[:n]
    while len(probs) < n:
        probs = probs + probs
    return [Request([{"role": "user", "content": p.question}], problem=p, key=f"r{i}") for i, p in enumerate(probs[:n])]


def capped(reqs, max_tokens: int):
    """The requests with greedy sampling capped at ``max_tokens``."""
    from dataclasses import replace

    from thinkling.engines import SamplingParams

    return [replace(r, sampling=SamplingParams(max_tokens=max_tokens)) for r in reqs]


def table(title: str, head: list[str], rows: list[list]) -> str:
    fmt = [" | ".join(str(c) for c in r) for r in rows]
    return "\n".join([f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + [f"| {r} |" for r in fmt]) + "\n"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def tokens_of(replies) -> int:
    bad = [r for r in replies if isinstance(r, Exception)]
    if bad:
        raise RuntimeError(f"{len(bad)} requests failed, e.g. {bad[0]}")
    return sum(r.completion_tokens for r in replies)


def run_hf_batched(model: Path, reqs, max_tokens: int, batch: int):
    from thinkling.engines import build_engine, engine_options

    b = build_engine(engine_options({"backend": "hf", "model": str(model), "batch_size": batch}))
    b.generate(capped(reqs[:2], 4))  # warm-up
    replies, dt = timed(lambda: b.generate(capped(reqs, max_tokens)))
    return tokens_of(replies), dt


def run_loop(model: Path, reqs, max_tokens: int):
    import torch

    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import render_prompt

    tok, m = load_tokenizer(str(model)), load_model(str(model))
    m.eval()
    eos = tok.eos_token_id

    def go():
        n = 0
        for r in reqs:
            ids = torch.tensor([render_prompt(tok, r.messages)])
            with torch.no_grad():
                out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None, eos_token_id=eos,
                                 pad_token_id=tok.pad_token_id, use_cache=True)
            new = out[0, ids.shape[1]:].tolist()
            n += new.index(eos) + 1 if eos in new else len(new)
        return n

    return timed(go)


def run_openai(base_url: str, name: str, reqs, max_tokens: int, concurrency: int):
    from thinkling.engines import build_engine, engine_options

    b = build_engine(engine_options({"backend": "openai", "base_url": base_url, "model": name,
                                     "concurrency": concurrency, "timeout": 300, "max_retries": 0}))
    b.generate(capped(reqs[:2], 4))  # warm-up
    replies, dt = timed(lambda: b.generate(capped(reqs, max_tokens)))
    return tokens_of(replies), dt


def vllm_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(REPO / "src"), VLLM_CPU_KVCACHE_SPACE="1", VLLM_HOST_IP="127.0.0.1",
               HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", PYTHONUNBUFFERED="1")
    return env


def start_vllm_server(model: Path, name: str, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                             "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager"],
                            env=vllm_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"model": name, "prompt": "1 + 1", "max_tokens": 2}).encode()
    deadline = time.monotonic() + timeout
    while True:  # ready = a real completion (docs/cpu-facts)
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {proc.returncode}")
        try:
            rq = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                        headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(rq, timeout=10):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM)
            raise TimeoutError("vLLM server not ready")
        time.sleep(1.0)


def run_vllm_offline(model: Path, reqs, max_tokens: int, work: Path):
    job = {"teacher": {"model": str(model), "vllm_max_model_len": 1024},
           "sampling": {"temperature": 0.0, "max_tokens": max_tokens},
           "messages": [r.messages for r in reqs], "warmup": 2}
    (work / "job.json").write_text(json.dumps(job))
    p = subprocess.run([VLLM_PYTHON, "-m", "thinkling.engines._vllm_job", str(work / "job.json"),
                        str(work / "out.json")], env=vllm_env(), capture_output=True, text=True, timeout=900)
    if p.returncode:
        raise RuntimeError(p.stderr[-3000:])
    res = json.loads((work / "out.json").read_text())
    if any("error" in r for r in res["replies"]):
        raise RuntimeError(f"vllm failures: {[r for r in res['replies'] if 'error' in r][:2]}")
    return sum(r["completion_tokens"] for r in res["replies"]), res["seconds"], res["engine_start_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model dir (default: build a tiny default-TinySpec model)")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64, help="hf backend batch size")
    ap.add_argument("--threads", type=int, default=2, help="torch threads here and in thinkling serve")
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--out", help="also write the tables to this markdown file")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    parts = set(a.parts.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    model = Path(a.model) if a.model else build_model(work / "model")
    reqs = make_requests(a.prompts)
    has_vllm = bool(VLLM_PYTHON) and Path(VLLM_PYTHON).exists()
    setup = (f"model {'tiny TinySpec()' if not a.model else a.model}, {a.prompts} arithmetic prompts, greedy, "
             f"max_tokens {a.max_tokens}, torch threads {a.threads}, {os.cpu_count()} CPUs")
    out = []
    hf = None
    if "a" in parts or "c" in parts:
        hf = run_hf_batched(model, reqs, a.max_tokens, a.batch_size)
    if "a" in parts:
        lt, ld = run_loop(model, reqs, a.max_tokens)
        bt, bd = hf
        out.append(table(f"a. hf backend batched vs per-example loop ({setup})",
                         ["method", "tokens", "seconds", "tokens/s", "speed-up"],
                         [["per-example model.generate", lt, f"{ld:.2f}", f"{lt / ld:.0f}", "1.0x"],
                          [f"hf engine (HFEngine, batch {a.batch_size})", bt, f"{bd:.2f}", f"{bt / bd:.0f}",
                           f"{(bt / bd) / (lt / ld):.1f}x"]]))
        print(out[-1], flush=True)
    if "b" in parts:
        from thinkling.serve.server import serve_in_thread

        rows = []
        url, stop = serve_in_thread(str(model), name="tiny", threads=a.threads)
        servers = [("thinkling serve", url, stop)]
        try:
            if has_vllm:
                proc, vurl = start_vllm_server(model, "tiny")

                def vstop(p=proc):
                    p.send_signal(signal.SIGTERM)
                    p.wait(60)

                servers.append(("vLLM api_server (vllm-cpu, eager, fp32)", vurl, vstop))
            for label, u, _ in servers:
                base = None
                for c in (1, 16):
                    n, dt = run_openai(u, "tiny", reqs, a.max_tokens, c)
                    base = base or n / dt
                    rows.append([label, c, n, f"{dt:.2f}", f"{len(reqs) / dt:.2f}", f"{n / dt:.0f}",
                                 f"{(n / dt) / base:.1f}x"])
        finally:
            for _, _, s in servers:
                s()
        out.append(table(f"b. openai backend, concurrency 16 vs 1 ({setup})",
                         ["server", "concurrency", "tokens", "seconds", "requests/s", "tokens/s", "vs conc. 1"], rows))
        if not has_vllm:
            out[-1] += "\n(vLLM row skipped: THINKLING_VLLM_PYTHON unset)\n"
        print(out[-1], flush=True)
    if "c" in parts:
        bt, bd = hf
        rows = [[f"hf engine (HFEngine, batch {a.batch_size})", bt, f"{bd:.2f}", f"{bt / bd:.0f}", "1.0x", "-"]]
        if has_vllm:
            vt, vd, vs = run_vllm_offline(model, reqs, a.max_tokens, work)
            rows.append(["vllm backend (offline LLM, vllm-cpu, eager, fp32)", vt, f"{vd:.2f}", f"{vt / vd:.0f}",
                         f"{(vt / vd) / (bt / bd):.1f}x", f"{vs:.1f}"])
        out.append(table(f"c. vllm offline backend vs hf backend ({setup})",
                         ["backend", "tokens", "seconds", "tokens/s", "vs hf", "engine start s"], rows))
        if not has_vllm:
            out[-1] += "\n(vllm row skipped: THINKLING_VLLM_PYTHON unset)\n"
        print(out[-1], flush=True)
    if a.out:
        Path(a.out).write_text(f"`{' '.join(sys.argv)}`\n\n" + "\n".join(out))


if __name__ == "__main__":
    main()
