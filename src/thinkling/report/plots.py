"""The report's PNG plots: accuracy vs tokens with the Pareto front, accuracy vs training compute, tokens per
level, regime gaps. A model trained per seed is drawn by its aggregate row with the 95% interval across seeds,
its seeds as faint points of the same colour.

Colours (per model) and markers (per strategy) are the same in every plot of one report. matplotlib
is imported inside the functions: it is heavy, and ``thinkling.report`` is imported by the CLI and
the pipeline whether or not a report gets drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thinkling.report.analysis import (
    GAPS, compute_panels, frontier_panels, gap_key, level_tokens, pareto_front, seed_interval, seed_rows,
)
from thinkling.report.rows import level_order, main_rows, multi_strategy, point_label, strategy_of


def _plt():
    import matplotlib  # heavy (about a second): only when a plot is drawn

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
    multi = multi_strategy(main_rows(rows))
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        ax.text(0.5, 0.5, f"no rows at level {level}", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, path)
    fig, axes = _grid(len(panels))
    for ax, (name, pts) in zip(axes, panels.items()):
        seeded = False
        for r in pts:
            acc = 100 * r["accuracy"]
            lo, hi = (100 * x for x in seed_interval(r))
            per = seed_rows(rows, r)
            seeded = seeded or bool(per)
            if per:
                ax.scatter([s["mean_tokens"] for s in per], [100 * s["accuracy"] for s in per],
                           marker=markers[strategy_of(r)], color=colors[r["model"]], alpha=0.3, s=18, zorder=1)
            ax.errorbar(r["mean_tokens"], acc, yerr=[[max(0.0, acc - lo)], [max(0.0, hi - acc)]],
                        fmt=markers[strategy_of(r)], color=colors[r["model"]], capsize=4, ms=7, zorder=2)
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot([p["mean_tokens"] for p in front], [100 * p["accuracy"] for p in front], "--", color="0.5",
                    lw=1, zorder=0)
        toks = [r["mean_tokens"] for r in pts]
        if max(toks) / max(min(toks), 1e-9) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("mean generated tokens per problem")
        ax.set_ylabel("accuracy (%), 95% CI" + (" (seeded: across seeds, faint: each seed)" if seeded else ""))
        ax.set_ylim(-5, 105)
        _place_labels(ax, [(r["mean_tokens"], 100 * r["accuracy"], point_label(r, multi)) for r in pts])
        lv = "all levels" if level == "all" else f"level {level}"
        ax.set_title(f"{name} ({lv})" + ("; dashed: Pareto front" if len(front) > 1 else ""), fontsize=10)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_compute(rows: list[dict], path: str | Path, level: Any = "all") -> Path | None:
    """Accuracy against training FLOPs (log scale), one point per (model, strategy) whose rows carry
    ``train_compute``: the aggregate with its 95% interval across seeds (Wilson without seeds), each seed
    faint; a panel per task (and evidence regime). None when no row has training compute."""
    panels = compute_panels(rows, level)
    if not panels:
        return None
    colors, markers = _styles(rows)
    multi = multi_strategy(main_rows(rows))
    fig, axes = _grid(len(panels))
    for ax, (name, pts) in zip(axes, panels.items()):
        seeded = False
        for p in pts:
            r = p["row"]
            acc = 100 * p["accuracy"]
            lo, hi = (100 * x for x in p["interval"])
            xs = [x for x, _ in p["seeds"]]
            seeded = seeded or bool(xs)
            if xs:
                ax.scatter(xs, [100 * a for _, a in p["seeds"]], marker=markers[strategy_of(r)],
                           color=colors[r["model"]], alpha=0.3, s=18, zorder=1)
            xerr = [[p["flops"] - min(xs)], [max(xs) - p["flops"]]] if xs else None
            ax.errorbar(p["flops"], acc, yerr=[[max(0.0, acc - lo)], [max(0.0, hi - acc)]], xerr=xerr,
                        fmt=markers[strategy_of(r)], color=colors[r["model"]], capsize=4, ms=7, zorder=2)
        ax.set_xscale("log")
        ax.set_xlabel("training compute (FLOPs, log scale)")
        ax.set_ylabel("accuracy (%), 95% CI" + (" (seeded: across seeds, faint: each seed)" if seeded else ""))
        ax.set_ylim(-5, 105)
        _place_labels(ax, [(p["flops"], 100 * p["accuracy"], point_label(p["row"], multi)) for p in pts])
        lv = "all levels" if level == "all" else f"level {level}"
        ax.set_title(f"{name} ({lv})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_level_tokens(rows: list[dict], path: str | Path) -> Path | None:
    """Mean generated tokens per difficulty level, one line per (model, strategy), a panel per task."""
    panels = level_tokens(rows)
    if not panels:
        return None
    colors, markers = _styles(rows)
    multi = multi_strategy(main_rows(rows))
    by_label = {point_label(r, multi): r for r in main_rows(rows)}
    fig, axes = _grid(len(panels), w=7.0, h=3.8, max_cols=2)
    for ax, (name, series) in zip(axes, panels.items()):
        for label, pts in series.items():
            lv = sorted(pts, key=level_order)
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
