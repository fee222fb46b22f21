"""``sample``: n sampled completions, the majority vote (self-consistency), unbiased pass@k and maj@k."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.evaluate.strategies.base import Context, Outcome, register_strategy, requests_for
from thinkling.records import Problem


class SampleOptions(StageConfig):
    n: int = Field(8, ge=1, description="samples per problem")
    temperature: float = Field(0.7, gt=0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1)
    k: list[int] = Field(default_factory=lambda: [1, 4, 8], description="k values for pass@k and maj@k (<= n)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def majority(preds: list[str | None], verify: Callable[[str, str], bool] | None = None) -> str | None:
    """The most common answer (None never votes); a tie goes to the answer seen first.

    With ``verify``, answers it calls equal vote together (``1/2`` and ``0.5``), counted under the
    first spelling seen.
    """
    groups: list[list[str]] = []
    for p in preds:
        if p is None:
            continue
        for g in groups:
            if p == g[0] or (verify is not None and verify(p, g[0])):
                g.append(p)
                break
        else:
            groups.append([p])
    if not groups:
        return None
    best = max(len(g) for g in groups)
    return next(g[0] for g in groups if len(g) == best)


def _figures(extras: list[dict[str, Any]]) -> dict[str, Any]:
    n, ks = len(extras), list(extras[0]["pass_at"])
    return {"pass_at": {k: sum(e["pass_at"][k] for e in extras) / n for k in ks},
            "maj_at": {k: sum(e["maj_at"][k] for e in extras) / n for k in ks}}


@register_strategy("sample", SampleOptions, calls=lambda o: o.n, figures=_figures)
def sample(ctx: Context, problems: list[Problem], opts: SampleOptions) -> list[Outcome]:
    """n sampled completions; majority vote (self-consistency), pass@k and maj@k."""
    bad = [k for k in opts.k if k > opts.n]
    if bad:
        raise ValueError(f"strategy sample: k={bad} exceeds n={opts.n}")
    asks = [a for j in range(opts.n) for a in requests_for(ctx.task, problems, seed=j)]
    comps = ctx.run(asks, temperature=opts.temperature, top_p=opts.top_p)
    outs = []
    m = len(problems)
    for i, p in enumerate(problems):
        ss = [ctx.score(comps[j * m + i], p.answer, sample=j) for j in range(opts.n)]
        preds = [s.predicted for s in ss]
        vote = majority(preds, ctx.task.verify)
        ok = vote is not None and ctx.task.verify(vote, p.answer)
        c = sum(s.correct for s in ss)
        maj = {}
        for k in opts.k:
            v = majority(preds[:k], ctx.task.verify)
            maj[str(k)] = v is not None and ctx.task.verify(v, p.answer)
        outs.append(Outcome(p, ss, vote, ok, {"n_correct": c,
                                              "pass_at": {str(k): pass_at_k(opts.n, c, k) for k in opts.k},
                                              "maj_at": maj}))
    return outs
