"""Dedup and decontamination (thinkling.curate.overlap): analytic cases and the real benchmark files.

The real-data tests pin what the rule does on GSM8K: every test question planted into training data
is flagged, also lightly perturbed, and the GSM8K train questions flagged against the test set are
exactly the four measured template near duplicates (see the module docstring).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from thinkling.artifacts import DataError
from thinkling.curate.overlap import (
    EVAL_SETS,
    ContaminationIndex,
    EvalSet,
    aligned_coverage,
    default_data_dir,
    load_eval_sets,
    near_duplicates,
    ngrams,
    normalize,
)

METHODS = ["minhash", "exact-ngrams"]

# GSM8K train questions that are the same problem template as a test question (other numbers and
# names), found by this rule and checked by hand: train index -> test index.
GSM8K_TRAIN_NEAR_TEST = {20: 632, 1314: 602, 3726: 824, 5162: 602}

EXPECTED_SIZES = {"gsm8k": 1319, "math500": 500, "math": 5000, "aime24": 30, "aime25": 30, "amc23": 40,
                  "folio": 204, "proofwriter": 600, "prontoqa": 500, "logical_deduction": 300,
                  "knights_and_knaves": 500, "arc": 3548}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def gsm8k(shared_data: Path) -> dict[str, list[str]]:
    return {split: [r["question"] for r in _jsonl(shared_data / "gsm8k" / f"{split}.jsonl")]
            for split in ("train", "test")}


@pytest.fixture(scope="module")
def eval_sets(shared_data: Path) -> list[EvalSet]:
    return load_eval_sets(data_dir=shared_data)


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


# ----------------------------------------------------------------------------- eval sets


def test_eval_sets_load_every_split_with_unique_ids(eval_sets):
    assert [s.name for s in eval_sets] == list(EVAL_SETS)
    assert {s.name: len(s) for s in eval_sets} == EXPECTED_SIZES
    for s in eval_sets:
        ids = [i for i, _ in s.items]
        assert len(set(ids)) == len(ids), s.name
        assert all(isinstance(i, str) and t.strip() for i, t in s.items), s.name
    by_name = {s.name: s for s in eval_sets}
    assert by_name["gsm8k"].items[0][0] == "gsm8k/test/0"
    assert by_name["gsm8k"].items[0][1].startswith("Janet’s ducks lay 16 eggs")
    # ARC: the fixed instruction wording and the answer labels are not part of the item
    arc0 = by_name["arc"].items[0][1]
    assert arc0.startswith("An astronomer observes") and "Answer1" not in arc0 and "Answer format" not in arc0
    assert {s.name for s in eval_sets if s.templated} == {"proofwriter", "prontoqa", "logical_deduction",
                                                          "knights_and_knaves"}


def test_missing_eval_file_names_the_path(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "gsm8k" / "test.jsonl"))):
        EVAL_SETS["gsm8k"](tmp_path)
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "knights_and_knaves" / "3ppl_test.jsonl"))):
        EVAL_SETS["knights_and_knaves"](tmp_path)
    (tmp_path / "aime25").mkdir()
    (tmp_path / "aime25" / "test.jsonl").write_text('{"id": "0", "answer": 70}\n')
    with pytest.raises(DataError, match=r"test.jsonl:1: missing field 'problem'"):
        EVAL_SETS["aime25"](tmp_path)
    with pytest.raises(KeyError, match="unknown eval set"):
        load_eval_sets(["gsm9k"], data_dir=tmp_path)
    monkeypatch.setenv("THINKLING_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("THINKLING_DATA_DIR")
    assert default_data_dir() == Path("../shared/data")


# SHA-256 of json.dumps([templated, items]) of each eval set, computed with the readers decontamination
# had before the sets were read through their tasks (curate/overlap.py's own copy of every reader).
EVAL_SET_DIGESTS = {
    "gsm8k": "1f8d6c832c7faac931e9a3adf2b1ff40c79811663d8a16fc7149a6fd6ecf31c1",
    "math500": "60d89dcfd75e53a4dc5346ab206e5ad5f8ef1f3e852fcfb05d0d2390ef23d1f2",
    "math": "5c4c8bd1844a89a1ef2e4d214f2940ae1173f872e9ed11d2cd35bbccb81637ce",
    "aime24": "b51f91d4382cc8226e9c95bb6347b2affba56aa767f2e92d550f97a64e5e3894",
    "aime25": "120b2b068bb004df53b7b47338ceea9f24927e05e2d5cb0056ecf0da39d8b69a",
    "amc23": "1eb4b8bbe1cebde6c5e91463db52a0d2908c20a3abd1d6dc3f073bf8abde031b",
    "folio": "99800387f832eeb07bfb3b4699285d1c079a8d39591895d314b2598691b3c5e9",
    "proofwriter": "13134b6046366303a7945c52ed94a37ef02697658ce30ded72d2e259bcc3589a",
    "prontoqa": "26d60a445219b1cafe5db8fb50ddb307e6233f4df4c3fd31e4d61162c8dd51af",
    "logical_deduction": "3ac2b1a8459492f73c9c81401745183015bc2e288f6bd3d03fd5559aaf9fac86",
    "knights_and_knaves": "6e5421ee446871fa17d69bee49949a9111d18944872e3dd59088e3b4471a8a3d",
    "arc": "885d2d7baa3e80834becfc9fb5c11005bf77788aa7bcab0bc44efc9f8aca2f9c",
}


def test_eval_sets_are_unchanged(eval_sets):
    got = {s.name: hashlib.sha256(json.dumps([s.templated, s.items]).encode()).hexdigest() for s in eval_sets}
    assert got == EVAL_SET_DIGESTS


def test_each_file_task_gives_its_eval_texts(shared_data):
    """Every file task is in one eval set, and a set is its tasks' eval texts (``arc``: both ARC tests)."""
    from thinkling.curate.evalsets import EVAL_TASKS, eval_set
    from thinkling.tasks import get_task, task_names
    from thinkling.tasks.base import TASKS
    from thinkling.tasks.files import FileTask

    file_tasks = {n for n in task_names() if issubclass(TASKS.get(n), FileTask)}
    assert sorted(t for ts in EVAL_TASKS.values() for t in ts) == sorted(file_tasks)
    gsm = get_task("gsm8k", data_dir=str(shared_data / "gsm8k"))
    texts = gsm.eval_texts()
    assert len(texts) == 1319 and texts[0][0] == "gsm8k/test/0" == gsm.problems("test", n=1)[0].id
    assert texts[0][1] == gsm.problems("test", n=1)[0].question  # GSM8K's prompt is its question
    assert get_task("knights_and_knaves").templated and not get_task("folio").templated
    arc = eval_set("arc", shared_data)
    challenge = get_task("arc_challenge", data_dir=shared_data / "arc").eval_texts()
    easy = get_task("arc_easy", data_dir=shared_data / "arc").eval_texts()
    assert arc.items == challenge + easy and challenge[0][0] == "ARC-Challenge/0" and easy[0][0] == "ARC-Easy/0"
    # the eval text is the benchmark's question, not the task's prompt (no options, no instruction)
    ld_id, ld_text = get_task("logical_deduction", data_dir=shared_data / "logical_deduction").eval_texts()[0]
    assert "Options:" not in ld_text and not ld_id.startswith("logical_deduction/")


def test_eval_sets_without_a_data_dir_follow_each_tasks_data_dir(tmp_path, monkeypatch, shared_data):
    """No data_dir: every task's own rule ($THINKLING_<TASK>_DIR, else $THINKLING_DATA_DIR/<folder>);
    a data_dir (the data root) wins over both."""
    mine = tmp_path / "my_gsm8k"
    mine.mkdir()
    (mine / "test.jsonl").write_text(json.dumps({"question": "Only one question here?", "answer": "#### 1"}) + "\n")
    monkeypatch.setenv("THINKLING_DATA_DIR", str(shared_data))
    monkeypatch.setenv("THINKLING_GSM8K_DIR", str(mine))
    gsm, aime = load_eval_sets(["gsm8k", "aime24"])
    assert gsm.items == [("gsm8k/test/0", "Only one question here?")] and len(aime) == 30
    assert len(load_eval_sets(["gsm8k"], data_dir=shared_data)[0]) == 1319
    monkeypatch.setenv("THINKLING_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "aime24" / "test.jsonl"))):
        load_eval_sets(["aime24"])


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
