"""What passes between the train loop and a method's hooks: the row format, :class:`Run`,
:class:`Objective` and :class:`Fitted` (how methods use them: ``methods.py``). No torch here.

A row is a dict ``{"input_ids", "labels", "length"}`` (``labels`` = the ids where the loss falls,
:data:`IGNORE` elsewhere) plus optional per-row fields the collator knows (``weight``, ``topk_ids``,
``topk_logprobs``) and bookkeeping the Trainer never sees (``id``, ``adapter``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from thinkling.train.config import TrainConfig

IGNORE = -100
"""Label of a position that gets no loss (the value transformers and torch use)."""


@dataclass
class Run:
    """One training run as a method's hooks see it, once the student is loaded and its rows built."""

    cfg: TrainConfig
    model: Any  # the student (a transformers PreTrainedModel)
    tokenizer: Any
    rows: list[dict]  # what the method's data source built
    out: Path
    dist: Any  # accelerate's PartialState: is_main_process, main_process_first()
    console: Any
    data_counts: dict  # examples, rows, dropped_over_max_len: the manifest's counts start with these
    trained_tokens: int  # loss-bearing tokens in one pass over the rows
    n_params: int


class StepSchedule(Protocol):
    """Something the loss reads that moves once per optimizer step (TAID's ``t``)."""

    def observe(self, micro_batch_loss: float) -> None: ...

    def step(self, step: int, total_steps: int) -> float: ...


@dataclass
class Objective:
    """What the fit minimises: a registry loss with its hyper-parameters over ``rows``."""

    rows: list[dict]
    loss: str  # a name in the loss registry (losses.py)
    hp: dict = field(default_factory=dict)  # keyword hyper-parameters of the loss
    teacher: Callable[[dict], dict] | None = None
    """batch -> the loss's ``teacher`` argument. The batch holds ``input_ids``, ``attention_mask`` and
    the collated per-row fields (``weights``, ``topk_ids``, ``topk_logprobs``)."""
    schedule: StepSchedule | None = None  # observed every micro-batch, stepped every optimizer step
    status: Callable[[], str] | None = None  # a few words for the progress line (e.g. taid's t)
    teacher_params: int = 0  # a teacher run forward on every batch (online kd): 2 N FLOPs per token
    teacher_flops: float = 0.0  # compute spent before training on the student's behalf (offline kd's top-k)


@dataclass
class Fitted:
    """What a fit leaves for the manifest (the loop writes it, last)."""

    counts: dict
    extra: dict | None = None  # top-level manifest fields beside counts (loss_history, pid)
