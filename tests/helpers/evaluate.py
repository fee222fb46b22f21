"""The eval stage run on a small rules slice, and one row of its results picked by model, strategy, level
and other fields."""

from __future__ import annotations

import json
from pathlib import Path

from thinkling.artifacts import read_jsonl
from thinkling.config import build_config

RULES = {"name": "rules", "split": "test", "n": 4, "levels": [1, 2]}


def run_eval(out: Path, console, **kw) -> tuple[list[dict], list[dict]]:
    from thinkling.evaluate.stage import EvalConfig, evaluate

    d = {"out": str(out), "task": RULES, "max_new_tokens": 16, "batch_size": 8, "threads": 1, **kw}
    evaluate(build_config(EvalConfig, d), console=console)
    return json.loads((out / "results.json").read_text()), read_jsonl(out / "samples.jsonl")


def row(rows, model=None, strategy=None, level="all", **kw):
    xs = [r for r in rows if r["level"] == level and (model is None or r["model"] == model)
          and (strategy is None or r["strategy"] == strategy) and all(r.get(k) == v for k, v in kw.items())]
    assert len(xs) == 1, xs
    return xs[0]
