"""A recipe's pre-flight: a model, data or check target that is not there fails before the first stage."""

from __future__ import annotations

import time

import pytest

from thinkling.config import ConfigError
from thinkling.pipeline import load_recipe

GEN = {"g": {"task": {"name": "arithmetic", "n": 3, "levels": [1]}, "teacher": {"style": "concise"}}}
CUR = {"g": {}}


def recipe(tmp_path, **parts) -> dict:
    return {"out": str(tmp_path / "run"), "generate": GEN, "curate": CUR,
            "train": {"s": {"data": "g", "max_steps": 1}}, "eval": {"task": {"name": "arithmetic", "n": 2}}, **parts}


def test_a_missing_model_fails_before_any_stage(tmp_path):
    with pytest.raises(ConfigError, match="train.t.model.*'/no/such/model' is neither a student"):
        load_recipe(None, base=recipe(tmp_path, train={"t": {"data": "g", "model": "/no/such/model"}}))
    with pytest.raises(ConfigError, match="eval.models.x.path.*'/no/such' is neither.*hub:"):
        load_recipe(None, base=recipe(tmp_path, eval={"models": [{"name": "x", "path": "/no/such"}]}))
    # a bare name is not taken for a hub id: it is marked, or it is an error with the spelling to use
    with pytest.raises(ConfigError, match="'gpt2-local' is neither a student.*written hub:gpt2-local"):
        load_recipe(None, base=recipe(tmp_path, eval={"models": [{"name": "x", "path": "gpt2-local"}]}))
    assert not (tmp_path / "run").exists()  # nothing ran


def test_an_offline_hub_id_not_in_the_cache_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set and it is not in the local cache"):
        load_recipe(None, base=recipe(tmp_path, eval={"models": [{"name": "q", "path": "hub:Qwen/Qwen2.5-0.5B"}]}))
    assert time.monotonic() - t0 < 5


def test_checks_name_what_the_recipe_evaluates(tmp_path):
    with pytest.raises(ConfigError, match="checks.0.model.*'nobody' is not evaluated by this recipe.*s"):
        load_recipe(None, base=recipe(tmp_path, checks=[{"kind": "min_accuracy", "model": "nobody", "value": 0.5}]))
    with pytest.raises(ConfigError, match="checks.0.task.*'gsm8k' is not evaluated"):
        load_recipe(None, base=recipe(tmp_path, checks=[{"kind": "min_accuracy", "model": "s", "task": "gsm8k",
                                                         "value": 0.5}]))
    with pytest.raises(ConfigError, match="checks.0.kind.*'best'"):
        load_recipe(None, base=recipe(tmp_path, checks=[{"kind": "best", "model": "s"}]))
    with pytest.raises(ConfigError, match="checks.0.ref.*compares with a reference"):
        load_recipe(None, base=recipe(tmp_path, checks=[{"kind": "within", "model": "s", "points": 2}]))
    plan = load_recipe(None, base=recipe(tmp_path, checks=[{"kind": "min_accuracy", "model": "s", "value": 0.1}]))
    assert plan.recipe.checks[0]["model"] == "s"


def test_missing_task_data_and_students_by_name(tmp_path):
    bad = {"g": {"task": {"name": "gsm8k", "options": {"data_dir": str(tmp_path / "nothing")}}, "teacher": {
        "backend": "reference"}}}
    with pytest.raises(ConfigError, match="generate.g.task.options.data_dir.*does not exist"):
        load_recipe(None, base=recipe(tmp_path, generate=bad))
    plan = load_recipe(None, base=recipe(tmp_path, eval={"models": [{"name": "s-forced", "path": "s",
                                                                      "reply_prefix": "<long>"}]}))
    assert plan.ev.models[-1].path == plan.trn["s"].out  # an eval model may name a student


def test_checks_of_the_new_kinds_and_keys_are_checked_naming_their_index(tmp_path):
    ok = {"kind": "min_accuracy", "model": "s", "value": 0.1}

    def fails(check, match, **parts):
        with pytest.raises(ConfigError, match=match):
            load_recipe(None, base=recipe(tmp_path, checks=[ok, check], **parts))

    seeded = {"seeds": [0, 1]}
    fails({"kind": "best", "model": "s"}, r"checks.1.kind.*'best' is not one of .*beats.*compute_ratio")
    fails({"kind": "beats", "model": "s", "ref": "s"}, "checks.1.points.*needs its points")
    fails({"kind": "compute_ratio", "model": "s", "value": 2}, "checks.1.ref.*compares with a reference")
    fails({"kind": "compute_ratio", "model": "s", "ref": "s", "value": "2x"}, "checks.1.value.*a number, got '2x'")
    fails({**ok, "over": "every"}, "checks.1.over.*only in a recipe with seeds")
    fails({**ok, "over": "most"}, "checks.1.over.*'most' is not one of every, aggregate", **seeded)
    fails({"kind": "compute_ratio", "model": "s", "ref": "s", "value": 2, "basis": "joules"},
          "checks.1.basis.*'joules'.*flops \\(default\\) or tokens")
    fails({**ok, "basis": "tokens"}, "checks.1.basis")  # only the compute kinds have one
    fails({**ok, "seeds": [0]}, "checks.1.seeds.*not a key of a min_accuracy check")
    fails({**ok, "level": 9}, "checks.1.level.*9 is not a level this recipe evaluates.*1, 2, 3, 4, all")
    plan = load_recipe(None, base=recipe(tmp_path, seeds=[0, 1], checks=[
        ok, {**ok, "over": "aggregate", "level": 2},
        {"kind": "beats", "model": "s", "ref": "s", "points": 0, "over": "every"},
        {"kind": "compute_ratio", "model": "s", "ref": "s", "value": 1, "basis": "tokens"},
        {"kind": "accuracy_per_compute", "model": "s", "ref": "s", "value": 1, "level": 4}]))
    assert len(plan.recipe.checks) == 5
