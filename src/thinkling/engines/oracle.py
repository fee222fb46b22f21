"""The ``oracle`` engine: the built-in teacher of the synthetic tasks, a program rather than a model.

It answers from the request's problem, not from the prompt text: ``solve`` writes a trace in the chosen
style (long R1-like, concise, or the answer alone) with the task's own solver; the curation roles
``judge`` (the problem's level on the asked scale of ``tiers``), ``knowledge`` (the facts a solution
uses) and ``rewrite`` (a trace fitted to a words budget, DAP) read their inputs from ``context``. As a
model under evaluation it is a reference: it validates evidence instances and sets a ceiling in reports.
Usage counts words (there is no tokenizer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from thinkling.engines.base import Engine, EngineOptions, Reply, Request, register_engine, word_reply
from thinkling.tasks.base import SyntheticTask


class OracleOptions(EngineOptions):
    backend: Literal["oracle"] = "oracle"
    style: str = Field("long", description="trace style - long (R1-like), concise, none (answer only)")

    @classmethod
    def from_path(cls, path: str) -> dict:
        return {"style": path}

    def engine_id(self) -> str:
        return self.name or f"oracle:{self.style}"


@register_engine("oracle", OracleOptions)
class OracleEngine(Engine):
    """The synthetic tasks' solver writing traces in a chosen style (and playing judge, rewriter and
    knowledge writer for curation)."""

    def __init__(self, options: OracleOptions):
        self.style = options.style

    def check_task(self, task) -> None:
        if not isinstance(task, SyntheticTask):
            raise ValueError(f"the oracle teacher only knows synthetic tasks; {task.name!r} is not one")
        if self.style not in task.styles:
            raise ValueError(f"oracle style {self.style!r} unknown for {task.name}; styles: {', '.join(task.styles)}")

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
            tr = task.oracle(p, self.style, seed=r.seed)  # the sample index picks the phrasing
            return word_reply(r, tr.reasoning, tr.answer, sentences=tr.sentences, knowledge=tr.knowledge)
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
