"""The eval stage: models x tasks x strategies -> results.json (accuracy *and* cost) + samples.jsonl.

One loop: for each model (an engine: ``hf``, ``vllm`` or ``openai``), each task (evidence tasks once
per evidence regime), each strategy, a *unit* runs and writes ``units/<name>-<key>/``: its scored
completions and one record per problem. Every completion is logged as it arrives (``calls.jsonl``),
so a unit cut short - an endpoint that went away, a kill - is finished by running the same command
again without asking for anything twice; units already done are read back, not re-run.

Rows (``results.json``) are per (model, task, regime, strategy, level) plus ``level: "all"``, with the
full protocol (template, sampling, seed, max tokens, strategy options) recorded on each. With
``validate_with`` set, evidence-task rows count only the instances that the reference model fails
without evidence and solves with the gold concepts (DeR2's instance validation); ``validation.json``
lists what was kept and dropped.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from thinkling.artifacts import (
    AppendLog, atomic_write_json, invalidate, is_complete, iter_jsonl, read_manifest, stable_hash, write_jsonl,
    write_manifest,
)
from thinkling.config import ConfigError, StageConfig
from thinkling.evaluate.engines import Ask, Engine
from thinkling.evaluate.generation import Completion
from thinkling.format import THINK_CLOSE, THINK_OPEN, split_thinking
from thinkling.tasks.spec import TaskSpec

REGIMES = ("instruction", "concepts", "related", "full")


class ModelRef(StageConfig):
    name: str = Field(description="label used in results and plots")
    path: str = Field(description="hf/vllm: HF hub id or local checkpoint dir (a LoRID dir brings its adapters); "
                      "openai: the model name the endpoint serves")
    backend: Literal["hf", "vllm", "openai", "oracle"] = Field(
        "hf", description="hf (transformers, batched, in-process), vllm (offline engine), openai (an "
        "OpenAI-compatible endpoint), oracle (the synthetic tasks' built-in teacher; path = its style)")
    base_url: str | None = Field(None, description="openai: endpoint base URL with its /v1")
    backend_options: dict[str, Any] = Field(default_factory=dict, description="more teacher-backend keys for "
                                            "openai/vllm (api_key_env, concurrency, max_retries, timeout, api, "
                                            "extra_body, vllm_max_model_len, ...; see `thinkling generate --help`)")
    reply_prefix: str = Field("", description="text the reply is started with (e.g. '<long>' forces an adaptive "
                              "student's mode); it is part of the prompt, not of the generated tokens")
    think_tags: tuple[str, str] = Field((THINK_OPEN, THINK_CLOSE), description="the model's own reasoning tags "
                                        "(stripped before the answer is extracted)")
    tasks: list[str] | None = Field(None, description="evaluate this model on these task names only (None: all)")
    strategies: list[str] | None = Field(None, description="run only these strategy labels for this model "
                                         "(None: all)")
    tags: dict[str, str] = Field(default_factory=dict, description="labels carried into its rows, e.g. "
                                 "{training: multi-task} for the logic report")

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
    regimes: list[Literal["instruction", "concepts", "related", "full"]] = Field(
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
        from thinkling.evaluate.strategies import STRATEGIES

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
        if len(set(names)) != len(names):
            raise ValueError(f"models share a name ({names}); names label the results")
        labels = {s["label"] for s in self.strategies}
        for m in self.models:
            unknown = sorted(set(m.strategies or []) - labels)
            if unknown:
                raise ValueError(f"model {m.name}: strategies {unknown} are not among the strategy labels {sorted(labels)}")
        if self.validate_with is not None and self.validate_with not in names:
            raise ValueError(f"validate_with={self.validate_with!r} is not one of the models ({', '.join(names)})")
        return self

    def task_specs(self) -> list[TaskSpec]:
        """``tasks``, led by ``task`` when that was set (or when ``tasks`` is empty)."""
        if "task" in self.model_fields_set or not self.tasks:
            return [self.task, *self.tasks]
        return list(self.tasks)


class EvalError(RuntimeError):
    """Some units failed; what finished is kept and a re-run does only the rest."""


# ----------------------------------------------------------------------------- engines and the completion log


def build_engine(ref: ModelRef, cfg: EvalConfig, use_adapters: bool) -> Engine:
    from thinkling.evaluate.engines import HFEngine, OpenAIEngine, OracleEngine, VLLMEngine

    if ref.backend == "oracle":
        return OracleEngine(ref.path)
    if ref.backend == "hf":
        return HFEngine(ref.path, cfg.dtype, cfg.batch_size, use_adapters=use_adapters)
    if ref.backend == "vllm":
        return VLLMEngine(ref.path, **ref.backend_options)
    if not ref.base_url:
        raise ConfigError(f"model {ref.name}: backend openai needs base_url (e.g. http://127.0.0.1:8000/v1)")
    from thinkling.format import LORID_ADAPTERS

    return OpenAIEngine(ref.path, ref.base_url, adapters=LORID_ADAPTERS if use_adapters else (), **ref.backend_options)


class LoggedEngine(Engine):
    """An engine whose completions are logged by request key: a re-run gets them back instead of asking again.

    Greedy keys leave the seed out (it changes nothing); prefixes, adapters and caps are in the key.
    """

    def __init__(self, inner: Engine, log_path: Path, identity: dict[str, Any]):
        self.inner = inner
        self.backend = inner.backend
        self.adapters = inner.adapters
        self.identity = identity
        self.log = AppendLog(log_path)  # first: it cuts a line torn by a kill
        self.done: dict[str, dict] = {r["key"]: r for r in iter_jsonl(log_path)}

    def key(self, a: Ask, max_tokens: int, temperature: float, top_p: float) -> str:
        return stable_hash({"model": self.identity, "messages": a.messages, "prefix": a.prefix, "adapter": a.adapter,
                            "max_tokens": max_tokens, "sampling": [temperature, top_p, a.seed] if temperature > 0 else 0})

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        keys = [self.key(a, max_tokens, temperature, top_p) for a in asks]
        out: list[Completion | Exception | None] = [None] * len(asks)
        todo = []
        for i, k in enumerate(keys):
            r = self.done.get(k)
            if r is not None:
                out[i] = Completion(r["text"], r["n_tokens"], r["truncated"], r["seconds"])
            else:
                todo.append(i)
        if progress is not None and len(todo) < len(asks):
            progress(len(asks) - len(todo))
        if todo:
            res = self.inner.run([asks[i] for i in todo], max_tokens, temperature, top_p, progress=progress)
            fresh = []
            for i, r in zip(todo, res):
                out[i] = r
                if isinstance(r, Completion):
                    rec = {"key": keys[i], "text": r.text, "n_tokens": r.n_tokens, "truncated": r.truncated,
                           "seconds": r.seconds}
                    self.done[keys[i]] = rec
                    fresh.append(rec)
            self.log.append(fresh)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self.log.close()


# ----------------------------------------------------------------------------- units


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:60]


def _expand_tasks(cfg: EvalConfig) -> list[tuple[TaskSpec, str | None, Any, list]]:
    """(task spec, regime, task, problems), loaded once for every model: an evidence task once per
    regime (unless its options fix one)."""
    specs: list[tuple[TaskSpec, str | None]] = []
    for spec in cfg.task_specs():
        if getattr(spec.build(), "evidence", False):
            fixed = spec.options.get("regime")
            specs += ([(spec, fixed)] if fixed else
                      [(spec.model_copy(update={"options": {**spec.options, "regime": r}}), r) for r in cfg.regimes])
        else:
            specs.append((spec, None))
    return [(spec, regime, spec.build(), spec.problems()) for spec, regime in specs]


def _unit_record(o, regime: str | None) -> dict:
    return {"problem_id": o.problem.id, "level": o.problem.level, "predicted": o.predicted, "correct": o.correct,
            "tokens": o.tokens, "truncated": o.truncated, "seconds": o.seconds, "regime": regime,
            "extra": o.extra}


def _sample_rows(o, base: dict, think_tags: tuple[str, str]) -> list[dict]:
    rows = []
    for s in o.samples:
        o_, c_ = think_tags
        norm = s.text.replace(o_, THINK_OPEN).replace(c_, THINK_CLOSE)
        reasoning, answer, closed = split_thinking(norm)
        rows.append({**base, "problem_id": o.problem.id, "level": o.problem.level, "question": o.problem.question,
                     "gold": o.problem.answer, "completion": s.text, "reasoning": reasoning,
                     "answer_text": answer if closed else "", "predicted": s.predicted, "correct": s.correct,
                     "tokens": s.tokens, "truncated": s.truncated, "role": s.role, "sample": s.sample,
                     "iteration": s.iteration})
    return rows


def summarize_records(recs: list[dict], strategy: str) -> dict[str, Any]:
    """A row's figures over per-problem records (see :func:`_unit_record`)."""
    from thinkling.metrics import summarize
    from thinkling.evaluate.strategies import row_extras

    secs = sum(r["seconds"] for r in recs)
    row = summarize([r["correct"] for r in recs], [r["tokens"] for r in recs], [r["truncated"] for r in recs], secs)
    row["no_answer_rate"] = sum(r["predicted"] is None for r in recs) / len(recs) if recs else 0.0
    row.update(row_extras(strategy, [r["extra"] for r in recs]))
    return row


def evaluate(cfg: EvalConfig, force: bool = False, console=None) -> dict:
    from rich.console import Console

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    inputs = {m.name: m.path for m in cfg.models if m.backend in ("hf", "vllm") and Path(m.path).exists()}
    from thinkling.artifacts import fingerprint

    model_files = {n: fingerprint(p) for n, p in inputs.items()}
    if not force and is_complete(out, "eval", cfg, inputs):
        console.print(f"[green]eval[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]
    started = time.time()
    if force:
        import shutil

        shutil.rmtree(out / "units", ignore_errors=True)
    invalidate(out)
    from thinkling.models.loading import set_threads

    set_threads(cfg.threads)
    tasks = _expand_tasks(cfg)
    units: list[dict] = []   # done units: meta + records
    samples: list[dict] = []
    failures: list[str] = []
    for ref in cfg.models:
        engine: Engine | None = None
        try:
            for spec, regime, task, problems in tasks:
                if ref.tasks is not None and spec.name not in ref.tasks:
                    continue
                for strat in cfg.strategies:
                    if ref.strategies is not None and strat["label"] not in ref.strategies:
                        continue
                    try:
                        unit, engine = _run_unit(cfg, ref, spec, regime, task, problems, strat, engine, model_files,
                                                 console=console)
                    except _UnitFailed as e:
                        failures.append(str(e))
                        console.print(f"[red]eval[/] {e}")
                        continue
                    units.append(unit)
                    samples.extend(unit.pop("samples"))
        finally:
            if engine is not None:
                engine.close()
    validation = _validate(cfg, units) if cfg.validate_with else None
    rows = _rows(cfg, units, validation)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", rows)
    write_jsonl(out / "samples.jsonl", samples)
    if validation is not None:
        atomic_write_json(out / "validation.json", validation)
    if failures:
        raise EvalError(f"{len(failures)} eval unit(s) failed; {len(units)} finished and are kept in {out} "
                        f"(results.json has their rows). Run the same command again to finish the rest.\n  "
                        + "\n  ".join(failures))
    return write_manifest(out, "eval", cfg, inputs, {"units": len(units), "rows": len(rows),
                                                     "models": len(cfg.models)}, started=started)


class _UnitFailed(RuntimeError):
    pass


def _run_unit(cfg: EvalConfig, ref: ModelRef, spec: TaskSpec, regime: str | None, task, problems, strat: dict,
              engine: Engine | None, fingerprints: dict, console) -> tuple[dict, Engine | None]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from thinkling.evaluate.engines import EngineError
    from thinkling.evaluate.strategies import STRATEGIES, Context, StrategyFailed

    sspec = STRATEGIES.get(strat["name"])
    opts = sspec.options.model_validate({k: v for k, v in strat.items() if k not in ("name", "label")})
    protocol = {"backend": ref.backend, "template": "the model's chat template; user turn = the task prompt",
                "reply_prefix": ref.reply_prefix, "think_tags": list(ref.think_tags), "strategy": strat["name"],
                "strategy_options": opts.model_dump(mode="json"), "max_new_tokens": cfg.max_new_tokens,
                "seed": cfg.seed, "task": spec.model_dump(mode="json")}
    key = stable_hash({"model": ref.identity(), "model_files": fingerprints.get(ref.name), "protocol": protocol,
                       "problems": [p.id for p in problems]})
    label = f"{ref.name} {spec.name}" + (f"/{regime}" if regime else "") + f" {strat['label']}"
    udir = Path(cfg.out) / "units" / f"{_slug(ref.name)}__{_slug(spec.name)}{'__' + regime if regime else ''}__{_slug(strat['label'])}-{key}"
    meta = {"model": ref.name, "model_path": ref.path, "backend": ref.backend, "task": spec.name, "split": spec.split,
            "strategy": strat["label"], "strategy_name": strat["name"], "regime": regime,
            "group": getattr(task, "group", "") or None, "tags": ref.tags or None, "protocol": protocol}
    if (udir / "done.json").exists():
        recs = list(iter_jsonl(udir / "problems.jsonl"))
        console.print(f"[green]eval[/] {label}: done earlier; read back")
        return {**meta, "records": recs, "samples": list(iter_jsonl(udir / "samples.jsonl"))}, engine
    if engine is None:
        try:
            engine = build_engine(ref, cfg, use_adapters=any(
                s["name"] == "lorid" and (ref.strategies is None or s["label"] in ref.strategies)
                for s in cfg.strategies))
        except EngineError as e:
            raise _UnitFailed(f"{label}: {e}") from None
    udir.mkdir(parents=True, exist_ok=True)
    logged = LoggedEngine(engine, udir / "calls.jsonl", ref.identity())
    prefix_engine = _PrefixEngine(logged, ref.reply_prefix) if ref.reply_prefix else logged
    try:
        with Progress(TextColumn(f"eval {label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            job = bar.add_task("eval", total=len(problems) * sspec.calls_per_problem(opts))
            ctx = Context(prefix_engine, task, cfg.max_new_tokens, tuple(ref.think_tags),
                          progress=lambda k: bar.advance(job, k))
            outcomes = sspec.fn(ctx, problems, opts)
    except StrategyFailed as e:
        raise _UnitFailed(f"{label}: {e} ({len(logged.done)} completions logged in "
                          f"{udir / 'calls.jsonl'}; a re-run asks only for the rest)") from None
    finally:
        logged.close()
    recs = [_unit_record(o, regime) for o in outcomes]
    base = {"model": ref.name, "task": spec.name, "strategy": strat["label"], "regime": regime}
    smp = [r for o in outcomes for r in _sample_rows(o, base, tuple(ref.think_tags))]
    write_jsonl(udir / "problems.jsonl", recs)
    write_jsonl(udir / "samples.jsonl", smp)
    atomic_write_json(udir / "done.json", {"meta": meta, "problems": len(recs)})
    acc = sum(r["correct"] for r in recs) / max(len(recs), 1)
    toks = sum(r["tokens"] for r in recs) / max(len(recs), 1)
    console.print(f"[bold]eval[/] {label}: accuracy {acc:.1%}, mean tokens {toks:.1f}")
    return {**meta, "records": recs, "samples": smp}, engine


class _PrefixEngine(Engine):
    """Every reply starts with the model's ``reply_prefix`` (before any prefix the strategy adds)."""

    def __init__(self, inner: Engine, prefix: str):
        self.inner, self.prefix = inner, prefix
        self.backend, self.adapters = inner.backend, inner.adapters

    def run(self, asks, max_tokens, temperature=0.0, top_p=1.0, progress=None):
        from dataclasses import replace

        asks = [a if a.prefix.startswith(self.prefix) else replace(a, prefix=self.prefix + a.prefix) for a in asks]
        return self.inner.run(asks, max_tokens, temperature, top_p, progress)


def _validate(cfg: EvalConfig, units: list[dict]) -> dict[str, Any]:
    """DeR2 instance validation from the reference model's first strategy: keep an instance when it fails
    with no evidence (instruction) and succeeds with the gold concepts."""
    ref = cfg.validate_with
    first = cfg.strategies[0]["label"]
    by: dict[tuple[str, str], dict[str, dict]] = {}
    for u in units:
        if u["model"] == ref and u["strategy"] == first and u["regime"]:
            by.setdefault((u["task"], u["split"]), {})[u["regime"]] = {r["problem_id"]: r for r in u["records"]}
    out: dict[str, Any] = {}
    for (task, split), regs in by.items():
        if "instruction" not in regs or "concepts" not in regs:
            raise ConfigError(f"validate_with={ref}: instance validation needs the instruction and concepts regimes "
                              f"of {task} (regimes: {cfg.regimes})")
        kept, dropped = [], {"solved_without_evidence": [], "unsolved_with_concepts": []}
        for pid, r in regs["instruction"].items():
            c = regs["concepts"].get(pid)
            if r["correct"]:
                dropped["solved_without_evidence"].append(pid)
            elif c is None or not c["correct"]:
                dropped["unsolved_with_concepts"].append(pid)
            else:
                kept.append(pid)
        out[task] = {"split": split, "reference_model": ref, "strategy": first, "kept": kept, "dropped": dropped,
                     "total": len(regs["instruction"])}
    return out


def _rows(cfg: EvalConfig, units: list[dict], validation: dict | None) -> list[dict]:
    rows = []
    for u in units:
        recs = u["records"]
        if validation and u["regime"] and u["task"] in validation:
            keep = set(validation[u["task"]]["kept"])
            recs = [r for r in recs if r["problem_id"] in keep]
        if not recs:
            continue
        levels = sorted({r["level"] for r in recs})
        head = {k: u[k] for k in ("model", "model_path", "backend", "task", "split")}
        tail = {k: u[k] for k in ("regime", "group", "tags") if u.get(k)}
        if validation and u["regime"] and u["task"] in validation:
            tail["validated"] = True
        for lv in [*levels, "all"]:
            xs = recs if lv == "all" else [r for r in recs if r["level"] == lv]
            rows.append({**head, "level": lv, "strategy": u["strategy"], **tail,
                         **summarize_records(xs, u["strategy_name"]), "protocol": u["protocol"]})
    return rows

