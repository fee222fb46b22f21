"""Synthetic family 4: induction - find the rule that a set of examples supports.

Examples describe entities of a kind (``zumpus``) with properties stated positively or negated; one
example is of another kind. Five candidate rules about the kind are offered; exactly one agrees with
every example of the kind::

    Examples: Sam is a wumpus, a dumpus and a numpus. Fae is a gorpus, a zumpus, not a numpus, a dumpus,
    a grimpus and a fimpus. Max is a gorpus, not a zumpus, a dumpus, a numpus, not a grimpus and not a
    fimpus.
    Which rule do the examples support? Every gorpus is
    A) not a numpus   B) not a fimpus   C) a dumpus   D) a zumpus   E) not a grimpus   (one option per line)

Answer: ``C``. A rule ``every K is (not) a P`` is *supported* when no example of kind K states the
opposite about P and at least one states it; examples of other kinds do not count. The right rule
holds in every example of the kind; each wrong rule is contradicted by exactly one of them and (from
level 2) stated by all the others. So every example of the kind names all five properties and counting
how often a property appears does not find the answer: each option's polarity must be checked against
every example.

Level = number of examples of the kind (1-4), and every one of them is needed: each contradicts at
least one wrong rule that no other example does, so dropping any example leaves two supported rules
(the generator checks this and the uniqueness of the answer). The chain of thought tests each option
against the examples: the one example that breaks a wrong rule, or every example for the right one.
Train and test are disjoint by a hash of the question text.
"""

from __future__ import annotations

import random

from thinkling.records import Problem
from thinkling.tasks.abduction import OPTION_LETTERS, ChoiceFamily
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.rules import CATEGORIES, NAMES

RESTATE = (
    "Okay, let me restate. The {kind} {ex}, and we need the rule about every {kind} that the examples "
    "agree with.",
    "Let me read the problem again. We look for a rule about every {kind}; the {kind} {ex}.",
)
OTHER = "{o} is a {other}, not a {kind}, so {o} does not count."
TRANSITION = ("Now option {k}: every {kind} is {neg}a {p}.", "Next, option {k}, every {kind} is {neg}a {p}.",
              "Let me test option {k}: every {kind} is {neg}a {p}.")
CHECK_OUT = ("Let me double-check: {r} is a {kind} and is {rneg}a {p}. So {k} is out.",
             "Wait, is that right? {r} is {rneg}a {p}, so the rule breaks. Yes.")
CHECK_FIT = ("Wait, does any {kind} go against it? No.",
             "Let me double-check: no {kind} example says otherwise. Good.")
SUMMARY = ("Only option {ans} fits every {kind} example, so the answer is {ans}.",
           "So the rule the examples support is option {ans}.")


def _lit(prop: str, pos: bool) -> str:
    return f"{'' if pos else 'not '}a {prop}"


def _example_text(name: str, kind: str, lits: list[tuple[str, bool]]) -> str:
    parts = [_lit(p, s) for p, s in lits]
    tail = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{name} is a {kind}{',' if len(parts) > 1 else ' and'} {tail}."


def supported(examples: list[dict], kind: str, prop: str, pos: bool) -> bool:
    """``every kind is (not) a prop`` is stated by an example of ``kind`` and contradicted by none."""
    said = [dict(e["lits"]).get(prop) for e in examples if e["kind"] == kind]
    return pos in said and (not pos) not in said


@register_task("induction")
class InductionTask(ChoiceFamily):
    """Pick the rule every example of a kind agrees with (letter A-E); see the module doc."""

    group = "inductive"

    def _make(self, rng: random.Random, level: int) -> tuple[str, str, dict]:
        L = level
        names = rng.sample(NAMES, L + 1)
        cats = rng.sample(CATEGORIES, 7)
        kind, other, props = cats[0], cats[1], cats[2:]        # props[0] is the right rule's property
        pols = [rng.random() < 0.5 for _ in props]
        order = [1, 2, 3, 4]
        rng.shuffle(order)
        # each wrong rule is contradicted by exactly one example (every example contradicts at least one)
        # and stated by all the others
        refuter = {d: i if i < L else rng.randrange(L) for i, d in enumerate(order)}
        lits: list[list[tuple[str, bool]]] = [[(props[0], pols[0])] for _ in range(L)]
        for d in range(1, 5):
            for i in range(L):
                lits[i].append((props[d], pols[d] != (i == refuter[d])))
        for ls in lits:
            rng.shuffle(ls)
        examples = [{"name": n, "kind": kind, "lits": ls} for n, ls in zip(names, lits)]
        examples.append({"name": names[-1], "kind": other,
                         "lits": [(p, rng.random() < 0.5) for p in rng.sample(props, 2)]})
        rng.shuffle(examples)
        options = list(zip(props, pols))
        rng.shuffle(options)
        gold = OPTION_LETTERS[options.index((props[0], pols[0]))]
        self._check(examples, kind, options, gold)
        opts = [f"{k}) {_lit(p, s)}" for k, (p, s) in zip(OPTION_LETTERS, options)]
        question = ("Examples: " + " ".join(_example_text(e["name"], e["kind"], e["lits"]) for e in examples)
                    + f"\nWhich rule do the examples support? Every {kind} is\n" + "\n".join(opts))
        refuters = {}
        for p, s in options:
            for e in examples:
                if e["kind"] == kind and dict(e["lits"]).get(p) is (not s):
                    refuters[p] = e["name"]
        meta = {"kind": kind, "other": other, "examples": examples, "options": options, "refuters": refuters}
        return question, gold, meta

    @staticmethod
    def _check(examples: list[dict], kind: str, options: list[tuple[str, bool]], gold: str) -> None:
        """Exactly the gold rule is supported, and every example of the kind is needed for that."""
        def passing(exs):
            return [k for k, (p, s) in zip(OPTION_LETTERS, options) if supported(exs, kind, p, s)]

        if passing(examples) != [gold]:
            raise RuntimeError(f"induction: generator bug, supported {passing(examples)}, want {gold}")
        mine = [i for i, e in enumerate(examples) if e["kind"] == kind]
        for i in mine if len(mine) > 1 else []:
            if len(passing(examples[:i] + examples[i + 1:])) < 2:
                raise RuntimeError(f"induction: generator bug, example {examples[i]['name']} is not needed")

    # ------------------------------------------------------------------ oracle teacher

    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        m = problem.meta
        kind, options, refuters = m["kind"], [tuple(o) for o in m["options"]], m["refuters"]
        mine = [e["name"] for e in m["examples"] if e["kind"] == kind]
        ans = problem.answer
        knowledge = (f"A rule about every {kind} is supported when the examples of a {kind} agree with it: one "
                     f"example of a {kind} that says the opposite rules it out, and examples of other kinds "
                     "do not count.")
        if style == "none":
            return OracleTrace("", ans, [], knowledge)
        steps = []
        for k, (p, s) in zip(OPTION_LETTERS, options):
            if k == ans:
                tests = ", ".join(f"{n} is {_lit(p, s)}" for n in mine)
                steps.append(f"{k}: {tests}, so {k} fits.")
            else:
                steps.append(f"{k}: {refuters[p]} is a {kind} and {_lit(p, not s)}, so {k} fails.")
        if style == "concise":
            return OracleTrace("\n".join(steps), ans, [(s, "step", True) for s in steps], knowledge)
        if style != "long":
            raise ValueError(f"induction oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        rng = random.Random(f"{problem.id}/{seed}")
        ex = f"example is {mine[0]}" if len(mine) == 1 else f"examples are {', '.join(mine[:-1])} and {mine[-1]}"
        sents: list[tuple[str, str, bool]] = [(rng.choice(RESTATE).format(kind=kind, ex=ex), "restate", False)]
        for e in m["examples"]:
            if e["kind"] != kind:
                sents.append((OTHER.format(o=e["name"], other=e["kind"], kind=kind), "restate", False))
        # self-checks on about a third of the options (at least one)
        checked = {i for i in range(5) if rng.random() < 1 / 3} or {rng.randrange(5)}
        for i, (k, (p, s), line) in enumerate(zip(OPTION_LETTERS, options, steps)):
            neg = "" if s else "not "
            sents.append((rng.choice(TRANSITION).format(k=k, kind=kind, neg=neg, p=p), "transition", False))
            sents.append((line, "step", True))
            if i in checked:
                if k == ans:
                    check = rng.choice(CHECK_FIT).format(kind=kind)
                else:
                    check = rng.choice(CHECK_OUT).format(kind=kind, k=k, p=p, r=refuters[p], rneg="not " if s else "")
                sents.append((check, "check", False))
        sents.append((rng.choice(SUMMARY).format(ans=ans, kind=kind), "summary", False))
        return OracleTrace("\n".join(t for t, _, _ in sents), ans, sents, knowledge)
