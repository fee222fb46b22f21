"""The evaluation sets decontamination checks training questions against, read through their tasks.

A set is the evaluation texts of one file task (:meth:`thinkling.tasks.files.FileTask.eval_texts`:
(id, text) items and the ``templated`` flag), named as in :data:`EVAL_TASKS`; ``arc`` is both ARC test
sets together (``arc_challenge`` then ``arc_easy``). With a ``data_dir`` - the data *root*, e.g.
``decontaminate.data_dir`` - each task reads its folder under it (``<data_dir>/gsm8k``, ...); without
one, each task finds its own data dir by the rule of :mod:`thinkling.tasks.files`
(``$THINKLING_<TASK>_DIR``, else ``$THINKLING_DATA_DIR/<folder>``, else ``../shared/data/<folder>``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from thinkling.tasks import get_task
from thinkling.tasks.base import TASKS
from thinkling.tasks.files import FileTask, data_root

#: eval set name -> the file tasks whose evaluation texts it holds, in order
EVAL_TASKS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("gsm8k",),
    "math500": ("math500",),
    "math": ("math",),
    "aime24": ("aime24",),
    "aime25": ("aime25",),
    "amc23": ("amc23",),
    "folio": ("folio",),
    "proofwriter": ("proofwriter",),
    "prontoqa": ("prontoqa",),
    "logical_deduction": ("logical_deduction",),
    "knights_and_knaves": ("knights_and_knaves",),
    "arc": ("arc_challenge", "arc_easy"),
}


@dataclass
class EvalSet:
    """An evaluation split as (id, text) items; the text is what a contaminated prompt would hold."""

    name: str
    items: list[tuple[str, str]] = field(default_factory=list)
    #: Generated from templates (ProofWriter, PrOntoQA, LogicalDeduction, Knights and Knaves): its
    #: items differ from each other by substituted words, so a match must be near-verbatim.
    templated: bool = False

    def __len__(self) -> int:
        return len(self.items)


def default_data_dir() -> Path:
    """The data root: ``$THINKLING_DATA_DIR``, else ``../shared/data`` relative to the working directory."""
    return data_root()


def _file_task(name: str, data_dir: str | Path | None) -> FileTask:
    if data_dir is None:
        return get_task(name)
    return get_task(name, data_dir=Path(data_dir) / TASKS.get(name).folder)


def eval_set(name: str, data_dir: str | Path | None = None) -> EvalSet:
    """The eval set ``name`` (see the module docstring for ``data_dir``); a missing file is a DataError."""
    if name not in EVAL_TASKS:
        raise KeyError(f"unknown eval set {name!r}; known: {', '.join(EVAL_TASKS)}")
    tasks = [_file_task(t, data_dir) for t in EVAL_TASKS[name]]
    return EvalSet(name, [item for t in tasks for item in t.eval_texts()], templated=any(t.templated for t in tasks))


#: eval set name -> loader(data_dir or None) -> EvalSet
EVAL_SETS: dict[str, Callable[[str | Path | None], EvalSet]] = {name: partial(eval_set, name) for name in EVAL_TASKS}


def load_eval_sets(names: Iterable[str] | None = None, data_dir: str | Path | None = None) -> list[EvalSet]:
    """Load the named eval sets (all of :data:`EVAL_SETS` by default), from ``data_dir`` when given."""
    return [eval_set(name, data_dir) for name in (list(EVAL_SETS) if names is None else names)]
