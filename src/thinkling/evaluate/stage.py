"""The eval stage: models x tasks x strategies -> results.json (accuracy *and* cost) + samples.jsonl.

One loop: for each model (an engine from the registry: ``hf``, ``vllm``, ``openai``, ``oracle``, ...),
each task (evidence tasks once per evidence regime), each strategy, a *unit* runs and writes
``units/<name>-<key>/``: its scored completions and one record per problem. Completions are logged by
request key (``calls.jsonl``) as the engine reports them (each reply over an endpoint, each batch on
``hf``), so a unit cut short - an endpoint that went away, a kill - is finished by running the same
command again without asking for an answered completion twice; units already done are read back.

Rows (``results.json``) are per (model, task, regime, strategy, level) plus ``level: "all"``, with the
full protocol (template, sampling, seed, max tokens, strategy options) recorded on each. With
``validate_with`` set, evidence-task rows count only the instances that the reference model fails
without evidence and solves with the gold concepts (DeR2's instance validation); ``validation.json``
lists what was kept and dropped.

A model evaluated once per training seed (``ModelRef.seed``, set by a recipe's ``seeds``) has ``seed: k`` on
its rows and samples and in its unit names, and one more row per measurement with ``seed: "all"``, the
aggregate over its seeds (:mod:`thinkling.evaluate.seeds`). A model whose path is a thinkling train dir with
``compute`` in its manifest has it as ``train_compute`` on each of its rows.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from thinkling.artifacts import (
    atomic_write_json, fingerprint, invalidate, is_complete, iter_jsonl, read_manifest, stable_hash, write_jsonl,
    write_manifest,
)
from thinkling.config import ConfigError
from thinkling.engines import Engine, EngineError, Request, build_engine, options_class
from thinkling.engines.log import LoggedEngine
from thinkling.evaluate.config import EvalConfig, ModelRef
from thinkling.evaluate.seeds import aggregate_seeds, train_compute
from thinkling.evaluate.strategies import STRATEGIES, Context, StrategyFailed, row_extras
from thinkling.format import normalise_tags, split_thinking
from thinkling.metrics import summarize
from thinkling.models.loading import set_threads
from thinkling.tasks.spec import TaskSpec


class EvalError(RuntimeError):
    """Some units failed; what finished is kept and a re-run does only the rest."""


# ----------------------------------------------------------------------------- the completion log


def call_key(identity: dict[str, Any]) -> Callable[[Request], str]:
    """The key a model's completion is logged under: greedy keys leave the seed out (it changes nothing);
    prefixes, adapters and caps are in the key."""

    def key(r: Request) -> str:
        s = r.sampling
        return stable_hash({"model": identity, "messages": r.messages, "prefix": r.prefix, "adapter": r.adapter,
                            "max_tokens": s.max_tokens,
                            "sampling": [s.temperature, s.top_p, r.seed] if s.temperature > 0 else 0})

    return key


# ----------------------------------------------------------------------------- units


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:60]


@dataclass
class EvalTask:
    """A task as one eval asks it: its spec, the label naming it in results, the evidence regime (if any),
    the built task and its problems (loaded once, for every model)."""

    spec: TaskSpec
    label: str
    regime: str | None
    task: Any
    problems: list


def _expand_tasks(cfg: EvalConfig) -> list[EvalTask]:
    """The eval's tasks: an evidence task once per regime (unless its options fix one); their labels are
    checked first (:meth:`EvalConfig.task_labels`)."""
    cfg.task_labels()
    specs: list[tuple[TaskSpec, str | None]] = []
    for spec in cfg.task_specs():
        if getattr(spec.build(), "evidence", False):
            fixed = spec.options.get("regime")
            specs += ([(spec, fixed)] if fixed else
                      [(spec.model_copy(update={"options": {**spec.options, "regime": r}}), r) for r in cfg.regimes])
        else:
            specs.append((spec, None))
    out = []
    for spec, regime in specs:
        task = spec.build()
        out.append(EvalTask(spec, spec.task_label(task), regime, task, spec.problems()))
    return out


def _unit_record(o, regime: str | None) -> dict:
    return {"problem_id": o.problem.id, "level": o.problem.level, "predicted": o.predicted, "correct": o.correct,
            "tokens": o.tokens, "truncated": o.truncated, "seconds": o.seconds, "regime": regime,
            "extra": o.extra}


def _sample_rows(o, base: dict, think_tags: tuple[str, str]) -> list[dict]:
    rows = []
    for s in o.samples:
        reasoning, answer, closed = split_thinking(normalise_tags(s.text, think_tags))
        rows.append({**base, "problem_id": o.problem.id, "level": o.problem.level, "question": o.problem.question,
                     "gold": o.problem.answer, "completion": s.text, "reasoning": reasoning,
                     "answer_text": answer if closed else "", "predicted": s.predicted, "correct": s.correct,
                     "tokens": s.tokens, "truncated": s.truncated, "role": s.role, "sample": s.sample,
                     "iteration": s.iteration})
    return rows


def summarize_records(recs: list[dict], strategy: str) -> dict[str, Any]:
    """A row's figures over per-problem records (see :func:`_unit_record`)."""
    secs = sum(r["seconds"] for r in recs)
    row = summarize([r["correct"] for r in recs], [r["tokens"] for r in recs], [r["truncated"] for r in recs], secs)
    row["no_answer_rate"] = sum(r["predicted"] is None for r in recs) / len(recs) if recs else 0.0
    row.update(row_extras(strategy, [r["extra"] for r in recs]))
    return row


def evaluate(cfg: EvalConfig, force: bool = False, console=None) -> dict:
    console = console or Console(stderr=True)
    out = Path(cfg.out)
    inputs = {m.key: m.path for m in cfg.models
              if options_class(m.backend).LOADS_WEIGHTS and Path(m.path).exists()}
    model_files = {n: fingerprint(p) for n, p in inputs.items()}
    if not force and is_complete(out, "eval", cfg, inputs):
        console.print(f"[green]eval[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]
    started = time.time()
    if force:
        shutil.rmtree(out / "units", ignore_errors=True)
    invalidate(out)
    set_threads(cfg.threads)
    tasks = _expand_tasks(cfg)
    units: list[dict] = []   # done units: meta + records
    samples: list[dict] = []
    failures: list[str] = []
    for ref in cfg.models:
        engine: Engine | None = None
        compute = train_compute(ref.path) if options_class(ref.backend).LOADS_WEIGHTS else None
        try:
            for t in tasks:
                if ref.tasks is not None and t.label not in ref.tasks and t.spec.name not in ref.tasks:
                    continue
                for strat in cfg.strategies:
                    if ref.strategies is not None and strat["label"] not in ref.strategies:
                        continue
                    try:
                        unit, engine = _run_unit(cfg, ref, t, strat, engine, model_files, console=console)
                    except _UnitFailed as e:
                        failures.append(str(e))
                        console.print(f"[red]eval[/] {e}")
                        continue
                    if compute is not None:
                        unit["train_compute"] = compute
                    units.append(unit)
                    samples.extend(unit.pop("samples"))
        finally:
            if engine is not None:
                engine.close()
    validation = _validate(cfg, units) if cfg.validate_with else None
    rows = _rows(cfg, units, validation)
    rows += aggregate_seeds(rows)
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


def _run_unit(cfg: EvalConfig, ref: ModelRef, t: EvalTask, strat: dict, engine: Engine | None, fingerprints: dict,
              console) -> tuple[dict, Engine | None]:
    spec, regime, task, problems = t.spec, t.regime, t.task, t.problems
    sspec = STRATEGIES.get(strat["name"])
    opts = sspec.options.model_validate({k: v for k, v in strat.items() if k not in ("name", "label")})
    protocol = {"backend": ref.backend, "template": "the model's chat template; user turn = the task prompt",
                "reply_prefix": ref.reply_prefix, "think_tags": list(ref.think_tags), "strategy": strat["name"],
                "strategy_options": opts.model_dump(mode="json"), "max_new_tokens": cfg.max_new_tokens,
                "seed": cfg.seed, "task": spec.model_dump(mode="json")}
    key = stable_hash({"model": ref.identity(), "model_files": fingerprints.get(ref.key), "protocol": protocol,
                       "problems": [p.id for p in problems]})
    label = f"{ref.label} {t.label}" + (f"/{regime}" if regime else "") + f" {strat['label']}"
    seed = "" if ref.seed is None else f"__seed-{ref.seed}"
    name = (f"{_slug(ref.name)}{seed}__{_slug(t.label)}{'__' + regime if regime else ''}__{_slug(strat['label'])}"
            f"-{key}")
    udir = Path(cfg.out) / "units" / name
    meta = {"model": ref.name, "model_path": ref.path, "backend": ref.backend, "task": t.label, "split": spec.split,
            "strategy": strat["label"], "strategy_name": strat["name"], "regime": regime,
            "group": getattr(task, "group", "") or None, "tags": ref.tags or None, "protocol": protocol}
    if ref.seed is not None:
        meta["seed"] = ref.seed
    if (udir / "done.json").exists():
        recs = list(iter_jsonl(udir / "problems.jsonl"))
        console.print(f"[green]eval[/] {label}: done earlier; read back")
        return {**meta, "records": recs, "samples": list(iter_jsonl(udir / "samples.jsonl"))}, engine
    if engine is None:
        use_adapters = any(s["name"] == "lorid" and (ref.strategies is None or s["label"] in ref.strategies)
                           for s in cfg.strategies)
        try:
            engine = build_engine(ref.engine_options(cfg, use_adapters))
        except EngineError as e:
            raise _UnitFailed(f"{label}: {e}") from None
    udir.mkdir(parents=True, exist_ok=True)
    logged = LoggedEngine(engine, udir / "calls.jsonl", key=call_key(ref.identity()))
    try:
        with Progress(TextColumn(f"eval {label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            job = bar.add_task("eval", total=len(problems) * sspec.calls_per_problem(opts))
            ctx = Context(logged, task, cfg.max_new_tokens, tuple(ref.think_tags),
                          progress=lambda k: bar.advance(job, k), reply_prefix=ref.reply_prefix)
            outcomes = sspec.fn(ctx, problems, opts)
    except StrategyFailed as e:
        raise _UnitFailed(f"{label}: {e} ({len(logged.done)} completions logged in "
                          f"{udir / 'calls.jsonl'}; a re-run asks only for the rest)") from None
    finally:
        logged.close()
    recs = [_unit_record(o, regime) for o in outcomes]
    base = {"model": ref.name, **({"seed": ref.seed} if ref.seed is not None else {}), "task": t.label,
            "strategy": strat["label"], "regime": regime}
    smp = [r for o in outcomes for r in _sample_rows(o, base, tuple(ref.think_tags))]
    write_jsonl(udir / "problems.jsonl", recs)
    write_jsonl(udir / "samples.jsonl", smp)
    atomic_write_json(udir / "done.json", {"meta": meta, "problems": len(recs)})
    acc = sum(r["correct"] for r in recs) / max(len(recs), 1)
    toks = sum(r["tokens"] for r in recs) / max(len(recs), 1)
    console.print(f"[bold]eval[/] {label}: accuracy {acc:.1%}, mean tokens {toks:.1f}")
    return {**meta, "records": recs, "samples": smp}, engine


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
        head = {k: u[k] for k in ("model", "seed", "model_path", "backend", "task", "split") if k in u}
        tail = {k: u[k] for k in ("regime", "group", "tags", "train_compute") if u.get(k)}
        if validation and u["regime"] and u["task"] in validation:
            tail["validated"] = True
        for lv in [*levels, "all"]:
            xs = recs if lv == "all" else [r for r in recs if r["level"] == lv]
            rows.append({**head, "level": lv, "strategy": u["strategy"], **tail,
                         **summarize_records(xs, u["strategy_name"]), "protocol": u["protocol"]})
    return rows

