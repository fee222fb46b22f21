"""Generate configs (the oracle teacher, or the ``openai`` teacher at a URL) and what a generate dir holds:
its trace lines (each checked complete) and its ledger."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.engines import teacher
from thinkling.config import build_config
from thinkling.generate.stage import GenerateConfig


def gen_cfg(out: Path, n: int = 10, levels=(1, 2), style: str = "concise", **kw) -> GenerateConfig:
    return build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                         "teacher": {"style": style}, **kw})


def ocfg(out: Path, base_url: str, n: int = 6, levels=(1, 2), max_tokens: int = 8, chunk_size: int = 16,
         **teacher_kw) -> GenerateConfig:
    return build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                         "teacher": teacher(base_url, **teacher_kw),
                                         "sampling": {"max_tokens": max_tokens}, "chunk_size": chunk_size})


def lines(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            assert line.endswith("\n"), f"{path}:{i} is partial"
            out.append(json.loads(line))
    return out


def ledger(out: Path) -> dict:
    return json.loads((out / "ledger.json").read_text())
