"""The ``reference`` engine: a dataset's own worked solutions as the teacher's traces (e.g. GSM8K's)."""

from __future__ import annotations

from typing import Literal

from thinkling.engines.base import Engine, EngineOptions, Reply, Request, register_engine, word_reply


class ReferenceOptions(EngineOptions):
    backend: Literal["reference"] = "reference"

    @classmethod
    def from_path(cls, path: str) -> dict:
        return {}

    def engine_id(self) -> str:
        # "reference:long" is the id earlier versions wrote (their flat teacher spec had a style, long by
        # default, even here); kept so that trace keys of existing runs stay valid
        return self.name or "reference:long"


@register_engine("reference", ReferenceOptions)
class ReferenceEngine(Engine):
    """The dataset's own reference solutions as traces (only the ``solve`` role)."""

    def __init__(self, options: ReferenceOptions):
        pass

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        out: list[Reply | Exception] = []
        for r in requests:
            if r.role != "solve":
                out.append(ValueError(f"the reference teacher only has the dataset's solutions; it cannot {r.role}"))
                continue
            tr = r.task.reference_trace(r.problem) if r.task is not None and r.problem is not None else None
            if tr is None:
                pid = r.problem.id if r.problem is not None else r.key
                out.append(ValueError(f"{pid}: the task has no reference solution for this problem"))
                continue
            out.append(word_reply(r, tr.reasoning, tr.answer))
        return out
