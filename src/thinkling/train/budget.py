"""Training budgets: how much compute a run may spend, how much it has spent, and what it consumed.

A budget is one of

- ``tokens``: forward tokens the student processes (prompt included, padding excluded, summed over
  every rank and micro-batch) - the Trainer's ``num_input_tokens_seen`` counted with
  ``include_num_input_tokens_seen="non_padding"``, which it gathers across ranks and saves in every
  checkpoint, so a resumed run continues the same count;
- ``flops``: those tokens times the FLOPs one token costs: ``6 * N_student`` (forward and backward)
  plus ``2 * N_teacher`` for a teacher run forward beside the student (online KD); an offline
  teacher's precomputation is counted once, as ``teacher_flops``, and spent first;
- ``minutes``: wall-clock time (what a busy machine changes: no recipe that states a claim uses it).

Tokens and FLOPs are exact and machine-independent: the same config and seed take the same steps on
any machine, busy or idle. The lr schedule (linear warmup, cosine to 10%) and the step schedules of a
loss (TAID's ``t``) run on the share of the budget spent; training stops after the optimizer step at
which it is all spent (so a run spends its budget plus at most one step). ``N`` counts every
parameter of the model (embeddings included: ``model.num_parameters()``), and for LoRA still the
whole model, since the forward and the activations' backward run through all of it.

No torch here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from thinkling.train.config import TrainConfig

Kind = Literal["tokens", "flops", "minutes"]


def flops_per_token(n_student: int, n_teacher_online: int = 0) -> float:
    """Training FLOPs per processed token: 6 N for the student, 2 N for a teacher's forward pass."""
    return 6.0 * n_student + 2.0 * n_teacher_online


@dataclass(frozen=True)
class Budget:
    """A training budget of ``total`` units of ``kind`` (see the module docstring)."""

    kind: Kind
    total: float
    flops_per_token: float = 0.0  # for kind flops
    already: float = 0.0  # flops spent before training (an offline teacher's precomputation)

    def share(self, parts: int) -> Budget:
        """One of ``parts`` equal shares (LoRID's adapters, trained one after the other)."""
        return Budget(self.kind, self.total / parts, self.flops_per_token, self.already / parts)

    def spent(self, tokens: int, seconds: float) -> float:
        """Units spent after ``tokens`` processed tokens and ``seconds`` of training."""
        if self.kind == "tokens":
            return float(tokens)
        if self.kind == "flops":
            return self.already + tokens * self.flops_per_token
        return seconds / 60.0

    def fraction(self, tokens: int, seconds: float) -> float:
        return min(self.spent(tokens, seconds) / self.total, 1.0)

    def describe(self, tokens: int, seconds: float) -> str:
        """E.g. ``1.21M of 4.00M tokens`` for the progress line."""
        unit = {"tokens": "tokens", "flops": "FLOPs", "minutes": "min"}[self.kind]
        if self.kind == "minutes":
            return f"{self.spent(tokens, seconds):.1f} of {self.total:.1f} min budget"
        return f"{human(self.spent(tokens, seconds))} of {human(self.total)} {unit}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "total": self.total}


def budget_of(cfg: TrainConfig, flops_per_tok: float, already_flops: float = 0.0) -> Budget | None:
    """The run's budget from its config (None: ``max_steps`` or ``epochs`` decide)."""
    if cfg.budget_tokens:
        return Budget("tokens", float(cfg.budget_tokens))
    if cfg.budget_flops:
        return Budget("flops", float(cfg.budget_flops), flops_per_tok, already_flops)
    if cfg.budget_minutes:
        return Budget("minutes", float(cfg.budget_minutes))
    return None


def lr_factor(frac: float, warmup: float) -> float:
    """Linear warmup over the first ``warmup`` share, then cosine decay to 10% at the end."""
    if warmup > 0 and frac < warmup:
        return max(frac / warmup, 0.01)
    p = (frac - warmup) / max(1 - warmup, 1e-9)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))


class Meter:
    """What a budgeted run has spent, read from the Trainer's state (tokens) and a clock started when
    training begins. ``bind`` gives it the Trainer once that exists (the schedule is built before)."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.trainer = None
        self.t0: float | None = None

    def bind(self, trainer) -> None:
        self.trainer = trainer

    def start(self) -> None:
        if self.t0 is None:
            self.t0 = time.time()

    @property
    def tokens(self) -> int:
        return int(self.trainer.state.num_input_tokens_seen) if self.trainer is not None else 0

    @property
    def seconds(self) -> float:
        return time.time() - self.t0 if self.t0 is not None else 0.0

    def fraction(self) -> float:
        return self.budget.fraction(self.tokens, self.seconds)

    def describe(self) -> str:
        return self.budget.describe(self.tokens, self.seconds)


def consumed(tokens: int, steps: int, seconds: float, flops_per_tok: float, teacher_flops: float = 0.0,
             budget: Budget | None = None) -> dict:
    """The manifest's ``compute``: what the run consumed (tokens, FLOPs, steps, seconds) and its budget."""
    return {"tokens": int(tokens), "flops": float(tokens * flops_per_tok + teacher_flops), "steps": int(steps),
            "seconds": round(float(seconds), 1), "flops_per_token": float(flops_per_tok),
            "teacher_flops": float(teacher_flops), "budget": budget.as_dict() if budget is not None else None}


def add_consumed(parts: list[dict], budget: Budget | None = None) -> dict:
    """Several fits' ``compute`` summed (LoRID's adapters)."""
    out = {k: sum(p[k] for p in parts) for k in ("tokens", "flops", "steps", "seconds", "teacher_flops")}
    out["seconds"] = round(out["seconds"], 1)
    out["flops_per_token"] = parts[0]["flops_per_token"] if parts else 0.0
    out["budget"] = budget.as_dict() if budget is not None else None
    return out


def human(x: float) -> str:
    """1234567 -> ``1.23M``."""
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suffix}"
    return f"{x:.0f}"
