"""Run the ``vllm`` engine on a JSON job in this interpreter (e.g. the vLLM venv's python, from a process
that has no vLLM): ``python -m thinkling.engines._vllm_job JOB.json OUT.json``. Used by the vLLM tests and
``bench/generate_throughput.py``. (Its name starts with ``_``: it is not a backend, so the engines package
does not import it.)"""

from __future__ import annotations

import argparse
import json
import time

from thinkling.engines.base import Request, SamplingParams
from thinkling.engines.vllm import VLLMEngine, VLLMOptions
from thinkling.records import Problem


def main(argv: list[str] | None = None) -> None:
    """JOB: ``{"engine": {...VLLMOptions}, "sampling": {...}, "messages": [[{role, content}, ...], ...],
    "warmup": 0}`` (``teacher`` is read as ``engine`` too). OUT: ``{"replies": [{text, reasoning, answer,
    finish_reason, prompt_tokens, completion_tokens} | {"error": "..."}], "seconds": generation wall time
    (engine start and warm-up excluded), "engine_start_seconds"}``.
    """
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("job")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    with open(a.job, encoding="utf-8") as f:
        job = json.load(f)
    options = VLLMOptions(**{"backend": "vllm", **(job.get("engine") or job.get("teacher") or {})})
    sampling = SamplingParams(**job.get("sampling", {}))
    reqs = [Request(m, sampling=sampling, seed=i, key=f"r{i}",
                    problem=Problem(id=f"p{i}", task="job", split="test", question=m[-1]["content"], answer=None))
            for i, m in enumerate(job["messages"])]
    t0 = time.perf_counter()
    engine = VLLMEngine(options)
    start = time.perf_counter() - t0
    if job.get("warmup"):
        engine.generate(reqs[: int(job["warmup"])])
    t0 = time.perf_counter()
    replies = engine.generate(reqs)
    seconds = time.perf_counter() - t0
    rows = [{"error": f"{type(r).__name__}: {r}"} if isinstance(r, Exception) else
            {k: getattr(r, k) for k in ("text", "reasoning", "answer", "finish_reason", "prompt_tokens",
                                        "completion_tokens")}
            for r in replies]
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"replies": rows, "seconds": seconds, "engine_start_seconds": start}, f)
    engine.close()


if __name__ == "__main__":
    main()
