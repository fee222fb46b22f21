"""The report's analyses, as pure functions of rows and samples that the renderers and tests share.

Pareto front and frontier panels (with each point's per-seed rows), accuracy against training compute,
regime gaps with Newcombe intervals, accuracy pooled over the tasks of a logic group, mean tokens per
level, sample verdicts and the round-robin sample choice, and the instance-validation summary.
Accuracies and gaps are fractions, not points. A model trained per seed counts once, by its aggregate
row (``seed: "all"``); its per-seed rows are what :func:`seed_rows` gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from thinkling.metrics import wilson_interval
from thinkling.report.rows import (
    DEFAULT_STRATEGY,
    correct_of,
    is_seed_row,
    level_order,
    main_rows,
    multi_strategy,
    panel_name,
    point_label,
    regime_order,
    sort_rows,
    strategy_of,
    training_of,
)

#: (minuend, subtrahend, what the gap measures) - in percentage points of accuracy
GAPS = (
    ("concepts", "instruction", "what knowing the concepts is worth"),
    ("concepts", "related", "what extracting them from the documents costs"),
    ("related", "full", "what distractors cost"),
)
GROUPS = ("deductive", "abductive", "inductive")
VERDICTS = ("correct", "wrong", "no answer", "truncated")


# ----------------------------------------------------------------------------- accuracy vs tokens


def pareto_front(points: Sequence[dict]) -> list[dict]:
    """The points no other point dominates, sorted by mean tokens.

    ``q`` dominates ``p`` when q has >= accuracy with <= mean tokens and is strictly better in one of
    the two (two identical points are both on the front)."""
    def dominated(p: dict) -> bool:
        return any(q["accuracy"] >= p["accuracy"] and q["mean_tokens"] <= p["mean_tokens"]
                   and (q["accuracy"] > p["accuracy"] or q["mean_tokens"] < p["mean_tokens"]) for q in points)

    return sorted((p for p in points if not dominated(p)), key=lambda p: (p["mean_tokens"], -p["accuracy"]))


def frontier_panels(rows: Sequence[dict], level: Any = "all") -> dict[str, list[dict]]:
    """Panel name -> the rows at ``level`` with at least one problem, one point per (model, strategy): the
    aggregate row of a model trained per seed, not its per-seed rows."""
    out: dict[str, list[dict]] = {}
    # sorted before the per-seed rows are left out: models keep the order they first appear in (a per-seed row
    # of a model comes before its aggregate)
    for r in [r for r in main_rows(sort_rows(rows)) if r.get("level") == level and r.get("n", 0) > 0]:
        out.setdefault(panel_name(r), []).append(r)
    return out


def seed_rows(rows: Sequence[dict], point: dict) -> list[dict]:
    """The per-seed rows of an aggregate row (same model, task, level, strategy, regime), in seed order."""
    same = lambda r: all(r.get(k) == point.get(k) for k in ("model", "task", "regime")) and (  # noqa: E731
        str(r.get("level")) == str(point.get("level")) and strategy_of(r) == strategy_of(point))
    return sorted((r for r in rows if is_seed_row(r) and same(r)), key=lambda r: r["seed"])


def seed_interval(row: dict) -> tuple[float, float]:
    """The interval a point is drawn with: across seeds for an aggregate of several seeds, else Wilson."""
    if row.get("seed_ci_low") is not None and row.get("seed_ci_high") is not None:
        return row["seed_ci_low"], row["seed_ci_high"]
    return row.get("ci_low", row["accuracy"]), row.get("ci_high", row["accuracy"])


def _flops(row: dict, basis: str = "flops") -> float | None:
    tc = row.get("train_compute")
    v = tc.get(basis) if isinstance(tc, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def compute_panels(rows: Sequence[dict], level: Any = "all") -> dict[str, list[dict]]:
    """Accuracy against training compute: panel -> one point per (model, strategy) at ``level`` whose row has
    ``train_compute`` (FLOPs): ``row``, ``flops``, ``accuracy``, ``interval`` (:func:`seed_interval`) and the
    per-seed ``seeds`` [(flops, accuracy)]."""
    out: dict[str, list[dict]] = {}
    for name, pts in frontier_panels(rows, level).items():
        for r in pts:
            f = _flops(r)
            if f is None:
                continue
            per = [(_flops(s), s["accuracy"]) for s in seed_rows(rows, r)]
            out.setdefault(name, []).append({"row": r, "flops": f, "accuracy": r["accuracy"],
                                             "interval": seed_interval(r),
                                             "seeds": [(x, a) for x, a in per if x is not None]})
    return out


def level_tokens(rows: Sequence[dict]) -> dict[str, dict[str, dict[Any, float]]]:
    """Panel -> series label -> {level: mean tokens}, for panels whose rows have numeric levels."""
    rows = main_rows(sort_rows(rows))  # sorted first: models in the order they first appear (as the frontier)
    multi = multi_strategy(rows)
    out: dict[str, dict[str, dict[Any, float]]] = {}
    for r in rows:
        if level_order(r.get("level"))[0] == 0 and r.get("n", 0) > 0:
            out.setdefault(panel_name(r), {}).setdefault(point_label(r, multi), {})[r["level"]] = r["mean_tokens"]
    return out


# ----------------------------------------------------------------------------- evidence regimes


def _newcombe(a: dict, b: dict) -> tuple[float, float]:
    """Approximate 95% CI of acc(a) - acc(b) from the two rows' Wilson intervals (Newcombe's hybrid
    score method, for independent samples: conservative when both regimes share their instances)."""
    pa, la, ua = a["accuracy"], a.get("ci_low", a["accuracy"]), a.get("ci_high", a["accuracy"])
    pb, lb, ub = b["accuracy"], b.get("ci_low", b["accuracy"]), b.get("ci_high", b["accuracy"])
    d = pa - pb
    return d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)


def gap_key(a: str, b: str) -> str:
    return f"{a} - {b}"


def regime_gaps(rows: Sequence[dict]) -> list[dict]:
    """Per (model, task, strategy) with regime rows at level "all": accuracy per regime and the gaps.

    Each result has ``model, task, strategy, training, acc`` ({regime: accuracy}), ``n`` ({regime: n}),
    ``gaps`` ({"concepts - instruction": difference of accuracies or None when a regime is missing})
    and ``gap_ci`` (same keys, (low, high) or None). Accuracies and gaps are fractions, not points."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in main_rows(rows):
        if r.get("regime") and r.get("level") == "all":
            groups.setdefault((r["model"], r["task"], strategy_of(r)), {})[r["regime"]] = r
    out = []
    for (model, task, strategy), by in groups.items():
        gaps, cis = {}, {}
        for a, b, _ in GAPS:
            ok = a in by and b in by
            gaps[gap_key(a, b)] = by[a]["accuracy"] - by[b]["accuracy"] if ok else None
            cis[gap_key(a, b)] = _newcombe(by[a], by[b]) if ok else None
        training = next((training_of(r) for r in by.values() if training_of(r)), None)
        out.append({"model": model, "task": task, "strategy": strategy, "training": training,
                    "acc": {g: by[g]["accuracy"] for g in sorted(by, key=regime_order)},
                    "n": {g: by[g]["n"] for g in sorted(by, key=regime_order)}, "gaps": gaps, "gap_ci": cis})
    return sorted(out, key=lambda g: (g["task"], g["model"], g["strategy"]))


# ----------------------------------------------------------------------------- logic groups


def pooled_groups(rows: Sequence[dict], by: str = "model") -> list[dict]:
    """Accuracy pooled over the tasks of each logic group (sum correct / sum n, Wilson 95% CI).

    One result per (group, model, strategy, regime) from the level-"all" rows that have a ``group``:
    ``group, model, strategy, regime, training, tasks, n, correct, accuracy, ci_low, ci_high``.
    ``by="training"`` pools the models that share a ``tags.training`` instead (the LogiGLUE comparison:
    the single-task students, one per task, pool into one single-task figure per group); ``model`` is
    then the training regime."""
    acc: dict[tuple, dict] = {}
    for r in main_rows(rows):
        if not r.get("group") or r.get("level") != "all" or (by == "training" and not training_of(r)):
            continue
        k = (r["group"], r["model"] if by == "model" else training_of(r), strategy_of(r), r.get("regime"))
        a = acc.setdefault(k, {"tasks": [], "n": 0, "correct": 0, "training": None})
        a["tasks"].append(r["task"])
        a["n"] += int(r["n"])
        a["correct"] += correct_of(r)
        a["training"] = a["training"] or training_of(r)
    out = []
    for (group, model, strategy, regime), a in acc.items():
        lo, hi = wilson_interval(a["correct"], a["n"])
        out.append({"group": group, "model": model, "strategy": strategy, "regime": regime,
                    "training": a["training"], "tasks": sorted(a["tasks"]), "n": a["n"], "correct": a["correct"],
                    "accuracy": a["correct"] / a["n"] if a["n"] else 0.0, "ci_low": lo, "ci_high": hi})
    gorder = {g: i for i, g in enumerate(GROUPS)}
    return sorted(out, key=lambda p: (gorder.get(p["group"], len(GROUPS)), p["group"], p["model"], p["strategy"]))


# ----------------------------------------------------------------------------- samples and validation


def sample_verdict(s: dict) -> str:
    """correct / truncated (cut off before a correct answer) / no answer (nothing parseable) / wrong."""
    if s.get("correct") is True:
        return "correct"
    if s.get("truncated"):
        return "truncated"
    pred = s.get("predicted")
    if pred is None or (isinstance(pred, str) and not pred.strip()):
        return "no answer"
    return "wrong"


def sample_group(s: dict) -> tuple[str, str, str]:
    """(model, task, strategy) of a sample: a model's samples of every seed are one group (each says its seed)."""
    return (str(s.get("model")), str(s.get("task")), s.get("strategy") or DEFAULT_STRATEGY)


def _round_robin(items: list[tuple[int, dict]], k: int) -> list[tuple[int, dict]]:
    """``k`` of the (index, sample) items, taken in turn from each (regime, verdict) bucket."""
    buckets: dict[tuple, list[tuple[int, dict]]] = {}
    for i, s in items:
        buckets.setdefault((str(s.get("regime") or ""), sample_verdict(s)), []).append((i, s))
    queues = list(buckets.values())
    picked: list[tuple[int, dict]] = []
    depth = 0
    while len(picked) < k:
        for q in queues:
            if depth < len(q) and len(picked) < k:
                picked.append(q[depth])
        depth += 1
    return picked


def select_samples(samples: Sequence[dict], max_per_group: int) -> list[tuple[tuple, list[dict], int]]:
    """Per (model, task, strategy): at most ``max_per_group`` samples and how many were left out.

    Picks round-robin over the (regime, verdict) buckets in file order, so every kind of outcome is
    represented when there are more samples than room; the kept ones keep their file order."""
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(sample_group(s), []).append((i, s))
    out = []
    for key, items in groups.items():
        if len(items) <= max_per_group:
            out.append((key, [s for _, s in items], 0))
            continue
        picked = _round_robin(items, max_per_group)
        out.append((key, [s for _, s in sorted(picked, key=lambda x: x[0])], len(items) - len(picked)))
    return out


def validation_summary(validation: dict) -> list[dict]:
    """Per task: reference model, kept, dropped per reason, total."""
    out = []
    for task, v in sorted(validation.items()):
        dropped = {reason: len(ids) for reason, ids in sorted((v.get("dropped") or {}).items())}
        kept = len(v.get("kept") or [])
        out.append({"task": task, "reference_model": v.get("reference_model"), "kept": kept, "dropped": dropped,
                    "total": kept + sum(dropped.values())})
    return out
