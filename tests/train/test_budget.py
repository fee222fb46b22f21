"""Compute budgets: tokens and FLOPs counted exactly, the lr on the share spent, training stopped after
the step that spends the budget, the same model from the same config and seed, and a finished
checkpoint taken as it is on resume."""

from __future__ import annotations

import math

import pytest

from helpers import sha
from thinkling.config import ConfigError
from thinkling.train.budget import Budget, add_consumed, budget_of, consumed, flops_per_token, human, lr_factor

from .test_stage import data_dir, train_cfg  # noqa: F401  (the module's small curated dataset)


def test_lr_factor_warms_up_then_decays_to_a_tenth():
    assert lr_factor(0.0, 0.1) == 0.01
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(1.0, 0.1) == pytest.approx(0.1) and lr_factor(2.0, 0.1) == pytest.approx(0.1)
    xs = [lr_factor(i / 100, 0.05) for i in range(5, 101)]
    assert all(a >= b for a, b in zip(xs, xs[1:]))


def test_budget_spent_fraction_share_and_what_is_recorded():
    tok = Budget("tokens", 1000)
    assert tok.spent(250, 99.0) == 250 and tok.fraction(250, 0) == 0.25 and tok.fraction(5000, 0) == 1.0
    fl = Budget("flops", 1e9, flops_per_token(1000, 500), already=1e8)
    assert fl.flops_per_token == 7000
    assert fl.spent(100, 0) == pytest.approx(1e8 + 7e5)
    assert fl.share(4).total == 2.5e8 and fl.share(4).already == 2.5e7
    assert Budget("minutes", 2).fraction(0, 60) == 0.5
    assert "of 1.00k tokens" in tok.describe(10, 0) and human(4.2e12) == "4.20T"
    c = consumed(100, 3, 1.26, 7000, teacher_flops=5.0, budget=tok)
    assert c == {"tokens": 100, "flops": 700005.0, "steps": 3, "seconds": 1.3, "flops_per_token": 7000.0,
                 "teacher_flops": 5.0, "budget": {"kind": "tokens", "total": 1000}}
    both = add_consumed([c, c], tok)
    assert both["tokens"] == 200 and both["flops"] == 2 * 700005.0 and both["steps"] == 6


def test_one_budget_at_a_time(tmp_path):
    cfg = train_cfg(tmp_path, tmp_path / "o", budget_tokens=5000)
    assert budget_of(cfg, 6.0) == Budget("tokens", 5000.0)
    assert budget_of(train_cfg(tmp_path, tmp_path / "o", budget_flops=3e9), 6.0).kind == "flops"
    assert budget_of(train_cfg(tmp_path, tmp_path / "o"), 6.0) is None
    with pytest.raises(ConfigError, match="budget_tokens and budget_minutes are both set"):
        train_cfg(tmp_path, tmp_path / "o", budget_tokens=5, budget_minutes=1)


def _budgeted(data_dir, out, **kw):  # noqa: F811
    return train_cfg(data_dir, out, **{"max_steps": -1, "budget_tokens": 1500, "save_steps": 3, "batch_size": 4,
                                       "seed": 3, **kw})


@pytest.mark.slow
def test_a_tokens_budget_stops_after_the_step_that_spends_it(data_dir, tmp_path, captured):  # noqa: F811
    import json

    from thinkling.train.stage import train

    m = train(_budgeted(data_dir, tmp_path / "a"), console=captured.console)
    comp, n = m["compute"], m["counts"]["params"]
    state = json.loads(sorted((tmp_path / "a" / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    per_step = [h["num_input_tokens_seen"] for h in state["log_history"] if "loss" in h]
    assert comp["tokens"] == per_step[-1] >= 1500 > per_step[-2]  # stopped after the step that crossed it
    assert comp["steps"] == m["counts"]["steps"] == len(per_step)
    assert comp["flops_per_token"] == 6 * n and comp["flops"] == 6 * n * comp["tokens"]
    assert comp["budget"] == {"kind": "tokens", "total": 1500.0} and comp["seconds"] >= 0
    # every forward token counted, prompt included: more than the loss-bearing ones
    assert comp["tokens"] > m["counts"]["trained_tokens"]
    lrs = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert lrs[-1] < max(lrs) and lrs[-1] >= 0.1 * 1e-3 * 0.99  # cosine towards 10% of the peak
    assert "of 1.50k tokens" in captured.text


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_model_bit_for_bit(data_dir, tmp_path, captured):  # noqa: F811
    from thinkling.train.stage import train

    a = train(_budgeted(data_dir, tmp_path / "a"), console=captured.console)
    b = train(_budgeted(data_dir, tmp_path / "b"), console=captured.console)
    assert sha(tmp_path / "a" / "model.safetensors") == sha(tmp_path / "b" / "model.safetensors")
    assert a["loss_history"] == b["loss_history"]
    assert {k: v for k, v in a["compute"].items() if k != "seconds"} == \
        {k: v for k, v in b["compute"].items() if k != "seconds"}
    c = train(_budgeted(data_dir, tmp_path / "c", lr=2e-3), console=captured.console)  # the test can fail
    assert sha(tmp_path / "c" / "model.safetensors") != sha(tmp_path / "a" / "model.safetensors")
    assert math.isfinite(c["loss_history"][-1])


@pytest.mark.slow
def test_a_checkpoint_holding_the_whole_budget_is_taken_on_resume(data_dir, tmp_path, captured):  # noqa: F811
    from thinkling.train.stage import train

    out = tmp_path / "a"
    first = train(_budgeted(data_dir, out), console=captured.console)  # the stop saves a checkpoint
    model = sha(out / "model.safetensors")
    (out / "manifest.json").unlink()  # a crash after the last checkpoint, before the manifest
    again = train(_budgeted(data_dir, out), console=captured.console)
    assert "already holds its whole tokens budget" in captured.text
    assert again["counts"]["steps"] == first["counts"]["steps"] and sha(out / "model.safetensors") == model
