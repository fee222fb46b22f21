"""The eval stage's config: which models (each an engine), which tasks, which strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_serializer, model_validator

from thinkling.config import ConfigError, StageConfig
from thinkling.engines import EngineOptions, engine_names, engine_options, options_class
from thinkling.evaluate.strategies import STRATEGIES
from thinkling.format import LORID_ADAPTERS, THINK_CLOSE, THINK_OPEN
from thinkling.tasks.evidence import REGIMES
from thinkling.tasks.spec import TaskSpec


class ModelRef(StageConfig):
    name: str = Field(description="label used in results and plots")
    path: str = Field(description="hf/vllm: HF hub id or local checkpoint dir (a LoRID dir brings its adapters); "
                      "openai: the model name the endpoint serves")
    backend: str = Field("hf", description="the engine backend: hf (transformers, batched, in-process), vllm "
                         "(offline engine), openai (an OpenAI-compatible endpoint), oracle (the synthetic tasks' "
                         "built-in teacher; path = its style), reference (a dataset's own solutions), or any "
                         "other registered one")
    base_url: str | None = Field(None, description="openai: endpoint base URL with its /v1")
    backend_options: dict[str, Any] = Field(default_factory=dict, description="more teacher-backend keys for "
                                            "openai/vllm (api_key_env, concurrency, max_retries, timeout, api, "
                                            "extra_body, vllm_max_model_len, ...; see `thinkling generate --help`)")
    reply_prefix: str = Field("", description="text the reply is started with (e.g. '<long>' forces an adaptive "
                              "student's mode); it is part of the prompt, not of the generated tokens")
    think_tags: tuple[str, str] = Field((THINK_OPEN, THINK_CLOSE), description="the model's own reasoning tags "
                                        "(stripped before the answer is extracted)")
    tasks: list[str] | None = Field(None, description="evaluate this model on these tasks only, by label or name "
                                    "(None: all)")
    strategies: list[str] | None = Field(None, description="run only these strategy labels for this model "
                                         "(None: all)")
    tags: dict[str, str] = Field(default_factory=dict, description="labels carried into its rows, e.g. "
                                 "{training: multi-task} for the logic report")
    seed: int | None = Field(None, ge=0, description="the training seed of this model (a recipe with `seeds` sets "
                             "it: one model per student and seed, all of one name): carried into its rows "
                             "(`seed: k`), unit names and samples, and its rows get an aggregate row over seeds "
                             "(`seed: all`)")

    @model_serializer(mode="wrap")
    def _without_unset_seed(self, handler):
        # a model without a seed dumps as it did before seeds existed, so config hashes and eval unit keys of
        # earlier runs stay valid
        d = handler(self)
        if isinstance(d, dict) and d.get("seed") is None:
            d.pop("seed", None)
        return d

    @property
    def key(self) -> str:
        """What tells this model apart in one eval: its name, and its seed when it has one."""
        return self.name if self.seed is None else f"{self.name}@seed-{self.seed}"

    @property
    def label(self) -> str:
        return self.name if self.seed is None else f"{self.name} (seed {self.seed})"

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v not in engine_names():
            raise ValueError(f"unknown engine backend {v!r}; known: {', '.join(engine_names())}")
        return v

    def engine_options(self, cfg: EvalConfig, use_adapters: bool = False) -> EngineOptions:
        """The engine options of this model: ``path`` read by its backend (a model, a served name, the
        oracle's style), the eval stage's settings it has keys for, then ``backend_options``."""
        cls = options_class(self.backend)
        settings = {"base_url": self.base_url, "batch_size": cfg.batch_size, "dtype": cfg.dtype,
                    "lorid": use_adapters, "adapters": list(LORID_ADAPTERS) if use_adapters else []}
        data = {**cls.from_path(self.path),
                **{k: v for k, v in settings.items() if k in cls.model_fields and v is not None},
                **self.backend_options, "backend": self.backend}
        return engine_options(data, key=f"models.{self.name}")

    def identity(self) -> dict[str, Any]:
        keep = {k: v for k, v in self.model_dump(mode="json").items()
                if k not in ("name", "tasks", "strategies", "tags")}
        opts = {k: v for k, v in self.backend_options.items()
                if k not in ("concurrency", "max_retries", "timeout", "backoff_base", "backoff_cap", "api_key_env")}
        return {**keep, "backend_options": opts}


class EvalConfig(StageConfig):
    out: str = Field(description="output dir for results.json and samples.jsonl")
    models: list[ModelRef] = Field(description="students, teachers or any chat models to evaluate; 'name=path' "
                                   "strings accepted")
    task: TaskSpec = Field(default_factory=lambda: TaskSpec(split="test", n=100),
                           description="the task to evaluate on (default: arithmetic, split test, n 100; with "
                           "`tasks`, when also given, the first of them)")
    tasks: list[TaskSpec] = Field(default_factory=list, description="more tasks, each a TaskSpec "
                                  "(e.g. [{name: rules, split: test}, {name: abduction, split: test}])")
    strategies: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"name": "greedy"}], validate_default=True,
        description="decoding strategies: names (greedy, sample, budget, adaptive, lorid) or {name: ..., label: ..., "
                    "<options>}; e.g. {name: sample, n: 8, k: [1, 8]}, {name: budget, thinking_budget: 64}")
    regimes: list[Literal[REGIMES]] = Field(  # type: ignore[valid-type]
        list(REGIMES), description="evidence regimes each evidence task is evaluated in")
    validate_with: str | None = Field(None, description="model name whose answers (first strategy) validate "
                                      "evidence instances (kept: wrong with no evidence, right with the gold "
                                      "concepts)")
    max_new_tokens: int = Field(512, ge=1, description="generation cap; a completion that hits it is truncated")
    batch_size: int = Field(64, ge=1, description="hf: prompts per generate call")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="hf: weights dtype")
    threads: int | None = Field(None, ge=1, description="torch threads")
    seed: int = 0

    @field_validator("models", mode="before")
    @classmethod
    def _parse_models(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        out = []
        for item in v or []:
            if isinstance(item, str):
                name, sep, path = item.partition("=")
                out.append({"name": name, "path": path} if sep else {"name": Path(item).name or item, "path": item})
            else:
                out.append(item)
        return out

    @field_validator("strategies", mode="before")
    @classmethod
    def _parse_strategies(cls, v: Any) -> Any:
        items = [v] if isinstance(v, (str, dict)) else list(v or [])
        out = []
        for item in items:
            d = {"name": item} if isinstance(item, str) else dict(item)
            if "name" not in d:
                raise ValueError(f"strategy {item!r} has no 'name' (one of {', '.join(STRATEGIES.names())})")
            if d["name"] not in STRATEGIES:
                raise ValueError(f"unknown eval strategy {d['name']!r}; known: {', '.join(STRATEGIES.names())}")
            opts = {k: x for k, x in d.items() if k not in ("name", "label")}
            try:  # unknown or bad options fail here, naming the key
                STRATEGIES.get(d["name"]).options.model_validate(opts)
            except ValidationError as e:
                bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
                raise ValueError(f"strategy {d['label'] if 'label' in d else d['name']}: {bad}") from None
            out.append({"name": d["name"], "label": d.get("label", d["name"]), **opts})
        labels = [d["label"] for d in out]
        if len(set(labels)) != len(labels):
            raise ValueError(f"strategies share a label ({labels}); give each a distinct 'label'")
        return out

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        names = [m.name for m in self.models]
        keys = [(m.name, m.seed) for m in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError(f"models share a name ({names}); names label the results (models of one name "
                             "differ by their seed)")
        for name in dict.fromkeys(names):
            seeds = [m.seed for m in self.models if m.name == name]
            if None in seeds and len(seeds) > 1:
                raise ValueError(f"model {name}: some of its entries have a seed and some not ({seeds}); a model is "
                                 "evaluated once, or once per seed")
        labels = {s["label"] for s in self.strategies}
        for m in self.models:
            unknown = sorted(set(m.strategies or []) - labels)
            if unknown:
                raise ValueError(f"model {m.name}: strategies {unknown} are not among the strategy labels {sorted(labels)}")
        if self.validate_with is not None and self.validate_with not in names:
            raise ValueError(f"validate_with={self.validate_with!r} is not one of the models ({', '.join(dict.fromkeys(names))})")
        if self.validate_with is not None and names.count(self.validate_with) > 1:
            raise ValueError(f"validate_with={self.validate_with!r} names a model evaluated once per seed; validate "
                             "with a model evaluated once (e.g. the teacher)")
        for m in self.models:  # a bad backend option fails now, naming the model, not when its turn comes
            m.engine_options(self)
        return self

    def task_labels(self) -> dict[str, TaskSpec]:
        """{label: spec} of the eval's tasks; two tasks with one label (and split) could not be told apart
        in the results, so that is a ConfigError naming both."""
        seen: dict[tuple[str, str], TaskSpec] = {}
        for spec in self.task_specs():
            key = (spec.task_label(), spec.split)
            if key in seen:
                raise ConfigError(f"eval: two tasks are both labelled {key[0]!r} (split {spec.split}): "
                                  f"{seen[key].model_dump(mode='json')} and {spec.model_dump(mode='json')}; give "
                                  "them different `label`s (task.label, or a jsonl task's option label)")
            seen[key] = spec
        return {label: spec for (label, _), spec in seen.items()}

    def task_specs(self) -> list[TaskSpec]:
        """``tasks``, led by ``task`` when that was set (or when ``tasks`` is empty)."""
        if "task" in self.model_fields_set or not self.tasks:
            return [self.task, *self.tasks]
        return list(self.tasks)
