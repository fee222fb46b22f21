"""Measure ``thinkling serve``: what batching concurrent requests buys, against direct generation.

    OMP_NUM_THREADS=1 python bench/serve.py --requests 64 --max-tokens 64 --out runs/bench-serve.json

One model (a tiny Llama built from scratch with the default ``TinySpec``, or ``--model PATH``), the
same ``--requests`` chat prompts (arithmetic questions), greedy, ``ignore_eos`` so every reply is
exactly ``--max-tokens`` tokens and all rows do the same work. Rows:

- **direct**: ``generate_batched`` in this process, batch 64 (the ceiling: no HTTP, no JSON);
- **served, concurrency C**: the official openai client from C threads against ``serve_in_thread``,
  for C in ``--concurrency`` (1 = one request at a time: no batching possible).

Reported: wall seconds, requests/s, generated tokens/s, and the server's batch count (from /stats).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


def build_model(out: Path) -> Path:
    from thinkling.models.tiny import TinySpec, build_tiny
    from thinkling.tasks.synthetic import oracle_texts

    build_tiny(out, oracle_texts("arithmetic", n=200), TinySpec(), seed=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint dir (default: build a tiny model from scratch)")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", default="1,8,64", help="comma-separated client thread counts")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    import openai
    import torch

    from thinkling.models.generation import generate_batched
    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.serve.server import serve_in_thread
    from thinkling.tasks import get_task

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model_dir = Path(args.model) if args.model else build_model(Path(tmp.name) / "tiny")
    task = get_task("arithmetic")
    convs = [task.messages(p) for p in task.problems("test", n=args.requests)][: args.requests]
    n_tok = args.requests * args.max_tokens
    rows = []

    model, tok = load_model(str(model_dir)), load_tokenizer(str(model_dir))
    t0 = time.perf_counter()
    done = generate_batched(model, tok, convs, max_new_tokens=args.max_tokens, batch_size=64)
    dt = time.perf_counter() - t0
    # (generate_batched stops at end-of-turn; an untrained model hardly ever says it: the count is shown)
    rows.append({"setup": "direct generate_batched (batch 64)", "seconds": dt, "requests_per_s": args.requests / dt,
                 "tokens_per_s": sum(c.n_tokens for c in done) / dt, "batches": -(-args.requests // 64),
                 "tokens": sum(c.n_tokens for c in done)})
    del model

    url, stop = serve_in_thread(str(model_dir), name="bench", threads=args.threads, max_batch_size=64)
    try:
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=600)

        def ask(conv):
            r = client.chat.completions.create(model="bench", messages=conv, temperature=0,
                                               max_tokens=args.max_tokens, extra_body={"ignore_eos": True})
            assert r.usage.completion_tokens == args.max_tokens

        def stats():
            with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as r:
                return json.loads(r.read())

        ask(convs[0])  # warm-up
        for conc in [int(c) for c in args.concurrency.split(",")]:
            todo = list(convs)
            lock = threading.Lock()

            def worker():
                while True:
                    with lock:
                        if not todo:
                            return
                        conv = todo.pop()
                    ask(conv)

            before = stats()["batches"]
            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(conc)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            dt = time.perf_counter() - t0
            rows.append({"setup": f"served, concurrency {conc}", "seconds": dt, "requests_per_s": args.requests / dt,
                         "tokens_per_s": n_tok / dt, "batches": stats()["batches"] - before,
                         "tokens": n_tok})
    finally:
        stop()

    print(f"{args.requests} requests x {args.max_tokens} tokens, greedy, {args.threads} thread(s)\n")
    print("| setup | seconds | requests/s | generated tokens | tokens/s | batches |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setup']} | {r['seconds']:.2f} | {r['requests_per_s']:.1f} | {r['tokens']} "
              f"| {r['tokens_per_s']:.0f} | {r['batches']} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
