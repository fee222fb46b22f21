"""Losses: cross-entropy summed and divided once by the global token count, the distillation losses
(``kd_fkl``, ``kd_rkl``, ``kd_jsd``, ``taid``, ``redi``) and the TAID schedule.

Layer 1 (analytic: known values, a direct numpy computation, end points, masks, errors, gradient
sanity), layer 2 (reference equivalence) and layer 4 (loss and gradient invariance across micro-batch
splits, also on a real model) of the house style. Everything is tiny and in float64 where a tolerance
is tight.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import conversations
from thinkling.models.render import render
from thinkling.train.losses import (
    IGNORE, REDI_ALPHA, TAIDSchedule, cross_entropy, generalized_jsd, get_loss, loss_names, mix_with_ce,
    normalize_by_global_tokens, redi_weights, shift, shift_teacher,
)


# ----------------------------------------------------------------------------- cross-entropy: analytic


def test_loss_registry():
    assert "ce" in loss_names()
    assert get_loss("ce") is cross_entropy
    with pytest.raises(KeyError):
        get_loss("kl_magic")


def test_ce_of_an_all_masked_batch_is_zero_not_nan():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    labels = torch.full((2, 5), IGNORE)
    total, n = cross_entropy(logits, labels)
    assert n.item() == 0
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()
    assert torch.count_nonzero(logits.grad) == 0
    wrapped = normalize_by_global_tokens(cross_entropy)
    for denom in (None, 0, torch.tensor(0)):
        loss = wrapped(SimpleNamespace(logits=torch.randn(2, 5, 7)), torch.full((2, 5), IGNORE), num_items_in_batch=denom)
        assert torch.isfinite(loss) and loss.item() == 0.0


def test_ce_analytic_values():
    V = 8
    labels = torch.tensor([[1, 2, IGNORE, 3]])
    total, n = cross_entropy(torch.zeros(1, 4, V), labels)  # uniform logits: log V per token
    assert n.item() == 3
    assert total.item() == pytest.approx(3 * torch.log(torch.tensor(float(V))).item(), rel=1e-6)
    logits = torch.randn(3, 6, V)
    labels = torch.randint(0, V, (3, 6))
    labels[0, :4] = IGNORE
    total, n = cross_entropy(logits, labels)
    ref = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")
    assert total.item() == pytest.approx(ref.item(), rel=1e-6)
    assert n.item() == int((labels != IGNORE).sum())


def test_shift_aligns_position_t_with_token_t_plus_1():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    labels = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    lg, lb = shift(logits, labels)
    assert lg.shape == (2, 3, 3) and lb.tolist() == [[11, 12, 13], [21, 22, 23]]
    assert torch.equal(lg, logits[:, :3])


# ----------------------------------------------------------------------------- cross-entropy: reference equivalence


def _batch(lengths: list[int], V: int = 13, prompt: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    logits = torch.randn(len(lengths), T, V, generator=g)
    labels = torch.full((len(lengths), T), IGNORE)
    for i, L in enumerate(lengths):
        labels[i, :L] = torch.randint(0, V, (L,), generator=g)
        labels[i, :prompt] = IGNORE  # prompt tokens get no loss
    return logits, labels


def _reference_mean(logits, labels) -> float:
    lg, lb = shift(logits, labels)
    m = lb != IGNORE
    return F.cross_entropy(lg[m], lb[m]).item()


@pytest.mark.parametrize("splits", [[[0], [1], [2], [3]], [[0, 1], [2, 3]], [[1], [0, 2, 3]], [[0, 1, 2, 3]]])
@pytest.mark.parametrize("as_tensor", [True, False])
def test_split_batches_sum_to_the_unsplit_per_token_mean(splits, as_tensor):
    """Summing micro-batch losses divided by the global count == the per-token mean of the whole batch,
    even when examples differ ~30x in length and each micro-batch is padded to its own length."""
    lengths = [4, 120, 9, 60]
    logits, labels = _batch(lengths)
    ref = _reference_mean(logits, labels)
    N = int((labels[:, 1:] != IGNORE).sum())
    fn = normalize_by_global_tokens(get_loss("ce"))
    total = 0.0
    for idx in splits:
        T = max(lengths[i] for i in idx)  # pad to the micro-batch's own longest row
        out = SimpleNamespace(logits=logits[idx, :T])
        total += fn(out, labels[idx, :T], num_items_in_batch=torch.tensor(N) if as_tensor else N).item()
    assert total == pytest.approx(ref, rel=1e-5)


def test_mean_of_micro_batch_means_would_differ():
    """Sanity: the naive per-micro-batch mean (no global count) is measurably wrong on this batch,
    so the equivalence test above can fail."""
    lengths = [4, 120, 9, 60]
    logits, labels = _batch(lengths)
    ref = _reference_mean(logits, labels)
    fn = normalize_by_global_tokens(get_loss("ce"))
    naive = sum(fn(SimpleNamespace(logits=logits[[i]]), labels[[i]]).item() for i in range(4)) / 4
    assert abs(naive - ref) > 1e-3


def test_without_global_count_a_micro_batch_is_its_own_per_token_mean():
    logits, labels = _batch([30, 7])
    fn = normalize_by_global_tokens(get_loss("ce"))
    assert fn(SimpleNamespace(logits=logits), labels).item() == pytest.approx(_reference_mean(logits, labels), rel=1e-5)


# ----------------------------------------------------------------------------- cross-entropy: invariance on a real model


def test_loss_and_gradients_invariant_to_micro_batch_split(tiny_model, tokenizer):
    """Layer 4: one optimizer step's loss and gradient do not depend on how the batch is split into
    micro-batches (each padded to its own length), with examples of very different lengths."""
    from thinkling.models.loading import load_model
    from thinkling.train.trainer import Collator

    model = load_model(str(tiny_model))
    model.train()
    rows = []
    convs = conversations()
    for prompt, reply in [convs[0], convs[1], convs[2], convs[4]]:  # long, concise, none, concise
        ids, mask = render(tokenizer, prompt, reply)
        rows.append({"input_ids": ids, "labels": [t if m else IGNORE for t, m in zip(ids, mask)]})
    lengths = [sum(x != IGNORE for x in r["labels"]) for r in rows]
    assert max(lengths) > 5 * min(lengths)
    collate = Collator(tokenizer.pad_token_id)
    fn = normalize_by_global_tokens(get_loss("ce"))
    N = sum(lengths)  # labels[0] is a prompt token, so shifted and unshifted counts agree

    def step(groups):
        model.zero_grad()
        total = 0.0
        for g in groups:
            b = collate([rows[i] for i in g])
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            loss = fn(out, b["labels"], num_items_in_batch=N)
            loss.backward()
            total += loss.item()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return total, grads

    loss_full, g_full = step([[0, 1, 2, 3]])
    for groups in ([[0], [1], [2], [3]], [[1, 2], [0, 3]]):
        loss_split, g_split = step(groups)
        assert loss_split == pytest.approx(loss_full, rel=1e-5)
        assert torch.allclose(g_split, g_full, rtol=1e-4, atol=1e-7)
        assert (g_split - g_full).norm() / g_full.norm() < 1e-5


# ----------------------------------------------------------------------------- distillation losses


KD = ["kd_fkl", "kd_rkl", "kd_jsd", "taid"]
# (loss, hp) pairs covering every divergence and the end points of beta and t
CASES = [("kd_fkl", {}), ("kd_rkl", {}), ("kd_jsd", {"beta": 0.0}), ("kd_jsd", {"beta": 0.3}),
         ("kd_jsd", {"beta": 0.5}), ("kd_jsd", {"beta": 1.0}), ("taid", {"t": 0.0}), ("taid", {"t": 0.4}),
         ("taid", {"t": 1.0})]
CASE_IDS = [f"{n}-{'-'.join(f'{k}{v}' for k, v in hp.items())}" for n, hp in CASES]


def _case(B=2, T=6, V=11, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    zs = torch.randn(B, T, V, generator=g, dtype=dtype) * 1.5
    zt = torch.randn(B, T, V, generator=g, dtype=dtype) * 2.0
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[0, :2] = IGNORE
    labels[1, -1] = IGNORE
    return zs, zt, labels


def _topk(zt: torch.Tensor, k: int) -> dict:
    lp = torch.log_softmax(zt, dim=-1)
    vals, ids = lp.topk(k, dim=-1)
    return {"topk_ids": ids, "topk_logprobs": vals}


def _loss(name, zs, labels, teacher, **hp):
    return get_loss(name)(zs, labels, teacher=teacher, **hp)


# ----------------------------------------------------------------------------- distillation losses: a numpy reference


def _np_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _np_kl(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    nz = a > 0
    return float((a[nz] * np.log(a[nz] / b[nz])).sum())


def _np_div(name, p, q, hp):
    """Divergence between teacher p and student q (probability vectors over the same buckets)."""
    if name == "kd_fkl":
        return _np_kl(p, q)
    if name == "kd_rkl":
        return _np_kl(q, p)
    if name == "kd_jsd":
        b = hp["beta"]
        if b == 0:
            return _np_kl(p, q)
        if b == 1:
            return _np_kl(q, p)
        m = b * p + (1 - b) * q
        return b * _np_kl(p, m) + (1 - b) * _np_kl(q, m)
    if name == "taid":  # interpolate in log space (logits up to a constant), renormalise
        t = hp["t"]
        pt = _np_softmax((1 - t) * np.log(q) + t * np.log(p))
        return _np_kl(pt, q)
    raise AssertionError(name)


def _np_reference(name, zs, zt, labels, hp, tau=1.0, k=None):
    """Sum over trained positions, position by position, in numpy float64."""
    zs, zt, labels = zs.detach().double().numpy(), zt.detach().double().numpy(), labels.numpy()
    total = 0.0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[b, t] == IGNORE:
                continue
            q = _np_softmax(zs[b, t] / tau)
            p = _np_softmax(zt[b, t] / tau)
            if k is not None:  # k teacher buckets + one rest bucket
                ids = np.argsort(-p)[:k]
                rest = np.setdiff1d(np.arange(len(p)), ids)
                p = np.append(p[ids], max(0.0, 1.0 - p[ids].sum()))
                q = np.append(q[ids], q[rest].sum())
            total += _np_div(name, p, q, hp)
    return total


# ----------------------------------------------------------------------------- distillation losses: analytic


def test_registry_names_every_distillation_loss():
    assert set(KD + ["redi", "ce"]) <= set(loss_names())


@pytest.mark.parametrize("name,hp", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kind", ["logits", "topk"])
def test_identical_distributions_give_zero(name, hp, kind):
    zs, _, labels = _case()
    teacher = {"logits": zs.clone()} if kind == "logits" else _topk(zs, 4)
    total, n = _loss(name, zs, labels, teacher, **hp)
    assert n.item() == int((labels != IGNORE).sum())
    assert abs(total.item()) < 1e-10


@pytest.mark.parametrize("name,hp", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_values_match_a_direct_numpy_computation(name, hp, tau):
    zs, zt, labels = _case(seed=1)
    total, _ = _loss(name, zs, labels, {"logits": zt}, tau=tau, **hp)
    assert total.item() == pytest.approx(_np_reference(name, zs, zt, labels, hp, tau=tau), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name,hp", CASES, ids=CASE_IDS)
def test_topk_rest_bucket_matches_numpy(name, hp):
    zs, zt, labels = _case(seed=2)
    total, _ = _loss(name, zs, labels, _topk(zt, 3), **hp)
    assert total.item() == pytest.approx(_np_reference(name, zs, zt, labels, hp, k=3), rel=1e-9, abs=1e-12)


def test_jsd_at_half_is_symmetric_in_student_and_teacher():
    zs, zt, labels = _case(seed=3)
    ab, _ = _loss("kd_jsd", zs, labels, {"logits": zt}, beta=0.5)
    ba, _ = _loss("kd_jsd", zt, labels, {"logits": zs}, beta=0.5)
    assert ab.item() > 0.1
    assert ab.item() == pytest.approx(ba.item(), rel=1e-12)
    # any other beta is not symmetric
    ab3, _ = _loss("kd_jsd", zs, labels, {"logits": zt}, beta=0.3)
    ba3, _ = _loss("kd_jsd", zt, labels, {"logits": zs}, beta=0.3)
    assert abs(ab3.item() - ba3.item()) > 1e-3


def test_jsd_end_points_are_the_two_kls_trl_convention():
    """beta=0 -> forward KL(teacher||student), beta=1 -> reverse KL(student||teacher), as TRL's
    generalized_jsd_loss; just inside the interval the value is ~beta*KL (a jump, not a limit)."""
    zs, zt, labels = _case(seed=4)
    teacher = {"logits": zt}
    fkl, _ = _loss("kd_fkl", zs, labels, teacher)
    rkl, _ = _loss("kd_rkl", zs, labels, teacher)
    assert abs(fkl.item() - rkl.item()) > 1e-2  # the two KLs differ on this case
    assert _loss("kd_jsd", zs, labels, teacher, beta=0.0)[0].item() == pytest.approx(fkl.item(), rel=1e-12)
    assert _loss("kd_jsd", zs, labels, teacher, beta=1.0)[0].item() == pytest.approx(rkl.item(), rel=1e-12)
    eps = 1e-4
    assert _loss("kd_jsd", zs, labels, teacher, beta=eps)[0].item() == pytest.approx(eps * fkl.item(), rel=1e-2)
    assert _loss("kd_jsd", zs, labels, teacher, beta=1 - eps)[0].item() == pytest.approx(eps * rkl.item(), rel=1e-2)
    with pytest.raises(ValueError, match="beta"):
        _loss("kd_jsd", zs, labels, teacher, beta=1.5)


def test_generalized_jsd_is_bounded_by_log_2_at_half():
    a = torch.log_softmax(torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64), -1)
    b = torch.log_softmax(torch.tensor([[0.0, 0.0, 30.0]], dtype=torch.float64), -1)
    assert generalized_jsd(a, b, 0.5).item() == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("kind", ["logits", "topk"])
def test_taid_at_t1_is_forward_kl(kind):
    zs, zt, labels = _case(seed=5)
    teacher = {"logits": zt} if kind == "logits" else _topk(zt, 4)
    taid1, _ = _loss("taid", zs, labels, teacher, t=1.0)
    fkl, _ = _loss("kd_fkl", zs, labels, teacher)
    assert taid1.item() == pytest.approx(fkl.item(), rel=1e-12)


def test_taid_at_t0_has_zero_value_and_zero_gradient():
    """The target is the detached student: KL(sg(q) || q) = 0 and its gradient (q - sg(q))/tau = 0.
    TAID learns nothing at t = 0; it needs t > 0 (the schedule starts at t_start = 0.4)."""
    zs, zt, labels = _case(seed=6)
    zs.requires_grad_(True)
    total, _ = _loss("taid", zs, labels, {"logits": zt}, t=0.0)
    total.backward()
    assert total.item() == 0.0 or abs(total.item()) < 1e-12
    assert zs.grad.abs().max().item() < 1e-12
    # whereas at t > 0 the gradient points the student toward the teacher
    zs.grad = None
    _loss("taid", zs, labels, {"logits": zt}, t=0.4)[0].backward()
    assert zs.grad.abs().max().item() > 1e-3


def test_taid_target_interpolates_logits_not_probabilities():
    """p_t = softmax((1-t) z_s + t z_t): a geometric, not arithmetic, mixture of q and p."""
    zs = torch.tensor([[[2.0, 0.0, -1.0]]], dtype=torch.float64)
    zt = torch.tensor([[[-1.0, 3.0, 0.5]]], dtype=torch.float64)
    labels = torch.tensor([[0]])
    t = 0.3
    q = torch.softmax(zs[0, 0], -1)
    pt = torch.softmax((1 - t) * zs[0, 0] + t * zt[0, 0], -1)
    want = (pt * (pt.log() - q.log())).sum().item()
    assert _loss("taid", zs, labels, {"logits": zt}, t=t)[0].item() == pytest.approx(want, rel=1e-12)
    arith = (1 - t) * q + t * torch.softmax(zt[0, 0], -1)
    assert abs((arith * (arith.log() - q.log())).sum().item() - want) > 1e-3


def test_taid_needs_t_and_accepts_a_schedule():
    zs, zt, labels = _case(seed=7)
    with pytest.raises(ValueError, match="'t'"):
        _loss("taid", zs, labels, {"logits": zt})
    with pytest.raises(ValueError, match="t must be in"):
        _loss("taid", zs, labels, {"logits": zt}, t=1.2)
    sched = TAIDSchedule(t_start=0.4)
    assert _loss("taid", zs, labels, {"logits": zt}, t=sched)[0].item() == pytest.approx(
        _loss("taid", zs, labels, {"logits": zt}, t=0.4)[0].item(), rel=1e-12)


@pytest.mark.parametrize("name,hp", CASES, ids=CASE_IDS)
def test_topk_with_k_equal_v_is_the_full_logit_loss(name, hp):
    zs, zt, labels = _case(seed=8)
    full, n1 = _loss(name, zs, labels, {"logits": zt}, **hp)
    topk, n2 = _loss(name, zs, labels, _topk(zt, zt.shape[-1]), **hp)
    assert n1.item() == n2.item()
    assert topk.item() == pytest.approx(full.item(), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name,hp", [c for c in CASES if c[1].get("t") != 0.0],
                         ids=[i for c, i in zip(CASES, CASE_IDS) if c[1].get("t") != 0.0])
def test_topk_partial_is_finite_nonnegative_and_falls_as_the_student_nears_the_teacher(name, hp):
    zs, zt, labels = _case(seed=9)
    teacher = _topk(zt, 3)
    values = []
    for lam in (0.0, 0.3, 0.6, 0.9, 1.0):
        total, _ = _loss(name, (1 - lam) * zs + lam * zt, labels, teacher, **hp)
        assert torch.isfinite(total) and total.item() >= -1e-12
        values.append(total.item())
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[-1] < 1e-10


@pytest.mark.parametrize("name,hp", CASES, ids=CASE_IDS)
def test_topk_whose_mass_rounds_to_one_stays_finite(name, hp):
    """The stored top-k probabilities may add up to >= 1: the teacher's rest bucket is clamped at 0
    (floored inside the log), so even the reverse KL stays finite."""
    zs = torch.randn(1, 2, 6, dtype=torch.float64, requires_grad=True)
    teacher = {"topk_ids": torch.tensor([[[0, 1], [2, 3]]]),
               "topk_logprobs": torch.log(torch.tensor([[[0.6, 0.5], [0.7, 0.3]]], dtype=torch.float64))}
    total, _ = _loss(name, zs, torch.tensor([[1, 2]]), teacher, **hp)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(zs.grad).all()


ALL = CASES + [("ce", {}), ("redi", {})]
ALL_IDS = CASE_IDS + ["ce", "redi"]


@pytest.mark.parametrize("name,hp", ALL, ids=ALL_IDS)
@pytest.mark.parametrize("kind", ["logits", "topk"])
def test_all_masked_batch_gives_zero_and_finite_gradients(name, hp, kind):
    zs, zt, _ = _case(seed=10, dtype=torch.float32)
    zs.requires_grad_(True)
    labels = torch.full(zs.shape[:2], IGNORE)
    teacher = {"logits": zt} if kind == "logits" else _topk(zt, 3)
    total, n = get_loss(name)(zs, labels, teacher=teacher, weights=torch.tensor([1.0, -REDI_ALPHA]), **hp)
    assert n.item() == 0
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and torch.count_nonzero(zs.grad) == 0


@pytest.mark.parametrize("name", KD)
def test_vocabulary_mismatch_names_both_sizes(name):
    zs = torch.randn(1, 3, 400)
    labels = torch.tensor([[1, 2, 3]])
    hp = {"t": 0.5} if name == "taid" else {}
    with pytest.raises(ValueError, match=r"teacher vocabulary 512 != student vocabulary 400"):
        _loss(name, zs, labels, {"logits": torch.randn(1, 3, 512)}, **hp)
    topk = _topk(torch.randn(1, 3, 512), 4)
    with pytest.raises(ValueError, match=r"512.*400"):
        _loss(name, zs, labels, {**topk, "vocab_size": 512}, **hp)
    topk = _topk(torch.randn(1, 3, 400), 4)
    topk["topk_ids"][0, 1, 0] = 450  # a token the student does not have
    with pytest.raises(ValueError, match=r"450.*400"):
        _loss(name, zs, labels, topk, **hp)


def test_teacher_is_required_and_checked():
    zs, zt, labels = _case()
    with pytest.raises(ValueError, match="needs a teacher"):
        _loss("kd_fkl", zs, labels, None)
    with pytest.raises(ValueError, match="topk_ids"):
        _loss("kd_fkl", zs, labels, {"topk_ids": _topk(zt, 2)["topk_ids"]})
    with pytest.raises(ValueError, match="not aligned"):
        _loss("kd_fkl", zs, labels, {"logits": zt[:, :-1]})
    with pytest.raises(TypeError):
        _loss("kd_fkl", zs, labels, {"logits": zt}, temperature=2.0)  # unknown hp is an error


def test_tau_softens_both_sides_without_a_tau_squared_factor():
    zs, zt, labels = _case(seed=11)
    for name, hp in CASES:
        at2, _ = _loss(name, zs, labels, {"logits": zt}, tau=2.0, **hp)
        scaled, _ = _loss(name, zs / 2.0, labels, {"logits": zt / 2.0}, tau=1.0, **hp)
        assert at2.item() == pytest.approx(scaled.item(), rel=1e-12, abs=1e-15), name
    fkl1 = _loss("kd_fkl", zs, labels, {"logits": zt}, tau=1.0)[0].item()
    fkl100 = _loss("kd_fkl", zs, labels, {"logits": zt}, tau=100.0)[0].item()
    assert fkl100 < 1e-3 * fkl1  # very soft distributions are both ~uniform; no tau**2 rescue
    with pytest.raises(ValueError, match="tau"):
        _loss("kd_fkl", zs, labels, {"logits": zt}, tau=0.0)
    with pytest.raises(ValueError, match="re-tempered"):
        _loss("kd_fkl", zs, labels, _topk(zt, 3), tau=2.0)  # stored at temperature 1
    with pytest.raises(ValueError, match="re-tempered"):
        _loss("kd_fkl", zs, labels, {**_topk(zt / 2.0, 3), "tau": 2.0}, tau=1.0)
    # a top-k teacher stored at temperature tau (log_softmax(z / tau)) distils at tau
    V = zt.shape[-1]
    for name, hp in CASES:
        full, _ = _loss(name, zs, labels, {"logits": zt}, tau=2.0, **hp)
        stored, _ = _loss(name, zs, labels, {**_topk(zt / 2.0, V), "tau": 2.0}, tau=2.0, **hp)
        assert stored.item() == pytest.approx(full.item(), rel=1e-10, abs=1e-12), name
    k3, _ = _loss("kd_fkl", zs, labels, {**_topk(zt / 2.0, 3), "tau": 2.0}, tau=2.0)
    assert k3.item() == pytest.approx(_np_reference("kd_fkl", zs, zt, labels, {}, tau=2.0, k=3), rel=1e-9)


@pytest.mark.parametrize("name", KD)
def test_ce_weight_mixes_kd_and_ce_on_the_same_positions(name):
    zs, zt, labels = _case(seed=12)
    hp = {"t": 0.5} if name == "taid" else {}
    teacher = {"logits": zt}
    kd, n = _loss(name, zs, labels, teacher, **hp)
    ce, n_ce = cross_entropy(zs, labels)
    assert n.item() == n_ce.item()
    mixed, _ = _loss(name, zs, labels, teacher, ce_weight=0.3, **hp)
    assert mixed.item() == pytest.approx(0.7 * kd.item() + 0.3 * ce.item(), rel=1e-6)
    assert _loss(name, zs, labels, teacher, ce_weight=1.0, **hp)[0].item() == pytest.approx(ce.item(), rel=1e-6)
    assert mix_with_ce(kd, ce, 0.0) is kd
    with pytest.raises(ValueError, match="ce_weight"):
        _loss(name, zs, labels, teacher, ce_weight=1.5, **hp)


def test_shift_teacher_aligns_with_shifted_student():
    zs, zt, labels = _case()
    lg, lb = shift(zs, labels)
    t = shift_teacher({"logits": zt, **_topk(zt, 2), "vocab_size": zt.shape[-1]})
    assert t["logits"].shape == lg.shape and t["topk_ids"].shape[:2] == lb.shape
    assert t["vocab_size"] == zt.shape[-1] and shift_teacher(None) is None


# ----------------------------------------------------------------------------- distillation losses: gradient sanity


def _fkl_to_teacher(z, labels, teacher):
    return get_loss("kd_fkl")(z, labels, teacher=teacher)[0].item()


@pytest.mark.parametrize("name,hp", [c for c in CASES if c[1].get("t") != 0.0],
                         ids=[i for c, i in zip(CASES, CASE_IDS) if c[1].get("t") != 0.0])
@pytest.mark.parametrize("kind", ["logits", "topk"])
def test_sgd_on_student_logits_reduces_the_divergence(name, hp, kind):
    zs, zt, labels = _case(seed=13)
    teacher = {"logits": zt} if kind == "logits" else _topk(zt, 4)
    z = zs.clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=1.0)
    # taid's target moves with the student: judge it by its distance to the teacher
    measure = (lambda: _fkl_to_teacher(z, labels, teacher)) if name == "taid" else \
        (lambda: _loss(name, z, labels, teacher, **hp)[0].item())
    values = [measure()]
    for _ in range(30):
        opt.zero_grad()
        _loss(name, z, labels, teacher, **hp)[0].backward()  # per position: lr acts on each row
        opt.step()
        values.append(measure())
    assert all(b < a for a, b in zip(values, values[1:]))
    assert values[-1] < 0.75 * values[0]


# ----------------------------------------------------------------------------- distillation losses: invariance (layer 4)


LENGTHS = [3, 40, 7, 25, 12, 5, 33, 9]
SPLITS = {"1x8": [list(range(8))], "2x4": [[0, 2, 4, 6], [1, 3, 5, 7]], "4x2": [[1, 6], [0, 3], [4, 7], [2, 5]]}
INV = CASES + [("kd_fkl", {"ce_weight": 0.3}), ("kd_jsd", {"beta": 0.5, "tau": 2.0}), ("redi", {}), ("ce", {})]
INV_IDS = CASE_IDS + ["kd_fkl-ce0.3", "kd_jsd-tau2", "redi", "ce"]


def _inv_batch(V=17, d=6, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(LENGTHS)
    h = torch.randn(8, T, d, generator=g, dtype=torch.float64)
    zt = torch.randn(8, T, V, generator=g, dtype=torch.float64) * 2.0
    labels = torch.full((8, T), IGNORE)
    for i, L in enumerate(LENGTHS):
        labels[i, :L] = torch.randint(0, V, (L,), generator=g)
        labels[i, :2] = IGNORE  # prompt
    weights = redi_weights([True, False, True, True, False, True, False, True])
    return h, zt, _topk(zt, k), labels, weights


INV_PARAMS = [pytest.param(name, hp, kind, id=f"{kind}-{i}") for (name, hp), i in zip(INV, INV_IDS)
              for kind in ("logits", "topk")]


@pytest.mark.parametrize("name,hp,kind", INV_PARAMS)
def test_loss_and_gradient_invariant_to_micro_batch_split(name, hp, kind):
    """Sum of per-micro-batch sums / global token count: the same loss and gradient of a linear
    'model' for 1x8, 2x4 and 4x2 micro-batches, each padded to its own longest row."""
    h, zt, _, labels, weights = _inv_batch()
    torch.manual_seed(0)
    model = torch.nn.Linear(h.shape[-1], zt.shape[-1], dtype=torch.float64)
    fn = get_loss(name)
    N = int((labels != IGNORE).sum())

    def step(groups):
        model.zero_grad()
        total = 0.0
        for g in groups:
            T = max(LENGTHS[i] for i in g)
            tau = hp.get("tau", 1.0)  # a top-k teacher is stored at the temperature it is used at
            teacher = ({"logits": zt[g, :T]} if kind == "logits"
                       else {**{k: v[g, :T] for k, v in _topk(zt / tau, 5).items()}, "tau": tau})
            s, n = fn(model(h[g, :T]), labels[g, :T], teacher=teacher, weights=weights[g], **hp)
            assert n.item() == int((labels[g] != IGNORE).sum())
            loss = s / N
            loss.backward()
            total += loss.item()
        return total, torch.cat([p.grad.flatten().clone() for p in model.parameters()])

    ref_loss, ref_grad = step(SPLITS["1x8"])
    if hp.get("t") != 0.0:  # (taid at t = 0 has no gradient at all)
        assert ref_grad.abs().max() > 1e-4
    for split in ("2x4", "4x2"):
        loss, grad = step(SPLITS[split])
        assert abs(loss - ref_loss) <= 1e-6 * max(1.0, abs(ref_loss)), split
        assert (grad - ref_grad).abs().max().item() <= 1e-6, split


def test_naive_per_micro_batch_mean_would_break_the_invariance():
    """Sanity: dividing each micro-batch by its own count is measurably different on this batch."""
    h, zt, _, labels, _ = _inv_batch()
    z = torch.nn.Linear(h.shape[-1], zt.shape[-1], dtype=torch.float64)(h).detach()
    fn = get_loss("kd_fkl")
    s, n = fn(z, labels, teacher={"logits": zt})
    naive = 0.0
    for g in SPLITS["4x2"]:
        si, ni = fn(z[g], labels[g], teacher={"logits": zt[g]})
        naive += si.item() / ni.item() / 4
    assert abs(naive - s.item() / n.item()) > 1e-3


# ----------------------------------------------------------------------------- TAID schedule


def test_taid_schedule_defaults_are_the_official_ones():
    s = TAIDSchedule()
    assert (s.t_start, s.t_end, s.alpha, s.beta, s.adaptive) == (0.4, 1.0, 5e-4, 0.99, True)
    assert float(s) == 0.4


def test_taid_schedule_update_rule_step_by_step():
    s = TAIDSchedule(t_start=0.4, t_end=1.0, alpha=0.1, beta=0.9)
    assert s.update(2.0, step=1, total_steps=1000) == 0.4  # the first call only records the loss
    t = s.update(1.0, step=2, total_steps=1000)  # rel = 0.5, m = 0.1 * 0.5
    m = 0.05
    assert s.momentum == pytest.approx(m)
    assert t == pytest.approx(0.4 + 0.1 * (1 / (1 + math.exp(-m))) * (1 - 0.4), rel=1e-12)
    # never below the linear schedule
    s2 = TAIDSchedule(t_start=0.4, alpha=0.0)
    s2.update(1.0, 1, 10)
    assert s2.update(1.0, 5, 10) == pytest.approx(0.4 + 0.6 * 0.5)


def test_taid_schedule_is_monotone_and_bounded_by_t_end():
    g = np.random.default_rng(0)
    for alpha in (5e-4, 0.05, 0.5):
        s = TAIDSchedule(t_start=0.2, t_end=0.9, alpha=alpha, beta=0.9)
        ts = [s.t]
        for step in range(1, 201):
            ts.append(s.update(float(g.uniform(0.5, 3.0)), step, 200))  # noisy, up and down
        assert all(b >= a for a, b in zip(ts, ts[1:]))
        assert max(ts) <= 0.9 and ts[-1] == pytest.approx(0.9)


def test_taid_schedule_moves_faster_when_the_loss_drops_fast():
    def run(losses, alpha=0.05, beta=0.9):
        s = TAIDSchedule(t_start=0.1, alpha=alpha, beta=beta)
        for step, loss in enumerate(losses, 1):
            s.update(loss, step, 100_000)  # the linear floor stays out of the way
        return s.t

    steps = range(30)
    for alpha, beta in ((0.05, 0.9), (5e-4, 0.99)):
        fast = run([0.8 ** k for k in steps], alpha, beta)
        flat = run([1.0 for _ in steps], alpha, beta)
        rising = run([1.05 ** k for k in steps], alpha, beta)
        assert fast > flat > rising > 0.1


def test_taid_linear_fallback_reaches_t_end_at_the_last_step():
    s = TAIDSchedule(t_start=0.4, t_end=0.95, adaptive=False)
    total = 10
    ts = [s.update(5.0 - step * 0.1, step, total) for step in range(1, total + 1)]
    assert ts[4] == pytest.approx(0.4 + 0.55 * 0.5)
    assert ts[-1] == pytest.approx(0.95) and all(b > a for a, b in zip(ts, ts[1:]))


def test_taid_schedule_observe_and_step_sum_the_micro_batches_of_a_step():
    a, b = TAIDSchedule(alpha=0.1, beta=0.5), TAIDSchedule(alpha=0.1, beta=0.5)
    for step, parts in enumerate([[1.0, 2.0], [0.5, 1.0], [0.25, 0.25]], 1):
        for x in parts:
            a.observe(x)
        assert a.step(step, 100) == b.update(sum(parts), step, 100)
    t = a.t
    assert a.step(4, 100) == t  # nothing observed (e.g. an eval step): t stays


def test_taid_schedule_validates_and_resumes():
    for bad in ({"t_start": 1.0}, {"t_end": 0.0}, {"t_start": 0.5, "t_end": 0.4}, {"alpha": 2.0}, {"beta": 1.0}):
        with pytest.raises(ValueError):
            TAIDSchedule(**bad)
    with pytest.raises(ValueError, match="total_steps"):
        TAIDSchedule().update(1.0, 1, 0)
    a = TAIDSchedule(alpha=0.1, beta=0.5)
    for step, loss in enumerate([3.0, 2.0, 1.5], 1):
        a.update(loss, step, 100)
    b = TAIDSchedule(alpha=0.1, beta=0.5)
    b.load_state_dict(a.state_dict())
    assert a.update(1.0, 4, 100) == b.update(1.0, 4, 100)


# ----------------------------------------------------------------------------- REDI


def test_redi_on_positives_only_is_ce():
    zs, _, labels = _case(seed=14, dtype=torch.float32)
    r, n = get_loss("redi")(zs, labels, weights=torch.ones(2))
    c, n_ce = cross_entropy(zs, labels)
    assert n.item() == n_ce.item()
    assert r.item() == pytest.approx(c.item(), rel=1e-6)


def test_redi_weights_scale_each_sequence_token_by_token():
    zs, _, labels = _case(seed=15)
    w = redi_weights([True, False])
    assert w.tolist() == pytest.approx([1.0, -0.8]) and REDI_ALPHA == 0.8
    r, n = get_loss("redi")(zs, labels, weights=w)
    per_seq = [cross_entropy(zs[[i]], labels[[i]])[0].item() for i in range(2)]
    assert r.item() == pytest.approx(per_seq[0] - 0.8 * per_seq[1], rel=1e-6)  # ce runs in float32
    assert n.item() == int((labels != IGNORE).sum())  # tokens, not sequences


def test_redi_pushes_negative_likelihood_down_and_positive_up():
    zs, _, labels = _case(seed=16, T=8)
    z = zs.clone().requires_grad_(True)
    (s, n) = get_loss("redi")(z, labels, weights=redi_weights([True, False]))
    (s / n).backward()
    m = labels != IGNORE
    lab = labels.clamp(min=0).unsqueeze(-1)
    g_label = z.grad.gather(-1, lab).squeeze(-1)
    assert (g_label[0][m[0]] < 0).all()  # descent raises the positive's label logits
    assert (g_label[1][m[1]] > 0).all()  # and lowers the negative's
    before = torch.log_softmax(zs, -1).gather(-1, lab).squeeze(-1)
    after = torch.log_softmax((z - 1.0 * z.grad).detach(), -1).gather(-1, lab).squeeze(-1)
    assert (after[0][m[0]] > before[0][m[0]]).all()
    assert (after[1][m[1]] < before[1][m[1]]).all()


def test_redi_checks_its_weights():
    zs, _, labels = _case()
    with pytest.raises(ValueError, match="weights"):
        get_loss("redi")(zs, labels)
    with pytest.raises(ValueError, match="one per sequence"):
        get_loss("redi")(zs, labels, weights=torch.ones(3))
    with pytest.raises(TypeError, match="alpha"):
        get_loss("redi")(zs, labels, weights=torch.ones(2), alpha=0.8)
