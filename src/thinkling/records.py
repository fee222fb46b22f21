"""The records that flow between stages (JSONL, one per line, with stable ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from thinkling.artifacts import iter_jsonl


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(Record):
    """A question with its gold answer. ``id`` is stable across runs (task, split, level, index)."""

    id: str
    task: str
    split: str
    level: int = Field(1, description="difficulty level (1 = easiest)")
    question: str
    answer: str | None = Field(description="gold answer as text; None when it cannot be parsed")
    meta: dict[str, Any] = Field(default_factory=dict)


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Trace(Record):
    """One teacher completion. Append-only: keyed by a hash of (teacher, prompt, sampling, index)."""

    key: str
    problem_id: str
    task: str
    level: int
    teacher: str
    sample_index: int
    question: str
    prompt: list[dict[str, str]] = Field(description="the rendered chat messages sent to the teacher")
    reasoning: str = Field("", description="thinking text (between <think> tags or a server's reasoning field)")
    answer: str = Field("", description="the final answer text after the reasoning")
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    meta: dict[str, Any] = Field(default_factory=dict)


class Example(Record):
    """A curated training example derived from a trace (curated views never rewrite raw traces)."""

    id: str
    problem_id: str
    task: str
    level: int
    question: str
    reasoning: str
    answer: str
    gold: str | None = None
    correct: bool | None = None
    source_key: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class Failure(Record):
    key: str
    problem_id: str
    sample_index: int
    error: str
    attempts: int = 1


def latest_traces(path: str | Path) -> dict[str, Trace]:
    """The traces of a ``traces.jsonl``, the last record of each key winning (keys in first-seen order).

    A key has more than one record when a re-run with a larger ``max_tokens`` re-requested a
    truncated trace: the later record supersedes the earlier one. Readers of raw traces use this.
    """
    out: dict[str, Trace] = {}
    for t in iter_jsonl(path, Trace):
        out[t.key] = t
    return out
