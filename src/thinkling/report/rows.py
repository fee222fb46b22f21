"""What a result row is: its strategy, training tag, number correct, key, and the report's row order.

A row is one eval measurement (model x task x level x strategy [x regime]) from ``results.json``.
Rows written before a field existed still read: no strategy is greedy, no ``correct`` is
``round(accuracy * n)``. A model trained per seed has one row per seed (``seed: k``) and an aggregate row
(``seed: "all"``) per measurement; a model without seeds has no ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from thinkling.metrics import is_seed_row
from thinkling.tasks.evidence import REGIMES

DEFAULT_STRATEGY = "greedy"
#: a row is the same measurement as another when these agree (later inputs replace earlier ones)
ROW_KEY = ("model", "task", "level", "strategy", "regime", "seed")


def strategy_of(row: dict) -> str:
    """A row's decoding strategy; rows written before strategies existed are greedy."""
    s = row.get("strategy")
    if isinstance(s, str) and s:
        return s
    p = row.get("protocol")
    if isinstance(p, dict) and isinstance(p.get("strategy"), str) and p["strategy"]:
        return p["strategy"]
    return DEFAULT_STRATEGY


def training_of(row: dict) -> str | None:
    tags = row.get("tags")
    return tags.get("training") if isinstance(tags, dict) else None


def correct_of(row: dict) -> int:
    """Number correct; old rows only have accuracy and n."""
    c = row.get("correct")
    if isinstance(c, int) and not isinstance(c, bool):
        return c
    return round(float(row.get("accuracy", 0.0)) * int(row.get("n", 0)))


def row_key(row: dict) -> tuple:
    return (row.get("model"), row.get("task"), str(row.get("level")), strategy_of(row), row.get("regime"),
            row.get("seed"))


def main_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows a report shows first: one per measurement (aggregates over seeds, rows of unseeded models)."""
    return [r for r in rows if not is_seed_row(r)]


def merge_rows(row_lists: Iterable[Sequence[dict]]) -> tuple[list[dict], int]:
    """Concatenate result rows, keeping one row per (model, task, level, strategy, regime, seed).

    A later row replaces an earlier one with the same key (in the earlier one's position).
    Returns (rows, number of rows replaced)."""
    out: dict[tuple, dict] = {}
    replaced = 0
    for rows in row_lists:
        for r in rows:
            k = row_key(r)
            replaced += k in out
            out[k] = r
    return list(out.values()), replaced


def level_order(level: Any) -> tuple[int, float, str]:
    """Sort key of a level: numbers first (in order), then names such as "all"."""
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        return (0, float(level), "")
    return (1, 0.0, str(level))


def regime_order(regime: Any) -> int:
    """Sort key of an evidence regime: none first, then REGIMES in their order, then unknown ones."""
    return REGIMES.index(regime) if regime in REGIMES else (len(REGIMES) if regime else -1)


def sort_rows(rows: Sequence[dict]) -> list[dict]:
    """Task, regime, model (first-appearance order), strategy, level (numbers, then "all")."""
    models: dict[str, int] = {}
    for r in rows:
        models.setdefault(r.get("model"), len(models))
    return sorted(rows, key=lambda r: (str(r.get("task")), regime_order(r.get("regime")), models[r.get("model")],
                                       strategy_of(r), level_order(r.get("level")), seed_order(r.get("seed"))))


def seed_order(seed: Any) -> tuple[int, int]:
    """Sort key of a seed: none or the aggregate ("all") first, then the seeds in order."""
    return (1, seed) if isinstance(seed, int) and not isinstance(seed, bool) else (0, 0)


def multi_strategy(rows: Sequence[dict]) -> bool:
    """Whether the rows use more than one strategy (then labels name the strategy too)."""
    return len({strategy_of(r) for r in rows}) > 1


def point_label(row: dict, with_strategy: bool = True) -> str:
    return f"{row['model']} · {strategy_of(row)}" if with_strategy else str(row["model"])


def panel_name(row: dict) -> str:
    """Frontier panels: one per task, and per evidence regime (regimes see different inputs)."""
    return f"{row['task']} [{row['regime']}]" if row.get("regime") else str(row["task"])


def mean_iterations(row: dict) -> float | None:
    """LoRID: mean loop iterations, from ``mean_iterations`` or the ``iterations`` histogram."""
    m = row.get("mean_iterations")
    if isinstance(m, (int, float)):
        return float(m)
    hist = row.get("iterations")
    if isinstance(hist, dict) and hist:
        tot = sum(hist.values())
        return sum(int(k) * v for k, v in hist.items()) / tot if tot else None
    return None
