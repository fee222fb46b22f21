"""report.md: the title and notes, each section as markdown text, pipe tables and the protocols."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from thinkling.artifacts import stable_hash
from thinkling.report.analysis import frontier_panels, pareto_front, pooled_groups
from thinkling.report.data import ReportData
from thinkling.report.rows import multi_strategy, point_label, sort_rows
from thinkling.report.tables import (
    COMPUTE_HELP,
    GAP_HELP,
    GROUP_HELP,
    PARETO_HELP,
    REGIME_POOL_HELP,
    SEEDS_HELP,
    compute_table_data,
    groups_table_data,
    pct,
    protocol_ids,
    regime_table_data,
    result_columns,
    validation_table_data,
)


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def results_table(rows: list[dict], pids: dict[str, tuple[str, dict]] | None = None) -> str:
    """Markdown table of every result row with the full metric set and its protocol's name (``pids``: the
    report's protocol names, default those of ``rows``)."""
    rows = sort_rows(rows)
    cols = result_columns(rows)
    pids = pids or protocol_ids(rows)
    return _md_table([c.head for c in cols] + ["protocol"],
                     ([c.text(r) for c in cols] + [pids[stable_hash(r.get("protocol") or {})][0]] for r in rows))


def pareto_notes(rows: Sequence[dict]) -> list[str]:
    """One line per panel naming the points on the Pareto front (markdown)."""
    multi = multi_strategy(rows)
    out = []
    for name, pts in frontier_panels(rows).items():
        front = pareto_front(pts)
        desc = "; ".join(f"{point_label(p, multi)} ({pct(p['accuracy'])}%, {p['mean_tokens']:.1f} tok)"
                         for p in front)
        off = len(pts) - len(front)
        out.append(f"- **{name}**: on the front: {desc}" + (f" ({off} point(s) dominated)" if off else ""))
    return out


def _protocols(rows: Sequence[dict]) -> list[str]:
    pids = protocol_ids(rows)
    if not pids:
        return []
    md = ["## Protocols", ""]
    for name, proto in pids.values():
        md += [f"**{name}**", "", "```", *(f"{k}: {json.dumps(v, default=str)}" for k, v in proto.items()), "```",
               ""]
    return md


def render_markdown(a: ReportData, title: str, notes: list[str], extra: list[str], has_samples: bool) -> str:
    """The text of report.md; ``notes`` and ``extra`` are markdown lines, put in as they are."""
    md = [f"# {title}", ""]
    if notes:
        md += [*notes, ""]
    md += ["## Accuracy vs tokens", "", f"![frontier]({a.plots['frontier'].name})", "", PARETO_HELP, "",
           *pareto_notes(a.rows), ""]
    if "compute" in a.plots:
        md += ["## Accuracy vs training compute", "", f"![accuracy vs training compute]({a.plots['compute'].name})",
               "", COMPUTE_HELP, "", _md_table(*compute_table_data(a.compute)), ""]
    if "level_tokens" in a.plots:
        md += ["## Tokens per level", "", f"![tokens per level]({a.plots['level_tokens'].name})", ""]
    pids = protocol_ids(a.rows)
    md += ["## Results", "", *([SEEDS_HELP, ""] if a.per_seed else []), results_table(a.main or a.rows, pids), ""]
    if a.per_seed:
        md += ["### Results per seed", "", results_table(a.per_seed, pids), ""]
    if a.gaps:
        md += ["## Evidence regimes", "", GAP_HELP, "", _md_table(*regime_table_data(a.gaps)), "",
               f"![regime gaps]({a.plots['regime_gaps'].name})", ""]
    if a.validation:
        md += ["### Instance validation", "", _md_table(*validation_table_data(a.validation)), ""]
    if a.pooled:
        md += ["## Logic groups", "", GROUP_HELP, "", _md_table(*groups_table_data(a.pooled)), ""]
        regimes = pooled_groups(a.rows, by="training")
        if regimes:
            md += ["### Training regimes per group", "", REGIME_POOL_HELP, "",
                   _md_table(*groups_table_data(regimes)), ""]
    md += extra
    md += _protocols(a.rows)
    if has_samples:
        md += ["Example traces: see report.html beside this file.", ""]
    return "\n".join(md)
