"""Exact and near-duplicate detection among training texts, and decontamination against eval sets.

Text is compared as normalized word tokens (:func:`normalize`) and hashed n-grams of them
(:func:`ngrams`). Hashes are stable across processes (token hash: blake2b; n-gram hash: CPython's
tuple hash of the token hashes), so results do not depend on ``PYTHONHASHSEED``.

Near duplicates (:func:`near_duplicates`)
    Two texts are near duplicates when the Jaccard similarity of their n-gram sets is at least
    ``threshold``; texts that are identical after normalization always are. A text shorter than n
    tokens has one gram, its whole token sequence. ``method="minhash"`` finds candidate pairs with
    MinHash signatures and LSH banding, then checks each candidate's exact Jaccard, so it reports no
    false positives but can miss a pair (rarely: the banding is chosen for recall at the threshold).
    ``method="exact-ngrams"`` finds every pair with the prefix-filtering join (rarest grams first,
    as in AllPairs/PPJoin) and is the reference. Each text gets the earliest index it duplicates.

Contamination (:class:`ContaminationIndex`): an evaluation item is *matched* by a training text when

1. they share an *anchor*, one of the item's n-grams (n = 6 tokens); a gram found in more than
   max(20, 5%) of a set's items is boilerplate and no anchor, and
2. the *aligned coverage* is >= ``min_overlap`` = 0.75: the share of the item's tokens that line up
   in order with the text around the anchors (difflib matching runs of >= 2 tokens), plus the
   substituted words: a gap of <= 2 tokens between two runs that has the same length in the item
   and in the text, or <= 2 item tokens before the first or after the last run.

Templated sets (``EvalSet.templated``: ProofWriter, PrOntoQA, LogicalDeduction, Knights and Knaves)
are generated from templates, so their items differ from each other only by substituted names,
objects and connectives, and forgiving substitutions would match every item of the same template.
Their items are matched when >= 90% of the item's tokens lie in 13-grams the text also contains
(13-gram anchors). An item shorter than its n (MATH has "Evaluate $\\log_327$.") is matched only when
its whole token sequence occurs in the text, with score 1.0.

The evaluation sets (:class:`EvalSet`, :data:`EVAL_SETS`, :func:`load_eval_sets`) are read through their
tasks in :mod:`thinkling.curate.evalsets`; they are re-exported here.

Why not the GPT-3 / lm-eval rule (any shared 13-gram): a changed number in a short question
destroys every 13-gram (the shortest GSM8K test question has 15 tokens). Measured with
``bench/decontam.py`` on the 1,319 GSM8K test questions planted into the 7,473 train questions:

* the 13-gram rule misses 22 questions with one number changed, 17 with one name changed (all its
  mentions) and 86 with number, name, whitespace and punctuation changed together; this rule
  misses none (lowest score 0.81: a question with five mentions of the renamed word);
* both rules flag the same 4 train questions, and all 4 are the same problem as a test question
  with other numbers and names (train 20 ~ test 632, train 1314 and 5162 ~ test 602, train 3726 ~
  test 824). The next train score is 0.72 (train 7285 ~ test 918, a looser rewrite of one
  template); unrelated questions sharing stock phrases score lower;
* with the ordinary rule, 1,666 of the 4,500 Knights-and-Knaves train puzzles and 1,186 of the
  1,200 LogicalDeduction train questions would match an eval item. With the templated rule no K&K
  or ProofWriter train item matches, and 708 LogicalDeduction train questions do: exactly those
  whose puzzle (context) is also in the dev split (Logic-LM split BIG-bench by question, not by
  puzzle).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from difflib import SequenceMatcher

import numpy as np

# the evaluation sets (read through their tasks) live in evalsets.py; their names are re-exported here
from thinkling.curate.evalsets import EVAL_SETS, EvalSet, default_data_dir, load_eval_sets  # noqa: F401

# ----------------------------------------------------------------------------- tokens and n-grams

_APOSTROPHE = re.compile(r"(?<=\w)['\u2019\u02bc\u2018`](?=\w)")  # Janet's -> janets
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\})(?=\d{3}(?!\d))")  # 1,000 and LaTeX 1{,}000 -> 1000
_LATEX_SPACE = re.compile(r"\\[,;:! ]")
# LaTeX commands that only format or stand for an operator sign (which plain text would write as
# punctuation, and punctuation is dropped). Other commands keep their name as a word: \sqrt -> sqrt.
_LATEX_NOISE = re.compile(
    r"\\(?:left|right|[bB]igg?[lr]?|displaystyle|textstyle|scriptstyle|text(?:bf|it|rm|sf|tt|normal)?"
    r"|math(?:rm|bf|it|bb|cal|sf|tt|frak)|operatorname|mbox|hbox|emph|boxed|overline|underline"
    r"|[dtc]?frac|c?dot[sp]?|[lc]?dots|times|div|pm|mp|le(?:q|qslant)?|ge(?:q|qslant)?|neq?|lt|gt"
    r"|approx|equiv|quad|qquad)(?![A-Za-z])"
)
_SCRIPT_DIGIT = re.compile(r"(?<=[_^])(\d)(?=\d)")  # LaTeX x^21 is x^2 1: the script takes one digit
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")


def normalize(text: str) -> list[str]:
    """Lowercase word and number tokens of ``text``; punctuation, ``$`` and LaTeX markup dropped.

    NFKC-normalized and casefolded; apostrophes inside words are removed (``Janet’s`` ->
    ``janets``); thousands separators are removed and decimals kept (``1,250.5`` -> ``1250.5``);
    formatting LaTeX (``\\left``, ``\\frac``, ``\\text``, ``\\cdot``, ...) is dropped, so
    ``$\\frac{1}{2}$`` and ``1/2`` both give ``1 2``.
    """
    t = unicodedata.normalize("NFKC", text)
    t = _LATEX_SPACE.sub(" ", t)
    t = _LATEX_NOISE.sub(" ", t)
    t = _SCRIPT_DIGIT.sub(r"\1 ", t)
    t = _APOSTROPHE.sub("", t)
    t = _THOUSANDS.sub("", t)
    return _TOKEN.findall(t.casefold())


_TOKEN_IDS: dict[str, int] = {}


def _token_ids(tokens: Sequence[str]) -> list[int]:
    """Stable 64-bit ids of tokens (blake2b), cached."""
    out = []
    cache = _TOKEN_IDS
    for tok in tokens:
        v = cache.get(tok)
        if v is None:
            if len(cache) > 2_000_000:
                cache.clear()
            v = cache[tok] = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(),
                                            "little", signed=True)
        out.append(v)
    return out


def _gram_seq(ids: list[int], n: int) -> list[int]:
    """Hashes of the n-grams of ``ids`` in order (empty when there are fewer than n ids)."""
    if n == 1:
        return [hash((i,)) for i in ids]
    return [hash(g) for g in zip(*(ids[k:] for k in range(n)))]


def _gram_set(ids: list[int], n: int) -> set[int]:
    if not ids:
        return set()
    if len(ids) < n:
        return {hash(tuple(ids))}
    return set(_gram_seq(ids, n))


def ngrams(tokens: Sequence[str], n: int) -> set[int]:
    """The set of hashed n-grams (64-bit ints) of a token list.

    A non-empty list shorter than n gives one gram, the hash of the whole sequence, so short texts
    still compare equal to themselves and to nothing else; an empty list gives the empty set.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _gram_set(_token_ids(tokens), n)


# ----------------------------------------------------------------------------- near duplicates

METHODS = ("minhash", "exact-ngrams")


def near_duplicates(texts: Sequence[str], *, n: int = 5, threshold: float = 0.8, method: str = "minhash",
                    num_perm: int = 128, seed: int = 0) -> list[int | None]:
    """For each text, the earliest earlier text it near-duplicates, else None.

    Near duplicate: Jaccard similarity of the n-gram sets >= ``threshold``; texts equal after
    :func:`normalize` always count (also two empty texts). ``minhash`` proposes candidates by LSH over
    ``num_perm`` MinHash values (seeded by ``seed``) and checks each one exactly, so every reported
    pair is a true near duplicate; ``exact-ngrams`` is the exact prefix-filtering join (no misses).
    A chain A ~ B ~ C with A !~ C gives B -> A and C -> B: drop every text with a non-None result.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "minhash" and num_perm < 2:
        raise ValueError(f"num_perm must be >= 2, got {num_perm}")

    # Exact duplicates after normalization: map each text to the first text with the same tokens.
    first: dict[bytes, int] = {}
    rep_of: list[int] = []
    reps: list[int] = []
    rep_grams: list[np.ndarray] = []  # sorted unique n-gram hashes of each distinct text
    for i, text in enumerate(texts):
        tokens = normalize(text)
        key = hashlib.blake2b("\x1f".join(tokens).encode(), digest_size=16).digest()
        r = first.setdefault(key, i)
        rep_of.append(r)
        if r == i:
            reps.append(i)
            rep_grams.append(_sorted_array(_gram_set(_token_ids(tokens), n)))

    if method == "minhash":
        found = _minhash_join(rep_grams, threshold, num_perm, seed)
    else:
        found = _prefix_join(rep_grams, threshold)
    rep_result = {reps[k]: (reps[j] if j is not None else None) for k, j in enumerate(found)}

    out: list[int | None] = []
    for i, r in enumerate(rep_of):
        earlier = rep_result[r]
        out.append(earlier if r == i else (earlier if earlier is not None else r))
    return out


def _sorted_array(s: set[int]) -> np.ndarray:
    a = np.fromiter(s, dtype=np.int64, count=len(s))
    a.sort()
    return a


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def _length_ok(la: int, lb: int, threshold: float) -> bool:
    """Jaccard <= min/max of the set sizes: skip pairs that cannot reach the threshold."""
    return min(la, lb) >= threshold * max(la, lb) - 1e-9


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows) for LSH banding: the most rows per band (fewest spurious candidates) for which
    a pair at exactly ``threshold`` is still a candidate with probability >= ``recall``
    (1 - (1 - t^r)^b). Candidates are checked exactly afterwards, so recall is what matters."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold ** r) ** b >= recall:
            best = (b, r)
    return best


def minhash_signatures(sets: Sequence[np.ndarray], num_perm: int, seed: int = 0,
                       chunk: int = 1 << 15) -> np.ndarray:
    """MinHash signatures (len(sets), num_perm) of non-empty uint64/int64 hash arrays.

    Permutation k is h_k(x) = (a_k * x + b_k) mod 2^64 >> 32 (multiply-shift hashing, a_k odd),
    computed for blocks of whole sets at a time and reduced per set with ``np.minimum.reduceat``.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)
    sig = np.empty((len(sets), num_perm), dtype=np.uint32)
    shift = np.uint64(32)
    i = 0
    while i < len(sets):
        j, total = i, 0
        while j < len(sets) and (j == i or total + sets[j].size <= chunk):
            total += sets[j].size
            j += 1
        block = np.concatenate([s.view(np.uint64) for s in sets[i:j]])
        h = (a[:, None] * block[None, :] + b[:, None]) >> shift  # (num_perm, grams): rows contiguous
        starts = np.cumsum([0] + [s.size for s in sets[i:j - 1]])
        sig[i:j] = np.minimum.reduceat(h, starts, axis=1).T
        i = j
    return sig


def _minhash_join(arrays: list[np.ndarray], threshold: float, num_perm: int, seed: int) -> list[int | None]:
    live = [k for k, a in enumerate(arrays) if a.size]
    out: list[int | None] = [None] * len(arrays)
    if len(live) < 2:
        return out
    sig = minhash_signatures([arrays[k] for k in live], num_perm, seed)
    bands, rows = lsh_params(threshold, num_perm)
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    for pos, k in enumerate(live):
        row = sig[pos]
        lists = []
        keys = []
        for band in range(bands):
            key = row[band * rows:(band + 1) * rows].tobytes()
            keys.append(key)
            lst = buckets[band].get(key)
            if lst is not None:
                lists.append(lst)
        # Candidates in ascending order (bucket lists are appended in order): the first one that
        # passes the exact check is the earliest near duplicate among the candidates.
        prev = -1
        for j in heapq.merge(*lists):
            if j == prev:
                continue
            prev = j
            if _length_ok(arrays[j].size, arrays[k].size, threshold) and \
                    _jaccard(arrays[j], arrays[k]) >= threshold - 1e-12:
                out[k] = j
                break
        for band, key in enumerate(keys):
            buckets[band].setdefault(key, []).append(k)
    return out


def _prefix_join(arrays: list[np.ndarray], threshold: float) -> list[int | None]:
    """Exact set-similarity join with the AllPairs prefix filter: if J(A, B) >= t, then the first
    |A| - ceil(t|A|) + 1 grams of A and the first |B| - ceil(t|B|) + 1 grams of B share a gram, in
    any global order of grams; rarest first keeps the candidate lists short."""
    out: list[int | None] = [None] * len(arrays)
    live = [a for a in arrays if a.size]
    if len(live) < 2:
        return out
    vocab, df = np.unique(np.concatenate(live), return_counts=True)
    index: dict[int, list[int]] = defaultdict(list)
    for k, a in enumerate(arrays):
        size = a.size
        if not size:
            continue
        p = size - math.ceil(threshold * size - 1e-9) + 1
        prefix = a[np.lexsort((a, df[np.searchsorted(vocab, a)]))[:p]].tolist()
        cands: set[int] = set()
        for g in prefix:
            lst = index.get(g)
            if lst:
                cands.update(lst)
        for j in sorted(cands):
            if _length_ok(arrays[j].size, size, threshold) and _jaccard(arrays[j], a) >= threshold - 1e-12:
                out[k] = j
                break
        for g in prefix:
            index[g].append(k)
    return out


# ----------------------------------------------------------------------------- contamination


def aligned_coverage(item: Sequence, text: Sequence, min_block: int = 2, max_gap: int = 2) -> float:
    """Share of ``item`` tokens aligned in order with ``text``: difflib matching runs of at least
    ``min_block`` tokens, plus the substituted words: a gap of at most ``max_gap`` tokens between
    two runs that has the same length in the item and the text, or before the first / after the
    last run."""
    if not item:
        return 0.0
    sm = SequenceMatcher(None, item, text, autojunk=False)
    return _coverage(sm, len(item), min_block, max_gap)


def _coverage(sm: SequenceMatcher, n_item: int, min_block: int, max_gap: int) -> float:
    blocks = [b for b in sm.get_matching_blocks() if b.size >= min_block]
    if not blocks:
        return 0.0
    got = sum(b.size for b in blocks)
    if blocks[0].a <= max_gap:
        got += blocks[0].a
    tail = n_item - (blocks[-1].a + blocks[-1].size)
    if tail <= max_gap:
        got += tail
    for b1, b2 in zip(blocks, blocks[1:]):
        gap_item = b2.a - (b1.a + b1.size)
        gap_text = b2.b - (b1.b + b1.size)
        if gap_item <= max_gap and gap_text == gap_item:
            got += gap_item
    return got / n_item


class ContaminationIndex:
    """Inverted index of eval-set n-grams; :meth:`match` lists the eval items a text contaminates.

    The rule is in the module docstring: items of ordinary sets need ``n``-gram anchors and an
    aligned coverage >= ``min_overlap``; items of templated sets (:attr:`EvalSet.templated`) need a
    coverage by shared ``templated_n``-grams >= ``templated_overlap``. ``max_df``: a gram found in
    more than ``max(max_df_min, max_df * len(set))`` items of one set is boilerplate and no anchor
    (items whose every gram is boilerplate keep their three rarest as anchors).
    """

    def __init__(self, sets: Sequence[EvalSet], n: int = 6, min_overlap: float = 0.75, *,
                 templated_n: int = 13, templated_overlap: float = 0.9, min_block: int = 2, max_gap: int = 2,
                 max_df: float = 0.05, max_df_min: int = 20):
        for name, v in (("n", n), ("templated_n", templated_n), ("min_block", min_block)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        for name, v in (("min_overlap", min_overlap), ("templated_overlap", templated_overlap)):
            if not 0.0 < v <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {v}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.n, self.min_overlap = n, min_overlap
        self.templated_n, self.templated_overlap = templated_n, templated_overlap
        self.min_block, self.max_gap = min_block, max_gap
        self.max_df, self.max_df_min = max_df, max_df_min
        self.names: list[tuple[str, str]] = []  # (set name, item id) per item
        self.tokens: list[list[int]] = []  # token ids per item
        self.templated: list[bool] = []
        self.grams: dict[int, list[int]] = {}  # gram sequence of templated items (for the coverage)
        self.postings: dict[int, dict[int, list[int]]] = {}  # gram size -> gram -> items
        self.short: dict[int, list[int]] = defaultdict(list)  # whole-sequence hash -> items shorter than their n
        self.short_lengths: set[int] = set()
        self.sizes: dict[str, int] = {}
        self.skipped: list[tuple[str, str]] = []  # items without a single token
        self.boilerplate: dict[str, int] = {}  # number of grams not used as anchors, per set
        for es in sets:
            self._add_set(es)
        self.short = dict(self.short)

    def _add_set(self, es: EvalSet) -> None:
        if es.name in self.sizes:
            raise ValueError(f"eval set {es.name!r} given twice")
        self.sizes[es.name] = len(es.items)
        n = self.templated_n if es.templated else self.n
        postings = self.postings.setdefault(n, defaultdict(list))
        grams: list[tuple[int, list[int]]] = []
        df: Counter[int] = Counter()
        for item_id, text in es.items:
            ids = _token_ids(normalize(text))
            if not ids:
                self.skipped.append((es.name, item_id))
                continue
            k = len(self.tokens)
            self.names.append((es.name, str(item_id)))
            self.tokens.append(ids)
            self.templated.append(es.templated)
            if len(ids) < n:
                self.short[hash(tuple(ids))].append(k)
                self.short_lengths.add(len(ids))
                continue
            seq = _gram_seq(ids, n)
            if es.templated:
                self.grams[k] = seq
            distinct = list(dict.fromkeys(seq))
            df.update(distinct)
            grams.append((k, distinct))
        cap = max(self.max_df_min, int(self.max_df * len(es.items)))
        dropped = {g for g, c in df.items() if c > cap}
        self.boilerplate[es.name] = len(dropped)
        for k, distinct in grams:
            anchors = [g for g in distinct if g not in dropped] or sorted(distinct, key=lambda g: (df[g], g))[:3]
            for g in anchors:
                postings[g].append(k)

    def __len__(self) -> int:
        return len(self.tokens)

    def match(self, text: str) -> list[tuple[str, str, float]]:
        """(set name, item id, score) of each eval item this text matches, best score first."""
        return [(*self.names[k], s) for k, s in self._match_ids(_token_ids(normalize(text)))]

    def _match_ids(self, ids: list[int]) -> list[tuple[int, float]]:
        """(item index, score) for a text given as token ids (``_token_ids(normalize(text))``)."""
        found: dict[int, float] = {}
        spans: dict[int, list[int]] = {}  # candidate -> [first, last] anchor position in the text
        text_grams: dict[int, set[int]] = {}
        for n, postings in self.postings.items():
            if len(ids) < n:
                continue
            seq = _gram_seq(ids, n)
            text_grams[n] = set(seq)
            for p, g in enumerate(seq):
                for k in postings.get(g, ()):
                    sp = spans.get(k)
                    if sp is None:
                        spans[k] = [p, p]
                    else:
                        sp[1] = p
        for length in self.short_lengths:
            if length <= len(ids):
                for p, g in enumerate(_gram_seq(ids, length)):
                    for k in self.short.get(g, ()):
                        if ids[p:p + length] == self.tokens[k]:
                            found[k] = 1.0
        full: SequenceMatcher | None = None
        for k, (first, last) in spans.items():
            item = self.tokens[k]
            if self.templated[k]:
                s = _gram_coverage(self.grams[k], text_grams[self.templated_n], len(item), self.templated_n)
                if s >= self.templated_overlap - 1e-12:
                    found[k] = s
                continue
            lo, hi = max(0, first - len(item)), min(len(ids), last + self.n + len(item))
            if lo == 0 and hi == len(ids):
                if full is None:
                    full = SequenceMatcher(None, autojunk=False)
                    full.set_seq2(ids)
                sm = full
            else:
                sm = SequenceMatcher(None, autojunk=False)
                sm.set_seq2(ids[lo:hi])
            sm.set_seq1(item)
            s = _coverage(sm, len(item), self.min_block, self.max_gap)
            if s >= self.min_overlap - 1e-12:
                found[k] = s
        return sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))


def _gram_coverage(item_grams: list[int], text_grams: set[int], n_item: int, n: int) -> float:
    """Share of an item's tokens inside one of its n-grams that the text also has."""
    covered = 0
    end = 0  # first position not yet counted
    for p, g in enumerate(item_grams):
        if g in text_grams:
            covered += p + n - max(p, end)
            end = p + n
    return covered / n_item
