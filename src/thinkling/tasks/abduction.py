"""Synthetic family 3: abduction - choose the hypothesis that explains an observation under rules.

Rules link fictional categories; one entity is observed in a category; five hypotheses say which
category the entity might be in. Exactly one hypothesis, with the rules, entails the observation::

    Rules: Every sterpus is a gorpus. Every fimpus is a sterpus. Every impus is a lempus. Every gorpus
    is a jompus. Every zumpus is a wumpus. Every brimpus is a impus. Every wumpus is not a gorpus.
    Every brimpus is a grimpus.
    Observation: Stella is a gorpus.
    Which hypothesis explains the observation?
    A) Stella is a grimpus   B) Stella is a zumpus   C) Stella is a fimpus   D) Stella is a jompus
    E) Stella is a brimpus                                                 (one option per line)

Answer: ``C`` (every fimpus is a sterpus, every sterpus is a gorpus). Level = length of the rule chain
from the right hypothesis to the observation (1-4), here 2.

The four wrong hypotheses all name categories that appear in the rules, one of each kind:

* a chain of the same length that ends in a *negated* rule about the observed category (``zumpus``:
  it would contradict the observation; a reader who skips the "not" takes it);
* a chain of the same length that ends in another category (``brimpus``);
* the category the observed one implies (``jompus``: every gorpus is a jompus, not the reverse);
* a category one of the three chains branches into (``grimpus``: every brimpus is a grimpus, not the
  reverse).

So the answer cannot be read off one rule: the positive rule into the observed category must be
followed backwards, ``level`` times, to a category that is an option. The generator checks by forward
chaining from every option that exactly one explains the observation. Train and test are disjoint by a
hash of the question text, as for the other synthetic families.

:class:`ChoiceFamily` is the shared base of the synthetic multiple-choice families (this one and
``induction``): seeded draws per level, the hash split, letter answers A-E extracted as the logic
benchmarks do (:class:`~thinkling.tasks.extract.Options`: a box or the last marked answer wins, else the
one option the reply names; several named without a final choice, or none, is None).
"""

from __future__ import annotations

import random
import re
from functools import partial

from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task
from thinkling.tasks.extract import Options
from thinkling.tasks.rules import CATEGORIES, NAMES
from thinkling.tasks.synthetic import FlawedTrace, SyntheticFamily, draw_split

OPTION_LETTERS = "ABCDE"
_OPTIONS = Options(letters=OPTION_LETTERS)


class ChoiceFamily(SyntheticFamily):
    """A synthetic family whose answer is one letter of five options.

    Subclasses give ``_make(rng, level) -> (question, gold letter, meta)``; levels are 1..``max_level``.
    """

    answer_type = "choice"
    levels = (1, 2, 3, 4)
    max_level = 4

    def __init__(self, levels: list[int] | None = None):
        if levels:
            self.levels = tuple(levels)

    def _make(self, rng: random.Random, level: int) -> tuple[str, str, dict]:
        raise NotImplementedError

    def draw_level(self, split: str, level: int, n: int, seed: int) -> list[Problem]:
        """``n`` distinct problems of a level; a question is in the test split iff its hash bucket is 0."""
        drawn = draw_split(self.name, split, level, seed, partial(self._make, level=level), n)
        return [Problem(id=pid, task=self.name, split=split, level=level, question=q, answer=gold, meta=meta)
                for pid, (q, gold, meta) in drawn]

    def extract_answer(self, text: str) -> str | None:
        """The final choice among the letters (:meth:`~thinkling.tasks.extract.Options.read`)."""
        return _OPTIONS.read(text)

    def wrong_answer(self, problem: Problem, rng: random.Random) -> str:
        """Another of the five letters (the fallback mistake of a family without a :meth:`flawed` hook)."""
        return rng.choice([k for k in OPTION_LETTERS if k != problem.answer])


def closure(start: str, rules: list[tuple[str, str, bool]]) -> dict[str, bool]:
    """Every category (True) or negated category (False) an entity of ``start`` is in, by forward
    chaining ``(a, b, positive)`` rules ("every a is (not) a b"); negated facts do not chain."""
    known = {start: True}
    frontier = [start]
    while frontier:
        c = frontier.pop()
        for a, b, pos in rules:
            if a == c and b not in known:
                known[b] = pos
                if pos:
                    frontier.append(b)
    return known


RESTATE = (
    "Okay, let me restate. We observe that {x} is a {obs}, and we need the option from which the rules "
    "lead to that.",
    "Let me read the problem again. The observation is that {x} is a {obs}, so I need the option whose "
    "rules end in {obs}.",
)
TRANSITION = ("Now, which rule leads to {c}?", "Let me go one step further back.", "Next, what makes something a {c}?")
TRAP = ("Careful: every {e} is not a {obs}, so a {e} would contradict the observation.",
        "Note that every {e} is not a {obs}; that rule leads away from the observation.")
CHECK = (
    "Let me double-check: if {x} were a {a}, {x} would be a {b}. Yes.",
    "Wait, is that the right direction? The rule goes from {a} to {b}. Good.",
)
FORWARD = ("Checking forward: {x} is a {path}, which matches the observation.",
           "Let me verify forward: {x} is a {path}. That is the observation.")
SUMMARY = ("So the hypothesis that explains the observation is {ans}.",
           "Putting it together, option {ans} explains why {x} is a {obs}.")


def _rule_text(a: str, b: str, pos: bool) -> str:
    return f"Every {a} is {'' if pos else 'not '}a {b}."


_RULE = re.compile(r"Every (\w+) is (not )?a (\w+)\.")


def _parse_rule(text: str) -> tuple[str, str, bool]:
    """``(a, b, positive)`` of a rule written by :func:`_rule_text`."""
    m = _RULE.fullmatch(text)
    if m is None:
        raise ValueError(f"abduction: not a rule: {text!r}")
    return m.group(1), m.group(3), m.group(2) is None


@register_task("abduction")
class AbductionTask(ChoiceFamily):
    """Pick the hypothesis that, with the rules, entails the observation (letter A-E); see the module doc."""

    group = "abductive"

    def _make(self, rng: random.Random, level: int) -> tuple[str, str, dict]:
        L = level
        x = rng.choice(NAMES)
        cats = rng.sample(CATEGORIES, 3 * L + 4)
        chain = cats[:L + 1]                   # chain[0] -> ... -> chain[L] (observed)
        neg = cats[L + 1:2 * L + 1]            # neg[0] -> ... -> neg[L-1] -/-> observed
        dead = cats[2 * L + 1:3 * L + 2]       # dead[0] -> ... -> dead[L]
        branch, above = cats[3 * L + 2], cats[3 * L + 3]
        obs = chain[-1]
        # one chain branches into `branch`, at a random node: the right chain is not the only one that forks
        fork = rng.choice(chain[:L] + neg + dead)
        rules = [(chain[i], chain[i + 1], True) for i in range(L)]
        rules += [(neg[i], neg[i + 1], True) for i in range(L - 1)] + [(neg[-1], obs, False)]
        rules += [(dead[i], dead[i + 1], True) for i in range(L)]
        rules += [(fork, branch, True), (obs, above, True)]
        rng.shuffle(rules)
        hyps = [chain[0], neg[0], dead[0], above, branch]
        rng.shuffle(hyps)
        gold = OPTION_LETTERS[hyps.index(chain[0])]
        explains = [h for h in hyps if closure(h, rules).get(obs) is True]
        if explains != [chain[0]]:
            raise RuntimeError(f"abduction: generator bug, options {explains} explain {obs} (want {chain[0]})")
        rule_texts = [_rule_text(*r) for r in rules]
        opts = [f"{k}) {x} is a {h}" for k, h in zip(OPTION_LETTERS, hyps)]
        question = (f"Rules: {' '.join(rule_texts)}\nObservation: {x} is a {obs}.\n"
                    f"Which hypothesis explains the observation?\n" + "\n".join(opts))
        meta = {"entity": x, "chain": chain, "trap": neg[-1], "options": hyps, "rules": rule_texts}
        return question, gold, meta

    # ------------------------------------------------------------------ oracle teacher

    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        return self._write(problem, style, seed, problem.meta["chain"], trap_seen=True)

    def flawed(self, problem: Problem, style: str, seed: int, rng: random.Random) -> FlawedTrace:
        """The trap taken: the negated rule into the observed category read without its "not", and the
        chain behind it followed back to its option (the one "a reader who skips the not" picks; see the
        module doc). The trace does not note the trap; its steps, forward check, summary and answer follow
        the wrong chain, which is as long as the right one. (``rng`` is not needed: each problem has one
        trap.)"""
        m = problem.meta
        obs, trap = m["chain"][-1], m["trap"]
        rules = [_parse_rule(t) for t in m["rules"]]
        wrong = [obs, trap]
        while True:  # backwards through the positive rules into the trap's chain, to its start
            into = [a for a, b, pos in rules if b == wrong[-1] and pos]
            if not into:
                break
            wrong.append(into[0])
        wrong.reverse()
        if wrong[0] not in m["options"]:
            raise ValueError(f"abduction: the trap's chain of {problem.id} does not start at an option ({wrong})")
        tr = self._write(problem, style, seed, wrong, trap_seen=False)
        detail = (f"read 'Every {trap} is not a {obs}.' as 'Every {trap} is a {obs}.' and followed it back to "
                  f"{wrong[0]}; the answer became {tr.answer} instead of {problem.answer}")
        return FlawedTrace(tr.reasoning, tr.answer, tr.sentences, tr.knowledge, mistake="trap", detail=detail)

    def _write(self, problem: Problem, style: str, seed: int, chain: list[str], trap_seen: bool) -> OracleTrace:
        """The trace back along ``chain`` (option first, observed category last: the right chain, or the
        trap's when it was taken); ``trap_seen`` writes the sentence that sets the trap aside."""
        m = problem.meta
        x, hyps = m["entity"], m["options"]
        obs = chain[-1]
        ans = OPTION_LETTERS[hyps.index(chain[0])]
        right = m["chain"]
        knowledge = ("A hypothesis explains an observation when the rules lead from it to the observation, "
                     "so follow the rules backwards from the observed category. Rules used: "
                     + " ".join(_rule_text(right[i], right[i + 1], True) for i in range(len(right) - 1)))
        if style == "none":
            return OracleTrace("", ans, [], knowledge)
        # backwards from the observation: (rule subject, rule object) for each step
        back = [(chain[i - 1], chain[i]) for i in range(len(chain) - 1, 0, -1)]
        step_lines = [f"Every {a} is a {b}, so {x} may be a {a}." for a, b in back]
        final = f"Option {ans} says {x} is a {chain[0]}."
        if style == "concise":
            lines = step_lines + [final]
            return OracleTrace("\n".join(lines), ans, [(s, "step", True) for s in lines], knowledge)
        if style != "long":
            raise ValueError(f"abduction oracle: unknown style {style!r} (styles: {', '.join(self.styles)})")
        rng = random.Random(f"{problem.id}/{seed}")
        sents: list[tuple[str, str, bool]] = [(rng.choice(RESTATE).format(x=x, obs=obs), "restate", False)]
        # self-checks on about a third of the steps (at least one)
        checked = {i for i in range(len(back)) if rng.random() < 1 / 3} or {rng.randrange(len(back))}
        for i, ((a, b), line) in enumerate(zip(back, step_lines)):
            if i:
                sents.append((rng.choice(TRANSITION).format(c=b), "transition", False))
            sents.append((line, "step", True))
            if i == 0:
                trap = rng.choice(TRAP).format(e=m["trap"], obs=obs)  # drawn either way: the same phrasing
                if trap_seen:
                    sents.append((trap, "check", False))
            if i in checked:
                sents.append((rng.choice(CHECK).format(x=x, a=a, b=b), "check", False))
        sents.append((final, "step", True))
        sents.append((rng.choice(FORWARD).format(x=x, path=", so a ".join(chain)), "check", False))
        sents.append((rng.choice(SUMMARY).format(ans=ans, x=x, obs=obs), "summary", False))
        return OracleTrace("\n".join(s for s, _, _ in sents), ans, sents, knowledge)
