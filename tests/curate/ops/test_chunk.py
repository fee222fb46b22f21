"""The ``chunk`` op: its chunks match the oracle's annotations, and pruning them drops more for easy tiers."""

from __future__ import annotations

from helpers.curate import cur, op_row
from thinkling.artifacts import read_jsonl
from thinkling.records import Example


def test_chunk_op_matches_the_oracle_annotations_and_prune_drops_more_for_easy_tiers(long_traces, tmp_path,
                                                                                      captured):
    m = cur(long_traces, tmp_path / "d", captured.console, ops=["difficulty", "chunk", "compress"],
            difficulty={"method": "level", "tiers": 2, "pass_thresholds": [0.5]},
            chunk={"embedder": "lexical"}, compress={"mode": "prune", "prune": ["none", "ends"]})
    rep = op_row(m, "chunk")["report"]
    assert rep["vs_oracle_annotations"]["traces"] == 24
    assert rep["vs_oracle_annotations"]["precision"] >= 0.9 and rep["vs_oracle_annotations"]["recall"] >= 0.9
    chunked = read_jsonl(next((tmp_path / "d" / "views").glob("01-chunk-*")) / "kept.jsonl", Example)
    for e in chunked:
        assert "".join(c["text"] for c in e.meta["chunks"]) == e.reasoning
    out = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    for e in out:
        src = next(c for c in chunked if c.id == e.id)
        chunks = src.meta["chunks"]
        if e.meta["difficulty"] == 1:  # easy: only the reasoning chunks remain
            keep = [c for c in chunks if c["reasoning"]]
        else:  # hard: also the first and last chunks (restatement, conclusion)
            keep = [c for i, c in enumerate(chunks) if c["reasoning"] or i in (0, len(chunks) - 1)]
            assert not chunks[0]["reasoning"] and not chunks[-1]["reasoning"]
        assert e.reasoning == "".join(c["text"] for c in keep).strip()
        assert len(keep) < len(chunks)
        assert e.answer == e.gold
    assert op_row(m, "compress")["report"]["words_after"] < op_row(m, "compress")["report"]["words_before"]
