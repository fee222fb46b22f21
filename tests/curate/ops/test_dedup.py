"""The ``dedup`` op: near-duplicate traces are dropped only when asked."""

from __future__ import annotations

import json

from helpers.curate import cur, gen, op_row
from thinkling.artifacts import read_jsonl
from thinkling.records import Trace


def test_near_duplicate_traces_are_dropped_only_when_asked(tmp_path, captured):
    traces = gen(tmp_path / "t", n=4, levels=(4,), console=captured.console)
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    twin = rows[0].model_copy(update={"key": "planted-near", "sample_index": 9,
                                      "reasoning": rows[0].reasoning.replace("Okay", "Right").replace("Alright", "Right")
                                      .replace("Let me read", "Let me reread")})
    assert twin.reasoning != rows[0].reasoning
    with open(traces / "traces.jsonl", "a") as f:
        f.write(json.dumps(twin.model_dump(mode="json")) + "\n")
    m = cur(traces, tmp_path / "a", captured.console, ops=["dedup"])
    assert op_row(m, "dedup")["dropped"] == {}
    m = cur(traces, tmp_path / "b", captured.console, ops=["dedup"], dedup={"near": True})
    assert op_row(m, "dedup")["dropped"] == {"near_duplicate": 1}
    dropped = read_jsonl(tmp_path / "b" / "dropped.jsonl")
    assert [d["id"] for d in dropped] == ["planted-near"]
