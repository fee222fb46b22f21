"""MATH / MATH-500 and AIME 2024/2025 / AMC 2023 on the real files in ../shared/data: loading, levels,
splits, bad rows, the hub source (without network), and the math verifier.

The `verify` curation op is run for real on every MATH-500 / MATH reference trace; the dataset solutions
are scored as student completions; our verdicts are compared with math-verify's own; equivalent rewrites
of every MATH-500 gold must be credited and wrong ones must not; every competition gold is credited in
several spellings and wrong answers are not.
"""

from __future__ import annotations

import json
import re
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest

from helpers.tasks import _completion, reference_examples, run_verify_op
from thinkling.artifacts import DataError
from thinkling.format import format_assistant
from thinkling.records import Example
from thinkling.tasks import get_task, mathverify, task_names
from thinkling.tasks import math as tmath
from thinkling.tasks.math import extract_math_answer
from thinkling.tasks.mathverify import canonical


@pytest.fixture(scope="module")
def mfull(shared_data: Path):
    return get_task("math", data_dir=str(shared_data / "math"))


@pytest.fixture(scope="module")
def m500_problems(m500):
    return m500.problems("test")


# ----------------------------------------------------------------------------- loading


def test_registered():
    assert {"math500", "math", "gsm8k"} <= set(task_names())


def test_math500_problems(m500, m500_problems, shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").read_text().splitlines()]
    assert len(m500_problems) == len(rows) == 500
    assert len({p.id for p in m500_problems}) == 500
    p, r = m500_problems[0], rows[0]
    assert p.id == "math500/test/precalculus/807" and p.task == "math500" and p.split == "test"
    assert p.question == r["problem"] and p.answer == r["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert p.meta == {"subject": "Precalculus", "unique_id": "test/precalculus/807.json", "solution": r["solution"]}
    assert [p.answer for p in m500_problems] == [r["answer"] for r in rows]
    counts = {lv: sum(p.level == lv for p in m500_problems) for lv in range(1, 6)}
    assert counts == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}  # as the dataset README states


def test_math_problems_gold_is_the_last_boxed(mfull):
    probs = mfull.problems("test")
    assert len(probs) == 5000 and len({p.id for p in probs}) == 5000
    assert all(p.answer for p in probs)  # every solution has a non-empty \boxed{}
    assert probs[0].id == "math/test/0" and probs[0].answer == "2" and probs[0].level == 3
    assert probs[0].meta["subject"] == "Algebra"
    # nested braces, and the last of several boxes
    assert probs[2].answer == "\\dfrac{9}{7}"
    two = next(p for p in probs if p.meta["solution"].count("\\boxed") > 1)
    assert two.answer == tmath.last_boxed(two.meta["solution"])
    assert {p.level for p in probs} == {1, 2, 3, 4, 5}


def test_math500_is_a_subset_of_math(m500_problems, mfull):
    """The two files agree: every MATH-500 problem is in MATH with the same gold (by verifier)."""
    by_question = {p.question: p for p in mfull.problems("test")}
    for p in m500_problems:
        q = by_question.get(p.question)
        assert q is not None, p.id
        assert q.level == p.level and mfull.verify(q.answer, p.answer), (p.id, q.answer, p.answer)


def test_levels_and_seeded_samples(m500, mfull):
    only5 = m500.problems("test", levels=[5])
    assert len(only5) == 134 and all(p.level == 5 for p in only5)
    a = mfull.problems("test", n=50, seed=0)
    assert len(a) == 50
    assert [p.id for p in a] == [p.id for p in mfull.problems("test", n=50, seed=0)]  # seeded
    assert [p.id for p in a] != [p.id for p in mfull.problems("test", n=50, seed=1)]
    idx = [p.meta["idx"] for p in a]
    assert idx == sorted(idx)  # file order
    assert len({p.meta["subject"] for p in a}) > 3  # a sample, not the (Algebra) head of a sorted file
    lv = mfull.problems("test", n=20, levels=[1, 2])
    assert len(lv) == 20 and {p.level for p in lv} <= {1, 2}
    assert len(m500.problems("test", n=10_000)) == 500


@pytest.mark.parametrize("name", ["math500", "math"])
def test_only_the_test_split_exists(name, shared_data):
    task = get_task(name, data_dir=str(shared_data / name))
    with pytest.raises(ValueError, match="only 'test'") as e:
        task.problems("train")
    assert "do not train" in str(e.value)
    if name == "math":
        assert "source=hub" in str(e.value)  # MATH train exists on the hub, not in the shared files


def test_missing_file_and_env_override(tmp_path, monkeypatch, shared_data):
    with pytest.raises(DataError) as e:
        get_task("math500", data_dir=str(tmp_path)).problems("test")
    assert str(tmp_path / "test.jsonl") in str(e.value) and "THINKLING_MATH500_DIR" in str(e.value)
    monkeypatch.setenv("THINKLING_MATH_DIR", str(shared_data / "math"))
    assert get_task("math").data_dir == shared_data / "math"
    monkeypatch.setenv("THINKLING_MATH500_DIR", str(tmp_path))
    assert get_task("math500").data_dir == tmp_path
    with pytest.raises(ValueError, match="source"):
        get_task("math500", source="disk")


@pytest.mark.parametrize("name, row, message", [
    ("math500", {"problem": "q", "solution": "s", "subject": "Algebra", "level": 2, "unique_id": "test/a/1.json"},
     "field 'answer'"),
    ("math500", {"problem": "q", "solution": "s", "answer": "1", "subject": "Algebra", "level": 7,
                 "unique_id": "test/a/1.json"}, "'level' must be 1-5"),
    ("math500", {"problem": "q", "solution": "s", "answer": "1", "subject": "Algebra", "level": "2",
                 "unique_id": "test/a/1.json"}, "field 'level'"),
    ("math", {"problem": "q", "level": "Level 3", "type": "Algebra", "idx": 0}, "field 'solution'"),
    ("math", {"problem": "q", "level": "Level ?", "type": "Algebra", "solution": "\\boxed{1}"}, "'Level 1'..'Level 5'"),
])
def test_bad_rows_name_the_file_line_and_field(tmp_path, name, row, message):
    good = {"math500": {"problem": "q", "solution": "\\boxed{1}", "answer": "1", "subject": "Algebra", "level": 1,
                        "unique_id": "test/algebra/0.json"},
            "math": {"problem": "q", "level": "Level 1", "type": "Algebra", "solution": "\\boxed{1}", "idx": 0}}[name]
    (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as e:
        get_task(name, data_dir=str(tmp_path)).problems("test")
    assert f"{tmp_path / 'test.jsonl'}:3" in str(e.value) and message in str(e.value)


def test_empty_gold_is_none_and_never_credited(tmp_path):
    rows = [{"problem": "q", "level": "Level 1", "type": "Algebra", "solution": "no box here", "idx": 0},
            {"problem": "q", "level": "Level 1", "type": "Algebra", "solution": "\\boxed{}", "idx": 1}]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task("math", data_dir=str(tmp_path))
    probs = task.problems("test")
    assert [p.answer for p in probs] == [None, None]
    assert task.reference_trace(probs[0]) is None
    assert task.score("\\boxed{1}", None) == ("1", False)
    kept, dropped = run_verify_op(task, [Example(id="x", problem_id=probs[0].id, task="math", level=1, question="q",
                                                 reasoning="", answer="\\boxed{1}", gold=None)], tmp_path)
    assert kept == [] and len(dropped["unparseable_gold"]) == 1


def test_hub_source_without_network(monkeypatch, m500_problems, shared_data):
    """source=hub goes through `datasets` (never called in tests): the rows it returns are read alike."""
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").read_text().splitlines()]
    monkeypatch.setattr(tmath.Math500Task, "_hub_rows", lambda self, split: rows)
    hub = get_task("math500", source="hub").problems("test")
    assert [p.model_dump() for p in hub] == [p.model_dump() for p in m500_problems]
    mrows = [{"problem": "q", "level": "Level 2", "type": "Algebra", "solution": "so \\boxed{\\frac{1}{2}}"}]
    monkeypatch.setattr(tmath.MathTask, "_hub_rows", lambda self, split: mrows)
    (p,) = get_task("math", source="hub").problems("train")  # MATH train exists on the hub
    assert (p.id, p.answer, p.level) == ("math/train/0", "\\frac{1}{2}", 2)


# ----------------------------------------------------------------------------- the verify op on real data


@pytest.mark.parametrize("name", ["math500", "math"])
def test_verify_op_credits_every_math_reference_trace(name, shared_data, tmp_path):
    task = get_task(name, data_dir=str(shared_data / name))
    probs = task.problems("test")
    kept, dropped = run_verify_op(task, reference_examples(task, probs), tmp_path)
    assert len(kept) == len(probs) and dropped == {}
    tr = task.reference_trace(probs[0])
    assert tr.reasoning == probs[0].meta["solution"] and tr.answer == f"The answer is \\boxed{{{probs[0].answer}}}."


def test_math500_solutions_scored_as_completions(m500, m500_problems, tmp_path):
    """Each MATH-500 solution text, scored as a student completion, against the `answer` field.
    Target >= 99%; measured 500/500 (the answer field is the solution's last box in all 500)."""
    fails = []
    for p in m500_problems:
        pred, ok = m500.score(p.meta["solution"], p.answer)
        if not ok:
            fails.append((p.id, p.answer, pred))
    assert len(fails) <= 5, fails
    assert fails == [], fails  # none known today; a new failure is a regression to look at
    # and through the verify op, with the solution as the trace's final answer text
    exs = [Example(id=p.id, problem_id=p.id, task="math500", level=p.level, question=p.question, reasoning="",
                   answer=p.meta["solution"], gold=p.answer) for p in m500_problems]
    kept, dropped = run_verify_op(m500, exs, tmp_path)
    assert len(kept) == 500 and dropped == {}


def test_math500_agrees_with_math_verify_on_the_gold_solutions(m500, m500_problems):
    """Reference equivalence: math-verify's own extraction of the whole solution, verified against the
    gold, gives the same verdict as our extraction + verifier on every MATH-500 problem."""
    from math_verify import parse, verify

    for p in m500_problems:
        theirs = bool(verify(parse(f"${p.answer}$"), parse(p.meta["solution"])))
        ours = m500.score(p.meta["solution"], p.answer)[1]
        assert ours == theirs, (p.id, p.answer)
        # and without our canonical-string shortcut, math-verify alone on our extraction
        assert mathverify.math_verify_equal(m500.extract_answer(p.meta["solution"]), p.answer, 5), (p.id, p.answer)


# ----------------------------------------------------------------------------- rewrites of real golds


_FRAC = re.compile(r"^(-?)\\frac\{?(\d+)\}?\{?(\d+)\}?$")


def _equivalent_rewrites(g: str) -> dict[str, str]:
    """How a student might write the same answer (each one a full final-answer text)."""
    c = canonical(g)
    v = {"boxed in a sentence": f"So we get $\\boxed{{{g}}}$.", "answer is": f"Thus the final answer is ${g}$.",
         "bare": f"${g}$", "no spaces": re.sub(r"(?<![a-zA-Z])\s+", "", g)}
    if "\\frac" in g:
        v["dfrac"] = g.replace("\\frac", "\\dfrac")
    if "\\left" in g:
        v["no left/right"] = g.replace("\\left", "").replace("\\right", "")
    if not re.search(r"[,=]|\\text", g):
        v["x = "] = f"\\boxed{{x = {g}}}"
    if re.fullmatch(r"-?\d+", c):
        v["trailing .0"] = f"\\boxed{{{c}.0}}"
    m = _FRAC.match(c)
    if m:
        v["a/b"] = f"\\boxed{{{m[1]}{m[2]}/{m[3]}}}"
        f = Fraction(int(m[2]), int(m[3]))
        if 10**6 % f.denominator == 0:
            v["decimal"] = f"\\boxed{{{m[1]}{float(f)}}}"
    return v


def _wrong_rewrites(g: str) -> dict[str, str]:
    c = canonical(g)
    v = {}
    if re.fullmatch(r"-?\d+", c):
        v["n + 1"] = str(int(c) + 1)
        v["10 n"] = str(int(c) * 10) if int(c) else "1"
    m = _FRAC.match(c)
    if m and m[2] != m[3]:
        v["inverted"] = f"{m[1]}\\frac{{{m[3]}}}{{{m[2]}}}"
    m = re.fullmatch(r"\((-?[^,()]+),(-?[^,()]+)\)", c)
    if m and canonical(m[1]) != canonical(m[2]):
        v["pair swapped"] = f"({m[2]},{m[1]})"
    if "\\pi" in c:
        v["no pi"] = g.replace("\\pi", "")
    if "\\sqrt" in c:
        v["no sqrt"] = g.replace("\\sqrt", "")
    if re.search(r"(?<![a-zA-Z\\])x", c):
        v["x -> y"] = re.sub(r"(?<![a-zA-Z\\])x", "y", g)
    return {k: f"\\boxed{{{w}}}" for k, w in v.items()}


def test_equivalent_rewrites_of_every_math500_gold_are_credited(m500, m500_problems):
    fails, n = [], 0
    for p in m500_problems:
        for kind, text in _equivalent_rewrites(p.answer).items():
            n += 1
            pred, ok = m500.score(text, p.answer)
            if not ok:
                fails.append((p.id, kind, p.answer, pred))
    assert n > 2500 and fails == [], fails[:20]


def test_wrong_rewrites_of_math500_golds_are_not_credited(m500, m500_problems):
    wrong, n = [], 0
    for p in m500_problems:
        for kind, text in _wrong_rewrites(p.answer).items():
            n += 1
            if m500.score(text, p.answer)[1]:
                wrong.append((p.id, kind, p.answer, text))
    assert n > 700 and wrong == [], wrong[:20]


def test_another_problems_gold_is_not_credited(m500_problems, m500):
    """Each gold against its neighbour's: credited only where the two answers really are equal."""
    credited = []
    for p, q in zip(m500_problems, m500_problems[1:] + m500_problems[:1]):
        if m500.verify(q.answer, p.answer):
            credited.append((p.answer, q.answer))
    assert sorted(credited) == [("3", "3"), ("5", "x=5"), ("7", "7")], credited


@pytest.mark.parametrize("text, expected", [
    ("so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("\\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{$5$}", "5"),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
    ("The answer is: \\frac{3}{4}", "\\frac{3}{4}"),
    ("The answer is:\n$$x^2 + 1$$", "x^2 + 1"),
    ("The answer is $\\$32,\\!348$.", "\\$32,\\!348"),
    ("The answer is **42**.", "42"),
    ("The answer is .5", ".5"),
    ("$\\frac{1}{2}$", "\\frac{1}{2}"),
    ("x = 6 - 5i", "x = 6 - 5i"),
    ("\\text{Evelyn}", "\\text{Evelyn}"),
    ("She has 18 apples left.", "18"),                 # plain text: the last number
    ("We get $\\frac{1}{2}$ of the cake.", None),       # LaTeX: never guess "2"
    ("I do not know", None),
    ("\\boxed{}", None),
    ("\\boxed{5", None),                              # unclosed
    ("", None),
])
def test_extract_math_answer(text, expected):
    assert extract_math_answer(text) == expected


@pytest.mark.parametrize("pred, gold, credited", [
    ("10080", "10,\\!080", True),
    ("\\$32,348", "\\$32,\\!348", True),
    ("Evelyn", "\\text{Evelyn}", True),
    ("C", "\\text{(C)}", True),
    ("B", "\\text{(A)}", False),
    ("90", "90^\\circ", True),
    ("0.5", "\\frac12", True),
    ("50\\%", "\\frac12", True),
    ("x=2", "2", True),
    ("2, 1", "1,2", True),
    ("[2,5]", "[2,5)", False),
    ("x \\in [2,5)", "[2,5)", True),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}", True),
    ("3.14", "\\pi", False),
    ("5.4", "5.4 \\text{ cents}", True),
    ("2x+3", "y=2x+3", True),
    ("1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}", True),
    ("1+\\sqrt{19}", "1 \\pm \\sqrt{19}", False),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1\\\\2\\end{pmatrix}", True),
    ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("", "5", False),
    ("5", "", False),
])
def test_math_verifier_cases(m500, pred, gold, credited):
    assert m500.verify(pred, gold) is credited


def test_none_is_never_credited(m500):
    assert m500.verify(None, "1") is False and m500.verify("1", None) is False
    assert m500.score("<think>\n... \\boxed{1}", "1") == (None, False)  # truncated trace


# ----------------------------------------------------------------------------- AIME / AMC


# (task, records) as the READMEs of ../shared/data/<task> state
COMPETITIONS = [("aime24", 30), ("aime25", 30), ("amc23", 40)]


def _raw_rows(shared_data: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (shared_data / name / "test.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def competitions(shared_data):
    out = {}
    for name, _ in COMPETITIONS:
        task = get_task(name, data_dir=str(shared_data / name))
        out[name] = (task, task.problems("test"))
    return out


@pytest.mark.parametrize("name,count", COMPETITIONS)
def test_every_competition_record_loads(competitions, shared_data, name, count):
    task, probs = competitions[name]
    rows = _raw_rows(shared_data, name)
    assert len(probs) == len(rows) == count
    assert [p.id for p in probs] == [f"{name}/test/{r['id']}" for r in rows]
    assert len({p.id for p in probs}) == count
    assert [p.question for p in probs] == [r["problem"] for r in rows]
    assert task.levels == (1,) and {p.level for p in probs} == {1}
    assert all(p.answer is not None for p in probs)
    assert task.problems("test", levels=[2]) == []  # level 1 is the only level
    sample = task.problems("test", n=5, seed=3)
    assert len(sample) == 5 and [p.id for p in sample] == [p.id for p in task.problems("test", n=5, seed=3)]


def test_competition_golds_follow_the_readmes(competitions, shared_data):
    rows = _raw_rows(shared_data, "aime24")
    assert sum(r["answer"].startswith("0") for r in rows) == 7  # zero-padded strings -> the integer
    assert [p.answer for p in competitions["aime24"][1]] == [str(int(r["answer"])) for r in rows]
    padded = {p.id: p.answer for p in competitions["aime24"][1]}
    assert padded["aime24/test/67"] == "25" and padded["aime24/test/75"] == "73"  # "025", "073" in the file
    assert [p.answer for p in competitions["aime25"][1]] == [str(r["answer"]) for r in _raw_rows(shared_data, "aime25")]
    amc = [p.answer for p in competitions["amc23"][1]]
    assert amc == [str(int(r["answer"])) for r in _raw_rows(shared_data, "amc23")]
    assert amc[0] == "27" and "-1" in amc  # 27.0 and -1.0 in the file


def test_competition_meta_and_reference_traces(competitions, shared_data):
    aime24, aime25, amc23 = (competitions[n] for n in ("aime24", "aime25", "amc23"))
    rows = _raw_rows(shared_data, "aime24")
    assert [p.meta for p in aime24[1]] == [{"url": r["url"], "solution": r["solution"]} for r in rows]
    assert all(set(p.meta) == {"url"} for p in amc23[1]) and all(p.meta == {} for p in aime25[1])
    for p in aime24[1]:  # every AIME 2024 record has a solution: its reference trace is credited
        tr = aime24[0].reference_trace(p)
        assert tr is not None and tr.reasoning == p.meta["solution"]
        assert aime24[0].score(format_assistant(tr.reasoning, tr.answer), p.answer)[1], p.id
    assert aime25[0].reference_trace(aime25[1][0]) is None


@pytest.mark.parametrize("name,count", COMPETITIONS)
def test_every_competition_gold_is_credited_and_wrong_answers_are_not(competitions, name, count):
    task, probs = competitions[name]
    for p in probs:
        g = int(p.answer)
        for final in (f"The answer is \\boxed{{{p.answer}}}.", f"The answer is \\boxed{{{g:03d}}}.",
                      f"So the answer is $\\boxed{{{g}.0}}$", f"The answer is {p.answer}."):
            pred, ok = task.score(_completion(final), p.answer)
            assert ok, (p.id, final, pred)
        for wrong in (f"The answer is \\boxed{{{g + 1}}}.", f"The answer is \\boxed{{{-g if g else 1}}}.",
                      f"\\boxed{{{p.answer}}} is tempting, but the answer is \\boxed{{{g + 10}}}."):
            assert not task.score(_completion(wrong), p.answer)[1], (p.id, wrong)
        assert task.score(f"<think>\nit is \\boxed{{{p.answer}}} ...", p.answer) == (None, False)  # truncated
        assert task.score(_completion("I could not solve it."), p.answer) == (None, False)


@pytest.mark.parametrize("pred,gold,credited", [
    ("025", "25", True), ("25.0", "25", True), ("25.", "25", True), ("1,625", "1625", True),
    ("$-1$", "-1", True), ("\\text{27}", "27", True),
    ("26", "25", False), ("-1", "1", False), ("250", "25", False), ("2.5", "25", False),
    ("\\frac{5}{2}", "2.5", True), ("\\frac{1}{2}", "2.5", False),  # not plain numbers: math_equal
    (None, "25", False), ("25", None, False),
])
def test_competition_verifier(competitions, pred, gold, credited):
    assert competitions["amc23"][0].verify(pred, gold) is credited


def test_plain_numbers_are_compared_without_math_verify(competitions, monkeypatch):
    """Integers are compared as integers; only answers that are not plain numbers reach math_equal."""
    calls = []
    monkeypatch.setattr(tmath, "math_equal", lambda p, g: calls.append((p, g)) or False)
    task = competitions["aime24"][0]
    assert task.verify("025", "25") and task.verify("25.0", "25") and not task.verify("24", "25")
    assert calls == []
    assert not task.verify("\\frac{50}{2}", "25") and calls == [("\\frac{50}{2}", "25")]


def test_competition_gold_types_and_bad_rows(tmp_path):
    rows = [{"id": "a", "problem": "q", "answer": 2.5}, {"id": "b", "problem": "q", "answer": "007"},
            {"id": "c", "problem": "q", "answer": 12}, {"id": "d", "problem": "q", "answer": ""},
            {"id": "e", "problem": "q", "answer": "\\frac{1}{2}"}, {"problem": "no id", "answer": 3.0}]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    probs = get_task("amc23", data_dir=str(tmp_path)).problems("test")
    assert [(p.id, p.answer) for p in probs] == [
        ("amc23/test/a", "2.5"), ("amc23/test/b", "7"), ("amc23/test/c", "12"), ("amc23/test/d", None),
        ("amc23/test/e", "\\frac{1}{2}"), ("amc23/test/5", "3")]
    assert not get_task("amc23").verify("0", None)  # unparseable gold is never credited
    for bad, field in ([{"id": 1, "problem": "q"}, "answer"], [{"id": 1, "problem": "q", "answer": [1]}, "answer"],
                       [{"id": 1, "problem": "q", "answer": True}, "answer"], [{"id": 1, "answer": 1}, "problem"]):
        (tmp_path / "test.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n")
        where = re.escape(f"{tmp_path / 'test.jsonl'}:2: missing or non-")
        with pytest.raises(DataError, match=f"{where}.*'{field}'"):
            get_task("aime24", data_dir=str(tmp_path)).problems("test")


@pytest.mark.parametrize("name", ["aime24", "aime25", "amc23"])
def test_competition_splits_files_and_env(name, tmp_path, monkeypatch, shared_data):
    with pytest.raises(ValueError, match="there is no split 'train', only 'test'") as e:
        get_task(name).problems("train")
    assert "do not train" in str(e.value)
    with pytest.raises(DataError) as e:
        get_task(name, data_dir=str(tmp_path)).problems("test")
    assert str(tmp_path / "test.jsonl") in str(e.value) and f"THINKLING_{name.upper()}_DIR" in str(e.value)
    monkeypatch.setenv(f"THINKLING_{name.upper()}_DIR", str(tmp_path))
    assert get_task(name).data_dir == tmp_path
    assert get_task(name, data_dir=str(shared_data / name)).data_dir == shared_data / name  # the option wins
    with pytest.raises(ValueError, match="source"):
        get_task(name, source="web")


def test_competition_hub_source_without_network(monkeypatch, shared_data, competitions):
    """source=hub asks `datasets` for the right dataset and split (a stand-in module here) and reads
    its rows alike; the AMC hub copy's ``question`` stands in for ``problem``."""
    calls = []
    hub = {"HuggingFaceH4/aime_2024": _raw_rows(shared_data, "aime24"),
           "math-ai/aime25": _raw_rows(shared_data, "aime25"),
           "math-ai/amc23": [{k: v for k, v in r.items() if k != "problem"} for r in _raw_rows(shared_data, "amc23")]}

    def load_dataset(name, split):
        calls.append((name, split))
        return hub[name]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    for name, _ in COMPETITIONS:
        got = get_task(name, source="hub").problems("test")
        assert [p.model_dump() for p in got] == [p.model_dump() for p in competitions[name][1]]
    assert calls == [("HuggingFaceH4/aime_2024", "train"), ("math-ai/aime25", "test"), ("math-ai/amc23", "test")]


def test_plain_number():
    cases = {"025": "25", "25.0": "25", "-3.50": "-3.5", "1,625": "1625", "+7": "7", "-0.0": "0", ".5": "0.5",
             "0.00001": "0.00001", "9" * 5000: "9" * 5000}
    assert {k: tmath.plain_number(k) for k in cases} == cases
    for bad in ("", "-", "1,2", "12,34", "1e5", "1/2", "x", "2x", "1.2.3", "\\frac{1}{2}"):
        assert tmath.plain_number(bad) is None, bad
