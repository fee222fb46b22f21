"""What both renderers show: the sorted rows, their analyses and the plot files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from thinkling.report.analysis import compute_panels, pooled_groups, regime_gaps, validation_summary
from thinkling.report.plots import plot_compute, plot_frontier, plot_level_tokens, plot_regime_gaps
from thinkling.report.rows import is_seed_row, main_rows, sort_rows


@dataclass
class ReportData:
    """What both renderers show: sorted rows, the analyses and the plot files. ``rows`` are every row,
    ``main`` those shown first (aggregates over seeds, unseeded models), ``per_seed`` each seed's rows,
    ``compute`` the accuracy-vs-training-compute points (empty when no row has ``train_compute``)."""

    rows: list[dict]
    gaps: list[dict]
    pooled: list[dict]
    validation: list[dict]
    plots: dict[str, Path]
    main: list[dict] = field(default_factory=list)
    per_seed: list[dict] = field(default_factory=list)
    compute: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: Sequence[dict], out_dir: str | Path, validation: dict | None = None) -> ReportData:
        """Analyse ``rows`` and write the PNG plots into ``out_dir``."""
        out = Path(out_dir)
        rows = sort_rows(rows)
        gaps = regime_gaps(rows)
        plots = {"frontier": plot_frontier(rows, out / "frontier.png")}
        compute = compute_panels(rows)
        cp = plot_compute(rows, out / "compute.png") if compute else None
        if cp:
            plots["compute"] = cp
        lt = plot_level_tokens(rows, out / "level_tokens.png")
        if lt:
            plots["level_tokens"] = lt
        rg = plot_regime_gaps(gaps, out / "regime_gaps.png")
        if rg:
            plots["regime_gaps"] = rg
        return cls(rows, gaps, pooled_groups(rows), validation_summary(validation or {}), plots, main_rows(rows),
                   [r for r in rows if is_seed_row(r)], compute)
