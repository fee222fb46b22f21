"""A recipe with ``seeds``: one training job per student and seed, each seed's student built on the same
seed's teacher or base, one eval model per student and seed; the order students start in for each kind of
budget; the report's Students table with the compute of their manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.compute import compute, student_dir
from thinkling.config import ConfigError
from thinkling.pipeline import load_recipe
from thinkling.pipeline.recipe import topological
from thinkling.pipeline.run import students_table
from thinkling.pipeline.students import budget_of, start_order

GEN = {"g": {"task": {"name": "arithmetic", "n": 3, "levels": [1]}, "teacher": {"style": "concise"}}}


def recipe(tmp_path, **parts) -> dict:
    return {"out": str(tmp_path / "run"), "generate": GEN, "curate": {"g": {}},
            "train": {"base": {"data": "g", "max_steps": 1},
                      "ft": {"data": "g", "model": "base", "max_steps": 1},
                      "kd": {"data": "g", "method": "kd", "kd": {"teacher": "base"}, "max_steps": 1}},
            "eval": {"task": {"name": "arithmetic", "n": 2},
                     "models": [{"name": "base-forced", "path": "base", "reply_prefix": "<long>"}]},
            **parts}


def test_a_plan_with_seeds(tmp_path):
    plan = load_recipe(None, base=recipe(tmp_path, seeds=[0, 1]))
    root = tmp_path / "run" / "train"
    jobs = ["base/seed-0", "base/seed-1", "ft/seed-0", "ft/seed-1", "kd/seed-0", "kd/seed-1"]
    assert list(plan.trn) == jobs
    assert plan.jobs["ft/seed-1"] == ("ft", 1)
    for job in jobs:
        name, seed = plan.jobs[job]
        assert Path(plan.trn[job].out) == root / name / f"seed-{seed}"
        assert plan.trn[job].seed == seed
    # a student built on another uses the same seed's one, and waits for it
    assert plan.deps["ft/seed-1"] == {"base/seed-1"} and plan.deps["kd/seed-0"] == {"base/seed-0"}
    assert plan.trn["ft/seed-1"].model == str(root / "base" / "seed-1")
    assert plan.trn["kd/seed-0"].kd.teacher == str(root / "base" / "seed-0")
    order = topological(plan)
    assert order.index("base/seed-1") < order.index("ft/seed-1")
    # one eval model per student and seed, all of the student's name; an extra model naming a student too
    models = [(m.name, m.seed, Path(m.path)) for m in plan.ev.models]
    assert models == [(n, s, root / t / f"seed-{s}") for n, t in
                      (("base", "base"), ("ft", "ft"), ("kd", "kd"), ("base-forced", "base")) for s in (0, 1)]
    assert plan.ev.models[-1].reply_prefix == "<long>"
    # the data are generated and curated once
    assert list(plan.gen) == ["g"] and list(plan.cur) == ["g"]


def test_a_plan_without_seeds_is_as_before(tmp_path):
    plan = load_recipe(None, base=recipe(tmp_path))
    root = tmp_path / "run" / "train"
    assert list(plan.trn) == ["base", "ft", "kd"] and plan.jobs["ft"] == ("ft", None)
    assert Path(plan.trn["ft"].out) == root / "ft" and plan.trn["ft"].model == str(root / "base")
    assert plan.deps == {"base": set(), "ft": {"base"}, "kd": {"base"}}
    assert all(m.seed is None for m in plan.ev.models)
    assert all("seed" not in m for m in plan.ev.model_dump(mode="json")["models"])


def test_seeds_errors(tmp_path):
    bad = recipe(tmp_path, seeds=[0, 1])
    bad["train"]["ft"]["seed"] = 3
    with pytest.raises(ConfigError, match=r"train.ft.seed.*seeds \[0, 1\] set every student's seed"):
        load_recipe(None, base=bad)
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        load_recipe(None, base=recipe(tmp_path, seeds=[1, 1]))
    with pytest.raises(ConfigError, match="seeds is a non-empty list"):
        load_recipe(None, base=recipe(tmp_path, seeds=[]))
    # on the command line as a dotted override
    plan = load_recipe(None, ["seeds=[2,5]"], base=recipe(tmp_path))
    assert plan.recipe.seeds == [2, 5] and "base/seed-5" in plan.trn


def test_students_start_largest_budget_first(tmp_path):
    plan = load_recipe(None, base=recipe(tmp_path, train={
        "small": {"data": "g", "budget_tokens": 1000}, "none": {"data": "g", "max_steps": 3},
        "big": {"data": "g", "budget_tokens": 4000}, "mins": {"data": "g", "budget_minutes": 2},
        "flops": {"data": "g", "budget_flops": 1e12}, "half-flops": {"data": "g", "budget_flops": 5e11}},
        eval={"task": {"name": "arithmetic", "n": 2}}))
    assert budget_of(plan.trn["big"]) == ("tokens", 4000.0) and budget_of(plan.trn["none"]) is None
    assert budget_of(plan.trn["flops"]) == ("flops", 1e12) and budget_of(plan.trn["mins"]) == ("minutes", 2.0)
    # each budget as its share of the largest of its kind (kinds cannot be compared); none last
    order = [n for n, _ in start_order(list(plan.trn.items()))]
    assert order == ["big", "mins", "flops", "half-flops", "small", "none"]


def test_the_students_table_shows_their_compute(tmp_path):
    plan = load_recipe(None, base=recipe(tmp_path, seeds=[0, 1], train={"s": {"data": "g", "budget_tokens": 500}},
                                         eval={"task": {"name": "arithmetic", "n": 2}}))
    lines = students_table(plan)  # nothing trained yet: the cells say so
    assert lines[2] == ("| student | seed | method | data | steps | rows seen | train s | trained tok/s | "
                        "loss first -> last |")
    assert lines[4].startswith("| s | 0 | sft | g | None |")
    student_dir(Path(plan.trn["s/seed-0"].out), compute=compute(512, flops_per_token=6e5,
                                                                budget={"kind": "tokens", "total": 500}))
    lines = students_table(plan)
    assert "| train tokens | train FLOPs | budget |" in lines[2]
    assert lines[4].startswith("| s | 0 | sft | g | 10 |") and "| 512 | 3.07e+08 | tokens 500 |" in lines[4]
    assert "| — | — | — |" in lines[5]  # seed 1 not trained yet
    plain = students_table(load_recipe(None, base=recipe(tmp_path / "p")))
    assert plain[2] == ("| student | method | data | steps | rows seen | train s | trained tok/s | "
                        "loss first -> last |")
