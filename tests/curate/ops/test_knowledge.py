"""The ``knowledge`` op: reused from the oracle, or asked of a teacher, and required."""

from __future__ import annotations

from helpers.curate import cur, op_row
from thinkling.artifacts import read_jsonl
from thinkling.records import Example


def test_knowledge_reused_from_the_oracle_or_asked_and_required(long_traces, tmp_path, captured):
    m = cur(long_traces, tmp_path / "a", captured.console, ops=["knowledge"])
    assert op_row(m, "knowledge")["report"]["asked"] == 0
    assert all("modulo 10" in e.meta["knowledge"] for e in read_jsonl(tmp_path / "a" / "train.jsonl", Example))
    m = cur(long_traces, tmp_path / "b", captured.console, ops=["knowledge"], knowledge={"reuse": False})
    assert op_row(m, "knowledge")["report"]["asked"] == 24 and op_row(m, "knowledge")["kept"] == 24
    # a teacher that cannot write knowledge (the dataset-solutions teacher): examples are dropped, counted
    m = cur(long_traces, tmp_path / "c", captured.console, ops=["knowledge"],
            knowledge={"reuse": False, "teacher": {"backend": "reference"}})
    assert op_row(m, "knowledge")["dropped"] == {"no_knowledge": 24}
