"""Decoding strategies: how a model is asked, and how its completions become one answer per problem.

A strategy is a function in a registry with its own options (``@register_strategy(name, Options)``).
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

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.engines import Engine, Reply, Request, SamplingParams
from thinkling.format import (
    LORID_ADAPTERS, MODE_MARKS, THINK_CLOSE, THINK_TAGS, deep_question, normalise_tags, reply_mode, split_thinking,
)
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
    progress: Callable[[int], None] | None = None
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
        self.engine.progress = (lambda _: self.progress(1)) if self.progress is not None else None
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


STRATEGIES: Registry[StrategySpec] = Registry("eval strategy")


def register_strategy(name: str, options: type[StageConfig] = NoOptions, calls: Callable[[Any], int] = lambda o: 1):
    def deco(fn):
        doc = (fn.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
        STRATEGIES.add(name, StrategySpec(fn, options, doc, calls))
        return fn

    return deco


def _asks(task, problems: list[Problem], prefix: str = "", adapter: str | None = None, seed: int = 0) -> list[Request]:
    return [Request(task.messages(p), problem=p, task=task, prefix=prefix, adapter=adapter, seed=seed) for p in problems]


# ----------------------------------------------------------------------------- greedy / adaptive


def _one_each(ctx: Context, problems: list[Problem], prefix: str = "") -> list[Outcome]:
    comps = ctx.run(_asks(ctx.task, problems, prefix=prefix))
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


# ----------------------------------------------------------------------------- sampling


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


@register_strategy("sample", SampleOptions, calls=lambda o: o.n)
def sample(ctx: Context, problems: list[Problem], opts: SampleOptions) -> list[Outcome]:
    """n sampled completions; majority vote (self-consistency), pass@k and maj@k."""
    bad = [k for k in opts.k if k > opts.n]
    if bad:
        raise ValueError(f"strategy sample: k={bad} exceeds n={opts.n}")
    asks = [a for j in range(opts.n) for a in _asks(ctx.task, problems, seed=j)]
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


# ----------------------------------------------------------------------------- budget forcing


class BudgetOptions(StageConfig):
    thinking_budget: int = Field(128, ge=1, description="generated tokens allowed before the thinking is cut")
    answer_tokens: int = Field(32, ge=1, description="tokens allowed for the answer after the forced </think>")
    close_text: str = Field("\n</think>\n", description="text appended to a cut thought (ends the thinking)")


@register_strategy("budget", BudgetOptions)
def budget(ctx: Context, problems: list[Problem], opts: BudgetOptions) -> list[Outcome]:
    """Budget forcing (s1): cap the thinking tokens, then force ``</think>`` and let the model answer."""
    first = ctx.run(_asks(ctx.task, problems), max_tokens=opts.thinking_budget)
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


# ----------------------------------------------------------------------------- LoRID


class LoridOptions(StageConfig):
    max_iterations: int = Field(3, ge=1, description="rounds of IR vs KG->DR before the fallback")
    temperature: float = Field(0.7, gt=0, description="sampling temperature of the rounds after the first "
                               "(the first is greedy)")
    top_p: float = Field(0.95, gt=0, le=1)
    knowledge_tokens: int = Field(128, ge=1, description="cap for the Knowledge Generator's reply")
    fallback: Literal["deep", "intuitive"] = Field("deep", description="whose last answer counts when the two "
                                                   "never agree")


@register_strategy("lorid", LoridOptions, calls=lambda o: 3 * o.max_iterations)
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
        ir = ctx.run(_asks(ctx.task, todo, adapter="intuitive", seed=it), temperature=temp, top_p=top_p)
        kg = ctx.run(_asks(ctx.task, todo, adapter="knowledge", seed=it), max_tokens=opts.knowledge_tokens,
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


# ----------------------------------------------------------------------------- row extras


def row_extras(strategy: str, extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Strategy-specific figures for a results row, from its problems' ``Outcome.extra`` dicts."""
    n = len(extras) or 1
    out: dict[str, Any] = {}
    modes = [e.get("mode", "") for e in extras]
    if any(modes):  # an adaptive student: which mode it chose (or was given)
        out["short_mode_share"] = sum(m == "short" for m in modes) / n
        out["long_mode_share"] = sum(m == "long" for m in modes) / n
    if strategy == "sample":
        ks = list(extras[0]["pass_at"]) if extras else []
        out["pass_at"] = {k: sum(e["pass_at"][k] for e in extras) / n for k in ks}
        out["maj_at"] = {k: sum(e["maj_at"][k] for e in extras) / n for k in ks}
    elif strategy == "budget":
        out["forced_rate"] = sum(e["forced"] for e in extras) / n
    elif strategy == "lorid":
        its = Counter(e["iterations"] for e in extras)
        out["mean_iterations"] = sum(e["iterations"] for e in extras) / n
        out["iterations"] = {str(k): its[k] for k in sorted(its)}
        out["agreement_rate"] = sum(e["agreed"] for e in extras) / n
    return out
