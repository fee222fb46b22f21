"""Training a recipe's students: in dependency order, and ``parallel`` at a time in separate processes
(one torch thread each; a student still training is handed the cores the others free)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from thinkling.artifacts import atomic_write_text, is_complete, read_manifest
from thinkling.pipeline.recipe import Plan, topological
from thinkling.train.config import TrainConfig
from thinkling.train.stage import train, train_inputs


def train_students(plan: Plan, console) -> None:
    """Train the students not yet complete: one after another in dependency order, or ``parallel`` at a
    time in separate processes (largest budget first, see :func:`start_order`; a student once what it starts from
    is trained). With the recipe's ``seeds`` each (student, seed) is one job, named ``<student>/seed-<k>``."""
    todo = [(n, c) for n, c in plan.trn.items() if not is_complete(c.out, "train", c, train_inputs(c))]
    for n, c in plan.trn.items():
        if (n, c) not in todo:
            console.print(f"[green]train[/]: {c.out} is complete for this config; skipping")
    if not todo:
        return
    if plan.recipe.parallel == 1 or len(todo) == 1:
        for n in [n for n in topological(plan) if n in dict(todo)]:
            train(dict(todo)[n], console=console)
        return
    todo = start_order(todo)
    env = {**os.environ, "OMP_NUM_THREADS": str(plan.recipe.threads), "TOKENIZERS_PARALLELISM": "false"}
    running: list[_Running] = []
    failed: list[str] = []
    t_start = time.time()
    while todo or running:
        if todo and not running and _ready(plan, todo, running, failed) is None:  # what they wait for failed
            failed.extend(f"{n} (needs {', '.join(sorted(plan.deps[n]))})" for n, _ in todo)
            break
        while todo and len(running) < plan.recipe.parallel and (i := _ready(plan, todo, running, failed)) is not None:
            running.append(_start(*todo.pop(i), env, console))
        time.sleep(2)
        for r in [r for r in running if r.proc.poll() is not None]:
            running.remove(r)
            if not todo and running:  # hand the freed cores to the students still training (they poll out/.threads)
                share = max(1, (plan.recipe.threads * plan.recipe.parallel) // len(running))
                for other in running:
                    atomic_write_text(other.out / ".threads", f"{share}\n")
            if not _report(r, console):
                failed.append(r.name)
        if running and int(time.time() - t_start) % 30 < 2:
            console.print(f"  training: {', '.join(r.name for r in running)} ({time.time() - t_start:.0f}s)")
    if failed:
        raise RuntimeError(f"training failed for: {', '.join(failed)} (see their train.log)")


def budget_of(c: TrainConfig) -> tuple[str, float] | None:
    """(kind, amount) of a student's budget: tokens, flops or minutes (at most one is set); None when
    ``max_steps`` or ``epochs`` decide."""
    for kind in ("tokens", "flops", "minutes"):
        v = getattr(c, f"budget_{kind}")
        if v:
            return kind, float(v)
    return None


def start_order(todo: list[tuple[str, TrainConfig]]) -> list[tuple[str, TrainConfig]]:
    """The order to start students in: the largest budget first, so the longest run does not start last.
    Budgets of different kinds cannot be compared without knowing throughput, so each counts as its share of
    the largest budget of its kind; students without a budget go last. Ties keep the recipe's order (a
    student's seeds one after the other)."""
    top: dict[str, float] = {}
    for _, c in todo:
        if (b := budget_of(c)) is not None:
            top[b[0]] = max(top.get(b[0], 0.0), b[1])

    def share(nc: tuple[str, TrainConfig]) -> float:
        b = budget_of(nc[1])
        return b[1] / top[b[0]] if b is not None else 0.0

    return sorted(todo, key=lambda nc: -share(nc))


@dataclass
class _Running:
    name: str
    proc: subprocess.Popen
    out: Path
    started: float


def _ready(plan: Plan, todo: list, running: list[_Running], failed: list[str]) -> int | None:
    """The first student to do whose dependencies (teacher, base model) are trained."""
    waiting = {n for n, _ in todo} | {r.name for r in running} | set(failed)
    for i, (n, _) in enumerate(todo):
        if not plan.deps.get(n, set()) & waiting:
            return i
    return None


def _start(name: str, c: TrainConfig, env: dict, console) -> _Running:
    """``thinkling train`` on the student's resolved config, in a process of its own (log: out/train.log)."""
    out = Path(c.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "train_config.yaml"
    atomic_write_text(cfg_file, yaml.safe_dump(c.model_dump(mode="json"), sort_keys=False))
    with open(out / "train.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "thinkling.cli", "train", "--config", str(cfg_file)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    console.print(f"[bold]train[/] {name}: started (pid {proc.pid}, log {out / 'train.log'})")
    return _Running(name, proc, out, time.time())


def _report(r: _Running, console) -> bool:
    """Print how a finished student did; False when its process failed."""
    if r.proc.returncode == 0:
        cnt = (read_manifest(r.out) or {}).get("counts", {})
        console.print(f"[bold]train[/] {r.name}: done in {time.time() - r.started:.0f}s, {cnt.get('steps')} steps, "
                      f"loss {cnt.get('first_loss')} -> {cnt.get('final_loss')}")
        return True
    tail = (r.out / "train.log").read_text()[-2000:]
    console.print(f"[red]train {r.name} failed[/] (exit {r.proc.returncode}); end of its log:\n{tail}")
    return False
