"""Render a conversation to token ids and a loss mask - one tested function, from the template.

The mask is 1 on the assistant's reply (reasoning, answer and the end-of-turn token, so the student
learns to stop) and 0 on everything else. It is derived by rendering the prompt with the
generation prompt and checking it is a prefix of the full rendering - never from tensor shapes.
"""

from __future__ import annotations


class RenderError(ValueError):
    pass


def _ids(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False
    )
    return list(out)


def render_prompt(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Ids of the prompt up to and including the assistant header (what generation continues)."""
    return _ids(tokenizer, messages, add_generation_prompt=True)


def prompt_ids(tokenizer, messages: list[dict[str, str]], text: str | None = None, started: str = "") -> list[int]:
    """What generation continues: ``messages`` rendered (or a raw ``text`` prompt, no template), then the
    tokens of a ``started`` reply."""
    ids = tokenizer(text)["input_ids"] if text is not None else render_prompt(tokenizer, messages)
    if started:
        ids = ids + tokenizer(started, add_special_tokens=False)["input_ids"]
    return ids


def render(tokenizer, prompt: list[dict[str, str]], reply: str) -> tuple[list[int], list[int]]:
    """(ids, mask) for ``prompt`` + an assistant ``reply``; mask marks the tokens that get loss."""
    head = render_prompt(tokenizer, prompt)
    full = _ids(tokenizer, prompt + [{"role": "assistant", "content": reply}], add_generation_prompt=False)
    if full[: len(head)] != head:
        raise RenderError(
            "the chat template does not render the prompt as a prefix of the full conversation "
            "(it rewrites earlier turns, e.g. strips <think>); use an explicit template"
        )
    eos = tokenizer.eos_token_id
    end = len(full)
    # stop the loss after the end-of-turn token; template text after it (a newline) is not learned
    tail = full[len(head):]
    if eos is not None and eos in tail:
        end = len(head) + len(tail) - tail[::-1].index(eos)
    else:
        full = full + ([eos] if eos is not None else [])
        end = len(full)
    full = full[:end]
    mask = [0] * len(head) + [1] * (end - len(head))
    return full, mask


def show_mask(tokenizer, ids: list[int], mask: list[int]) -> str:
    """Human-readable view of which tokens get loss: trained text is wrapped in [[...]]."""
    out, cur, state = [], [], mask[0] if mask else 0
    for i, m in zip(ids, mask):
        if m != state:
            text = tokenizer.decode(cur)
            out.append(f"[[{text}]]" if state else text)
            cur, state = [], m
        cur.append(i)
    if cur:
        text = tokenizer.decode(cur)
        out.append(f"[[{text}]]" if state else text)
    return "".join(out)
