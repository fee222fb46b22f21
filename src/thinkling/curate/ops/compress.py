"""``compress``: difficulty-aware compression (DAP) by a rewriting teacher, or teacher-free pruning of
the non-reasoning chunks."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, ask, register_op, teacher_request, words
from thinkling.engines import Request, SamplingParams, TeacherSpec
from thinkling.engines.oracle import OracleOptions
from thinkling.records import Example


REWRITE_PROMPT = (
    "Here is a problem and a correct solution. The problem's difficulty is {tier} on a scale of 1 to "
    "{tiers}. Rewrite the reasoning to at most {budget} words. {guidance} Keep every step that is needed "
    "to reach the answer and keep the same final answer; remove restatements of the problem, "
    "transitions, self-checks and summaries first.\n\n"
    "Problem:\n{question}\n\nSolution:\n{reasoning}\n\nFinal answer: {answer}\n\n"
    "Write the rewritten reasoning between <think> and </think>, then the final answer."
)
GUIDANCE = {
    "easy": "It is an easy problem: state only the computation that gives the answer.",
    "medium": "Keep the main steps, one short line each.",
    "hard": "It is a hard problem: keep every intermediate result, briefly.",
}


class CompressOptions(StageConfig):
    mode: Literal["rewrite", "prune"] = Field(
        "rewrite", description="rewrite: a teacher rewrites each trace to its difficulty's budget (DAP); "
        "prune: teacher-free, drop non-reasoning chunks found by the chunk op (run chunk first)")
    teacher: TeacherSpec = Field(default_factory=OracleOptions, description="rewrite: the rewriting teacher "
                                 "(the oracle plays it for synthetic tasks)")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=2048))
    budget_ratio: list[float] = Field(
        [0.25, 0.5, 0.75], description="rewrite: words budget per difficulty tier (tier 1 first) as a share of "
        "the original reasoning's words; tiers past the list use its last value")
    min_words: int = Field(8, ge=1, description="rewrite: never ask for fewer words than this")
    prompt: str = Field(REWRITE_PROMPT, description="rewrite prompt ({question} {reasoning} {answer} {tier} "
                        "{tiers} {budget} {guidance})")
    prune: list[Literal["none", "last", "ends", "all"]] = Field(
        ["none", "last", "ends"], description="prune: which non-reasoning chunks each tier keeps (tier 1 first): "
        "none, last (the conclusion), ends (first and last: restatement and conclusion), all (no pruning)")


def _tier_of(ex: Example, n_tiers: int) -> int:
    t = ex.meta.get("difficulty")
    return n_tiers if t is None else int(t)  # unrated: treated as hardest (compressed least)


@register_op("compress", CompressOptions)
def compress(examples: list[Example], ctx: OpContext) -> OpResult:
    """Difficulty-aware compression (DAP): rewrite each trace to a length budget set by its difficulty.

    ``rewrite``: the teacher gets the problem, trace, tier and budget. A rewrite that no longer
    reaches the verified answer (or fails) is rejected and the original is kept; both are counted.
    ``prune``: drop the non-reasoning chunks found by ``chunk``, more of them for easier tiers.
    Run ``difficulty`` first (without it every trace counts as hardest). The original reasoning is
    kept in ``meta.original_reasoning``; nothing is dropped.
    """
    opts: CompressOptions = ctx.options
    n_tiers = max([int(e.meta["difficulty"]) for e in examples if e.meta.get("difficulty")] + [len(opts.budget_ratio)])
    stats: dict[str, int] = defaultdict(int)
    out: list[Example] = []
    if opts.mode == "prune":
        for ex in examples:
            chunks = ex.meta.get("chunks")
            if chunks is None:
                raise ValueError(f"compress mode=prune needs chunk labels; run the chunk op before compress ({ex.id} has none)")
            policy = opts.prune[min(_tier_of(ex, len(opts.prune)), len(opts.prune)) - 1]
            non = [i for i, c in enumerate(chunks) if not c["reasoning"]]
            keep_non = {"none": set(), "all": set(non), "last": set(non[-1:]),
                        "ends": {i for i in non if i in (0, len(chunks) - 1)}}[policy]
            kept_chunks = [c for i, c in enumerate(chunks) if c["reasoning"] or i in keep_non]
            new = "".join(c["text"] for c in kept_chunks).strip()  # chunks carry their own separators
            stats["pruned_chunks"] += len(chunks) - len(kept_chunks)
            out.append(_rewritten(ex, new, ex.answer, stats))
        ctx.report.update(stats)
        return out, {}
    reqs: dict[str, Request] = {}
    budgets: dict[str, int] = {}
    for ex in examples:
        t = _tier_of(ex, n_tiers)
        ratio = opts.budget_ratio[min(t, len(opts.budget_ratio)) - 1]
        budget = max(opts.min_words, math.ceil(ratio * words(ex.reasoning)))
        budgets[ex.id] = budget
        name = "easy" if t == 1 else "hard" if t >= n_tiers else "medium"
        prompt = opts.prompt.format(question=ex.question, reasoning=ex.reasoning, answer=ex.answer, tier=t,
                                    tiers=n_tiers, budget=budget, guidance=GUIDANCE[name])
        reqs[ex.id] = teacher_request("rewrite", opts.teacher, opts.sampling, ctx.problems[ex.problem_id], prompt,
                                      budget_words=budget, sentences=ex.meta.get("sentences", []))
    replies = ask(ctx, opts.teacher, list(reqs.values()), "compress: rewriting")
    for ex in examples:
        rep = replies[reqs[ex.id].key]
        if isinstance(rep, Exception) or rep.finish_reason == "length" or not rep.answer.strip():
            stats["rewrite_failed"] += 1
            out.append(ex)
            continue
        ok = ctx.task.verify(ctx.task.extract_answer(rep.answer), ex.gold)
        if not ok:
            stats["rewrite_rejected"] += 1
            out.append(ex)
            continue
        if words(rep.reasoning) > budgets[ex.id]:
            stats["over_budget"] += 1
        new = _rewritten(ex, rep.reasoning, rep.answer, stats)
        if "sentences" in rep.meta:
            new.meta["sentences"] = rep.meta["sentences"]
        out.append(new)
    ctx.report.update(stats)
    return out, {}


def _rewritten(ex: Example, reasoning: str, answer: str, stats: dict[str, int]) -> Example:
    before, after = words(ex.reasoning), words(reasoning)
    stats["words_before"] += before
    stats["words_after"] += after
    stats["rewritten"] += 1
    meta = {k: v for k, v in ex.meta.items() if k not in ("chunks", "sentences")}  # they describe the old text
    meta["original_reasoning"] = ex.reasoning
    return ex.model_copy(update={"reasoning": reasoning, "answer": answer, "meta": meta})
