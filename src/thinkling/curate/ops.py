"""Curation ops: named functions in a registry, each reporting what it kept and dropped, per reason.

An op takes the current examples and returns ``(kept, dropped)`` where ``dropped`` maps a reason
(``wrong_answer``, ``truncated``, ``duplicate``, ...) to the examples removed for it. Dropped
examples are never deleted from disk: the stage writes them beside the kept ones (incorrect traces
become ``negatives.jsonl``, which later training methods use).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from thinkling.records import Example
from thinkling.registry import Registry

OpResult = tuple[list[Example], dict[str, list[Example]]]


@dataclass
class OpContext:
    task: Any
    options: dict[str, Any] = field(default_factory=dict)


OPS: Registry[Callable[[list[Example], OpContext], OpResult]] = Registry("curation op")
register_op = OPS.register
get_op = OPS.get
op_names = OPS.names


@register_op("verify")
def verify(examples: list[Example], ctx: OpContext) -> OpResult:
    """Check each trace's final answer with the task's verifier.

    Truncated traces and traces whose answer cannot be parsed are dropped with their own reasons;
    wrong answers are dropped as ``wrong_answer`` (and kept on disk as negatives).
    """
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        if ex.meta.get("finish_reason", "stop") == "length":
            ex.correct = False
            dropped["truncated"].append(ex)
            continue
        pred = ctx.task.extract_answer(ex.answer)
        if ex.gold is None:
            ex.correct = None
            dropped["unparseable_gold"].append(ex)
            continue
        if pred is None:
            ex.correct = False
            dropped["unparseable"].append(ex)
            continue
        ex.correct = ctx.task.verify(pred, ex.gold)
        (kept if ex.correct else dropped["wrong_answer"]).append(ex)
    return kept, dict(dropped)


@register_op("dedup")
def dedup(examples: list[Example], ctx: OpContext) -> OpResult:
    """Drop exact duplicates of (question, reasoning, answer), keeping the first."""
    seen: set[tuple[str, str, str]] = set()
    kept, dups = [], []
    for ex in examples:
        k = (ex.question, ex.reasoning.strip(), ex.answer.strip())
        if k in seen:
            dups.append(ex)
        else:
            seen.add(k)
            kept.append(ex)
    return kept, {"duplicate": dups} if dups else {}


@register_op("select")
def select(examples: list[Example], ctx: OpContext) -> OpResult:
    """Length filter (``max_reasoning_words``), a cap of ``max_per_problem`` samples per problem,
    and per-difficulty mixing (``per_level``: that many examples of every level - a level with fewer
    is repeated, one with more is subsampled, both seeded; repeats get ids ``<id>#r<k>``)."""
    import random

    max_words = ctx.options.get("max_reasoning_words")
    cap = ctx.options.get("max_per_problem")
    per_level = ctx.options.get("per_level")
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    per_problem: dict[str, int] = defaultdict(int)
    for ex in examples:
        if max_words is not None and len(ex.reasoning.split()) > max_words:
            dropped["too_long"].append(ex)
            continue
        if cap is not None and per_problem[ex.problem_id] >= cap:
            dropped["over_cap"].append(ex)
            continue
        per_problem[ex.problem_id] += 1
        kept.append(ex)
    if per_level is None:
        return kept, dict(dropped)
    rng = random.Random(ctx.options.get("seed", 0))
    mixed: list[Example] = []
    for level in sorted({e.level for e in kept}):
        xs = [e for e in kept if e.level == level]
        if len(xs) >= per_level:
            chosen = set(rng.sample(range(len(xs)), per_level))
            mixed.extend(e for i, e in enumerate(xs) if i in chosen)
            dropped["level_mix"].extend(e for i, e in enumerate(xs) if i not in chosen)
        else:
            mixed.extend(xs)
            for k in range(per_level - len(xs)):
                src = xs[k % len(xs)]
                mixed.append(src.model_copy(update={"id": f"{src.id}#r{k // len(xs) + 1}"}))
    return mixed, {k: v for k, v in dropped.items() if v}
