"""The report of models trained per seed and of rows with training compute: the aggregate rows first and
each seed's after, the frontier's spread, accuracy against training compute (plot and table) in
report.md and report.html; rows with neither report as they did."""

from __future__ import annotations

import pytest

from helpers.compute import compute, seed_row
from helpers.report import fake_rows, fake_samples
from thinkling.evaluate.seeds import aggregate_seeds
from thinkling.report import compute_panels, frontier_panels, main_rows, seed_rows, write_report
from thinkling.report.tables import compute_table_data


def seeded_rows() -> list[dict]:
    """long and concise at seeds 0-2 (levels 1, 2, all) with training compute, a teacher evaluated once."""
    rows = []
    for m, ks, tok, tokens in (("long", (30, 34, 38), 200.0, 4e6), ("concise", (28, 36, 32), 60.0, 1e6)):
        for s, k in enumerate(ks):
            tc = compute(int(tokens * (1 + 0.1 * s)), flops_per_token=6e6, budget={"kind": "tokens", "total": tokens})
            for lv in (1, 2):
                rows.append(seed_row(m, s, k // 2, 20, tok + s, level=lv, train_compute=tc))
            rows.append(seed_row(m, s, k, 40, tok + s, train_compute=tc))
    rows += [seed_row("teacher", None, 39, 40, 500.0, level=lv) for lv in (1, 2, "all")]
    return rows + aggregate_seeds(rows)


def test_seed_points_and_compute_panels():
    rows = seeded_rows()
    (panel, pts), = frontier_panels(rows).items()
    assert [(p["model"], p.get("seed")) for p in pts] == [("long", "all"), ("concise", "all"), ("teacher", None)]
    per = seed_rows(rows, pts[1])
    assert [r["seed"] for r in per] == [0, 1, 2] and all(r["model"] == "concise" and r["level"] == "all" for r in per)
    assert seed_rows(rows, pts[2]) == []
    (cpanel, cpts), = compute_panels(rows).items()
    assert [p["row"]["model"] for p in cpts] == ["long", "concise"]  # the teacher has no training compute
    c = cpts[1]
    assert c["flops"] == pytest.approx(6e6 * 1.1e6) and c["accuracy"] == pytest.approx(0.8)
    assert c["interval"] == (c["row"]["seed_ci_low"], c["row"]["seed_ci_high"])  # the spread across seeds
    assert [x for x, _ in c["seeds"]] == [6e12, pytest.approx(6.6e12), pytest.approx(7.2e12)]
    head, body = compute_table_data(compute_panels(rows))
    assert head[-2:] == ["accuracy % [95% CI]", "accuracy % per PFLOP"]
    assert body[1][:5] == ["concise", "greedy", "arithmetic", "all", "0, 1, 2"]
    assert body[1][-3] == "tokens 1e+06" and body[1][-1] == f"{80 / 6.6e12 * 1e15:.3g}"  # 80% per 6.6e12 FLOPs
    assert len(main_rows(rows)) == 9 and len(rows) == 27


def test_report_of_seeded_rows_with_compute(tmp_path):
    rows = seeded_rows()
    samples = [{**s, "model": "long", "seed": i % 3} for i, s in enumerate(fake_samples(9)) if s["model"] == "concise"]
    md_path = write_report(rows, tmp_path, "seeds", samples=samples)
    out = md_path.parent
    for f in ("frontier.png", "compute.png", "level_tokens.png", "report.html"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    md = md_path.read_text()
    for needle in ("## Accuracy vs training compute", "![accuracy vs training compute](compute.png)",
                   "accuracy % per PFLOP", "### Results per seed", "Rows with seed 'all' aggregate",
                   "| seed |", "| all (0, 1, 2) |", "across seeds [95% CI]", "| tokens 4e+06 |"):
        assert needle in md, needle
    results, per_seed = md.split("### Results per seed")
    results = results.split("## Results")[1]
    assert "| long | hf | all (0, 1, 2) |" in results and "| long | hf | 0 |" not in results
    assert "| long | hf | 0 |" in per_seed.split("##")[0] and "all (0, 1, 2)" not in per_seed.split("##")[0]
    page = (out / "report.html").read_text()
    assert "Accuracy vs training compute" in page and "id='results-per-seed'" in page
    assert "data-seed='all'" in page and "data-seed='2'" in page and "seed 1" in page  # a trace says its seed
    assert page.count("data:image/png;base64,") == 3  # frontier, compute, tokens per level


def test_rows_without_seeds_or_compute_report_as_before(tmp_path):
    md = write_report(fake_rows(), tmp_path / "a", "plain", samples=fake_samples()).read_text()
    assert not (tmp_path / "a" / "compute.png").exists()
    for needle in ("training compute", "Results per seed", "| seed |", "across seeds", "seed 'all'"):
        assert needle not in md, needle
    page = (tmp_path / "a" / "report.html").read_text()
    assert "results-per-seed" not in page and "data-seed" not in page and "Accuracy vs training compute" not in page
    # training compute without seeds: the compute plot and table, and nothing about seeds
    rows = [dict(r, train_compute=compute(1000 * (i + 1))) if r["model"] != "teacher" else r
            for i, r in enumerate(fake_rows())]
    md = write_report(rows, tmp_path / "b", "compute").read_text()
    assert (tmp_path / "b" / "compute.png").is_file() and "## Accuracy vs training compute" in md
    assert "Results per seed" not in md and "| seed |" not in md
