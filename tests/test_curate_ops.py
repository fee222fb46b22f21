"""Curation ops beyond verify/dedup/select: rejection sampling, difficulty grading, DAP compression,
knowledge, per-difficulty mixing, and the per-op views (cached by config, resumable teacher calls).

Teachers are real: the oracle (a program that plays judge, rewriter and knowledge writer for the
synthetic tasks) and the session's tiny noisy transformers model behind the ``hf`` backend.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from thinkling.artifacts import read_jsonl, stable_hash
from thinkling.config import build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.engines import SamplingParams
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import Example, Problem, Trace


def gen(out: Path, n=6, levels=(1, 2, 3, 4), style="long", samples=1, console=None) -> Path:
    cfg = build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                        "teacher": {"style": style}, "samples": samples})
    generate(cfg, console=console)
    return out


def cur(traces: Path, out: Path, console, **kw) -> dict:
    return curate(build_config(CurateConfig, {"traces": str(traces), "out": str(out), **kw}), console=console)


def op_row(m: dict, name: str) -> dict:
    return next(o for o in m["counts"]["ops"] if o["op"] == name)


def words(s: str) -> int:
    return len(s.split())


@pytest.fixture(scope="module")
def long_traces(tmp_path_factory) -> Path:
    import io

    from rich.console import Console

    return gen(tmp_path_factory.mktemp("long") / "traces", n=6, console=Console(file=io.StringIO()))


# ----------------------------------------------------------------------------- verify


def test_verify_keeps_the_shortest_k_correct_traces_per_problem(tmp_path, captured):
    traces = gen(tmp_path / "t", n=4, levels=(3,), samples=3, console=captured.console)
    m = cur(traces, tmp_path / "d", captured.console, ops=["verify"], verify={"keep_best": 1})
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    kept = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    assert op_row(m, "verify")["dropped"] == {"not_best": 8}
    assert len(kept) == 4 and len({e.problem_id for e in kept}) == 4
    for e in kept:  # the oracle's long samples differ in how many self-checks they make
        shortest = min(words(t.reasoning) for t in rows if t.problem_id == e.problem_id)
        assert words(e.reasoning) == shortest


def test_verify_counts_missing_answers_and_never_credits_unparseable_gold(tmp_path, captured):
    traces = gen(tmp_path / "t", n=3, levels=(1,), style="concise", console=captured.console)
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    rows[0] = rows[0].model_copy(update={"answer": ""})                       # a trace with no final answer
    (traces / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in rows))
    problems = read_jsonl(traces / "problems.jsonl", Problem)
    problems[1] = problems[1].model_copy(update={"answer": None})              # gold that could not be parsed
    (traces / "problems.jsonl").write_text("".join(json.dumps(p.model_dump(mode="json")) + "\n" for p in problems))
    m = cur(traces, tmp_path / "d", captured.console, ops=["verify"])
    assert op_row(m, "verify")["dropped"] == {"no_answer": 1, "unparseable_gold": 1}
    kept = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    assert [e.problem_id for e in kept] == [problems[2].id]


# ----------------------------------------------------------------------------- difficulty


def test_difficulty_from_levels_and_from_the_oracle_judge_is_recorded_on_problems(long_traces, tmp_path, captured):
    m = cur(long_traces, tmp_path / "lv", captured.console, ops=["difficulty"],
            difficulty={"method": "level", "tiers": 2, "pass_thresholds": [0.5]})
    probs = read_jsonl(tmp_path / "lv" / "problems.jsonl", Problem)
    assert all(p.meta["difficulty"] == (1 if p.level <= 2 else 2) for p in probs)
    assert op_row(m, "difficulty")["report"]["problems_per_tier"] == {"1": 12, "2": 12}

    m = cur(long_traces, tmp_path / "judge", captured.console, ops=["difficulty"],
            difficulty={"method": "judge", "tiers": 4, "pass_thresholds": [0.9, 0.6, 0.3]})
    probs = read_jsonl(tmp_path / "judge" / "problems.jsonl", Problem)
    assert all(p.meta["difficulty"] == p.level and p.meta["difficulty_method"] == "judge" for p in probs)
    ex = read_jsonl(tmp_path / "judge" / "train.jsonl", Example)
    assert all(e.meta["difficulty"] == e.level for e in ex)  # copied to examples for later ops
    calls = list((tmp_path / "judge" / "views").glob("00-difficulty-*/calls.jsonl"))
    assert len(calls) == 1 and len(calls[0].read_text().splitlines()) == 24  # one judgement per problem


def test_difficulty_from_pass_rate_over_the_traces(tmp_path, captured):
    traces = gen(tmp_path / "t", n=3, levels=(2,), style="concise", samples=4, console=captured.console)
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    pids = sorted({r.problem_id for r in rows})
    # problem 0: 1 of 4 wrong (pass 0.75 -> tier 1); problem 1: 3 of 4 wrong (0.25 -> tier 3); problem 2: all right
    wrong = {(pids[0], 0), (pids[1], 0), (pids[1], 1), (pids[1], 2)}
    rows = [r.model_copy(update={"answer": "11"}) if (r.problem_id, r.sample_index) in wrong else r for r in rows]
    (traces / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in rows))
    cur(traces, tmp_path / "d", captured.console, ops=["verify", "difficulty"], difficulty={"method": "traces"})
    probs = {p.id: p for p in read_jsonl(tmp_path / "d" / "problems.jsonl", Problem)}
    assert [probs[p].meta["pass_rate"] for p in pids] == [0.75, 0.25, 1.0]
    assert [probs[p].meta["difficulty"] for p in pids] == [1, 3, 1]


def test_difficulty_by_sampling_a_real_local_model(noisy_model, tmp_path, captured):
    from thinkling.tasks import get_task

    traces = gen(tmp_path / "t", n=3, levels=(1, 2), style="concise", console=captured.console)
    spec = {"backend": "hf", "model": str(noisy_model), "batch_size": 4}
    cur(traces, tmp_path / "d", captured.console, ops=["difficulty"],
        difficulty={"method": "sample", "k": 3, "teacher": spec, "sampling": {"temperature": 1.0, "max_tokens": 12}})
    calls = [json.loads(x) for x in next((tmp_path / "d" / "views").glob("00-*/calls.jsonl")).read_text().splitlines()]
    assert len(calls) == 6 * 3 and all(c["completion_tokens"] > 0 for c in calls)
    by_key = {c["key"]: c for c in calls}
    probs = read_jsonl(tmp_path / "d" / "problems.jsonl", Problem)
    task = get_task("arithmetic")
    sampling = SamplingParams(temperature=1.0, max_tokens=12).model_dump()
    for p in probs:  # the recorded pass rate is the verifier applied to the logged replies
        replies = [by_key[stable_hash({"teacher": f"hf:{noisy_model}", "prompt": task.messages(p), "index": i,
                                       "sampling": sampling})] for i in range(3)]
        right = [c["finish_reason"] == "stop" and task.verify(task.extract_answer(c["answer"]), p.answer)
                 for c in replies]
        assert p.meta["pass_rate"] == round(sum(right) / 3, 4)
        assert p.meta["difficulty"] == (1 if p.meta["pass_rate"] >= 0.75 else 2 if p.meta["pass_rate"] >= 0.35 else 3)
    assert sum(p.meta["pass_rate"] for p in probs) <= 6 * 0.5  # a random-weight model does not solve these


# ----------------------------------------------------------------------------- compress (DAP)


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


def test_prune_without_chunks_is_a_clear_error(long_traces, tmp_path, captured):
    with pytest.raises(ValueError, match="run the chunk op before compress"):
        cur(long_traces, tmp_path / "d", captured.console, ops=["compress"], compress={"mode": "prune"})


# ----------------------------------------------------------------------------- knowledge, select


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


def test_select_mixes_per_difficulty_tier(long_traces, tmp_path, captured):
    m = cur(long_traces, tmp_path / "d", captured.console, ops=["difficulty", "select"],
            difficulty={"method": "level", "tiers": 2, "pass_thresholds": [0.5]},
            select={"per_level": 5, "by": "difficulty"})
    out = read_jsonl(tmp_path / "d" / "train.jsonl", Example)
    assert len(out) == 10 and sum(e.meta["difficulty"] == 1 for e in out) == 5
    assert op_row(m, "select")["dropped"] == {"level_mix": 14}
    with pytest.raises(ValueError, match="difficulty op before select"):
        cur(long_traces, tmp_path / "e", captured.console, ops=["select"], select={"per_level": 5, "by": "difficulty"})


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


def test_cli_takes_ops_as_a_comma_list(long_traces, tmp_path):
    from helpers import run_cli

    r = run_cli("curate", f"traces={long_traces}", f"out={tmp_path / 'd'}", "--ops", "verify,difficulty,select",
                "difficulty.method=level")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert [o["op"] for o in m["counts"]["ops"]] == ["verify", "difficulty", "select"]
    bad = run_cli("curate", f"traces={long_traces}", f"out={tmp_path / 'e'}", "--ops", "verify,sparkle")
    assert bad.returncode == 2 and "sparkle" in bad.stderr


# ----------------------------------------------------------------------------- decontaminate, near-dedup


def test_decontaminate_flags_planted_gsm8k_test_questions_and_reports_their_ids(gsm8k_dir, tmp_path, captured):
    cfg = build_config(GenerateConfig, {"out": str(tmp_path / "t"), "task": {"name": "gsm8k", "n": 40,
                                        "options": {"data_dir": str(gsm8k_dir)}}, "teacher": {"backend": "reference"}})
    generate(cfg, console=captured.console)
    test_qs = [json.loads(x)["question"] for x in (gsm8k_dir / "test.jsonl").read_text().splitlines()[:5]]
    rows = read_jsonl(tmp_path / "t" / "traces.jsonl", Trace)
    planted = {}
    for j, q in enumerate(test_qs):  # five training traces whose question is a test question, one with a new number
        q = q.replace(q.split()[-1], "quickly?") if j == 4 else q
        rows[j] = rows[j].model_copy(update={"question": q})
        planted[rows[j].key] = f"gsm8k/test/{j}"
    (tmp_path / "t" / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in rows))
    m = cur(tmp_path / "t", tmp_path / "d", captured.console, ops=["verify", "decontaminate"],
            task_options={"data_dir": str(gsm8k_dir)}, decontaminate={"data_dir": str(gsm8k_dir.parent)})
    row = op_row(m, "decontaminate")
    # the five planted ones, and GSM8K train/20: a genuine near-duplicate of test/632 in the dataset
    # (same story with other names and numbers; one of 4 in all of GSM8K train, see docs/benchmarks.md)
    assert row["dropped"] == {"contaminated": 6} and row["kept"] == 34
    removed = {r["id"]: r["matches"][0] for r in row["report"]["removed"]}
    assert {k: v["id"] for k, v in removed.items() if k in planted} == planted
    extra = [r for r in row["report"]["removed"] if r["id"] not in planted]
    assert [(r["problem_id"], r["matches"][0]["id"]) for r in extra] == [("gsm8k/train/20", "gsm8k/test/632")]
    assert all(v["set"] == "gsm8k" for v in removed.values())
    assert row["report"]["checked_against"]["gsm8k"] == 1319 and len(row["report"]["checked_against"]) >= 10


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


def test_curate_reads_the_latest_record_of_each_key(tmp_path, captured):
    """A re-run of generate with a larger max_tokens appends a new version of a truncated trace."""
    traces = gen(tmp_path / "t", n=3, levels=(2,), style="concise", console=captured.console)
    rows = read_jsonl(traces / "traces.jsonl", Trace)
    old = rows[0].model_copy(update={"finish_reason": "length", "answer": "", "meta": {"max_tokens": 4}})
    lines = [old] + rows  # the truncated version first, the complete one appended later with the same key
    (traces / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in lines))
    m = cur(traces, tmp_path / "d", captured.console, ops=["verify"])
    assert m["counts"]["input"] == 3 and op_row(m, "verify")["dropped"] == {}
