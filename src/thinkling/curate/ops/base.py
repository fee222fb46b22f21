"""What every curation op shares: its options base, its context, the registry, and teacher calls.

An op takes the current examples and returns ``(kept, dropped)`` where ``dropped`` maps a reason
(``wrong_answer``, ``truncated``, ``duplicate``, ``contaminated``, ...) to the examples removed for
it. Ops that call a teacher (``difficulty``, ``compress``, ``knowledge``) go through :func:`ask`, which
runs an engine and logs every reply under the op's view directory keyed by the request, so a crashed
curation resumes without paying for the same call twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from thinkling.artifacts import stable_hash
from thinkling.config import StageConfig
from thinkling.engines import EngineOptions, Reply, Request, SamplingParams, build_engine
from thinkling.engines.log import LoggedEngine
from thinkling.records import Example, Problem
from thinkling.registry import Registry

OpResult = tuple[list[Example], dict[str, list[Example]]]


class OpOptions(StageConfig):
    """Options of an op without any."""


@dataclass
class OpContext:
    task: Any
    problems: dict[str, Problem]
    options: Any
    workdir: Path
    console: Any = None
    source: list[Example] = field(default_factory=list)  # every trace as loaded, before any op dropped some
    report: dict[str, Any] = field(default_factory=dict)  # extra figures the op wants in the manifest


@dataclass
class OpSpec:
    fn: Callable[[list[Example], OpContext], OpResult]
    options: type[StageConfig]
    doc: str


OPS: Registry[OpSpec] = Registry("curation op")
op_names = OPS.names


def register_op(name: str, options: type[StageConfig] = OpOptions):
    def deco(fn):
        doc = (fn.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        OPS.add(name, OpSpec(fn, options, doc))
        return fn

    return deco


def get_op(name: str) -> OpSpec:
    return OPS.get(name)


# ----------------------------------------------------------------------------- teacher calls


def ask(ctx: OpContext, teacher: EngineOptions, requests: list[Request], label: str,
        chunk_size: int = 64) -> dict[str, Reply | Exception]:
    """Send role requests to a teacher engine; replies are logged in ``<view>/calls.jsonl`` by request key.

    Keys already in the log (from an earlier, interrupted run) are not asked again, and the engine is
    only built when something is left to ask. Failures are returned as exceptions (and not logged, so a
    re-run retries them).
    """
    requests = [r if r.task is not None else replace(r, task=ctx.task) for r in requests]
    with LoggedEngine(lambda: build_engine(teacher, ctx.task), ctx.workdir / "calls.jsonl") as logged:
        done: dict[str, Reply | Exception] = dict(logged.done)
        todo = [r for r in requests if r.key not in done]
        if not todo:
            return done
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=ctx.console, transient=True) as bar:
            job = bar.add_task(label, total=len(requests), completed=len(requests) - len(todo))
            for s in range(0, len(todo), chunk_size):
                part = todo[s:s + chunk_size]
                done.update((r.key, rep) for r, rep in zip(part, logged.generate(part), strict=True))
                bar.update(job, advance=len(part))
    return done


def teacher_request(role: str, teacher: EngineOptions, sampling: SamplingParams, problem: Problem, prompt: str,
                    index: int = 0, **context) -> Request:
    """A curation role request (judge, rewrite, knowledge), keyed by (teacher, role, prompt, index, context)."""
    messages = [{"role": "user", "content": prompt}]
    key = stable_hash({"teacher": teacher.engine_id(), "role": role, "prompt": messages, "index": index,
                       "context": context})
    return Request(messages, sampling=sampling, seed=index, problem=problem, role=role, context=context, key=key)


def words(text: str) -> int:
    return len(text.split())
