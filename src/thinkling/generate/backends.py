"""Teacher backends in a registry. The oracle (built-in teacher of the synthetic tasks) is one of them.

A backend turns :class:`Request` objects into :class:`Reply` objects or exceptions (a failure is
recorded, never dropped). Later backends - OpenAI-compatible HTTP, local HF, vLLM - plug in here
with the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.records import Problem


class SamplingParams(StageConfig):
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1, description="completion token cap")


class TeacherSpec(StageConfig):
    backend: Literal["oracle", "reference"] = Field(
        "oracle", description="teacher backend (registry): oracle (synthetic tasks' solver), reference (a dataset's own solutions)")
    style: str = Field("long", description="oracle: trace style - long (R1-like), concise, none (answer only)")
    name: str | None = Field(None, description="teacher id used in record keys (default: backend:style)")

    def teacher_id(self) -> str:
        return self.name or f"{self.backend}:{self.style}"


@dataclass
class Request:
    key: str
    problem: Problem
    messages: list[dict[str, str]]
    sample_index: int


@dataclass
class Reply:
    reasoning: str
    answer: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    @abstractmethod
    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        """One reply or exception per request, in order."""

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
                tr = self.task.oracle(r.problem, self.style, seed=r.sample_index)
            except (KeyError, ValueError) as e:
                out.append(e)
                continue
            out.append(_word_reply(r, tr, sentences=tr.sentences, knowledge=tr.knowledge))
        return out


class ReferenceBackend(Backend):
    """The dataset's own reference solutions as traces (e.g. GSM8K's worked answers)."""

    def __init__(self, task):
        self.task = task

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        out: list[Reply | Exception] = []
        for r in requests:
            tr = self.task.reference_trace(r.problem)
            if tr is None:
                out.append(ValueError(f"{r.problem.id}: the task has no reference solution for this problem"))
                continue
            out.append(_word_reply(r, tr))
        return out


def build_backend(spec: TeacherSpec, task) -> Backend:
    if spec.backend == "oracle":
        return OracleBackend(task, spec.style)
    if spec.backend == "reference":
        return ReferenceBackend(task)
    raise KeyError(f"unknown backend {spec.backend!r}")  # pragma: no cover - Literal guards it
