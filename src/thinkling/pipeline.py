"""``thinkling run RECIPE.yaml``: chain generate -> curate -> train -> eval -> report.

A recipe names its stages; later stages refer to earlier ones by name (``traces: long``) or to a
path. Every stage writes its own directory under ``out`` and is skipped on a re-run when its
manifest matches, so an interrupted run is continued by running the same command again.
Students can train in parallel processes (``parallel: 2``, one torch thread each), the best use of
a small CPU; on GPUs, launch ``thinkling train`` with ``accelerate launch`` instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from thinkling.artifacts import atomic_write_json, atomic_write_text, is_complete, read_manifest
from thinkling.config import ConfigError, StageConfig, build_config
from thinkling.curate.stage import CurateConfig, curate
from thinkling.evaluate.stage import EvalConfig, evaluate
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.train.config import TrainConfig
from thinkling.train.stage import train


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
        _topological(self)  # a cycle of model/teacher references is an error now, not a hang later
        ev = dict(recipe.eval)
        ev.setdefault("threads", recipe.threads)
        models = ([{"name": n, "path": c.out, **self.eval_as[n]} for n, c in self.trn.items()]
                  + list(ev.pop("models", [])))
        self.ev = build_config(EvalConfig, {**ev, "models": models, "out": str(root / "eval")}, "eval")

    @staticmethod
    def _ref(value: str, known: dict[str, Any], key: str) -> str:
        if value in known:
            return known[value].out
        if Path(value).exists():
            return value
        raise ConfigError(f"key '{key}': {value!r} is neither a stage name ({', '.join(known) or 'none'}) nor an existing path")


def load_recipe(path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None) -> Plan:
    from thinkling.config import load_config

    recipe = load_config(Recipe, path, overrides, base=base)
    return Plan(recipe)


def _train_parallel(plan: Plan, console) -> None:
    """Train students not yet complete, ``parallel`` at a time, longest budget first."""
    todo = [(n, c) for n, c in plan.trn.items() if not is_complete(c.out, "train", c, _train_inputs(c))]
    for n, c in plan.trn.items():
        if (n, c) not in todo:
            console.print(f"[green]train[/]: {c.out} is complete for this config; skipping")
    if not todo:
        return
    if plan.recipe.parallel == 1 or len(todo) == 1:
        order = [n for n in _topological(plan) if n in dict(todo)]
        for n in order:
            train(dict(todo)[n], console=console)
        return
    todo.sort(key=lambda nc: -(nc[1].budget_minutes or 0))
    running: list[tuple[str, subprocess.Popen, Path, float]] = []
    env = {**os.environ, "OMP_NUM_THREADS": str(plan.recipe.threads), "TOKENIZERS_PARALLELISM": "false"}
    failed: list[str] = []
    t_start = time.time()

    def ready() -> int | None:
        """The first student whose dependencies (teacher, base model) are trained."""
        waiting = {n for n, _ in todo} | {n for n, *_ in running} | set(failed)
        for i, (n, _) in enumerate(todo):
            if not plan.deps.get(n, set()) & waiting:
                return i
        return None

    while todo or running:
        if todo and not running and ready() is None:  # what they wait for failed
            failed.extend(f"{n} (needs {', '.join(sorted(plan.deps[n]))})" for n, _ in todo)
            break
        while todo and len(running) < plan.recipe.parallel and ready() is not None:
            name, c = todo.pop(ready())
            out = Path(c.out)
            out.mkdir(parents=True, exist_ok=True)
            cfg_file = out / "train_config.yaml"
            atomic_write_text(cfg_file, yaml.safe_dump(c.model_dump(mode="json"), sort_keys=False))
            log = open(out / "train.log", "w")
            proc = subprocess.Popen([sys.executable, "-m", "thinkling.cli", "train", "--config", str(cfg_file)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            console.print(f"[bold]train[/] {name}: started (pid {proc.pid}, log {out / 'train.log'})")
            running.append((name, proc, out, time.time()))
        time.sleep(2)
        for item in list(running):
            name, proc, out, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if not todo and running:
                # hand the freed cores to the students still training (they poll out/.threads)
                share = max(1, (plan.recipe.threads * plan.recipe.parallel) // len(running))
                for _, _, r_out, _ in running:
                    atomic_write_text(r_out / ".threads", f"{share}\n")
            if proc.returncode == 0:
                m = read_manifest(out) or {}
                cnt = m.get("counts", {})
                console.print(f"[bold]train[/] {name}: done in {time.time() - t0:.0f}s, {cnt.get('steps')} steps, "
                              f"loss {cnt.get('first_loss')} -> {cnt.get('final_loss')}")
            else:
                tail = (out / "train.log").read_text()[-2000:]
                console.print(f"[red]train {name} failed[/] (exit {proc.returncode}); end of its log:\n{tail}")
                failed.append(name)
        if running and int(time.time() - t_start) % 30 < 2:
            console.print(f"  training: {', '.join(n for n, *_ in running)} ({time.time() - t_start:.0f}s)")
    if failed:
        raise RuntimeError(f"training failed for: {', '.join(failed)} (see their train.log)")


def _topological(plan: Plan) -> list[str]:
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


def _train_inputs(c: TrainConfig) -> dict[str, str]:
    from thinkling.train.stage import data_inputs, model_inputs

    inputs = data_inputs(c.data)
    for i, src in enumerate(c.tokenizer_from):
        inputs[f"tokenizer_from_{i}"] = src
    return {**inputs, **model_inputs(c)}


def check_claims(rows: list[dict], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate recipe claims on result rows. Kinds:

    - ``{kind: min_accuracy, model, level, value}``: accuracy >= value
    - ``{kind: max_accuracy, model, level, value}``: accuracy <= value
    - ``{kind: within, model, ref, level, points}``: |acc(model) - acc(ref)| <= points/100
    - ``{kind: at_least, model, ref, level, points}``: acc(model) >= acc(ref) - points/100 (no worse)
    - ``{kind: token_ratio, model, ref, level, value}``: mean_tokens(ref) / mean_tokens(model) >= value

    A check may also name ``task``, ``strategy`` and ``regime`` (default: the first row that matches).
    """
    def row(model: str, level: Any, c: dict) -> dict | None:
        for r in rows:
            if r["model"] == model and str(r["level"]) == str(level) and all(
                    r.get(k, "greedy" if k == "strategy" else None) == c[k] for k in ("task", "strategy", "regime")
                    if k in c):
                return r
        return None

    out = []
    for c in checks:
        level = c.get("level", "all")
        r = row(c["model"], level, c)
        ref = row(c["ref"], level, c) if "ref" in c else None
        res: dict[str, Any] = {**c, "passed": False}
        if r is None or ("ref" in c and ref is None):
            res["measured"] = "missing row"
        elif c["kind"] == "min_accuracy":
            res["measured"] = r["accuracy"]
            res["passed"] = r["accuracy"] >= c["value"]
        elif c["kind"] == "max_accuracy":
            res["measured"] = r["accuracy"]
            res["passed"] = r["accuracy"] <= c["value"]
        elif c["kind"] == "within":
            d = round(abs(r["accuracy"] - ref["accuracy"]) * 100, 6)  # 12.5 - 10.5 is 2.0000000000000018
            res["measured"] = round(d, 2)
            res["passed"] = d <= c["points"]
        elif c["kind"] == "at_least":
            d = round((r["accuracy"] - ref["accuracy"]) * 100, 6)
            res["measured"] = round(d, 2)
            res["passed"] = d >= -c["points"]
        elif c["kind"] == "token_ratio":
            ratio = ref["mean_tokens"] / max(r["mean_tokens"], 1e-9)
            res["measured"] = round(ratio, 2)
            res["passed"] = ratio >= c["value"]
        else:
            raise ConfigError(f"checks: unknown kind {c['kind']!r}")
        out.append(res)
    return out


def describe_check(c: dict) -> str:
    lv = c.get("level", "all")
    k = c["kind"]
    if k == "min_accuracy":
        claim = f"{c['model']} accuracy >= {100 * c['value']:.0f}% at level {lv}"
        meas = f"{100 * c['measured']:.1f}%" if isinstance(c["measured"], float) else c["measured"]
    elif k == "max_accuracy":
        claim = f"{c['model']} accuracy <= {100 * c['value']:.0f}% at level {lv}"
        meas = f"{100 * c['measured']:.1f}%" if isinstance(c["measured"], float) else c["measured"]
    elif k == "within":
        claim = f"{c['model']} within {c['points']} points of {c['ref']} at level {lv}"
        meas = f"{c['measured']} points"
    elif k == "at_least":
        claim = f"{c['model']} no more than {c['points']} points below {c['ref']} at level {lv}"
        meas = f"{c['measured']:+} points" if isinstance(c["measured"], (int, float)) else c["measured"]
    else:
        claim = f"{c['model']} uses >= {c['value']}x fewer tokens than {c['ref']} at level {lv}"
        meas = f"{c['measured']}x"
    return f"| {claim} | {meas} | {'PASS' if c['passed'] else 'MISS'} |"


def run(plan: Plan, force: bool = False, console=None) -> dict[str, Any]:
    from rich.console import Console

    from thinkling.report import write_report

    console = console or Console(stderr=True)
    root = Path(plan.recipe.out)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / "recipe.json", plan.recipe.model_dump(mode="json"))
    t0 = time.time()
    timings: dict[str, float] = {}
    for name, c in plan.gen.items():
        generate(c, force=force, console=console)
    timings["generate"] = time.time() - t0
    t = time.time()
    for name, c in plan.cur.items():
        curate(c, force=force, console=console)
    timings["curate"] = time.time() - t
    t = time.time()
    if force:
        for c in plan.trn.values():
            from thinkling.artifacts import invalidate

            invalidate(c.out)
    _train_parallel(plan, console)
    timings["train"] = time.time() - t
    t = time.time()
    evaluate(plan.ev, force=force, console=console)
    timings["eval"] = time.time() - t
    import json

    rows = json.loads((Path(plan.ev.out) / "results.json").read_text())
    checks = check_claims(rows, plan.recipe.checks)
    timings["total"] = time.time() - t0
    atomic_write_json(root / "results.json", rows)
    notes = [f"Wall time {timings['total']:.0f}s (" + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()
                                                              if k != "total") + ")."]
    extra = []
    if checks:
        extra = ["## Claims checked", "", "| claim | measured | result |", "|---|---|---|",
                 *(describe_check(c) for c in checks), ""]
    train_rows = ["## Students", "",
                  "| student | method | data | steps | rows seen | train s | trained tok/s | loss first -> last |",
                  "|---|---|---|---|---|---|---|---|"]
    for n, c in plan.trn.items():
        data_names = ", ".join(Path(x).name for x in ([c.data] if isinstance(c.data, str) else c.data))
        m = read_manifest(c.out) or {}
        cnt = m.get("counts", {})
        train_rows.append(f"| {n} | {c.method} | {data_names} | {cnt.get('steps')} | {cnt.get('examples_seen')} "
                          f"| {cnt.get('train_seconds')} | {cnt.get('trained_tokens_per_second')} "
                          f"| {cnt.get('first_loss')} -> {cnt.get('final_loss')} |")
    from thinkling.artifacts import read_jsonl

    ev = Path(plan.ev.out)
    validation = json.loads((ev / "validation.json").read_text()) if (ev / "validation.json").exists() else None
    report = write_report(rows, root, plan.recipe.title, notes=notes, extra_sections=extra + train_rows + [""],
                          samples=read_jsonl(ev / "samples.jsonl"), validation=validation)
    summary = {"out": str(root), "report": str(report), "timings": timings, "checks": checks}
    atomic_write_json(root / "run.json", summary)
    return summary
