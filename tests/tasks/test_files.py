"""File tasks: one data-dir rule for every task that reads files."""

from __future__ import annotations

import pytest

from thinkling.artifacts import DataError
from thinkling.tasks import get_task, task_names


def test_one_data_dir_rule_for_every_file_task(tmp_path, monkeypatch):
    """task.options.data_dir, else the task's env var, else $THINKLING_DATA_DIR/<folder>, else
    ../shared/data/<folder> (thinkling.tasks.files)."""
    from pathlib import Path

    from thinkling.tasks.base import TASKS
    from thinkling.tasks.files import FileTask

    names = [n for n in task_names() if issubclass(TASKS.get(n), FileTask)]
    assert {"gsm8k", "math500", "aime25", "folio", "knights_and_knaves", "arc_easy"} <= set(names)
    for n in names:
        monkeypatch.delenv(TASKS.get(n).env_var, raising=False)
    monkeypatch.delenv("THINKLING_DATA_DIR", raising=False)
    folders = {n: TASKS.get(n).folder for n in names}
    assert folders["arc_challenge"] == folders["arc_easy"] == "arc" and folders["math500"] == "math500"
    assert {n: get_task(n).data_dir for n in names} == {n: Path("../shared/data") / f for n, f in folders.items()}
    monkeypatch.setenv("THINKLING_DATA_DIR", str(tmp_path))
    assert {n: get_task(n).data_dir for n in names} == {n: tmp_path / f for n, f in folders.items()}
    monkeypatch.setenv("THINKLING_GSM8K_DIR", str(tmp_path / "mine"))
    assert get_task("gsm8k").data_dir == tmp_path / "mine"  # the task's own variable wins over the root
    assert get_task("gsm8k", data_dir="x/y").data_dir == Path("x/y")  # and the option over both
    with pytest.raises(DataError, match="THINKLING_GSM8K_DIR"):
        get_task("gsm8k").problems("test")
