"""REDI on real wrong traces: the oracle teacher with ``error_rate`` writes some traces with an honest mistake,
curate's ``verify`` routes exactly those to ``negatives.jsonl``, and ``redi`` trains on them with weight -alpha
and on the rest with +1. What the trainer saw is read from the rows its data source returned, by trace key."""

from __future__ import annotations

import pytest

from helpers.curate import cur, op_row
from helpers.train import run_train
from thinkling.artifacts import read_jsonl
from thinkling.config import build_config
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import Example
from thinkling.train.methods import get_method


@pytest.mark.slow
def test_redi_trains_on_the_flawed_traces_as_negatives(tmp_path, tiny_model, tokenizer, captured, monkeypatch):
    gen = build_config(GenerateConfig, {
        "out": str(tmp_path / "traces"), "task": {"n": 8, "levels": [1, 2]}, "samples": 3,
        "teacher": {"backend": "oracle", "style": "long", "error_rate": 0.3}})
    generate(gen, console=captured.console)
    traces = read_jsonl(tmp_path / "traces" / "traces.jsonl")
    flawed = {t["key"] for t in traces if "mistake" in t["meta"]}
    right = {t["key"] for t in traces} - flawed
    assert 0.15 < len(flawed) / len(traces) < 0.45 and {t["meta"]["mistake"]["kind"] for t in traces
                                                         if t["key"] in flawed} == {"slip"}

    m = cur(tmp_path / "traces", tmp_path / "data", captured.console, ops=["verify", "dedup"])
    assert op_row(m, "verify")["dropped"] == {"wrong_answer": len(flawed)}  # every flawed trace, nothing else
    negatives = read_jsonl(tmp_path / "data" / "negatives.jsonl", Example)
    positives = read_jsonl(tmp_path / "data" / "train.jsonl", Example)
    assert {e.source_key for e in negatives} == flawed and {e.source_key for e in positives} == right
    # the mistake is ground truth of the raw trace: curated data (what a student reads) does not carry it
    assert not any("mistake" in e.meta for e in negatives + positives)

    seen: list[dict] = []
    method = get_method("redi")
    build = method.build_rows

    def spy(examples, tok, cfg):
        rows = build(examples, tok, cfg)
        seen.extend(rows)
        return rows

    monkeypatch.setattr(method, "build_rows", spy)
    out = run_train(tmp_path / "data", tmp_path / "student", captured.console, method="redi", model=str(tiny_model),
                    max_steps=2, batch_size=8)
    assert out["counts"]["steps"] == 2

    # REDI pairs: a problem's traces are used when it has both a right and a wrong one
    by_key = {t["key"]: t for t in traces}
    both = ({by_key[k]["problem_id"] for k in flawed} & {by_key[k]["problem_id"] for k in right})
    assert len(both) >= 4
    neg_seen = {r["id"] for r in seen if r["weight"] < 0}
    pos_seen = {r["id"] for r in seen if r["weight"] > 0}
    assert neg_seen == {k for k in flawed if by_key[k]["problem_id"] in both}
    assert pos_seen == {k for k in right if by_key[k]["problem_id"] in both}
    assert {r["weight"] for r in seen} == {1.0, -0.8} and len(seen) == len(neg_seen) + len(pos_seen)
    # and what it trained on is the trace as written: reasoning and answer, never the mistake's description
    for r in seen:
        text = tokenizer.decode(r["input_ids"])
        t = by_key[r["id"]]
        assert t["answer"] in text and "instead of" not in text
