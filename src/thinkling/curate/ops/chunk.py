"""``chunk``: coherent chunks of each rationale, labelled reasoning / non-reasoning (for CWT and STT)."""

from __future__ import annotations

from thinkling.curate.chunking import (
    ChunkOptions, chunk_rationale, get_embedder, nonreasoning_counts, precision_recall,
)
from thinkling.curate.ops.base import OpContext, OpResult, register_op, words
from thinkling.records import Example


@register_op("chunk", ChunkOptions)
def chunk(examples: list[Example], ctx: OpContext) -> OpResult:
    """Divide each rationale into coherent chunks labelled reasoning / non-reasoning (for CWT and STT).

    Chunks go to ``meta.chunks`` (text, start, end, reasoning, score) and tile the reasoning exactly.
    When the trace carries the oracle's sentence annotations, the precision and recall of
    non-reasoning detection against them are reported. Drops nothing.
    """
    embedder = get_embedder(ctx.options, console=ctx.console)
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    n_chunks = n_non = words_non = words_all = 0
    annotated = 0
    out: list[Example] = []
    for ex in examples:
        chunks = chunk_rationale(ex.question, ex.reasoning, ex.answer, embedder, ctx.options)
        meta = {**ex.meta, "chunks": [{"text": c.text, "start": c.start, "end": c.end, "reasoning": c.reasoning,
                                       "score": round(c.score, 3)} for c in chunks]}
        n_chunks += len(chunks)
        n_non += sum(not c.reasoning for c in chunks)
        words_all += words(ex.reasoning)
        words_non += sum(words(c.text) for c in chunks if not c.reasoning)
        if ex.meta.get("sentences"):
            annotated += 1
            for k, v in nonreasoning_counts(chunks, ex.reasoning, [tuple(s) for s in ex.meta["sentences"]]).items():
                totals[k] += v
        out.append(ex.model_copy(update={"meta": meta}))
    ctx.report.update({"embedder": getattr(embedder, "name", ctx.options.embedder),
                       "chunks_per_trace": round(n_chunks / max(len(examples), 1), 2),
                       "non_reasoning_chunks": n_non,
                       "non_reasoning_word_share": round(words_non / max(words_all, 1), 3)})
    if annotated:
        p, r, f1 = precision_recall(totals)
        ctx.report["vs_oracle_annotations"] = {"traces": annotated, **totals, "precision": round(p, 4),
                                               "recall": round(r, 4), "f1": round(f1, 4)}
    return out, {}
