"""Reports: results.json rows -> report.md and frontier.png (accuracy vs mean generated tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from thinkling.artifacts import atomic_write_text


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def plot_frontier(rows: list[dict], path: str | Path, level: Any = "all", title: str | None = None) -> Path:
    """Accuracy (with 95% CI) against mean generated tokens, one point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in rows if r["level"] == level]
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for r in pts:
        yerr = [[max(0.0, 100 * (r["accuracy"] - r["ci_low"]))], [max(0.0, 100 * (r["ci_high"] - r["accuracy"]))]]
        ax.errorbar(r["mean_tokens"], 100 * r["accuracy"], yerr=yerr, fmt="o", capsize=4, ms=7)
        ax.annotate(r["model"], (r["mean_tokens"], 100 * r["accuracy"]), textcoords="offset points",
                    xytext=(6, 6), fontsize=9)
    ax.set_xlabel("mean generated tokens per problem")
    ax.set_ylabel("accuracy (%) with 95% CI")
    ax.set_ylim(-5, 105)
    if pts and max(r["mean_tokens"] for r in pts) / max(min(r["mean_tokens"] for r in pts), 1e-9) > 20:
        ax.set_xscale("log")
    lv = "all levels" if level == "all" else f"level {level}"
    ax.set_title(title or f"accuracy vs tokens ({pts[0]['task'] if pts else ''}, {lv})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p


def results_table(rows: list[dict]) -> str:
    head = ("| model | task | level | n | accuracy % [95% CI] | mean tok | median tok | p95 tok | truncated % "
            "| s/problem | tok/s |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['task']} | {r['level']} | {r['n']} | {_pct(r['accuracy'])} "
            f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] | {r['mean_tokens']:.1f} | {r['median_tokens']:.0f} "
            f"| {r['p95_tokens']:.0f} | {_pct(r['truncation_rate'])} | {r['seconds_per_problem']:.4f} "
            f"| {r['tokens_per_second']:.0f} |"
        )
    return "\n".join(lines)


def write_report(rows: list[dict], out_dir: str | Path, title: str = "thinkling report",
                 notes: list[str] | None = None, extra_sections: list[str] | None = None) -> Path:
    out = Path(out_dir)
    plot = plot_frontier(rows, out / "frontier.png")
    md = [f"# {title}", ""]
    if notes:
        md += [*notes, ""]
    md += ["## Accuracy vs tokens", "", f"![frontier]({plot.name})", "", "## Results", "", results_table(rows), ""]
    if extra_sections:
        md += extra_sections
    if rows:
        proto = rows[0].get("protocol", {})
        md += ["## Protocol", "", "```", *(f"{k}: {v}" for k, v in proto.items()), "```", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path
