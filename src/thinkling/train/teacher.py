"""The kd method's teacher: where it is (an input of the stage), loading it (same vocabulary as the
student), its view of a batch (online: its logits; offline: top-k log-probs precomputed once), and
:func:`prepare_kd`, the method's ``prepare`` hook that turns the ``kd`` options into an
:class:`~thinkling.train.interface.Objective`.

torch is imported inside the functions (it takes seconds to load).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from thinkling.models.loading import load_model
from thinkling.train.interface import Objective, Run

if TYPE_CHECKING:  # annotations only: the config's method check imports the methods, which import this
    from thinkling.train.config import TrainConfig


def teacher_inputs(cfg: TrainConfig) -> dict[str, str]:
    """The kd method's ``inputs`` hook: a local teacher dir is an input (a retrained teacher re-trains)."""
    return {"teacher": cfg.kd.teacher} if cfg.kd.teacher and Path(cfg.kd.teacher).is_dir() else {}


def load_teacher(cfg: TrainConfig, student, console):
    """The frozen teacher of ``kd.teacher``; its vocabulary must be the student's."""
    if not cfg.kd.teacher:
        raise ValueError("method kd needs kd.teacher (a model path or hub id with the student's tokenizer)")
    teacher = load_model(cfg.kd.teacher, cfg.dtype)
    tv, sv = teacher.get_output_embeddings().weight.shape[0], student.get_output_embeddings().weight.shape[0]
    if tv != sv:
        raise ValueError(f"kd.teacher {cfg.kd.teacher}: teacher vocabulary {tv} != student vocabulary {sv}; logit "
                         "distillation needs the same tokenizer (train the student with the teacher's tokenizer)")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    n = sum(p.numel() for p in teacher.parameters())
    console.print(f"[bold]kd[/]: teacher {cfg.kd.teacher} ({n / 1e6:.2f}M params), loss {cfg.kd.loss}"
                  + (f", offline top-{cfg.kd.top_k}" if cfg.kd.offline else ", online"))
    return teacher


def add_teacher_topk(rows: list[dict], teacher, k: int, console, tau: float = 1.0,
                     batch_size: int = 32) -> list[dict]:
    """Offline KD: the teacher's top-k log-probs (at temperature ``tau``) at every position of every
    row, computed once; the mass outside the top-k becomes the loss's 'rest' bucket."""
    import torch  # heavy

    order = sorted(range(len(rows)), key=lambda i: rows[i]["length"])
    out = [dict(r) for r in rows]
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            n = max(rows[i]["length"] for i in idx)
            ids = torch.zeros((len(idx), n), dtype=torch.long)
            att = torch.zeros((len(idx), n), dtype=torch.long)
            for j, i in enumerate(idx):
                L = rows[i]["length"]
                ids[j, :L] = torch.tensor(rows[i]["input_ids"])
                att[j, :L] = 1
            logp = torch.log_softmax(teacher(input_ids=ids, attention_mask=att).logits.float() / tau, dim=-1)
            top = logp.topk(k, dim=-1)
            for j, i in enumerate(idx):
                L = rows[i]["length"]
                out[i]["topk_ids"] = top.indices[j, :L].tolist()
                out[i]["topk_logprobs"] = [[round(x, 5) for x in v] for v in top.values[j, :L].tolist()]
    console.print(f"[bold]kd[/]: stored the teacher's top-{k} log-probs for {len(rows)} rows")
    return out


def online_logits(teacher):
    """The loss's teacher argument from a teacher in memory: its logits on the batch (no gradient)."""
    import torch  # heavy

    def view(batch: dict) -> dict:
        with torch.no_grad():
            t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return {"logits": t_logits[:, :-1, :]}

    return view


def stored_topk(tau: float):
    """The loss's teacher argument from the rows' stored top-k log-probs (stored at temperature ``tau``)."""

    def view(batch: dict) -> dict:
        return {"topk_ids": batch["topk_ids"][:, :-1], "topk_logprobs": batch["topk_logprobs"][:, :-1], "tau": tau}

    return view


def prepare_kd(run: Run, objective: Objective) -> Objective:
    """The kd method's ``prepare`` hook: load the teacher, set the divergence's hyper-parameters
    (and TAID's schedule of ``t``), and for ``kd.offline`` store the teacher's top-k log-probs on the
    rows and let the teacher go before training starts."""
    from thinkling.train.losses import TAIDSchedule  # imports torch

    kd = run.cfg.kd
    teacher = load_teacher(run.cfg, run.model, run.console)
    hp: dict = {"tau": kd.tau, "ce_weight": kd.ce_weight}
    if objective.loss == "kd_jsd":
        hp["beta"] = kd.beta
    schedule = status = None
    if objective.loss == "taid":
        schedule = TAIDSchedule(t_start=kd.taid_t_start, t_end=kd.taid_t_end, alpha=kd.taid_alpha, beta=kd.taid_beta)
        hp["t"] = schedule  # the loss reads float(t): the schedule's current t
        status = lambda: f"taid t {schedule.t:.3f}"  # noqa: E731
    n_teacher = sum(p.numel() for p in teacher.parameters())
    if kd.offline:  # one forward pass of the teacher over every row, before training: 2 N per token
        rows = add_teacher_topk(objective.rows, teacher, kd.top_k, run.console, tau=kd.tau)
        precompute = 2.0 * n_teacher * sum(r["length"] for r in rows)
        return replace(objective, rows=rows, hp=hp, teacher=stored_topk(kd.tau), schedule=schedule, status=status,
                       teacher_flops=precompute)
    return replace(objective, hp=hp, teacher=online_logits(teacher), schedule=schedule, status=status,
                   teacher_params=n_teacher)
