"""A user's document-grounded questions under the evidence regimes: task ``evidence_jsonl``.

Rows ``{"question", "answer", "concepts", "related_docs", "distractor_docs"}`` (the last three lists of
strings; ``concepts`` and ``related_docs`` non-empty),
optional ``id`` (unique; else the line's index) and ``level`` (else the number of concepts), from
option ``path`` (``{split}`` is replaced by the split; without it every split reads the same file).
``answer_type``: ``number`` (a ``\\boxed{}`` is the answer and must hold just a number, else the
last number of the text; compared by value, ``12`` == ``12.0``), ``label`` or ``text`` (the boxed
content, else the last non-empty line of the final answer, normalised: an ``Answer:`` / ``The answer
is`` prefix, surrounding quotes, markdown and a final period removed, whitespace collapsed, case
folded; exact match - the two differ only in what they tell a reader). Any bad row is a
:class:`DataError` naming ``file:line``. ``label`` names the task in results, units and the report
(default: the file's name, as for ``jsonl``: :func:`~thinkling.tasks.user.user_label`).

The prompt of an instance in a regime is rendered as for the synthetic family ``evidence`` (see
:mod:`thinkling.tasks.evidence` for the regimes); the order of the ``full`` documents is seeded by the
row's id, not by the regime.
"""

from __future__ import annotations

import math
import random
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from thinkling.artifacts import DataError, located_rows, require_field
from thinkling.records import Problem
from thinkling.tasks.base import Task, register_task, sample_problems
from thinkling.tasks.evidence import NUMBER_INSTRUCTION, TEXT_INSTRUCTION, check_regime, render
from thinkling.tasks.extract import last_boxed, last_number
from thinkling.tasks.user import user_label

_NUM = re.compile(r"-?\d+(?:\.\d+)?")
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)


def _canon_number(s: str) -> str | None:
    """One plain number as canonical text (``"1,400"`` -> ``"1400"``, ``"3.50"`` -> ``"3.5"``), else None."""
    s = s.strip().strip("$").strip().replace(",", "")
    if not _NUM.fullmatch(s):
        return None
    d = Decimal(s)
    return str(int(d)) if d == d.to_integral_value() else format(d.normalize(), "f")


def normalise_text(s: str) -> str | None:
    """Case-folded answer text without an answer prefix, quotes, markdown or a final period."""
    s = _ANSWER_PREFIX.sub("", s.strip())
    s = s.strip().strip("*_`\"'$ ").rstrip(".!").strip().strip("*_`\"' ")
    s = re.sub(r"\s+", " ", s).casefold()
    return s or None


def _str_list(row: dict, name: str, where: str, nonempty: bool) -> list[str]:
    v = row.get(name)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise DataError(f"{where}: field '{name}' must be a list of strings"
                        + (" (missing)" if name not in row else f", got {type(v).__name__}"))
    if nonempty and not v:
        raise DataError(f"{where}: field '{name}' must not be empty")
    return v


@register_task("evidence_jsonl")
class EvidenceJsonlTask(Task):
    """A user's document-grounded questions; see the module docstring."""

    levels = (1,)
    evidence = True

    def __init__(self, path: str | None = None, answer_type: str = "number", regime: str = "full",
                 label: str | None = None):
        if not path:
            raise ValueError("evidence_jsonl: option 'path' is required (a JSONL file; may contain {split})")
        if answer_type not in ("number", "label", "text"):
            raise ValueError(f"evidence_jsonl: answer_type must be number, label or text; got {answer_type!r}")
        self.path = path
        self._label = user_label("evidence_jsonl", path, label)
        self.answer_type = answer_type
        self.regime = check_regime("evidence_jsonl", regime)

    @property
    def label(self) -> str:
        """The ``label`` option, else the name of the file (:func:`~thinkling.tasks.user.user_label`)."""
        return self._label

    def _file(self, split: str) -> Path:
        return Path(self.path.replace("{split}", split))

    def _gold(self, row: dict, where: str) -> str:
        raw = row.get("answer")
        if self.answer_type == "number":
            if isinstance(raw, int) and not isinstance(raw, bool):
                raw = str(raw)
            elif isinstance(raw, float) and math.isfinite(raw):
                raw = format(Decimal(repr(raw)), "f")  # 1e-05 -> "0.00001"
            if not isinstance(raw, str):
                raise DataError(f"{where}: missing or non-string/number field 'answer'")
            gold = _canon_number(raw)
            if gold is None:
                raise DataError(f"{where}: field 'answer' is {raw!r}, not a number (answer_type=number)")
            return gold
        raw = require_field(row, "answer", where)
        gold = normalise_text(raw)
        if gold is None:
            raise DataError(f"{where}: field 'answer' is empty")
        return gold

    def _problem(self, row: dict, index: int, split: str, where: str) -> Problem:
        query = require_field(row, "question", where).strip()
        gold = self._gold(row, where)
        concepts = _str_list(row, "concepts", where, nonempty=True)
        related = _str_list(row, "related_docs", where, nonempty=True)
        distractors = _str_list(row, "distractor_docs", where, nonempty=False)
        rid = row.get("id", index)
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
            raise DataError(f"{where}: field 'id' must be a non-empty string or an integer")
        level = row.get("level", len(concepts))
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise DataError(f"{where}: field 'level' must be an integer >= 1, got {level!r}")
        order = list(range(len(related) + len(distractors)))
        random.Random(f"evidence_jsonl/{rid}").shuffle(order)  # seeded by the row, not the regime
        meta = {"regime": self.regime, "concepts": concepts, "related_docs": related,
                "distractor_docs": distractors, "order": order, "query": query, "source_id": rid,
                "answer_type": self.answer_type}
        instr = NUMBER_INSTRUCTION if self.answer_type == "number" else TEXT_INSTRUCTION
        return Problem(id=f"evidence_jsonl/{split}/{rid}", task=self.name, split=split, level=level,
                       question=render(query, instr, self.regime, concepts, related, distractors, order),
                       answer=gold, meta=meta)

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        """All rows of the split's file (file order), filtered by level; with ``n``, a seeded sample."""
        path = self._file(split)
        rows = located_rows(path, f"evidence_jsonl: {path} not found (task.options.path={self.path!r})")
        out: list[Problem] = []
        first: dict[str, str] = {}
        for i, (row, where) in enumerate(rows):
            p = self._problem(row, i, split, where)
            if p.id in first:
                raise DataError(f"{where}: duplicate id {p.meta['source_id']!r} (first at {first[p.id]})")
            first[p.id] = where
            out.append(p)
        return sample_problems(out, f"{self.name}/{split}", n, levels, seed)

    def extract_answer(self, text: str) -> str | None:
        boxed = last_boxed(text)
        if self.answer_type == "number":
            if "\\boxed" in text:  # a box is the answer, and it must hold just a number (\frac{1}{2} is not 2)
                return _canon_number(boxed or "")
            got = last_number(text)
            return _canon_number(got) if got is not None else None
        if boxed:
            return normalise_text(boxed)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return normalise_text(lines[-1]) if lines else None

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        if self.answer_type == "number":
            try:
                return Decimal(predicted) == Decimal(gold)  # canonical texts, compared by value
            except InvalidOperation:
                return False
        return predicted == gold
