"""Synthetic family 1: multi-step arithmetic over named variables, modulo 10.

A problem gives a seed variable and a chain of ``level`` assignments, each applying ``+`` or ``-``
with a small digit to the previous variable, modulo 10::

    Compute mod 10.
    a=4
    b=a+2
    c=b-1
    d=c+2
    What is d?

Every step is one lookup in a small table (10 values x 2 ops x 2 operands by default), and the
number of steps sets the difficulty: with chain-of-thought a student does one lookup per written
line; without it, it must compose ``level`` lookups in one forward pass, which a small model
trained from scratch cannot do at the hardest level.

The defaults are calibrated for tiny students on 2 CPU cores (see docs/benchmarks.md): variables
are consecutive letters from ``a`` (``random_names=True`` starts at a random letter, which turns
the lookups from positional into content-based and learns several times slower), ``ops="+-"``
(``"+-*"`` adds multiplication) and ``max_operand=2`` (up to 9; with 4 the table has 80 entries and a
tiny student's jump in accuracy comes minutes later, with 9 and multiplication later still).

Train and test are disjoint by construction: a question belongs to the test split iff a hash of its
text falls in bucket 0 of 10.
"""

from __future__ import annotations

import random
from functools import partial

from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.extract import integer_answer
from thinkling.tasks.synthetic import FlawedTrace, SyntheticFamily, draw_split

LETTERS = "abcdefghijklmnopqrstuvwxyz"
OPS = ("+", "-", "*")

RESTATE = (
    "Okay, let me restate the problem. We have {eqs}, and we need {target} modulo 10.",
    "Alright, so the problem says {eqs}. The question asks for {target}, working modulo 10.",
    "Let me read this carefully. We are given {eqs}, and we want the value of {target} mod 10.",
)
TRANSITION = (
    "Next, let's work out {var}.",
    "Now I need {var}.",
    "Moving on, the next variable is {var}.",
    "Then we compute {var}.",
)
CHECK = (
    "Let me double-check that: {a}{op}{b} mod 10 is {res}. Yes, {var}={res}.",
    "Wait, let me verify. {a}{op}{b} gives {res} modulo 10. So {var}={res} is right.",
    "Hmm, checking again: {a}{op}{b}, mod 10, is {res}. Good, {var}={res}.",
)
SUMMARY = (
    "So, putting it all together, {target}={ans}.",
    "Therefore, following the chain, {target} ends up as {ans}.",
    "That completes the chain, so {target}={ans}.",
)


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b


@register_task("arithmetic")
class ArithmeticTask(SyntheticFamily):
    max_level = 20
    answer_type = "number"
    levels = (1, 2, 3, 4)

    def __init__(self, levels: list[int] | None = None, test_fraction_bucket: int = 0,
                 random_names: bool = False, ops: str = "+-", max_operand: int = 2):
        if levels:
            self.levels = tuple(levels)
        self.test_bucket = test_fraction_bucket
        self.random_names = random_names
        if not ops or any(o not in OPS for o in ops):
            raise ValueError(f"arithmetic: ops must be a non-empty string of {''.join(OPS)}, got {ops!r}")
        self.ops = tuple(dict.fromkeys(ops))
        if not 1 <= max_operand <= 9:
            raise ValueError(f"arithmetic: max_operand must be in 1..9, got {max_operand}")
        self.max_operand = max_operand

    # ------------------------------------------------------------------ problems

    def _make(self, rng: random.Random, level: int) -> tuple[str, dict]:
        # consecutive letters from a random start: the next variable is always the next letter
        start = rng.randint(0, len(LETTERS) - level - 1) if self.random_names else 0
        names = list(LETTERS[start:start + level + 1])
        values = {names[0]: rng.randint(0, 9)}
        eqs = [f"{names[0]}={values[names[0]]}"]
        steps = []
        for i in range(1, level + 1):
            var, prev = names[i], names[i - 1]
            op = rng.choice(self.ops)
            operand_val = rng.randint(1, self.max_operand)
            operand = str(operand_val)
            raw = _apply(op, values[prev], operand_val)
            values[var] = raw % 10
            eqs.append(f"{var}={prev}{op}{operand}")
            steps.append({"var": var, "prev": prev, "op": op, "operand": operand,
                          "a": values[prev], "b": operand_val, "raw": raw, "res": values[var]})
        target = names[-1]
        # one equation per line: a trace line then starts with the very tokens of a question line
        question = "Compute mod 10.\n" + "\n".join(eqs) + f"\nWhat is {target}?"
        return question, {"steps": steps, "eqs": eqs, "target": target, "seed_var": names[0]}

    def draw_level(self, split: str, level: int, n: int, seed: int) -> list[Problem]:
        """Up to ``n`` distinct problems of a level. Train and test are disjoint (a hash bucket).

        A level whose split holds fewer than ``n`` distinct questions (easy levels have small
        spaces) gives what it has (about 80% of them); the curate op ``select`` with ``per_level``
        can re-balance levels for training.
        """
        names = len(LETTERS) - level if self.random_names else 1
        space = names * 10 * (len(self.ops) * self.max_operand) ** level * (0.1 if split == "test" else 0.9)
        want = min(n, int(0.8 * space))  # drawing more than ~80% of a space gets slow
        drawn = draw_split(self.name, split, level, seed, partial(self._make, level=level), want,
                           test_bucket=self.test_bucket, exact=False)
        return [Problem(id=pid, task=self.name, split=split, level=level, question=q,
                        answer=str(meta["steps"][-1]["res"]), meta=meta) for pid, (q, meta) in drawn]

    # ------------------------------------------------------------------ answers

    def extract_answer(self, text: str) -> str | None:
        return integer_answer(text)

    # ------------------------------------------------------------------ oracle teacher

    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        return self._write(problem, problem.meta["steps"], style, seed)

    def flawed(self, problem: Problem, style: str, seed: int, rng: random.Random) -> FlawedTrace:
        """An arithmetic slip in one step, carried through the rest of the chain.

        The slipped step writes a wrong result for its own operands: one off (``5-1=3``) or the other
        operation (``5-1=6``; ``*`` slips to ``+``); every later step starts from the wrong value and is
        computed right, its self-check repeats the slip, and the summary and answer are the chain's end.
        The step is drawn with ``rng``, then the wrong value; with ``*`` a slip can be absorbed
        (``3*5`` and ``5*5`` both end in 5), so the draws go on until the final answer changes (a slip in
        the last step always does).
        """
        steps = problem.meta["steps"]
        for j in rng.sample(range(len(steps)), len(steps)):
            s = steps[j]
            other = {"+": "-", "-": "+", "*": "+"}[s["op"]]
            wrong = {(s["raw"] - 1) % 10, (s["raw"] + 1) % 10, _apply(other, s["a"], s["b"]) % 10} - {s["res"]}
            for w in rng.sample(sorted(wrong), len(wrong)):
                written = [dict(x) for x in steps[:j]] + [{**s, "res": w}]
                for x in steps[j + 1:]:
                    a = written[-1]["res"]
                    raw = _apply(x["op"], a, x["b"])
                    written.append({**x, "a": a, "raw": raw, "res": raw % 10})
                if written[-1]["res"] != steps[-1]["res"]:
                    tr = self._write(problem, written, style, seed)
                    detail = (f"step {s['var']}: wrote {s['a']}{s['op']}{s['b']}={w} instead of {s['res']}; "
                              f"the answer became {tr.answer} instead of {steps[-1]['res']}")
                    return FlawedTrace(tr.reasoning, tr.answer, tr.sentences, tr.knowledge, mistake="slip",
                                       detail=detail)
        raise AssertionError("unreachable: a slip in the last step always changes the answer")

    def _write(self, problem: Problem, steps: list[dict], style: str, seed: int) -> OracleTrace:
        """The trace of a chain of ``steps`` as the oracle writes them (the problem's own, or slipped)."""
        meta = problem.meta
        target = meta["target"]
        ans = str(steps[-1]["res"])
        knowledge = "Arithmetic modulo 10: compute the operation, then keep the last digit."
        if style == "none":
            return OracleTrace("", ans, [], knowledge)

        def step_text(s: dict) -> str:
            return f"{s['var']}={s['prev']}{s['op']}{s['operand']}={s['a']}{s['op']}{s['b']}={s['res']}"

        if style == "concise":
            lines = [step_text(s) for s in steps]
            sents = [(line, "step", True) for line in lines]
            return OracleTrace("\n".join(lines), ans, sents, knowledge)
        if style != "long":
            raise ValueError(f"arithmetic oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        rng = random.Random(f"{problem.id}/{seed}")
        sents: list[tuple[str, str, bool]] = []
        sents.append((rng.choice(RESTATE).format(eqs=", ".join(meta["eqs"]), target=target), "restate", False))
        # self-checks on about half of the steps (at least one), as R1-style traces do
        checked = {i for i in range(len(steps)) if rng.random() < 0.5} or {rng.randrange(len(steps))}
        for i, s in enumerate(steps):
            sents.append((rng.choice(TRANSITION).format(var=s["var"]), "transition", False))
            sents.append((step_text(s) + ".", "step", True))
            if i in checked:
                sents.append((rng.choice(CHECK).format(**s), "check", False))
        sents.append((rng.choice(SUMMARY).format(target=target, ans=ans), "summary", False))
        return OracleTrace("\n".join(t for t, _, _ in sents), ans, sents, knowledge)
