"""The reasoning format: how a reply holds its thinking, its mode marker and its answer.

A leaf module (it imports nothing of thinkling): tasks, training methods, engines, evaluation and the
server all read replies through these functions, so the tags are written in one place.

A student learns, and every engine returns, replies of this shape::

    [<short>|<long>]<think>
    ...reasoning...
    </think>
    the final answer

The mode marker is only there for an adaptive student (train method ``adaptive``). The LoRID prompt
(the Deep Reasoner's question with the knowledge before it) is here too, since training and
evaluation must build it the same way.
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
THINK_TAGS = (THINK_OPEN, THINK_CLOSE)

# the mode markers an adaptive student starts its reply with (train method `adaptive`, eval reply_prefix)
SHORT_MARK = "<short>"
LONG_MARK = "<long>"
MODE_MARKS = {"short": SHORT_MARK, "long": LONG_MARK}

# LoRID: three adapters on one base - the Intuitive Reasoner (question -> reasoning + answer), the
# Knowledge Generator (question -> the knowledge a solution uses) and the Deep Reasoner (the question
# with that knowledge before it -> reasoning + answer)
LORID_ADAPTERS = ("intuitive", "knowledge", "deep")
KNOWLEDGE_OPEN = "Knowledge:"


def split_thinking(text: str) -> tuple[str, str, bool]:
    """Split a completion into (reasoning, final answer text, closed).

    ``closed`` is False when a ``<think>`` block was opened but never closed (a truncated trace):
    then there is no final answer. Text without any think tags is all answer.
    """
    if THINK_CLOSE in text:
        head, _, tail = text.rpartition(THINK_CLOSE)
        reasoning = head.split(THINK_OPEN, 1)[-1] if THINK_OPEN in head else head
        return reasoning.strip(), tail.strip(), True
    if THINK_OPEN in text:
        return text.split(THINK_OPEN, 1)[1].strip(), "", False
    return "", text.strip(), True


def format_assistant(reasoning: str, answer: str) -> str:
    """The assistant turn a student learns: ``<think>\\n...\\n</think>\\n<answer>``."""
    if reasoning:
        return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n{answer}"
    return f"{THINK_OPEN}\n{THINK_CLOSE}\n{answer}"


def normalise_tags(text: str, tags: tuple[str, str] = THINK_TAGS) -> str:
    """A model's own reasoning tags (``tags``) rewritten as ``<think>``/``</think>``, so one split serves
    every model."""
    o, c = tags
    if (o, c) == THINK_TAGS:
        return text
    return text.replace(o, THINK_OPEN).replace(c, THINK_CLOSE)


def split_served(content: str | None, reasoning_field: str | None) -> tuple[str, str, bool]:
    """(reasoning, answer, closed) of a served reply: a server's separate reasoning field
    (``reasoning_content``) and/or think tags in the content (both: the tagged part is reasoning too)."""
    content = content or ""
    if reasoning_field:
        if THINK_CLOSE in content or THINK_OPEN in content:
            more, answer, closed = split_thinking(content)
            return (reasoning_field.strip() + ("\n" + more if more else "")).strip(), answer, closed
        return reasoning_field.strip(), content.strip(), True
    return split_thinking(content)


def join_served(content: str | None, reasoning_field: str | None) -> str:
    """A served reply as one text: a separate reasoning field put back in its tags before the content."""
    body = content or ""
    if reasoning_field:
        body = f"{THINK_OPEN}\n{reasoning_field.strip()}\n{THINK_CLOSE}\n{body}"
    return body


def reply_mode(text: str) -> str:
    """Which mode an adaptive student's reply opened with (``""`` for any other reply)."""
    return "short" if text.startswith(SHORT_MARK) else "long" if text.startswith(LONG_MARK) else ""


def deep_question(question: str, knowledge: str) -> str:
    """LoRID's Deep Reasoner prompt: the question with the knowledge before it."""
    return f"{KNOWLEDGE_OPEN} {knowledge}\n\n{question}"
