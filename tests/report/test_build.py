"""``write_report``: report.md, the PNG plots and a self-contained report.html, also for rows as the
pipeline writes them and for models at 0% and 100% accuracy."""

from __future__ import annotations

import re

from helpers.report import TRICKY_Q, VALIDATION, fake_rows, fake_samples
from thinkling.metrics import summarize
from thinkling.report import write_report


def test_write_report_writes_markdown_plots_and_a_self_contained_page(tmp_path):
    rows, samples = fake_rows(), fake_samples()
    md_path = write_report(rows, tmp_path / "rep", "fake report", notes=["A note with `code`."],
                           extra_sections=["## Claims checked", "", "| claim | result |", "|---|---|",
                                           "| concise <= 100 tok | PASS |", ""],
                           samples=samples, validation=VALIDATION, max_samples=50)
    out = md_path.parent
    for f in ("report.md", "report.html", "frontier.png", "level_tokens.png", "regime_gaps.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
        if f.endswith(".png"):
            assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = md_path.read_text()
    for needle in ("# fake report", "![frontier](frontier.png)", "![tokens per level](level_tokens.png)",
                   "![regime gaps](regime_gaps.png)", "## Results", "## Evidence regimes", "## Logic groups",
                   "### Instance validation", "## Claims checked", "## Protocols", "| concise |",
                   "pass@1 55.0 · pass@4 80.0 · maj@4 70.0", "iter 1.55 (1:120, 2:50, 3:30)",
                   "+35.0 [", "(training: multi-task)", "answerable_without_evidence"):
        assert needle in md, needle
    page = (out / "report.html").read_text()
    assert not re.search(r"https?://", page), re.search(r".{60}https?://.{60}", page).group(0)
    srcs = re.findall(r"""\bsrc=['"]([^'"]*)""", page)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "@import" not in page
    assert "Is 3 &lt; 5 &amp;&amp; 7 &gt; 2? Answer &lt;b&gt;yes&lt;/b&gt;" in page and TRICKY_Q not in page
    assert "<script>document.title" not in page
    assert page.count("<script>") == 1


def test_pipeline_style_rows_still_report(tmp_path):
    """Rows as `thinkling run` writes them today (no strategy/backend/no_answer_rate/correct)."""
    from thinkling.metrics import summarize

    rows = []
    for name, k, n in (("perfect", 10, 10), ("zero", 0, 69), ("half", 5, 10)):
        for lv in (1, "all"):
            rows.append({"model": name, "task": "arithmetic", "split": "test", "level": lv,
                         "protocol": {"strategy": "greedy", "seed": 0},
                         **{k2: v for k2, v in summarize([True] * k + [False] * (n - k), [5] * n, [False] * n,
                                                        1.0).items() if k2 != "correct"}})
    path = write_report(rows, tmp_path, "t", notes=["n"], extra_sections=["## Students", ""])
    md = path.read_text()
    assert "![frontier](frontier.png)" in md and "| perfect |" in md and "## Students" in md
    assert "## Logic groups" not in md and "## Evidence regimes" not in md
    assert (tmp_path / "report.html").is_file() and (tmp_path / "level_tokens.png").is_file()


def test_report_for_perfect_and_zero_accuracy(tmp_path):
    """BUG: a model at 100% (e.g. 10/10) or 0% (e.g. 0/69) accuracy makes the frontier plot raise
    "'yerr' must not contain negative values" (ci_high - accuracy is -1e-16), so `thinkling run`
    fails at the report after every stage has finished."""
    from thinkling.report import write_report

    rows = []
    for name, k, n in (("perfect", 10, 10), ("zero", 0, 69), ("half", 5, 10)):
        rows.append({"model": name, "task": "arithmetic", "level": "all",
                     **summarize([True] * k + [False] * (n - k), [5] * n, [False] * n, 1.0)})
    path = write_report(rows, tmp_path, "t")
    assert path.is_file() and (tmp_path / "frontier.png").stat().st_size > 0
