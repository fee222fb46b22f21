"""Curation helpers: oracle traces generated into a dir, the curate stage run with options, an op's row of
the manifest, and the chunking checks (a trace's chunks tile it; non-reasoning detection against the
oracle's sentence annotations)."""

from __future__ import annotations

from pathlib import Path

from thinkling.config import build_config
from thinkling.curate.chunking import Chunk, ChunkOptions, chunk_rationale, nonreasoning_counts, precision_recall
from thinkling.curate.stage import CurateConfig, curate
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.tasks import get_task


def gen(out: Path, n=6, levels=(1, 2, 3, 4), style="long", samples=1, console=None) -> Path:
    cfg = build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                        "teacher": {"style": style}, "samples": samples})
    generate(cfg, console=console)
    return out


def cur(traces: Path, out: Path, console, **kw) -> dict:
    return curate(build_config(CurateConfig, {"traces": str(traces), "out": str(out), **kw}), console=console)


def op_row(m: dict, name: str) -> dict:
    return next(o for o in m["counts"]["ops"] if o["op"] == name)


def words(s: str) -> int:
    return len(s.split())


APPLES_Q = "Tom has 3 apples. He buys 4 more apples. Then he gives 2 to Ann. How many apples does he have?"


def check_tiling(chunks: list[Chunk], reasoning: str) -> None:
    assert "".join(c.text for c in chunks) == reasoning
    assert chunks[0].start == 0 and chunks[-1].end == len(reasoning)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
    for c in chunks:
        assert reasoning[c.start:c.end] == c.text and c.text.strip()
        assert c.reasoning == (c.score > 0) and 0.0 <= c.score <= 1.0


def oracle_pr(family: str, embedder, opts: ChunkOptions, n_per_level: int) -> tuple[float, float, dict]:
    task = get_task(family)
    total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for p in task.problems("train", n=n_per_level, levels=[1, 2, 3, 4]):
        tr = task.oracle(p, "long", seed=0)
        chunks = chunk_rationale(p.question, tr.reasoning, tr.answer, embedder, opts)
        check_tiling(chunks, tr.reasoning)
        for k, v in nonreasoning_counts(chunks, tr.reasoning, tr.sentences).items():
            total[k] += v
    p, r, _ = precision_recall(total)
    return p, r, total
