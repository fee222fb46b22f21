"""A user's own benchmark from a JSONL file: task ``jsonl``, configured entirely by its options.

    task: {name: jsonl, split: test, options: {path: data/{split}.jsonl, answer_type: number}}

Options (constructor keywords):

* ``path`` (required): the JSONL file, one problem object per line. ``{split}`` in it is replaced by the
  split name (``data/{split}.jsonl``); without it every split reads the same file and the split name is
  only a label.
* ``answer_type`` (required): how gold and predictions are read and compared -

  - ``number``: gold is a JSON number or a number string (``"1,234"``, ``"3.50"``). The prediction is
    the last ``\\boxed{}`` - which must then hold just a number (``\\boxed{\\frac{1}{2}}`` is no number,
    never ``2``) - else the last number of the text; thousands separators are removed and numbers are
    compared by value (``3`` == ``3.0``);
  - ``math``: gold is a LaTeX or plain answer; extraction and verifier are MATH's
    (:func:`~thinkling.tasks.math.extract_math_answer`, :func:`~thinkling.tasks.mathverify.math_equal`);
  - ``choice``: the problem's options are shown as lettered lines ``A) ...``; gold is the letter, the
    0-based index (a JSON int) or the exact text of an option, stored as the letter (a gold that is an
    option letter is read as the letter). The prediction is the reply's final choice of a letter, by the
    rule of the shipped multiple-choice tasks (:class:`~thinkling.tasks.extract.Options`): a letter in a
    ``\\boxed{}`` wins, else the last marked answer (``answer is (B)``, ``Answer: B``), else the one letter
    the reply names (``(B)``, ``B)``, ``**B**``, or the letter alone); a reply naming several letters
    without a final choice (``A) Paris B) Rome``) is no answer, unless its final line is one letter;
  - ``label``: gold is one of a fixed set of labels; the prediction is the reply's final choice of a label
    (labels matched as whole words, case-insensitive; canonical spelling), by the same rule: a box, else
    the last marked answer (``the answer is no``), else the one label the reply names. A reply naming
    several labels without a final choice - e.g. parroting the prompt's ``Answer with one of: No, Yes.`` -
    is no answer (never credited), unless its final line is exactly one label.

* ``question_field`` (``"question"``), ``answer_field`` (``"answer"``): the fields holding the question
  text and the gold.
* ``id_field`` (None: the line number): a string or int field giving each problem its id (a duplicate is
  an error: stages key problems by id).
* ``level_field`` (None: every problem is level 1): an int field >= 1. ``task.levels`` lists the levels of
  the problems loaded so far (``(1,)`` before any).
* ``choices_field`` (required for ``choice``, only for it): a list of option strings (2 to 26).
* ``labels`` (only for ``label``): the allowed labels, in their canonical spelling. Default: the gold
  values of the file, in first-seen order (spellings differing only in case are one label). With a
  ``{split}`` path the set is required, so that extraction does not depend on which file was read.
* ``prompt``: a template with ``{question}``, and ``{options}`` (choice) or ``{labels}`` (label); the
  default appends an instruction saying how to give the final answer.
* ``label`` (default: the file's name without its extension, ``data/qa.jsonl`` -> ``qa``; with a
  ``{split}`` path, the name with ``{split}`` and the separators around it removed, ``data/qa_{split}.jsonl``
  -> ``qa``, or the folder's when nothing is left, ``data/qa/{split}.jsonl`` -> ``qa``): the name the task
  goes by in results, units and the report (:attr:`~thinkling.tasks.base.Task.label`), so that two
  ``jsonl`` tasks of one evaluation can be told apart. Problem ids stay ``jsonl/<split>/<id>``.

Unlike the shipped benchmarks, where unparseable gold is None (counted, never credited), a gold that
does not fit the declared ``answer_type`` is a :class:`DataError` naming ``file:line``: the user
declared the type, so a mismatch is a mistake in the file or in the options.
"""

from __future__ import annotations

import re
import string
from decimal import Decimal
from pathlib import Path, PurePath

from thinkling.artifacts import DataError, located_rows, require_field
from thinkling.records import Problem
from thinkling.tasks.base import Task, register_task, sample_problems
from thinkling.tasks.extract import Options, last_boxed, last_number
from thinkling.tasks.math import extract_math_answer, plain_number
from thinkling.tasks.mathverify import canonical, math_equal

ANSWER_TYPES = ("number", "label", "math", "choice")
LETTERS = string.ascii_uppercase

_DEFAULT_PROMPTS = {
    "number": "{question}\n\nGive the final answer as a number in \\boxed{{}}.",
    "math": "{question}\n\nGive the final answer in \\boxed{{}}.",
    "choice": "{question}\n\nOptions:\n{options}\n\nAnswer with the letter of the correct option.",
    "label": "{question}\n\nAnswer with one of: {labels}.",
}
_PLACEHOLDERS = {"number": {"question"}, "math": {"question"}, "choice": {"question", "options"},
                 "label": {"question", "labels"}}


def user_label(task: str, path: str, label: str | None) -> str:
    """A user task's label: ``label`` when given (a non-empty string), else the file name of ``path``
    without its extension and without ``{split}`` (and the separators around it), else the folder's."""
    if label is not None:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{task}: the option 'label' must be a non-empty string, got {label!r}")
        return label.strip()
    p = PurePath(path)
    for part in (p.stem if p.suffix else p.name, p.parent.name):
        name = re.sub(r"[\s._-]*\{split\}[\s._-]*", "_", part).strip(" ._-")
        if name:
            return name
    return task


@register_task("jsonl")
class JsonlTask(Task):
    """A user's JSONL benchmark; see the module docstring for the options."""

    def __init__(self, path: str | None = None, answer_type: str | None = None,
                 question_field: str = "question", answer_field: str = "answer", id_field: str | None = None,
                 level_field: str | None = None, choices_field: str | None = None,
                 labels: list[str] | None = None, prompt: str | None = None, label: str | None = None):
        if not path:
            raise ValueError("jsonl: the option 'path' is required (task.options.path: the JSONL file, "
                             "'{split}' in it is replaced by the split name)")
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"jsonl: answer_type must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
        if (answer_type == "choice") != (choices_field is not None):
            raise ValueError("jsonl: choices_field is required for answer_type=choice and only used there"
                             f" (answer_type={answer_type}, choices_field={choices_field!r})")
        if labels is not None and answer_type != "label":
            raise ValueError(f"jsonl: labels are only used with answer_type=label, not {answer_type}")
        if answer_type == "label" and labels is None and "{split}" in path:
            raise ValueError("jsonl: with a '{split}' path, answer_type=label needs the labels option "
                             "(each split's file could have other gold values)")
        self.path = path
        self._label = user_label("jsonl", path, label)
        self.answer_type = answer_type
        self.question_field, self.answer_field = question_field, answer_field
        self.id_field, self.level_field, self.choices_field = id_field, level_field, choices_field
        self.prompt = prompt or _DEFAULT_PROMPTS[answer_type]
        names = {f for _, f, _, _ in string.Formatter().parse(self.prompt) if f is not None}
        allowed = _PLACEHOLDERS[answer_type]
        if "question" not in names or not names <= allowed:
            raise ValueError(f"jsonl: prompt must contain {{question}} and may use only "
                             f"{', '.join('{' + a + '}' for a in sorted(allowed))} for answer_type={answer_type}; "
                             f"it uses {', '.join('{' + n + '}' for n in sorted(names)) or 'none'}")
        self._labels = None if labels is None else self._check_labels(labels)
        self._seen_levels: set[int] = set()
        self._answer_options: Options | None = None

    # ------------------------------------------------------------------------- loading

    @staticmethod
    def _check_labels(labels: list[str]) -> tuple[str, ...]:
        if not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise ValueError(f"jsonl: labels must be a non-empty list of non-empty strings, got {labels!r}")
        if len({x.strip().lower() for x in labels}) != len(labels):
            raise ValueError(f"jsonl: labels must differ other than in case, got {labels!r}")
        return tuple(x.strip() for x in labels)

    def _split_file_rows(self, split: str) -> list[tuple[dict, str]]:
        """(row, "file:line") pairs of the split's file (``{split}`` in the path replaced); none is an error."""
        file = Path(self.path.replace("{split}", split))
        which = f"split {split!r} of " if "{split}" in self.path else ""
        rows = located_rows(file, f"jsonl: {file} not found ({which}task.options.path={self.path!r})")
        if not rows:
            raise DataError(f"{file}: no problems")
        return rows

    def _gold_value(self, row: dict, where: str) -> object:
        v = row.get(self.answer_field)
        if v is None:
            raise DataError(f"{where}: missing field '{self.answer_field}'")
        return v

    def _mismatch(self, where: str, value: object, what: str) -> DataError:
        return DataError(f"{where}: field '{self.answer_field}' is {value!r}, which is {what} "
                         f"(answer_type={self.answer_type})")

    @property
    def label(self) -> str:
        """The ``label`` option, else the name of the file (see the module docstring)."""
        return self._label

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels of the problems loaded so far; ``(1,)`` before any (a file's levels are its data)."""
        return tuple(sorted(self._seen_levels)) or (1,)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set: the option, or the gold values of the (one) file, read once."""
        if self._labels is None:
            self._labels = self._file_labels(self._split_file_rows(""))
        return self._labels

    def _file_labels(self, rows: list[tuple[dict, str]]) -> tuple[str, ...]:
        seen: dict[str, str] = {}
        for row, where in rows:
            v = self._gold_value(row, where)
            if not isinstance(v, str) or not v.strip():
                raise self._mismatch(where, v, "not a label (a non-empty string)")
            seen.setdefault(v.strip().lower(), v.strip())
        return tuple(seen.values())

    def _gold(self, row: dict, where: str, options: list[str]) -> str:
        v = self._gold_value(row, where)
        kind = self.answer_type
        if kind == "number":
            num = None
            if isinstance(v, (int, float)) and not isinstance(v, bool):  # 1e-05 -> "0.00001"
                num = plain_number(format(Decimal(repr(v)), "f"))
            elif isinstance(v, str):
                num = plain_number(v)
            if num is None:
                raise self._mismatch(where, v, "not a number")
            return num
        if kind == "math":
            if isinstance(v, bool) or not isinstance(v, (str, int, float)) or not str(v).strip():
                raise self._mismatch(where, v, "not a math answer (a non-empty string or a number)")
            return str(v).strip()
        if kind == "choice":
            letters = LETTERS[:len(options)]
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(options):
                return letters[v]
            if isinstance(v, str) and v.strip() in letters:
                return v.strip()
            if isinstance(v, str) and v.strip() in [o.strip() for o in options]:
                return letters[[o.strip() for o in options].index(v.strip())]
            raise self._mismatch(where, v, f"not among the options (a letter {letters[0]}-{letters[-1]}, "
                                           f"a 0-based index or an option's text)")
        by_lower = {lab.lower(): lab for lab in self.labels}
        if not isinstance(v, str) or v.strip().lower() not in by_lower:
            raise self._mismatch(where, v, f"not one of the labels {list(self.labels)}")
        return by_lower[v.strip().lower()]

    def _options(self, row: dict, where: str) -> list[str]:
        opts = require_field(row, self.choices_field, where, list)
        if not all(isinstance(o, str) for o in opts) or not 2 <= len(opts) <= len(LETTERS):
            raise DataError(f"{where}: field '{self.choices_field}' must be a list of 2 to {len(LETTERS)} "
                            f"strings, got {opts!r}")
        return opts

    def _problem(self, row: dict, split: str, where: str) -> Problem:
        question = require_field(row, self.question_field, where)
        options = self._options(row, where) if self.answer_type == "choice" else []
        gold = self._gold(row, where, options)
        pid = where.rsplit(":", 1)[1]
        if self.id_field is not None:
            pid = row.get(self.id_field)
            if isinstance(pid, bool) or not isinstance(pid, (str, int)):
                raise DataError(f"{where}: missing or non-str/int field '{self.id_field}'")
        level = 1
        if self.level_field is not None:
            level = require_field(row, self.level_field, where, int)
            if level < 1:
                raise DataError(f"{where}: field '{self.level_field}' must be >= 1, got {level}")
        text = self.prompt.format(
            question=question.strip(),
            options="\n".join(f"{LETTERS[i]}) {o.strip()}" for i, o in enumerate(options)),
            labels=", ".join(self.labels) if self.answer_type == "label" else "",
        )
        meta = {"options": options} if options else {}
        return Problem(id=f"jsonl/{split}/{pid}", task=self.name, split=split, level=level, question=text,
                       answer=gold, meta=meta)

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        """All problems of ``split`` (file order), filtered by level; with ``n``, a seeded sample of
        ``n`` of them, kept in file order."""
        rows = self._split_file_rows(split)
        if self.answer_type == "label" and self._labels is None:
            self._labels = self._file_labels(rows)
        out, seen = [], {}
        for row, where in rows:
            p = self._problem(row, split, where)
            if p.id in seen:
                raise DataError(f"{where}: duplicate id {p.id!r} (first at {seen[p.id]})")
            seen[p.id] = where
            out.append(p)
        self._seen_levels.update(p.level for p in out)
        return sample_problems(out, f"{self.name}/{split}", n, levels, seed)

    # ------------------------------------------------------------------------- extraction

    def extract_answer(self, text: str) -> str | None:
        kind = self.answer_type
        if kind == "math":
            return extract_math_answer(text)
        if kind == "number":
            if "\\boxed" in text:  # a box is the answer, and it must hold a number
                return plain_number(canonical(last_boxed(text) or ""))
            found = last_number(text)
            return plain_number(found) if found else None
        return self.answer_options.read(text)

    @property
    def answer_options(self) -> Options:
        """How a reply names the options (choice: the letters; label: the labels as whole words)."""
        if self._answer_options is None:
            if self.answer_type == "choice":
                self._answer_options = Options(letters=LETTERS)
            else:
                self._answer_options = Options(words={lab.lower(): lab for lab in self.labels})
        return self._answer_options

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        if self.answer_type == "math":
            return math_equal(predicted, gold)
        return predicted == gold
