"""The ``oracle`` engine: the built-in teacher of the synthetic tasks, a program rather than a model.

It answers from the request's problem, not from the prompt text: ``solve`` writes a trace in the chosen
style (long R1-like, concise, or the answer alone) with the task's own solver; the curation roles
``judge`` (the problem's level on the asked scale of ``tiers``), ``knowledge`` (the facts a solution
uses) and ``rewrite`` (a trace fitted to a words budget, DAP) read their inputs from ``context``. As a
model under evaluation it is a reference: it validates evidence instances and sets a ceiling in reports.
Usage counts words (there is no tokenizer).

With ``error_rate`` > 0 the oracle makes honest mistakes: each ``solve`` request is drawn flawed with that
probability, from a generator seeded by (problem id, sample index, ``error_seed``) - the same request
is flawed or not whatever the batch, the run or the style - and a flawed one is written by the family's
:meth:`~thinkling.tasks.synthetic.SyntheticFamily.flawed` (one mistake carried through the trace, or
the fallback: a wrong final answer after the right reasoning). Its answer is one the task's verifier
rejects, so curate's ``verify`` routes it to ``negatives.jsonl`` (REDI's negatives); the reply's
``meta.mistake`` says what the mistake was (kept in the raw trace, never shown to a student). At the
default 0 nothing is drawn and every reply is the one the oracle always wrote.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, model_serializer

from thinkling.engines.base import Engine, EngineOptions, Reply, Request, register_engine, word_reply
from thinkling.tasks.base import SyntheticTask
from thinkling.tasks.synthetic import SyntheticFamily


class OracleOptions(EngineOptions):
    backend: Literal["oracle"] = "oracle"
    style: str = Field("long", description="trace style - long (R1-like), concise, none (answer only)")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of solve replies written with one honest "
                              "mistake and a wrong answer (verify's negatives, for redi); 0 = always right")
    error_seed: int = Field(0, description="seeds which replies are flawed and how (with the problem id and the "
                            "sample index)")

    @model_serializer(mode="wrap")
    def _without_default_errors(self, handler):
        # an oracle that makes no mistakes dumps as it did before error_rate existed (its error_seed then
        # changes nothing), so the config hashes, manifests and eval unit keys of earlier runs stay valid
        d = handler(self)
        if isinstance(d, dict) and not self.error_rate:
            d.pop("error_rate", None)
            d.pop("error_seed", None)
        return d

    @classmethod
    def from_path(cls, path: str) -> dict:
        return {"style": path}

    def engine_id(self) -> str:
        """``oracle:<style>``; a teacher that makes mistakes says so (``oracle:long:err0.3``, ``:seed1``), so its
        replies never share keys with the correct ones."""
        if self.name:
            return self.name
        if not self.error_rate:
            return f"oracle:{self.style}"
        return f"oracle:{self.style}:err{self.error_rate:g}" + (f":seed{self.error_seed}" if self.error_seed else "")


@register_engine("oracle", OracleOptions)
class OracleEngine(Engine):
    """The synthetic tasks' solver writing traces in a chosen style (and playing judge, rewriter and
    knowledge writer for curation)."""

    def __init__(self, options: OracleOptions):
        self.style = options.style
        self.error_rate = options.error_rate
        self.error_seed = options.error_seed

    def check_task(self, task) -> None:
        if not isinstance(task, SyntheticTask):
            raise ValueError(f"the oracle teacher only knows synthetic tasks; {task.name!r} is not one")
        if self.style not in task.styles:
            raise ValueError(f"oracle style {self.style!r} unknown for {task.name}; styles: {', '.join(task.styles)}")
        if self.error_rate and not isinstance(task, SyntheticFamily):
            raise ValueError(f"the oracle cannot make mistakes on {task.name!r} (not a synthetic family with "
                             "flawed()); set teacher.error_rate=0")

    def mistake(self, r: Request) -> random.Random | None:
        """The generator of a flawed reply when request ``r`` is drawn flawed, else None: seeded by (problem id,
        sample index, error seed) only, so the draw does not depend on batching, order or style."""
        if not self.error_rate:
            return None
        rng = random.Random(f"oracle-mistake/{r.problem.id}/{r.seed}/{self.error_seed}")
        return rng if rng.random() < self.error_rate else None

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        out: list[Reply | Exception] = []
        for r in requests:
            try:
                out.append(self._one(r))
            except (KeyError, ValueError) as e:
                out.append(e)
        return out

    def _one(self, r: Request) -> Reply:
        task, p = r.task, r.problem
        if not isinstance(task, SyntheticTask) or p is None:
            raise ValueError(f"the oracle only solves problems of synthetic tasks, not "
                             f"{getattr(task, 'name', task)!r}")
        if r.logprobs is not None:
            raise ValueError("the oracle has no log-probs (it is a program, not a model)")
        if r.role == "solve":
            rng = self.mistake(r)
            if rng is None:
                tr = task.oracle(p, self.style, seed=r.seed)  # the sample index picks the phrasing
                return word_reply(r, tr.reasoning, tr.answer, sentences=tr.sentences, knowledge=tr.knowledge)
            if not isinstance(task, SyntheticFamily):
                raise ValueError(f"the oracle cannot make mistakes on {task.name!r} (not a synthetic family)")
            fl = task.flawed(p, self.style, seed=r.seed, rng=rng)
            return word_reply(r, fl.reasoning, fl.answer, sentences=fl.sentences, knowledge=fl.knowledge,
                              mistake={"kind": fl.mistake, "detail": fl.detail})
        if r.role == "judge":  # the oracle knows how many steps a problem takes: its level, on the asked scale
            tiers = int(r.context["tiers"])
            top = max(task.levels)
            return word_reply(r, "", str(max(1, -(-p.level * tiers // top))))
        if r.role == "knowledge":
            return word_reply(r, "", task.oracle(p, "none").knowledge)
        if r.role == "rewrite":
            tr = task.rewrite(p, r.context["sentences"], int(r.context["budget_words"]))
            return word_reply(r, tr.reasoning, tr.answer, sentences=tr.sentences)
        raise ValueError(f"the oracle teacher has no role {r.role!r}")
