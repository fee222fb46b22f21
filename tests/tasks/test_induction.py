"""The induction family: exactly one rule is supported by the examples and every example is needed, and
the concise oracle trace tests each option on them. Gold answers are recomputed from the question text
alone, by a support check of every option against every example."""

from __future__ import annotations

import re

import pytest

from helpers.tasks import LETTERS, LEVELS
from thinkling.tasks import get_task

LIT = re.compile(r"(not )?a (\w+)")
IND_OPTION = re.compile(r"^([A-E])\) (not )?a (\w+)$", re.MULTILINE)


def parse_induction(question: str):
    lines = question.splitlines()
    assert lines[0].startswith("Examples: ")
    m = re.fullmatch(r"Which rule do the examples support\? Every (\w+) is", lines[1])
    assert m, lines[1]
    kind = m.group(1)
    examples = []
    for sent in re.findall(r"[^.]+\.", lines[0][len("Examples: "):]):
        e = re.fullmatch(r"\s*(\w+) is a (\w+)(?:,| and) (.*)\.", sent)
        assert e, sent
        assert re.fullmatch(r"(?:not )?a \w+(?:, (?:not )?a \w+)*(?: and (?:not )?a \w+)?", e.group(3)), sent
        lits = [(p, not neg) for neg, p in LIT.findall(e.group(3))]
        examples.append((e.group(1), e.group(2), dict(lits)))
    options = {k: (p, not neg) for k, neg, p in IND_OPTION.findall(question)}
    assert list(options) == list(LETTERS)
    return kind, examples, options


def supported_options(kind: str, examples, options) -> list[str]:
    out = []
    for k, (p, pos) in options.items():
        said = [lits[p] for _, c, lits in examples if c == kind and p in lits]
        if pos in said and (not pos) not in said:
            out.append(k)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", LEVELS)
def test_induction_exactly_one_rule_is_supported_and_every_example_is_needed(level, seed):
    task = get_task("induction")
    probs = task.problems("train", n=150, levels=[level], seed=seed) + task.problems("test", n=30, levels=[level],
                                                                                      seed=seed)
    for p in probs:
        kind, examples, options = parse_induction(p.question)
        assert supported_options(kind, examples, options) == [p.answer], p.question
        mine = [e for e in examples if e[1] == kind]
        assert len(mine) == level and len(examples) == level + 1, "one example of another kind"
        # every example of the kind names all five properties: counting appearances finds nothing
        props = {prop for prop, _ in options.values()}
        assert all(set(lits) == props for _, _, lits in mine)
        if level >= 2:
            for i in range(len(examples)):
                if examples[i][1] == kind:
                    rest = examples[:i] + examples[i + 1:]
                    assert len(supported_options(kind, rest, options)) >= 2, (p.question, examples[i][0])
        # the example of another kind speaks about the options' properties too
        assert set(next(lits for _, c, lits in examples if c != kind)) <= props


def test_induction_concise_trace_tests_each_option_on_the_examples():
    task = get_task("induction")
    for p in task.problems("train", n=20):
        kind, examples, options = parse_induction(p.question)
        mine = [(n, lits) for n, c, lits in examples if c == kind]
        lines = task.oracle(p, "concise").reasoning.splitlines()
        assert [line[0] for line in lines] == list(LETTERS)
        for k, line in zip(LETTERS, lines):
            prop, pos = options[k]
            if k == p.answer:
                tests = ", ".join(f"{n} is {'' if pos else 'not '}a {prop}" for n, _ in mine)
                assert line == f"{k}: {tests}, so {k} fits."
            else:
                m = re.fullmatch(rf"{k}: (\w+) is a {kind} and (not )?a {prop}, so {k} fails\.", line)
                assert m, line
                assert dict(mine)[m.group(1)][prop] == (not m.group(2)) != pos
