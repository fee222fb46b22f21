"""The train stage run for a few steps on a curated dir."""

from __future__ import annotations

from pathlib import Path

from thinkling.config import build_config
from thinkling.train.config import TrainConfig


def run_train(data: Path, out: Path, console, **kw) -> dict:
    from thinkling.train.stage import train

    d = {"data": str(data), "out": str(out), "max_steps": 3, "save_steps": 100, "batch_size": 4, "logging_steps": 1,
         "threads": 1, "max_len": 512, "show_mask": False, "lr": 1e-3}
    d.update(kw)
    return train(build_config(TrainConfig, d), console=console)
