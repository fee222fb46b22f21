"""The ``verify`` op: the shortest k correct traces per problem, missing answers counted, unparseable gold
never credited."""

from __future__ import annotations

import json

from helpers.curate import cur, gen, op_row, words
from thinkling.artifacts import read_jsonl
from thinkling.records import Example, Problem, Trace


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
