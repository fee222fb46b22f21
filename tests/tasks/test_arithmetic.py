"""The arithmetic family: answers recomputed by an independent solver, splits disjoint and stable, oracle
traces that score, long traces much longer than concise, sentence annotations, answer extraction."""

from __future__ import annotations

import re
import statistics

import pytest

from helpers.tasks import STYLES
from thinkling.format import format_assistant
from thinkling.tasks import get_task

EQ_SEED = re.compile(r"^([a-z])=(\d)$")
EQ_STEP = re.compile(r"^([a-z])=([a-z])([+\-*])(\d)$")


def solve_arithmetic(question: str) -> tuple[str, int, int]:
    """Independent solver: (target variable, value mod 10, number of steps) from the question text."""
    lines = question.splitlines()
    assert lines[0] == "Compute mod 10."
    m = re.fullmatch(r"What is ([a-z])\?", lines[-1])
    assert m, lines[-1]
    target = m.group(1)
    env: dict[str, int] = {}
    seed = EQ_SEED.match(lines[1])
    assert seed, lines[1]
    env[seed.group(1)] = int(seed.group(2))
    prev = seed.group(1)
    steps = 0
    for line in lines[2:-1]:
        s = EQ_STEP.match(line)
        assert s, line
        var, src, op, d = s.group(1), s.group(2), s.group(3), int(s.group(4))
        assert src == prev and ord(var) == ord(src) + 1, f"not a chain of consecutive letters: {question!r}"
        a = env[src]
        env[var] = {"+": a + d, "-": a - d, "*": a * d}[op] % 10
        prev = var
        steps += 1
    assert target == prev
    return target, env[target], steps


@pytest.fixture(scope="module")
def arith():
    return get_task("arithmetic", max_operand=4)


@pytest.mark.parametrize("random_names", [False, True])
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_arithmetic_answers_recomputed_from_the_question(level, random_names):
    task = get_task("arithmetic", random_names=random_names, max_operand=4)
    for split in ("train", "test"):
        probs = task.problems(split, n=300, levels=[level])
        # easy levels have few distinct questions per split (level 1 with fixed names: 80 in all):
        # the draw is capped below 300, never padded
        assert len(probs) == 300 if level >= 3 else 5 <= len(probs) <= 300
        assert len({p.question for p in probs}) == len(probs)
        for p in probs:
            target, value, steps = solve_arithmetic(p.question)
            assert p.answer == str(value), p.question
            assert steps == level == p.level
            assert p.meta["target"] == target
        if not random_names:
            assert all(p.question.splitlines()[1].startswith("a=") for p in probs)


@pytest.mark.parametrize("random_names", [False, True])
def test_arithmetic_train_and_test_are_disjoint(random_names):
    task = get_task("arithmetic", random_names=random_names, max_operand=4)
    train = task.problems("train", n=300)
    test = task.problems("test", n=300)
    for probs in (train, test):
        assert len({p.question for p in probs}) == len(probs)  # distinct within a split
        assert sum(p.level >= 3 for p in probs) == 2 * 300
    assert not {p.question for p in train} & {p.question for p in test}


def test_arithmetic_ids_and_problems_are_stable(arith):
    a = arith.problems("train", n=50, levels=[2, 3])
    b = get_task("arithmetic", max_operand=4).problems("train", n=50, levels=[2, 3])
    assert [p.model_dump() for p in a] == [p.model_dump() for p in b]
    assert len({p.id for p in a}) == len(a)
    # a bigger draw extends a smaller one: the first problems (and ids) are the same
    c = arith.problems("train", n=80, levels=[2])
    assert [(p.id, p.question) for p in c[:50]] == [(p.id, p.question) for p in a if p.level == 2]
    # another seed gives other problems
    d = arith.problems("train", n=50, levels=[2], seed=1)
    assert {p.question for p in d} != {p.question for p in a if p.level == 2}


def test_arithmetic_rejects_bad_split_and_level(arith):
    with pytest.raises(ValueError):
        arith.problems("validation", n=3)
    with pytest.raises(ValueError):
        arith.problems("train", n=3, levels=[0])


def test_arithmetic_small_levels_cap_the_draw_instead_of_looping_forever(arith):
    probs = arith.problems("test", n=100_000, levels=[1])
    assert 0 < len(probs) < 1000
    assert len({p.question for p in probs}) == len(probs)


def test_arithmetic_oracle_traces_end_in_the_gold_answer_and_score(arith):
    for p in arith.problems("train", n=40):
        for style in STYLES:
            tr = arith.oracle(p, style)
            assert tr.answer == p.answer
            text = format_assistant(tr.reasoning, tr.answer)
            assert text.endswith(p.answer)
            pred, ok = arith.score(text, p.answer)
            assert ok and pred == p.answer, (style, text)
            if style == "none":
                assert tr.reasoning == ""
            else:
                # the reasoning reaches the answer: its last step computes the target's value
                last_step = [s for s, kind, _ in tr.sentences if kind == "step"][-1]
                assert last_step.rstrip(".").endswith(f"={p.answer}")


def test_arithmetic_oracle_wrong_gold_is_not_credited(arith):
    p = arith.problems("train", n=1, levels=[3])[0]
    tr = arith.oracle(p, "concise")
    wrong = str((int(p.answer) + 1) % 10)
    assert arith.score(format_assistant(tr.reasoning, tr.answer), wrong) == (p.answer, False)
    assert arith.score(format_assistant(tr.reasoning, tr.answer), None)[1] is False


def test_arithmetic_long_traces_are_much_longer_than_concise(arith, tokenizer):
    ratios_tok, ratios_words = [], []
    for p in arith.problems("train", n=30):
        long_, concise = arith.oracle(p, "long"), arith.oracle(p, "concise")
        ratios_tok.append(len(tokenizer.encode(long_.reasoning)) / len(tokenizer.encode(concise.reasoning)))
        ratios_words.append(len(long_.reasoning.split()) / len(concise.reasoning.split()))
    assert min(ratios_tok) > 2.0
    assert statistics.mean(ratios_tok) > 3.0
    assert statistics.mean(ratios_words) > 8.0


def test_arithmetic_sentence_annotations(arith):
    for p in arith.problems("train", n=20):
        long_ = arith.oracle(p, "long")
        concise = arith.oracle(p, "concise")
        # the annotations are exactly the trace's sentences
        assert "\n".join(s for s, _, _ in long_.sentences) == long_.reasoning
        assert "\n".join(s for s, _, _ in concise.sentences) == concise.reasoning
        long_flags = [r for _, _, r in long_.sentences]
        assert any(long_flags) and not all(long_flags), "long traces mix reasoning and filler"
        kinds = {k for _, k, _ in long_.sentences}
        assert {"restate", "step", "check", "summary"} <= kinds
        assert all(r for _, _, r in concise.sentences)
        assert {k for _, k, _ in concise.sentences} == {"step"}
        # one step sentence per level in both styles
        assert sum(k == "step" for _, k, _ in long_.sentences) == p.level
        assert len(concise.sentences) == p.level
        assert arith.oracle(p, "none").sentences == []


def test_arithmetic_oracle_is_deterministic_and_rejects_unknown_style(arith):
    p = arith.problems("train", n=1, levels=[2])[0]
    assert arith.oracle(p, "long").reasoning == arith.oracle(p, "long").reasoning
    with pytest.raises(ValueError):
        arith.oracle(p, "verbose")


@pytest.mark.parametrize("text, expected", [
    ("7", "7"), ("The answer is 3.", "3"), ("x=4, so 9", "9"), ("none", None), ("2.5", None), ("", None),
])
def test_arithmetic_extract_answer(arith, text, expected):
    assert arith.extract_answer(text) == expected
