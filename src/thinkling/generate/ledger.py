"""``ledger.json``: what every run into a generate directory asked, retried, failed and cost."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from thinkling.artifacts import atomic_write_json
from thinkling.engines import CallStats, Reply



COUNTERS = ("requests", "ok", "failed", "rerequested_length", "attempts", "prompt_tokens", "completion_tokens",
            "usage_missing")


class Ledger:
    """``ledger.json``: one entry per run into the directory (a killed run's entry stays, marked
    ``interrupted``) and their totals. Saved atomically at the start and at every flush."""

    def __init__(self, path: Path, cfg, teacher: str):
        self.path = path
        self.prices = {"prompt_per_mtok": getattr(cfg.teacher, "price_prompt_per_mtok", 0.0),
                       "completion_per_mtok": getattr(cfg.teacher, "price_completion_per_mtok", 0.0)}
        runs: list[dict[str, Any]] = []
        if path.exists():
            try:
                runs = json.loads(path.read_text()).get("runs", [])
            except (json.JSONDecodeError, AttributeError):
                path.rename(path.with_suffix(f".unreadable-{int(time.time())}.json"))  # kept, never silently lost
        for r in runs:
            if r.get("status") == "running":
                r["status"] = "interrupted"
        self.t0 = time.time()
        self.entry: dict[str, Any] = {
            "run": len(runs) + 1, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": "running",
            "teacher": teacher, "endpoint": getattr(cfg.teacher, "base_url", None), "max_tokens": cfg.sampling.max_tokens,
            **dict.fromkeys(COUNTERS, 0), "retries": {}, "failures_by_cause": {}, "cost": 0.0, "seconds": 0.0,
        }
        self.runs = runs + [self.entry]

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prices["prompt_per_mtok"]
                + completion_tokens * self.prices["completion_per_mtok"]) / 1e6

    def add(self, rep: Reply | Exception) -> None:
        e = self.entry
        e["requests"] += 1
        if isinstance(rep, Exception):
            e["failed"] += 1
            cause = getattr(rep, "cause", "error")
            e["failures_by_cause"][cause] = e["failures_by_cause"].get(cause, 0) + 1
            return
        e["ok"] += 1
        e["prompt_tokens"] += rep.prompt_tokens
        e["completion_tokens"] += rep.completion_tokens
        e["usage_missing"] += bool(rep.meta.get("usage_missing"))
        e["cost"] += self.cost(rep.prompt_tokens, rep.completion_tokens)

    def save(self, stats: CallStats, status: str = "running") -> None:
        e = self.entry
        attempts, retries = stats.snapshot()
        e["attempts"] = attempts or e["requests"]  # programmatic backends make one attempt per request
        e["retries"] = retries
        e["status"] = status
        e["seconds"] = round(time.time() - self.t0, 2)
        e["cost"] = round(e["cost"], 6)
        totals: dict[str, Any] = {**dict.fromkeys(COUNTERS, 0), "retries": {}, "failures_by_cause": {},
                                  "cost": 0.0, "seconds": 0.0, "runs": len(self.runs)}
        for r in self.runs:
            for k in (*COUNTERS, "cost", "seconds"):
                totals[k] += r.get(k, 0)
            for k in ("retries", "failures_by_cause"):
                for c, n in (r.get(k) or {}).items():
                    totals[k][c] = totals[k].get(c, 0) + n
        totals["cost"] = round(totals["cost"], 6)
        totals["seconds"] = round(totals["seconds"], 2)
        atomic_write_json(self.path, {"prices": self.prices, "totals": totals, "runs": self.runs})
