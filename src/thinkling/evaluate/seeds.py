"""Seeds and training compute in eval rows: a model's training compute read from its train manifest, and the
aggregate row over the seeds of a model.

A recipe with ``seeds: [0, 1, 2]`` trains every student once per seed and evaluates each (one
:class:`~thinkling.evaluate.config.ModelRef` per student and seed, all of one name); each of their rows
carries ``seed: k``. :func:`aggregate_seeds` adds, per (model, task, split, level, strategy, regime), one
row with ``seed: "all"``:

- ``accuracy``: the mean of the per-seed accuracies; ``per_seed_accuracy``: those, in seed order;
  ``seeds``: the seeds;
- ``seed_ci_low`` / ``seed_ci_high``: the 95% Student-t interval of that mean across seeds,
  mean +- t_{0.975, n-1} * sd / sqrt(n) (sd with n - 1; clipped to [0, 1]; None with one seed);
- ``correct`` / ``n``: summed over the seeds, and ``ci_low`` / ``ci_high``: the Wilson interval of the
  pooled ``correct / n`` (all seeds' problems as one sample: the uncertainty of the eval set alone);
- every other number of the per-seed rows (``mean_tokens``, rates, strategy figures such as pass@k):
  the mean across seeds;
- ``train_compute`` (when every seed's row has one): tokens, flops, steps, seconds (any number in it)
  averaged across seeds; ``budget`` as the seeds share it.

The seeds measure training variance on fixed data: generated and curated data are the same for every
seed, the eval problems too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thinkling.artifacts import read_manifest
from thinkling.metrics import is_seed_row, t_interval, wilson_interval

#: the rows of one aggregate: the same measurement on the different seeds of one model
GROUP_KEY = ("model", "task", "split", "level", "strategy", "regime")
#: fields of an aggregate row that are not the mean of the seeds' figures
_OWN = {"seed", "seeds", "model_path", "n", "correct", "accuracy", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high",
        "per_seed_accuracy", "train_compute", "protocol", "backend", "tags", "group", "validated"}


def train_compute(path: str | Path) -> dict[str, Any] | None:
    """The ``compute`` of a thinkling train manifest in ``path`` (a student's dir, a LoRID dir with its
    adapters), or None: not a directory, no train manifest, or one written before compute was recorded."""
    p = Path(path)
    if not p.is_dir():
        return None
    m = read_manifest(p)
    if not m or m.get("stage") != "train" or not isinstance(m.get("compute"), dict):
        return None
    return m["compute"]


def _mean(values: list[Any]) -> Any:
    """The mean of numbers, per key of dicts of numbers; None when they are not all of one such kind."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sum(values) / len(values)
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        out = {k: _mean([v.get(k) for v in values]) for k in keys}
        return out if all(x is not None for x in out.values()) else None
    return None


def mean_compute(computes: Sequence[dict]) -> dict[str, Any]:
    """Training compute averaged over seeds: every number that all of them have, the budget as the first has it."""
    out: dict[str, Any] = {}
    for k in computes[0]:
        vals = [c.get(k) for c in computes]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[k] = sum(vals) / len(vals)
        elif all(v == vals[0] for v in vals):
            out[k] = vals[0]
    return out


def aggregate_row(rows: Sequence[dict]) -> dict[str, Any]:
    """The ``seed: "all"`` row of one measurement's per-seed rows (the module docstring gives the statistics)."""
    rows = sorted(rows, key=lambda r: r["seed"])
    first = rows[0]
    accs = [float(r["accuracy"]) for r in rows]
    n = sum(int(r["n"]) for r in rows)
    k = sum(int(r["correct"]) for r in rows)
    lo, hi = wilson_interval(k, n)
    ci = t_interval(accs)
    out: dict[str, Any] = {"model": first["model"], "seed": "all", "seeds": [r["seed"] for r in rows]}
    for key in ("backend", "task", "split", "level", "strategy", "regime", "group", "tags", "validated"):
        if key in first:
            out[key] = first[key]
    out.update({"n": n, "correct": k, "accuracy": sum(accs) / len(accs), "ci_low": lo, "ci_high": hi,
                "seed_ci_low": ci[0] if ci else None, "seed_ci_high": ci[1] if ci else None,
                "per_seed_accuracy": accs})
    for key in first:
        if key not in _OWN and key not in out and key not in GROUP_KEY:
            m = _mean([r.get(key) for r in rows])
            if m is not None:
                out[key] = m
    computes = [r.get("train_compute") for r in rows]
    if all(isinstance(c, dict) for c in computes):
        out["train_compute"] = mean_compute(computes)
    if "protocol" in first:
        out["protocol"] = first["protocol"]
    return out


def aggregate_seeds(rows: Sequence[dict]) -> list[dict]:
    """One ``seed: "all"`` row per measurement (model, task, split, level, strategy, regime) that has per-seed
    rows, in the order of their first row."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if is_seed_row(r):
            groups.setdefault(tuple(str(r.get(k)) for k in GROUP_KEY), []).append(r)
    return [aggregate_row(g) for g in groups.values()]
