"""Training methods = a data source + a loss name, in a registry (no trainer subclasses).

A method turns curated :class:`~thinkling.records.Example` rows into tokenized rows
``{"input_ids", "labels"}`` (labels = ids where the mask is 1, else -100) and names its loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from thinkling.models.render import render
from thinkling.records import Example
from thinkling.registry import Registry
from thinkling.tasks.base import format_assistant
from thinkling.train.losses import IGNORE


@dataclass
class Method:
    name: str
    build_rows: Callable[..., list[dict]]
    loss: str
    doc: str


METHODS: Registry[Method] = Registry("training method")
get_method = METHODS.get
method_names = METHODS.names


def register_method(name: str, loss: str, doc: str):
    """Decorator registering a data-source function as method ``name`` with its loss."""

    def deco(fn):
        METHODS.add(name, Method(name, fn, loss, doc))
        return fn

    return deco


def to_row(ids: list[int], mask: list[int], max_len: int) -> dict | None:
    if len(ids) > max_len:
        return None
    labels = [t if m else IGNORE for t, m in zip(ids, mask)]
    return {"input_ids": ids, "labels": labels, "length": len(ids)}


@register_method("sft", loss="ce", doc="CoT distillation: loss on the assistant reply (reasoning + answer + end of turn).")
def sft_rows(examples: list[Example], tokenizer, max_len: int, task=None) -> list[dict]:
    rows = []
    for ex in examples:
        prompt = [{"role": "user", "content": ex.question}]
        ids, mask = render(tokenizer, prompt, format_assistant(ex.reasoning, ex.answer))
        row = to_row(ids, mask, max_len)
        if row is not None:
            row["id"] = ex.id
            rows.append(row)
    return rows
