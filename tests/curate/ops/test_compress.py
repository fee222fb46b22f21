"""The ``compress`` op (DAP): the oracle rewriter fits budgets by difficulty, a rewriter that breaks the
answer is rejected and the original kept, and prune needs the chunk op first."""

from __future__ import annotations

import hashlib
import re

import pytest

from helpers.curate import cur, op_row, words
from thinkling.artifacts import read_jsonl
from thinkling.records import Example, Trace


def test_compress_with_the_oracle_rewriter_fits_budgets_by_difficulty(long_traces, tmp_path, captured):
    raw = hashlib.sha256((long_traces / "traces.jsonl").read_bytes()).hexdigest()
    m = cur(long_traces, tmp_path / "d", captured.console, ops=["verify", "difficulty", "compress"],
            difficulty={"method": "judge"})
    row = op_row(m, "compress")
    assert row["kept"] == 24 and row["dropped"] == {}
    rep = row["report"]
    assert rep["rewritten"] == 24 and "rewrite_rejected" not in rep
    assert rep["words_after"] < 0.6 * rep["words_before"]
    out = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    ratio: dict[int, list[float]] = {}
    for e in out:
        assert e.meta["original_reasoning"] != e.reasoning
        assert e.answer == e.gold  # still reaches the verified answer
        for line in e.meta["original_reasoning"].splitlines():  # every step survives
            if re.fullmatch(r"[a-z]=[a-z][-+*]\d=\d+[-+*]\d=\d\.", line):
                assert line in e.reasoning.splitlines()
        ratio.setdefault(e.meta["difficulty"], []).append(words(e.reasoning) / words(e.meta["original_reasoning"]))
    mean = {t: sum(v) / len(v) for t, v in ratio.items()}
    assert mean[1] < mean[3]  # easy problems are compressed harder than hard ones
    assert hashlib.sha256((long_traces / "traces.jsonl").read_bytes()).hexdigest() == raw


def test_a_rewriter_that_breaks_the_answer_is_rejected_and_the_original_kept(long_traces, noisy_model, tmp_path,
                                                                             captured):
    m = cur(long_traces, tmp_path / "d", captured.console, ops=["compress"],
            compress={"teacher": {"backend": "hf", "model": str(noisy_model), "batch_size": 8},
                      "sampling": {"max_tokens": 16}})
    rep = op_row(m, "compress")["report"]
    assert rep.get("rewrite_failed", 0) + rep.get("rewrite_rejected", 0) == 24 - rep.get("rewritten", 0)
    assert rep.get("rewritten", 0) <= 3  # random weights rarely produce a closed, correct rewrite
    out = {e.id: e for e in read_jsonl(tmp_path / "d" / "train.jsonl", Example)}
    originals = {t.key: t for t in read_jsonl(long_traces / "traces.jsonl", Trace)}
    unchanged = [e for e in out.values() if e.reasoning == originals[e.source_key].reasoning]
    assert len(unchanged) == 24 - rep.get("rewritten", 0)


def test_prune_without_chunks_is_a_clear_error(long_traces, tmp_path, captured):
    with pytest.raises(ValueError, match="run the chunk op before compress"):
        cur(long_traces, tmp_path / "d", captured.console, ops=["compress"], compress={"mode": "prune"})
