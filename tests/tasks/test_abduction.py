"""The abduction family, and what every choice family (abduction and induction, both
``thinkling.tasks.abduction.ChoiceFamily``) does: problems per level, disjoint seeded splits, balanced
gold letters, verified oracle traces in every style, sentence annotations, rewrites, extraction.

Gold answers are recomputed here from the question text alone, by a solver written independently of the
generator (forward chaining from every option), never from the generator's meta.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from helpers.tasks import LETTERS, LEVELS
from thinkling.format import format_assistant
from thinkling.tasks import get_task

FAMILIES = ("abduction", "induction")
STYLES = ("long", "concise", "none")


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return get_task(request.param)


# ----------------------------------------------------------------------------- an independent solver


RULE = re.compile(r"Every (\w+) is (not )?a (\w+)\.")
ABD_OPTION = re.compile(r"^([A-E])\) (\w+) is a (\w+)$", re.MULTILINE)
OBSERVATION = re.compile(r"^Observation: (\w+) is a (\w+)\.$", re.MULTILINE)


def parse_abduction(question: str):
    lines = question.splitlines()
    assert lines[0].startswith("Rules: ") and lines[2] == "Which hypothesis explains the observation?"
    rules = [(a, b, not neg) for a, neg, b in RULE.findall(lines[0])]
    assert len(rules) == lines[0].count("Every ")
    entity, obs = OBSERVATION.search(question).groups()
    options = ABD_OPTION.findall(question)
    assert [k for k, _, _ in options] == list(LETTERS)
    assert {e for _, e, _ in options} == {entity}
    return rules, entity, obs, {k: c for k, _, c in options}


def forward(start: str, rules) -> dict[str, bool]:
    """What an entity of category ``start`` is (True) or is not (False), by forward chaining to a fixpoint."""
    known = {start: True}
    changed = True
    while changed:
        changed = False
        for a, b, pos in rules:
            if known.get(a) is True:
                if b in known:
                    assert known[b] == pos, f"contradiction from {start}"
                else:
                    known[b] = pos
                    changed = True
    return known


def depth(start: str, goal: str, rules) -> int | None:
    """Fewest positive rules from ``start`` to ``goal``."""
    frontier, seen, d = {start}, {start}, 0
    while frontier:
        if goal in frontier:
            return d
        frontier = {b for a, b, pos in rules if pos and a in frontier} - seen
        seen |= frontier
        d += 1
    return None


def explaining(question: str) -> list[str]:
    rules, _, obs, options = parse_abduction(question)
    return [k for k, c in options.items() if forward(c, rules).get(obs) is True]


# ----------------------------------------------------------------------------- problems


@pytest.mark.parametrize("level", LEVELS)
def test_problems_per_level_with_the_right_count(family, level):
    for split, n in (("train", 60), ("test", 25)):
        probs = family.problems(split, n=n, levels=[level])
        assert len(probs) == n
        assert all(p.level == level and p.split == split and p.task == family.name for p in probs)
        assert len({p.id for p in probs}) == n and len({p.question for p in probs}) == n
        assert all(p.answer in LETTERS for p in probs)
    everything = family.problems("train", n=5)
    assert Counter(p.level for p in everything) == {lv: 5 for lv in LEVELS}


def test_train_and_test_are_disjoint(family):
    train = family.problems("train", n=300)
    test = family.problems("test", n=100)
    assert not {p.question for p in train} & {p.question for p in test}


def test_problems_are_deterministic_per_seed(family):
    a = family.problems("train", n=30, levels=[2, 4])
    b = get_task(family.name).problems("train", n=30, levels=[2, 4])
    assert [p.model_dump() for p in a] == [p.model_dump() for p in b]
    bigger = family.problems("train", n=45, levels=[2])
    assert [(p.id, p.question) for p in bigger[:30]] == [(p.id, p.question) for p in a if p.level == 2]
    other = family.problems("train", n=30, levels=[2], seed=1)
    assert not {p.question for p in other} & {p.question for p in a}


def test_bad_split_and_level_are_errors(family):
    with pytest.raises(ValueError, match="split"):
        family.problems("dev", n=3)
    for bad in (0, 5):
        with pytest.raises(ValueError, match="level"):
            family.problems("train", n=3, levels=[bad])


def test_gold_letters_are_balanced(family):
    counts = Counter(p.answer for p in family.problems("train", n=150))
    assert set(counts) == set(LETTERS)
    assert all(0.12 < c / 600 < 0.28 for c in counts.values()), counts


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", LEVELS)
def test_abduction_exactly_one_option_explains(level, seed):
    task = get_task("abduction")
    probs = task.problems("train", n=150, levels=[level], seed=seed) + task.problems("test", n=30, levels=[level],
                                                                                      seed=seed)
    for p in probs:
        rules, _, obs, options = parse_abduction(p.question)
        assert explaining(p.question) == [p.answer], p.question
        # the right chain is `level` rules long, and no rule links the answer straight to the observation
        assert depth(options[p.answer], obs, rules) == level
        if level >= 2:
            assert not any(a == options[p.answer] and b == obs for a, b, _ in rules)
        # the distractors are plausible: every option names a category of the rules; one option's chain
        # ends in a negated rule about the observed category, and one is a category the observed one implies
        cats = {c for a, b, _ in rules for c in (a, b)}
        assert set(options.values()) <= cats
        assert sum(forward(c, rules).get(obs) is False for c in options.values()) == 1
        assert sum((obs, c, True) in rules for c in options.values()) == 1
        # a reader who ignores "not" finds two explanations
        assert len([c for c in options.values() if obs in forward(c, [(a, b, True) for a, b, _ in rules])]) == 2


# ----------------------------------------------------------------------------- oracle


def test_oracle_traces_are_verified_in_every_style(family):
    for p in family.problems("train", n=15):
        for style in STYLES:
            tr = family.oracle(p, style)
            assert tr.answer == p.answer
            text = format_assistant(tr.reasoning, tr.answer)
            assert family.score(text, p.answer) == (p.answer, True), (style, text)
            wrong = LETTERS[(LETTERS.index(p.answer) + 1) % 5]
            assert family.score(text, wrong)[1] is False
            assert family.score(text, None)[1] is False
            assert tr.knowledge
            if style == "none":
                assert tr.reasoning == "" and tr.sentences == []


def test_long_traces_are_longer_than_concise_and_concise_than_none(family):
    for p in family.problems("train", n=20):
        long_, concise, none = (family.oracle(p, s) for s in STYLES)
        n_long, n_concise = len(long_.reasoning.split()), len(concise.reasoning.split())
        assert n_long > 1.5 * n_concise > 0 == len(none.reasoning.split())


def test_sentence_annotations_tile_the_reasoning(family):
    for p in family.problems("train", n=20):
        long_, concise = family.oracle(p, "long"), family.oracle(p, "concise")
        for tr in (long_, concise):
            assert "\n".join(s for s, _, _ in tr.sentences) == tr.reasoning
            assert all(s and "\n" not in s for s, _, _ in tr.sentences)
            assert all(flag == (kind == "step") for _, kind, flag in tr.sentences)
        assert {k for _, k, _ in concise.sentences} == {"step"}
        kinds = Counter(k for _, k, _ in long_.sentences)
        assert {"restate", "step", "check", "summary"} <= set(kinds) <= {"restate", "step", "check", "transition",
                                                                         "summary"}
        assert kinds["summary"] == 1 and long_.sentences[-1][1] == "summary"
        if p.level > 1 or family.name == "induction":
            assert kinds["transition"] >= 1
        # the long trace carries exactly the concise reasoning, padded with non-reasoning sentences
        assert [s for s, k, _ in long_.sentences if k == "step"] == [s for s, _, _ in concise.sentences]
        assert len(concise.sentences) == (p.level + 1 if family.name == "abduction" else 5)


def test_abduction_concise_trace_follows_the_chain_backwards():
    task = get_task("abduction")
    step = re.compile(r"Every (\w+) is a (\w+), so (\w+) may be a (\w+)\.")
    for p in task.problems("train", n=20):
        rules, entity, obs, options = parse_abduction(p.question)
        lines = task.oracle(p, "concise").reasoning.splitlines()
        current = obs
        for line in lines[:-1]:
            a, b, x, a2 = step.fullmatch(line).groups()
            assert (a, b, True) in rules and b == current and a == a2 and x == entity
            current = a
        assert current == options[p.answer]
        assert lines[-1] == f"Option {p.answer} says {entity} is a {current}."


def test_rewrite_through_the_base_class(family):
    for p in family.problems("train", n=8, levels=[3]):
        long_, concise = family.oracle(p, "long"), family.oracle(p, "concise")
        tight = family.rewrite(p, long_.sentences, budget_words=len(concise.reasoning.split()))
        assert tight.reasoning == concise.reasoning
        assert family.score(format_assistant(tight.reasoning, tight.answer), p.answer)[1]
        loose = family.rewrite(p, long_.sentences, budget_words=10_000)
        assert loose.reasoning == long_.reasoning
        mid = family.rewrite(p, long_.sentences, budget_words=len(long_.reasoning.split()) - 1)
        assert "transition" not in {k for _, k, _ in mid.sentences} and len(mid.reasoning) < len(long_.reasoning)


def test_abduction_knowledge_holds_the_rules_of_the_chain():
    task = get_task("abduction")
    for p in task.problems("train", n=10, levels=[3]):
        rules, _, _, _ = parse_abduction(p.question)
        used = [(a, b, not neg) for a, neg, b in RULE.findall(task.oracle(p, "concise").knowledge)]
        assert len(used) == 3 and set(used) <= set(rules)


def test_oracle_is_deterministic_and_rejects_unknown_style(family):
    p = family.problems("train", n=1, levels=[4])[0]
    assert family.oracle(p, "long").sentences == family.oracle(p, "long").sentences
    # problems travel as JSONL between stages: the oracle works on a reloaded problem (tuples become lists)
    reloaded = type(p).model_validate_json(p.model_dump_json())
    for style in STYLES:
        assert family.oracle(reloaded, style) == family.oracle(p, style)
    with pytest.raises(ValueError, match="style"):
        family.oracle(p, "verbose")


def test_prompts_and_long_traces_stay_short(family):
    probs = family.problems("train", n=200, levels=[4])
    assert max(len(p.question.split()) for p in probs) <= 120
    assert max(len(family.oracle(p, "long").reasoning.split()) for p in probs) <= 250


# ----------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("text, expected", [
    ("B", "B"),
    ("The answer is C.", "C"),
    ("Answer: E", "E"),
    ("(D)", "D"),
    ("\\boxed{A}", "A"),
    ("Option B says Wren is a zumpus.", "B"),
    ("Not A. The answer is (D).", "D"),                 # the last explicit answer wins
    ("The answer is B, no wait, the answer is E.", "E"),
    ("", None),
    ("I am not sure.", None),
    ("a", None),
    ("F", None),
    ("42", None),
    ("Every zumpus is a lempus.", None),
])
def test_extract_answer(family, text, expected):
    assert family.extract_answer(text) == expected


def test_unparseable_answers_are_never_credited(family):
    assert family.score("<think>\nthe answer is A\n</think>\nI am not sure.", "A") == (None, False)
    assert family.score("<think>\nThe answer is A", "A") == (None, False)   # truncated: never closed
    assert family.score("<think>\n</think>\nA", "A") == ("A", True)
    assert family.verify(None, "A") is False
    assert family.verify("A", None) is False
