"""The eval stage: students x a task -> results.json (accuracy *and* cost per level) + samples.jsonl."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from thinkling.artifacts import (
    atomic_write_json, invalidate, is_complete, read_manifest, write_jsonl, write_manifest,
)
from thinkling.config import StageConfig
from thinkling.tasks.spec import TaskSpec
from thinkling.tasks.base import LONG_MARK, SHORT_MARK


class ModelRef(StageConfig):
    name: str = Field(description="label used in results and plots")
    path: str = Field(description="HF hub id or local checkpoint dir")
    reply_prefix: str = Field("", description="text the reply is started with (e.g. '<long>' forces an adaptive "
                              "student's mode); it is part of the prompt, not of the generated tokens")


class EvalConfig(StageConfig):
    out: str = Field(description="output dir for results.json and samples.jsonl")
    models: list[ModelRef] = Field(description="students (or any HF causal LMs) to evaluate; 'name=path' strings accepted")
    task: TaskSpec = Field(default_factory=lambda: TaskSpec(split="test", n=100))
    strategy: Literal["greedy"] = Field("greedy", description="decoding strategy: greedy")
    max_new_tokens: int = Field(512, ge=1, description="generation cap; a completion that hits it is truncated")
    batch_size: int = Field(64, ge=1, description="prompts per generate call")
    dtype: Literal["float32", "bfloat16"] = "float32"
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


def evaluate(cfg: EvalConfig, force: bool = False, console=None) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    inputs = {m.name: m.path for m in cfg.models if Path(m.path).exists()}
    if not force and is_complete(out, "eval", cfg, inputs):
        console.print(f"[green]eval[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]
    started = time.time()
    invalidate(out)
    from thinkling.models.loading import load_model, load_tokenizer, set_threads

    set_threads(cfg.threads)
    from thinkling.evaluate.generation import generate_batched
    from thinkling.evaluate.metrics import summarize

    task = cfg.task.build()
    problems = cfg.task.problems()
    rows: list[dict] = []
    samples: list[dict] = []
    protocol = {"strategy": cfg.strategy, "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size,
                "template": "model chat template, user turn = task prompt", "seed": cfg.seed,
                "task": cfg.task.model_dump(mode="json")}
    for ref in cfg.models:
        tok = load_tokenizer(ref.path)
        model = load_model(ref.path, cfg.dtype)
        convs = [task.messages(p) for p in problems]
        with Progress(TextColumn(f"eval {ref.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            job = bar.add_task("eval", total=len(convs))
            t0 = time.perf_counter()
            comps = generate_batched(model, tok, convs, max_new_tokens=cfg.max_new_tokens,
                                     batch_size=cfg.batch_size, seed=cfg.seed, reply_prefix=ref.reply_prefix,
                                     progress=lambda k: bar.advance(job, k))
            wall = time.perf_counter() - t0
        per_level: dict[int, list[tuple[bool, int, bool, float]]] = {}
        for p, c in zip(problems, comps):
            pred, ok = task.score(c.text, p.answer)
            mode = "short" if c.text.startswith(SHORT_MARK) else "long" if c.text.startswith(LONG_MARK) else ""
            per_level.setdefault(p.level, []).append((ok, c.n_tokens, c.truncated, c.seconds, mode))
            samples.append({"model": ref.name, "problem_id": p.id, "level": p.level, "question": p.question,
                            "gold": p.answer, "completion": c.text, "predicted": pred, "correct": ok,
                            "tokens": c.n_tokens, "truncated": c.truncated})
        groups = [(lv, per_level[lv]) for lv in sorted(per_level)] + [("all", [x for v in per_level.values() for x in v])]
        for lv, xs in groups:
            secs = sum(x[3] for x in xs) if lv != "all" else wall
            row = {"model": ref.name, "model_path": ref.path, "task": cfg.task.name, "split": cfg.task.split,
                   "level": lv, **summarize([x[0] for x in xs], [x[1] for x in xs], [x[2] for x in xs], secs),
                   "protocol": {**protocol, "reply_prefix": ref.reply_prefix}}
            modes = [x[4] for x in xs if x[4]]
            if modes:  # an adaptive student: which mode it chose (or was given)
                row["short_mode_share"] = round(sum(m == "short" for m in modes) / len(xs), 4)
            rows.append(row)
        acc = [r for r in rows if r["model"] == ref.name and r["level"] == "all"][0]
        console.print(f"[bold]eval[/] {ref.name}: accuracy {acc['accuracy']:.1%} "
                      f"[{acc['ci_low']:.1%}, {acc['ci_high']:.1%}], mean tokens {acc['mean_tokens']:.1f}, "
                      f"{acc['tokens_per_second']:.0f} tok/s")
        del model
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", rows)
    write_jsonl(out / "samples.jsonl", samples)
    return write_manifest(out, "eval", cfg, inputs, {"problems": len(problems), "models": len(cfg.models),
                                                     "rows": len(rows)}, started=started)
