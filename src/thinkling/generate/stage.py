"""The generate stage: problems of a task -> teacher traces, append-only and keyed.

Every teacher call is keyed by a hash of (teacher, rendered prompt, sampling params but the token
cap, sample index). Finished keys are skipped on a re-run, so a run killed at any point (even
``kill -9``) is completed by running it again: nothing lost, nothing duplicated. Failures go to
``failed.jsonl`` with the error and are retried by the next run.

``max_tokens`` is not part of the key: each trace stores the cap it was produced with
(``meta.max_tokens``). A re-run with a larger cap re-requests only the traces that stopped at a
smaller one (``finish_reason == "length"``) and appends their new version under the same key;
readers take the last record of each key (:func:`latest_traces`).

``ledger.json`` accounts for every run into the directory (requests, retries by cause, failures,
tokens, cost) and their totals; it is rewritten at every flush, so a killed run keeps its entry.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from thinkling.artifacts import (
    AppendLog, atomic_write_json, invalidate, is_complete, iter_jsonl, read_manifest, stable_hash,
    write_jsonl, write_manifest,
)
from thinkling.config import ConfigError, StageConfig
from thinkling.engines import Reply, Request, SamplingParams, TeacherSpec, build_engine, engine_options
from thinkling.engines.oracle import OracleOptions
from thinkling.generate.ledger import Ledger
from thinkling.records import Failure, Trace, Usage
from thinkling.tasks.spec import TaskSpec

TRACES = "traces.jsonl"
FAILED = "failed.jsonl"
PROBLEMS = "problems.jsonl"
LEDGER = "ledger.json"


class GenerateConfig(StageConfig):
    out: str = Field(description="output dir for traces")
    task: TaskSpec = Field(default_factory=TaskSpec)
    teacher: TeacherSpec = Field(default_factory=OracleOptions, description="the teacher: an engine backend "
                                 "and its options")
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    samples: int = Field(1, ge=1, description="samples per problem")
    chunk_size: int = Field(256, ge=1, description="replies per flush to traces.jsonl (and per call of a batch "
                            "backend); the openai backend keeps teacher.concurrency requests in flight across "
                            "flushes and flushes at least every 2 s")


def sampling_identity(sampling: SamplingParams) -> dict[str, Any]:
    """The sampling params that decide what a teacher writes; the token cap is stored per trace instead."""
    d = sampling.model_dump(mode="json")
    d.pop("max_tokens", None)
    return d


def request_key(teacher: str, messages: list[dict], sampling: SamplingParams, index: int) -> str:
    """Key of one teacher call: (teacher, rendered prompt, sampling params but max_tokens, sample index)."""
    return stable_hash({"teacher": teacher, "prompt": messages, "sampling": sampling_identity(sampling),
                        "index": index})


def legacy_request_key(teacher: str, messages: list[dict], sampling: SamplingParams, index: int) -> str:
    """The key of traces written before ``max_tokens`` left the key (records without ``meta.max_tokens``)."""
    return stable_hash({"teacher": teacher, "prompt": messages, "sampling": sampling.model_dump(), "index": index})


def _scan(path: Path) -> tuple[dict[str, tuple[str, int | None]], int]:
    """key -> (finish_reason, max_tokens) of the latest record per key, and the number of lines."""
    state: dict[str, tuple[str, int | None]] = {}
    lines = 0
    if not path.exists():
        return state, 0
    for r in iter_jsonl(path):
        lines += 1
        state[r["key"]] = (r.get("finish_reason", "stop"), (r.get("meta") or {}).get("max_tokens"))
    return state, lines


def _check_same_teacher(out: Path, cfg: GenerateConfig) -> bool:
    """Refuse to mix traces of different teachers or sampling params in one directory.

    The teacher's endpoint, limits, retries and prices and ``sampling.max_tokens`` may change between
    runs. Returns True for a directory written with the legacy keys (``max_tokens`` in the key), which
    is continued with those keys and the same ``max_tokens``.
    """
    prev = out / "config.json"
    if not prev.exists():
        return False
    old = json.loads(prev.read_text())
    try:
        old_sampling = SamplingParams.model_validate(old.get("sampling") or {})
        old_id = {"teacher": engine_options(old.get("teacher") or {}).identity(),
                  "sampling": sampling_identity(old_sampling)}
    except (ValidationError, ConfigError) as e:
        first = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e).splitlines()[-1].strip()
        raise ValueError(f"{prev}: the config of the traces already in {out} cannot be read by this thinkling "
                         f"({first}); write to a new --out directory") from None
    new_id = {"teacher": cfg.teacher.identity(), "sampling": sampling_identity(cfg.sampling)}
    for key in ("teacher", "sampling"):
        a, b = old_id[key], new_id[key]
        if a != b:
            diff = ", ".join(f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                             if a.get(k) != b.get(k))
            raise ValueError(
                f"{out} holds traces generated with a different '{key}' ({diff}); write to a new --out directory "
                "(raw traces are never rewritten; only sampling.max_tokens and how the teacher is reached - "
                "endpoint, limits, retries, prices - may change between runs into one directory)"
            )
    traces = out / TRACES
    if not (traces.exists() and traces.stat().st_size):
        return False
    with open(traces, encoding="utf-8", errors="replace") as f:  # a bad line is reported by the reader
        first = f.readline()
    try:
        legacy = "max_tokens" not in (json.loads(first).get("meta") or {})
    except (json.JSONDecodeError, AttributeError):
        return False  # AppendLog / iter_jsonl report a broken file, naming its line
    if legacy and old_sampling.max_tokens != cfg.sampling.max_tokens:
        raise ValueError(
            f"{traces} was written by an older thinkling whose keys include sampling.max_tokens: keep "
            f"sampling.max_tokens={old_sampling.max_tokens} to continue it, or write to a new --out directory "
            "(where raising max_tokens later re-requests only the truncated traces)")
    return legacy


# ----------------------------------------------------------------------------- the stage


def generate(cfg: GenerateConfig, force: bool = False, console=None) -> dict:
    """Run the generate stage; returns the manifest. A finished directory is skipped, failed requests
    of an earlier run are retried, and only what is missing is asked (see the module docstring)."""
    console = console or Console(stderr=True)
    out = Path(cfg.out)
    if not force and is_complete(out, "generate", cfg, {}):
        m = read_manifest(out)
        if not m["counts"].get("failed"):  # type: ignore[index]
            console.print(f"[green]generate[/]: {out} is complete for this config; skipping")
            return m  # type: ignore[return-value]
        console.print(f"[yellow]generate[/]: {out} has {m['counts']['failed']} failed requests; retrying them")  # type: ignore[index]
    started = time.time()
    legacy = _check_same_teacher(out, cfg)
    task = cfg.task.build()
    problems = cfg.task.problems()
    engine = build_engine(cfg.teacher, task)  # before touching the dir: a bad teacher config changes nothing
    invalidate(out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / PROBLEMS, problems)
    atomic_write_json(out / "config.json", cfg.model_dump(mode="json"))
    log = AppendLog(out / TRACES)
    if log.repaired_bytes:
        console.print(f"[yellow]generate[/]: cut a partial last line ({log.repaired_bytes} bytes) left by a crash")
    plan = _plan(cfg, task, problems, legacy_request_key if legacy else request_key, _scan(out / TRACES)[0])
    console.print(f"[bold]generate[/] {plan.teacher} on {cfg.task.name}/{cfg.task.split}: {plan.total} requests, "
                  f"{plan.total - len(plan.todo)} already done, {len(plan.todo)} to do"
                  + (f" ({plan.rerequest} truncated under a smaller max_tokens, re-requested with "
                     f"{cfg.sampling.max_tokens})" if plan.rerequest else ""))
    ledger = Ledger(out / LEDGER, cfg, plan.teacher)
    ledger.entry["rerequested_length"] = plan.rerequest
    ledger.save(engine.stats)  # a run killed at any point leaves its entry
    try:
        n_ok, failures = _ask(engine, plan, cfg, ledger, log, console)
    except BaseException:
        ledger.save(engine.stats, status="interrupted")
        raise
    finally:
        log.close()
        engine.close()
    write_jsonl(out / FAILED, failures)  # what still fails after this run (a re-run retries it)
    if failures and not n_ok:
        ledger.save(engine.stats, status="failed")
        causes = ", ".join(f"{c}: {n}" for c, n in sorted(ledger.entry["failures_by_cause"].items()))
        raise RuntimeError(
            f"generate: all {len(failures)} requests of this run failed ({causes}); first error: {failures[0].error}\n"
            f"They are listed in {out / FAILED}; nothing already generated is lost - run the same command again "
            "to retry them.")
    ledger.save(engine.stats, status="finished")
    counts = _summary(out, plan, problems, n_ok, failures, ledger.entry, console)
    # the data files only: the ledger and config.json change with every run (timings, the endpoint), and a
    # downstream stage must not re-run because of them
    return write_manifest(out, "generate", cfg, {}, counts, outputs=[PROBLEMS, TRACES, FAILED], started=started)


@dataclass
class _Plan:
    teacher: str
    todo: list[Request]
    wanted: set[str]
    duplicates: int
    rerequest: int

    @property
    def total(self) -> int:
        return len(self.wanted)


def _plan(cfg: GenerateConfig, task, problems, key_of, done: dict[str, tuple[str, int | None]]) -> _Plan:
    """The requests still to make: keys not in the traces yet, and traces truncated under a smaller cap."""
    teacher, cap = cfg.teacher.engine_id(), cfg.sampling.max_tokens
    plan = _Plan(teacher, [], set(), 0, 0)
    for p in problems:
        msgs = task.messages(p)
        for i in range(cfg.samples):
            key = key_of(teacher, msgs, cfg.sampling, i)
            if key in plan.wanted:  # the same prompt twice in the problem set: one request, one trace
                plan.duplicates += 1
                continue
            plan.wanted.add(key)
            req = Request(msgs, sampling=cfg.sampling, seed=i, problem=p, task=task, key=key)
            if key not in done:
                plan.todo.append(req)
                continue
            finish, old_cap = done[key]
            if finish == "length" and old_cap is not None and old_cap < cap:  # truncated under a smaller cap
                plan.todo.append(req)
                plan.rerequest += 1
    return plan


def _ask(engine, plan: _Plan, cfg: GenerateConfig, ledger: Ledger, log: AppendLog,
         console) -> tuple[int, list[Failure]]:
    """Stream the requests through the engine; traces appended batch by batch, failures collected."""
    failures: list[Failure] = []
    n_ok = 0
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        job = bar.add_task("gen", total=plan.total, completed=plan.total - len(plan.todo), info="")
        engine.progress = _live_progress(bar, job, ledger)
        for batch in engine.stream(plan.todo, cfg.chunk_size):
            good = []
            for req, rep in batch:
                ledger.add(rep)
                if isinstance(rep, Exception):
                    failures.append(Failure(key=req.key, problem_id=req.problem.id, sample_index=req.seed,
                                            error=f"{type(rep).__name__}: {rep}", attempts=getattr(rep, "attempts", 1)))
                else:
                    good.append(_trace(req, rep, plan.teacher, cfg.sampling.max_tokens))
            ledger.save(engine.stats)  # before the traces: a kill in between over-counts, never hides, a cost
            log.append(good)
            n_ok += len(good)
    return n_ok, failures


def _live_progress(bar, job, ledger: Ledger):
    """A per-reply callback showing requests/s, tokens/s, tokens and cost on the progress bar."""
    t0 = time.time()
    live = {"n": 0, "tokens": 0, "cost": 0.0}

    def on_reply(_req: Request, rep: Reply | Exception) -> None:  # per reply, as soon as the engine has it
        live["n"] += 1
        if not isinstance(rep, Exception):
            live["tokens"] += rep.prompt_tokens + rep.completion_tokens
            live["cost"] += ledger.cost(rep.prompt_tokens, rep.completion_tokens)
        dt = max(time.time() - t0, 1e-9)
        bar.update(job, advance=1, info=f"{live['n'] / dt:,.1f} req/s  {live['tokens'] / dt:,.0f} tok/s  "
                                        f"{live['tokens']:,} tok  ${live['cost']:.4f}")

    return on_reply


def _trace(req: Request, rep: Reply, teacher: str, cap: int) -> Trace:
    p = req.problem
    return Trace(key=req.key, problem_id=p.id, task=p.task, level=p.level, teacher=teacher, sample_index=req.seed,
                 question=p.question, prompt=req.messages, reasoning=rep.reasoning, answer=rep.answer,
                 finish_reason=rep.finish_reason,
                 usage=Usage(prompt_tokens=rep.prompt_tokens, completion_tokens=rep.completion_tokens),
                 meta={**rep.meta, "max_tokens": cap})


def _summary(out: Path, plan: _Plan, problems, n_ok: int, failures: list[Failure], e: dict, console) -> dict:
    """Print what the run did; the manifest's counts."""
    latest, lines = _scan(out / TRACES)
    if failures:
        causes = ", ".join(f"{c}: {n}" for c, n in sorted(e["failures_by_cause"].items()))
        console.print(f"[yellow]generate[/]: {len(failures)} requests failed ({causes}); listed in "
                      f"{escape(str(out / FAILED))}; run again to retry them. First: {escape(failures[0].error)}")
    retries = sum(e["retries"].values())
    console.print(f"[bold]generate[/]: {n_ok} new traces, {len(failures)} failed, {retries} retries "
                  f"({', '.join(f'{c}: {n}' for c, n in e['retries'].items() if n) or 'none'}), "
                  f"{e['prompt_tokens']:,} prompt + {e['completion_tokens']:,} completion tokens, ${e['cost']:.4f}")
    return {"problems": len(problems), "requested": plan.total, "duplicate_prompts": plan.duplicates,
            "traces": sum(1 for k in latest if k in plan.wanted), "new_this_run": n_ok,
            "rerequested_length": plan.rerequest, "superseded_records": lines - len(latest),
            "failed": len(failures), "retries_this_run": retries,
            "prompt_tokens_this_run": e["prompt_tokens"], "completion_tokens_this_run": e["completion_tokens"],
            "cost_this_run": e["cost"]}
