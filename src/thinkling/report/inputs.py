"""Loading the eval stage's artifacts: results.json, and samples.jsonl / validation.json beside it.

Every error names the file (and the row or line): a missing input or results.json, invalid JSON,
a row without its fields, a malformed samples.jsonl line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkling.artifacts import DataError, located_rows
from thinkling.format import split_thinking
from thinkling.report.analysis import sample_group
from thinkling.report.rows import DEFAULT_STRATEGY, merge_rows, strategy_of

REQUIRED = ("model", "task", "level", "n", "accuracy")


@dataclass
class ReportInputs:
    rows: list[dict]
    samples: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    replaced: int = 0


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise DataError(f"{p}: not valid JSON (not UTF-8 text)") from None


def _check_rows(rows: Any, p: Path) -> list[dict]:
    if not isinstance(rows, list):
        raise DataError(f"{p}: expected a JSON list of result rows, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise DataError(f"{p}: row {i}: expected an object, got {type(r).__name__}")
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise DataError(f"{p}: row {i}: missing field(s) {', '.join(missing)}")
    return rows


def _complete_samples(samples: list[dict], rows: list[dict]) -> list[dict]:
    """Fill fields old samples lack: task and strategy from the input's rows (task also from the
    problem id), reasoning/answer_text from the completion's think block."""
    tasks = {r["task"] for r in rows}
    strat: dict[str, set] = {}
    for r in rows:
        strat.setdefault(r["model"], set()).add(strategy_of(r))
    out = []
    for s in samples:
        s = dict(s)
        if not s.get("task"):  # eval problem ids start with the task name: "arithmetic/test/L1/0-0"
            head = str(s.get("problem_id") or "").split("/", 1)[0]
            s["task"] = next(iter(tasks)) if len(tasks) == 1 else head if head in tasks else "?"
        if not s.get("strategy"):
            ss = strat.get(s.get("model"), set())
            s["strategy"] = next(iter(ss)) if len(ss) == 1 else DEFAULT_STRATEGY
        if "reasoning" not in s or "answer_text" not in s:
            reasoning, answer, _ = split_thinking(str(s.get("completion") or ""))
            s.setdefault("reasoning", reasoning)
            s.setdefault("answer_text", answer)
        out.append(s)
    return out


def _results_path(raw: str | Path) -> Path:
    """An eval dir's results.json, or the results.json file given."""
    p = Path(raw)
    if p.is_dir():
        res = p / "results.json"
        if not res.is_file():
            raise DataError(f"{res}: not found ({p} is not an eval dir with results.json)")
        return res
    if p.is_file():
        return p
    raise DataError(f"{p}: not found (expected an eval dir or a results.json file)")


def _read_validation(vp: Path) -> dict:
    v = _read_json(vp)
    if not isinstance(v, dict):
        raise DataError(f"{vp}: expected an object of tasks, got {type(v).__name__}")
    return v


def load_inputs(paths: Sequence[str | Path]) -> ReportInputs:
    """Load eval dirs (results.json, maybe samples.jsonl / validation.json) or results.json files
    (with the samples.jsonl / validation.json beside them, if any) and merge them.

    Errors name the path: a missing input or results.json, invalid JSON, a row without its fields."""
    if not paths:
        raise DataError("no results given: pass eval dirs or results.json files")
    row_lists, samples, validation, sources = [], [], {}, []
    for raw in paths:
        res = _results_path(raw)
        rows = _check_rows(_read_json(res), res)
        row_lists.append(rows)
        sources.append(str(res))
        sp = res.parent / "samples.jsonl"
        if sp.is_file():
            samples += _complete_samples([r for r, _ in located_rows(sp)], rows)
        vp = res.parent / "validation.json"
        if vp.is_file():
            validation.update(_read_validation(vp))
    rows, replaced = merge_rows(row_lists)
    by_key: dict[tuple, dict] = {}
    for s in samples:  # one sample per answer: a later input's sample replaces an earlier one
        by_key[(*sample_group(s), s.get("regime"), s.get("seed"), s.get("problem_id"), s.get("sample"))] = s
    return ReportInputs(rows, list(by_key.values()), validation, sources, replaced)
