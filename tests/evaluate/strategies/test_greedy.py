"""The ``adaptive`` strategy (with ``greedy``): it records a reply's mode and can force one."""

from __future__ import annotations

from helpers.evaluate import row, run_eval


def test_adaptive_strategy_records_and_forces_the_mode(noisy_model, tmp_path, captured):
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[f"noisy={noisy_model}"],
                             strategies=["adaptive", {"name": "adaptive", "label": "forced-short", "force": "short"}])
    forced = [s for s in samples if s["strategy"] == "forced-short"]
    assert forced and all(s["completion"].startswith("<short>") for s in forced)
    assert row(rows, strategy="forced-short")["short_mode_share"] == 1.0
    free = row(rows, strategy="adaptive")  # an untrained model opens with neither marker
    assert free.get("short_mode_share", 0.0) == 0.0 and free["protocol"]["strategy_options"] == {"force": None}
