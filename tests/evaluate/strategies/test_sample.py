"""The ``sample`` strategy: pass@k is the expectation over k-subsets, the majority vote (ties, no answer,
equivalent spellings), and the row figures from its samples."""

from __future__ import annotations

import itertools

import pytest

from helpers.evaluate import row, run_eval
from thinkling.evaluate.strategies import majority, pass_at_k


def test_pass_at_k_is_the_expectation_over_k_subsets():
    for n in range(1, 7):
        for c in range(n + 1):
            for k in range(1, n + 1):
                pool = [True] * c + [False] * (n - c)
                subsets = list(itertools.combinations(range(n), k))
                want = sum(any(pool[i] for i in s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(want)
    with pytest.raises(ValueError, match="at least 5"):
        pass_at_k(4, 1, 5)


def test_majority_vote_ties_none_and_equivalent_spellings():
    from thinkling.tasks import get_task

    assert majority(["3", "4", "4", "3"]) == "3"          # a tie goes to the answer seen first
    assert majority([None, None, "7"]) == "7"              # no answer never votes
    assert majority([None, None]) is None
    math = get_task("math500")
    # 1/2 and 0.5 are one answer to the math verifier: together they outvote 3
    assert majority(["3", "\\frac{1}{2}", "0.5", "3", "0.5"], math.verify) == "\\frac{1}{2}"
    assert majority(["3", "\\frac{1}{2}", "0.5", "3", "0.5"]) == "3"


@pytest.mark.slow
def test_sample_strategy_reports_pass_at_k_and_majority_from_its_samples(noisy_model, tmp_path, captured):
    from thinkling.tasks import get_task

    strat = {"name": "sample", "n": 4, "temperature": 1.0, "top_p": 1.0, "k": [1, 2, 4]}
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[f"noisy={noisy_model}"], strategies=[strat])
    again, samples2 = run_eval(tmp_path / "e2", captured.console, models=[f"noisy={noisy_model}"], strategies=[strat])
    assert [s["completion"] for s in samples] == [s["completion"] for s in samples2]  # seeded
    task = get_task("rules")
    assert len(samples) == 8 * 4 and {s["sample"] for s in samples} == {0, 1, 2, 3}
    by: dict[str, list[dict]] = {}
    for s in samples:
        by.setdefault(s["problem_id"], []).append(s)
    assert len({s["completion"] for s in samples}) > 8      # sampling, not four copies of greedy
    r = row(rows, strategy="sample")
    # pass@1 is the mean per-sample accuracy; pass@4 with n=4 is "any sample right"
    assert r["pass_at"]["1"] == pytest.approx(sum(s["correct"] for s in samples) / len(samples))
    assert r["pass_at"]["4"] == pytest.approx(sum(any(s["correct"] for s in v) for v in by.values()) / len(by))
    assert r["pass_at"]["1"] <= r["pass_at"]["2"] <= r["pass_at"]["4"]
    # the row's accuracy is the majority vote over all n samples (= maj@n)
    votes = [majority([s["predicted"] for s in sorted(v, key=lambda s: s["sample"])], task.verify) for v in by.values()]
    golds = [v[0]["gold"] for v in by.values()]
    assert r["accuracy"] == pytest.approx(sum(task.verify(p, g) for p, g in zip(votes, golds)) / len(by))
    assert r["maj_at"]["4"] == pytest.approx(r["accuracy"])
    # cost counts every sample; no final answer is counted and never credited
    assert r["mean_tokens"] == pytest.approx(sum(s["tokens"] for s in samples) / len(by))
    assert r["no_answer_rate"] == pytest.approx(sum(p is None for p in votes) / len(by))
    assert r["protocol"]["strategy_options"]["n"] == 4 and r["protocol"]["seed"] == 0
