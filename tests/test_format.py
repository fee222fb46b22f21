"""The text format of a reply: ``split_thinking`` and ``format_assistant`` round-trip, and a served reply
split into reasoning and answer from a reasoning field or from think tags."""

from __future__ import annotations

import pytest

from thinkling.engines.openai_wire import completion_prompt
from thinkling.format import format_assistant, split_thinking
from thinkling.format import split_served as split_reasoning


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


def test_reasoning_split_from_a_field_or_think_tags():
    assert split_reasoning("<think>\nplan\n</think>\n42", None) == ("plan", "42", True)
    assert split_reasoning("plan</think>42", None) == ("plan", "42", True)  # template opened <think>
    assert split_reasoning("<think>plan, cut at the cap", None) == ("plan, cut at the cap", "", False)
    assert split_reasoning("just 42", None) == ("", "just 42", True)
    assert split_reasoning("42", "plan") == ("plan", "42", True)
    assert split_reasoning(None, "plan") == ("plan", "", True)
    assert completion_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}]) \
        == "Be brief.\n\n2+3?"
