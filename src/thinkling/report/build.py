"""The two entry points: ``write_report`` (rows in memory -> files) and ``build_report`` (eval dirs -> files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thinkling.artifacts import atomic_write_text
from thinkling.report.data import ReportData
from thinkling.report.inputs import load_inputs
from thinkling.report.markdown import render_markdown
from thinkling.report.page import write_html_report


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
    md = render_markdown(a, title, notes or [], extra_sections or [], bool(samples))
    path = out / "report.md"
    atomic_write_text(path, md)
    write_html_report(a, out / "report.html", title, notes or [], extra_sections or [], list(samples or []),
                      max_samples)
    return path


def build_report(inputs: Sequence[str | Path], out_dir: str | Path, title: str = "thinkling report",
                 max_samples: int = 50) -> dict[str, Any]:
    """``thinkling report``: load and merge eval results, write report.md (+ PNGs) and report.html."""
    data = load_inputs(inputs)
    notes = ["Results from " + ", ".join(f"`{s}`" for s in data.sources) + "."]
    if data.replaced:
        notes.append(f"{data.replaced} result row(s) appeared in more than one input; the later input's row "
                     "was kept (same model, task, level, strategy, regime, seed).")
    md = write_report(data.rows, out_dir, title, notes=notes, samples=data.samples, validation=data.validation,
                      max_samples=max_samples)
    return {"markdown": md, "html": Path(out_dir) / "report.html", "rows": len(data.rows),
            "samples": len(data.samples), "replaced": data.replaced}
