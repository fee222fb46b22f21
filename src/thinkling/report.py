"""Reports: eval results -> report.md (PNG plots beside it) and one self-contained report.html.

Inputs are the eval stage's artifacts: ``results.json`` (one row per model x task x level x strategy
[x regime]), optionally ``samples.jsonl`` (one row per generated answer) and ``validation.json``
(evidence instance validation). ``build_report`` loads and merges several eval dirs;
``write_report`` renders rows that are already in memory (``thinkling run`` calls it).

The analysis is in small pure functions (``pareto_front``, ``regime_gaps``, ``pooled_groups``,
``level_tokens``, ``sample_verdict``, ``select_samples``) that the renderers and the tests share.
The HTML page has no external URL: CSS and JS are inline, plots are base64 PNG data URIs, and every
piece of model or dataset text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkling.artifacts import DataError, atomic_write_text, located_rows, stable_hash

DEFAULT_STRATEGY = "greedy"
REGIMES = ("instruction", "concepts", "related", "full")
#: (minuend, subtrahend, what the gap measures) - in percentage points of accuracy
GAPS = (
    ("concepts", "instruction", "what knowing the concepts is worth"),
    ("concepts", "related", "what extracting them from the documents costs"),
    ("related", "full", "what distractors cost"),
)
GROUPS = ("deductive", "abductive", "inductive")
VERDICTS = ("correct", "wrong", "no answer", "truncated")
#: a row is the same measurement as another when these agree (later inputs replace earlier ones)
ROW_KEY = ("model", "task", "level", "strategy", "regime")
REQUIRED = ("model", "task", "level", "n", "accuracy")


# ----------------------------------------------------------------------------- row helpers


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
    return (row.get("model"), row.get("task"), str(row.get("level")), strategy_of(row), row.get("regime"))


def merge_rows(row_lists: Iterable[Sequence[dict]]) -> tuple[list[dict], int]:
    """Concatenate result rows, keeping one row per (model, task, level, strategy, regime).

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


def _level_order(level: Any) -> tuple[int, float, str]:
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        return (0, float(level), "")
    return (1, 0.0, str(level))


def _regime_order(regime: Any) -> int:
    return REGIMES.index(regime) if regime in REGIMES else (len(REGIMES) if regime else -1)


def sort_rows(rows: Sequence[dict]) -> list[dict]:
    """Task, regime, model (first-appearance order), strategy, level (numbers, then "all")."""
    models: dict[str, int] = {}
    for r in rows:
        models.setdefault(r.get("model"), len(models))
    return sorted(rows, key=lambda r: (str(r.get("task")), _regime_order(r.get("regime")), models[r.get("model")],
                                       strategy_of(r), _level_order(r.get("level"))))


def _multi_strategy(rows: Sequence[dict]) -> bool:
    return len({strategy_of(r) for r in rows}) > 1


def point_label(row: dict, with_strategy: bool = True) -> str:
    return f"{row['model']} · {strategy_of(row)}" if with_strategy else str(row["model"])


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


def extras_text(row: dict) -> str:
    """The per-strategy extras of a row, e.g. ``pass@1 62.0 · pass@4 80.0 · maj@4 71.0 · iter 1.8``."""
    parts = []
    for name in ("pass_at", "maj_at"):
        d = row.get(name)
        if isinstance(d, dict):
            for k in sorted(d, key=lambda x: int(x) if str(x).isdigit() else 0):
                parts.append(f"{name.split('_')[0]}@{k} {_pct(d[k])}")
    it = mean_iterations(row)
    if it is not None:
        hist = row.get("iterations")
        h = (" (" + ", ".join(f"{k}:{v}" for k, v in sorted(hist.items(), key=lambda kv: int(kv[0]))) + ")"
             if isinstance(hist, dict) and hist else "")
        parts.append(f"iter {it:.2f}{h}")
    if isinstance(row.get("short_mode_share"), (int, float)):
        parts.append(f"short {_pct(row['short_mode_share'])}%")
    return " · ".join(parts)


# ----------------------------------------------------------------------------- analysis (pure)


def pareto_front(points: Sequence[dict]) -> list[dict]:
    """The points no other point dominates, sorted by mean tokens.

    ``q`` dominates ``p`` when q has >= accuracy with <= mean tokens and is strictly better in one of
    the two (two identical points are both on the front)."""
    def dominated(p: dict) -> bool:
        return any(q["accuracy"] >= p["accuracy"] and q["mean_tokens"] <= p["mean_tokens"]
                   and (q["accuracy"] > p["accuracy"] or q["mean_tokens"] < p["mean_tokens"]) for q in points)

    return sorted((p for p in points if not dominated(p)), key=lambda p: (p["mean_tokens"], -p["accuracy"]))


def panel_name(row: dict) -> str:
    """Frontier panels: one per task, and per evidence regime (regimes see different inputs)."""
    return f"{row['task']} [{row['regime']}]" if row.get("regime") else str(row["task"])


def frontier_panels(rows: Sequence[dict], level: Any = "all") -> dict[str, list[dict]]:
    """Panel name -> the rows at ``level`` with at least one problem, one point per (model, strategy)."""
    out: dict[str, list[dict]] = {}
    for r in sort_rows([r for r in rows if r.get("level") == level and r.get("n", 0) > 0]):
        out.setdefault(panel_name(r), []).append(r)
    return out


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
    for r in rows:
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
                    "acc": {g: by[g]["accuracy"] for g in sorted(by, key=_regime_order)},
                    "n": {g: by[g]["n"] for g in sorted(by, key=_regime_order)}, "gaps": gaps, "gap_ci": cis})
    return sorted(out, key=lambda g: (g["task"], g["model"], g["strategy"]))


def pooled_groups(rows: Sequence[dict], by: str = "model") -> list[dict]:
    """Accuracy pooled over the tasks of each logic group (sum correct / sum n, Wilson 95% CI).

    One result per (group, model, strategy, regime) from the level-"all" rows that have a ``group``:
    ``group, model, strategy, regime, training, tasks, n, correct, accuracy, ci_low, ci_high``.
    ``by="training"`` pools the models that share a ``tags.training`` instead (the LogiGLUE comparison:
    the single-task students, one per task, pool into one single-task figure per group); ``model`` is
    then the training regime."""
    from thinkling.metrics import wilson_interval

    acc: dict[tuple, dict] = {}
    for r in rows:
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


def level_tokens(rows: Sequence[dict]) -> dict[str, dict[str, dict[Any, float]]]:
    """Panel -> series label -> {level: mean tokens}, for panels whose rows have numeric levels."""
    multi = _multi_strategy(rows)
    out: dict[str, dict[str, dict[Any, float]]] = {}
    for r in sort_rows(rows):
        if _level_order(r.get("level"))[0] == 0 and r.get("n", 0) > 0:
            out.setdefault(panel_name(r), {}).setdefault(point_label(r, multi), {})[r["level"]] = r["mean_tokens"]
    return out


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
    return (str(s.get("model")), str(s.get("task")), s.get("strategy") or DEFAULT_STRATEGY)


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
        buckets: dict[tuple, list[tuple[int, dict]]] = {}
        for i, s in items:
            buckets.setdefault((str(s.get("regime") or ""), sample_verdict(s)), []).append((i, s))
        queues = list(buckets.values())
        picked: list[tuple[int, dict]] = []
        depth = 0
        while len(picked) < max_per_group:
            for q in queues:
                if depth < len(q) and len(picked) < max_per_group:
                    picked.append(q[depth])
            depth += 1
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


# ----------------------------------------------------------------------------- loading


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
    from thinkling.format import split_thinking

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


def load_inputs(paths: Sequence[str | Path]) -> ReportInputs:
    """Load eval dirs (results.json, maybe samples.jsonl / validation.json) or results.json files
    (with the samples.jsonl / validation.json beside them, if any) and merge them.

    Errors name the path: a missing input or results.json, invalid JSON, a row without its fields."""
    if not paths:
        raise DataError("no results given: pass eval dirs or results.json files")
    row_lists, samples, validation, sources = [], [], {}, []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            res = p / "results.json"
            if not res.is_file():
                raise DataError(f"{res}: not found ({p} is not an eval dir with results.json)")
        elif p.is_file():
            res = p
        else:
            raise DataError(f"{p}: not found (expected an eval dir or a results.json file)")
        rows = _check_rows(_read_json(res), res)
        row_lists.append(rows)
        sources.append(str(res))
        sp = res.parent / "samples.jsonl"
        if sp.is_file():
            samples += _complete_samples([r for r, _ in located_rows(sp)], rows)
        vp = res.parent / "validation.json"
        if vp.is_file():
            v = _read_json(vp)
            if not isinstance(v, dict):
                raise DataError(f"{vp}: expected an object of tasks, got {type(v).__name__}")
            validation.update(v)
    rows, replaced = merge_rows(row_lists)
    by_key: dict[tuple, dict] = {}
    for s in samples:  # one sample per answer: a later input's sample replaces an earlier one
        by_key[(*sample_group(s), s.get("regime"), s.get("problem_id"), s.get("sample"))] = s
    return ReportInputs(rows, list(by_key.values()), validation, sources, replaced)


def build_report(inputs: Sequence[str | Path], out_dir: str | Path, title: str = "thinkling report",
                 max_samples: int = 50) -> dict[str, Any]:
    """``thinkling report``: load and merge eval results, write report.md (+ PNGs) and report.html."""
    data = load_inputs(inputs)
    notes = ["Results from " + ", ".join(f"`{s}`" for s in data.sources) + "."]
    if data.replaced:
        notes.append(f"{data.replaced} result row(s) appeared in more than one input; the later input's row "
                     "was kept (same model, task, level, strategy, regime).")
    md = write_report(data.rows, out_dir, title, notes=notes, samples=data.samples, validation=data.validation,
                      max_samples=max_samples)
    return {"markdown": md, "html": Path(out_dir) / "report.html", "rows": len(data.rows),
            "samples": len(data.samples), "replaced": data.replaced}


# ----------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_MARKERS = "osD^vP*Xhp<>"


def _styles(rows: Sequence[dict]) -> tuple[dict, dict]:
    """Colour per model, marker per strategy, stable over all plots of a report."""
    plt = _plt()
    names = list(dict.fromkeys(r["model"] for r in rows))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    models = {m: cmap(i % cmap.N) for i, m in enumerate(names)}
    strategies: dict[str, str] = {}
    for r in rows:
        strategies.setdefault(strategy_of(r), _MARKERS[len(strategies) % len(_MARKERS)])
    return models, strategies


def _grid(n: int, w: float = 5.4, h: float = 4.2, max_cols: int = 3):
    plt = _plt()
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), dpi=110, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig, path: str | Path, top: float = 1.0) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(p)
    _plt().close(fig)
    return p


_LABEL_SPOTS = [(6, 4, "left"), (6, -11, "left"), (-6, 4, "right"), (-6, -11, "right"), (6, 13, "left"),
                (6, -20, "left"), (-6, 13, "right"), (-6, -20, "right"), (10, 24, "left"), (10, -31, "left"),
                (-10, 24, "right"), (-10, -31, "right")]


def _place_labels(ax, points: list[tuple[float, float, str]], fontsize: int = 8) -> None:
    """Annotate points, each label at the nearby spot overlapping the fewest labels and markers so far."""
    ax.get_xlim()  # settle autoscaling before reading the data -> display transform
    scale = ax.figure.dpi / 72
    frame = ax.get_window_extent()
    taken: list[tuple[float, float, float, float]] = []
    xy = [tuple(ax.transData.transform((x, y))) for x, y, _ in points]
    for px, py in xy:  # the markers themselves
        taken.append((px - 5 * scale, py - 5 * scale, px + 5 * scale, py + 5 * scale))

    def overlap(a, b):
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    for (px, py), (x, y, label) in sorted(zip(xy, points), key=lambda t: (t[0][0], -t[0][1])):
        w, h = 0.55 * fontsize * len(label) * scale, fontsize * 1.2 * scale

        def box(spot):
            dx, dy, ha = spot
            x0 = px + dx * scale - (w if ha == "right" else 0)
            return (x0, py + dy * scale, x0 + w, py + dy * scale + h)

        def cost(spot):
            b = box(spot)
            inside = overlap(b, (frame.x0, frame.y0, frame.x1, frame.y1))
            return sum(overlap(b, t) for t in taken) + 3 * (w * h - inside)

        spot = min(_LABEL_SPOTS, key=lambda sp: round(cost(sp), 1))  # ties: the nearest spot (listed first)
        taken.append(box(spot))
        far = abs(spot[1]) > 12  # a leader line says which point a distant label belongs to
        ax.annotate(label, (x, y), textcoords="offset points", xytext=spot[:2], ha=spot[2], fontsize=fontsize,
                    arrowprops=dict(arrowstyle="-", color="0.55", lw=0.6, shrinkA=1, shrinkB=4) if far else None)


def plot_frontier(rows: list[dict], path: str | Path, level: Any = "all", title: str | None = None) -> Path:
    """Accuracy (95% CI) against mean generated tokens: one panel per task (and evidence regime), one
    point per (model, strategy); the Pareto front is joined by a dashed line."""
    plt = _plt()
    panels = frontier_panels(rows, level)
    colors, markers = _styles(rows)
    multi = _multi_strategy(rows)
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        ax.text(0.5, 0.5, f"no rows at level {level}", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, path)
    fig, axes = _grid(len(panels))
    for ax, (name, pts) in zip(axes, panels.items()):
        for r in pts:
            acc = 100 * r["accuracy"]
            lo, hi = 100 * r.get("ci_low", r["accuracy"]), 100 * r.get("ci_high", r["accuracy"])
            ax.errorbar(r["mean_tokens"], acc, yerr=[[max(0.0, acc - lo)], [max(0.0, hi - acc)]],
                        fmt=markers[strategy_of(r)], color=colors[r["model"]], capsize=4, ms=7)
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot([p["mean_tokens"] for p in front], [100 * p["accuracy"] for p in front], "--", color="0.5",
                    lw=1, zorder=0)
        toks = [r["mean_tokens"] for r in pts]
        if max(toks) / max(min(toks), 1e-9) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("mean generated tokens per problem")
        ax.set_ylabel("accuracy (%) with 95% CI")
        ax.set_ylim(-5, 105)
        _place_labels(ax, [(r["mean_tokens"], 100 * r["accuracy"], point_label(r, multi)) for r in pts])
        lv = "all levels" if level == "all" else f"level {level}"
        ax.set_title(f"{name} ({lv})" + ("; dashed: Pareto front" if len(front) > 1 else ""), fontsize=10)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_level_tokens(rows: list[dict], path: str | Path) -> Path | None:
    """Mean generated tokens per difficulty level, one line per (model, strategy), a panel per task."""
    panels = level_tokens(rows)
    if not panels:
        return None
    colors, markers = _styles(rows)
    multi = _multi_strategy(rows)
    by_label = {point_label(r, multi): r for r in rows}
    fig, axes = _grid(len(panels), w=7.0, h=3.8, max_cols=2)
    for ax, (name, series) in zip(axes, panels.items()):
        for label, pts in series.items():
            lv = sorted(pts, key=_level_order)
            r = by_label[label]
            ax.plot([str(x) for x in lv], [pts[x] for x in lv], marker=markers[strategy_of(r)],
                    color=colors[r["model"]], label=label)
        ax.set_xlabel("level")
        ax.set_ylabel("mean generated tokens")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def plot_regime_gaps(gaps: list[dict], path: str | Path) -> Path | None:
    """Grouped bars: the three regime gaps (points, approx. 95% CI) per (model, strategy), a panel per task."""
    if not gaps:
        return None
    plt = _plt()
    tasks: dict[str, list[dict]] = {}
    for g in gaps:
        tasks.setdefault(g["task"], []).append(g)
    multi = len({g["strategy"] for g in gaps}) > 1
    fig, axes = _grid(len(tasks), w=max(5.4, 1.2 * max(len(v) for v in tasks.values()) + 2), h=4.0)
    colors = plt.get_cmap("Set2")
    width = 0.8 / len(GAPS)
    for ax, (task, gs) in zip(axes, tasks.items()):
        for j, (a, b, what) in enumerate(GAPS):
            k = gap_key(a, b)
            xs, ys, errs = [], [], [[], []]
            for i, g in enumerate(gs):
                if g["gaps"][k] is None:
                    continue
                d = 100 * g["gaps"][k]
                lo, hi = (100 * x for x in g["gap_ci"][k])
                xs.append(i + (j - (len(GAPS) - 1) / 2) * width)
                ys.append(d)
                errs[0].append(max(0.0, d - lo))
                errs[1].append(max(0.0, hi - d))
            ax.bar(xs, ys, width, yerr=errs, capsize=3, color=colors(j), label=f"{k}: {what}")
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(range(len(gs)))
        ax.set_xticklabels([f"{g['model']} · {g['strategy']}" if multi else g["model"] for g in gs], fontsize=8,
                           rotation=20, ha="right")
        ax.set_ylabel("accuracy gap (points), approx. 95% CI")
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", fontsize=8, ncol=1, frameon=False)
    return _save(fig, path, top=1 - 0.75 / fig.get_figheight())  # room for the legend above the panels


# ----------------------------------------------------------------------------- tables (shared cells)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}"


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


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
    cols += [Column("task", "task", lambda r: str(r["task"])),
             Column("split", "split", lambda r: str(r.get("split") or "—")),
             Column("level", "level", lambda r: str(r["level"]),
                    lambda r: r["level"] if _level_order(r["level"])[0] == 0 else 1e9),
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
               lambda r: f"{_pct(r['accuracy'])} [{_pct(r.get('ci_low'))}, {_pct(r.get('ci_high'))}]",
               lambda r: r["accuracy"]),
        Column("mean_tokens", "mean tok", lambda r: _num(r.get("mean_tokens"), ".1f"), lambda r: r.get("mean_tokens")),
        Column("median_tokens", "median tok", lambda r: _num(r.get("median_tokens"), ".0f"),
               lambda r: r.get("median_tokens")),
        Column("p95_tokens", "p95 tok", lambda r: _num(r.get("p95_tokens"), ".0f"), lambda r: r.get("p95_tokens")),
        Column("truncation_rate", "truncated %", lambda r: _pct(r.get("truncation_rate")),
               lambda r: r.get("truncation_rate")),
        Column("no_answer_rate", "no answer %", lambda r: _pct(r.get("no_answer_rate")),
               lambda r: r.get("no_answer_rate")),
        Column("seconds_per_problem", "s/problem", lambda r: _num(r.get("seconds_per_problem"), ".4f"),
               lambda r: r.get("seconds_per_problem")),
        Column("tokens_per_second", "tok/s", lambda r: _num(r.get("tokens_per_second"), ".0f"),
               lambda r: r.get("tokens_per_second")),
    ]
    if any(extras_text(r) for r in rows):
        cols.append(Column("extras", "extras", lambda r: extras_text(r) or "—"))
    return cols


def protocol_ids(rows: Sequence[dict]) -> dict[str, tuple[str, dict]]:
    """Protocol hash -> (short name P1, P2..., protocol), in first-use order."""
    out: dict[str, tuple[str, dict]] = {}
    for r in rows:
        p = r.get("protocol") or {}
        h = stable_hash(p)
        if h not in out:
            out[h] = (f"P{len(out) + 1}", p)
    return out


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def results_table(rows: list[dict]) -> str:
    """Markdown table of every result row with the full metric set and its protocol's name."""
    rows = sort_rows(rows)
    cols = result_columns(rows)
    pids = protocol_ids(rows)
    return _md_table([c.head for c in cols] + ["protocol"],
                     ([c.text(r) for c in cols] + [pids[stable_hash(r.get("protocol") or {})][0]] for r in rows))


def _gap_cell(g: dict, k: str) -> str:
    d = g["gaps"][k]
    if d is None:
        return "—"
    lo, hi = g["gap_ci"][k]
    return f"{_pts(d)} [{_pts(lo)}, {_pts(hi)}]"


def _regime_table_data(gaps: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "task", "strategy", *(f"{r} %" for r in REGIMES),
            *(f"{gap_key(a, b)} (pts) [{what}]" for a, b, what in GAPS)]
    body = [[g["model"] + (f" ({g['training']})" if g["training"] else ""), g["task"], g["strategy"],
             *(f"{_pct(g['acc'][r])} (n={g['n'][r]})" if r in g["acc"] else "—" for r in REGIMES),
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


def _groups_table_data(pooled: list[dict]) -> tuple[list[str], list[list[str]]]:
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
            row.append(f"{_pct(p['accuracy'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] "
                       f"({p['correct']}/{p['n']}{partial})")
        body.append(row)
    return ["group", "tasks", *(label for _, label in cols)], body


def _validation_table_data(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    reasons = sorted({k for s in summary for k in s["dropped"]})
    head = ["task", "reference model", "instances", "kept", *(f"dropped: {r}" for r in reasons)]
    body = [[s["task"], s["reference_model"] or "—", str(s["total"]), str(s["kept"]),
             *(str(s["dropped"].get(r, 0)) for r in reasons)] for s in summary]
    return head, body


def pareto_notes(rows: Sequence[dict]) -> list[str]:
    """One line per panel naming the points on the Pareto front (markdown)."""
    multi = _multi_strategy(rows)
    out = []
    for name, pts in frontier_panels(rows).items():
        front = pareto_front(pts)
        desc = "; ".join(f"{point_label(p, multi)} ({_pct(p['accuracy'])}%, {p['mean_tokens']:.1f} tok)"
                         for p in front)
        off = len(pts) - len(front)
        out.append(f"- **{name}**: on the front: {desc}" + (f" ({off} point(s) dominated)" if off else ""))
    return out


# ----------------------------------------------------------------------------- the report


PARETO_HELP = ("A point is on the Pareto front when no other point of its panel has at least its accuracy with "
               "at most its mean tokens (and is better in one of the two).")
GAP_HELP = ("Gaps in accuracy points between regimes of the same (model, task, strategy), level all; "
            "brackets: approx. 95% CI (Newcombe, from the two Wilson intervals; conservative since the "
            "regimes share their instances).")
REGIME_POOL_HELP = ("The same, pooled over the models that share a training regime (tags.training): the "
                    "single-task students, one per task, make one single-task figure per group.")
GROUP_HELP = ("Accuracy pooled over the tasks of each logic group (sum correct / sum n, level all) with a "
              "Wilson 95% CI, and the number correct / n; 'k of m tasks' marks a cell pooled over fewer tasks.")


@dataclass
class ReportData:
    """What both renderers show: sorted rows, the analyses and the plot files."""

    rows: list[dict]
    gaps: list[dict]
    pooled: list[dict]
    validation: list[dict]
    plots: dict[str, Path]

    @classmethod
    def build(cls, rows: Sequence[dict], out_dir: str | Path, validation: dict | None = None) -> ReportData:
        """Analyse ``rows`` and write the PNG plots into ``out_dir``."""
        out = Path(out_dir)
        rows = sort_rows(rows)
        gaps = regime_gaps(rows)
        plots = {"frontier": plot_frontier(rows, out / "frontier.png")}
        lt = plot_level_tokens(rows, out / "level_tokens.png")
        if lt:
            plots["level_tokens"] = lt
        rg = plot_regime_gaps(gaps, out / "regime_gaps.png")
        if rg:
            plots["regime_gaps"] = rg
        return cls(rows, gaps, pooled_groups(rows), validation_summary(validation or {}), plots)


def write_report(rows: list[dict], out_dir: str | Path, title: str = "thinkling report",
                 notes: list[str] | None = None, extra_sections: list[str] | None = None, *,
                 samples: Sequence[dict] | None = None, validation: dict | None = None,
                 max_samples: int = 50) -> Path:
    """Write report.md (PNG plots beside it) and the self-contained report.html; returns report.md.

    ``notes`` and ``extra_sections`` are markdown lines (rendered into the HTML page as well);
    ``samples`` are samples.jsonl rows for the browsable traces (at most ``max_samples`` per
    (model, task, strategy)); ``validation`` is validation.json."""
    out = Path(out_dir)
    a = ReportData.build(rows, out, validation)
    md = _markdown(a, title, notes or [], extra_sections or [], bool(samples))
    path = out / "report.md"
    atomic_write_text(path, md)
    write_html_report(a, out / "report.html", title, notes or [], extra_sections or [], list(samples or []),
                      max_samples)
    return path


def _markdown(a: ReportData, title: str, notes: list[str], extra: list[str], has_samples: bool) -> str:
    md = [f"# {title}", ""]
    if notes:
        md += [*notes, ""]
    md += ["## Accuracy vs tokens", "", f"![frontier]({a.plots['frontier'].name})", "", PARETO_HELP, "",
           *pareto_notes(a.rows), ""]
    if "level_tokens" in a.plots:
        md += ["## Tokens per level", "", f"![tokens per level]({a.plots['level_tokens'].name})", ""]
    md += ["## Results", "", results_table(a.rows), ""]
    if a.gaps:
        md += ["## Evidence regimes", "", GAP_HELP, "", _md_table(*_regime_table_data(a.gaps)), "",
               f"![regime gaps]({a.plots['regime_gaps'].name})", ""]
    if a.validation:
        md += ["### Instance validation", "", _md_table(*_validation_table_data(a.validation)), ""]
    if a.pooled:
        md += ["## Logic groups", "", GROUP_HELP, "", _md_table(*_groups_table_data(a.pooled)), ""]
        regimes = pooled_groups(a.rows, by="training")
        if regimes:
            md += ["### Training regimes per group", "", REGIME_POOL_HELP, "",
                   _md_table(*_groups_table_data(regimes)), ""]
    md += extra
    pids = protocol_ids(a.rows)
    if pids:
        md += ["## Protocols", ""]
        for name, proto in pids.values():
            md += [f"**{name}**", "", "```", *(f"{k}: {json.dumps(v, default=str)}" for k, v in proto.items()), "```",
                   ""]
    if has_samples:
        md += ["Example traces: see report.html beside this file.", ""]
    return "\n".join(md)


# ----------------------------------------------------------------------------- HTML


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _inline_md(s: str) -> str:
    t = _e(s)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def markdown_to_html(lines: Sequence[str]) -> str:
    """Just enough markdown for notes and extra sections: headings, pipe tables, fenced code, lists,
    paragraphs, `code` and **bold**. Everything is escaped."""
    out: list[str] = []
    lines = [x for block in lines for x in str(block).split("\n")]
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + _e("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            lv = min(len(m.group(1)) + 1, 6)  # the page's title is the only h1
            out.append(f"<h{lv}>{_inline_md(m.group(2))}</h{lv}>")
            i += 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            cells = [[c.strip() for c in re.split(r"(?<!\\)\|", x.strip().strip("|"))] for x in lines[i:j]]
            body = [c for c in cells[1:] if not all(re.fullmatch(r":?-+:?", x) for x in c if x)]
            out.append("<div class='scroll'><table><thead><tr>" + "".join(f"<th>{_inline_md(c)}</th>" for c in cells[0])
                       + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline_md(c)}</td>" for c in r)
                                                          + "</tr>" for r in body) + "</tbody></table></div>")
            i = j
        elif line.lstrip().startswith(("- ", "* ")):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith(("- ", "* ")):
                j += 1
            out.append("<ul>" + "".join(f"<li>{_inline_md(x.lstrip()[2:])}</li>" for x in lines[i:j]) + "</ul>")
            i = j
        else:
            j = i
            while j < len(lines) and lines[j].strip() and not lines[j].lstrip().startswith(("|", "#", "```", "- ")):
                j += 1
            out.append("<p>" + " ".join(_inline_md(x) for x in lines[i:max(j, i + 1)]) + "</p>")
            i = max(j, i + 1)
    return "\n".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _html_table(head: Sequence[str], body: Sequence[Sequence[str]], cls: str = "") -> str:
    return (f"<div class='scroll'><table class='{cls}'><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                                               for r in body) + "</tbody></table></div>")


def _results_html(rows: list[dict]) -> str:
    cols = result_columns(rows)
    head = "".join(f"<th data-key='{_e(c.key)}' title='click to sort'>{_e(c.head)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = (c.sort or c.text)(r)
            v = "" if v is None else v
            cells.append(f"<td data-v='{_e(v)}'>{_e(c.text(r))}</td>")
        proto = json.dumps(r.get("protocol") or {}, indent=1, sort_keys=True, ensure_ascii=False, default=str)
        cells.append(f"<td class='proto'><details><summary>protocol</summary><pre>{_e(proto)}</pre></details></td>")
        attrs = " ".join(f"data-{k}='{_e(x)}'" for k, x in (("model", r["model"]), ("task", r["task"]),
                                                            ("level", r["level"]), ("strategy", strategy_of(r)),
                                                            ("regime", r.get("regime") or "")))
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return (f"<div class='scroll'><table id='results-table' class='sortable'><thead><tr>{head}<th>protocol</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head, tail = (2 * max_chars) // 3, max_chars // 3
    return f"{text[:head]}\n\n[... {len(text) - head - tail} characters left out ...]\n\n{text[-tail:]}"


def _trace_html(s: dict, max_chars: int) -> str:
    v = sample_verdict(s)
    model, task, strategy = sample_group(s)
    attrs = " ".join(f"data-{k}='{_e(x)}'" for k, x in (("model", model), ("task", task), ("strategy", strategy),
                                                        ("regime", s.get("regime") or ""), ("verdict", v)))
    meta = [f"<b>{_e(s.get('problem_id', '?'))}</b>", f"level {_e(s.get('level', '—'))}"]
    if s.get("regime"):
        meta.append(f"regime {_e(s['regime'])}")
    if s.get("sample") is not None:
        meta.append(f"sample {_e(s['sample'])}")
    meta.append(f"{_e(s.get('tokens', '—'))} tokens")
    if s.get("iterations") is not None:
        meta.append(f"{_e(s['iterations'])} iterations")
    meta.append(f"<span class='lbl'>predicted</span> <code class='predicted'>{_e(s.get('predicted'))}</code>")
    meta.append(f"<span class='lbl'>gold</span> <code class='gold'>{_e(s.get('gold'))}</code>")
    reasoning = str(s.get("reasoning") or "")
    answer = str(s.get("answer_text") or "")
    return (
        f"<article class='trace' {attrs}>"
        f"<header><span class='verdict v-{v.replace(' ', '-')}'>{_e(v)}</span> {' · '.join(meta)}</header>"
        f"<div class='row'><span class='lbl'>question</span>"
        f"<pre class='question'>{_e(_clip(str(s.get('question') or ''), max_chars))}</pre></div>"
        f"<div class='row'><span class='lbl'>reasoning</span><details><summary>{len(reasoning)} characters"
        f"</summary><pre class='reasoning'>{_e(_clip(reasoning, max_chars))}</pre></details></div>"
        f"<div class='row'><span class='lbl'>final answer</span>"
        f"<pre class='answer'>{_e(_clip(answer, max_chars))}</pre></div>"
        "</article>"
    )


def _traces_html(samples: list[dict], max_samples: int, max_chars: int) -> str:
    picked = select_samples(samples, max_samples)
    kept = [s for _, ks, _ in picked for s in ks]

    def select(key: str, label: str, values: Iterable[str]) -> str:
        opts = "".join(f"<option value='{_e(x)}'>{_e(x)}</option>" for x in values)
        return (f"<label>{_e(label)} <select id='filter-{key}' data-key='{key}' class='filter'>"
                f"<option value=''>all</option>{opts}</select></label>")

    vals = lambda k: sorted({str(t.get(k)) for t in kept if t.get(k)})  # noqa: E731
    controls = [select("model", "model", vals("model")), select("task", "task", vals("task")),
                select("strategy", "strategy", vals("strategy"))]
    if vals("regime"):
        controls.append(select("regime", "regime", vals("regime")))
    controls.append(select("verdict", "verdict", [v for v in VERDICTS if any(sample_verdict(t) == v for t in kept)]))
    left = sum(n for _, _, n in picked)
    parts = [f"<p>{len(kept)} of {len(samples)} samples embedded (at most {max_samples} per model, task and "
             f"strategy, chosen round-robin over outcomes; {left} left out). Long texts are cut to "
             f"{max_chars} characters. Filters can be preset with URL parameters, e.g. "
             f"<code>report.html?verdict=wrong&amp;model=NAME</code>.</p>",
             f"<div class='filters'>{''.join(controls)} <span id='trace-count'></span></div>"]
    for (model, task, strategy), ks, n_left in picked:
        note = f"{len(ks)} samples"
        if n_left:
            note += f", {n_left} more left out (raise --max-samples to embed them)"
        parts.append(f"<div class='tgroup' data-model='{_e(model)}' data-task='{_e(task)}' "
                     f"data-strategy='{_e(strategy)}'><h3>{_e(model)} · {_e(task)} · {_e(strategy)} "
                     f"<small>{_e(note)}</small></h3>" + "".join(_trace_html(s, max_chars) for s in ks) + "</div>")
    return "\n".join(parts)


CSS = """
:root{--fg:#1d2430;--muted:#5b6675;--line:#d9dee5;--bg:#fff;--soft:#f5f7fa;--ok:#1a7f37;--bad:#c0362c;--warn:#9a6700}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);
 margin:0 auto;max-width:1280px;padding:16px 24px 64px}
h1{font-size:26px;margin:8px 0 4px}
h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}h3 small{color:var(--muted);font-weight:normal}
nav{position:sticky;top:0;background:rgba(255,255,255,.95);border-bottom:1px solid var(--line);padding:6px 0;z-index:5}
nav a{margin-right:14px;color:#0b5cad;text-decoration:none}
.muted,.help{color:var(--muted)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}
th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top;white-space:nowrap}
th{white-space:normal;overflow-wrap:break-word;max-width:190px}
thead th{background:var(--soft);position:sticky;top:0}
table.sortable th{cursor:pointer}
table.sortable th.sorted-asc::after{content:" \\25B2"}table.sortable th.sorted-desc::after{content:" \\25BC"}
tbody tr:nth-child(even){background:#fafbfc}
td.proto pre{white-space:pre;font-size:11px;max-width:520px;overflow:auto}
img.plot{max-width:100%;border:1px solid var(--line);border-radius:4px;margin:6px 0}
pre{white-space:pre-wrap;word-break:break-word;background:var(--soft);padding:6px 8px;border-radius:4px;margin:3px 0}
code{background:var(--soft);padding:0 3px;border-radius:3px}
.filters{position:sticky;top:34px;background:#fff;padding:8px 0;border-bottom:1px solid var(--line);z-index:4}
.filters label{margin-right:12px}select{font-size:13px}
#trace-count{color:var(--muted);margin-left:8px}
article.trace{border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:6px 0}
article.trace header{margin-bottom:3px;color:var(--muted)}article.trace header b{color:var(--fg)}
article.trace .row{display:grid;grid-template-columns:100px 1fr;align-items:baseline;gap:6px}
article.trace pre{margin:2px 0;padding:3px 8px}
pre.answer:empty::after,pre.reasoning:empty::after,code.predicted:empty::after{
 content:"(none)";color:var(--muted);font-style:italic}
.lbl{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.verdict{display:inline-block;font-weight:600;border-radius:10px;padding:0 8px;color:#fff;margin-right:6px}
.v-correct{background:var(--ok)}.v-wrong{background:var(--bad)}
.v-no-answer{background:var(--warn)}.v-truncated{background:#6e40c9}
summary{cursor:pointer;color:#0b5cad}
[hidden]{display:none !important}
"""

JS = """
(function(){
  function sortTable(table, key, desc){
    var ths = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = ths.findIndex(function(th){ return th.dataset.key === key; });
    if (col < 0) return false;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y), c;
      if (!isNaN(nx) && !isNaN(ny) && String(nx) !== 'NaN') c = nx - ny; else c = String(x).localeCompare(String(y));
      return desc ? -c : c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    ths.forEach(function(th){ th.classList.remove('sorted-asc', 'sorted-desc'); });
    ths[col].classList.add(desc ? 'sorted-desc' : 'sorted-asc');
    return true;
  }
  function applyFilters(){
    var sel = {};
    document.querySelectorAll('select.filter').forEach(function(s){ if (s.value) sel[s.dataset.key] = s.value; });
    var traces = document.querySelectorAll('article.trace'), shown = 0;
    traces.forEach(function(t){
      var ok = Object.keys(sel).every(function(k){ return t.dataset[k] === sel[k]; });
      t.hidden = !ok; if (ok) shown++;
    });
    document.querySelectorAll('div.tgroup').forEach(function(g){
      g.hidden = !g.querySelector('article.trace:not([hidden])');
    });
    var c = document.getElementById('trace-count');
    if (c) c.textContent = 'showing ' + shown + ' of ' + traces.length;
    return shown;
  }
  function init(){
    var q = new URLSearchParams(window.location.search);
    document.querySelectorAll('select.filter').forEach(function(s){
      var v = q.get(s.dataset.key);
      if (v !== null && Array.prototype.some.call(s.options, function(o){ return o.value === v; })) s.value = v;
      s.addEventListener('change', applyFilters);
    });
    applyFilters();
    document.querySelectorAll('table.sortable').forEach(function(t){
      Array.prototype.forEach.call(t.tHead.rows[0].cells, function(th){
        if (!th.dataset.key) return;
        th.addEventListener('click', function(){ sortTable(t, th.dataset.key, th.classList.contains('sorted-asc')); });
      });
    });
    var results = document.getElementById('results-table');
    if (results && q.get('sort')) sortTable(results, q.get('sort'), q.get('desc') === '1');
  }
  window.thinklingReport = {applyFilters: applyFilters, sortTable: sortTable};
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
"""


def write_html_report(a: ReportData, path: str | Path, title: str, notes: list[str], extra: list[str],
                      samples: list[dict], max_samples: int = 50, max_chars: int = 12000) -> Path:
    """The self-contained page: inline CSS/JS, plots as data: URIs, all text escaped."""
    sections: list[tuple[str, str, str]] = []  # (id, heading, body html)
    multi = _multi_strategy(a.rows)
    front = [f"<p class='help'>{_e(PARETO_HELP)}</p>", _img(a.plots["frontier"], "accuracy vs mean tokens"), "<ul>"]
    for name, pts in frontier_panels(a.rows).items():
        f = pareto_front(pts)
        items = ", ".join(f"<span class='front' data-label='{_e(point_label(p, multi))}'>{_e(point_label(p, multi))}"
                          f" ({_pct(p['accuracy'])}%, {p['mean_tokens']:.1f} tok)</span>" for p in f)
        off = len(pts) - len(f)
        front.append(f"<li data-panel='{_e(name)}'><b>{_e(name)}</b>: on the front: {items}"
                     + (f" <span class='muted'>({off} point(s) dominated)</span>" if off else "") + "</li>")
    front.append("</ul>")
    sections.append(("frontier", "Accuracy vs tokens", "\n".join(front)))
    if "level_tokens" in a.plots:
        sections.append(("levels", "Tokens per level", _img(a.plots["level_tokens"], "mean tokens per level")))
    pids = protocol_ids(a.rows)
    sections.append(("results", "Results",
                     f"<p class='help'>{len(a.rows)} rows; click a column header to sort "
                     f"(or preset with <code>?sort=accuracy&amp;desc=1</code>). Accuracy and rates in %; "
                     f"{len(pids)} distinct protocol(s).</p>" + _results_html(a.rows)))
    if a.gaps:
        body = [f"<p class='help'>{_e(GAP_HELP)}</p>", _html_table(*_regime_table_data(a.gaps), cls="gaps"),
                _img(a.plots["regime_gaps"], "regime gaps")]
        if a.validation:
            body += ["<h3>Instance validation</h3>", _html_table(*_validation_table_data(a.validation), "validation")]
        sections.append(("regimes", "Evidence regimes", "\n".join(body)))
    elif a.validation:
        sections.append(("validation", "Instance validation", _html_table(*_validation_table_data(a.validation),
                                                                           "validation")))
    if a.pooled:
        regimes = pooled_groups(a.rows, by="training")
        sections.append(("groups", "Logic groups", f"<p class='help'>{_e(GROUP_HELP)}</p>"
                         + _html_table(*_groups_table_data(a.pooled), cls="groups")
                         + (f"<h3>Training regimes per group</h3><p class='help'>{_e(REGIME_POOL_HELP)}</p>"
                            + _html_table(*_groups_table_data(regimes), cls="groups") if regimes else "")))
    if extra:
        sections.append(("more", "More", markdown_to_html(extra)))
    if samples:
        sections.append(("traces", "Example traces", _traces_html(samples, max_samples, max_chars)))
    nav = "".join(f"<a href='#{sid}'>{_e(h)}</a>" for sid, h, _ in sections)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{markdown_to_html(notes)}<nav>{nav}</nav>"
        + "".join(f"<section id='{sid}'><h2>{_e(h)}</h2>{body}</section>" for sid, h, body in sections)
        + f"<script>{JS}</script></body></html>\n"
    )
    p = Path(path)
    atomic_write_text(p, page)
    return p
