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


@pytest.mark.slow
def test_a_recipe_with_seeds_end_to_end(cli, tmp_path):
    """``thinkling run RECIPE --seeds 0,1``: each student trained per seed into train/<student>/seed-<k>/,
    rows per seed plus the aggregate, claims in every seed and on the aggregate, the report's compute plot."""
    out = tmp_path / "run"
    student = {"max_steps": 2, "save_steps": 2, "batch_size": 4, "logging_steps": 1, "tiny": TINY,
               "tokenizer_from": ["concise", "none"], "max_len": 256}
    recipe = {
        "out": str(out), "title": "seeds", "threads": 1, "parallel": 1,
        "generate": {s: {"task": {"n": 8, "levels": [1, 2]}, "teacher": {"style": s}} for s in ("concise", "none")},
        "curate": {s: {"traces": s} for s in ("concise", "none")},
        "train": {s: {"data": s, **student} for s in ("concise", "none")},
        "eval": {"task": {"split": "test", "n": 3, "levels": [3]}, "max_new_tokens": 8, "batch_size": 8},
        "checks": [{"kind": "min_accuracy", "model": "none", "value": 0.0},
                   {"kind": "beats", "model": "concise", "ref": "none", "points": -100, "over": "aggregate"},
                   # the same steps and batch on shorter rows: fewer training tokens in every seed
                   {"kind": "compute_ratio", "model": "none", "ref": "concise", "value": 1.0, "basis": "tokens"}],
    }
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = cli("run", str(path), "--seeds", "0,1", timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    for s in ("concise", "none"):
        for k in (0, 1):
            m = json.loads((out / "train" / s / f"seed-{k}" / "manifest.json").read_text())
            assert m["config"]["seed"] == k and m["compute"]["tokens"] > 0 and m["counts"]["steps"] == 2
        assert not (out / "train" / s / "manifest.json").exists()
    rows = json.loads((out / "results.json").read_text())
    assert sorted({(r["model"], r["seed"]) for r in rows}, key=str) == sorted(
        {(m, s) for m in ("concise", "none") for s in (0, 1, "all")}, key=str)
    agg = [r for r in rows if r["model"] == "none" and r["seed"] == "all" and r["level"] == "all"][0]
    assert agg["seeds"] == [0, 1] and agg["n"] == 6 and "seed_ci_low" in agg and "train_compute" in agg
    assert all("train_compute" in r for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert [c["passed"] for c in run["checks"]] == [True, True, True], run["checks"]
    assert run["checks"][0]["over"] == "every" and len(run["checks"][0]["measured"]) == 2
    assert run["checks"][1]["diff_ci"] is not None
    report = (out / "report.md").read_text()
    for needle in ("in every seed (0, 1)", "aggregate over 2 seeds", "## Accuracy vs training compute",
                   "### Results per seed", "| student | seed | method |", "| concise | 1 | sft |"):
        assert needle in report, needle
    assert (out / "compute.png").is_file()
