"""The inference layer's types: one request, one reply, one engine interface, one registry.

Every model call of every stage goes through an :class:`Engine`: a teacher writing traces
(generate), a judge or rewriter (curate's teacher ops), a model under evaluation (eval), a served
student (serve runs the ``hf`` engine's decode loop). An engine answers :class:`Request` objects with
:class:`Reply` objects, or with the exception that failed one request: a failure is reported, never
dropped, and never takes the other requests of the call down with it.

A backend is one module in this package: an options model (its keys in configs: what a
:data:`TeacherSpec` field holds when ``backend`` names it) and an engine class, registered together
with ``@register_engine(name, Options)``. Nothing else names the backends: config choices, ``--help`` and
the builders read the registry.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, SerializeAsAny, model_validator

from thinkling.config import StageConfig, Tagged
from thinkling.format import THINK_CLOSE, THINK_OPEN, format_assistant, split_thinking
from thinkling.records import Problem
from thinkling.registry import Registry


class SamplingParams(StageConfig):
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1, description="completion token cap")


GREEDY = SamplingParams()


@dataclass
class Request:
    """One model call. A model engine reads ``messages`` (rendered with the model's chat template) or
    ``prompt`` (raw text, no template); a programmatic engine (oracle, reference) answers from
    ``problem`` and ``task`` in the request's ``role``."""

    messages: list[dict[str, str]] = field(default_factory=list)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0                  # the sample index: seeds a sampled reply (greedy ignores it)
    prefix: str = ""               # the reply is started with this text (a mode marker, a forced </think>)
    adapter: str | None = None     # a LoRA adapter (or served model) by name; None = the model itself
    logprobs: int | None = None    # None: none; k >= 0: each generated token's log-prob and the top k
    prompt: str | None = None      # raw text instead of messages (no chat template)
    problem: Problem | None = None
    task: Any = None
    role: str = "solve"            # solve | judge | rewrite | knowledge (curate's teacher ops)
    context: dict[str, Any] = field(default_factory=dict)   # the role's structured inputs (the oracle reads them)
    key: str = ""                  # the caller's name for this request (trace keys, call logs)


@dataclass
class TokenLogprob:
    token: int | str               # a token id (in-process engines) or its text (endpoints)
    logprob: float
    top: list[tuple[int | str, float]] = field(default_factory=list)   # the k most likely, most likely first


@dataclass
class Reply:
    """What an engine wrote. ``text`` is the whole reply (the request's prefix included, reasoning in
    its tags); ``reasoning`` and ``answer`` are its two parts (``answer`` is empty when the thinking
    never closed). Programmatic engines count words, not tokens (``meta.usage_unit``)."""

    text: str
    reasoning: str = ""
    answer: str = ""
    finish_reason: str = "stop"    # stop | length
    prompt_tokens: int = 0
    completion_tokens: int = 0     # generated tokens, the end-of-turn token included
    seconds: float = 0.0           # this reply's share of the wall time of the call that made it
    logprobs: list[TokenLogprob] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @classmethod
    def of_text(cls, text: str, **kw) -> Reply:
        """A reply split at its think tags; with the thinking still open there is no answer."""
        reasoning, answer, closed = split_thinking(text)
        return cls(text=text, reasoning=reasoning, answer=answer if closed else "", **kw)


class EngineError(RuntimeError):
    """The engine cannot run at all (unreachable endpoint, missing backend package); the message says why."""


class RequestError(Exception):
    """A request that failed for good: ``cause`` (e.g. 429, 5xx, timeout, connection, 4xx), ``status``
    (HTTP status or None), ``attempts`` made, and the server's message."""

    def __init__(self, message: str, cause: str, attempts: int = 1, status: int | None = None):
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts
        self.status = status


RETRY_CAUSES = ("429", "5xx", "timeout", "connection")


@dataclass
class CallStats:
    """What an engine did on the wire: attempts, and retries by cause (``RETRY_CAUSES``, or 408/409/bad_response)."""

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


class Engine(ABC):
    """A model (or a program) answering requests. Subclasses register with :func:`register_engine`."""

    name: ClassVar[str] = ""
    #: LoRA adapters (or served model names) a request may name
    adapters: tuple[str, ...] = ()
    #: called with each (request, reply or exception) as soon as the reply is known - a live progress
    #: bar, or a log that must not lose what was answered (``LoggedEngine``); optional
    progress: Callable[[Request, Reply | Exception], None] | None = None

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        """One reply or exception per request, in order."""

    def stream(self, requests: list[Request], batch: int) -> Iterator[list[tuple[Request, Reply | Exception]]]:
        """(request, reply) pairs in batches of at most ``batch``, as they are done (any order).

        The default calls :meth:`generate` chunk by chunk; an engine with requests in flight (``openai``)
        keeps them in flight across batches, so a slow reply does not hold up the rest.
        """
        for s in range(0, len(requests), batch):
            chunk = requests[s:s + batch]
            replies = self.generate(chunk)
            if self.progress is not None:
                for req, rep in zip(chunk, replies):
                    self.progress(req, rep)
            yield list(zip(chunk, replies, strict=True))

    def check_task(self, task: Any) -> None:  # noqa: B027 - optional hook
        """Raise ValueError when this engine cannot answer ``task`` at all (checked before a stage starts)."""

    @property
    def stats(self) -> CallStats:
        if "_stats" not in self.__dict__:
            self._stats = CallStats()
        return self._stats

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def timed_share(t0: float, n: int) -> float:
    """Each of ``n`` replies' share of the wall time since ``t0``."""
    return (time.perf_counter() - t0) / max(n, 1)


def word_reply(req: Request, reasoning: str, answer: str, **meta) -> Reply:
    """A reply from a programmatic engine, which has no tokenizer: usage counts words, and a reply of
    more words than ``max_tokens`` is cut there (``finish_reason="length"``, no answer)."""
    words = len((reasoning + " " + answer).split())
    prompt_words = sum(len(m["content"].split()) for m in req.messages) + len((req.prompt or "").split())
    cap = req.sampling.max_tokens
    text = req.prefix + format_assistant(reasoning, answer)
    if words <= cap:
        return Reply(text=text, reasoning=reasoning, answer=answer, prompt_tokens=prompt_words,
                     completion_tokens=words, meta={**meta, "usage_unit": "words"})
    return Reply.of_text(_first_words(text, len(req.prefix), cap), finish_reason="length",
                         prompt_tokens=prompt_words, completion_tokens=cap, meta={"usage_unit": "words"})


def _first_words(text: str, start: int, n: int) -> str:
    """``text`` up to the end of its ``n``-th word after ``start`` (think tags are not words)."""
    end, count = start, 0
    for m in re.finditer(r"\S+", text[start:]):
        if count == n:
            break
        end = start + m.end()
        count += m.group() not in (THINK_OPEN, THINK_CLOSE)
    return text[:end]


# ----------------------------------------------------------------------------- options and the registry


class EngineOptions(StageConfig):
    """Options every backend has. A backend's options model adds its own keys; a :data:`TeacherSpec`
    field holds the options of the backend its ``backend`` key names."""

    backend: str
    name: str | None = Field(None, description="engine id used in record keys (default: backend:style, "
                             "hf:model, vllm:model or openai:model)")

    #: keys that change how the engine is reached or run, not what it writes: a run may change them and
    #: still append to the records of an earlier run (see ``identity``)
    OPERATIONAL: ClassVar[frozenset[str]] = frozenset()
    #: the engine loads weights from ``model``: a local checkpoint there is an input a stage fingerprints
    LOADS_WEIGHTS: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _other_backends_keys(cls, data: Any) -> Any:
        """Keys of another backend: dropped silently when unset (configs written before the options were
        typed per backend hold every backend's keys), with a warning when set; unknown keys stay errors."""
        if not isinstance(data, dict):
            return data
        return drop_foreign_keys(cls, data)

    @classmethod
    def from_path(cls, path: str) -> dict[str, Any]:
        """The options an eval model's ``path`` stands for (a model; the oracle reads it as its style)."""
        return {"model": path}

    def engine_id(self) -> str:
        return self.name or self.backend

    def identity(self) -> dict[str, Any]:
        """What determines the engine's output: every key but the operational ones."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in self.OPERATIONAL}


@dataclass
class EngineSpec:
    options: type[EngineOptions]
    cls: type[Engine]
    doc: str


ENGINES: Registry[EngineSpec] = Registry("engine backend")
engine_names = ENGINES.names

# keys older configs spelled with a backend prefix -> (backend, new key)
RENAMED: dict[str, tuple[str, str]] = {}


def register_engine(name: str, options: type[EngineOptions], renamed: dict[str, str] | None = None):
    """Class decorator: ``@register_engine("oracle", OracleOptions)``; ``renamed`` maps an old key to its
    new name (the old spelling keeps working with a deprecation warning)."""

    def deco(cls: type[Engine]) -> type[Engine]:
        cls.name = name
        doc = (cls.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        ENGINES.add(name, EngineSpec(options, cls, doc))
        for old, new in (renamed or {}).items():
            RENAMED[old] = (name, new)
        return cls

    return deco


def drop_foreign_keys(cls: type[EngineOptions], data: dict[str, Any]) -> dict[str, Any]:
    own = set(cls.model_fields)
    backend = data.get("backend")
    out = {}
    for k, v in data.items():
        if k in RENAMED and RENAMED[k][0] == backend:
            new = RENAMED[k][1]
            warnings.warn(f"engine option '{k}' is now '{new}' (backend {backend}); the old spelling is deprecated",
                          FutureWarning, stacklevel=2)
            out.setdefault(new, v)
            continue
        if k in own:
            out[k] = v
            continue
        owners = [n for n, spec in ENGINES.items() if k in spec.options.model_fields or RENAMED.get(k, ("",))[0] == n]
        if not owners:
            out[k] = v  # unknown everywhere: let validation name it
            continue
        defaults = [_default_of(ENGINES.get(n).options, RENAMED[k][1] if k in RENAMED else k) for n in owners]
        if v is not None and v not in defaults:
            warnings.warn(f"engine option '{k}' belongs to backend {', '.join(owners)}; ignored for backend "
                          f"{backend}", UserWarning, stacklevel=2)
    return out


def _default_of(options: type[EngineOptions], key: str) -> Any:
    f = options.model_fields.get(key)
    return None if f is None or f.is_required() else f.get_default(call_default_factory=True)


def to_options(v: Any) -> EngineOptions:
    """Engine options from a mapping (``backend`` picks the options model; default ``oracle``)."""
    if isinstance(v, EngineOptions):
        return v
    if not isinstance(v, dict):
        raise ValueError(f"engine options must be a mapping of keys to values, got {type(v).__name__}")
    backend = v.get("backend", "oracle")
    if backend not in ENGINES:
        raise ValueError(f"unknown engine backend {backend!r}; known: {', '.join(engine_names())}")
    return ENGINES.get(backend).options.model_validate({**v, "backend": backend})


#: A config field holding any registered backend's options: ``backend`` picks the model (validated when
#: the config is, against the registry as it is then), the rest are that backend's own keys.
TeacherSpec = Annotated[
    SerializeAsAny[EngineOptions], BeforeValidator(to_options),
    Tagged("backend", lambda: {name: spec.options for name, spec in ENGINES.items()}),
]


def build_engine(options: EngineOptions, task: Any = None) -> Engine:
    """The engine of ``options`` (from the registry); with ``task``, checked to answer that task."""
    engine = ENGINES.get(options.backend).cls(options)
    if task is not None:
        try:
            engine.check_task(task)
        except BaseException:
            engine.close()
            raise
    return engine
