"""The report's pure analyses: the Pareto front, regime gaps with their CIs, logic groups pooled per model
and per training regime, and which example traces a page embeds."""

from __future__ import annotations

import pytest

from helpers.report import fake_rows, fake_samples, make_row
from thinkling.metrics import wilson_interval
from thinkling.report import pareto_front, pooled_groups, regime_gaps, sample_verdict, select_samples


def _pt(model, acc, tok, strategy="greedy"):
    return {"model": model, "strategy": strategy, "accuracy": acc, "mean_tokens": tok}


def test_pareto_front_keeps_exactly_the_undominated_points():
    pts = [_pt("a", 0.9, 500), _pt("b", 0.8, 100), _pt("c", 0.7, 200),  # c: b is better and cheaper
           _pt("d", 0.9, 600),  # d: a has the same accuracy with fewer tokens
           _pt("e", 0.5, 50), _pt("f", 0.8, 100),  # f ties b exactly: both stay
           _pt("g", 0.95, 5000)]
    front = pareto_front(pts)
    assert [p["model"] for p in front] == ["e", "b", "f", "a", "g"]
    assert pareto_front([]) == []
    assert pareto_front([_pt("only", 0.0, 10)])[0]["model"] == "only"


def test_regime_gaps_are_differences_of_accuracy_with_a_ci_around_them():
    rows = [r for r in fake_rows() if r.get("regime")]
    rows.append(make_row("half", "evidence_qa", "all", "greedy", 10, 40, 50.0, regime="concepts"))  # others missing
    rows.append(make_row("concise", "evidence_qa", 1, "greedy", 1, 40, 50.0, regime="full"))  # a level row: ignored
    gaps = {g["model"]: g for g in regime_gaps(rows)}
    assert set(gaps) == {"teacher", "concise", "half"}
    t = gaps["teacher"]
    assert t["acc"] == {"instruction": 36 / 80, "concepts": 64 / 80, "related": 56 / 80, "full": 48 / 80}
    assert t["gaps"]["concepts - instruction"] == pytest.approx(0.35)
    assert t["gaps"]["concepts - related"] == pytest.approx(0.1)
    assert t["gaps"]["related - full"] == pytest.approx(0.1)
    for k, d in t["gaps"].items():
        lo, hi = t["gap_ci"][k]
        assert lo < d < hi and hi - lo < 0.4
    c = gaps["concise"]
    assert c["gaps"]["concepts - instruction"] == pytest.approx(53 / 80 - 24 / 80)
    assert c["training"] == "multi-task" and c["n"]["full"] == 80
    assert gaps["half"]["gaps"] == {"concepts - instruction": None, "concepts - related": None, "related - full": None}
    assert regime_gaps([r for r in fake_rows() if not r.get("regime")]) == []


def test_pooled_groups_sum_correct_and_n_over_the_tasks_of_a_group():
    rows = fake_rows()
    rows.append(make_row("long", "proofwriter", 2, "greedy", 1, 10, 5.0, group="deductive"))  # level row: ignored
    pooled = {(p["group"], p["model"]): p for p in pooled_groups(rows)}
    assert {g for g, _ in pooled} == {"deductive", "abductive", "inductive"}
    ded = [r for r in rows if r.get("group") == "deductive" and r["model"] == "long" and r["level"] == "all"]
    k, n = sum(r["correct"] for r in ded), sum(r["n"] for r in ded)
    p = pooled[("deductive", "long")]
    assert (p["correct"], p["n"], p["tasks"]) == (k, n, ["prontoqa", "proofwriter"])
    assert p["accuracy"] == k / n and (p["ci_low"], p["ci_high"]) == wilson_interval(k, n)
    assert p["training"] == "single-task" and pooled[("deductive", "concise")]["training"] == "multi-task"
    # old rows without `correct`: recovered from accuracy * n
    old = [{"model": "m", "task": t, "level": "all", "group": "deductive", "n": 20, "accuracy": 0.25} for t in "ab"]
    (q,) = pooled_groups(old)
    assert (q["correct"], q["n"], q["strategy"]) == (10, 40, "greedy")


def test_training_regimes_pool_the_single_task_students_into_one_figure_per_group():
    rows = [make_row("single-a", "rules", "all", "greedy", 6, 10, 5.0, group="deductive", training="single-task"),
            make_row("single-b", "abduction", "all", "greedy", 2, 10, 5.0, group="abductive", training="single-task"),
            make_row("multi", "rules", "all", "greedy", 7, 10, 5.0, group="deductive", training="multi-task"),
            make_row("multi", "abduction", "all", "greedy", 3, 10, 5.0, group="abductive", training="multi-task"),
            make_row("untagged", "rules", "all", "greedy", 9, 10, 5.0, group="deductive")]
    got = {(p["group"], p["model"]): (p["correct"], p["n"]) for p in pooled_groups(rows, by="training")}
    assert got == {("deductive", "single-task"): (6, 10), ("abductive", "single-task"): (2, 10),
                   ("deductive", "multi-task"): (7, 10), ("abductive", "multi-task"): (3, 10)}


def test_sample_verdicts_and_the_cap_keeps_every_outcome_represented():
    assert sample_verdict({"correct": True, "truncated": True, "predicted": "1"}) == "correct"
    assert sample_verdict({"correct": False, "truncated": True, "predicted": None}) == "truncated"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": None}) == "no answer"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": " "}) == "no answer"
    assert sample_verdict({"correct": False, "truncated": False, "predicted": "7"}) == "wrong"
    samples = fake_samples()
    picked = {key: (kept, left) for key, kept, left in select_samples(samples, 8)}
    kept, left = picked[("concise", "arithmetic", "greedy")]
    assert len(kept) == 8 and left == 62
    assert {sample_verdict(s) for s in kept} == {"correct", "wrong", "no answer", "truncated"}
    ids = [int(s["problem_id"].split("/")[1]) for s in kept]
    assert ids == sorted(ids)  # file order kept
    assert picked[("long", "arithmetic", "budget")][1] == 0
