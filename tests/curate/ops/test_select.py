"""The ``select`` op: mixing per difficulty tier (which needs the difficulty op first)."""

from __future__ import annotations

import pytest

from helpers.curate import cur, op_row
from thinkling.artifacts import read_jsonl
from thinkling.records import Example


def test_select_mixes_per_difficulty_tier(long_traces, tmp_path, captured):
    m = cur(long_traces, tmp_path / "d", captured.console, ops=["difficulty", "select"],
            difficulty={"method": "level", "tiers": 2, "pass_thresholds": [0.5]},
            select={"per_level": 5, "by": "difficulty"})
    out = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    assert len(out) == 10 and sum(e.meta["difficulty"] == 1 for e in out) == 5
    assert op_row(m, "select")["dropped"] == {"level_mix": 14}
    with pytest.raises(ValueError, match="difficulty op before select"):
        cur(long_traces, tmp_path / "e", captured.console, ops=["select"], select={"per_level": 5, "by": "difficulty"})
