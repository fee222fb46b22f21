"""The ``jsonl`` task (a user's own benchmark) end to end on small files written here: every answer type,
splits, ids, levels and samples, a custom prompt, and every bad-input error and its file:line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.tasks import _completion
from thinkling.artifacts import DataError
from thinkling.tasks import get_task
from thinkling.tasks.spec import TaskSpec


# ----------------------------------------------------------------------------- helpers


def write(path: Path, rows: list) -> Path:
    """Rows as JSON lines; a str row is written as is (for malformed lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def jsonl(path: Path, **options):
    return get_task("jsonl", path=str(path), **options)


# ----------------------------------------------------------------------------- each answer type


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
    for final in ("A) Paris\nB) Rome\nC) Oslo", "(A) or (B)"):  # several letters, no final choice
        assert task.score(_completion(final), "B") == (None, False), final
    assert task.score(_completion("A) Paris\nB) Rome\nC) Oslo\n\nB"), "B") == ("B", True)
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
             ("Yes at first, but on reflection the answer is: no.", "No"), ("Honestly: Not Sure.", "not sure"),
             ("\\boxed{no} (yes would be wrong)", "No")]
    for final, gold in right:
        assert task.score(_completion(final), gold) == (gold, True), final
    assert not task.score(_completion("Yes."), "No")[1]
    assert task.score(_completion("Nobody knows, maybe it snows."), "No") == (None, False)
    for final in ("Yes at first, but on reflection: no.", "Answer with one of: yes, No, not sure.", "No, yes."):
        assert task.score(_completion(final), "No") == (None, False), final  # several labels, no final choice
    assert task.score(_completion("Answer with one of: yes, No, not sure.\nAnswer: No"), "No") == ("No", True)
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


@pytest.mark.parametrize("path,options,want", [
    ("data/qa.jsonl", {}, "qa"),                                  # the file's name without its extension
    ("data/{split}.jsonl", {}, "data"),                           # nothing left but {split}: the folder
    ("bench/qa_{split}.jsonl", {}, "qa"),
    ("bench/qa-{split}-v2.jsonl", {}, "qa_v2"),
    ("bench/{split}/qa.jsonl", {}, "qa"),
    ("{split}.jsonl", {}, "jsonl"),                               # nothing at all: the registry name
    ("data/qa.jsonl", {"label": " my-qa "}, "my-qa"),
])
def test_label_names_the_task(path, options, want):
    task = get_task("jsonl", path=path, answer_type="number", **options)
    assert task.label == want and task.name == "jsonl"
    assert get_task("evidence_jsonl", path=path, **options).label == ("evidence_jsonl" if want == "jsonl" else want)


def test_two_user_tasks_are_told_apart_and_keep_their_ids(tmp_path):
    write(tmp_path / "a.jsonl", [{"question": "1 + 1?", "answer": 2}])
    write(tmp_path / "b.jsonl", [{"question": "2 + 2?", "answer": 4}])
    a = TaskSpec(name="jsonl", split="test", options={"path": str(tmp_path / "a.jsonl"), "answer_type": "number"})
    b = TaskSpec(name="jsonl", split="test", options={"path": str(tmp_path / "b.jsonl"), "answer_type": "number",
                                                      "label": "second"})
    assert (a.build().label, b.build().label) == ("a", "second")
    assert [p.id for p in a.problems()] == [p.id for p in b.problems()] == ["jsonl/test/1"]  # ids unchanged
    assert {p.task for p in a.problems() + b.problems()} == {"jsonl"}


@pytest.mark.parametrize("label", ["", "  ", 3])
def test_bad_label(label):
    with pytest.raises(ValueError, match="the option 'label' must be a non-empty string"):
        get_task("jsonl", path="d.jsonl", answer_type="number", label=label)


# ----------------------------------------------------------------------------- bad input


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
