"""What every strategy shares: the scored completion, the outcome per problem, the context a strategy
asks through, and the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from thinkling.config import StageConfig
from thinkling.engines import Engine, Reply, Request, SamplingParams
from thinkling.format import THINK_TAGS, normalise_tags
from thinkling.records import Problem
from thinkling.registry import Registry


@dataclass
class Scored:
    """One completion with its verdict. ``role`` names who wrote it (answer, intuitive, knowledge, deep)."""

    text: str
    tokens: int
    truncated: bool
    seconds: float
    predicted: str | None
    correct: bool
    role: str = "answer"
    sample: int = 0
    iteration: int = 0


@dataclass
class Outcome:
    problem: Problem
    samples: list[Scored]
    predicted: str | None
    correct: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:  # what answering this problem cost: every generated token, all calls
        return sum(s.tokens for s in self.samples)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.samples)

    @property
    def truncated(self) -> float:  # share of its answering completions that hit the cap
        xs = [s for s in self.samples if s.role != "knowledge"]
        return sum(s.truncated for s in xs) / len(xs) if xs else 0.0


class StrategyFailed(RuntimeError):
    """Some completions failed (e.g. the endpoint went away); ``errors`` lists them."""

    def __init__(self, errors: list[Exception]):
        first = errors[0]
        super().__init__(f"{len(errors)} completion(s) failed; first: {type(first).__name__}: {first}")
        self.errors = errors


@dataclass
class Context:
    """What a strategy asks through: the engine, the task, the token cap, the model's reasoning tags and the
    text its replies are started with (``reply_prefix``, e.g. a forced mode marker)."""

    engine: Engine
    task: Any
    max_tokens: int
    think_tags: tuple[str, str] = THINK_TAGS
    progress: Callable[[int], None] | None = None  # called with the number of completions just finished
    reply_prefix: str = ""

    def normalise(self, text: str) -> str:
        """The model's own reasoning tags as ``<think>``/``</think>``, so one split serves every model."""
        return normalise_tags(text, self.think_tags)

    def score(self, c: Reply, gold: str | None, **kw) -> Scored:
        pred, ok = self.task.score(self.normalise(c.text), gold)
        return Scored(text=c.text, tokens=c.completion_tokens, truncated=c.truncated, seconds=c.seconds,
                      predicted=pred, correct=ok, **kw)

    def run(self, asks: list[Request], max_tokens: int | None = None, temperature: float = 0.0,
            top_p: float = 1.0) -> list[Reply]:
        """One reply per request, all with these sampling parameters and the model's reply prefix first;
        any failure raises :class:`StrategyFailed`."""
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens or self.max_tokens)
        pre = self.reply_prefix
        asks = [replace(a, sampling=sampling, prefix=a.prefix if a.prefix.startswith(pre) else pre + a.prefix)
                for a in asks]
        self.engine.progress = (lambda _req, _rep: self.progress(1)) if self.progress is not None else None
        res = self.engine.generate(asks)
        errors = [r for r in res if isinstance(r, Exception)]
        if errors:
            raise StrategyFailed(errors)
        return res  # type: ignore[return-value]


class NoOptions(StageConfig):
    """No options."""


@dataclass
class StrategySpec:
    fn: Callable[[Context, list[Problem], Any], list[Outcome]]
    options: type[StageConfig]
    doc: str
    calls_per_problem: Callable[[Any], int] = lambda o: 1
    #: the strategy's own figures of a results row, from its problems' ``Outcome.extra`` dicts
    figures: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None


STRATEGIES: Registry[StrategySpec] = Registry("eval strategy")


def register_strategy(name: str, options: type[StageConfig] = NoOptions, calls: Callable[[Any], int] = lambda o: 1,
                      figures: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None):
    """Decorator registering ``fn(ctx, problems, options) -> [Outcome]`` as strategy ``name``: its options
    model, how many engine calls it makes per problem (the progress bar's total) and, optionally, the
    figures it adds to a results row (``figures(extras) -> dict``)."""

    def deco(fn):
        doc = (fn.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        STRATEGIES.add(name, StrategySpec(fn, options, doc, calls, figures))
        return fn

    return deco


def row_extras(strategy: str, extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Strategy-specific figures for a results row: the mode shares of an adaptive student (any strategy),
    then the strategy's own ``figures``."""
    n = len(extras) or 1
    out: dict[str, Any] = {}
    modes = [e.get("mode", "") for e in extras]
    if any(modes):  # an adaptive student: which mode it chose (or was given)
        out["short_mode_share"] = sum(m == "short" for m in modes) / n
        out["long_mode_share"] = sum(m == "long" for m in modes) / n
    figures = STRATEGIES.get(strategy).figures if strategy in STRATEGIES else None
    if figures is not None and extras:
        out.update(figures(extras))
    return out


def requests_for(task, problems: list[Problem], prefix: str = "", adapter: str | None = None,
                 seed: int = 0) -> list[Request]:
    """One request per problem, asking the task's prompt (the context sets the sampling)."""
    return [Request(task.messages(p), problem=p, task=task, prefix=prefix, adapter=adapter, seed=seed) for p in problems]
