"""Loss masks come from rendering; losses are summed and divided once by the global token count.

Layer 1 (analytic), layer 2 (reference equivalence) and layer 4 (invariance of loss and gradients
across micro-batch splits) of the house testing style.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from thinkling.models.render import render, render_prompt, show_mask
from thinkling.format import format_assistant
from thinkling.tasks import get_task
from thinkling.train.losses import IGNORE, cross_entropy, get_loss, loss_names, normalize_by_global_tokens, shift

IM_END = "<|im_end|>"


def conversations():
    """(prompt messages, assistant reply) of every oracle style, for both synthetic tasks."""
    out = []
    for name in ("arithmetic", "rules"):
        task = get_task(name)
        for p in task.problems("train", n=3, levels=[1, 3]):
            for style in ("long", "concise", "none"):
                tr = task.oracle(p, style)
                out.append((task.messages(p), format_assistant(tr.reasoning, tr.answer)))
    return out


# ----------------------------------------------------------------------------- render


def test_mask_covers_exactly_the_reply_and_the_end_of_turn(tokenizer):
    convs = conversations()
    assert len(convs) == 2 * 6 * 3
    for prompt, reply in convs:
        ids, mask = render(tokenizer, prompt, reply)
        assert len(ids) == len(mask)
        head = render_prompt(tokenizer, prompt)
        assert ids[: len(head)] == head and mask[: len(head)] == [0] * len(head)
        # one contiguous block of ones, running to the very last token
        first = mask.index(1)
        assert first == len(head)
        assert all(mask[first:]), "nothing after the reply may be masked out, nothing inside it either"
        trained = [t for t, m in zip(ids, mask) if m]
        assert tokenizer.decode(trained) == reply + IM_END
        assert ids[-1] == tokenizer.eos_token_id
        assert trained.count(tokenizer.eos_token_id) == 1


def test_nothing_after_the_end_of_turn_is_kept(tokenizer):
    prompt, reply = conversations()[0]
    ids, _ = render(tokenizer, prompt, reply)
    full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}], tokenize=True,
                                         add_generation_prompt=False, return_dict=False)
    full = list(full)
    # the template writes a newline after <|im_end|>; it is cut, not learned
    assert full[: len(ids)] == ids
    assert tokenizer.decode(full[len(ids):]) == "\n"


def test_multi_turn_prompt_masks_only_the_last_reply(tokenizer):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Compute mod 10.\na=3\nWhat is a?"},
              {"role": "assistant", "content": "<think>\n</think>\n3"}, {"role": "user", "content": "And a+1?"}]
    reply = format_assistant("a+1=3+1=4", "4")
    ids, mask = render(tokenizer, prompt, reply)
    assert tokenizer.decode([t for t, m in zip(ids, mask) if m]) == reply + IM_END


def test_think_tags_are_single_non_special_tokens(tokenizer):
    special = set(tokenizer.all_special_ids)
    for tag in ("<think>", "</think>"):
        ids = tokenizer.encode(tag, add_special_tokens=False)
        assert len(ids) == 1, (tag, ids)
        assert ids[0] not in special
        assert tokenizer.decode(ids, skip_special_tokens=True) == tag
    prompt, reply = conversations()[1]
    ids, mask = render(tokenizer, prompt, reply)
    reply_ids = [t for t, m in zip(ids, mask) if m]
    # servers decode with skip_special_tokens=True: the think block must survive, the end of turn must not
    assert tokenizer.decode(reply_ids, skip_special_tokens=True) == reply
    think = tokenizer.convert_tokens_to_ids("<think>")
    close = tokenizer.convert_tokens_to_ids("</think>")
    assert reply_ids.count(think) == 1 and reply_ids.count(close) == 1


def test_role_markers_are_special_and_stripped(tokenizer):
    assert tokenizer.eos_token == IM_END
    ids = render_prompt(tokenizer, [{"role": "user", "content": "hi"}])
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\nhi\nassistant\n"


def test_show_mask_brackets_the_trained_text(tokenizer):
    prompt, reply = conversations()[1]
    ids, mask = render(tokenizer, prompt, reply)
    view = show_mask(tokenizer, ids, mask)
    assert view.endswith("[[" + reply + IM_END + "]]")
    assert view.count("[[") == 1


# ----------------------------------------------------------------------------- losses: analytic


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


# ----------------------------------------------------------------------------- reference equivalence


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


# ----------------------------------------------------------------------------- invariance on a real model


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
