"""The curate stage: raw traces -> a derived training view, op by op, with per-reason drop counts.

Raw traces are read, never rewritten. The output directory holds ``train.jsonl`` (what survived
every op), ``negatives.jsonl`` (wrong answers, for methods that use them) and ``dropped.jsonl``
(everything else removed, with the op and reason), and the manifest's ``counts`` say per op how many
came in, were kept and were dropped for each reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from thinkling.artifacts import (
    DataError, invalidate, is_complete, iter_jsonl, read_jsonl, read_manifest, write_jsonl, write_manifest,
)
from thinkling.config import StageConfig
from thinkling.curate.ops import OpContext, get_op, op_names
from thinkling.records import Example, Problem, Trace


class CurateConfig(StageConfig):
    traces: str = Field(description="a generate output dir (traces.jsonl + problems.jsonl)")
    out: str = Field(description="output dir for the curated view")
    ops: list[str] = Field(default_factory=lambda: ["verify", "dedup", "select"], description="ops to run, in order")
    task_options: dict[str, Any] = Field(default_factory=dict, description="task constructor options")
    max_per_problem: int | None = Field(None, ge=1, description="select: keep at most N traces per problem")
    max_reasoning_words: int | None = Field(None, ge=1, description="select: drop traces whose reasoning is longer")
    per_level: int | None = Field(
        None, ge=1, description="select: exactly this many examples per difficulty level (repeat or subsample, seeded)")
    seed: int = Field(0, description="seed for subsampling")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in op_names():
                raise ValueError(f"unknown op {name!r}; known: {', '.join(op_names())}")
        return v


def load_examples(traces_dir: Path) -> tuple[list[Example], Any]:
    from thinkling.tasks import get_task

    problems = {p.id: p for p in read_jsonl(traces_dir / "problems.jsonl", Problem)}
    if not problems:
        raise DataError(f"{traces_dir / 'problems.jsonl'}: no problems")
    task_name = next(iter(problems.values())).task
    examples = []
    for tr in iter_jsonl(traces_dir / "traces.jsonl", Trace):
        p = problems.get(tr.problem_id)
        if p is None:  # a trace of a problem outside this run's problem set
            continue
        examples.append(Example(
            id=f"{tr.key}", problem_id=tr.problem_id, task=tr.task, level=tr.level, question=tr.question,
            reasoning=tr.reasoning, answer=tr.answer, gold=p.answer, source_key=tr.key,
            meta={"finish_reason": tr.finish_reason, "teacher": tr.teacher, "sample_index": tr.sample_index,
                  **({"sentences": tr.meta["sentences"]} if "sentences" in tr.meta else {}),
                  **({"knowledge": tr.meta["knowledge"]} if "knowledge" in tr.meta else {})},
        ))
    examples.sort(key=lambda e: (e.problem_id, e.meta.get("sample_index", 0)))
    return examples, task_name


def curate(cfg: CurateConfig, force: bool = False, console=None) -> dict:
    from rich.console import Console

    from thinkling.tasks import get_task

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    src = Path(cfg.traces)
    inputs = {"traces": str(src)}
    if not (src / "traces.jsonl").exists():
        raise DataError(f"no traces.jsonl in {src} (run `thinkling generate` first)")
    if not force and is_complete(out, "curate", cfg, inputs):
        console.print(f"[green]curate[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]
    started = time.time()
    invalidate(out)
    examples, task_name = load_examples(src)
    task = get_task(task_name, **cfg.task_options)
    ctx = OpContext(task=task, options={"max_per_problem": cfg.max_per_problem,
                                        "max_reasoning_words": cfg.max_reasoning_words,
                                        "per_level": cfg.per_level, "seed": cfg.seed})
    counts: dict[str, Any] = {"input": len(examples), "ops": []}
    negatives: list[Example] = []
    dropped_rows: list[dict] = []
    current = examples
    for name in cfg.ops:
        before = len(current)
        current, dropped = get_op(name)(current, ctx)
        per_reason = {reason: len(xs) for reason, xs in dropped.items()}
        counts["ops"].append({"op": name, "in": before, "kept": len(current), "dropped": per_reason})
        console.print(f"[bold]curate[/] {name}: {before} -> {len(current)}"
                      + (f", dropped {per_reason}" if per_reason else ""))
        for reason, xs in dropped.items():
            if reason == "wrong_answer":
                negatives.extend(xs)
            for x in xs:
                dropped_rows.append({"op": name, "reason": reason, "id": x.id, "problem_id": x.problem_id})
    counts["kept"] = len(current)
    counts["negatives"] = len(negatives)
    counts["per_level"] = {str(lv): sum(1 for e in current if e.level == lv)
                           for lv in sorted({e.level for e in current})}
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", current)
    write_jsonl(out / "negatives.jsonl", negatives)
    write_jsonl(out / "dropped.jsonl", dropped_rows)
    return write_manifest(out, "curate", cfg, inputs, counts, started=started)
