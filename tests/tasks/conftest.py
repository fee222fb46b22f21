"""The MATH-500 task on the real file, shared by the math task tests and the verifier's thread tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkling.tasks import get_task


@pytest.fixture(scope="module")
def m500(shared_data: Path):
    return get_task("math500", data_dir=str(shared_data / "math500"))
