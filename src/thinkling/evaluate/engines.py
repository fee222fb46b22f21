"""Eval engines: the model under evaluation behind one small interface, whatever runs it.

``hf``     a local transformers checkpoint (or a LoRID dir with its adapters), batched in-process;
``vllm``   vLLM's offline engine (``pip install 'thinkling[vllm]'``; on CPU the venv of
           ``scripts/vllm_venv.sh``);
``openai`` any OpenAI-compatible endpoint (a hosted teacher, ``thinkling serve``, a vLLM server), through
           the same client, retries and rate limits as the ``openai`` teacher backend - so a teacher is
           evaluated with the same code as its students.
``oracle`` the built-in teacher of the synthetic tasks (a program; ``path`` is its style): a reference
           model for instance validation and a ceiling in reports. Tokens are counted in words.

An engine answers :class:`Ask` objects (messages, an optional start of the reply, an optional LoRA
adapter, a seed) with :class:`~thinkling.evaluate.generation.Completion` objects, or with the exception
that made one fail (an endpoint that went away): a failure is reported, never dropped.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from thinkling.evaluate.generation import Completion
from thinkling.records import Problem


@dataclass
class Ask:
    messages: list[dict[str, str]]
    problem: Problem
    prefix: str = ""              # the reply starts with this text (a mode marker, a forced </think>)
    adapter: str | None = None    # a LoRA adapter by name (LoRID); None = the model itself
    seed: int = 0                 # sampling seed (sample index); greedy ignores it
    task: Any = None              # the task asked about (the oracle engine solves it with the task's own solver)


class EngineError(RuntimeError):
    """The engine cannot run at all (unreachable endpoint, missing backend); the message says why."""


class Engine(ABC):
    backend = ""
    adapters: tuple[str, ...] = ()

    @abstractmethod
    def run(self, asks: list[Ask], max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
            progress=None) -> list[Completion | Exception]:
        """One completion (or the exception that failed it) per ask, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class HFEngine(Engine):
    """A transformers model in this process. A LoRID dir loads its base once with every adapter."""

    backend = "hf"

    def __init__(self, path: str, dtype: str = "float32", batch_size: int = 64, use_adapters: bool = False):
        from thinkling.models.loading import load_model, load_tokenizer, lorid_layout

        # with its adapters loaded, a LoRID dir answers plain asks with its default adapter (the Intuitive
        # Reasoner, which is also what the merged checkpoint in the dir holds)
        base, adapters, self.default = lorid_layout(path) if use_adapters else (path, {}, None)
        self.tokenizer = load_tokenizer(base)
        self.model = load_model(base, dtype)
        self.batch_size = batch_size
        if adapters:
            from peft import PeftModel

            names = list(adapters)
            self.model = PeftModel.from_pretrained(self.model, adapters[names[0]], adapter_name=names[0])
            for name in names[1:]:
                self.model.load_adapter(adapters[name], adapter_name=name)
            self.adapters = tuple(names)

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        from contextlib import nullcontext

        from thinkling.evaluate.generation import generate_batched

        out: list[Completion | Exception | None] = [None] * len(asks)
        # one generate call per (adapter, seed): greedy ignores the seed, so it batches across samples
        groups: dict[tuple[str | None, int], list[int]] = {}
        for i, a in enumerate(asks):
            adapter = a.adapter or self.default
            if adapter is not None and adapter not in self.adapters:
                out[i] = ValueError(f"adapter {adapter!r} is not loaded (have: {', '.join(self.adapters) or 'none'})")
                continue
            groups.setdefault((adapter, a.seed if temperature > 0 else 0), []).append(i)
        for (adapter, seed), idx in groups.items():
            if self.adapters:
                if adapter is None:
                    ctx = self.model.disable_adapter()
                else:
                    self.model.set_adapter(adapter)
                    ctx = nullcontext()
            else:
                ctx = nullcontext()
            with ctx:
                comps = generate_batched(self.model, self.tokenizer, [asks[i].messages for i in idx],
                                         max_new_tokens=max_tokens, batch_size=self.batch_size,
                                         temperature=temperature, top_p=top_p, seed=seed,
                                         reply_prefix=[asks[i].prefix for i in idx], progress=progress)
            for i, c in zip(idx, comps):
                out[i] = c
        return out  # type: ignore[return-value]


class OracleEngine(Engine):
    """The synthetic tasks' oracle teacher as an engine: it answers from the problem, not the prompt text."""

    backend = "oracle"

    def __init__(self, style: str):
        self.style = style

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        from thinkling.format import format_assistant
        from thinkling.tasks.base import SyntheticTask

        out: list[Completion | Exception] = []
        for a in asks:
            if not isinstance(a.task, SyntheticTask):
                out.append(ValueError(f"the oracle engine only solves synthetic tasks, not {getattr(a.task, 'name', a.task)!r}"))
                continue
            tr = a.task.oracle(a.problem, self.style, seed=a.seed if temperature > 0 else 0)
            words = format_assistant(tr.reasoning, tr.answer).split(" ")
            text = " ".join(words[:max_tokens])
            out.append(Completion(text=a.prefix + text, n_tokens=min(len(words), max_tokens),
                                  truncated=len(words) > max_tokens, seconds=0.0))
        if progress is not None:
            progress(len(asks))
        return out


class VLLMEngine(Engine):
    """vLLM's offline engine: every ask of a call goes in at once (continuous batching), prompts as token ids."""

    backend = "vllm"

    def __init__(self, path: str, **spec_fields):
        from thinkling.generate.backends import TeacherSpec
        from thinkling.generate.vllm_backend import VLLMBackend

        try:
            self._backend = VLLMBackend(TeacherSpec(backend="vllm", model=path, **spec_fields))
        except ImportError as e:
            raise EngineError(str(e)) from None
        self.tokenizer = self._backend.tokenizer

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        from thinkling.models.render import render_prompt

        llm, SP = self._backend.llm, self._backend._SamplingParams
        out: list[Completion | Exception | None] = [None] * len(asks)
        todo, prompts, params = [], [], []
        for i, a in enumerate(asks):
            if a.adapter is not None:
                out[i] = ValueError("the vllm eval engine does not load LoRA adapters; evaluate LoRID with "
                                    "backend hf, or serve it (thinkling serve) and use backend openai")
                continue
            ids = render_prompt(self.tokenizer, a.messages)
            if a.prefix:
                ids = ids + self.tokenizer(a.prefix, add_special_tokens=False)["input_ids"]
            room = self._backend.max_model_len - len(ids)
            if room < 1:
                out[i] = ValueError(f"prompt of {len(ids)} tokens does not fit the context of {self._backend.max_model_len}")
                continue
            todo.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(SP(n=1, temperature=temperature, top_p=top_p, max_tokens=min(max_tokens, room), seed=a.seed))
        if todo:
            t0 = time.perf_counter()
            results = llm.generate(prompts, sampling_params=params, use_tqdm=False)
            share = (time.perf_counter() - t0) / len(todo)
            for i, res in zip(todo, results, strict=True):
                c = res.outputs[0]
                out[i] = Completion(text=asks[i].prefix + c.text, n_tokens=len(c.token_ids),
                                    truncated=c.finish_reason == "length", seconds=share)
            if progress is not None:
                progress(len(todo))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self._backend.close()


class OpenAIEngine(Engine):
    """An OpenAI-compatible endpoint. A LoRA adapter is asked for by model name (``thinkling serve`` serves a
    LoRID dir's adapters under their names); a reply prefix is sent as a final assistant message with
    ``continue_final_message`` (vLLM's and ``thinkling serve``'s convention)."""

    backend = "openai"

    def __init__(self, model: str, base_url: str, adapters: tuple[str, ...] = (), **spec_fields):
        from thinkling.generate.backends import TeacherSpec

        self.model = model
        self.adapters = tuple(adapters)
        self._spec = TeacherSpec(backend="openai", model=model, base_url=base_url, **spec_fields)
        self._backends: dict[tuple[str, bool], Any] = {}

    def _backend(self, model: str, prefixed: bool):
        """One client per (served model, started reply or not): they differ in ``model`` and ``extra_body``."""
        from thinkling.generate.openai_backend import OpenAIBackend

        key = (model, prefixed)
        if key not in self._backends:
            extra = dict(self._spec.extra_body)
            if prefixed:
                extra.update(continue_final_message=True, add_generation_prompt=False)
            self._backends[key] = OpenAIBackend(self._spec.model_copy(update={"model": model, "extra_body": extra}))
        return self._backends[key]

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        from thinkling.generate.backends import Request, SamplingParams

        out: list[Completion | Exception | None] = [None] * len(asks)
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, a in enumerate(asks):
            groups.setdefault((a.adapter or self.model, bool(a.prefix)), []).append(i)
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        for (model, prefixed), idx in groups.items():
            backend = self._backend(model, prefixed)
            reqs = []
            for i in idx:
                a = asks[i]
                msgs = a.messages + ([{"role": "assistant", "content": a.prefix}] if a.prefix else [])
                reqs.append(Request(key=str(i), problem=a.problem, messages=msgs, sample_index=a.seed,
                                    context={"raw": True}))
            t0 = time.perf_counter()
            replies = backend.generate(reqs, sampling)
            share = (time.perf_counter() - t0) / max(len(idx), 1)
            for i, rep in zip(idx, replies, strict=True):
                if isinstance(rep, Exception):
                    out[i] = rep
                    continue
                body = rep.meta["content"]
                if rep.meta.get("reasoning_text"):  # the server split the reasoning off: put it back in its tags
                    body = f"<think>\n{rep.meta['reasoning_text'].strip()}\n</think>\n{body}"
                out[i] = Completion(text=asks[i].prefix + body, n_tokens=rep.completion_tokens,
                                    truncated=rep.finish_reason == "length", seconds=share)
            if progress is not None:
                progress(len(idx))
        return out  # type: ignore[return-value]
