"""``greedy`` (one greedy completion) and ``adaptive`` (greedy, recording or forcing an adaptive student's
``<short>``/``<long>`` mode)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.evaluate.strategies.base import Context, NoOptions, Outcome, register_strategy, requests_for
from thinkling.format import MODE_MARKS, reply_mode
from thinkling.records import Problem


def _one_each(ctx: Context, problems: list[Problem], prefix: str = "") -> list[Outcome]:
    comps = ctx.run(requests_for(ctx.task, problems, prefix=prefix))
    outs = []
    for p, c in zip(problems, comps):
        s = ctx.score(c, p.answer)
        outs.append(Outcome(p, [s], s.predicted, s.correct, {"mode": reply_mode(c.text)}))
    return outs


@register_strategy("greedy")
def greedy(ctx: Context, problems: list[Problem], opts: NoOptions) -> list[Outcome]:
    """One greedy completion per problem."""
    return _one_each(ctx, problems)


class AdaptiveOptions(StageConfig):
    force: Literal["short", "long"] | None = Field(None, description="start every reply with this mode's marker "
                                                   "(None: the student picks)")


@register_strategy("adaptive", AdaptiveOptions)
def adaptive(ctx: Context, problems: list[Problem], opts: AdaptiveOptions) -> list[Outcome]:
    """Greedy; an adaptive student picks ``<short>`` or ``<long>`` itself (or is forced); the mode is recorded."""
    return _one_each(ctx, problems, prefix=MODE_MARKS.get(opts.force or "", ""))
