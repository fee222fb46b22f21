"""What a client may see of a reply as it grows: stop strings held back, the <think> split.

Everything here is pure and incremental in one direction: text only grows at its end, and what has
been streamed is never taken back. That is why a streamed reply, concatenated, equals the same
reply not streamed: both are the last value of the same functions.
"""

from __future__ import annotations

from thinkling.format import THINK_CLOSE as CLOSE
from thinkling.format import THINK_OPEN as OPEN


def holdback(text: str, watch: list[str]) -> int:
    """Length of the longest end of ``text`` that could still become one of ``watch``.

    A stream must not send those characters yet: they may turn out to be a stop string (never sent)
    or a think tag (which moves text between reasoning and content).
    """
    best = 0
    for w in watch:
        for k in range(min(len(w) - 1, len(text)), best, -1):
            if text.endswith(w[:k]):
                best = k
                break
    return best


def split_reasoning(text: str, opened: bool) -> tuple[str | None, str]:
    """(reasoning, content) of a reply; reasoning is None when the reply does not think.

    ``opened``: the prompt itself ends inside <think> (templates of R1-style models open it), so the
    reply starts in the reasoning. A reply whose thinking never closes is all reasoning. Surrounding
    whitespace of both parts is dropped. Both parts only grow as ``text`` grows (streaming relies on it).
    """
    if not opened:
        s = text.lstrip()
        if not s.startswith(OPEN):
            return None, text
        text = s[len(OPEN):]
    head, sep, tail = text.partition(CLOSE)
    return head.strip(), tail.lstrip() if sep else ""


def visible(text: str, final: bool, split: bool, opened: bool, stops: list[str]) -> tuple[str | None, str]:
    """What a client may see of a reply so far: (reasoning, content), growing only at their ends."""
    if not final:
        text = text[: len(text) - holdback(text, stops + ([OPEN, CLOSE] if split else []))]
    if not split:
        return None, text
    if not opened and not final and OPEN.startswith(text.lstrip()):
        return None, ""  # cannot tell yet whether the reply opens a <think>
    reasoning, content = split_reasoning(text, opened)
    if not final and reasoning is not None:
        # trailing whitespace of the reasoning is dropped if the tag follows; wait and see
        reasoning = reasoning.rstrip()
    return reasoning, content
