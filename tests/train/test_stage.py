"""The train stage: a loadable checkpoint and manifest, a rerun skipped, resumed from the latest checkpoint
(not past max_steps), a dir of another config not reusing its model, missing and empty data rejected;
and under `accelerate launch`: two CPU processes (gloo) give the loss of one process with the same
global batch, because the loss is divided once by the global count of trained tokens.

On CPU, `accelerate launch --multi_gpu --num_processes 2` starts two ranks (its `--cpu` flag alone
runs a single process); the stage asks accelerate for a CPU state, so the ranks meet over gloo.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import sha
from helpers.generate import gen_cfg
from thinkling.artifacts import read_jsonl, read_manifest
from thinkling.config import build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.generate.stage import generate
from thinkling.records import Example

SMALL_TINY = {"vocab_size": 300, "hidden_size": 32, "num_layers": 1, "num_heads": 1, "intermediate_size": 64,
              "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A small curated dataset: concise arithmetic traces, 12 problems at each of levels 1 and 2."""
    import io

    from rich.console import Console

    root = tmp_path_factory.mktemp("curated")
    console = Console(file=io.StringIO(), width=300)
    generate(gen_cfg(root / "traces", n=12, style="concise"), console=console)
    curate(build_config(CurateConfig, {"traces": str(root / "traces"), "out": str(root / "data")}), console=console)
    return root / "data"


def train_cfg(data: Path, out: Path, **kw):
    from thinkling.train.config import TrainConfig

    d = {"data": str(data), "out": str(out), "tiny": SMALL_TINY, "max_steps": 4, "save_steps": 2, "batch_size": 4,
         "logging_steps": 1, "threads": 1, "max_len": 256}
    d.update(kw)
    return build_config(TrainConfig, d)


@pytest.mark.slow
def test_train_writes_a_loadable_checkpoint_and_skips_a_rerun(data_dir, tmp_path, captured):
    import torch

    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import render
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out)
    m = train(cfg, console=captured.console)
    c = m["counts"]
    assert c["steps"] == 4 and c["examples"] == 24 and c["dropped_over_max_len"] == 0
    assert c["examples_seen"] == 16
    hist = m["loss_history"]
    assert len(hist) == 4 and all(math.isfinite(x) for x in hist)
    assert c["first_loss"] == round(hist[0], 4) and c["final_loss"] == round(hist[-1], 4)
    for f in ("model.safetensors", "config.json", "tokenizer.json", "manifest.json"):
        assert (out / f).is_file(), f
    assert "model.safetensors" in m["outputs"]
    # the mask of the first example is shown before training: prompt untrained, reply + <|im_end|> trained
    assert "tokens that get loss" in captured.text
    assert "[[<think>" in captured.text and "<|im_end|>]]" in captured.text

    tok = load_tokenizer(str(out))
    model = load_model(str(out))
    assert hist[0] == pytest.approx(math.log(len(tok)), rel=0.1)  # near-uniform predictions at init
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    ex = read_jsonl(data_dir / "train.jsonl", Example)[0]
    ids, _ = render(tok, [{"role": "user", "content": ex.question}], ex.reasoning)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok)) and torch.isfinite(logits).all()

    before = sha(out / "manifest.json")
    again = train(cfg, console=captured.console)
    assert "complete for this config; skipping" in captured.text
    assert sha(out / "manifest.json") == before and again["counts"] == c


@pytest.mark.slow
def test_train_resumes_from_the_latest_checkpoint(data_dir, tmp_path, captured, captured_factory):
    from thinkling.models.loading import load_model
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out, max_steps=4, save_steps=2)
    first = train(cfg, console=captured.console)
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-4"]
    # a crash after the last checkpoint but before the final save and the manifest
    (out / "manifest.json").unlink()
    (out / "model.safetensors").unlink()
    rerun = captured_factory()
    m = train(cfg, console=rerun.console)
    assert f"resuming from {out / 'checkpoints' / 'checkpoint-4'}" in rerun.text
    assert "resuming" not in captured.text  # the first run started from scratch
    assert (out / "model.safetensors").is_file() and read_manifest(out) is not None
    load_model(str(out))
    # the loss history is continued from the checkpoint, not restarted
    assert m["loss_history"][:4] == first["loss_history"]


@pytest.mark.slow
def test_train_resume_does_not_train_past_max_steps(data_dir, tmp_path, captured):
    """BUG: resuming from a checkpoint already at max_steps trains one extra optimizer step
    (the Trainer takes a step before checking global_step >= max_steps), so the re-run's model and
    manifest (steps=5 for max_steps=4) differ from an uninterrupted run."""
    from thinkling.train.stage import train

    out = tmp_path / "student"
    cfg = train_cfg(data_dir, out, max_steps=4, save_steps=2)
    train(cfg, console=captured.console)
    (out / "manifest.json").unlink()
    (out / "model.safetensors").unlink()
    m = train(cfg, console=captured.console)
    assert m["counts"]["steps"] == 4


@pytest.mark.slow
def test_train_into_a_dir_of_another_config_does_not_reuse_its_model(data_dir, tmp_path, captured):
    """BUG: a changed config re-runs the stage, but the old ``init/`` (built for the old tiny spec and
    tokenizer) and the old checkpoints are reused, so the saved model does not match its manifest."""
    from thinkling.models.loading import load_model
    from thinkling.train.stage import train

    out = tmp_path / "student"
    train(train_cfg(data_dir, out, max_steps=2, save_steps=2), console=captured.console)
    wider = {**SMALL_TINY, "hidden_size": 48}
    m = train(train_cfg(data_dir, out, max_steps=2, save_steps=2, tiny=wider), console=captured.console)
    assert m["config"]["tiny"]["hidden_size"] == 48
    assert load_model(str(out)).config.hidden_size == 48


def test_train_rejects_missing_and_empty_data(tmp_path, captured):
    from thinkling.artifacts import DataError
    from thinkling.train.stage import train

    with pytest.raises(DataError) as e:
        train(train_cfg(tmp_path / "nope", tmp_path / "s"), console=captured.console)
    assert str(tmp_path / "nope") in str(e.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError) as e:
        train(train_cfg(empty, tmp_path / "s"), console=captured.console)
    assert "no training examples" in str(e.value)


# ----------------------------------------------------------------------------- two processes


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
    assert ddp["compute"]["tokens"] == one["compute"]["tokens"] > 0  # counted over both ranks
    assert ddp["loss_history"][-1] < ddp["loss_history"][0]  # it trained
