"""The curate stage: per-op, per-reason drop counts, wrong answers routed to negatives, raw traces never
rewritten, a rerun skipped; the per-op views (cached by config, an interrupted op not asking its teacher
again), the latest record of each key, and config errors (no traces, an unknown op)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import sha
from helpers.curate import cur, gen, op_row
from helpers.generate import gen_cfg
from thinkling.artifacts import read_jsonl
from thinkling.config import ConfigError, build_config, load_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.generate.stage import generate
from thinkling.records import Example, Problem, Trace


def _plant(traces: Path, problems: list[Problem]) -> dict[str, list[str]]:
    """Append traces that curation must drop, each for a known reason; returns their keys by reason."""
    rows = read_jsonl(traces, Trace)
    base = {t.problem_id: t for t in rows}
    planted: dict[str, list[str]] = {"wrong_answer": [], "truncated": [], "unparseable": [], "duplicate": []}
    extra = []

    def clone(p: Problem, key: str, idx: int, **kw) -> Trace:
        t = base[p.id].model_copy(update={"key": key, "sample_index": idx, **kw})
        extra.append(t)
        return t

    for j, p in enumerate(problems[:3]):
        clone(p, f"planted-wrong-{j}", 7, answer=str((int(p.answer) + 1) % 10))
        planted["wrong_answer"].append(f"planted-wrong-{j}")
    clone(problems[3], "planted-truncated", 7, finish_reason="length")
    planted["truncated"].append("planted-truncated")
    clone(problems[4], "planted-unparseable", 7, answer="I am not sure")
    planted["unparseable"].append("planted-unparseable")
    clone(problems[5], "planted-duplicate", 8)  # same question, reasoning and answer as sample 0
    planted["duplicate"].append("planted-duplicate")
    with open(traces, "a") as f:
        for t in extra:
            f.write(json.dumps(t.model_dump(mode="json")) + "\n")
    return planted


def test_curate_routes_wrong_answers_to_negatives_with_per_reason_counts(tmp_path, captured):
    traces_dir = tmp_path / "traces"
    generate(gen_cfg(traces_dir, n=10, style="concise"), console=captured.console)
    problems = read_jsonl(traces_dir / "problems.jsonl", Problem)
    planted = _plant(traces_dir / "traces.jsonl", problems)
    raw_before = sha(traces_dir / "traces.jsonl")
    out = tmp_path / "data"
    cfg = build_config(CurateConfig, {"traces": str(traces_dir), "out": str(out)})
    m = curate(cfg, console=captured.console)

    ops = {o["op"]: o for o in m["counts"]["ops"]}
    assert [o["op"] for o in m["counts"]["ops"]] == ["verify", "dedup", "select"]
    assert ops["verify"]["in"] == 26
    assert ops["verify"]["dropped"] == {"wrong_answer": 3, "truncated": 1, "unparseable": 1}
    assert ops["verify"]["kept"] == 21
    assert ops["dedup"]["dropped"] == {"duplicate": 1}
    assert ops["select"]["dropped"] == {}
    assert m["counts"]["kept"] == 20 and m["counts"]["negatives"] == 3
    assert m["counts"]["per_level"] == {"1": 10, "2": 10}

    negatives = read_jsonl(out / "negatives.jsonl", Example)
    assert sorted(e.source_key for e in negatives) == sorted(planted["wrong_answer"])
    assert all(e.correct is False for e in negatives)
    kept = read_jsonl(out / "train.jsonl", Example)
    assert len(kept) == 20 and all(e.correct is True for e in kept)
    assert not {e.source_key for e in kept} & {k for ks in planted.values() for k in ks}
    assert all(e.answer == e.gold for e in kept)
    dropped = read_jsonl(out / "dropped.jsonl")
    reasons = {(d["op"], d["reason"], d["id"]) for d in dropped}
    assert ("verify", "truncated", "planted-truncated") in reasons
    assert ("verify", "unparseable", "planted-unparseable") in reasons
    assert ("dedup", "duplicate", "planted-duplicate") in reasons
    assert len(dropped) == 6
    assert sha(traces_dir / "traces.jsonl") == raw_before  # raw traces are never rewritten

    # re-run: skipped; another filter config: re-derived with its own counts
    curate(cfg, console=captured.console)
    assert "skipping" in captured.text
    capped = build_config(CurateConfig, {"traces": str(traces_dir), "out": str(tmp_path / "short"),
                                         "select": {"max_reasoning_words": 1}, "ops": ["verify", "select"]})
    m2 = curate(capped, console=captured.console)
    select = m2["counts"]["ops"][1]
    # concise level-1 reasoning is one "word" (k=j+7=0+7=7), level 2 has two lines; without dedup the
    # planted level-1 duplicate survives: 11 level-1 traces kept, the 10 level-2 ones too long
    assert select["in"] == 21
    assert select["dropped"] == {"too_long": 10} and select["kept"] == 11


def test_curate_without_traces_is_a_clear_error(tmp_path, captured):
    from thinkling.artifacts import DataError

    with pytest.raises(DataError) as e:
        curate(build_config(CurateConfig, {"traces": str(tmp_path / "nope"), "out": str(tmp_path / "o")}),
               console=captured.console)
    assert str(tmp_path / "nope") in str(e.value)


def test_unknown_curation_op_is_rejected_at_load():
    from thinkling.curate.stage import CurateConfig

    with pytest.raises(ConfigError) as e:
        load_config(CurateConfig, overrides=["traces=t", "out=o", "ops=[verify,sparkle]"])
    assert "sparkle" in str(e.value) and "key 'ops'" in str(e.value)


# ----------------------------------------------------------------------------- views and resume


def test_changing_one_op_reuses_the_views_before_it(long_traces, tmp_path, captured_factory):
    ops = ["verify", "difficulty", "compress"]
    first = captured_factory()
    cur(long_traces, tmp_path / "d", first.console, ops=ops, difficulty={"method": "judge"})
    assert "cached view" not in first.text
    second = captured_factory()
    m = cur(long_traces, tmp_path / "d", second.console, ops=ops, difficulty={"method": "judge"},
            compress={"budget_ratio": [0.5, 0.6, 0.9]})
    assert [o["cached"] for o in m["counts"]["ops"]] == [True, True, False]
    assert len(list((tmp_path / "d" / "views").iterdir())) == 4  # verify, difficulty, two compress views
    # the recorded difficulty survives a cached view
    assert all("difficulty" in p.meta for p in read_jsonl(tmp_path / "d" / "problems.jsonl", Problem))


def test_an_interrupted_op_does_not_ask_the_teacher_again(long_traces, tmp_path, captured):
    ops = ["difficulty", "compress"]
    m1 = cur(long_traces, tmp_path / "d", captured.console, ops=ops, difficulty={"method": "judge"})
    view = next((tmp_path / "d" / "views").glob("01-compress-*"))
    calls = (view / "calls.jsonl").read_bytes()
    assert len(calls.splitlines()) == 24
    # as if killed after the teacher answered but before the view was finished
    (view / "done.json").unlink()
    (tmp_path / "d" / "manifest.json").unlink()
    m2 = cur(long_traces, tmp_path / "d", captured.console, ops=ops, difficulty={"method": "judge"})
    assert (view / "calls.jsonl").read_bytes() == calls  # nothing asked twice
    assert [o["cached"] for o in m2["counts"]["ops"]] == [True, False]
    assert op_row(m2, "compress")["report"] == op_row(m1, "compress")["report"]


def test_curate_reads_the_latest_record_of_each_key(tmp_path, captured):
    """A re-run of generate with a larger max_tokens appends a new version of a truncated trace."""
    traces = gen(tmp_path / "t", n=3, levels=(2,), style="concise", console=captured.console)
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    old = rows[0].model_copy(update={"finish_reason": "length", "answer": "", "meta": {"max_tokens": 4}})
    lines = [old] + rows  # the truncated version first, the complete one appended later with the same key
    (traces / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in lines))
    m = cur(traces, tmp_path / "d", captured.console, ops=["verify"])
    assert m["counts"]["input"] == 3 and op_row(m, "verify")["dropped"] == {}
