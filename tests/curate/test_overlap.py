"""Dedup and decontamination (thinkling.curate.overlap): analytic cases and the real benchmark files.

The real-data tests pin what the rule does on GSM8K: every test question planted into training data
is flagged, also lightly perturbed, and the GSM8K train questions flagged against the test set are
exactly the four measured template near duplicates (see the module docstring).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from thinkling.curate.overlap import ContaminationIndex, EvalSet, aligned_coverage, near_duplicates, ngrams, normalize

METHODS = ["minhash", "exact-ngrams"]

# GSM8K train questions that are the same problem template as a test question (other numbers and
# names), found by this rule and checked by hand: train index -> test index.
GSM8K_TRAIN_NEAR_TEST = {20: 632, 1314: 602, 3726: 824, 5162: 602}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def gsm8k(shared_data: Path) -> dict[str, list[str]]:
    return {split: [r["question"] for r in _jsonl(shared_data / "gsm8k" / f"{split}.jsonl")]
            for split in ("train", "test")}


@pytest.fixture(scope="module")
def index(eval_sets: list[EvalSet]) -> ContaminationIndex:
    return ContaminationIndex(eval_sets)


# ----------------------------------------------------------------------------- normalize / ngrams


def test_normalize_drops_case_punctuation_whitespace_and_latex_markup():
    assert normalize("Janet’s ducks lay 16 eggs,  per day!") == ["janets", "ducks", "lay", "16", "eggs", "per", "day"]
    assert normalize("  JANET'S\nducks -- lay 16 eggs per day?") == normalize("Janet’s ducks lay 16 eggs, per day.")
    assert normalize("It costs $1,250.50 in total") == ["it", "costs", "1250.50", "in", "total"]
    assert normalize(r"$\frac{1}{2}$ of $x$") == normalize("1/2 of x") == ["1", "2", "of", "x"]
    assert normalize(r"$\left( 3, \dfrac{\pi}{2} \right)$") == ["3", "pi", "2"]
    assert normalize(r"Evaluate $\sqrt{5625}\cdot 2$.") == ["evaluate", "sqrt", "5625", "2"]
    assert normalize(r"Evaluate $\log_327$.") == ["evaluate", "log", "3", "27"]  # LaTeX: base 3 of 27
    assert normalize(r"a total of 1{,}000\,\text{ cm}") == ["a", "total", "of", "1000", "cm"]
    assert normalize("") == [] and normalize(" ...?! ") == []


def test_ngrams_sizes_short_texts_and_stable_hashes():
    toks = normalize("a b c d e f")
    assert len(ngrams(toks, 5)) == 2 and len(ngrams(toks, 1)) == 6
    assert ngrams(toks, 6) != ngrams(toks, 5)
    assert len(ngrams(["a", "b"], 5)) == 1 and ngrams(["a", "b"], 5) != ngrams(["b", "a"], 5)
    assert ngrams([], 5) == set()
    assert ngrams(toks, 3) == ngrams(normalize("A, B; C d e F."), 3)
    with pytest.raises(ValueError):
        ngrams(toks, 0)
    # independent of PYTHONHASHSEED: the same value in a fresh process with another seed
    code = "from thinkling.curate.overlap import ngrams; print(sorted(ngrams(['x', 'y', 'z', 'w'], 3)))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(sorted(ngrams(["x", "y", "z", "w"], 3)))


# ----------------------------------------------------------------------------- near_duplicates


def _jaccard(a: str, b: str, n: int = 5) -> float:
    x, y = ngrams(normalize(a), n), ngrams(normalize(b), n)
    return len(x & y) / len(x | y) if x | y else 1.0


def _long_questions(questions: list[str], k: int, min_tokens: int = 60) -> list[str]:
    return [q for q in questions if len(normalize(q)) >= min_tokens][:k]


def _edit_word(text: str, pos: int, new: str = "zebra") -> str:
    words = text.split()
    words[pos] = new
    return " ".join(words)


@pytest.mark.parametrize("method", METHODS)
def test_near_duplicates_exact_dup_edit_unrelated_and_earliest(gsm8k, method):
    a, b, c = _long_questions(gsm8k["test"], 3)
    a_edit = _edit_word(a, len(a.split()) // 2)
    assert _jaccard(a, a_edit) >= 0.8
    a_loud = "  " + a.upper().replace(".", "!!") + "  "  # exact duplicate after normalization
    texts = [b, a, c, a_edit, a_loud, a, ""]
    got = near_duplicates(texts, method=method)
    assert got == [None, None, None, 1, 1, 1, None]
    # the earliest index: a_edit2 is a near duplicate of both a (index 1) and a_edit (index 2)
    a_edit2 = _edit_word(a_edit, 3)
    assert _jaccard(a, a_edit2) >= 0.8 and _jaccard(a_edit, a_edit2) >= 0.8
    assert near_duplicates([c, a, a_edit, a_edit2], method=method) == [None, None, 1, 1]
    # a copy of a later text points at the earliest text its content near-duplicates
    assert near_duplicates([a_edit, b, a, a], method=method) == [None, None, 0, 0]
    # empty texts are exact duplicates of each other, and of nothing else
    assert near_duplicates(["", "?!", a, ""], method=method) == [None, 0, None, 0]


@pytest.mark.parametrize("method", METHODS)
def test_near_duplicates_threshold_is_jaccard_of_ngram_sets(gsm8k, method):
    a = _long_questions(gsm8k["test"], 1, min_tokens=80)[0]
    b = _edit_word(_edit_word(a, 10), 40)  # two edits far apart: J ~ (G - 10) / (G + 10)
    j = _jaccard(a, b)
    assert 0.6 < j < 0.95
    assert near_duplicates([a, b], threshold=j - 0.01, method=method) == [None, 0]
    assert near_duplicates([a, b], threshold=j, method=method) == [None, 0]
    assert near_duplicates([a, b], threshold=min(1.0, j + 0.01), method=method) == [None, None]
    # n matters: with 2-grams the same pair is more similar
    assert _jaccard(a, b, 2) > j
    assert near_duplicates([a, b], n=2, threshold=_jaccard(a, b, 2), method=method) == [None, 0]


@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_near_duplicates_methods_agree_with_brute_force(gsm8k, threshold):
    rng = random.Random(0)
    base = gsm8k["train"][:250]
    texts = list(base)
    for _ in range(250):  # planted near duplicates with 1-3 word edits, some of them chained
        src = rng.choice(texts)
        words = src.split()
        for _ in range(rng.randint(1, 3)):
            words[rng.randrange(len(words))] = rng.choice(["zebra", "17", "quickly", "Zorblax"])
        texts.append(" ".join(words))
    grams = [ngrams(normalize(t), 5) for t in texts]
    keys = [tuple(normalize(t)) for t in texts]

    def brute(i: int) -> int | None:
        for j in range(i):
            if keys[i] == keys[j] or (grams[i] and len(grams[i] & grams[j]) / len(grams[i] | grams[j]) >= threshold):
                return j
        return None

    expected = [brute(i) for i in range(len(texts))]
    assert 100 < sum(e is not None for e in expected) < 250
    assert near_duplicates(texts, threshold=threshold, method="exact-ngrams") == expected
    got = near_duplicates(texts, threshold=threshold, method="minhash")
    # MinHash checks candidates exactly (no false positives); on this sample it misses nothing either
    assert all(g is None or g == e for g, e in zip(got, expected))
    assert got == expected
    assert near_duplicates(texts, threshold=threshold, method="minhash", seed=1) == expected


def test_near_duplicates_rejects_bad_arguments():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a"], threshold=0.0)
    with pytest.raises(ValueError, match="method"):
        near_duplicates(["a"], method="simhash")
    with pytest.raises(ValueError, match="n must be"):
        near_duplicates(["a"], n=0)
    assert near_duplicates([]) == []


# ----------------------------------------------------------------------------- contamination


def test_aligned_coverage_credits_substituted_words_only():
    item = "a b c d e f g h i j".split()
    assert aligned_coverage(item, item) == 1.0
    assert aligned_coverage(item, "x a b c d Q f g h i j y".split()) == 1.0  # one word substituted
    assert aligned_coverage(item, "a b c d Q R f g h i j".split()) == 0.9  # 1 word replaced by 2: no credit
    assert aligned_coverage(item, "a b c d f g h i j".split()) == 0.9  # a deleted word is missing
    assert aligned_coverage(item, "j i h g f e d c b a".split()) == 0.0
    assert aligned_coverage([], item) == 0.0


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NOT_NAMES = set("""a an the if how what when where which who why he she they it its in on at each every
there this that these those one two three four five six seven eight nine ten after before for from to of
and or but so then mr mrs ms dr""".split())


def _change_number(q: str, k: int) -> str:
    m = list(_NUMBER.finditer(q))[k]
    v = m.group().replace(",", "")
    new = v + "5" if "." in v else str(int(v) + 7)
    return q[:m.start()] + new + q[m.end():]


def _names(q: str) -> list[str]:
    """Capitalised words that are probably names (a heuristic: it also picks words like 'Movie')."""
    lower = set(re.findall(r"\b[a-z]+\b", q))
    out: list[str] = []
    for w in re.findall(r"\b[A-Z][a-z]+\b", q):
        if w.lower() not in _NOT_NAMES and w.lower() not in lower and w not in out:
            out.append(w)
    return out


def _rename(q: str, name: str) -> str:
    return re.sub(rf"\b{name}\b", "Zorblax", q)


def _reformat(q: str) -> str:
    """Extra whitespace and different punctuation."""
    q = "  " + q.replace(" ", "   ").replace(". ", ".\n\n") + " \n"
    return '"' + q.replace(",", "").replace("?", "!").replace(".\n", ";\n").replace("$", "") + '"'


def _variants(q: str) -> dict[str, str]:
    out = {"verbatim": q, "format": _reformat(q),
           "in a prompt": f"Solve this math word problem step by step.\n\nProblem: {q}\n\nWe start by reading "
                          f"the problem carefully and listing the quantities it gives."}
    for k in range(len(_NUMBER.findall(q))):
        out[f"number {k}"] = _change_number(q, k)
    names = _names(q)
    for name in names:
        out[f"name {name}"] = _rename(q, name)
    combined = _reformat(q)
    if _NUMBER.search(combined):
        combined = _change_number(combined, len(_NUMBER.findall(combined)) // 2)
    if names:
        combined = _rename(combined, names[0])
    out["number+name+format"] = combined
    return out


def test_every_planted_gsm8k_test_question_is_flagged_also_perturbed(index, gsm8k):
    missed = []
    kinds: Counter[str] = Counter()
    for i, q in enumerate(gsm8k["test"]):
        own = f"gsm8k/test/{i}"
        for kind, text in _variants(q).items():
            kinds[kind.split()[0]] += 1
            if not any(s == "gsm8k" and item == own for s, item, _ in index.match(text)):
                missed.append((i, kind, text))
    assert kinds["verbatim"] == 1319 and kinds["number"] > 2000 and kinds["name"] > 1000
    assert missed == []


def test_gsm8k_train_flagged_against_test_is_the_measured_set(index, gsm8k):
    flagged = {}
    per_set: Counter[str] = Counter()
    for j, q in enumerate(gsm8k["train"]):
        hits = index.match(q)
        per_set.update(s for s, _, _ in hits)
        if hits:
            flagged[j] = hits
    assert per_set == {"gsm8k": len(GSM8K_TRAIN_NEAR_TEST)}
    assert {j: hits[0][1] for j, hits in flagged.items()} == {
        j: f"gsm8k/test/{i}" for j, i in GSM8K_TRAIN_NEAR_TEST.items()}
    assert all(score >= 0.8 for hits in flagged.values() for _, _, score in hits)


def test_short_items_need_the_whole_sequence_and_boilerplate_is_no_anchor(index, eval_sets):
    math = {i: t for s in eval_sets if s.name == "math" for i, t in s.items}
    short = [i for i, t in math.items() if 3 <= len(normalize(t)) < index.n]
    assert short
    text = math[short[0]]
    assert ("math", short[0], 1.0) in index.match(f"Question: {text} Think step by step.")
    toks = normalize(text)
    assert not any(i == short[0] for _, i, _ in index.match(" ".join(toks[:-1] + ["123457"])))
    # the fixed ARC instruction appears in all 3,548 items but is not an anchor
    assert index.match("Please choose the correct answer to the question: Which number is largest? "
                       "Answer1: 3 Answer2: 7. Answer format: answer1/answer2") == []


def test_templated_sets_match_only_near_verbatim(index, shared_data, eval_sets):
    kk = [r["quiz"] for k in range(3, 8) for r in _jsonl(shared_data / "knights_and_knaves" / f"{k}ppl_train.jsonl")]
    assert sum(bool(index.match(q)) for q in kk) == 0  # same templates and names, other puzzles
    by_name = {s.name: s for s in eval_sets}
    item_id, quiz = by_name["knights_and_knaves"].items[7]
    assert index.match(f"Solve this puzzle. {quiz}")[0][:2] == ("knights_and_knaves", item_id)
    # LogicalDeduction as split by Logic-LM: 708 of the 1,200 train questions ask about a puzzle
    # (context) that is also in the dev split, with other answer options.
    ld_dev = {r["context"] for r in _jsonl(shared_data / "logical_deduction" / "dev.jsonl")}
    ld = _jsonl(shared_data / "logical_deduction" / "train.jsonl")
    flagged = [bool(index.match("\n".join([r["context"], r["question"], *r["options"]]))) for r in ld]
    same_puzzle = [r["context"] in ld_dev for r in ld]
    assert sum(same_puzzle) == 708 and flagged == same_puzzle


def test_index_rejects_bad_arguments_and_duplicate_sets():
    es = EvalSet("toy", [("a", "one two three four five six seven"), ("b", ""), ("c", "tiny item")])
    idx = ContaminationIndex([es])
    assert len(idx) == 2 and idx.skipped == [("toy", "b")]
    assert idx.match("x one two three four five six seven y") == [("toy", "a", 1.0)]
    assert idx.match("it is a tiny item indeed") == [("toy", "c", 1.0)]
    assert idx.match("it is a tiny thing") == []
    with pytest.raises(ValueError, match="given twice"):
        ContaminationIndex([es, es])
    with pytest.raises(ValueError, match="min_overlap"):
        ContaminationIndex([es], min_overlap=0)
    with pytest.raises(ValueError, match="n must be"):
        ContaminationIndex([es], n=0)
