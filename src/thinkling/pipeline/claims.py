"""A recipe's claims (``checks``), measured on the eval rows and written into the report.

Kinds (accuracies are fractions, ``points`` are percentage points):

- ``{kind: min_accuracy, model, level, value}``: accuracy >= value
- ``{kind: max_accuracy, model, level, value}``: accuracy <= value
- ``{kind: within, model, ref, level, points}``: |acc(model) - acc(ref)| <= points/100
- ``{kind: at_least, model, ref, level, points}``: acc(model) >= acc(ref) - points/100 (no worse)
- ``{kind: beats, model, ref, level, points}``: acc(model) - acc(ref) >= points/100
- ``{kind: token_ratio, model, ref, level, value}``: mean_tokens(ref) / mean_tokens(model) >= value
- ``{kind: compute_ratio, model, ref, value}``: train_compute.flops(model) / train_compute.flops(ref) <= value
  (``basis: tokens``: training tokens instead of FLOPs); a model without training compute is "missing"
- ``{kind: accuracy_per_compute, model, ref, level, value}``: (acc(model) / flops(model)) /
  (acc(ref) / flops(ref)) >= value: accuracy per unit of training compute (``basis: tokens`` as above)

A check may also name ``task``, ``strategy`` and ``regime`` (default: the first row that matches).

With seeds (rows of a model carry ``seed: k`` and one aggregate row ``seed: "all"``), a check on a seeded
model is stated ``over: every`` (the default: it must hold in each seed; ``measured`` is the list of the
seeds' values, in the order of ``seeds``) or ``over: aggregate`` (measured once on the aggregate rows; an
accuracy comparison also reports ``diff_ci``, the 95% t-interval across seeds of the paired difference
acc(model) - acc(ref), in points). A reference evaluated once (a teacher) is compared with each seed as it
is. Without seeds a check is measured on the one row, as it always was.
"""

from __future__ import annotations

from typing import Any

from thinkling.config import ConfigError
from thinkling.metrics import t_interval
from thinkling.pipeline.preflight import check_shape

#: kinds that compare two models' accuracies (their aggregate reports the paired interval of the difference)
ACCURACY_DIFFS = ("within", "at_least", "beats")


def _is_seed(s: Any) -> bool:
    return isinstance(s, int) and not isinstance(s, bool)


def _find(rows: list[dict], model: str, level: Any, c: dict, seed: Any) -> dict | None:
    for r in rows:
        if r["model"] == model and str(r["level"]) == str(level) and r.get("seed") == seed and all(
                r.get(k, "greedy" if k == "strategy" else None) == c[k] for k in ("task", "strategy", "regime")
                if k in c):
            return r
    return None


def _compute(r: dict, basis: str) -> float | None:
    tc = r.get("train_compute")
    v = tc.get(basis) if isinstance(tc, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def _measure(c: dict, r: dict | None, ref: dict | None) -> tuple[Any, bool]:
    """(measured, passed) of one check on one row (and its reference's)."""
    k = c["kind"]
    if r is None or ("ref" in c and ref is None):
        return "missing row", False
    if k == "min_accuracy":
        return r["accuracy"], r["accuracy"] >= c["value"]
    if k == "max_accuracy":
        return r["accuracy"], r["accuracy"] <= c["value"]
    if k in ACCURACY_DIFFS:
        d = round((r["accuracy"] - ref["accuracy"]) * 100, 6)  # 12.5 - 10.5 is 2.0000000000000018
        passed = abs(d) <= c["points"] if k == "within" else d >= -c["points"] if k == "at_least" else d >= c["points"]
        return round(abs(d) if k == "within" else d, 2), passed
    if k == "token_ratio":
        ratio = ref["mean_tokens"] / max(r["mean_tokens"], 1e-9)
        return round(ratio, 2), ratio >= c["value"]
    basis = c.get("basis", "flops")
    fm, fr = _compute(r, basis), _compute(ref, basis)
    if fm is None or fr is None:
        who = " and ".join(x for x, f in ((c["model"], fm), (c["ref"], fr)) if f is None)
        return f"missing train compute ({who})", False
    if k == "compute_ratio":
        ratio = fm / fr
        return round(ratio, 4), ratio <= c["value"]
    if k == "accuracy_per_compute":
        if ref["accuracy"] == 0:
            # no number: JSON has no infinity, and run.json is JSON
            return ("undefined (both 0% accurate)", False) if r["accuracy"] == 0 else (
                f"unbounded ({c['ref']} 0% accurate)", True)
        ratio = (r["accuracy"] / fm) / (ref["accuracy"] / fr)
        return round(ratio, 4), ratio >= c["value"]
    raise ConfigError(f"checks: unknown kind {k!r}")


def _seeds(rows: list[dict], model: str) -> list[int]:
    return sorted({r["seed"] for r in rows if r["model"] == model and _is_seed(r.get("seed"))})


class _Pair:
    """The rows a check compares at one seed (or ``"all"``): the model's and the reference's; a model evaluated
    once (a teacher) gives its one row at every seed."""

    def __init__(self, rows: list[dict], c: dict, level: Any):
        self.rows, self.c, self.level = rows, c, level
        self.seeded = {m: bool(_seeds(rows, m)) for m in (c["model"], c.get("ref")) if m}

    def __call__(self, seed: Any) -> tuple[dict | None, dict | None]:
        c = self.c
        r = _find(self.rows, c["model"], self.level, c, seed if self.seeded[c["model"]] else None)
        ref = (_find(self.rows, c["ref"], self.level, c, seed if self.seeded[c["ref"]] else None) if "ref" in c
               else None)
        return r, ref


def check_claims(rows: list[dict], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate recipe claims on result rows (the module docstring lists the kinds and ``over``). Each result
    is the check with ``measured`` and ``passed``; with seeds also ``over`` and ``seeds``; for ``every``
    ``passed_per_seed``; for an aggregate accuracy comparison ``diff_ci`` ([low, high] points, None with
    one seed), for an aggregate min/max_accuracy ``seed_ci`` (the aggregate row's interval across seeds)."""
    out = []
    for i, c in enumerate(checks):
        check_shape(c, f"checks.{i}")
        level = c.get("level", "all")
        seeds = sorted(set(_seeds(rows, c["model"])) | set(_seeds(rows, c["ref"]) if "ref" in c else set()))
        res: dict[str, Any] = {**c, "passed": False}
        if not seeds:
            r = _find(rows, c["model"], level, c, None)
            ref = _find(rows, c["ref"], level, c, None) if "ref" in c else None
            res["measured"], res["passed"] = _measure(c, r, ref)
            out.append(res)
            continue
        pair = _Pair(rows, c, level)
        over = c.get("over", "every")
        res.update(over=over, seeds=seeds)
        if over == "every":
            got = [_measure(c, *pair(s)) for s in seeds]
            res["measured"] = [m for m, _ in got]
            res["passed_per_seed"] = [p for _, p in got]
            res["passed"] = all(res["passed_per_seed"])
        else:
            agg, agg_ref = pair("all")
            res["measured"], res["passed"] = _measure(c, agg, agg_ref)
            if c["kind"] in ("min_accuracy", "max_accuracy") and agg is not None:
                lo, hi = agg.get("seed_ci_low"), agg.get("seed_ci_high")
                res["seed_ci"] = [lo, hi] if lo is not None and hi is not None else None
            if c["kind"] in ACCURACY_DIFFS:
                diffs = [(r["accuracy"] - ref["accuracy"]) for r, ref in map(pair, seeds)
                         if r is not None and ref is not None]
                ci = t_interval(diffs, -1.0, 1.0) if len(diffs) == len(seeds) else None
                res["diff_ci"] = [round(100 * ci[0], 2), round(100 * ci[1], 2)] if ci else None
        out.append(res)
    return out


def _claim(c: dict) -> str:
    lv = c.get("level", "all")
    k = c["kind"]
    unit = "token" if c.get("basis") == "tokens" else "FLOP"
    return {
        "min_accuracy": lambda: f"{c['model']} accuracy >= {100 * c['value']:.0f}% at level {lv}",
        "max_accuracy": lambda: f"{c['model']} accuracy <= {100 * c['value']:.0f}% at level {lv}",
        "within": lambda: f"{c['model']} within {c['points']} points of {c['ref']} at level {lv}",
        "at_least": lambda: f"{c['model']} no more than {c['points']} points below {c['ref']} at level {lv}",
        "beats": lambda: f"{c['model']} beats {c['ref']} by >= {c['points']} points at level {lv}",
        "token_ratio": lambda: f"{c['model']} uses >= {c['value']}x fewer tokens than {c['ref']} at level {lv}",
        "compute_ratio": lambda: f"{c['model']} uses <= {c['value']}x the training {unit}s of {c['ref']}",
        "accuracy_per_compute": lambda: f"{c['model']} has >= {c['value']}x the accuracy per training {unit} of "
                                        f"{c['ref']} at level {lv}",
    }[k]()


def _value(c: dict, m: Any) -> str:
    """One measured value as text (a number in the check's unit, or what was missing)."""
    if not isinstance(m, (int, float)) or isinstance(m, bool):
        return str(m)
    k = c["kind"]
    if k in ("min_accuracy", "max_accuracy"):
        return f"{100 * m:.1f}%"
    if k == "within":
        return f"{m} points"
    if k in ("at_least", "beats"):
        return f"{m:+} points"
    return f"{m}x"


def measured_text(c: dict) -> str:
    """The measured column: one value, each seed's (``in every seed (0, 1, 2): 97.5% / 98.0% / 96.5%``), or the
    aggregate's with the interval across seeds."""
    if "over" not in c:
        return _value(c, c["measured"])
    seeds = c["seeds"]
    if c["over"] == "every":
        return (f"in every seed ({', '.join(map(str, seeds))}): "
                + " / ".join(_value(c, m) for m in c["measured"]))
    text = f"aggregate over {len(seeds)} seeds: {_value(c, c['measured'])}"
    if c.get("diff_ci"):
        lo, hi = c["diff_ci"]
        text += f" [paired 95% CI {lo:+}, {hi:+} points]"
    if c.get("seed_ci"):
        lo, hi = c["seed_ci"]
        text += f" [95% CI across seeds {100 * lo:.1f}, {100 * hi:.1f}%]"
    return text


def describe_check(c: dict) -> str:
    """A row of the report's claims table: ``| claim | measured | PASS/MISS |``."""
    return f"| {_claim(c)} | {measured_text(c)} | {'PASS' if c['passed'] else 'MISS'} |"
