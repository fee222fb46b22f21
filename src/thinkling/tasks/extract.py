"""Answer extractors shared by the tasks: the final answer of a completion, or None when it gives none.

* numbers: :func:`last_number` (thousands separators removed), :func:`integer_answer`;
* boxes: :func:`last_boxed` (the content of the last ``\\boxed{...}``, nested braces matched);
* labels and options: :class:`Options` - how a reply can name each option of a label or multiple-choice
  task (label words, option letters) - and :meth:`Options.read`, THE rule every label and choice task
  reads a final choice with (below); :func:`label_of` (``True``/``False``/``Unknown``, ``Uncertain`` read
  as ``Unknown``) for the logic benchmarks' gold.

**The final-choice rule** (:meth:`Options.read`). An unparseable answer is never credited, and a reply
that names several options without choosing one is unparseable:

1. the last ``\\boxed{...}``, read by this same rule, when it names an option: one option -> that one;
   several (``\\boxed{A, B}``) -> None; none (``\\boxed{42}``) -> the box is ignored;
2. else the LAST marked answer: ``the answer is X``, ``Answer: X``, ``the final answer: X``, ``the
   correct option is (X)``, ``the choice is X``, or a conclusion drawn - ``the conclusion is X``, ``the
   statement is X``, ``so it is X`` - (markdown, quotes and brackets around X allowed); a marker followed
   by a list (``Answer: No, Yes``, ``the answer is A or B``, ``the conclusion is true, false or unknown``)
   marks nothing;
3. else every mention of an option is collected - a label word (whole word, any case), an option letter
   written as one (``(B)``, ``B)``, ``**B**``, ``option B``, ``answer B``), ARC's ``answer3`` - and when they
   all name ONE option, that is the answer (``"It is true. True."`` -> True);
4. else, when they name several, the answer is the reply's final line, or that line's last sentence, if
   it is exactly one option (``B``, ``**False**``, ``(C).``, ``True or false? True.``); otherwise None. So
   ``"No, Yes."`` (the option list parroted), ``"A) True B) False"``, ``"So (A) is wrong and (B) is
   right."`` and ``"true at first, but false"`` are no answer.

A reply with no mention at all is None, except a final line that is exactly one option (``"G"``).

Task-specific readers (MATH's "answer is" spans, GSM8K's ``####``, knights and knaves statements) stay in
their task's module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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


# ----------------------------------------------------------------------------- labels and options

# the logic benchmarks' label words -> their canonical label
LABEL_WORDS = {"true": "True", "false": "False", "unknown": "Unknown", "uncertain": "Unknown"}


def label_of(word: str) -> str | None:
    """``true``/``false``/``unknown``/``uncertain`` in any case -> ``True``/``False``/``Unknown``, else None."""
    return LABEL_WORDS.get(word.lower())


# a marker of the final answer: "the answer is", "Answer:", "final answer =", "the correct option is"
# ("Options:" and "Multiple choice:" before a restated list mark nothing)
# and a conclusion drawn ("so it is Unknown", "therefore, the conclusion is false")
_MARKER = (r"(?:(?i:\banswer)(?:\*\*|__)?[^\S\n]*(?i:is|would\s+be|:|=)"
           r"|(?i:\boption|\bchoice|\bconclusion|\bstatement)[^\S\n]+(?i:is|would\s+be)"
           r"|(?i:\b(?:so|therefore|thus|hence)\b,?[^\S\n]+it(?:[^\S\n]+is|'s)))(?:\*\*|__)?")
# what may stand between a marker and the option it marks, or around an option
_OPEN = r"(?:[\s:*_\"'`$(\[]|\\text(?:bf)?\{)*(?:(?i:option|choice)\s*[(\[]?\s*)?"
_CLOSE = r"[*_\"'`$)\]}]*"
_LIST_SEP = r"(?:[^\S\n]*[,/|;&][^\S\n]*|[^\S\n]+(?i:or|and|vs\.?)[^\S\n]+)"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_TEX_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")


class Options:
    """The options of a label or choice task as a reply can name them; :meth:`read` is the final-choice
    rule (see the module docstring).

    ``words``: spelling -> answer, matched as whole words in any case (``{"true": "True", "uncertain":
    "Unknown"}``; the longest spelling first). ``letters``: option letter -> answer (``{"A": "True"}``), or a
    string of letters each its own answer (``"ABCDE"``); letters are matched in capitals only, and only
    where written as a choice (``(B)``, ``B)``, ``option B``, a marked answer, a line of its own).
    ``numbered``: for ARC, ``answerN`` names the N-th letter.
    """

    def __init__(self, words: Mapping[str, str] | None = None, letters: Mapping[str, str] | str = "",
                 numbered: bool = False):
        self.words = {w.lower(): a for w, a in (words or {}).items()}
        self.letters = dict(zip(letters, letters)) if isinstance(letters, str) else dict(letters)
        self.numbered = numbered
        alts: list[str] = []
        if self.words:
            spell = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
            alts.append(rf"(?<!\w)(?P<w>(?i:{spell}))(?!\w)")
        if self.letters:
            L = "[" + "".join(re.escape(k) for k in self.letters) + "]"
            alts.append(rf"(?<![\w\\])(?P<l>{L})(?![\w'])")
        if numbered:
            alts.append(r"(?i:answer)\s*(?P<n>[1-9])\b")
        token = "|".join(alts) or r"(?!x)x"
        self._token = re.compile(token)
        self._marked = re.compile(rf"{_MARKER}{_OPEN}(?:{token})")
        self._listed = re.compile(rf"{_CLOSE}{_LIST_SEP}{_OPEN}(?:{token})")
        self._line = re.compile(rf"^\W*(?:{token})\W*$")
        mentions = []
        if self.words:
            mentions.append(re.compile(alts[0]))
        if self.letters:
            mentions += [re.compile(p.format(L=L)) for p in (
                r"\(({L})\)",                                     # (B)
                r"(?<![\w(\[\\])({L})\)",                         # B)
                r"(?<![\w*])\*\*({L})[.)]?\*\*(?![\w*])",         # **B**
                r"(?i:answer|option|choice)\s*(?:(?i:is)|:|=)?\s*[(\[*]*({L})(?![\w'])",  # option B, Option: B
            )]
        if numbered:
            mentions.append(re.compile(r"(?i:answer)\s*([1-9])\b"))
        self._mentions = mentions

    # ------------------------------------------------------------------------- tokens to answers

    def _answer(self, m: re.Match) -> str | None:
        """The answer a token match names (None for an ``answerN`` past the letters)."""
        g = m.groupdict()
        if g.get("w"):
            return self.words[g["w"].lower()]
        if g.get("l"):
            return self.letters[g["l"]]
        return self._nth(g["n"]) if g.get("n") else None

    def _nth(self, n: str) -> str | None:
        keys = list(self.letters)
        i = int(n) - 1
        return self.letters[keys[i]] if 0 <= i < len(keys) else None

    def _mention(self, m: re.Match) -> str | None:
        s = m.group(1)
        if s.isdigit():
            return self._nth(s)
        if s in self.letters:
            return self.letters[s]
        return self.words.get(s.lower())

    # ------------------------------------------------------------------------- the rule

    def marked(self, text: str) -> str | None:
        """The option of the last marked answer that names exactly one (rule 2), else None."""
        best = None
        for m in self._marked.finditer(text):
            if self._listed.match(text, m.end()):
                continue  # "Answer: No, Yes" marks nothing
            got = self._answer(m)
            if got is not None:
                best = got
        return best

    def named(self, text: str) -> set[str]:
        """Every option ``text`` mentions (rule 3)."""
        out = set()
        for pat in self._mentions:
            for m in pat.finditer(text):
                a = self._mention(m)
                if a is not None:
                    out.add(a)
        return out

    def final_line(self, text: str) -> str | None:
        """The option the last non-empty line - or that line's last sentence - is, when it is exactly
        one (``**B**``, ``False.``, ``True or false? True.``), else None."""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not lines:
            return None
        for piece in (lines[-1], _SENTENCE.split(lines[-1])[-1]):
            if self._line.match(piece):
                tok = self._token.search(piece)
                return self._answer(tok) if tok else None
        return None

    def _read(self, text: str) -> tuple[str | None, bool]:
        """(answer, whether any option is named) by rules 2-4."""
        got = self.marked(text)
        if got is not None:
            return got, True
        named = self.named(text)
        line = self.final_line(text)
        if line is not None:
            named.add(line)
        if len(named) == 1:
            return next(iter(named)), True
        return line, bool(named)

    def read(self, text: str) -> str | None:
        """The reply's final choice, or None when it makes none (the rule of the module docstring)."""
        boxed = last_boxed(text)
        if boxed:
            got, any_named = self._read(_TEX_WRAP.sub(r"\1", boxed))
            if any_named:
                return got
        return self._read(text)[0]
