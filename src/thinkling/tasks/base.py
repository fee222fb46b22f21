"""The Task interface: a task owns its problems, prompt rendering, answer extraction and verifier.

The same verifier filters teacher traces (curate), scores evaluations and would score RL rewards.
Unparseable gold or predictions are ``None`` and are never credited.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from thinkling.format import split_thinking
from thinkling.records import Problem
from thinkling.registry import Registry


@dataclass
class OracleTrace:
    """What the built-in teacher writes: the reasoning, the answer, and sentence annotations.

    ``sentences`` lists (text, kind, is_reasoning); kinds are e.g. ``restate``, ``step``, ``check``,
    ``transition``, ``summary``. Curation ops use the annotations as ground truth to measure
    chunk labelling; they are never shown to a student.
    """

    reasoning: str
    answer: str
    sentences: list[tuple[str, str, bool]] = field(default_factory=list)
    knowledge: str = ""


class Task(ABC):
    """A family of problems with a verifier. Subclasses register with :func:`register_task`."""

    name: str = "task"
    answer_type: str = "text"
    levels: tuple[int, ...] = (1,)
    group: str = ""  # reasoning group of the LogiGLUE-style report: "deductive", "abductive", "inductive" or ""

    @abstractmethod
    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        """Problems of a split; ``n`` per level for synthetic tasks, total for file tasks."""

    @property
    def label(self) -> str:
        """The name the task goes by in results, units and reports: its registry name, unless an instance
        says otherwise (the user tasks' ``label`` option, default their file's name), so that two tasks
        of one registered kind in one evaluation can be told apart."""
        return self.name

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat messages sent to a model (teacher or student) for a problem."""
        return [{"role": "user", "content": problem.question}]

    @abstractmethod
    def extract_answer(self, text: str) -> str | None:
        """Normalised answer from a final answer text, or None when there is none."""

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        """True only when both parse and match. Unparseable gold is never credited."""
        if predicted is None or gold is None:
            return False
        return predicted == gold

    def reference_trace(self, problem: Problem) -> OracleTrace | None:
        """The dataset's own worked solution as a trace, when the task has one."""
        return None

    def score(self, completion: str, gold: str | None) -> tuple[str | None, bool]:
        """Extract from a full completion (reasoning stripped first) and verify."""
        _, final, closed = split_thinking(completion)
        if not closed:
            return None, False
        pred = self.extract_answer(final)
        return pred, self.verify(pred, gold)


class SyntheticTask(Task):
    """A programmatic task whose built-in oracle teacher can write traces in several styles."""

    styles: tuple[str, ...] = ("long", "concise", "none")

    # sentence kinds an oracle rewriter drops first when a trace must fit a length budget
    drop_order: tuple[str, ...] = ("transition", "restate", "check", "summary")

    @abstractmethod
    def oracle(self, problem: Problem, style: str, seed: int = 0) -> OracleTrace:
        """The oracle teacher's trace for ``problem`` in ``style``."""

    def rewrite(self, problem: Problem, sentences: list, budget_words: int) -> OracleTrace:
        """The oracle as a DAP rewriter: fit an annotated trace into ``budget_words`` words.

        Sentence kinds are dropped in ``drop_order`` (transitions first, the summary last) until the
        trace fits; steps that carry the reasoning are never dropped, so when even the steps alone are
        over budget the result is the steps alone (longer than asked, and counted as such by the op).
        ``sentences`` are the trace's own annotations; without them the concise trace is returned.
        """
        if not sentences:
            return self.oracle(problem, "concise")
        kept = [tuple(s) for s in sentences]

        def words(xs) -> int:
            return sum(len(t.split()) for t, _, _ in xs)

        for kind in self.drop_order:
            if words(kept) <= budget_words:
                break
            kept = [s for s in kept if s[1] != kind]
        answer = self.oracle(problem, "none").answer
        return OracleTrace("\n".join(t for t, _, _ in kept), answer, kept)


TASKS: Registry[type[Task]] = Registry("task")
task_names = TASKS.names


def register_task(name: str):
    def deco(cls: type[Task]) -> type[Task]:
        cls.name = name
        return TASKS.add(name, cls)

    return deco


def get_task(name: str, **options) -> Task:
    return TASKS.get(name)(**options)


def sample_problems(problems: list[Problem], key: str, n: int | None, levels: list[int] | None,
                    seed: int) -> list[Problem]:
    """Problems filtered by level; with ``n``, a seeded sample of ``n`` of them kept in their order
    (file tasks are often sorted by subject, so a prefix would not do). ``key`` names the draw."""
    if levels:
        problems = [p for p in problems if p.level in levels]
    if n is not None and n < len(problems):
        keep = sorted(random.Random(f"{key}/{seed}").sample(range(len(problems)), n))
        problems = [problems[i] for i in keep]
    return problems

