"""Losses: plain functions in a registry, selected by name in config.

Signature: ``loss(student_logits, labels, teacher=None, **hp) -> (sum, n_tokens)`` where ``labels``
holds token ids with ``-100`` on positions that get no loss (already aligned with ``logits``: the
caller shifts). The training loop sums over micro-batches and ranks and divides *once* by the
global count of trained tokens (see :func:`normalize_by_global_tokens`): reasoning traces vary
10-100x in length, and a mean of per-batch means would silently overweight short ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from thinkling.registry import Registry

IGNORE = -100

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
