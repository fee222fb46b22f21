"""The text format of a reply: ``split_thinking`` and ``format_assistant`` round-trip, and a served reply
split into reasoning and answer from a reasoning field or from think tags."""

from __future__ import annotations

import pytest

from thinkling.format import format_assistant, split_thinking


@pytest.mark.parametrize("text, expected", [
    ("<think>\nstep\n</think>\n42", ("step", "42", True)),
    ("<think></think>42", ("", "42", True)),
    ("just 42", ("", "just 42", True)),
    ("<think>\nstep 1\nstep 2 and then", ("step 1\nstep 2 and then", "", False)),
    ("reasoning without an opening tag</think> 5", ("reasoning without an opening tag", "5", True)),
    ("<think>a</think>b</think>c", ("a</think>b", "c", True)),  # the last close tag ends the thinking
    ("", ("", "", True)),
])
def test_split_thinking(text, expected):
    assert split_thinking(text) == expected


def test_format_assistant_roundtrips_through_split_thinking():
    assert split_thinking(format_assistant("a\nb", "7")) == ("a\nb", "7", True)
    assert split_thinking(format_assistant("", "7")) == ("", "7", True)
