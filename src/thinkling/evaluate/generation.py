"""Batched local generation with a transformers model: left padding, KV cache, length-sorted batches."""

from __future__ import annotations

import time
from dataclasses import dataclass

from thinkling.models.render import render_prompt


@dataclass
class Completion:
    text: str
    n_tokens: int          # generated tokens, end-of-turn token included
    truncated: bool        # hit max_new_tokens without ending the turn
    seconds: float         # this completion's share of its batch's wall time


def generate_batched(
    model, tokenizer, conversations: list[list[dict[str, str]]], max_new_tokens: int = 512,
    batch_size: int = 64, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
    progress=None, reply_prefix: str | list[str] = "",
) -> list[Completion]:
    """Generate one completion per conversation.

    Prompts are sorted by length so a batch wastes little padding, left-padded so every row's next
    token sits at the last position, and decoded with the KV cache. Results come back in input order.
    Greedy results do not depend on ``batch_size`` (padding is masked and positions follow the mask).
    ``reply_prefix`` (one for all, or one per conversation) starts the assistant's reply: it is part of
    the prompt, and of the returned text, but not of the generated tokens.
    """
    import torch

    model.eval()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    prefixes = [reply_prefix] * len(conversations) if isinstance(reply_prefix, str) else list(reply_prefix)
    if len(prefixes) != len(conversations):
        raise ValueError(f"{len(prefixes)} reply prefixes for {len(conversations)} conversations")
    prompts = [render_prompt(tokenizer, c) + (tokenizer(pre, add_special_tokens=False)["input_ids"] if pre else [])
               for c, pre in zip(conversations, prefixes)]
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
        for r, i in enumerate(idx):
            toks = new[r]
            if eos in toks:
                toks = toks[: toks.index(eos) + 1]
                truncated = False
            else:  # never ended its turn: every position is a generated token (fill pads follow an end only)
                truncated = True
            text = prefixes[i] + tokenizer.decode(toks, skip_special_tokens=True)
            results[i] = Completion(text=text, n_tokens=len(toks), truncated=truncated, seconds=dt / len(idx))
        if progress is not None:
            progress(len(idx))
    return results  # type: ignore[return-value]
