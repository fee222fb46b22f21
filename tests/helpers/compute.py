"""A student dir whose train manifest records its training compute, as the train stage writes it, so eval,
claims and report tests can read ``compute`` without training; and result rows of a model per seed."""

from __future__ import annotations

import shutil
from pathlib import Path

from thinkling.artifacts import write_manifest
from thinkling.metrics import wilson_interval


def compute(tokens: int, flops_per_token: float = 6 * 1e5, steps: int = 10, seconds: float = 2.0,
            budget: dict | None = None, teacher_flops: float = 0.0) -> dict:
    """A manifest's ``compute``: flops = flops_per_token x tokens + teacher_flops."""
    return {"tokens": tokens, "flops": flops_per_token * tokens + teacher_flops, "steps": steps, "seconds": seconds,
            "flops_per_token": flops_per_token, "teacher_flops": teacher_flops,
            "budget": budget or {"kind": "tokens", "total": tokens}}


def student_dir(out: Path, model: Path | None = None, compute: dict | None = None, seed: int = 0) -> Path:
    """``out`` as a finished train dir: the weights of ``model`` (copied, when given) and a train manifest with
    ``compute`` (left out when None: a manifest written before compute was recorded)."""
    out.mkdir(parents=True, exist_ok=True)
    if model is not None:
        for f in Path(model).iterdir():
            if f.is_file():
                shutil.copy2(f, out / f.name)
    write_manifest(out, "train", {"method": "sft", "seed": seed, "out": str(out)}, {}, {"steps": 10},
                   extra={"compute": compute} if compute is not None else None)
    return out


def seed_row(model: str, seed, k: int, n: int, mean_tokens: float, level="all", task: str = "arithmetic",
             strategy: str = "greedy", train_compute: dict | None = None, **extra) -> dict:
    """One eval row of a model at one training seed (``seed`` None: a model evaluated once)."""
    lo, hi = wilson_interval(k, n)
    row = {"model": model, **({"seed": seed} if seed is not None else {}), "model_path": f"runs/x/{model}/seed-{seed}",
           "backend": "hf", "task": task, "split": "test", "level": level, "strategy": strategy, "n": n, "correct": k,
           "accuracy": k / n, "ci_low": lo, "ci_high": hi, "mean_tokens": mean_tokens, "median_tokens": mean_tokens,
           "p95_tokens": 2 * mean_tokens, "truncation_rate": 0.0, "no_answer_rate": 0.0, "seconds_per_problem": 0.01,
           "tokens_per_second": 100.0, **extra}
    if train_compute is not None:
        row["train_compute"] = train_compute
    row["protocol"] = {"strategy": strategy, "seed": 0, "max_new_tokens": 64}
    return row
