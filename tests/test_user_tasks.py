"""AIME 2024/2025 and AMC 2023 on the real files in ../shared/data, and the ``jsonl`` task (a user's own
benchmark) end to end on small files written here, including every bad-input error and its file:line."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from thinkling.artifacts import DataError
from thinkling.config import describe_fields
from thinkling.format import format_assistant
from thinkling.tasks import get_task, task_names
from thinkling.tasks import math as tmath
from thinkling.tasks.spec import TaskSpec

# (task, records) as the READMEs of ../shared/data/<task> state
COMPETITIONS = [("aime24", 30), ("aime25", 30), ("amc23", 40)]


def _raw_rows(shared_data: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (shared_data / name / "test.jsonl").read_text().splitlines()]


def _completion(final: str) -> str:
    return f"<think>\nLet me work it out: 2 + 3 = 5, and 17 more.\n</think>\n{final}"


@pytest.fixture(scope="module")
def competitions(shared_data):
    out = {}
    for name, _ in COMPETITIONS:
        task = get_task(name, data_dir=str(shared_data / name))
        out[name] = (task, task.problems("test"))
    return out


# ----------------------------------------------------------------------------- AIME / AMC


def test_registered():
    assert {"aime24", "aime25", "amc23", "jsonl"} <= set(task_names())
    help_text = dict((k, d) for k, _, d in describe_fields(TaskSpec))["name"]  # what --help says of task.name
    assert all(n in help_text for n in ("aime24", "aime25", "amc23", "jsonl"))


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


# ----------------------------------------------------------------------------- jsonl: helpers


def write(path: Path, rows: list) -> Path:
    """Rows as JSON lines; a str row is written as is (for malformed lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def jsonl(path: Path, **options):
    return get_task("jsonl", path=str(path), **options)


# ----------------------------------------------------------------------------- jsonl: each answer type


def test_number_end_to_end(tmp_path):
    f = write(tmp_path / "data.jsonl", [
        {"question": "How many legs do 2 dogs have?", "answer": 8},
        {"question": "What is 1234 + 0.5?", "answer": "1,234.50"},
        {"question": "Half of 6?", "answer": 3.0},
        {"question": "Tiny?", "answer": 1e-05},
        {"question": "Below zero?", "answer": "-2"},
    ])
    task = jsonl(f, answer_type="number")
    probs = task.problems("test")
    assert [p.id for p in probs] == [f"jsonl/test/{i}" for i in range(1, 6)]  # line numbers
    assert [p.answer for p in probs] == ["8", "1234.5", "3", "0.00001", "-2"]
    assert task.answer_type == "number" and task.levels == (1,) and {p.level for p in probs} == {1}
    assert probs[0].question.startswith("How many legs do 2 dogs have?\n\n") and "\\boxed{}" in probs[0].question
    assert task.messages(probs[0]) == [{"role": "user", "content": probs[0].question}]
    gold = {p.question.split("\n")[0]: p.answer for p in probs}
    right = [("How many legs do 2 dogs have?", "2 dogs, 4 legs each: \\boxed{8}"),
             ("How many legs do 2 dogs have?", "That makes 8.0 legs."),
             ("What is 1234 + 0.5?", "The answer is 1,234.5"),
             ("What is 1234 + 0.5?", "\\boxed{\\$1,234.50}"),
             ("Half of 6?", "\\boxed{3} (checked: 3 + 3 = 6)"),  # the box wins over later numbers
             ("Tiny?", "\\boxed{0.000010}"),
             ("Below zero?", "It ends at -2 degrees.")]
    for q, final in right:
        assert task.score(_completion(final), gold[q])[1], (q, final)
    wrong = [("How many legs do 2 dogs have?", "\\boxed{6}"),
             ("How many legs do 2 dogs have?", "\\boxed{\\frac{1}{8}}"),  # no number is guessed out of LaTeX
             ("Half of 6?", "It is 3, no wait, 4."),
             ("Below zero?", "It ends at 2 degrees.")]
    for q, final in wrong:
        assert not task.score(_completion(final), gold[q])[1], (q, final)
    assert task.score(_completion("I do not know."), "8") == (None, False)
    assert task.score(_completion("\\boxed{eight}"), "8") == (None, False)
    assert task.score("<think>\n2 dogs, so 8", "8") == (None, False)  # unclosed reasoning: no final answer


def test_math_end_to_end(tmp_path):
    f = write(tmp_path / "data.jsonl", [{"question": "Solve 2x = 1.", "answer": "\\frac{1}{2}"},
                                        {"question": "3 + 4?", "answer": 7}])
    task = jsonl(f, answer_type="math")
    p1, p2 = task.problems("test")
    assert (p1.answer, p2.answer) == ("\\frac{1}{2}", "7")
    assert "\\boxed{}" in p1.question
    for final in ("x = \\boxed{\\dfrac{1}{2}}", "The answer is $0.5$.", "\\boxed{\\frac12}"):
        assert task.score(_completion(final), p1.answer)[1], final
    assert task.score(_completion("\\boxed{7}"), p2.answer)[1]
    for final in ("\\boxed{\\frac{1}{3}}", "\\boxed{2}"):
        assert not task.score(_completion(final), p1.answer)[1], final
    assert task.score(_completion("I give up"), p1.answer) == (None, False)


def test_choice_end_to_end(tmp_path):
    f = write(tmp_path / "data.jsonl", [
        {"q": "Capital of Italy?", "opts": ["Paris", "Rome", "Oslo"], "gold": "Rome"},
        {"q": "Largest planet?", "opts": ["Mars", "Venus", "Jupiter", "Earth"], "gold": 2},
        {"q": "2 + 2?", "opts": ["3", "4"], "gold": "B"},
    ])
    task = jsonl(f, answer_type="choice", question_field="q", answer_field="gold", choices_field="opts")
    probs = task.problems("test")
    assert [p.answer for p in probs] == ["B", "C", "B"]
    assert probs[0].question == ("Capital of Italy?\n\nOptions:\nA) Paris\nB) Rome\nC) Oslo\n\n"
                                 "Answer with the letter of the correct option.")
    assert probs[1].meta == {"options": ["Mars", "Venus", "Jupiter", "Earth"]}
    for final in ("The answer is (B).", "Answer: B", "B", "**B) Rome**", "A is wrong; the answer is B."):
        assert task.score(_completion(final), "B")[1], final
    for final in ("The answer is (A).", "Not B: the answer is C."):
        assert not task.score(_completion(final), "B")[1], final
    assert task.score(_completion("Rome, I think."), "B") == (None, False)  # no letter: no answer


def test_label_end_to_end(tmp_path):
    f = write(tmp_path / "data.jsonl", [
        {"question": "Is snow cold?", "answer": "yes"},
        {"question": "Is fire cold?", "answer": "No"},
        {"question": "Will it rain on 1 May 2040?", "answer": "not sure"},
        {"question": "Is ice cold?", "answer": "YES"},
    ])
    task = jsonl(f, answer_type="label")
    assert task.labels == ("yes", "No", "not sure")  # the file's golds, first spelling, one per case-folding
    probs = task.problems("test")
    assert [p.answer for p in probs] == ["yes", "No", "not sure", "yes"]
    assert probs[0].question == "Is snow cold?\n\nAnswer with one of: yes, No, not sure."
    right = [("No, it is hot.", "No"), ("I know it is cold, so YES.", "yes"),  # "no" inside "know" is no mention
             ("Yes at first, but on reflection: no.", "No"), ("Honestly: Not Sure.", "not sure"),
             ("\\boxed{no} (yes would be wrong)", "No")]
    for final, gold in right:
        assert task.score(_completion(final), gold) == (gold, True), final
    assert not task.score(_completion("Yes."), "No")[1]
    assert task.score(_completion("Nobody knows, maybe it snows."), "No") == (None, False)
    assert task.score("<think>\nNo", "No") == (None, False)

    given = jsonl(f, answer_type="label", labels=["Yes", "No", "Not sure", "Maybe"])
    assert [p.answer for p in given.problems("dev")] == ["Yes", "No", "Not sure", "Yes"]  # canonical spelling
    assert given.extract_answer("maybe") == "Maybe"


def test_label_set_is_known_before_problems_are_loaded(tmp_path):
    """Curation scores traces with a freshly built task: the labels come from the file, not from state."""
    f = write(tmp_path / "data.jsonl", [{"question": "q", "answer": "entailment"},
                                        {"question": "q", "answer": "contradiction"}])
    assert jsonl(f, answer_type="label").extract_answer("so: contradiction") == "contradiction"


def test_split_substitution_ids_levels_and_samples(tmp_path):
    write(tmp_path / "train.jsonl", [{"uid": f"t{i}", "question": f"{i} + 1?", "answer": i + 1, "lv": 1 + i % 3}
                                     for i in range(12)])
    write(tmp_path / "test.jsonl", [{"uid": "x", "question": "9 + 9?", "answer": 18, "lv": 2}])
    task = jsonl(tmp_path / "{split}.jsonl", answer_type="number", id_field="uid", level_field="lv")
    assert task.levels == (1,)  # nothing loaded yet
    (t,) = task.problems("test")
    assert (t.id, t.split, t.answer, t.level) == ("jsonl/test/x", "test", "18", 2)
    train = task.problems("train")
    assert [p.id for p in train] == [f"jsonl/train/t{i}" for i in range(12)] and task.levels == (1, 2, 3)
    assert [p.level for p in task.problems("train", levels=[3])] == [3] * 4
    a = task.problems("train", n=5, seed=1)
    assert len(a) == 5 and [p.id for p in a] == [p.id for p in task.problems("train", n=5, seed=1)]
    assert [p.id for p in a] != [p.id for p in task.problems("train", n=5, seed=2)]
    assert [p.id for p in a] == [p.id for p in train if p in a]  # file order
    with pytest.raises(DataError) as e:
        task.problems("dev")
    msg = str(e.value)
    assert str(tmp_path / "dev.jsonl") in msg and "split 'dev'" in msg and "task.options.path" in msg

    fixed = jsonl(tmp_path / "test.jsonl", answer_type="number")  # no {split}: the split is only a label
    assert [p.id for p in fixed.problems("validation")] == ["jsonl/validation/1"]


def test_custom_prompt_and_config_spec(tmp_path):
    f = write(tmp_path / "data.jsonl", [{"question": "Pick the even one.", "choices": ["3", "4"], "answer": "4"}])
    spec = TaskSpec(name="jsonl", split="test", options={
        "path": str(f), "answer_type": "choice", "choices_field": "choices",
        "prompt": "Q: {question}\n{options}\nReply with A or B."})
    (p,) = spec.problems()
    assert p.question == "Q: Pick the even one.\nA) 3\nB) 4\nReply with A or B." and p.answer == "B"
    assert spec.build().score(_completion("B"), p.answer) == ("B", True)


# ----------------------------------------------------------------------------- jsonl: bad input


@pytest.mark.parametrize("options,rows,line,message", [
    ({"answer_type": "number"}, [{"question": "q", "answer": 1}, {"question": "q"}], 2,
     "missing field 'answer'"),
    ({"answer_type": "number", "answer_field": "gold"}, [{"question": "q", "answer": 1}], 1,
     "missing field 'gold'"),
    ({"answer_type": "number"}, [{"question": "q", "answer": 1}, {"answer": 1}], 2,
     "missing or non-str field 'question'"),
    ({"answer_type": "number"}, [{"question": "q", "answer": 1}, "{\"question\": \"q\", ", {"question": "q"}], 2,
     "malformed JSON"),
    ({"answer_type": "number"}, [{"question": "q", "answer": 1}, [1, 2]], 2, "expected a JSON object"),
    ({"answer_type": "number"}, [{"question": "q", "answer": 1}, {"question": "q", "answer": 2},
                                 {"question": "q", "answer": "seven"}], 3,
     "field 'answer' is 'seven', which is not a number (answer_type=number)"),
    ({"answer_type": "number"}, [{"question": "q", "answer": True}], 1, "is True, which is not a number"),
    ({"answer_type": "math"}, [{"question": "q", "answer": "  "}], 1, "which is not a math answer"),
    ({"answer_type": "choice", "choices_field": "choices"},
     [{"question": "q", "choices": ["x", "y"], "answer": "A"}, {"question": "q", "choices": ["x", "y"], "answer": "z"}],
     2, "field 'answer' is 'z', which is not among the options"),
    ({"answer_type": "choice", "choices_field": "choices"},
     [{"question": "q", "choices": ["x", "y"], "answer": "C"}], 1, "'C', which is not among the options (a letter A-B"),
    ({"answer_type": "choice", "choices_field": "choices"},
     [{"question": "q", "choices": ["x", "y"], "answer": 2}], 1, "is 2, which is not among the options"),
    ({"answer_type": "choice", "choices_field": "choices"}, [{"question": "q", "answer": "A"}], 1,
     "missing or non-list field 'choices'"),
    ({"answer_type": "choice", "choices_field": "choices"}, [{"question": "q", "choices": ["x"], "answer": "A"}], 1,
     "field 'choices' must be a list of 2 to 26 strings"),
    ({"answer_type": "label", "labels": ["True", "False"]},
     [{"question": "q", "answer": "true"}, {"question": "q", "answer": "Unknown"}], 2,
     "field 'answer' is 'Unknown', which is not one of the labels ['True', 'False']"),
    ({"answer_type": "label"}, [{"question": "q", "answer": "yes"}, {"question": "q", "answer": 1}], 2,
     "is 1, which is not a label"),
    ({"answer_type": "number", "id_field": "uid"}, [{"uid": "a", "question": "q", "answer": 1},
                                                    {"question": "q", "answer": 1}], 2,
     "missing or non-str/int field 'uid'"),
    ({"answer_type": "number", "id_field": "uid"}, [{"uid": 7, "question": "q", "answer": 1},
                                                    {"uid": "7", "question": "q", "answer": 1}], 2,
     "duplicate id 'jsonl/test/7' (first at"),
    ({"answer_type": "number", "level_field": "lv"}, [{"lv": "hard", "question": "q", "answer": 1}], 1,
     "missing or non-int field 'lv'"),
    ({"answer_type": "number", "level_field": "lv"}, [{"lv": 0, "question": "q", "answer": 1}], 1,
     "field 'lv' must be >= 1"),
])
def test_bad_input_names_the_file_and_line(tmp_path, options, rows, line, message):
    f = write(tmp_path / "data.jsonl", rows)
    with pytest.raises(DataError, match=re.escape(f"{f}:{line}: ") + ".*" + re.escape(message)):
        jsonl(f, **options).problems("test")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nope.jsonl")) + r" not found .*task\.options\.path"):
        jsonl(tmp_path / "nope.jsonl", answer_type="number").problems("test")
    with pytest.raises(DataError, match="no problems"):
        jsonl(write(tmp_path / "empty.jsonl", []), answer_type="number").problems("test")


@pytest.mark.parametrize("options,message", [
    ({"answer_type": "text"}, "answer_type must be one of number, label, math, choice, got 'text'"),
    ({}, "answer_type must be one of number, label, math, choice, got None"),
    ({"path": None, "answer_type": "number"}, "the option 'path' is required"),
    ({"answer_type": "choice"}, "choices_field is required for answer_type=choice"),
    ({"answer_type": "number", "choices_field": "c"}, "choices_field is required for answer_type=choice and only"),
    ({"answer_type": "number", "labels": ["a"]}, "labels are only used with answer_type=label"),
    ({"answer_type": "label", "path": "d/{split}.jsonl"}, "with a '{split}' path, answer_type=label needs the labels"),
    ({"answer_type": "label", "labels": ["Yes", "yes"]}, "labels must differ other than in case"),
    ({"answer_type": "label", "labels": []}, "labels must be a non-empty list"),
    ({"answer_type": "number", "prompt": "Solve it."}, "prompt must contain {question}"),
    ({"answer_type": "number", "prompt": "{question} {options}"}, "may use only {question} for answer_type=number"),
    ({"answer_type": "choice", "choices_field": "c", "prompt": "{question} {choices}"},
     "it uses {choices}, {question}"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        get_task("jsonl", **{"path": "data.jsonl", **options})
