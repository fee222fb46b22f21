"""A recipe (one YAML naming its stages) resolved into validated stage configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from thinkling.config import ConfigError, StageConfig, build_config, load_config
from thinkling.curate.stage import CurateConfig
from thinkling.evaluate.config import EvalConfig
from thinkling.generate.stage import GenerateConfig
from thinkling.pipeline.preflight import preflight
from thinkling.train.config import TrainConfig


class Recipe(StageConfig):
    out: str = Field("runs/recipe", description="root output dir; each stage writes out/<stage>/<name>")
    title: str = Field("thinkling run", description="report title")
    threads: int = Field(1, ge=1, description="torch threads per process")
    parallel: int = Field(1, ge=1, description="students trained at once (separate processes)")
    generate: dict[str, dict[str, Any]] = Field(default_factory=dict, description="named generate stages (GenerateConfig keys, no 'out')")
    curate: dict[str, dict[str, Any]] = Field(default_factory=dict, description="named curate stages; 'traces' names a generate stage")
    train: dict[str, dict[str, Any]] = Field(default_factory=dict, description="named students; 'data' names a curate stage")
    eval: dict[str, Any] = Field(default_factory=dict, description="EvalConfig keys (no 'out'); every student is evaluated")
    checks: list[dict[str, Any]] = Field(default_factory=list, description="claims checked on the results and written to the report")


class Plan:
    """The recipe resolved into validated stage configs."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        root = Path(recipe.out)
        self.gen: dict[str, GenerateConfig] = {}
        self.cur: dict[str, CurateConfig] = {}
        self.trn: dict[str, TrainConfig] = {}
        for name, d in recipe.generate.items():
            self.gen[name] = build_config(GenerateConfig, {**d, "out": str(root / "generate" / name)}, f"generate.{name}")
        for name, d in recipe.curate.items():
            d = dict(d)
            d["traces"] = self._ref(d.get("traces", name), self.gen, f"curate.{name}.traces")
            self.cur[name] = build_config(CurateConfig, {**d, "out": str(root / "curate" / name)}, f"curate.{name}")
        self.deps: dict[str, set[str]] = {}
        train_out = {n: str(root / "train" / n) for n in recipe.train}
        self.eval_as: dict[str, dict[str, Any]] = {}
        for name, d in recipe.train.items():
            d = dict(d)
            # how the student is evaluated: {tags: {training: multi-task}, tasks: [rules]} (not a train key)
            self.eval_as[name] = dict(d.pop("eval_as", None) or {})
            # a student may start from, or distil from, another student of the recipe: `model: sft-long`,
            # `kd: {teacher: big}`; it is trained after that one
            self.deps[name] = set()
            if d.get("model") in train_out:
                self.deps[name].add(d["model"])
                d["model"] = train_out[d["model"]]
            if isinstance(d.get("kd"), dict) and d["kd"].get("teacher") in train_out:
                self.deps[name].add(d["kd"]["teacher"])
                d["kd"] = {**d["kd"], "teacher": train_out[d["kd"]["teacher"]]}
            if name in self.deps[name]:
                raise ConfigError(f"train.{name} refers to itself")
            data = d.get("data", name)
            d["data"] = ([self._ref(x, self.cur, f"train.{name}.data") for x in data] if isinstance(data, list)
                         else self._ref(data, self.cur, f"train.{name}.data"))
            d["tokenizer_from"] = [self._ref(x, {**self.gen, **self.cur}, f"train.{name}.tokenizer_from")
                                   for x in d.get("tokenizer_from", [])]
            d.setdefault("threads", recipe.threads)
            self.trn[name] = build_config(TrainConfig, {**d, "out": str(root / "train" / name)}, f"train.{name}")
        topological(self)  # a cycle of model/teacher references is an error now, not a hang later
        ev = dict(recipe.eval)
        ev.setdefault("threads", recipe.threads)
        extra = [m if not (isinstance(m, dict) and m.get("path") in train_out) else {**m, "path": train_out[m["path"]]}
                 for m in ev.pop("models", [])]  # a model may name a student: `path: adaptive`
        models = [{"name": n, "path": c.out, **self.eval_as[n]} for n, c in self.trn.items()] + extra
        self.ev = build_config(EvalConfig, {**ev, "models": models, "out": str(root / "eval")}, "eval")
        preflight(self)  # a missing model, data dir or check target fails now, before any stage runs

    @staticmethod
    def _ref(value: str, known: dict[str, Any], key: str) -> str:
        if value in known:
            return known[value].out
        if Path(value).exists():
            return value
        raise ConfigError(f"key '{key}': {value!r} is neither a stage name ({', '.join(known) or 'none'}) nor an existing path")


def load_recipe(path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None) -> Plan:
    recipe = load_config(Recipe, path, overrides, base=base)
    return Plan(recipe)


def topological(plan: Plan) -> list[str]:
    done: list[str] = []
    left = dict(plan.deps)
    while left:
        free = [n for n, d in left.items() if not d - set(done)]
        if not free:
            raise ConfigError(f"train: the students' model/teacher references form a cycle: {sorted(left)}")
        for n in free:
            done.append(n)
            del left[n]
    return done
