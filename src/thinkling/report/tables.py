"""What both renderers show in their tables: cell formats, the result columns, the protocol names,
the regime / group / validation / training-compute tables as (head, body) of text cells, and the section
captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thinkling.artifacts import stable_hash
from thinkling.report.analysis import GAPS, gap_key
from thinkling.report.rows import correct_of, level_order, mean_iterations, strategy_of, training_of
from thinkling.tasks.evidence import REGIMES

PARETO_HELP = ("A point is on the Pareto front when no other point of its panel has at least its accuracy with "
               "at most its mean tokens (and is better in one of the two).")
GAP_HELP = ("Gaps in accuracy points between regimes of the same (model, task, strategy), level all; "
            "brackets: approx. 95% CI (Newcombe, from the two Wilson intervals; conservative since the "
            "regimes share their instances).")
REGIME_POOL_HELP = ("The same, pooled over the models that share a training regime (tags.training): the "
                    "single-task students, one per task, make one single-task figure per group.")
SEEDS_HELP = ("Rows with seed 'all' aggregate a model trained once per seed: accuracy is the mean over its seeds, "
              "'across seeds' its 95% t-interval (mean +- t * sd / sqrt(n)), and the bracket after the accuracy the "
              "Wilson interval of all seeds' problems pooled (correct and n summed); other figures are means over "
              "the seeds. The seeds share their data (generated and curated once): they measure training "
              "variance. Each seed's rows are in 'Results per seed'.")
COMPUTE_HELP = ("Accuracy against the compute each student's training consumed (FLOPs: 6 x parameters x tokens, "
                "plus the teacher's for distillation; tokens: forward tokens, prompt included), at the frontier's "
                "level; with seeds, the aggregate with its 95% interval across seeds and the seeds' mean compute.")
GROUP_HELP = ("Accuracy pooled over the tasks of each logic group (sum correct / sum n, level all) with a "
              "Wilson 95% CI, and the number correct / n; 'k of m tasks' marks a cell pooled over fewer tasks.")


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}"


def num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def extras_text(row: dict) -> str:
    """The per-strategy extras of a row, e.g. ``pass@1 62.0 · pass@4 80.0 · maj@4 71.0 · iter 1.8``."""
    parts = []
    for name in ("pass_at", "maj_at"):
        d = row.get(name)
        if isinstance(d, dict):
            for k in sorted(d, key=lambda x: int(x) if str(x).isdigit() else 0):
                parts.append(f"{name.split('_')[0]}@{k} {pct(d[k])}")
    it = mean_iterations(row)
    if it is not None:
        hist = row.get("iterations")
        h = (" (" + ", ".join(f"{k}:{v}" for k, v in sorted(hist.items(), key=lambda kv: int(kv[0]))) + ")"
             if isinstance(hist, dict) and hist else "")
        parts.append(f"iter {it:.2f}{h}")
    if isinstance(row.get("short_mode_share"), (int, float)):
        parts.append(f"short {pct(row['short_mode_share'])}%")
    return " · ".join(parts)


@dataclass
class Column:
    key: str
    head: str
    text: Any  # row -> display text
    sort: Any = None  # row -> sort value (number or text); defaults to the text


def result_columns(rows: Sequence[dict]) -> list[Column]:
    """The result table's columns; optional ones only when some row has them."""
    has = lambda k: any(r.get(k) not in (None, {}, "") for r in rows)  # noqa: E731
    cols = [Column("model", "model", lambda r: str(r["model"]))]
    if has("backend"):
        cols.append(Column("backend", "backend", lambda r: str(r.get("backend") or "—")))
    if has("seed"):
        cols.append(Column("seed", "seed", seed_text, lambda r: -1 if r.get("seed") == "all" else r.get("seed")))
    cols += [Column("task", "task", lambda r: str(r["task"])),
             Column("split", "split", lambda r: str(r.get("split") or "—")),
             Column("level", "level", lambda r: str(r["level"]),
                    lambda r: r["level"] if level_order(r["level"])[0] == 0 else 1e9),
             Column("strategy", "strategy", strategy_of)]
    if has("regime"):
        cols.append(Column("regime", "regime", lambda r: str(r.get("regime") or "—")))
    if has("group"):
        cols.append(Column("group", "group", lambda r: str(r.get("group") or "—")))
    if any(training_of(r) for r in rows):
        cols.append(Column("training", "training", lambda r: str(training_of(r) or "—")))
    cols += [
        Column("n", "n", lambda r: str(r["n"]), lambda r: r["n"]),
        Column("correct", "correct", lambda r: str(correct_of(r)), correct_of),
        Column("accuracy", "accuracy % [95% CI]",
               lambda r: f"{pct(r['accuracy'])} [{pct(r.get('ci_low'))}, {pct(r.get('ci_high'))}]",
               lambda r: r["accuracy"]),
    ]
    if has("seed_ci_low"):
        cols.append(Column("seed_ci", "across seeds [95% CI]", seed_ci_text, lambda r: r.get("seed_ci_low")))
    cols += [
        Column("mean_tokens", "mean tok", lambda r: num(r.get("mean_tokens"), ".1f"), lambda r: r.get("mean_tokens")),
        Column("median_tokens", "median tok", lambda r: num(r.get("median_tokens"), ".0f"),
               lambda r: r.get("median_tokens")),
        Column("p95_tokens", "p95 tok", lambda r: num(r.get("p95_tokens"), ".0f"), lambda r: r.get("p95_tokens")),
        Column("truncation_rate", "truncated %", lambda r: pct(r.get("truncation_rate")),
               lambda r: r.get("truncation_rate")),
        Column("no_answer_rate", "no answer %", lambda r: pct(r.get("no_answer_rate")),
               lambda r: r.get("no_answer_rate")),
        Column("seconds_per_problem", "s/problem", lambda r: num(r.get("seconds_per_problem"), ".4f"),
               lambda r: r.get("seconds_per_problem")),
        Column("tokens_per_second", "tok/s", lambda r: num(r.get("tokens_per_second"), ".0f"),
               lambda r: r.get("tokens_per_second")),
    ]
    if any(extras_text(r) for r in rows):
        cols.append(Column("extras", "extras", lambda r: extras_text(r) or "—"))
    return cols


def seed_text(row: dict) -> str:
    s = row.get("seed")
    if s == "all":
        return "all (" + ", ".join(str(x) for x in row.get("seeds") or []) + ")"
    return "—" if s is None else str(s)


def seed_ci_text(row: dict) -> str:
    if row.get("seed_ci_low") is None or row.get("seed_ci_high") is None:
        return "—"
    return f"[{pct(row['seed_ci_low'])}, {pct(row['seed_ci_high'])}]"


def sci(x: Any) -> str:
    """A large number in 3 significant digits (1.23e+12); — when it is not a number."""
    return format(x, ".3g") if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def compute_table_data(panels: dict[str, list[dict]]) -> tuple[list[str], list[list[str]]]:
    """The training-compute table (from :func:`~thinkling.report.analysis.compute_panels`)."""
    head = ["model", "strategy", "task", "level", "seeds", "train tokens", "train FLOPs", "steps", "train s",
            "budget", "accuracy % [95% CI]", "accuracy % per PFLOP"]
    body = []
    for pts in panels.values():
        for p in pts:
            r, tc = p["row"], p["row"]["train_compute"]
            budget = tc.get("budget")
            btext = (f"{budget.get('kind')} {sci(budget.get('total'))}" if isinstance(budget, dict) else "—")
            lo, hi = p["interval"]
            body.append([str(r["model"]), strategy_of(r), str(r["task"]), str(r["level"]),
                         ", ".join(str(x) for x in r.get("seeds") or []) or "—", sci(tc.get("tokens")),
                         sci(tc.get("flops")), num(tc.get("steps"), ".0f"), num(tc.get("seconds"), ".1f"), btext,
                         f"{pct(p['accuracy'])} [{pct(lo)}, {pct(hi)}]", sci(100 * p["accuracy"] / p["flops"] * 1e15)])
    return head, body


def protocol_ids(rows: Sequence[dict]) -> dict[str, tuple[str, dict]]:
    """Protocol hash -> (short name P1, P2..., protocol), in first-use order."""
    out: dict[str, tuple[str, dict]] = {}
    for r in rows:
        p = r.get("protocol") or {}
        h = stable_hash(p)
        if h not in out:
            out[h] = (f"P{len(out) + 1}", p)
    return out


def _gap_cell(g: dict, k: str) -> str:
    d = g["gaps"][k]
    if d is None:
        return "—"
    lo, hi = g["gap_ci"][k]
    return f"{pts(d)} [{pts(lo)}, {pts(hi)}]"


def regime_table_data(gaps: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "task", "strategy", *(f"{r} %" for r in REGIMES),
            *(f"{gap_key(a, b)} (pts) [{what}]" for a, b, what in GAPS)]
    body = [[g["model"] + (f" ({g['training']})" if g["training"] else ""), g["task"], g["strategy"],
             *(f"{pct(g['acc'][r])} (n={g['n'][r]})" if r in g["acc"] else "—" for r in REGIMES),
             *(_gap_cell(g, gap_key(a, b)) for a, b, _ in GAPS)] for g in gaps]
    return head, body


def _group_columns(pooled: list[dict]) -> list[tuple]:
    cols: dict[tuple, str] = {}
    multi = len({p["strategy"] for p in pooled}) > 1
    for p in pooled:
        k = (p["model"], p["strategy"], p["regime"])
        label = p["model"] + (f" · {p['strategy']}" if multi else "") + (f" [{p['regime']}]" if p["regime"] else "")
        cols.setdefault(k, label + f" (training: {p['training'] or '—'})")
    return list(cols.items())


def groups_table_data(pooled: list[dict]) -> tuple[list[str], list[list[str]]]:
    cols = _group_columns(pooled)
    groups = list(dict.fromkeys(p["group"] for p in pooled))
    cell = {(p["group"], (p["model"], p["strategy"], p["regime"])): p for p in pooled}
    body = []
    for g in groups:
        all_tasks = sorted({t for p in pooled if p["group"] == g for t in p["tasks"]})
        row = [g, ", ".join(all_tasks)]
        for k, _ in cols:
            p = cell.get((g, k))
            if p is None:
                row.append("—")
                continue
            partial = "" if p["tasks"] == all_tasks else f", {len(p['tasks'])} of {len(all_tasks)} tasks"
            row.append(f"{pct(p['accuracy'])} [{pct(p['ci_low'])}, {pct(p['ci_high'])}] "
                       f"({p['correct']}/{p['n']}{partial})")
        body.append(row)
    return ["group", "tasks", *(label for _, label in cols)], body


def validation_table_data(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    reasons = sorted({k for s in summary for k in s["dropped"]})
    head = ["task", "reference model", "instances", "kept", *(f"dropped: {r}" for r in reasons)]
    body = [[s["task"], s["reference_model"] or "—", str(s["total"]), str(s["kept"]),
             *(str(s["dropped"].get(r, 0)) for r in reasons)] for s in summary]
    return head, body

