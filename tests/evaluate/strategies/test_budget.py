"""The ``budget`` strategy: budget forcing cuts the thinking and forces an answer."""

from __future__ import annotations

import pytest

from helpers.evaluate import row, run_eval


@pytest.mark.slow
def test_budget_forcing_cuts_the_thinking_and_forces_an_answer(noisy_model, tmp_path, captured):
    # every reply starts inside <think>, so each one that does not close it in 4 tokens is forced
    model = {"name": "noisy", "path": str(noisy_model), "reply_prefix": "<think>\n"}
    rows, samples = run_eval(tmp_path / "e", captured.console, models=[model],
                             strategies=["greedy", {"name": "budget", "thinking_budget": 4, "answer_tokens": 6}])
    greedy = {s["problem_id"]: s for s in samples if s["strategy"] == "greedy"}
    forced = [s for s in samples if s["strategy"] == "budget"]
    r = row(rows, strategy="budget")
    n_forced = sum("</think>" in s["completion"] and s["tokens"] > 4 for s in forced)
    assert r["forced_rate"] == pytest.approx(n_forced / len(forced)) and n_forced > 0
    for s in forced:
        assert s["tokens"] <= 4 + 6
        g = greedy[s["problem_id"]]
        if s["tokens"] > 4:  # forced: the first 4 thinking tokens are greedy's, then </think> was inserted
            head = s["completion"].split("\n</think>\n")[0]
            assert g["completion"].startswith(head) and len(head) > len("<think>\n")
    assert row(rows, strategy="budget")["mean_tokens"] < row(rows, strategy="greedy")["mean_tokens"]
