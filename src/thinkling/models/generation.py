"""Batched local generation with a transformers model: left padding, KV cache, length-sorted batches.

:func:`generate_ids` is what the ``hf`` engine runs; :func:`generate_batched` renders conversations
first (a convenience for tests and benchmarks). :func:`token_logprobs` scores given tokens with one
forward pass (the log-probs of a generated reply, or of any text a caller hands in).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from thinkling.models.render import render_prompt


@dataclass
class Completion:
    text: str
    n_tokens: int          # generated tokens, end-of-turn token included
    truncated: bool        # hit max_new_tokens without ending the turn
    seconds: float         # this completion's share of its batch's wall time
    tokens: tuple[int, ...] = ()   # the generated token ids


def generate_ids(
    model, tokenizer, prompts: list[list[int]], max_new_tokens: int = 512, batch_size: int = 64,
    temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
    on_batch: Callable[[list[int], list[Completion]], None] | None = None,
) -> list[Completion]:
    """Generate one completion per prompt (token ids); the texts are the decoded completions alone.

    Prompts are sorted by length so a batch wastes little padding, left-padded so every row's next
    token sits at the last position, and decoded with the KV cache. Results come back in input order;
    ``on_batch(indices, completions)`` is called after each batch. Greedy results do not depend on
    ``batch_size`` (padding is masked and positions follow the mask). Sampling seeds torch once per call.
    """
    import torch

    model.eval()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Completion | None] = [None] * len(prompts)
    gen_kwargs = dict(max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad, use_cache=True)
    if temperature > 0:
        gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        torch.manual_seed(seed)
    else:
        gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        att = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            p = prompts[i]
            ids[r, width - len(p):] = torch.tensor(p)
            att[r, width - len(p):] = 1
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=att, **gen_kwargs)
        dt = time.perf_counter() - t0
        new = out[:, width:].tolist()
        done = []
        for r, i in enumerate(idx):
            toks = new[r]
            if eos in toks:
                toks = toks[: toks.index(eos) + 1]
                truncated = False
            else:  # never ended its turn: every position is a generated token (fill pads follow an end only)
                truncated = True
            results[i] = Completion(text=tokenizer.decode(toks, skip_special_tokens=True), n_tokens=len(toks),
                                    truncated=truncated, seconds=dt / len(idx), tokens=tuple(toks))
            done.append(results[i])
        if on_batch is not None:
            on_batch(idx, done)
    return results  # type: ignore[return-value]


def generate_batched(
    model, tokenizer, conversations: list[list[dict[str, str]]], max_new_tokens: int = 512,
    batch_size: int = 64, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
    progress=None, reply_prefix: str | list[str] = "",
) -> list[Completion]:
    """One completion per conversation (rendered with the chat template).

    ``reply_prefix`` (one for all, or one per conversation) starts the assistant's reply: it is part of
    the prompt, and of the returned text, but not of the generated tokens. ``progress(n)`` is called
    with the number of completions of each finished batch.
    """
    prefixes = [reply_prefix] * len(conversations) if isinstance(reply_prefix, str) else list(reply_prefix)
    if len(prefixes) != len(conversations):
        raise ValueError(f"{len(prefixes)} reply prefixes for {len(conversations)} conversations")
    prompts = [render_prompt(tokenizer, c) + (tokenizer(pre, add_special_tokens=False)["input_ids"] if pre else [])
               for c, pre in zip(conversations, prefixes)]
    comps = generate_ids(model, tokenizer, prompts, max_new_tokens, batch_size, temperature, top_p, seed,
                         on_batch=(lambda idx, _: progress(len(idx))) if progress is not None else None)
    for c, pre in zip(comps, prefixes):
        c.text = pre + c.text
    return comps


def token_logprobs(model, sequences: list[list[int]], starts: list[int], k: int = 0,
                   batch_size: int = 16) -> list[list[tuple[int, float, list[tuple[int, float]]]]]:
    """Per sequence, for every token from ``starts[i]`` on: (token, its log-prob, the top ``k`` (token,
    log-prob) pairs), from the model's raw next-token distribution (log-softmax, no temperature)."""
    import torch

    out: list[list] = [[] for _ in sequences]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    model.eval()
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        width = max(len(sequences[i]) for i in idx)
        ids = torch.zeros((len(idx), width), dtype=torch.long)
        att = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):  # right padding: positions are plain aranges
            ids[r, :len(sequences[i])] = torch.tensor(sequences[i])
            att[r, :len(sequences[i])] = 1
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), dim=-1)
        for r, i in enumerate(idx):
            seq = sequences[i]
            for t in range(max(starts[i], 1), len(seq)):
                row = logp[r, t - 1]
                top = []
                if k > 0:
                    v, j = torch.topk(row, min(k, row.numel()))
                    top = list(zip(j.tolist(), v.tolist()))
                out[i].append((seq[t], float(row[seq[t]]), top))
    return out
