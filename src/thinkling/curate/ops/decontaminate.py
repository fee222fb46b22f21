"""``decontaminate``: drop training questions that overlap an evaluation set (see :mod:`thinkling.curate.overlap`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from thinkling.artifacts import DataError
from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, register_op
from thinkling.curate.evalsets import EVAL_SETS
from thinkling.curate.overlap import ContaminationIndex
from thinkling.records import Example


class DecontaminateOptions(StageConfig):
    sets: list[str] | None = Field(
        None, description="evaluation sets to check against (None = every test split found in data_dir)")
    data_dir: str | None = Field(None, description="benchmark data root, holding gsm8k/, math500/, ... (default: each "
                                 "task's own data dir: $THINKLING_<TASK>_DIR, else $THINKLING_DATA_DIR/<folder>, "
                                 "else ../shared/data/<folder>)")
    n: int = Field(6, ge=3, description="anchor word n-gram size: an eval item is a candidate when it shares one")
    min_overlap: float = Field(
        0.75, gt=0, le=1, description="share of the eval item's words that must line up, in order, with the "
        "training question (runs of >= 2 words; a same-length gap of <= 2 words - a changed name or number - "
        "counts); templated logic sets need 90% covered by shared 13-grams")


@register_op("decontaminate", DecontaminateOptions)
def decontaminate(examples: list[Example], ctx: OpContext) -> OpResult:
    """Drop examples whose question overlaps an evaluation set (word n-grams); report the ids removed."""
    opts = ctx.options
    data_dir = Path(opts.data_dir) if opts.data_dir else None  # None: each eval task's own data dir
    names = opts.sets if opts.sets is not None else sorted(EVAL_SETS)
    unknown = [s for s in names if s not in EVAL_SETS]
    if unknown:
        raise ValueError(f"decontaminate.sets: unknown evaluation set(s) {unknown}; known: {', '.join(sorted(EVAL_SETS))}")
    sets = []
    for name in names:
        try:
            sets.append(EVAL_SETS[name](data_dir))
        except DataError as e:
            if opts.sets is not None:  # asked for by name: a missing file is an error
                raise
            if ctx.console is not None:
                ctx.console.print(f"[yellow]decontaminate[/]: skipping {name}: {e}")
    index = ContaminationIndex(sets, n=opts.n, min_overlap=opts.min_overlap)
    kept, bad = [], []
    removed: list[dict[str, Any]] = []
    for ex in examples:
        hits = index.match(ex.question)
        if hits:
            ex.meta["contaminated_by"] = [{"set": s, "id": i, "overlap": round(o, 3)} for s, i, o in hits]
            bad.append(ex)
            removed.append({"id": ex.id, "problem_id": ex.problem_id, "matches": ex.meta["contaminated_by"]})
        else:
            kept.append(ex)
    ctx.report["checked_against"] = {s.name: len(s.items) for s in sets}
    ctx.report["removed"] = removed
    return kept, {"contaminated": bad} if bad else {}
