"""Decoding strategies: how a model is asked, and how its completions become one answer per problem.

A strategy is a function in a registry with its own options (``@register_strategy(name, Options)``), one
module per strategy here, found by :func:`~thinkling.registry.discover`.
It gets a :class:`Context` (the engine, the task, the token cap) and the problems, and returns one
:class:`Outcome` per problem: every completion it generated (scored), the answer it settled on, and
what that cost in generated tokens.

``greedy``    one greedy completion.
``sample``    ``n`` sampled completions: the answer is the majority vote (self-consistency); rows also
              report unbiased pass@k and maj@k for each ``k``.
``budget``    budget forcing: think for at most ``thinking_budget`` tokens; a completion still thinking
              then gets ``</think>`` appended and is continued for at most ``answer_tokens`` to answer.
``adaptive``  greedy, recording which mode (``<short>``/``<long>``) an adaptive student chose; ``force``
              starts the reply with one instead.
``lorid``     LoRID's consistency loop on one base with three adapters: the Intuitive Reasoner answers;
              the Knowledge Generator writes the knowledge and the Deep Reasoner answers with it. When
              the two answers agree the loop stops; otherwise both are sampled again, up to
              ``max_iterations`` rounds. Fallback when they never agree: ``fallback`` (default the Deep
              Reasoner's last answer). Rows report the iterations taken.
"""

from thinkling.evaluate.strategies.base import (
    STRATEGIES, Context, NoOptions, Outcome, Scored, StrategyFailed, StrategySpec, register_strategy, row_extras,
)
from thinkling.evaluate.strategies.lorid import LoridOptions, lorid
from thinkling.evaluate.strategies.sample import majority, pass_at_k
from thinkling.registry import discover

discover(__name__)

__all__ = [
    "STRATEGIES", "Context", "LoridOptions", "NoOptions", "Outcome", "Scored", "StrategyFailed", "StrategySpec",
    "lorid", "majority", "pass_at_k", "register_strategy", "row_extras",
]
