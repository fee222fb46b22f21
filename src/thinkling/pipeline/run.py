"""``thinkling run``: generate -> curate -> train -> eval, then the report with the claims checked."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from thinkling.artifacts import atomic_write_json, invalidate, read_jsonl, read_manifest
from thinkling.curate.stage import curate
from thinkling.evaluate.stage import evaluate
from thinkling.generate.stage import generate
from thinkling.pipeline.claims import check_claims, describe_check
from thinkling.pipeline.recipe import Plan
from thinkling.pipeline.students import train_students
from thinkling.report import write_report
from thinkling.report.tables import sci


def run(plan: Plan, force: bool = False, console=None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    root = Path(plan.recipe.out)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / "recipe.json", plan.recipe.model_dump(mode="json"))
    t0 = time.time()
    timings: dict[str, float] = {}
    for name, c in plan.gen.items():
        generate(c, force=force, console=console)
    timings["generate"] = time.time() - t0
    t = time.time()
    for name, c in plan.cur.items():
        curate(c, force=force, console=console)
    timings["curate"] = time.time() - t
    t = time.time()
    if force:
        for c in plan.trn.values():
            invalidate(c.out)
    train_students(plan, console)
    timings["train"] = time.time() - t
    t = time.time()
    evaluate(plan.ev, force=force, console=console)
    timings["eval"] = time.time() - t
    rows = json.loads((Path(plan.ev.out) / "results.json").read_text())
    checks = check_claims(rows, plan.recipe.checks)
    timings["total"] = time.time() - t0
    atomic_write_json(root / "results.json", rows)
    notes = [f"Wall time {timings['total']:.0f}s (" + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()
                                                              if k != "total") + ")."]
    extra = []
    if checks:
        extra = ["## Claims checked", "", "| claim | measured | result |", "|---|---|---|",
                 *(describe_check(c) for c in checks), ""]
    train_rows = students_table(plan)
    ev = Path(plan.ev.out)
    validation = json.loads((ev / "validation.json").read_text()) if (ev / "validation.json").exists() else None
    report = write_report(rows, root, plan.recipe.title, notes=notes, extra_sections=extra + train_rows + [""],
                          samples=read_jsonl(ev / "samples.jsonl"), validation=validation)
    summary = {"out": str(root), "report": str(report), "timings": timings, "checks": checks}
    atomic_write_json(root / "run.json", summary)
    return summary


def students_table(plan: Plan) -> list[str]:
    """The report's "Students" section (markdown lines): one row per training job (per seed with ``seeds``),
    with the training compute of its manifest (tokens, FLOPs, budget) when one of them has it."""
    seeded = bool(plan.recipe.seeds)
    computed = any(isinstance((read_manifest(c.out) or {}).get("compute"), dict) for c in plan.trn.values())
    head = ["student", *(["seed"] if seeded else []), "method", "data", "steps", "rows seen", "train s",
            "trained tok/s", *(["train tokens", "train FLOPs", "budget"] if computed else []), "loss first -> last"]
    lines = ["## Students", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for job, c in plan.trn.items():
        name, seed = plan.jobs[job]
        data_names = ", ".join(Path(x).name for x in ([c.data] if isinstance(c.data, str) else c.data))
        m = read_manifest(c.out) or {}
        cnt = m.get("counts", {})
        comp = m.get("compute") if isinstance(m.get("compute"), dict) else {}
        cells = [name, *([str(seed)] if seeded else []), c.method, data_names, cnt.get("steps"),
                 cnt.get("examples_seen"), cnt.get("train_seconds"), cnt.get("trained_tokens_per_second"),
                 *([comp.get("tokens", "—"), sci(comp.get("flops")), _budget_text(comp.get("budget"))]
                   if computed else []),
                 f"{cnt.get('first_loss')} -> {cnt.get('final_loss')}"]
        lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    return lines


def _budget_text(b: Any) -> str:
    """A manifest's budget as a cell: ``tokens 4e+06``, ``minutes 8``; — for none (max_steps or epochs)."""
    return f"{b.get('kind')} {sci(b.get('total'))}" if isinstance(b, dict) else "—"
