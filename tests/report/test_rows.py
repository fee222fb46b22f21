"""Result rows: merged across inputs by (model, task, level, strategy, regime), greedy by default."""

from __future__ import annotations

from thinkling.report import merge_rows, strategy_of


def test_merge_deduplicates_by_model_task_level_strategy_regime_and_defaults_to_greedy():
    old = {"model": "m", "task": "t", "level": "all", "n": 10, "accuracy": 0.5}
    assert strategy_of(old) == "greedy"
    newer = {**old, "strategy": "greedy", "accuracy": 0.6}
    other = {**old, "strategy": "budget"}
    regime = {**old, "regime": "full"}
    rows, replaced = merge_rows([[old, other], [newer, regime]])
    assert replaced == 1 and len(rows) == 3
    assert rows[0]["accuracy"] == 0.6  # the later input wins, in the earlier row's place
