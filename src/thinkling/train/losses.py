"""Losses: plain functions in a registry, selected by name in config.

Signature: ``loss(student_logits, labels, teacher=None, **hp) -> (sum, n_tokens)`` where ``labels``
holds token ids with ``-100`` on positions that get no loss (already aligned with ``logits``: the
caller shifts). The training loop sums over micro-batches and ranks and divides *once* by the
global count of trained tokens (see :func:`normalize_by_global_tokens`): reasoning traces vary
10-100x in length, and a mean of per-batch means would silently overweight short ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import SupportsFloat

import torch
import torch.nn.functional as F

from thinkling.registry import Registry
from thinkling.train.interface import IGNORE

LossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
LOSSES: Registry[LossFn] = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
loss_names = LOSSES.names


@register_loss("ce")
def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, teacher=None, **hp) -> tuple[torch.Tensor, torch.Tensor]:
    """Token cross-entropy summed over trained positions; an all-masked batch gives (0, 0)."""
    mask = labels != IGNORE
    n = mask.sum()
    if n == 0:
        return logits.sum() * 0.0, n
    loss = F.cross_entropy(logits[mask].float(), labels[mask], reduction="sum")
    return loss, n


def shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align next-token logits with labels: position t predicts token t+1."""
    return logits[:, :-1, :], labels[:, 1:]


def normalize_by_global_tokens(loss_fn: LossFn, **hp):
    """Wrap a registry loss as a transformers ``compute_loss_func``.

    The Trainer passes ``num_items_in_batch``: the count of trained tokens over all micro-batches of
    the optimizer step (and over all ranks when ``average_tokens_across_devices``). Dividing each
    micro-batch's *sum* by that global count makes the accumulated gradient the true per-token mean.
    """

    def compute_loss(outputs, labels, num_items_in_batch=None):
        logits, tgt = shift(outputs.logits, labels)
        total, n = loss_fn(logits, tgt, **hp)
        denom = num_items_in_batch if num_items_in_batch is not None else n
        if torch.is_tensor(denom):
            denom = denom.to(total.device).clamp(min=1)
        else:
            denom = max(int(denom), 1)
        return total / denom

    return compute_loss


# ============================================================================ distillation losses
#
# Shared by ``kd_fkl``, ``kd_rkl``, ``kd_jsd`` and ``taid`` (method ``kd``) and ``redi`` (method
# ``redi``). Every loss returns (sum over trained positions, count of trained positions); the loop
# divides once by the global count. docs/losses.md has the formulas, conventions and sources.

REST_FLOOR = 1e-12
"""Floor of the teacher's rest-bucket mass inside the log (top-k teacher): keeps reverse KL finite
when the stored top-k probabilities round to a total of 1."""

REDI_ALPHA = 0.8
"""REDI's weight of the negative traces (``reinforce_rejected_coef: 0.8`` in the authors' recipe)."""


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Compute in float32 at least (float64 stays float64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _zero(logits: torch.Tensor) -> torch.Tensor:
    """A zero connected to the graph (an all-masked micro-batch still takes part in backward)."""
    return logits.sum() * 0.0


def _check_vocab(v_teacher: int, v_student: int) -> None:
    if v_teacher != v_student:
        raise ValueError(f"teacher vocabulary {v_teacher} != student vocabulary {v_student}: "
                         "logit distillation needs a shared tokenizer")


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return tau


def shift_teacher(teacher: dict | None) -> dict | None:
    """Apply :func:`shift` to a teacher dict given on input positions (drop the last position), so it
    lines up with the shifted student logits."""
    if teacher is None:
        return None
    return {k: (v[:, :-1] if torch.is_tensor(v) and v.dim() >= 2 else v) for k, v in teacher.items()}


def teacher_distributions(logits: torch.Tensor, labels: torch.Tensor, teacher: dict | None, tau: float = 1.0,
                          name: str = "kd") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student and teacher log-probabilities over the same buckets at the trained positions.

    Returns ``(log_q, log_p, n)``: ``log_q`` [N, K] the student's (differentiable), ``log_p`` [N, K]
    the teacher's (no gradient), N = trained positions (labels != -100), n = N as a tensor.

    - ``{"logits": [B, T, V]}``: K = V, both ``log_softmax(logits / tau)``.
    - ``{"topk_ids": [B, T, k], "topk_logprobs": [B, T, k]}``: K = k + 1 buckets, the teacher's k
      tokens plus one *rest* bucket. Teacher rest = ``max(0, 1 - sum(exp(topk_logprobs)))`` (floored
      at :data:`REST_FLOOR` inside the log); student rest = its exact mass outside the same ids
      (``logsumexp`` of the other logits). When the ids cover the vocabulary (k = V) there is no rest
      bucket and the result equals the full-logit one. Stored log-probs cannot be re-tempered
      without the whole vocabulary: ``tau`` divides the student's logits only, and the teacher must
      have been stored at the same temperature (``teacher["tau"]``, default 1; a mismatch is an error).
    """
    if teacher is None:
        raise ValueError(f"{name} needs a teacher: {{'logits': ...}} or {{'topk_ids': ..., 'topk_logprobs': ...}}")
    tau = _check_tau(tau)
    V = logits.shape[-1]
    mask = labels != IGNORE
    n = mask.sum()
    s = _upcast(logits)[mask] / tau  # [N, V]
    if "logits" in teacher:
        t_logits = teacher["logits"]
        _check_vocab(t_logits.shape[-1], V)
        if t_logits.shape[:-1] != logits.shape[:-1]:
            raise ValueError(f"teacher logits {tuple(t_logits.shape)} not aligned with student logits "
                             f"{tuple(logits.shape)}")
        log_p = F.log_softmax(_upcast(t_logits.detach())[mask].to(s.dtype) / tau, dim=-1)
        return F.log_softmax(s, dim=-1), log_p, n
    if "topk_ids" not in teacher or "topk_logprobs" not in teacher:
        raise ValueError(f"{name}: teacher dict needs 'logits' or both 'topk_ids' and 'topk_logprobs', "
                         f"got {sorted(teacher)}")
    if "vocab_size" in teacher:
        _check_vocab(int(teacher["vocab_size"]), V)
    ids, tlp = teacher["topk_ids"], teacher["topk_logprobs"]
    if ids.shape != tlp.shape or ids.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"teacher top-k {tuple(ids.shape)} / {tuple(tlp.shape)} not aligned with student logits "
                         f"{tuple(logits.shape)}")
    k = ids.shape[-1]
    if k > V:
        raise ValueError(f"teacher top-k of {k} > student vocabulary {V}: logit distillation needs a shared tokenizer")
    stored_tau = float(teacher.get("tau", 1.0))
    if stored_tau != tau:
        raise ValueError(f"{name}: the top-k teacher was stored at temperature {stored_tau} (teacher['tau'], "
                         f"default 1) but tau={tau}: stored log-probs cannot be re-tempered (the normaliser needs "
                         "the whole vocabulary); store log_softmax(teacher_logits / tau) and set teacher['tau']")
    ids = ids[mask]
    bad = ids[(ids < 0) | (ids >= V)]
    if bad.numel():
        raise ValueError(f"teacher token id {int(bad[0])} outside student vocabulary {V}: "
                         "logit distillation needs a shared tokenizer")
    lse = torch.logsumexp(s, dim=-1, keepdim=True)
    log_q = s.gather(-1, ids) - lse
    log_p = _upcast(tlp.detach())[mask].to(s.dtype)
    if k < V:
        log_q_rest = torch.logsumexp(s.scatter(-1, ids, float("-inf")), dim=-1, keepdim=True) - lse
        p_rest = (1.0 - log_p.double().exp().sum(-1, keepdim=True)).clamp(min=0.0)
        log_p_rest = p_rest.clamp(min=REST_FLOOR).log().to(s.dtype)
        log_q = torch.cat([log_q, log_q_rest], dim=-1)
        log_p = torch.cat([log_p, log_p_rest], dim=-1)
    return log_q, log_p, n


def _kl_rows(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """KL(a || b) per row from log-probabilities."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


def generalized_jsd(log_p: torch.Tensor, log_q: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-row generalized JSD as in TRL's ``GKDTrainer.generalized_jsd_loss`` (p = teacher, q = student):

    ``m = beta * p + (1 - beta) * q``;  ``JSD_beta = beta * KL(p || m) + (1 - beta) * KL(q || m)``,
    and, as in TRL, the end points are the KLs themselves: ``beta = 0`` -> forward ``KL(p || q)``,
    ``beta = 1`` -> reverse ``KL(q || p)``. (Strictly inside (0, 1) the value is ~ ``beta * KL(p||q)``
    near 0 and ~ ``(1 - beta) * KL(q||p)`` near 1, so the end points are a jump, not a limit.)
    """
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if beta == 0.0:
        return _kl_rows(log_p, log_q)
    if beta == 1.0:
        return _kl_rows(log_q, log_p)
    log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log(1.0 - beta)]), dim=0)
    return beta * _kl_rows(log_p, log_m) + (1.0 - beta) * _kl_rows(log_q, log_m)


def mix_with_ce(kd_sum: torch.Tensor, ce_sum: torch.Tensor, ce_weight: float) -> torch.Tensor:
    """``(1 - ce_weight) * kd + ce_weight * ce``; both sums over the same trained positions."""
    ce_weight = float(ce_weight)
    if not 0.0 <= ce_weight <= 1.0:
        raise ValueError(f"ce_weight must be in [0, 1], got {ce_weight}")
    if ce_weight == 0.0:
        return kd_sum
    return (1.0 - ce_weight) * kd_sum + ce_weight * ce_sum


def _finish(logits, labels, per_pos: torch.Tensor, n: torch.Tensor, ce_weight: float):
    """Sum the per-position divergences and mix in CE on the same positions."""
    ce_weight = float(ce_weight)
    if not 0.0 <= ce_weight <= 1.0:
        raise ValueError(f"ce_weight must be in [0, 1], got {ce_weight}")
    if n == 0:
        return _zero(logits), n
    kd_sum = per_pos.sum()
    if ce_weight == 0.0:
        return kd_sum, n
    return mix_with_ce(kd_sum, cross_entropy(logits, labels)[0], ce_weight), n


@register_loss("kd_fkl")
def kd_forward_kl(logits: torch.Tensor, labels: torch.Tensor, teacher: dict | None = None, weights=None, *,
                  tau: float = 1.0, ce_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward KL ``KL(p_teacher || q_student)`` per trained position, summed (mode-covering).

    ``p = softmax(z_teacher / tau)``, ``q = softmax(z_student / tau)``; no ``tau**2`` factor (as TRL's
    GKD): raise the learning rate or the weight yourself if you want Hinton's scaling.
    """
    log_q, log_p, n = teacher_distributions(logits, labels, teacher, tau, "kd_fkl")
    return _finish(logits, labels, _kl_rows(log_p, log_q), n, ce_weight)


@register_loss("kd_rkl")
def kd_reverse_kl(logits: torch.Tensor, labels: torch.Tensor, teacher: dict | None = None, weights=None, *,
                  tau: float = 1.0, ce_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reverse KL ``KL(q_student || p_teacher)`` per trained position, summed (mode-seeking)."""
    log_q, log_p, n = teacher_distributions(logits, labels, teacher, tau, "kd_rkl")
    return _finish(logits, labels, _kl_rows(log_q, log_p), n, ce_weight)


@register_loss("kd_jsd")
def kd_jsd(logits: torch.Tensor, labels: torch.Tensor, teacher: dict | None = None, weights=None, *,
           beta: float = 0.5, tau: float = 1.0, ce_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized JSD (TRL's convention, see :func:`generalized_jsd`): ``beta = 0`` forward KL,
    ``beta = 1`` reverse KL, ``beta = 0.5`` symmetric in student and teacher."""
    log_q, log_p, n = teacher_distributions(logits, labels, teacher, tau, "kd_jsd")
    return _finish(logits, labels, generalized_jsd(log_p, log_q, beta), n, ce_weight)


@register_loss("taid")
def taid(logits: torch.Tensor, labels: torch.Tensor, teacher: dict | None = None, weights=None, *,
         t: float | SupportsFloat | None = None, tau: float = 1.0,
         ce_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """TAID (Shing et al., ICLR 2025): ``KL(p_t || q_student)`` with the interpolated target

    ``p_t = softmax(((1 - t) * stopgrad(z_student) + t * z_teacher) / tau)``

    (logit-space interpolation, as the official code: ``(1 - t) * logits.detach() + t * teacher_logits``).
    With a top-k teacher the interpolation runs over the k+1 bucket log-probs (exact when k = V).
    ``t`` is a float or anything ``float()`` accepts, e.g. a :class:`TAIDSchedule` that the loop
    updates once per optimizer step. At ``t = 1`` this is ``kd_fkl``; at ``t = 0`` the target is the
    detached student, so both the value and the gradient are 0 (the gradient is ``(q - p_t) / tau``).
    The official code computes the cross-entropy ``-sum p_t log q``: same gradient, value larger by
    the entropy ``H(p_t)``.
    """
    if t is None:
        raise ValueError("taid needs the interpolation hp 't' (a float in [0, 1] or a TAIDSchedule)")
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"taid: t must be in [0, 1], got {t}")
    log_q, log_p, n = teacher_distributions(logits, labels, teacher, tau, "taid")
    log_target = F.log_softmax((1.0 - t) * log_q.detach() + t * log_p, dim=-1)
    return _finish(logits, labels, _kl_rows(log_target, log_q), n, ce_weight)


class TAIDSchedule:
    """TAID's adaptive interpolation parameter ``t`` (official ``TAID.update_t``), one update per step.

    After each optimizer step call ``update(loss, step, total_steps)`` with that step's loss::

        rel   = (prev_loss - loss) / (prev_loss + 1e-15)        # relative decrease of the objective
        m     = beta * m + (1 - beta) * rel                      # momentum
        delta = alpha * sigmoid(m) * (1 - t)
        t_lin = t_start + (t_end - t_start) * step / total_steps
        t     = min(t_end, max(t_lin, t + delta))                # adaptive (never below the line)
        t     = t_lin                                            # adaptive=False (linear fallback)

    The first call only records the loss (as the official code does; in linear mode ``t`` is set to
    ``t_lin`` on every call). ``t`` never decreases and never exceeds ``t_end``; a loss that drops
    fast moves ``t`` faster. Defaults are the official ones. ``float(schedule)`` is the current ``t``,
    so the schedule itself can be passed as the ``taid`` loss hp ``t``. With a Trainer use
    :meth:`observe` per micro-batch and :meth:`step` per optimizer step instead of :meth:`update`.
    """

    def __init__(self, t_start: float = 0.4, t_end: float = 1.0, alpha: float = 5e-4, beta: float = 0.99,
                 adaptive: bool = True):
        if not 0.0 <= t_start < 1.0:
            raise ValueError(f"t_start must be in [0, 1), got {t_start}")
        if not (0.0 < t_end <= 1.0 and t_end >= t_start):
            raise ValueError(f"t_end must be in (0, 1] and >= t_start, got {t_end}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.t_start, self.t_end, self.alpha, self.beta, self.adaptive = t_start, t_end, alpha, beta, adaptive
        self.t = float(t_start)
        self.momentum = 0.0
        self.prev_loss: float | None = None
        self._pending, self._n_pending = 0.0, 0  # losses observed during the current step

    def __float__(self) -> float:
        return self.t

    def __repr__(self) -> str:
        return f"TAIDSchedule(t={self.t:.4f}, momentum={self.momentum:.4g}, adaptive={self.adaptive})"

    def linear(self, step: int, total_steps: int) -> float:
        if total_steps <= 0:
            raise ValueError(f"total_steps must be > 0, got {total_steps}")
        progress = min(max(step / total_steps, 0.0), 1.0)
        return self.t_start + (self.t_end - self.t_start) * progress

    def update(self, loss: float, step: int, total_steps: int) -> float:
        """Advance ``t`` after optimizer step ``step`` (1-based, ``total_steps`` in all); returns ``t``."""
        loss = float(loss)
        t_lin = self.linear(step, total_steps)
        if not self.adaptive:
            self.t = t_lin
            self.prev_loss = loss
            return self.t
        if self.prev_loss is None or not math.isfinite(self.prev_loss):
            self.prev_loss = loss
            return self.t
        rel = (self.prev_loss - loss) / (self.prev_loss + 1e-15)
        self.momentum = self.beta * self.momentum + (1.0 - self.beta) * rel
        delta = self.alpha * (1.0 / (1.0 + math.exp(-self.momentum))) * (1.0 - self.t)
        self.t = min(self.t_end, max(t_lin, self.t + delta))
        self.prev_loss = loss
        return self.t

    # -- for a Trainer: observe() every micro-batch's loss, step() once the optimizer has stepped --

    def observe(self, micro_batch_loss: float) -> None:
        """Add one micro-batch's loss (its sum / the global token count): they add up to the step's loss.
        (The update uses a ratio of losses, so a constant scale on the loss does not matter.)"""
        self._pending += float(micro_batch_loss)
        self._n_pending += 1

    def step(self, step: int, total_steps: int) -> float:
        """:meth:`update` with the losses observed since the last step; ``t`` is unchanged if none were."""
        if not self._n_pending:
            return self.t
        loss, self._pending, self._n_pending = self._pending, 0.0, 0
        return self.update(loss, step, total_steps)

    def state_dict(self) -> dict:
        return {"t": self.t, "momentum": self.momentum, "prev_loss": self.prev_loss}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.momentum, self.prev_loss = float(state["t"]), float(state["momentum"]), state["prev_loss"]


def redi_weights(positive, alpha: float = REDI_ALPHA) -> torch.Tensor:
    """Per-sequence REDI weights: +1 for a positive (correct) trace, ``-alpha`` for a negative one."""
    pos = torch.as_tensor(positive, dtype=torch.bool)
    return torch.where(pos, torch.tensor(1.0), torch.tensor(-float(alpha)))


@register_loss("redi")
def redi(logits: torch.Tensor, labels: torch.Tensor, teacher=None, weights: torch.Tensor | None = None,
         **hp) -> tuple[torch.Tensor, torch.Tensor]:
    """REDI (Xu et al. 2025), token-level form: ``sum_i w_i * sum_{t in y_i} -log q(y_it)``, n = tokens.

    ``weights`` [B]: +1 for a positive trace, ``-alpha`` for a negative one (:func:`redi_weights`;
    the paper's alpha is 0.8). A positive's tokens count +NLL (likelihood pushed up), a negative's
    ``-alpha * NLL`` (pushed down). With all weights +1 this is exactly ``ce``.

    DEVIATION from the paper, on purpose: the paper normalises each sequence by its own length
    (``-log pi(y_w)/|y_w| + alpha * log pi(y_l)/|y_l|``, averaged over pairs). Here every token counts
    once and the loop divides by the global count of trained tokens, like every other loss, so the
    result does not depend on how a batch is split into micro-batches. Long traces weigh in
    proportion to their length.
    """
    if hp:
        raise TypeError(f"redi: unexpected hyperparameters {sorted(hp)} (alpha goes into the weights)")
    if weights is None:
        raise ValueError("redi needs per-sequence weights (+1 positive, -alpha negative)")
    weights = torch.as_tensor(weights)
    if weights.shape != labels.shape[:1]:
        raise ValueError(f"redi: weights {tuple(weights.shape)} must be one per sequence {tuple(labels.shape[:1])}")
    mask = labels != IGNORE
    n = mask.sum()
    if n == 0:
        return _zero(logits), n
    lp = _upcast(logits)[mask]
    nll = F.cross_entropy(lp, labels[mask], reduction="none")
    w = weights.to(device=lp.device, dtype=lp.dtype)[:, None].expand_as(labels)[mask]
    return (w * nll).sum(), n
