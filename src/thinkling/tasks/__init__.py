"""Tasks: problems, prompt rendering, answer extraction and verifiers, in a registry."""

from thinkling.tasks.base import (
    OracleTrace,
    SyntheticTask,
    Task,
    get_task,
    register_task,
    task_names,
)
from thinkling.tasks import arithmetic as _arithmetic  # noqa: F401  (registers)
from thinkling.tasks import abduction as _abduction  # noqa: F401
from thinkling.tasks import evidence as _evidence  # noqa: F401
from thinkling.tasks import evidence_jsonl as _evidence_jsonl  # noqa: F401
from thinkling.tasks import gsm8k as _gsm8k  # noqa: F401
from thinkling.tasks import induction as _induction  # noqa: F401
from thinkling.tasks import math as _math  # noqa: F401
from thinkling.tasks import logic as _logic  # noqa: F401
from thinkling.tasks import rules as _rules  # noqa: F401
from thinkling.tasks import user as _user  # noqa: F401

__all__ = [
    "OracleTrace", "SyntheticTask", "Task", "get_task", "register_task", "task_names",
]
