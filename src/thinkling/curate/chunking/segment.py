"""The segmentation itself (a DP over sentence similarities under a length prior) and its measurement
against annotated traces."""

from __future__ import annotations

import numpy as np

from thinkling.curate.chunking.embedders import Embedder
from thinkling.curate.chunking.labels import label_sentences, split_sentences
from thinkling.curate.chunking.options import Chunk, ChunkOptions


# ---------------------------------------------------------------------------------- segmentation


def segment(sim: np.ndarray, labels: list[bool], opts: ChunkOptions) -> list[tuple[int, int]]:
    """The partition of ``n`` sentences into ``[i, j)`` chunks maximising coherence + length prior
    - label mixing (module doc), with at most ``opts.max_sentences`` sentences per chunk."""
    n = len(labels)
    if sim.shape != (n, n):
        raise ValueError(f"segment: similarity matrix has shape {sim.shape}, expected ({n}, {n})")
    if n == 0:
        return []
    s = np.clip(np.asarray(sim, dtype=np.float64), -1.0, 1.0)
    mu = min(max(float(np.median(np.diagonal(s, 1))), 0.0), 1.0) if n > 1 else 0.0
    cum = np.zeros((n + 1, n + 1))
    cum[1:, 1:] = s.cumsum(0).cumsum(1)
    diag = np.concatenate([[0.0], np.cumsum(np.diagonal(s))])
    nreason = np.concatenate([[0], np.cumsum(np.asarray(labels, dtype=np.int64))])
    t, cap = opts.target_sentences, opts.max_sentences

    def score(i: int, j: int) -> float:
        size = j - i
        block = cum[j, j] - cum[i, j] - cum[j, i] + cum[i, i] - (diag[j] - diag[i])
        coherence = block / (size - 1) - size * mu if size > 1 else 0.0
        r = int(nreason[j] - nreason[i])
        return (coherence - opts.length_weight * (size - t) ** 2 / t - opts.mix_penalty * min(r, size - r))

    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        for i in range(max(0, j - cap), j):
            v = best[i] + score(i, j)
            if v > best[j]:
                best[j], back[j] = v, i
    cuts: list[tuple[int, int]] = []
    j = n
    while j > 0:
        cuts.append((int(back[j]), j))
        j = int(back[j])
    return cuts[::-1]


def chunk_rationale(question: str, reasoning: str, answer: str, embedder: Embedder,
                    opts: ChunkOptions) -> list[Chunk]:
    """Chunks tiling ``reasoning`` exactly (``"".join(c.text for c in chunks) == reasoning``);
    ``[]`` for a rationale without any sentence."""
    spans = split_sentences(reasoning)
    if not spans:
        return []
    sents = [reasoning[a:b] for a, b in spans]
    labels = label_sentences(question, sents, answer)
    emb = embedder.embed(sents)
    segs = segment(emb @ emb.T, labels, opts)
    chunks: list[Chunk] = []
    for k, (i, j) in enumerate(segs):
        start = 0 if k == 0 else spans[i][0]
        end = spans[segs[k + 1][0]][0] if k + 1 < len(segs) else len(reasoning)
        share = sum(labels[i:j]) / (j - i)
        chunks.append(Chunk(reasoning[start:end], start, end, share > 0, share))
    return chunks


# ----------------------------------------------------------------------------------- measurement


def nonreasoning_counts(chunks: list[Chunk], reasoning: str,
                        oracle_sentences: list[tuple[str, str, bool]]) -> dict[str, int]:
    """tp/fp/fn/tn of non-reasoning detection per oracle sentence (positive = non-reasoning).

    Oracle sentences are the lines of ``reasoning`` (the oracle joins them with newlines); one is
    predicted non-reasoning when most of its characters fall in non-reasoning chunks.
    """
    nonr = np.zeros(len(reasoning), dtype=bool)
    for c in chunks:
        if not c.reasoning:
            nonr[c.start:c.end] = True
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    pos = 0
    for text, _kind, is_reasoning in oracle_sentences:
        at = reasoning.find(text, pos)
        if at < 0:
            raise ValueError(f"oracle sentence not found in the reasoning after offset {pos}: {text!r}")
        pos = at + len(text)
        pred_nonr = bool(text) and 2 * int(nonr[at:pos].sum()) > len(text)
        key = ("tp" if not is_reasoning else "fp") if pred_nonr else ("fn" if not is_reasoning else "tn")
        counts[key] += 1
    return counts


def precision_recall(counts: dict[str, int]) -> tuple[float, float, float]:
    """(precision, recall, F1) of non-reasoning detection from :func:`nonreasoning_counts` totals."""
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)
