"""MATH, MATH-500, AIME 2024/2025 and AMC 2023 from files (folder ``<task>`` of the data dir, see
:mod:`thinkling.tasks.files`) or the HF hub.

All are test sets: MATH-500 is a subset of the 5,000-problem MATH test set (Hendrycks et al.); the
competition tasks ``aime24``, ``aime25`` (30 problems each) and ``amc23`` (40) have one numeric answer
per problem. Do not train or distil on them.

Gold: MATH-500's ``answer`` field; MATH's last ``\\boxed{...}`` of ``solution`` (nested braces
matched); the competitions' ``answer`` written as a plain number (AIME 2024's ``"025"`` -> ``25``,
AMC's ``27.0`` -> ``27``). Empty or missing gold is None: counted, never credited. Level: MATH's 1-5;
the competition files carry no difficulty, so their only level is 1.

Verification: :func:`~thinkling.tasks.mathverify.math_equal` (a light normalisation, else math-verify
with timeouts, safe in any thread; see :mod:`thinkling.tasks.mathverify`). The competition tasks first
compare plain numbers as numbers (:func:`plain_number`: ``25``, ``025`` and ``25.0`` are one answer), and
only answers that are not plain numbers go to ``math_equal``.

Evaluation texts (:meth:`~thinkling.tasks.files.FileTask.eval_texts`, for decontamination): the
``problem`` of every record of ``test.jsonl``, ids MATH-500's ``unique_id``, MATH's ``test/{idx}``, the
competitions' ``id``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from thinkling.artifacts import DataError, require_field
from thinkling.records import Problem
from thinkling.tasks.base import OracleTrace, register_task, sample_problems
from thinkling.tasks.extract import last_boxed, last_number
from thinkling.tasks.files import FileTask, eval_fields
from thinkling.tasks.mathverify import TEXT_WRAP, canonical, math_equal, strip_math_delimiters

# ----------------------------------------------------------------------------- extraction


_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
# math spans; an escaped ``\$`` (a dollar sign) is not a delimiter
_INLINE_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]",
                          re.DOTALL)
_LATEX_MARK = re.compile(r"[\\$^_{}]")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # a run of letters that is not a \command
_NOT_WORDS = re.compile(r"\\(?:begin|end)\s*\{[A-Za-z*]*\}|" + TEXT_WRAP.pattern)  # LaTeX, not prose


def _answer_is(text: str) -> str | None:
    """The answer after the last "answer is" / "answer:": the first math span of its line, else the
    rest of the sentence (to a full stop followed by a space, or the end of the line)."""
    ms = list(_ANSWER_IS.finditer(text))
    if not ms:
        return None
    line = text[ms[-1].end():].lstrip().split("\n", 1)[0]  # "answer is:\n$$5$$" takes the next line
    m = _INLINE_MATH.search(line)
    if m:
        return next(g for g in m.groups() if g is not None).strip() or None
    line = re.split(r"\.\s", line, maxsplit=1)[0]
    line = line.strip().lstrip("*").rstrip(" .*")  # "**42**." -> "42" (".5" keeps its point)
    return line or None


def extract_math_answer(text: str) -> str | None:
    """The final answer of a completion: the last ``\\boxed{}`` (when there is a box, only it counts),
    else what follows the last
    "answer is", else the whole text when it is one expression without words (``$\\frac{1}{2}$``),
    else - only for plain text without any LaTeX - the last number. Else None."""
    if "\\boxed" in text:  # a box is the answer; an empty or unclosed one is no answer
        boxed = strip_math_delimiters(last_boxed(text) or "")
        return boxed or None
    ans = _answer_is(text)
    if ans:
        return strip_math_delimiters(ans) or None
    bare = strip_math_delimiters(text.strip().rstrip(".").rstrip())
    if (bare and "\n" not in bare and "$" not in bare.replace("\\$", "")
            and not _WORD.search(_NOT_WORDS.sub(" ", bare))):
        return bare  # the whole text is one expression: "$\frac{1}{2}$", "x = 6 - 5i", "(3, \pi)"
    if _LATEX_MARK.search(text):
        return None  # never guess a number out of LaTeX: "\frac{1}{2}" is not "2"
    return last_number(text)


_PLAIN_NUMBER = re.compile(r"(?P<sign>[-+]?)(?P<int>\d{1,3}(?:,\d{3})+|\d*)(?:\.(?P<frac>\d+))?")


def plain_number(s: str) -> str | None:
    """``s`` as a canonical decimal when it is one plain number, else None: ``"025"`` -> ``"25"``,
    ``"25.0"`` -> ``"25"``, ``"1,625"`` -> ``"1625"``, ``"-3.50"`` -> ``"-3.5"``. Two plain numbers are
    equal exactly when their canonical texts are (done on the text, so no size or precision limit)."""
    m = _PLAIN_NUMBER.fullmatch(s.strip())
    if not m or not (m["int"] or m["frac"]):
        return None
    whole = m["int"].replace(",", "").lstrip("0") or "0"
    frac = (m["frac"] or "").rstrip("0")
    text = f"{whole}.{frac}" if frac else whole
    return f"-{text}" if m["sign"] == "-" and text != "0" else text


# ----------------------------------------------------------------------------- tasks


class _MathFileTask(FileTask):
    """Shared by MATH and MATH-500: rows -> problems, extraction and verification."""

    answer_type = "latex"
    levels = (1, 2, 3, 4, 5)
    hub_splits: tuple[str, ...] = ("test",)

    def __init__(self, data_dir: str | Path | None = None, source: str = "files"):
        if source not in ("files", "hub"):
            raise ValueError(f"{self.name}: source must be 'files' or 'hub', got {source!r}")
        self.source = source
        super().__init__(data_dir)

    # subclasses: where rows come from, what one row means, and its evaluation text
    def _hub_rows(self, split: str) -> list[dict]:
        raise NotImplementedError

    def _problem(self, row: dict, index: int, split: str, where: str) -> Problem:
        raise NotImplementedError

    def _eval_item(self, row: dict, where: str) -> tuple[str, str]:
        raise NotImplementedError

    def eval_texts(self) -> list[tuple[str, str]]:
        """The problem texts of ``test.jsonl`` (from the files, whatever ``source`` says)."""
        return [self._eval_item(r, where) for r, where in self.read_rows(self.data_dir / "test.jsonl")]

    def _check_split(self, split: str) -> None:
        allowed = self.hub_splits if self.source == "hub" else ("test",)
        if split in allowed:
            return
        msg = (f"{self.name}: there is no split {split!r}, only {' and '.join(map(repr, allowed))} "
               f"('test' is a test set: evaluate on it, do not train or distil on it)")
        extra = [s for s in self.hub_splits if s not in allowed]
        if extra:
            msg += f"; {', '.join(map(repr, extra))} is only on the hub (task.options.source=hub)"
        raise ValueError(msg)

    def _located_split_rows(self, split: str) -> list[tuple[dict, str]]:
        """(row, "file:line" or "hub:index") pairs of a split; missing fields are errors naming the line."""
        self._check_split(split)
        if self.source == "hub":
            return [(r, f"hub:{self.name}/{split}:{i}") for i, r in enumerate(self._hub_rows(split))]
        return self.read_rows(self.data_dir / f"{split}.jsonl", "; or source=hub")

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        """All problems of ``split`` (file order), filtered by level; with ``n``, a seeded sample of
        ``n`` of them, still in file order (the files are sorted by subject, so a prefix would not do)."""
        out = [self._problem(r, i, split, where) for i, (r, where) in enumerate(self._located_split_rows(split))]
        return sample_problems(out, f"{self.name}/{split}", n, levels, seed)

    def extract_answer(self, text: str) -> str | None:
        return extract_math_answer(text)

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        return math_equal(predicted, gold)

    def reference_trace(self, problem: Problem) -> OracleTrace | None:
        sol = problem.meta.get("solution")
        if not sol or problem.answer is None:
            return None
        return OracleTrace(reasoning=sol, answer=f"The answer is \\boxed{{{problem.answer}}}.")


def _level(v: int, where: str) -> int:
    if not 1 <= v <= 5:
        raise DataError(f"{where}: field 'level' must be 1-5, got {v!r}")
    return v


@register_task("math500")
class Math500Task(_MathFileTask):
    """MATH-500 (the PRM800K 500-problem test subset of MATH); gold is the ``answer`` field."""

    folder = "math500"
    env_var = "THINKLING_MATH500_DIR"

    def _hub_rows(self, split: str) -> list[dict]:  # needs network access to the HF hub
        from datasets import load_dataset  # heavy, and only for source=hub

        return list(load_dataset("HuggingFaceH4/MATH-500", split=split))

    def _problem(self, row: dict, index: int, split: str, where: str) -> Problem:
        question = require_field(row, "problem", where)
        solution = require_field(row, "solution", where)
        answer = require_field(row, "answer", where).strip()
        uid = require_field(row, "unique_id", where)
        name = uid.removeprefix(f"{split}/").removesuffix(".json")
        return Problem(
            id=f"math500/{split}/{name}", task=self.name, split=split,
            level=_level(require_field(row, "level", where, int), where), question=question,
            answer=answer or None,
            meta={"subject": require_field(row, "subject", where), "unique_id": uid, "solution": solution},
        )

    def _eval_item(self, row: dict, where: str) -> tuple[str, str]:
        problem, uid = eval_fields(row, where, "problem", "unique_id")
        return f"{uid}", problem


_MATH_HUB_CONFIGS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                     "number_theory", "prealgebra", "precalculus")


@register_task("math")
class MathTask(_MathFileTask):
    """The full MATH test set (5,000 problems); gold is the last ``\\boxed{}`` of the solution."""

    folder = "math"
    env_var = "THINKLING_MATH_DIR"
    hub_splits = ("test", "train")

    def _hub_rows(self, split: str) -> list[dict]:  # needs network access to the HF hub
        from datasets import load_dataset  # heavy, and only for source=hub

        rows: list[dict] = []
        for cfg in _MATH_HUB_CONFIGS:  # the same subject order as the shared file
            rows.extend(load_dataset("EleutherAI/hendrycks_math", cfg, split=split))
        return rows

    def _problem(self, row: dict, index: int, split: str, where: str) -> Problem:
        question = require_field(row, "problem", where)
        solution = require_field(row, "solution", where)
        level_s = require_field(row, "level", where)
        m = re.fullmatch(r"Level (\d)", level_s.strip())
        if not m:
            raise DataError(f"{where}: field 'level' must be 'Level 1'..'Level 5', got {level_s!r}")
        idx = row.get("idx", index)
        gold = last_boxed(solution)
        return Problem(
            id=f"math/{split}/{idx}", task=self.name, split=split, level=_level(int(m.group(1)), where),
            question=question, answer=gold or None,
            meta={"subject": require_field(row, "type", where), "idx": idx, "solution": solution},
        )

    def _eval_item(self, row: dict, where: str) -> tuple[str, str]:
        problem, idx = eval_fields(row, where, "problem", "idx")
        return f"test/{idx}", problem


# ----------------------------------------------------------------------------- competitions


def _competition_gold(value: object, where: str) -> str | None:
    """The ``answer`` field as text: an int as is, a whole float as an int (``27.0`` -> ``"27"``; another
    float keeps its decimals), a number string in :func:`plain_number` form (``"025"`` -> ``"25"``), any
    other string as written (math-verify compares it). Empty, NaN or infinite gold is None; a missing
    value or one that is neither a number nor a string is a DataError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataError(f"{where}: missing or non-numeric field 'answer'")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return plain_number(text) or text or None


class _CompetitionTask(_MathFileTask):
    """AIME / AMC: one numeric answer per problem, at the single level 1 (the files carry no
    difficulty). Plain numbers are compared as numbers, anything else by :func:`math_equal`."""

    levels = (1,)
    hub_id = ""
    hub_split = "test"  # the hub's name for the one split

    def _hub_rows(self, split: str) -> list[dict]:  # needs network access to the HF hub
        from datasets import load_dataset  # heavy, and only for source=hub

        return list(load_dataset(self.hub_id, split=self.hub_split))

    def _problem(self, row: dict, index: int, split: str, where: str) -> Problem:
        question = require_field(row, "problem", where)
        meta = {k: row[k] for k in ("url", "solution") if isinstance(row.get(k), str)}
        return Problem(id=f"{self.name}/{split}/{row.get('id', index)}", task=self.name, split=split,
                       level=1, question=question, answer=_competition_gold(row.get("answer"), where),
                       meta=meta)

    def _eval_item(self, row: dict, where: str) -> tuple[str, str]:
        problem, pid = eval_fields(row, where, "problem", "id")
        return f"{pid}", problem

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        p, g = plain_number(canonical(predicted)), plain_number(canonical(gold))
        if p is not None and g is not None:
            return p == g
        return math_equal(predicted, gold)


@register_task("aime24")
class Aime24Task(_CompetitionTask):
    """AIME 2024 I and II; gold ``answer`` is a zero-padded string (``"025"``), read as ``25``.
    Each record has an AoPS solution, so :meth:`reference_trace` works."""

    folder = "aime24"
    env_var = "THINKLING_AIME24_DIR"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"  # its only split (the 30 problems)


@register_task("aime25")
class Aime25Task(_CompetitionTask):
    """AIME 2025 I (records 0-14) and II (15-29); gold ``answer`` is an int. No solutions."""

    folder = "aime25"
    env_var = "THINKLING_AIME25_DIR"
    hub_id = "math-ai/aime25"


@register_task("amc23")
class Amc23Task(_CompetitionTask):
    """AMC 12 2023 without its multiple-choice options; gold ``answer`` is a float (``27.0`` -> ``27``)."""

    folder = "amc23"
    env_var = "THINKLING_AMC23_DIR"
    hub_id = "math-ai/amc23"

    def _hub_rows(self, split: str) -> list[dict]:  # the hub copy may name the text only ``question``
        return [{"problem": r.get("question"), **r} for r in super()._hub_rows(split)]
