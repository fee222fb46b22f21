"""The runner's thread hand-over (``out/.threads``): who takes the freed cores."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console

from thinkling.train.budget import Budget, Meter
from thinkling.train.trainer import progress


@pytest.mark.parametrize("kind, take, taken", [
    ("minutes", None, True),    # a wall-clock budget takes the cores by default
    (None, None, True),         # so does a run without a budget
    ("tokens", None, False),    # an exact budget keeps its thread count (the same model on a busy machine)
    ("flops", None, False),
    ("tokens", True, True),     # take_freed_cores: true overrides
    ("minutes", False, False),  # and false refuses them
])
def test_freed_cores_are_taken_by_wall_clock_budgets_or_when_asked(tmp_path, kind, take, taken):
    meter = Meter(Budget(kind, 10.0)) if kind else None
    before = torch.get_num_threads()
    target = 2 if before != 2 else 1
    (tmp_path / ".threads").write_text(f"{target}\n")
    cb = progress(tmp_path, "s", meter, Console(file=io.StringIO()), take_cores=take)
    cb.last_thread_check = 0.0
    try:
        cb._maybe_change_threads()
        assert torch.get_num_threads() == (target if taken else before)
    finally:
        torch.set_num_threads(before)
