"""GSM8K on the real files: every train gold parses, levels and filters, the verifier (checked against
math-verify on the real golds, in several formats), every reference trace and raw solution credited."""

from __future__ import annotations

import json

import pytest

from helpers.tasks import reference_examples, run_verify_op
from thinkling.tasks import get_task, mathverify
from thinkling.tasks.extract import last_boxed
from thinkling.tasks.gsm8k import gold_from_solution


@pytest.fixture(scope="module")
def gsm(gsm8k_dir):
    return get_task("gsm8k", data_dir=str(gsm8k_dir))


def test_gsm8k_every_train_gold_parses_to_an_integer(gsm, gsm8k_dir):
    probs = gsm.problems("train")
    n_lines = sum(1 for line in (gsm8k_dir / "train.jsonl").read_text().splitlines() if line.strip())
    assert len(probs) == n_lines == 7473
    for p in probs:
        assert p.answer is not None, p.id
        assert str(int(p.answer)) == p.answer
    # the 93 gold answers written with thousands separators are parsed, not dropped
    rows = [json.loads(line) for line in (gsm8k_dir / "train.jsonl").read_text().splitlines()]
    with_commas = [r for r in rows if "," in r["answer"].rsplit("####", 1)[1]]
    assert with_commas
    for r in with_commas:
        assert gold_from_solution(r["answer"]) == r["answer"].rsplit("####", 1)[1].strip().replace(",", "")


def test_gsm8k_levels_and_filters(gsm):
    probs = gsm.problems("train", n=300)
    assert len(probs) == 300
    assert {p.level for p in probs} == {1, 2, 3}
    only3 = gsm.problems("train", n=20, levels=[3])
    assert len(only3) == 20 and all(p.level == 3 for p in only3)
    assert "<<" not in probs[0].meta["solution"]  # calculator annotations stripped


@pytest.mark.parametrize("completion, gold, credited", [
    ("so she has \\boxed{18} apples", "18", True),
    ("The answer is 1,200", "1200", True),
    ("The answer is 1,200.", "1200", True),
    ("\\boxed{1,200}", "1200", True),
    ("\\boxed{\\frac{36}{2}}", "18", True),
    ("The answer is $18.00", "18", True),
    ("#### 72", "72", True),
    ("<think>\nshe sells 48/2 = 24\n</think>\nThe answer is 72", "72", True),
    ("The answer is 19", "18", False),
    ("I do not know", "18", False),
    ("\\boxed{}", "18", False),
    ("\\boxed{18}", None, False),               # unparseable gold is never credited
    ("<think>\n... \\boxed{18}", "18", False),  # truncated: opened, never closed
    ("<think>\nThe answer is 1,200", "1200", False),
])
def test_gsm8k_verifier(gsm, completion, gold, credited):
    assert gsm.score(completion, gold)[1] is credited


# Endings real instruct models write (SmolLM2-135M-Instruct ends 9 of 40 GSM8K replies "#### N" then a
# restatement); lm-evaluation-harness reads "#### N" (strict) or the last number (flexible), math-verify a
# box or "final answer is $N$" first.
@pytest.mark.parametrize("completion, want", [
    ("Janet sells 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.\n#### 18\nThe answer is: 18", "18"),
    ("She makes 9 * 2 = 18 dollars.\n#### 18\n\nSo Janet makes $18 every day at the market.", "18"),
    ("#### 18\n\n**Explanation:** 16 eggs, 3 for breakfast and 4 for muffins leave 9.", "18"),
    ("The answer is: 18", "18"),
    ("The answer is: $18.", "18"),
    ("Final Answer: The final answer is $18$. I hope it is correct.", "18"),
    ("The final answer is \\$18.", "18"),
    ("**Answer:** 1,200 dollars", "1200"),
    ("**Final Answer**: 18", "18"),
    ("Answer = 18", "18"),
    ("The final answer is: $\\boxed{18}$", "18"),
    ("She earns 9 * 2 = **18** dollars a day.", "18"),
    ("So the total is:\n\n**18**", "18"),
    ("#### $18.00", "18.00"),
    ("#### 1. Eggs laid\n16 eggs.\n#### 2. Eggs sold\n16 - 7 = 9, so 9 * 2 = 18", "18"),  # headings, no answer
    ("**Answer:**\n1. 16 - 7 = 9 eggs\n2. 9 * 2 = 18 dollars", "18"),   # a numbered list is not the answer
    ("the final answer is 15 gallons * 8 = 120 pints\n#### 120", "120"),  # the marker last wins
    ("#### 18\nThe answer is: 19", "19"),
])
def test_gsm8k_stated_endings(gsm, completion, want):
    assert gsm.extract_answer(completion) == want
    assert gsm.score(f"<think>\nwork\n</think>\n{completion}", want)[1]


def test_gsm8k_stated_endings_on_every_test_gold(gsm):
    """Every GSM8K test gold, stated the ways models end a reply, is credited; one more is not."""
    for p in gsm.problems("test"):
        g = int(p.answer)
        for final in (f"#### {g}\nThe answer is: {g}", f"#### {g:,}\n\nSo the total is {g:,} dollars.",
                      f"The final answer is ${g}$. I hope it is correct.", f"**Answer:** {g:,}",
                      f"so it is **{g}**", f"#### {g}\n\n**Explanation:** 3 + 4 = 7 and 2 * 5 = 10"):
            assert gsm.score(final, p.answer)[1], (p.id, final)
        assert not gsm.score(f"#### {g + 1}\nThe answer is: {g + 1}", p.answer)[1]


def test_gsm8k_verify_none_inputs(gsm):
    assert gsm.verify(None, "18") is False
    assert gsm.verify("18", None) is False
    assert gsm.verify(None, None) is False


def test_gsm8k_verifier_matches_math_verify_on_real_gold(gsm):
    """Reference equivalence: our extraction + math-verify credits every real gold in several formats."""
    probs = gsm.problems("train", n=400)
    for p in probs:
        g = int(p.answer)
        for completion in (f"The answer is {g:,}", f"so \\boxed{{{g}}}", f"<think>\nwork\n</think>\n#### {g}"):
            assert gsm.score(completion, p.answer)[1], (completion, p.answer)
        assert not gsm.score(f"The answer is {g + 1}", p.answer)[1]


def test_gsm8k_missing_file_is_a_clear_error(tmp_path):
    from thinkling.artifacts import DataError

    with pytest.raises(DataError) as e:
        get_task("gsm8k", data_dir=str(tmp_path)).problems("train")
    assert str(tmp_path / "train.jsonl") in str(e.value)


def test_gsm8k_gold_helpers():
    assert gold_from_solution("a\n#### 1,234") == "1234"
    assert gold_from_solution("no marker") is None
    assert gold_from_solution("#### about five") is None
    assert last_boxed("x \\boxed{\\frac{1}{2}} and \\boxed{3}") == "3"
    assert last_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{unclosed") is None


# ----------------------------------------------------------------------------- the verify op and math-verify on the real train set


def test_verify_op_credits_every_gsm8k_train_reference_trace(gsm8k_dir, tmp_path):
    """All 7,473: the reference teacher's traces pass the real verify op against their own gold."""
    task = get_task("gsm8k", data_dir=str(gsm8k_dir))
    probs = task.problems("train")
    assert len(probs) == 7473
    kept, dropped = run_verify_op(task, reference_examples(task, probs), tmp_path)
    assert len(kept) == 7473 and dropped == {}, {k: [e.id for e in v[:5]] for k, v in dropped.items()}


def test_gsm8k_train_math_verify_itself_credits_every_reference_answer(gsm8k_dir):
    """The same 7,473 through math-verify alone (no canonical-string shortcut): ~0.7 ms each."""
    task = get_task("gsm8k", data_dir=str(gsm8k_dir))
    fails = [p.id for p in task.problems("train")
             if not mathverify.math_verify_equal(task.extract_answer(task.reference_trace(p).answer), p.answer, 5)]
    assert fails == []


def test_gsm8k_raw_solutions_score_as_completions(gsm8k_dir):
    """The raw worked answer ("... #### 72") as a student completion is credited, all 7,473; one of them
    says "the final answer is 15 gallons * 8 pints / gallon = 120 pints" before "#### 120"."""
    task = get_task("gsm8k", data_dir=str(gsm8k_dir))
    rows = [json.loads(line) for line in (gsm8k_dir / "train.jsonl").read_text().splitlines()]
    probs = task.problems("train")
    fails = [(p.id, p.answer, task.score(r["answer"], p.answer)[0])
             for p, r in zip(probs, rows) if not task.score(r["answer"], p.answer)[1]]
    assert fails == []
