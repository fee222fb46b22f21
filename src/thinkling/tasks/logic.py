"""Logic and multiple-choice benchmarks from files (each task's folder of the data dir, see
:mod:`thinkling.tasks.files`; each folder's README in ``../shared/data`` describes its files).

Registered tasks (source files only, no hub):

========================  =====================================  =========  ==================  ==============
task                      splits (file)                          type       gold                levels
========================  =====================================  =========  ==================  ==============
``proofwriter``           train / dev / test                     label      True/False/Unknown  (1,)
``prontoqa``              dev; ``test`` -> dev.jsonl             label      True/False          (1,)
``folio``                 train; validation (``test`` -> it)     label      True/False/Unknown  (1,)
``logical_deduction``     train / dev                            choice     letter A-G          3, 5, 7
``knights_and_knaves``    train / test ({N}ppl_{split}.jsonl)    assignment "A: knight, ..."    3..7 (people)
``arc_challenge``         test (ARC-Challenge_test.jsonl)        choice     letter A-E          (1,)
``arc_easy``              test (ARC-Easy_test.jsonl)             choice     letter A-E          (1,)
========================  =====================================  =========  ==================  ==============

Gold: ProofWriter/PrOntoQA letters are mapped to their option's label (``A) True`` -> ``True``);
FOLIO's ``Uncertain`` (validation) is normalised to ``Unknown`` (train's word). ARC's ``answerN`` is the
N-th option (1-based), shown to the model as the N-th letter (``answer3`` -> ``C``; the index is kept in
``meta["option_index"]``). Knights and knaves: ``solution`` (true = knight) in ``names`` order, as the
canonical ``"Alice: knight, Bob: knave"``. Gold that cannot be parsed is None (never credited); a
missing or mistyped field is a :class:`DataError` naming ``file:line``.

ProofWriter records carry no per-question depth (the whole subset is depth-5, ``...-D5-...`` ids), so
its only level is 1.

Extraction (the final answer text; ``Task.score`` has already removed the reasoning) never guesses. The
label and choice tasks read the final choice by the one rule of :class:`thinkling.tasks.extract.Options`:

* a ``\\boxed{...}`` that names one option wins;
* else the last marked answer (``the answer is (B)``, ``Answer: B``, ``the correct option is E``);
* else the options the reply mentions - label words ``True``/``False``/``Unknown``/``Uncertain`` for
  label tasks, which also accept the option letters they show (A/B/C); for letters ``(B)``, ``B)``,
  ``**B**``, ``option B``, ``answer3`` (ARC) - count when they are all ONE option, or when the reply's
  final line is exactly one option (``G``, ``**False**``). A reply naming several options without a
  final choice ("A) True B) False", "true at first, but false") is no answer (None), like a reply
  naming none;
* knights and knaves: every ``"X is a knight"`` / ``"X is a knave"`` / ``"X is not a knight"`` /
  ``"X: knave"`` statement (X capitalised); the last statement about a person counts. ``verify`` credits
  the prediction when every person of the gold assignment is named with the right role (names the gold
  does not mention, e.g. a stray "He is a knight", are ignored).

Evaluation texts (:meth:`~thinkling.tasks.files.FileTask.eval_texts`, for decontamination): context and
question of ProofWriter test, PrOntoQA dev and LogicalDeduction dev (ids: the ``id`` field), the quiz of
every K&K test puzzle (``{N}ppl_test/{index}``) - all four templated -; FOLIO validation's premises then
conclusion (``validation/{i}``); ARC's question and options without the fixed wording (:func:`arc_text`,
``ARC-Challenge/{i}``, ``ARC-Easy/{i}``).
"""

from __future__ import annotations

import re
from functools import cached_property

from thinkling.artifacts import DataError, require_field
from thinkling.records import Problem
from thinkling.tasks.base import register_task, sample_problems
from thinkling.tasks.extract import LABEL_WORDS, Options, label_of
from thinkling.tasks.files import FileTask, eval_fields

LETTERS = "ABCDEFG"
LABELS = ("True", "False", "Unknown")


def _str_list(row: dict, name: str, where: str) -> list[str]:
    v = require_field(row, name, where, list)
    if not all(isinstance(x, str) for x in v):
        raise DataError(f"{where}: field '{name}' must be a list of strings")
    return v


def _options(row: dict, where: str) -> list[tuple[str, str]]:
    """``["A) True", ...]`` -> [("A", "True"), ...]; an option without its letter is a DataError."""
    out = []
    for o in _str_list(row, "options", where):
        m = re.match(r"\s*([A-G])\)\s*(.*)", o, re.DOTALL)
        if not m:
            raise DataError(f"{where}: option {o!r} does not start with a letter and ')'")
        out.append((m.group(1), m.group(2).strip()))
    return out


class _LogicTask(FileTask):
    """Shared: split -> file mapping, seeded sampling, evaluation texts of the Logic-LM row format."""

    split_files: dict[str, str] = {}
    split_note = ""
    eval_split = "test"  # the split decontamination checks against

    def _file_split(self, split: str) -> str:
        if split not in self.split_files:
            valid = ", ".join(map(repr, self.split_files))
            raise ValueError(f"{self.name}: there is no split {split!r}; valid splits: {valid}"
                             + (f" ({self.split_note})" if self.split_note else ""))
        return self.split_files[split]

    def _problem(self, row: dict, index: int, split: str, file_split: str, where: str) -> Problem:
        raise NotImplementedError

    def _load(self, split: str, levels: list[int] | None) -> list[Problem]:
        fs = self._file_split(split)
        rows = self.read_rows(self.data_dir / f"{fs}.jsonl")
        return [self._problem(r, i, split, fs, where) for i, (r, where) in enumerate(rows)]

    def _eval_item(self, row: dict, index: int, where: str) -> tuple[str, str]:
        """Logic-LM rows: context and question, answer options left out (same puzzle, same item)."""
        rid, context, question = eval_fields(row, where, "id", "context", "question")
        return rid, f"{context}\n{question}"

    def eval_texts(self) -> list[tuple[str, str]]:
        rows = self.read_rows(self.data_dir / f"{self._file_split(self.eval_split)}.jsonl")
        return [self._eval_item(r, i, where) for i, (r, where) in enumerate(rows)]

    def problems(self, split: str, n: int | None = None, levels: list[int] | None = None,
                 seed: int = 0) -> list[Problem]:
        """All problems of ``split`` (file order), filtered by level; with ``n``, a seeded sample of
        ``n`` of them, kept in file order."""
        out = self._load(split, levels)
        return sample_problems(out, f"{self.name}/{split}", n, levels, seed)


class _LabelTask(_LogicTask):
    answer_type = "label"
    labels: tuple[str, ...] = LABELS
    letters = "ABC"
    instruction = "Answer with True, False or Unknown."

    @cached_property
    def answer_options(self) -> Options:
        """How a reply names the options: the label words and the option letters shown (A -> True)."""
        return Options(words=LABEL_WORDS, letters=dict(zip(self.letters, self.labels)))

    def extract_answer(self, text: str) -> str | None:
        """The final choice (:meth:`~thinkling.tasks.extract.Options.read`); None without one."""
        return self.answer_options.read(text)

    def _render(self, context: str, question: str, options: list[tuple[str, str]]) -> str:
        opts = "\n".join(f"{k}) {v}" for k, v in options)
        return f"{context.strip()}\n\n{question.strip()}\nOptions:\n{opts}\n\n{self.instruction}"

    def _problem(self, row, index, split, file_split, where) -> Problem:  # ProofWriter and PrOntoQA rows
        context = require_field(row, "context", where)
        question = require_field(row, "question", where)
        options = _options(row, where)
        letter = require_field(row, "answer", where)
        by_letter = dict(options)
        label = by_letter.get(letter.strip())
        gold = label if label in self.labels else None
        meta = {"source_id": row.get("id"), "letter": letter}
        if isinstance(row.get("explanation"), list):
            meta["explanation"] = row["explanation"]
        return Problem(id=f"{self.name}/{file_split}/{index}", task=self.name, split=split, level=1,
                       question=self._render(context, question, options), answer=gold, meta=meta)


@register_task("proofwriter")
class ProofWriterTask(_LabelTask):
    group = "deductive"
    folder = "proofwriter"
    env_var = "THINKLING_PROOFWRITER_DIR"
    templated = True
    split_files = {"train": "train", "dev": "dev", "test": "test"}


@register_task("prontoqa")
class ProntoQATask(_LabelTask):
    """Only ``dev.jsonl`` exists (Logic-LM's PrOntoQA test set); split ``test`` reads it too."""

    group = "deductive"
    folder = "prontoqa"
    env_var = "THINKLING_PRONTOQA_DIR"
    templated = True
    labels = ("True", "False")
    letters = "AB"
    instruction = "Answer with True or False."
    split_files = {"dev": "dev", "test": "dev"}
    split_note = "'test' maps to dev.jsonl, the only file, which is used as the test set"


@register_task("folio")
class FolioTask(_LabelTask):
    """FOLIO v0.0; the validation file is the de facto test set, so ``test`` maps to it."""

    group = "deductive"
    folder = "folio"
    env_var = "THINKLING_FOLIO_DIR"
    split_files = {"train": "folio-train", "validation": "folio-validation", "test": "folio-validation"}
    split_note = "'test' maps to folio-validation.jsonl; the official test set is unreleased"
    letters = ""  # no letters are shown for FOLIO: only label words count

    def _render_folio(self, premises: list[str], conclusion: str) -> str:
        prem = "\n".join(f"- {p.strip()}" for p in premises)
        return (f"Premises:\n{prem}\n\nConclusion: {conclusion.strip()}\n\n"
                f"Based only on the premises, is the conclusion true, false, or unknown (it cannot be "
                f"determined)? {self.instruction}")

    def _problem(self, row, index, split, file_split, where):
        premises = _str_list(row, "premises", where)
        conclusion = require_field(row, "conclusion", where)
        raw = require_field(row, "label", where)
        gold = label_of(raw.strip())
        meta = {"story_id": row.get("story_id"), "example_id": row.get("example_id"), "label": raw}
        return Problem(id=f"{self.name}/{file_split}/{index}", task=self.name, split=split, level=1,
                       question=self._render_folio(premises, conclusion), answer=gold, meta=meta)

    def _eval_item(self, row: dict, index: int, where: str) -> tuple[str, str]:
        """Premises then conclusion, ids ``validation/<index>``."""
        premises, conclusion = eval_fields(row, where, "premises", "conclusion")
        return f"validation/{index}", " ".join([*premises, conclusion])


class _ChoiceTask(_LogicTask):
    answer_type = "choice"
    letters = LETTERS
    instruction = "Answer with the letter of the correct option."

    numbered = False  # ARC: "answerN" names the N-th option

    @cached_property
    def answer_options(self) -> Options:
        """How a reply names the options: their letters (and ARC's ``answerN``)."""
        return Options(letters=self.letters, numbered=self.numbered)

    def extract_answer(self, text: str) -> str | None:
        """The final choice (:meth:`~thinkling.tasks.extract.Options.read`); None without one."""
        return self.answer_options.read(text)


@register_task("logical_deduction")
class LogicalDeductionTask(_ChoiceTask):
    """BIG-bench LogicalDeduction (Logic-LM copy). Level = number of options (3, 5 or 7)."""

    group = "deductive"
    folder = "logical_deduction"
    env_var = "THINKLING_LOGICAL_DEDUCTION_DIR"
    templated = True
    levels = (3, 5, 7)
    split_files = {"train": "train", "dev": "dev"}
    split_note = "Logic-LM reports dev as its test set"
    eval_split = "dev"

    def _problem(self, row, index, split, file_split, where):
        context = require_field(row, "context", where)
        question = require_field(row, "question", where)
        options = _options(row, where)
        letter = require_field(row, "answer", where).strip()
        gold = letter if letter in dict(options) else None
        opts = "\n".join(f"{k}) {v}" for k, v in options)
        text = f"{context.strip()}\n\n{question.strip()}\nOptions:\n{opts}\n\n{self.instruction}"
        return Problem(id=f"{self.name}/{file_split}/{index}", task=self.name, split=split,
                       level=len(options), question=text, answer=gold, meta={"source_id": row.get("id")})


_ARC = re.compile(r"^(?:Please choose the correct answer to the question:\s*)?(?P<q>.*?)\s*"
                  r"(?P<opts>Answer1:.*?)\s*(?:Answer format:.*)?$", re.DOTALL)
_ARC_OPT = re.compile(r"Answer(\d+):\s*")
_ARC_GOLD = re.compile(r"\s*answer(\d+)\s*", re.IGNORECASE)
_ARC_PREFIX = re.compile(r"^\s*Please choose the correct answer to the question:\s*")
_ARC_FORMAT = re.compile(r"\n\s*Answer format:.*$", re.DOTALL)
_ARC_LABEL = re.compile(r"\bAnswer\d+:\s*")


def arc_text(instruction: str) -> str:
    """Question and options of an LLM-Adapters ARC instruction, without its fixed wording."""
    return _ARC_LABEL.sub(" ", _ARC_FORMAT.sub("", _ARC_PREFIX.sub("", instruction))).strip()


class _ArcTask(_ChoiceTask):
    """ARC test sets in LLM-Adapters' instruction format; ``answerN`` is shown as the N-th letter."""

    folder = "arc"
    letters = "ABCDE"
    numbered = True
    file = ""
    split_files = {"test": "test"}
    split_note = "only the ARC test sets are in ../shared/data/arc"

    def _load(self, split, levels):
        self._file_split(split)
        rows = self.read_rows(self.data_dir / f"{self.file}_test.jsonl")
        return [self._problem(r, i, split, "test", where) for i, (r, where) in enumerate(rows)]

    def eval_texts(self) -> list[tuple[str, str]]:
        """Question and options of each instruction (:func:`arc_text`), ids ``<file>/<index>``."""
        rows = self.read_rows(self.data_dir / f"{self.file}_test.jsonl")
        return [(f"{self.file}/{i}", arc_text(*eval_fields(r, where, "instruction")))
                for i, (r, where) in enumerate(rows)]

    def _problem(self, row, index, split, file_split, where):
        instr = require_field(row, "instruction", where)
        raw = require_field(row, "answer", where)
        m = _ARC.match(instr.strip())
        if not m:
            raise DataError(f"{where}: field 'instruction' has no 'Answer1:' options")
        parts = _ARC_OPT.split(m.group("opts"))  # ["", "1", text1, "2", text2, ...]
        nums = [int(x) for x in parts[1::2]]
        texts = [t.strip() for t in parts[2::2]]
        if nums != list(range(1, len(nums) + 1)) or len(nums) > len(self.letters):
            raise DataError(f"{where}: field 'instruction' has options numbered {nums}, expected 1..N")
        g = _ARC_GOLD.fullmatch(raw)
        idx = int(g.group(1)) if g else None
        gold = LETTERS[idx - 1] if idx and 1 <= idx <= len(texts) else None
        opts = "\n".join(f"{LETTERS[i]}) {t}" for i, t in enumerate(texts))
        text = f"{m.group('q').strip()}\n\nOptions:\n{opts}\n\n{self.instruction}"
        return Problem(id=f"{self.name}/test/{index}", task=self.name, split=split, level=1,
                       question=text, answer=gold, meta={"option_index": idx, "n_options": len(texts)})


@register_task("arc_challenge")
class ArcChallengeTask(_ArcTask):
    env_var = "THINKLING_ARC_DIR"
    file = "ARC-Challenge"


@register_task("arc_easy")
class ArcEasyTask(_ArcTask):
    env_var = "THINKLING_ARC_DIR"
    file = "ARC-Easy"


# ----------------------------------------------------------------------------- knights and knaves

_KK_IS = re.compile(r"\b([A-Z][a-z]+)\s+(?i:is|was)\s+((?i:not)\s+)?(?i:an?\s+)?((?i:knight|knave))s?\b")
_KK_COLON = re.compile(r"\b([A-Z][a-z]+)\s*(?::|=|-|\u2014|\u2013)\s*(?i:an?\s+)?((?i:knight|knave))\b")
_NOT_NAMES = {"He", "She", "It", "They", "This", "That", "Who", "Everyone", "Nobody", "Someone", "Each",
              "Every", "Which", "Then", "So", "Therefore", "Thus", "Hence", "If", "Neither", "Either",
              "Both", "One", "Not", "Answer", "Person", "Statement", "Solution"}


def kk_canonical(assign: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in assign.items())


def kk_parse(text: str) -> dict[str, str]:
    """Person -> "knight"/"knave" from the statements of ``text``; the last statement per person wins."""
    found: list[tuple[int, str, str]] = []
    for m in _KK_IS.finditer(text):
        role = m.group(3).lower()
        if m.group(2):
            role = "knave" if role == "knight" else "knight"
        found.append((m.start(), m.group(1), role))
    for m in _KK_COLON.finditer(text):
        found.append((m.start(), m.group(1), m.group(2).lower()))
    out: dict[str, str] = {}
    for _, name, role in sorted(found):
        if name not in _NOT_NAMES:
            out[name] = role
    return out


@register_task("knights_and_knaves")
class KnightsAndKnavesTask(_LogicTask):
    """K&K puzzles (Logic-RL copy), 3-7 people; level = number of people."""

    answer_type = "assignment"
    group = "deductive"
    folder = "knights_and_knaves"
    env_var = "THINKLING_KK_DIR"
    templated = True
    levels = (3, 4, 5, 6, 7)
    split_files = {"train": "train", "test": "test"}
    instruction = ("Give your final answer as one statement per person, in the form "
                   "\"Name is a knight\" or \"Name is a knave\".")

    def _load(self, split, levels):
        fs = self._file_split(split)
        out = []
        for lv in self.levels:
            if levels and lv not in levels:
                continue
            rows = self.read_rows(self.data_dir / f"{lv}ppl_{fs}.jsonl")
            for i, (r, where) in enumerate(rows):
                out.append(self._problem(r, i, split, fs, where, lv))
        return out

    def eval_texts(self) -> list[tuple[str, str]]:
        """The quiz of every test puzzle, 3 to 7 people, ids ``<N>ppl_test/<index field>``."""
        items = []
        for lv in self.levels:
            for r, where in self.read_rows(self.data_dir / f"{lv}ppl_test.jsonl"):
                quiz, index = eval_fields(r, where, "quiz", "index")
                items.append((f"{lv}ppl_test/{index}", quiz))
        return items

    def _problem(self, row, index, split, file_split, where, level=0):
        quiz = require_field(row, "quiz", where)
        names = _str_list(row, "names", where)
        sol = require_field(row, "solution", where, list)
        gold = None
        if len(sol) == len(names) and all(isinstance(b, bool) for b in sol) and len(set(names)) == len(names):
            gold = kk_canonical({n: "knight" if b else "knave" for n, b in zip(names, sol)})
        return Problem(id=f"{self.name}/{file_split}/{level}ppl/{index}", task=self.name, split=split,
                       level=level or len(names), question=f"{quiz.strip()}\n\n{self.instruction}",
                       answer=gold, meta={"names": names})

    def extract_answer(self, text: str) -> str | None:
        found = kk_parse(text)
        return kk_canonical(found) if found else None

    def verify(self, predicted: str | None, gold: str | None) -> bool:
        if predicted is None or gold is None:
            return False
        g = dict(p.split(": ", 1) for p in gold.split(", "))
        p = dict(x.split(": ", 1) for x in predicted.split(", "))
        return all(p.get(k) == v for k, v in g.items())
