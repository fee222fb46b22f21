"""Tasks: problems, prompt rendering, answer extraction and verifiers, in a registry.

Every module of this package whose name does not start with ``_`` is imported here
(:func:`thinkling.registry.discover`), so a task registers itself with :func:`register_task` where it
is defined; :func:`task_names` lists them. Shared pieces: :mod:`~thinkling.tasks.base` (the Task
interface, the registry), :mod:`~thinkling.tasks.extract` (answer extractors),
:mod:`~thinkling.tasks.mathverify` (math-verify, safely), :mod:`~thinkling.tasks.synthetic` (the seeded
split-and-draw of the synthetic families, ``oracle_texts``), :mod:`~thinkling.tasks.files` (file tasks and
their evaluation texts).

**Data directory of a file task** (GSM8K, MATH, AIME, AMC, the logic benchmarks; one rule,
:func:`thinkling.tasks.files.resolve_data_dir`), the first of: the task option ``data_dir``; the task's
environment variable (``THINKLING_GSM8K_DIR``, ``THINKLING_MATH500_DIR``, ...); ``$THINKLING_DATA_DIR/<folder>``;
``../shared/data/<folder>`` (``<folder>`` is the task's folder in the shared data, e.g. ``gsm8k``, ``arc``).
Decontamination reads the evaluation sets through the same tasks and the same rule.
"""

from thinkling.registry import discover
from thinkling.tasks.base import (
    OracleTrace,
    SyntheticTask,
    Task,
    get_task,
    register_task,
    task_names,
)

discover(__name__)

__all__ = [
    "OracleTrace", "SyntheticTask", "Task", "get_task", "register_task", "task_names",
]
