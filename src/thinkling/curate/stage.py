"""The curate stage: raw traces -> a derived training view, op by op, with per-reason drop counts.

Raw traces are read, never rewritten. Each op writes its own view under ``views/NN-op-KEY/``, where
KEY hashes the input traces, the task options and the options of this op and every op before it:
changing ``compress.*`` re-runs compress and what follows, but reuses the ``verify`` view; a crash
mid-op resumes from the last finished view (and teacher calls made inside an op are logged, so they
are not paid for twice). The output directory holds ``train.jsonl`` (what survived every op),
``negatives.jsonl`` (wrong answers, for methods that use them), ``dropped.jsonl`` (everything else
removed, with the op and reason) and ``problems.jsonl`` (with difficulty tiers when graded); the
manifest's ``counts`` say per op how many came in, were kept and were dropped for each reason.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import Field, create_model, field_validator
from rich.console import Console

from thinkling.artifacts import (
    DataError, atomic_write_json, fingerprint, invalidate, is_complete, iter_jsonl, read_jsonl, read_manifest,
    stable_hash, write_jsonl, write_manifest,
)
from thinkling.config import StageConfig
from thinkling.curate.ops import OPS, OpContext, get_op, op_names
from thinkling.records import Example, Problem, latest_traces
from thinkling.tasks import get_task


class _CurateBase(StageConfig):
    traces: str = Field(description="a generate output dir (traces.jsonl + problems.jsonl)")
    out: str = Field(description="output dir for the curated view")
    ops: list[str] = Field(default_factory=lambda: ["verify", "dedup", "select"],
                           description=f"ops to run, in order (a list, or 'a,b,c'); known: {', '.join(op_names())}")
    task_options: dict[str, Any] = Field(default_factory=dict, description="task constructor options")

    @field_validator("ops", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in op_names():
                raise ValueError(f"unknown op {name!r}; known: {', '.join(op_names())}")
        return v


# one config section per registered op: `verify.keep_best=2`, `compress.mode=prune`, ...
CurateConfig = create_model(
    "CurateConfig", __base__=_CurateBase,
    **{name: (OPS.get(name).options, Field(default_factory=OPS.get(name).options, description=OPS.get(name).doc))
       for name in op_names()},
)


def load_examples(traces_dir: Path) -> tuple[list[Example], dict[str, Problem]]:
    problems = {p.id: p for p in read_jsonl(traces_dir / "problems.jsonl", Problem)}
    if not problems:
        raise DataError(f"{traces_dir / 'problems.jsonl'}: no problems")
    examples = []
    # the latest record of each key: a re-run with a larger max_tokens appends new versions of the
    # traces that were truncated before
    for tr in latest_traces(traces_dir / "traces.jsonl").values():
        p = problems.get(tr.problem_id)
        if p is None:  # a trace of a problem outside this run's problem set
            continue
        examples.append(Example(
            id=f"{tr.key}", problem_id=tr.problem_id, task=tr.task, level=tr.level, question=tr.question,
            reasoning=tr.reasoning, answer=tr.answer, gold=p.answer, source_key=tr.key,
            meta={"finish_reason": tr.finish_reason, "teacher": tr.teacher, "sample_index": tr.sample_index,
                  "max_tokens": tr.meta.get("max_tokens"),
                  **({"sentences": tr.meta["sentences"]} if "sentences" in tr.meta else {}),
                  **({"knowledge": tr.meta["knowledge"]} if "knowledge" in tr.meta else {})},
        ))
    examples.sort(key=lambda e: (e.problem_id, e.meta.get("sample_index", 0)))
    return examples, problems


def _run_op(i: int, name: str, cfg, current: list[Example], problems: dict[str, Problem], task, base_key: dict,
            root: Path, console, source: list[Example]) -> tuple[list[Example], dict[str, list[Example]], dict[str, Any], bool]:
    """Run one op, or load its finished view. Returns (kept, dropped, report, cached)."""
    chain = [(n, getattr(cfg, n).model_dump(mode="json")) for n in cfg.ops[: i + 1]]
    key = stable_hash({**base_key, "chain": chain}, 10)
    vdir = root / "views" / f"{i:02d}-{name}-{key}"
    if (vdir / "done.json").exists():
        report = json.loads((vdir / "done.json").read_text())["report"]
        kept = read_jsonl(vdir / "kept.jsonl", Example)
        dropped: dict[str, list[Example]] = {}
        for row in iter_jsonl(vdir / "dropped.jsonl"):
            dropped.setdefault(row["reason"], []).append(Example(**row["example"]))
        return kept, dropped, report, True
    vdir.mkdir(parents=True, exist_ok=True)
    ctx = OpContext(task=task, problems=problems, options=getattr(cfg, name), workdir=vdir, console=console,
                    source=source)
    kept, dropped = get_op(name).fn(current, ctx)
    write_jsonl(vdir / "kept.jsonl", kept)
    write_jsonl(vdir / "dropped.jsonl", [{"reason": r, "example": x.model_dump(mode="json")}
                                         for r, xs in dropped.items() for x in xs])
    atomic_write_json(vdir / "done.json", {"op": name, "options": chain[-1][1], "report": ctx.report})
    return kept, dropped, ctx.report, False


def curate(cfg, force: bool = False, console=None) -> dict:
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
    examples, problems = load_examples(src)
    task_name = next(iter(problems.values())).task
    task = get_task(task_name, **cfg.task_options)
    base_key = {"traces": fingerprint(src), "task_options": cfg.task_options}
    counts: dict[str, Any] = {"input": len(examples), "ops": []}
    negatives: list[Example] = []
    dropped_rows: list[dict] = []
    current = examples
    for i, name in enumerate(cfg.ops):
        before = len(current)
        t0 = time.time()
        if force and i == 0:
            shutil.rmtree(out / "views", ignore_errors=True)
        current, dropped, report, cached = _run_op(i, name, cfg, current, problems, task, base_key, out, console,
                                                     examples)
        for pid, meta in report.pop("problem_meta", {}).items():
            problems[pid].meta.update(meta)
        per_reason = {reason: len(xs) for reason, xs in dropped.items()}
        row = {"op": name, "in": before, "kept": len(current), "dropped": per_reason,
               "seconds": round(time.time() - t0, 2), "cached": cached}
        if report:
            row["report"] = report
        counts["ops"].append(row)
        console.print(f"[bold]curate[/] {name}: {before} -> {len(current)}"
                      + (f", dropped {per_reason}" if per_reason else "") + (" (cached view)" if cached else ""))
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
    write_jsonl(out / "problems.jsonl", problems.values())
    return write_manifest(out, "curate", cfg, inputs, counts, started=started,
                          outputs=["train.jsonl", "negatives.jsonl", "dropped.jsonl", "problems.jsonl"])
