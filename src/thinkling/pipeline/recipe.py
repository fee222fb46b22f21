"""A recipe (one YAML naming its stages) resolved into validated stage configs.

With ``seeds: [0, 1, 2]`` every student is trained once per seed (its ``seed`` set to each; output
``out/train/<student>/seed-<k>/``) and evaluated once per seed (one eval model per student and seed, all of
the student's name, with ``seed: k``). Generated and curated data are the same for every seed: the seeds
measure training variance on fixed data. A student that starts from or distils from another uses the same
seed's one. Without ``seeds`` a student is trained once into ``out/train/<student>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

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
    seeds: list[int] | None = Field(None, description="train and evaluate every student once per seed (e.g. [0, 1, "
                                    "2]): out/train/<student>/seed-<k>/, rows per seed plus an aggregate row "
                                    "(seed: all); data are generated and curated once. None: once, with the "
                                    "student's own seed")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("seeds is a non-empty list of seeds (leave it out to train each student once)")
            if len(set(v)) != len(v) or any(x < 0 for x in v):
                raise ValueError(f"seeds must be distinct and >= 0, got {v}")
        return v


class Plan:
    """The recipe resolved into validated stage configs.

    ``trn`` and ``deps`` are keyed by training job: the student's name, or ``<student>/seed-<k>`` with
    ``seeds``; ``jobs[job]`` is (student, seed or None)."""

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
        self.jobs: dict[str, tuple[str, int | None]] = {}
        seeds: list[int | None] = list(recipe.seeds) if recipe.seeds else [None]
        self.eval_as: dict[str, dict[str, Any]] = {}
        for name, d in recipe.train.items():
            if recipe.seeds and "seed" in d:
                raise ConfigError(f"key 'train.{name}.seed': the recipe's seeds {recipe.seeds} set every student's "
                                  "seed; give one or the other")
            # how the student is evaluated: {tags: {training: multi-task}, tasks: [rules]} (not a train key)
            self.eval_as[name] = dict(d.get("eval_as", None) or {})
            for seed in seeds:
                self._student(name, dict(d), seed, root)
        topological(self)  # a cycle of model/teacher references is an error now, not a hang later
        ev = dict(recipe.eval)
        ev.setdefault("threads", recipe.threads)
        extra = []
        for m in ev.pop("models", []):  # a model may name a student: `path: adaptive` (each seed's, with seeds)
            if isinstance(m, dict) and m.get("path") in recipe.train:
                extra += [{**m, "path": str(self._train_out(root, m["path"], s)),
                           **({"seed": s} if s is not None else {})} for s in seeds]
            else:
                extra.append(m)
        models = [{"name": n, "path": c.out, **({"seed": self.jobs[j][1]} if self.jobs[j][1] is not None else {}),
                   **self.eval_as[n]} for j, c in self.trn.items() for n in [self.jobs[j][0]]] + extra
        self.ev = build_config(EvalConfig, {**ev, "models": models, "out": str(root / "eval")}, "eval")
        preflight(self)  # a missing model, data dir or check target fails now, before any stage runs

    @staticmethod
    def job(name: str, seed: int | None) -> str:
        """A training job's name: the student's, with its seed when the recipe has seeds."""
        return name if seed is None else f"{name}/seed-{seed}"

    @staticmethod
    def _train_out(root: Path, name: str, seed: int | None) -> Path:
        return root / "train" / name if seed is None else root / "train" / name / f"seed-{seed}"

    def _student(self, name: str, d: dict[str, Any], seed: int | None, root: Path) -> None:
        """Resolve one training job: student ``name`` (its recipe section ``d``) at ``seed``."""
        job = self.job(name, seed)
        students = self.recipe.train
        d.pop("eval_as", None)
        # a student may start from, or distil from, another student of the recipe: `model: sft-long`,
        # `kd: {teacher: big}`; it is trained after that one (the same seed's one)
        self.deps[job] = set()
        self.jobs[job] = (name, seed)
        if d.get("model") in students:
            self.deps[job].add(self.job(d["model"], seed))
            d["model"] = str(self._train_out(root, d["model"], seed))
        if isinstance(d.get("kd"), dict) and d["kd"].get("teacher") in students:
            self.deps[job].add(self.job(d["kd"]["teacher"], seed))
            d["kd"] = {**d["kd"], "teacher": str(self._train_out(root, d["kd"]["teacher"], seed))}
        if job in self.deps[job]:
            raise ConfigError(f"train.{name} refers to itself")
        data = d.get("data", name)
        d["data"] = ([self._ref(x, self.cur, f"train.{name}.data") for x in data] if isinstance(data, list)
                     else self._ref(data, self.cur, f"train.{name}.data"))
        d["tokenizer_from"] = [self._ref(x, {**self.gen, **self.cur}, f"train.{name}.tokenizer_from")
                               for x in d.get("tokenizer_from", [])]
        d.setdefault("threads", self.recipe.threads)
        if seed is not None:
            d["seed"] = seed
        self.trn[job] = build_config(TrainConfig, {**d, "out": str(self._train_out(root, name, seed))}, f"train.{name}")

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
