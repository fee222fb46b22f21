"""Reports: eval results -> report.md (PNG plots beside it) and one self-contained report.html.

Inputs are the eval stage's artifacts: ``results.json`` (one row per model x task x level x strategy
[x regime]), optionally ``samples.jsonl`` (one row per generated answer) and ``validation.json``
(evidence instance validation). ``build_report`` loads and merges several eval dirs;
``write_report`` renders rows that are already in memory (``thinkling run`` calls it).

The package, by concern:

- ``rows``: what a result row is (strategy, training tag, number correct, key, merge, order)
- ``analysis``: pure analyses (``pareto_front``, ``compute_panels``, ``seed_rows``, ``regime_gaps``,
  ``pooled_groups``, ``level_tokens``, ``sample_verdict``, ``select_samples``) that the renderers and the tests
  share
- ``inputs``: loading results.json / samples.jsonl / validation.json, errors naming file and line
- ``plots``: the PNG plots (matplotlib, imported only when drawing): accuracy vs inference tokens, accuracy vs
  training compute (when rows carry ``train_compute``), tokens per level, regime gaps
- ``tables``: cell formats, columns and table data both renderers show
- ``data``: ``ReportData``, the analysed rows and plot files a report is rendered from
- ``markdown``: the report.md text; ``page``: the self-contained report.html
- ``build``: ``write_report`` and ``build_report``

The HTML page has no external URL: CSS and JS are inline, plots are base64 PNG data URIs, and every
piece of model or dataset text is HTML-escaped.
"""

from thinkling.report.analysis import (
    GAPS,
    GROUPS,
    VERDICTS,
    compute_panels,
    frontier_panels,
    gap_key,
    level_tokens,
    pareto_front,
    pooled_groups,
    regime_gaps,
    sample_group,
    sample_verdict,
    seed_rows,
    select_samples,
    validation_summary,
)
from thinkling.report.build import build_report, write_report
from thinkling.report.data import ReportData
from thinkling.report.inputs import REQUIRED, ReportInputs, load_inputs
from thinkling.report.markdown import pareto_notes, render_markdown, results_table
from thinkling.report.page import markdown_to_html, write_html_report
from thinkling.report.plots import plot_compute, plot_frontier, plot_level_tokens, plot_regime_gaps
from thinkling.report.rows import (
    DEFAULT_STRATEGY,
    ROW_KEY,
    correct_of,
    is_seed_row,
    main_rows,
    mean_iterations,
    merge_rows,
    panel_name,
    point_label,
    row_key,
    sort_rows,
    strategy_of,
    training_of,
)
from thinkling.report.tables import Column, extras_text, protocol_ids, result_columns

__all__ = [
    "DEFAULT_STRATEGY", "GAPS", "GROUPS", "REQUIRED", "ROW_KEY", "VERDICTS",
    "Column", "ReportData", "ReportInputs",
    "build_report", "compute_panels", "correct_of", "extras_text", "frontier_panels", "gap_key", "is_seed_row",
    "level_tokens", "load_inputs", "main_rows", "markdown_to_html", "mean_iterations", "merge_rows", "panel_name",
    "pareto_front", "pareto_notes", "plot_compute", "plot_frontier", "plot_level_tokens", "plot_regime_gaps",
    "point_label", "pooled_groups", "protocol_ids", "regime_gaps", "render_markdown", "result_columns",
    "results_table", "row_key", "sample_group", "sample_verdict", "seed_rows", "select_samples", "sort_rows",
    "strategy_of", "training_of", "validation_summary", "write_html_report", "write_report",
]
