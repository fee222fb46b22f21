"""The ``difficulty`` op: tiers from levels, from the oracle judge, from the pass rate over the traces, and
from sampling a real local model (the session's tiny noisy model behind the ``hf`` backend)."""

from __future__ import annotations

import json

from helpers.curate import cur, gen, op_row
from thinkling.artifacts import read_jsonl, stable_hash
from thinkling.engines import SamplingParams
from thinkling.records import Example, Problem, Trace


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
