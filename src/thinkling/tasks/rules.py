"""Synthetic family 2: deductive rule chains over fictional entities (PrOntoQA-like).

An entity belongs to a category; rules link categories in a chain of ``level`` steps, the last one
positive or negated. A distractor chain, starting from another entity, ends in a rule about the
*same* queried category with the opposite polarity, so the answer cannot be read off the rule that
mentions the queried category: the chain from the asked-about entity must be followed::

    Facts: Wren is a zumpus. Tobi is a gorpus. Rules: Every zumpus is a lempus. Every gorpus is a
    brimpus. Every lempus is a yompus. Every brimpus is not a yompus. Question: Is Wren a yompus?

Answer: ``True`` or ``False``. Level = chain length (rules to apply). Train/test disjoint by a hash
of the question text, as for the arithmetic family.
"""

from __future__ import annotations

import random
from functools import partial

from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.extract import Options
from thinkling.tasks.synthetic import FlawedTrace, SyntheticFamily, draw_split

NAMES = ("Wren", "Tobi", "Alex", "Rina", "Max", "Sam", "Polly", "Fae", "Jude", "Nico", "Stella", "Rex")
CATEGORIES = (
    "zumpus", "gorpus", "lempus", "brimpus", "yompus", "tumpus", "dumpus", "wumpus", "rompus", "vumpus",
    "numpus", "jompus", "sterpus", "impus", "grimpus", "shumpus", "zorpus", "fimpus",
)
RESTATE = (
    "Okay, let me restate what we know. {facts} The rules are: {rules} We are asked: {query}",
    "Let me read the problem again. {facts} {rules} The question is: {query}",
)
TRANSITION = ("Next, what else follows about {x}?", "Now let's see where that leads.", "Let me follow the chain further.")
CHECK = (
    "Let me double-check: the rule says every {a} is {neg}a {b}, and {x} is a {a}, so yes, {x} is {neg}a {b}.",
    "Wait, is that right? {x} is a {a}, and every {a} is {neg}a {b}. Yes, that holds.",
)
SUMMARY = ("So, following the rules from {x}, the answer is {ans}.", "Putting it together, {x} is {neg}a {c}, so the answer is {ans}.")


_OPTIONS = Options(words={"true": "True", "yes": "True", "false": "False", "no": "False"})


@register_task("rules")
class RulesTask(SyntheticFamily):
    max_level = (len(CATEGORIES) - 1) // 2  # two disjoint chains of categories per problem
    answer_type = "label"
    group = "deductive"
    levels = (1, 2, 3, 4)

    def __init__(self, levels: list[int] | None = None):
        if levels:
            self.levels = tuple(levels)

    def _make(self, rng: random.Random, level: int) -> tuple[str, dict]:
        x, y = rng.sample(NAMES, 2)
        cats = rng.sample(CATEGORIES, 2 * level + 1)
        chain = cats[: level + 1]          # chain[0] -> ... -> chain[level] (queried)
        target = chain[-1]
        distract = cats[level + 1:]        # y's chain, ends in a rule about target with opposite polarity
        positive = rng.random() < 0.5
        rules = [(chain[i], chain[i + 1], True) for i in range(level - 1)] + [(chain[level - 1], target, positive)]
        d_chain = distract[:level]
        d_rules = [(d_chain[i], d_chain[i + 1], True) for i in range(len(d_chain) - 1)]
        d_rules.append((d_chain[-1], target, not positive))
        all_rules = rules + d_rules
        rng.shuffle(all_rules)
        facts = [f"{x} is a {chain[0]}.", f"{y} is a {d_chain[0]}."]
        rng.shuffle(facts)

        def rule_text(a: str, b: str, pos: bool) -> str:
            return f"Every {a} is {'' if pos else 'not '}a {b}."

        rule_texts = [rule_text(*r) for r in all_rules]
        query = f"Is {x} a {target}?"
        question = f"Facts: {' '.join(facts)} Rules: {' '.join(rule_texts)} Question: {query}"
        meta = {"entity": x, "chain": chain, "positive": positive, "facts": facts, "rules": rule_texts, "query": query}
        return question, meta

    def draw_level(self, split: str, level: int, n: int, seed: int) -> list[Problem]:
        drawn = draw_split(self.name, split, level, seed, partial(self._make, level=level), n)
        return [Problem(id=pid, task=self.name, split=split, level=level, question=q,
                        answer="True" if meta["positive"] else "False", meta=meta) for pid, (q, meta) in drawn]

    def extract_answer(self, text: str) -> str | None:
        """True/yes or False/no, by the final-choice rule (:meth:`~thinkling.tasks.extract.Options.read`):
        "yes, true" is True; "true at first, but no" is no answer; "... the answer is False" is False."""
        return _OPTIONS.read(text)

    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        return self._write(problem, style, seed, problem.meta["positive"])

    def flawed(self, problem: Problem, style: str, seed: int, rng: random.Random) -> FlawedTrace:
        """The last rule of the chain read with the wrong polarity (its "not" skipped, or one read in):
        the step and its self-check quote the misread rule, and the summary and answer follow it, so the
        answer is the opposite of the gold. (``rng`` is not needed: the chain has one rule with a
        polarity that matters.)"""
        m = problem.meta
        a, b, pos = m["chain"][-2], m["chain"][-1], m["positive"]
        tr = self._write(problem, style, seed, not pos)
        detail = (f"read 'Every {a} is {'' if pos else 'not '}a {b}.' as 'Every {a} is {'not ' if pos else ''}a {b}.'; "
                  f"the answer became {tr.answer} instead of {problem.answer}")
        return FlawedTrace(tr.reasoning, tr.answer, tr.sentences, tr.knowledge, mistake="polarity", detail=detail)

    def _write(self, problem: Problem, style: str, seed: int, positive: bool) -> OracleTrace:
        """The trace along the entity's chain, its last rule read as ``positive`` (the problem's own, or
        misread)."""
        m = problem.meta
        x, chain = m["entity"], m["chain"]
        ans = "True" if positive else "False"
        knowledge = "Rules apply transitively: if every A is a B and x is an A, then x is a B."
        if style == "none":
            return OracleTrace("", ans, [], knowledge)
        steps = []
        for i in range(len(chain) - 1):
            last = i == len(chain) - 2
            neg = "" if (not last or positive) else "not "
            steps.append((chain[i], chain[i + 1], neg))
        step_lines = [f"{x} is a {a}, so {x} is {neg}a {b}." for a, b, neg in steps]
        if style == "concise":
            return OracleTrace("\n".join(step_lines), ans, [(s, "step", True) for s in step_lines], knowledge)
        if style != "long":
            raise ValueError(f"rules oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        rng = random.Random(f"{problem.id}/{seed}")
        sents: list[tuple[str, str, bool]] = [
            (rng.choice(RESTATE).format(facts=" ".join(m["facts"]), rules=" ".join(m["rules"]), query=m["query"]),
             "restate", False)]
        for i, ((a, b, neg), line) in enumerate(zip(steps, step_lines)):
            if i:
                sents.append((rng.choice(TRANSITION).format(x=x), "transition", False))
            sents.append((line, "step", True))
            sents.append((rng.choice(CHECK).format(a=a, b=b, x=x, neg=neg), "check", False))
        sents.append((rng.choice(SUMMARY).format(x=x, ans=ans, c=chain[-1], neg="" if positive else "not "),
                      "summary", False))
        return OracleTrace("\n".join(s for s, _, _ in sents), ans, sents, knowledge)
