"""``select``: length filters, a cap per problem, and per-level (or per-tier) mixing."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, register_op, words
from thinkling.records import Example


class SelectOptions(StageConfig):
    max_reasoning_words: int | None = Field(None, ge=1, description="drop traces whose reasoning is longer")
    min_reasoning_words: int | None = Field(None, ge=0, description="drop traces whose reasoning is shorter")
    max_per_problem: int | None = Field(None, ge=1, description="keep at most N traces per problem")
    per_level: int | None = Field(
        None, ge=1, description="exactly this many examples per group (repeat or subsample, seeded)")
    by: Literal["level", "difficulty"] = Field(
        "level", description="per_level groups: the task's level, or the difficulty op's tier")
    seed: int = Field(0, description="seed for subsampling")


@register_op("select", SelectOptions)
def select(examples: list[Example], ctx: OpContext) -> OpResult:
    """Length filters, a cap of ``max_per_problem`` samples per problem, and per-difficulty mixing.

    ``per_level``: that many examples of every level (or difficulty tier) - a group with fewer is
    repeated, one with more is subsampled, both seeded; repeats get ids ``<id>#r<k>``.
    """
    o: SelectOptions = ctx.options
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    per_problem: dict[str, int] = defaultdict(int)
    for ex in examples:
        n = words(ex.reasoning)
        if o.max_reasoning_words is not None and n > o.max_reasoning_words:
            dropped["too_long"].append(ex)
            continue
        if o.min_reasoning_words is not None and n < o.min_reasoning_words:
            dropped["too_short"].append(ex)
            continue
        if o.max_per_problem is not None and per_problem[ex.problem_id] >= o.max_per_problem:
            dropped["over_cap"].append(ex)
            continue
        per_problem[ex.problem_id] += 1
        kept.append(ex)
    if o.per_level is None:
        return kept, dict(dropped)

    def group(e: Example) -> int:
        if o.by == "level":
            return e.level
        t = e.meta.get("difficulty")
        if t is None and "difficulty" not in e.meta:
            raise ValueError("select.by=difficulty needs the difficulty op before select")
        return 0 if t is None else int(t)

    rng = random.Random(o.seed)
    mixed: list[Example] = []
    for g in sorted({group(e) for e in kept}):
        xs = [e for e in kept if group(e) == g]
        if len(xs) >= o.per_level:
            chosen = set(rng.sample(range(len(xs)), o.per_level))
            mixed.extend(e for i, e in enumerate(xs) if i in chosen)
            dropped["level_mix"].extend(e for i, e in enumerate(xs) if i not in chosen)
        else:
            mixed.extend(xs)
            for k in range(o.per_level - len(xs)):
                src = xs[k % len(xs)]
                mixed.append(src.model_copy(update={"id": f"{src.id}#r{k // len(xs) + 1}"}))
    return mixed, {k: v for k, v in dropped.items() if v}
