"""Answer extractors shared by the tasks: the final answer of a completion, or None when it gives none.

* numbers: :func:`last_number` (thousands separators removed), :func:`integer_answer`;
* boxes: :func:`last_boxed` (the content of the last ``\\boxed{...}``, nested braces matched);
* explicit choices: :func:`letter_patterns` (``answer is (B)``, ``Answer: B``, ``option B``, ``(B)``, ``B)``,
  or a text that is only the letter), :func:`last_choice` (the LAST mention of any pattern wins),
  :func:`extract_letter` (a box that holds a choice wins: :func:`boxed_first`);
* labels: :data:`LABEL_WORD` (``True``/``False``/``Unknown``/``Uncertain``), :func:`label_of` (canonical
  spelling, ``Uncertain`` read as ``Unknown``) and :func:`scan_labels` (label words and the option letters
  a label task shows).

Task-specific readers (MATH's "answer is" spans, GSM8K's ``####``, knights and knaves statements) stay in
their task's module.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_BOXED = re.compile(r"\\boxed\s*\{")


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands separators removed, or None."""
    m = _NUMBER.findall(text)
    if not m:
        return None
    s = m[-1].replace(",", "")
    if s.endswith(".0"):
        s = s[:-2]
    return s


def integer_answer(text: str) -> str | None:
    """The last number of ``text`` when it is an integer (``"07"`` -> ``"7"``), else None."""
    n = last_number(text)
    if n is None or not n.lstrip("-").isdigit():
        return None
    return str(int(n))


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, matching nested braces."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    i = starts[-1]
    depth = 1
    j = i
    while j < len(text) and depth:
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
        j += 1
    return text[i:j - 1].strip() if depth == 0 else None


# ----------------------------------------------------------------------------- explicit choices


def letter_patterns(letters: str) -> list[re.Pattern]:
    """Patterns of an explicit mention of one of ``letters`` (group 1 is the letter)."""
    L = f"[{letters}]"
    return [
        re.compile(rf"(?i:answer|option|choice)\s*(?:is|:|=)?\s*(?:(?i:option)\s*)?[(\[*]*({L})(?![\w])"),
        re.compile(rf"\(({L})\)"),
        re.compile(rf"(?<![\w(\[])({L})\)"),
        re.compile(rf"^\W*({L})\W*$"),
    ]


def _group1(m: re.Match) -> str:
    return m.group(1)


def last_choice(text: str, patterns: list[re.Pattern],
                to_answer: Callable[[re.Match], str | None] = _group1) -> str | None:
    """The answer of the last match (by the start of group 1) of any of ``patterns`` for which
    ``to_answer`` gives one; at one position the later pattern wins. None without a match."""
    best: tuple[int, str] | None = None
    for pat in patterns:
        for m in pat.finditer(text):
            a = to_answer(m)
            if a is not None and (best is None or m.start(1) >= best[0]):
                best = (m.start(1), a)
    return best[1] if best else None


def boxed_first(text: str, scan: Callable[[str], str | None]) -> str | None:
    """``scan`` of the last ``\\boxed{}`` when that gives an answer, else ``scan`` of the whole text."""
    boxed = last_boxed(text)
    if boxed:
        got = scan(boxed)
        if got is not None:
            return got
    return scan(text)


def extract_letter(text: str, patterns: list[re.Pattern]) -> str | None:
    """An option letter: from a ``\\boxed{}`` when one parses, else the last explicit mention."""
    return boxed_first(text, lambda t: last_choice(t, patterns))


# ----------------------------------------------------------------------------- labels

LABEL_WORD = re.compile(r"\b(true|false|unknown|uncertain)\b", re.IGNORECASE)
_LABELS = {"true": "True", "false": "False", "unknown": "Unknown", "uncertain": "Unknown"}


def label_of(word: str) -> str | None:
    """``true``/``false``/``unknown``/``uncertain`` in any case -> ``True``/``False``/``Unknown``, else None."""
    return _LABELS.get(word.lower())


def scan_labels(text: str, letter_to_label: dict[str, str]) -> str | None:
    """The last label word of ``text``, or the last option letter a label task shows (``A) True``:
    ``letter_to_label`` maps the letter to its label), whichever comes last; None without either."""
    def to_answer(m: re.Match) -> str | None:
        s = m.group(1)
        if s in letter_to_label:
            return letter_to_label[s]
        return label_of(s)

    letters = "".join(letter_to_label)
    return last_choice(text, [LABEL_WORD, *(letter_patterns(letters) if letters else [])], to_answer)
