"""``budget``: budget forcing (s1) - cap the thinking, then force ``</think>`` and let the model answer."""

from __future__ import annotations

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.engines import Reply, Request
from thinkling.evaluate.strategies.base import Context, Outcome, register_strategy, requests_for
from thinkling.format import THINK_CLOSE, split_thinking
from thinkling.records import Problem


class BudgetOptions(StageConfig):
    thinking_budget: int = Field(128, ge=1, description="generated tokens allowed before the thinking is cut")
    answer_tokens: int = Field(32, ge=1, description="tokens allowed for the answer after the forced </think>")
    close_text: str = Field("\n</think>\n", description="text appended to a cut thought (ends the thinking)")


@register_strategy("budget", BudgetOptions,
                   figures=lambda extras: {"forced_rate": sum(e["forced"] for e in extras) / len(extras)})
def budget(ctx: Context, problems: list[Problem], opts: BudgetOptions) -> list[Outcome]:
    """Budget forcing (s1): cap the thinking tokens, then force ``</think>`` and let the model answer."""
    first = ctx.run(requests_for(ctx.task, problems), max_tokens=opts.thinking_budget)
    cut = [i for i, c in enumerate(first)
           if c.truncated and not split_thinking(ctx.normalise(c.text))[2]]  # still inside its thinking
    close = opts.close_text.replace(THINK_CLOSE, ctx.think_tags[1])
    # a cut can fall inside a multi-byte character: transformers decodes its bytes as U+FFFD, vLLM holds
    # them back; dropping them makes the forced continuation the same text on every engine
    cont = ctx.run([Request(ctx.task.messages(problems[i]), problem=problems[i], task=ctx.task,
                            prefix=first[i].text.rstrip("\ufffd") + close) for i in cut],
                   max_tokens=opts.answer_tokens) if cut else []
    forced = dict(zip(cut, cont))
    outs = []
    for i, (p, c) in enumerate(zip(problems, first)):
        if i in forced:
            f = forced[i]
            c = Reply(text=f.text, finish_reason=f.finish_reason,
                      completion_tokens=c.completion_tokens + f.completion_tokens,
                      seconds=c.seconds + f.seconds)
        s = ctx.score(c, p.answer)
        outs.append(Outcome(p, [s], s.predicted, s.correct, {"forced": i in forced}))
    return outs
