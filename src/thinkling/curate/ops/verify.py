"""``verify``: check each trace's final answer with the task's verifier; wrong answers become negatives."""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, register_op, words
from thinkling.records import Example


class VerifyOptions(StageConfig):
    keep_best: int | None = Field(
        None, ge=1, description="rejection sampling: keep at most this many correct traces per problem, "
        "shortest reasoning first (the rest are dropped as 'not_best')")


@register_op("verify", VerifyOptions)
def verify(examples: list[Example], ctx: OpContext) -> OpResult:
    """Check each trace's final answer with the task's verifier (math-verify for math, labels for logic).

    Truncated traces and traces whose answer cannot be parsed are dropped with their own reasons;
    wrong answers are dropped as ``wrong_answer`` (and kept on disk as negatives). A gold answer that
    cannot be parsed is ``unparseable_gold``: counted, never credited.
    """
    kept: list[Example] = []
    dropped: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        if ex.meta.get("finish_reason", "stop") == "length":
            ex.correct = False
            dropped["truncated"].append(ex)
            continue
        if ex.gold is None:
            ex.correct = None
            dropped["unparseable_gold"].append(ex)
            continue
        pred = ctx.task.extract_answer(ex.answer)
        if pred is None:
            ex.correct = False
            dropped["no_answer" if not ex.answer.strip() else "unparseable"].append(ex)
            continue
        ex.correct = ctx.task.verify(pred, ex.gold)
        (kept if ex.correct else dropped["wrong_answer"]).append(ex)
    k = ctx.options.keep_best
    if k is not None:
        by_problem: dict[str, list[Example]] = defaultdict(list)
        for ex in kept:
            by_problem[ex.problem_id].append(ex)
        best = {id(e) for xs in by_problem.values() for e in sorted(xs, key=lambda e: words(e.reasoning))[:k]}
        dropped["not_best"] = [e for e in kept if id(e) not in best]
        kept = [e for e in kept if id(e) in best]
    return kept, {r: xs for r, xs in dropped.items() if xs}
