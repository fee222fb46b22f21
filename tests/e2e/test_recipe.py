"""A mini recipe end to end through ``thinkling run`` (two teachers, two students trained in parallel,
eval, report, claims), and a rerun that skips every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

TINY = {"vocab_size": 300, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
        "max_position_embeddings": 256}


def mini_recipe(out: Path) -> dict:
    student = {"max_steps": 5, "save_steps": 5, "batch_size": 8, "logging_steps": 1, "tiny": TINY,
               "tokenizer_from": ["concise", "none"], "max_len": 256}
    return {
        "out": str(out),
        "title": "mini recipe",
        "threads": 1,
        "parallel": 2,
        "generate": {s: {"task": {"n": 20, "levels": [1, 2]}, "teacher": {"style": s}} for s in ("concise", "none")},
        "curate": {s: {"traces": s} for s in ("concise", "none")},
        "train": {s: {"data": s, **student} for s in ("concise", "none")},
        # the test split of levels 1-2 holds only a handful of distinct problems: evaluate on 3-4
        "eval": {"task": {"split": "test", "n": 6, "levels": [3, 4]}, "max_new_tokens": 16, "batch_size": 16},
        "checks": [{"kind": "max_accuracy", "model": "none", "level": "all", "value": 1.0},
                   {"kind": "min_accuracy", "model": "concise", "level": 3, "value": 0.0}],
    }


@pytest.mark.slow
def test_mini_recipe_end_to_end_and_rerun_skips_every_stage(cli, tmp_path):
    out = tmp_path / "run"
    recipe = tmp_path / "mini.yaml"
    recipe.write_text(yaml.safe_dump(mini_recipe(out)))
    first = cli("run", str(recipe), timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    log = first.stderr
    assert log.count("started (pid") == 2, log  # two students trained in parallel processes
    assert "skipping" not in log

    for f in ("report.md", "report.html", "results.json", "frontier.png", "run.json"):
        assert (out / f).is_file(), f
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()   # the run's page holds its example traces and claims
    assert "Example traces" in page and "Claims checked" in page and "data:image/png;base64," in page
    rows = json.loads((out / "results.json").read_text())
    assert sorted((r["model"], str(r["level"])) for r in rows) == sorted(
        (m, lv) for m in ("concise", "none") for lv in ("3", "4", "all"))
    assert all(r["n"] == (12 if r["level"] == "all" else 6) for r in rows)
    report = (out / "report.md").read_text()
    assert report.startswith("# mini recipe")
    for needle in ("## Results", "## Claims checked", "## Students", "![frontier](frontier.png)", "| concise |",
                   "| none |"):
        assert needle in report, needle
    run = json.loads((out / "run.json").read_text())
    assert [c["passed"] for c in run["checks"]] == [True, True]
    for s in ("concise", "none"):
        m = json.loads((out / "train" / s / "manifest.json").read_text())
        assert m["counts"]["steps"] == 5 and len(m["loss_history"]) == 5
        assert m["config"]["tiny"]["hidden_size"] == 64
        assert (out / "train" / s / "train.log").is_file()
    manifests = {p: p.read_bytes() for p in out.rglob("manifest.json")}
    assert len(manifests) == 7  # 2 generate + 2 curate + 2 train + 1 eval

    # second run: every stage is skipped (each prints "... is complete for this config; skipping"), no
    # training process is started and no manifest is rewritten
    second = cli("run", str(recipe), timeout=900)
    assert second.returncode == 0, second.stderr[-4000:]
    assert second.stderr.count("complete for this config; skipping") == 7, second.stderr
    assert "started (pid" not in second.stderr
    assert {p: p.read_bytes() for p in out.rglob("manifest.json")} == manifests
    assert json.loads((out / "results.json").read_text()) == rows
