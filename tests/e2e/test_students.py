"""A student trained by one method and evaluated: an adaptive student forced into its long mode at eval
by a reply prefix."""

from __future__ import annotations

import json

import pytest

from helpers.train import run_train
from thinkling.config import build_config
from thinkling.format import LONG_MARK


@pytest.mark.slow
def test_adaptive_student_can_be_forced_into_a_mode_at_eval(curated, tiny_model, tmp_path, captured):
    from thinkling.artifacts import read_jsonl as rj
    from thinkling.evaluate.stage import EvalConfig, evaluate

    run_train(curated / "dap", tmp_path / "a", captured.console, method="adaptive", model=str(tiny_model))
    cfg = build_config(EvalConfig, {"out": str(tmp_path / "e"), "task": {"n": 3, "split": "test", "levels": [1, 4]},
                                    "max_new_tokens": 8,
                                    "models": [{"name": "free", "path": str(tmp_path / "a")},
                                               {"name": "long", "path": str(tmp_path / "a"), "reply_prefix": LONG_MARK}]})
    evaluate(cfg, console=captured.console)
    samples = rj(tmp_path / "e" / "samples.jsonl")
    assert all(s["completion"].startswith(LONG_MARK) for s in samples if s["model"] == "long")
    rows = json.loads((tmp_path / "e" / "results.json").read_text())
    forced = [r for r in rows if r["model"] == "long" and r["level"] == "all"][0]
    assert forced["short_mode_share"] == 0.0 and forced["protocol"]["reply_prefix"] == LONG_MARK
    assert all(s["tokens"] <= 8 for s in samples)  # the given prefix is not counted as generated
