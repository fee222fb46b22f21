"""``dedup``: exact duplicates and, on request, near-duplicates of (question, reasoning, answer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from thinkling.config import StageConfig
from thinkling.curate.ops.base import OpContext, OpResult, register_op
from thinkling.curate.overlap import near_duplicates
from thinkling.records import Example


class DedupOptions(StageConfig):
    near: bool = Field(
        False, description="also drop near-duplicates (word n-gram Jaccard, see `method`). Off by default: "
        "two problems that differ in one number are near-duplicates by n-grams but teach different things; turn it "
        "on for scraped or multi-source data")
    n: int = Field(5, ge=1, description="word n-gram size for near-duplicate detection")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity at or above which two traces are near-duplicates")
    method: Literal["exact-ngrams", "minhash"] = Field(
        "exact-ngrams", description="exact-ngrams: exact Jaccard over pairs sharing a rare n-gram (no misses; "
        "faster on short texts); minhash: MinHash + LSH banding, candidates checked exactly (for long texts)")


@register_op("dedup", DedupOptions)
def dedup(examples: list[Example], ctx: OpContext) -> OpResult:
    """Drop exact duplicates of (question, reasoning, answer), then (``near``) near-duplicates, keeping the first.

    Near-duplicates are compared on question + reasoning + answer, so two different problems with the
    same reasoning template are not merged (their questions differ).
    """
    seen: set[tuple[str, str, str]] = set()
    kept, dups = [], []
    for ex in examples:
        k = (ex.question, ex.reasoning.strip(), ex.answer.strip())
        if k in seen:
            dups.append(ex)
        else:
            seen.add(k)
            kept.append(ex)
    dropped: dict[str, list[Example]] = {"duplicate": dups} if dups else {}
    if ctx.options.near and kept:
        of = near_duplicates([f"{e.question}\n{e.reasoning}\n{e.answer}" for e in kept],
                             n=ctx.options.n, threshold=ctx.options.threshold, method=ctx.options.method)
        near = [e for e, o in zip(kept, of) if o is not None]
        for e, o in zip(kept, of):
            if o is not None:
                e.meta["near_duplicate_of"] = kept[o].id
        kept = [e for e, o in zip(kept, of) if o is None]
        if near:
            dropped["near_duplicate"] = near
    return kept, dropped
