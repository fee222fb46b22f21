"""The segmentation (a DP over sentence similarities under a length prior), chunk offsets that tile the
reasoning, and non-reasoning detection measured against the oracle teacher."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.curate import APPLES_Q, check_tiling, oracle_pr
from thinkling.curate.chunking import (
    Chunk, ChunkOptions, LexicalEmbedder, chunk_rationale, get_embedder, nonreasoning_counts, precision_recall, segment,
)
from thinkling.tasks import get_task


def test_segment_keeps_labels_pure_against_similarity_and_length_prior():
    # a transition (False) that the embedder finds identical to the step after it
    sim = np.eye(5)
    sim[0, 1] = sim[1, 0] = 1.0
    labels = [False, True, True, True, True]
    opts = ChunkOptions(embedder="lexical", target_sentences=1, max_sentences=5, length_weight=0.1)
    assert segment(sim, labels, opts) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    weak = opts.model_copy(update={"mix_penalty": 1.0})  # below the coherence gain of 2: they merge
    assert segment(sim, labels, weak) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    # every sentence alike and a prior asking for chunks of 4: purity still wins by default
    same = np.ones((4, 4))
    labels = [False, True, True, False]
    opts = ChunkOptions(embedder="lexical", target_sentences=4, max_sentences=4)
    assert segment(same, labels, opts) == [(0, 1), (1, 3), (3, 4)]
    assert segment(same, labels, opts.model_copy(update={"mix_penalty": 0.0})) == [(0, 4)]


def test_segment_respects_max_sentences_and_cuts_where_similarity_drops():
    n = 10
    sim = np.ones((n, n))
    spans = segment(sim, [True] * n, ChunkOptions(embedder="lexical", target_sentences=3, max_sentences=3))
    assert all(j - i <= 3 for i, j in spans)
    assert spans[0][0] == 0 and spans[-1][1] == n and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # two topics of four sentences each: the cut falls between them
    block = np.full((8, 8), 0.1)
    block[:4, :4] = block[4:, 4:] = 0.9
    opts = ChunkOptions(embedder="lexical", target_sentences=4, max_sentences=6)
    assert segment(block, [False] * 8, opts) == [(0, 4), (4, 8)]
    assert segment(np.zeros((0, 0)), [], opts) == []
    with pytest.raises(ValueError, match="shape"):
        segment(np.ones((2, 2)), [True], opts)


# ----------------------------------------------------------------------------- chunks


def test_chunks_tile_the_reasoning_exactly():
    lex = LexicalEmbedder()
    opts = ChunkOptions(embedder="lexical")
    reasoning = ("\n  Okay, so Tom starts with 3 apples and buys 4 more.  Hmm, let me think.\n\n"
                 "First, 3 + 4 = 7 apples.\nThen 7 - 2 = 5.   \nSo the answer is 5.\n")
    chunks = chunk_rationale(APPLES_Q, reasoning, "5", lex, opts)
    check_tiling(chunks, reasoning)
    assert [c.reasoning for c in chunks] == [False, True, False]
    assert chunks[1].text == "First, 3 + 4 = 7 apples.\nThen 7 - 2 = 5.   \n"
    assert chunk_rationale(APPLES_Q, "", "5", lex, opts) == []
    task = get_task("rules")
    for p in task.problems("train", n=3, levels=[1, 4]):
        tr = task.oracle(p, "long")
        check_tiling(chunk_rationale(p.question, tr.reasoning, tr.answer, lex, opts), tr.reasoning)


def test_nonreasoning_counts_by_character_majority():
    reasoning = "Let me see.\nb=a+1=3.\nGood, b=3."
    oracle = [("Let me see.", "transition", False), ("b=a+1=3.", "step", True), ("Good, b=3.", "check", False)]
    # a non-reasoning chunk over the first two lines, a reasoning chunk over the third
    chunks = [Chunk(reasoning[:21], 0, 21, False, 0.5), Chunk(reasoning[21:], 21, len(reasoning), True, 1.0)]
    assert nonreasoning_counts(chunks, reasoning, oracle) == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}
    assert precision_recall({"tp": 1, "fp": 1, "fn": 1, "tn": 0}) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="not found"):
        nonreasoning_counts(chunks, reasoning, [("missing line", "step", True)])


@pytest.mark.parametrize("family", ["arithmetic", "rules"])
def test_oracle_nonreasoning_detection_lexical(family):
    opts = ChunkOptions(embedder="lexical")
    p, r, total = oracle_pr(family, get_embedder(opts), opts, n_per_level=10)
    assert sum(total.values()) > 200
    assert p >= 0.9 and r >= 0.9, (family, total)
