"""File tasks: benchmarks read from JSONL files in one data directory per task, and their eval texts.

**The data directory** of a file task (:func:`resolve_data_dir`), the first of:

1. the task option ``data_dir`` (``task.options.data_dir``);
2. the task's own environment variable (:attr:`FileTask.env_var`: ``THINKLING_GSM8K_DIR``,
   ``THINKLING_MATH500_DIR``, ...);
3. ``$THINKLING_DATA_DIR/<folder>``, the task's folder (:attr:`FileTask.folder`) under the shared data root;
4. ``../shared/data/<folder>``, relative to the working directory.

:func:`data_root` is the root of 3-4 alone (``$THINKLING_DATA_DIR``, else ``../shared/data``).

**Evaluation texts** (:meth:`FileTask.eval_texts`): the (id, text) items of the task's evaluation split
(its test set: GSM8K test, FOLIO validation, PrOntoQA dev, ...), as decontamination compares training
questions with them. The text is what a contaminated training prompt would hold - the benchmark's own
question, without the options and instruction the task's prompt adds - and the ids are those recorded
in curated data (``contaminated_by``). An item only needs its id and text fields (a missing one is a
:class:`~thinkling.artifacts.DataError` naming the line). :attr:`FileTask.templated` marks sets generated
from templates, whose items differ by substituted words only, so that a match must be near-verbatim.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from thinkling.artifacts import DataError, located_rows
from thinkling.tasks.base import Task

DATA_ROOT_ENV = "THINKLING_DATA_DIR"
DEFAULT_DATA_ROOT = "../shared/data"


def data_root() -> Path:
    """``$THINKLING_DATA_DIR``, else ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get(DATA_ROOT_ENV, DEFAULT_DATA_ROOT))


def resolve_data_dir(folder: str, env_var: str = "", data_dir: str | Path | None = None) -> Path:
    """A file task's data directory: ``data_dir``, else ``$env_var``, else ``data_root() / folder``."""
    if data_dir:
        return Path(data_dir)
    if env_var and env_var in os.environ:
        return Path(os.environ[env_var])
    return data_root() / folder


def eval_fields(row: dict, where: str, *names: str) -> list[Any]:
    """The values of ``names`` in an evaluation row; a missing one is a DataError naming ``where``."""
    for name in names:
        if name not in row:
            raise DataError(f"{where}: missing field '{name}'")
    return [row[name] for name in names]


class FileTask(Task):
    """A task whose problems are JSONL files in :attr:`data_dir` (see the module docstring)."""

    folder: str = ""  # the task's folder under the data root
    env_var: str = ""  # the environment variable naming the task's data directory
    templated: bool = False  # evaluation items generated from templates (see the module docstring)

    def __init__(self, data_dir: str | Path | None = None):
        self.data_dir = resolve_data_dir(self.folder, self.env_var, data_dir)

    def read_rows(self, path: Path, note: str = "") -> list[tuple[dict, str]]:
        """(row, "file:line") pairs of one of the task's files; a missing file names the data-dir rule
        (and ``note``, e.g. "; or source=hub")."""
        env = f"${self.env_var}, else " if self.env_var else ""
        return located_rows(path, f"{self.name}: {path} not found (data dir: task.options.data_dir, else {env}"
                                  f"${DATA_ROOT_ENV}/{self.folder}, else {DEFAULT_DATA_ROOT}/{self.folder}{note})")

    def eval_texts(self) -> list[tuple[str, str]]:
        """(id, text) of every item of the evaluation split, read from the files (see the module docstring)."""
        raise NotImplementedError
