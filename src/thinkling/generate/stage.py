"""The generate stage: problems of a task -> teacher traces, append-only and keyed.

Every teacher call is keyed by a hash of (teacher, rendered prompt, sampling params, sample index).
Finished keys are skipped on a re-run, so a run killed at any point (even ``kill -9``) is completed
by running it again: nothing lost, nothing duplicated. Failures go to ``failed.jsonl`` with the
error and are retried by the next run.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from thinkling.artifacts import (
    AppendLog, atomic_write_json, invalidate, is_complete, iter_jsonl, read_manifest, stable_hash,
    write_jsonl, write_manifest,
)
from thinkling.config import StageConfig
from thinkling.generate.backends import Request, SamplingParams, TeacherSpec, build_backend
from thinkling.records import Failure, Trace, Usage
from thinkling.tasks.spec import TaskSpec

TRACES = "traces.jsonl"
FAILED = "failed.jsonl"
PROBLEMS = "problems.jsonl"


class GenerateConfig(StageConfig):
    out: str = Field(description="output dir for traces")
    task: TaskSpec = Field(default_factory=TaskSpec)
    teacher: TeacherSpec = Field(default_factory=TeacherSpec)
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    samples: int = Field(1, ge=1, description="samples per problem")
    chunk_size: int = Field(256, ge=1, description="requests per backend call; output is flushed after each")


def request_key(teacher: str, messages: list[dict], sampling: SamplingParams, index: int) -> str:
    return stable_hash({"teacher": teacher, "prompt": messages, "sampling": sampling.model_dump(), "index": index})


def _done_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {r["key"] for r in iter_jsonl(path)}


def _check_same_teacher(out: Path, cfg: GenerateConfig) -> None:
    """Refuse to mix traces of different teachers or sampling params in one directory."""
    prev = out / "config.json"
    if not prev.exists():
        return
    import json

    old = json.loads(prev.read_text())
    new = cfg.model_dump(mode="json")
    for key in ("teacher", "sampling"):
        if old.get(key) != new[key]:
            raise ValueError(
                f"{out} holds traces generated with a different '{key}' ({old.get(key)} vs {new[key]}); "
                "write to a new --out directory (raw traces are never rewritten)"
            )


def generate(cfg: GenerateConfig, force: bool = False, console=None) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    if not force and is_complete(out, "generate", cfg, {}):
        console.print(f"[green]generate[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]
    started = time.time()
    _check_same_teacher(out, cfg)
    invalidate(out)
    out.mkdir(parents=True, exist_ok=True)
    task = cfg.task.build()
    problems = cfg.task.problems()
    write_jsonl(out / PROBLEMS, problems)
    atomic_write_json(out / "config.json", cfg.model_dump(mode="json"))
    backend = build_backend(cfg.teacher, task)
    teacher = cfg.teacher.teacher_id()

    log = AppendLog(out / TRACES)
    if log.repaired_bytes:
        console.print(f"[yellow]generate[/]: cut a partial last line ({log.repaired_bytes} bytes) left by a crash")
    done = _done_keys(out / TRACES)
    todo: list[Request] = []
    wanted: set[str] = set()
    duplicates = 0
    for p in problems:
        msgs = task.messages(p)
        for i in range(cfg.samples):
            key = request_key(teacher, msgs, cfg.sampling, i)
            if key in wanted:  # the same prompt twice in the problem set: one request, one trace
                duplicates += 1
                continue
            wanted.add(key)
            if key not in done:
                todo.append(Request(key, p, msgs, i))
    total = len(wanted)
    console.print(f"[bold]generate[/] {teacher} on {cfg.task.name}/{cfg.task.split}: "
                  f"{total} requests, {total - len(todo)} already done, {len(todo)} to do")
    failures: list[Failure] = []
    n_ok = 0
    completion_tokens = 0
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        job = bar.add_task("gen", total=total, completed=total - len(todo), rate="")
        t0 = time.time()
        for s in range(0, len(todo), cfg.chunk_size):
            chunk = todo[s:s + cfg.chunk_size]
            replies = backend.generate(chunk, cfg.sampling)
            good = []
            for req, rep in zip(chunk, replies):
                if isinstance(rep, Exception):
                    failures.append(Failure(key=req.key, problem_id=req.problem.id, sample_index=req.sample_index,
                                            error=f"{type(rep).__name__}: {rep}"))
                    continue
                good.append(Trace(
                    key=req.key, problem_id=req.problem.id, task=req.problem.task, level=req.problem.level,
                    teacher=teacher, sample_index=req.sample_index, question=req.problem.question,
                    prompt=req.messages, reasoning=rep.reasoning, answer=rep.answer,
                    finish_reason=rep.finish_reason,
                    usage=Usage(prompt_tokens=rep.prompt_tokens, completion_tokens=rep.completion_tokens),
                    meta=rep.meta,
                ))
                completion_tokens += rep.completion_tokens
            log.append(good)
            n_ok += len(good)
            rate = n_ok / max(time.time() - t0, 1e-9)
            bar.update(job, advance=len(chunk), rate=f"{rate:,.0f} traces/s")
    log.close()
    backend.close()
    # failed.jsonl holds what still fails after this run (a re-run retries it)
    write_jsonl(out / FAILED, failures)
    n_traces = sum(1 for r in iter_jsonl(out / TRACES) if r["key"] in wanted)
    counts = {"problems": len(problems), "requested": total, "duplicate_prompts": duplicates, "traces": n_traces,
              "new_this_run": n_ok, "failed": len(failures), "completion_tokens_this_run": completion_tokens}
    return write_manifest(out, "generate", cfg, {}, counts, started=started)
