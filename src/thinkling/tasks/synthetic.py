"""What the synthetic families share: the seeded draw of a split, and the text of their oracle traces.

Every synthetic family (``arithmetic``, ``rules``, ``abduction``, ``induction``, ``evidence``) draws the
problems of one level of a split with :func:`draw_split`: a generator seeded by
``"{name}/{split}/{level}/{seed}"`` is drawn from until ``want`` distinct problems are found; a problem
belongs to the test split iff the hash :func:`bucket` of its key (the question text; for ``evidence`` the
instance, whatever the regime) is the test bucket (0 of 10), so train and test are disjoint by
construction; a repeated key is skipped. Ids are ``"{name}/{split}/L{level}/{seed}-{i}"`` in draw order.
The families differ only in what they ask for: ``arithmetic`` and ``evidence`` cap ``want`` by the size of
the split's space and accept fewer when the attempts run out; ``rules`` and the choice families raise.

:func:`oracle_texts` is the text a tiny tokenizer is trained on (tests, benchmarks): questions and oracle
traces of a synthetic task.

**Honest mistakes.** The oracle teacher with ``teacher.error_rate > 0`` writes some traces with one
mistake (:meth:`SyntheticFamily.flawed`), so that ``verify`` finds real wrong traces (REDI's negatives).
A family whose traces make a mistake natural overrides :meth:`~SyntheticFamily.flawed`: the mistake is
made at one step and the rest of the trace follows from it (same phrasing as the correct trace, another
final answer). The default, for a family without such a hook, is the fallback: the correct reasoning
with a wrong final answer (:meth:`~SyntheticFamily.wrong_answer`). Either way the answer is one the
family's verifier rejects, and a :class:`FlawedTrace` says what the mistake was.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from thinkling.format import format_assistant
from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, SyntheticTask, get_task

T = TypeVar("T")

DEFAULT_N = 100
"""Problems per level when a caller gives no ``n``."""


def bucket(text: str) -> int:
    """The hash bucket (0-9) of a text: SHA-256 of its UTF-8 bytes, modulo 10."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10


def check_split(name: str, split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"{name}: split must be 'train' or 'test', got {split!r}")


def _first(item) -> str:
    return item[0]


def draw_split(name: str, split: str, level: int, seed: int, draw: Callable[[random.Random], T], want: int,
               *, key: Callable[[T], str] = _first, test_bucket: int = 0,
               exact: bool = True) -> list[tuple[str, T]]:
    """(problem id, item) for up to ``want`` distinct draws of one level of ``split``.

    ``draw(rng)`` makes one item; ``key(item)`` (default: its first element, the question) decides the
    split (test iff ``bucket(key) == test_bucket``) and what counts as a repeat. After
    ``50 * want + 10_000`` draws an ``exact`` draw raises ValueError, any other returns what it found.
    """
    rng = random.Random(f"{name}/{split}/{level}/{seed}")
    test = split == "test"
    seen: set[str] = set()
    out: list[tuple[str, T]] = []
    attempts, limit = 0, 50 * want + 10_000
    while len(out) < want:
        if attempts >= limit:
            if exact:
                raise ValueError(f"{name}: cannot draw {want} distinct {split} problems at level {level}")
            break
        attempts += 1
        item = draw(rng)
        k = key(item)
        if test != (bucket(k) == test_bucket) or k in seen:
            continue
        seen.add(k)
        out.append((f"{name}/{split}/L{level}/{seed}-{len(out)}", item))
    return out


@dataclass
class FlawedTrace(OracleTrace):
    """An oracle trace with one honest mistake: ``mistake`` is its kind (``slip``, ``polarity``, ``trap``,
    ``twin``, ``guess``, or ``wrong_answer`` for the fallback), ``detail`` what went wrong, in words.
    Ground truth like the sentence annotations: generate stores it in the trace's ``meta.mistake``, and
    it is never shown to a student."""

    mistake: str = ""
    detail: str = ""


class SyntheticFamily(SyntheticTask):
    """A synthetic family drawn level by level: ``problems`` checks the split and each level (1 to
    ``max_level``) and asks :meth:`draw_level` for up to ``n`` problems of that level, in order."""

    max_level: int = 4

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        check_split(self.name, split)
        n = DEFAULT_N if n is None else n
        out: list[Problem] = []
        for level in levels or self.levels:
            if not 1 <= level <= self.max_level:
                raise ValueError(f"{self.name}: level must be in 1..{self.max_level}, got {level}")
            out += self.draw_level(split, level, n, seed)
        return out

    def draw_level(self, split: str, level: int, n: int, seed: int) -> list[Problem]:
        """Up to ``n`` problems of one level of ``split`` (with :func:`draw_split`)."""
        raise NotImplementedError

    def flawed(self, problem: Problem, style: str, seed: int, rng: random.Random) -> FlawedTrace:
        """The oracle's trace for ``problem`` in ``style`` with one honest mistake, chosen with ``rng``
        (seeded by the caller per problem, sample index and error seed); its answer is always one the
        verifier rejects.

        This default is the fallback for a family without a mistake hook: the correct trace's reasoning
        (phrasing picked by ``seed``, as in :meth:`oracle`) with a wrong final answer
        (:meth:`wrong_answer`), so the reasoning and the answer disagree. A family whose trace structure
        makes a mistake natural overrides it and makes the mistake in one step.
        """
        tr = self.oracle(problem, style, seed)
        wrong = self.wrong_answer(problem, rng)
        return FlawedTrace(tr.reasoning, wrong, tr.sentences, tr.knowledge, mistake="wrong_answer",
                           detail=f"the reasoning as written, then the final answer {wrong} instead of {tr.answer}")

    def wrong_answer(self, problem: Problem, rng: random.Random) -> str:
        """An answer the verifier rejects, for the fallback of :meth:`flawed`: for a number, the gold
        one more or one less. A family with other answers overrides it (or :meth:`flawed`)."""
        gold = problem.answer
        if self.answer_type == "number" and gold is not None and gold.lstrip("-").isdigit():
            return str(int(gold) + rng.choice((-1, 1)))
        raise ValueError(f"{self.name}: the oracle has no mistake for answers of type {self.answer_type!r} "
                         f"(gold {gold!r}); give the family a flawed() or wrong_answer() hook")


def oracle_texts(task: str = "arithmetic", n: int = 100, styles: tuple[str, ...] = ("long", "concise")) -> list[str]:
    """Questions and oracle traces of a synthetic task: the text a tiny tokenizer is trained on in
    tests and benchmarks (so they build the same kind of model the quickstart trains)."""
    t = get_task(task)
    texts: list[str] = []
    for p in t.problems("train", n=n):
        texts.append(p.question)
        for style in styles:
            tr = t.oracle(p, style)
            texts.append(format_assistant(tr.reasoning, tr.answer))
    return texts
