"""``lorid``: LoRID's consistency loop over a LoRID model's three adapters."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.engines import Request
from thinkling.evaluate.strategies.base import Context, Outcome, Scored, register_strategy, requests_for
from thinkling.format import LORID_ADAPTERS, deep_question, split_thinking
from thinkling.records import Problem


class LoridOptions(StageConfig):
    max_iterations: int = Field(3, ge=1, description="rounds of IR vs KG->DR before the fallback")
    temperature: float = Field(0.7, gt=0, description="sampling temperature of the rounds after the first "
                               "(the first is greedy)")
    top_p: float = Field(0.95, gt=0, le=1)
    knowledge_tokens: int = Field(128, ge=1, description="cap for the Knowledge Generator's reply")
    fallback: Literal["deep", "intuitive"] = Field("deep", description="whose last answer counts when the two "
                                                   "never agree")


def _figures(extras: list[dict[str, Any]]) -> dict[str, Any]:
    n, its = len(extras), Counter(e["iterations"] for e in extras)
    return {"mean_iterations": sum(e["iterations"] for e in extras) / n,
            "iterations": {str(k): its[k] for k in sorted(its)},
            "agreement_rate": sum(e["agreed"] for e in extras) / n}


@register_strategy("lorid", LoridOptions, calls=lambda o: 3 * o.max_iterations, figures=_figures)
def lorid(ctx: Context, problems: list[Problem], opts: LoridOptions) -> list[Outcome]:
    """LoRID's consistency loop: IR vs KG -> DR on one base with adapter switching, until they agree."""
    missing = [a for a in LORID_ADAPTERS if a not in ctx.engine.adapters]
    if missing:
        raise ValueError(f"strategy lorid needs a LoRID model with adapters {', '.join(LORID_ADAPTERS)}; this one "
                         f"has {', '.join(ctx.engine.adapters) or 'none'} (train with method lorid, and evaluate its "
                         "output dir with backend hf, or serve it and use backend openai)")
    samples: dict[str, list[Scored]] = {p.id: [] for p in problems}
    last: dict[str, dict[str, Scored]] = {}
    done: dict[str, tuple[str | None, int, bool]] = {}  # id -> (answer, iterations, agreed)
    todo = list(problems)
    for it in range(opts.max_iterations):
        temp, top_p = (0.0, 1.0) if it == 0 else (opts.temperature, opts.top_p)
        ir = ctx.run(requests_for(ctx.task, todo, adapter="intuitive", seed=it), temperature=temp, top_p=top_p)
        kg = ctx.run(requests_for(ctx.task, todo, adapter="knowledge", seed=it), max_tokens=opts.knowledge_tokens,
                     temperature=temp, top_p=top_p)
        deep_asks = []
        for p, k in zip(todo, kg):
            knowledge = split_thinking(ctx.normalise(k.text))[1]
            q = p.model_copy(update={"question": deep_question(p.question, knowledge)})
            deep_asks.append(Request(ctx.task.messages(q), problem=p, task=ctx.task, adapter="deep", seed=it))
        dr = ctx.run(deep_asks, temperature=temp, top_p=top_p)
        still = []
        for p, a, k, d in zip(todo, ir, kg, dr):
            s_ir = ctx.score(a, p.answer, role="intuitive", iteration=it + 1)
            s_kg = Scored(text=k.text, tokens=k.completion_tokens, truncated=k.truncated, seconds=k.seconds, predicted=None,
                          correct=False, role="knowledge", iteration=it + 1)
            s_dr = ctx.score(d, p.answer, role="deep", iteration=it + 1)
            samples[p.id] += [s_ir, s_kg, s_dr]
            last[p.id] = {"intuitive": s_ir, "deep": s_dr}
            if s_ir.predicted is not None and ctx.task.verify(s_ir.predicted, s_dr.predicted):
                done[p.id] = (s_dr.predicted, it + 1, True)
            else:
                still.append(p)
        todo = still
        if not todo:
            break
    for p in todo:
        done[p.id] = (last[p.id][opts.fallback].predicted, opts.max_iterations, False)
    outs = []
    for p in problems:
        ans, its, agreed = done[p.id]
        ok = ans is not None and ctx.task.verify(ans, p.answer)
        outs.append(Outcome(p, samples[p.id], ans, ok, {"iterations": its, "agreed": agreed}))
    return outs
