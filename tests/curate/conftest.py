"""The evaluation sets decontamination checks against, read once per module from the real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkling.curate.overlap import EvalSet, load_eval_sets


@pytest.fixture(scope="module")
def eval_sets(shared_data: Path) -> list[EvalSet]:
    return load_eval_sets(data_dir=shared_data)
