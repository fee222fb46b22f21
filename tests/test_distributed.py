"""The train stage under `accelerate launch`: two CPU processes (gloo) give the loss of one process
with the same global batch, because the loss is divided once by the global count of trained tokens.

On CPU, `accelerate launch --multi_gpu --num_processes 2` starts two ranks (its `--cpu` flag alone
runs a single process); the stage asks accelerate for a CPU state, so the ranks meet over gloo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

TINY = "tiny={hidden_size: 64, num_heads: 2, num_layers: 2, intermediate_size: 128}"


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    if accelerate is None:
        pytest.fail("accelerate not found beside the Python interpreter (a dependency of thinkling)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "thinkling.cli"]

    def run(args, **kw):
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, **kw)
        assert r.returncode == 0, r.stderr[-3000:]
        return r

    run(cli + ["generate", f"out={tmp_path / 'g'}", "task.n=40", "task.levels=[3,4]", "teacher.style=concise"])
    run(cli + ["curate", f"traces={tmp_path / 'g'}", f"out={tmp_path / 'c'}"])
    common = [f"data={tmp_path / 'c'}", "max_steps=6", "save_steps=100", "logging_steps=1",
              "group_by_length=false", TINY]
    run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "thinkling.cli", "train", f"out={tmp_path / 'ddp'}", "batch_size=4", *common])
    run(cli + ["train", f"out={tmp_path / 'one'}", "batch_size=8", *common])
    ddp = json.loads((tmp_path / "ddp" / "manifest.json").read_text())
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert ddp["counts"]["examples_seen"] == one["counts"]["examples_seen"] == 48  # 2 ranks x 4 = 8 per step
    assert len(ddp["loss_history"]) == len(one["loss_history"]) == 6
    assert ddp["loss_history"] == pytest.approx(one["loss_history"], rel=1e-4)
    assert ddp["loss_history"][-1] < ddp["loss_history"][0]  # it trained
