"""The ``evidence_jsonl`` task (a user's own document-grounded questions under the evidence regimes): it
loads, scores, and rejects bad rows by file:line."""

from __future__ import annotations

import json
import re

import pytest

from helpers.tasks import query_of
from thinkling.artifacts import DataError
from thinkling.tasks import get_task
from thinkling.tasks.evidence import REGIMES

ROWS = [
    {"id": "moons", "question": "How many moons does Zarn have?", "answer": "3",
     "concepts": ["Zarn has 3 moons."], "related_docs": ["Zarn is a cold planet. Zarn has 3 moons."],
     "distractor_docs": ["Vell has 5 moons.", "Zarn's sun is red.", "Quor has 8 moons."]},
    {"question": "How many bridges cross the Sel in Tarn?", "answer": 12, "level": 4,
     "concepts": ["Tarn lies on the Sel.", "Tarn has 12 bridges."],
     "related_docs": ["Tarn lies on the Sel, a wide river.", "The town of Tarn has 12 bridges."],
     "distractor_docs": ["Mell has 7 bridges."]},
    {"id": 7, "question": "What is 1200 plus 200 in Quorish units?", "answer": "1,400",
     "concepts": ["Quorish units are ordinary."], "related_docs": ["In Quor, units are ordinary."],
     "distractor_docs": []},
]


def write_rows(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_user_jsonl_end_to_end(tmp_path):
    write_rows(tmp_path / "train.jsonl", ROWS)
    write_rows(tmp_path / "test.jsonl", ROWS[:1])
    path = str(tmp_path / "{split}.jsonl")
    by = {r: get_task("evidence_jsonl", path=path, regime=r).problems("train") for r in REGIMES}
    full = by["full"]
    assert [p.id for p in full] == ["evidence_jsonl/train/moons", "evidence_jsonl/train/1",
                                    "evidence_jsonl/train/7"]
    assert [p.answer for p in full] == ["3", "12", "1400"]
    assert [p.level for p in full] == [1, 4, 1]  # default: the number of concepts
    for r, probs in by.items():
        assert [(p.id, p.answer, p.level) for p in probs] == [(p.id, p.answer, p.level) for p in full]
        for p, row in zip(probs, ROWS):
            assert p.meta["regime"] == r and p.meta["concepts"] == row["concepts"]
            assert p.meta["related_docs"] == row["related_docs"]
            assert p.meta["distractor_docs"] == row["distractor_docs"]
            assert p.meta["order"] == full[ROWS.index(row)].meta["order"]
            q = p.question
            assert query_of(q) == row["question"]
            present = {
                "concepts": any(f"- {c}" in q for c in row["concepts"]),
                "related": all(d in q for d in row["related_docs"]),
                "distractors": any(d in q for d in row["distractor_docs"]),
            }
            want = {"instruction": (False, False, False), "concepts": (True, False, False),
                    "related": (False, True, False), "full": (False, True, bool(row["distractor_docs"]))}[r]
            assert tuple(present.values()) == want, (r, q)
            if r == "instruction":
                assert q == f"Question: {row['question']}\nAnswer with a number."
    p = full[0]
    shown = re.findall(r"^\[\d+\] (.*)$", p.question, re.M)
    docs = ROWS[0]["related_docs"] + ROWS[0]["distractor_docs"]
    assert shown == [docs[i] for i in p.meta["order"]] and sorted(shown) == sorted(docs)
    # the test split reads test.jsonl; n samples, levels filter
    t = get_task("evidence_jsonl", path=path)
    assert [p.id for p in t.problems("test")] == ["evidence_jsonl/test/moons"]
    assert len(t.problems("train", n=2)) == 2 and t.problems("train", n=2) == t.problems("train", n=2)
    assert [p.id for p in t.problems("train", levels=[4])] == ["evidence_jsonl/train/1"]
    # a path without {split} serves every split
    one = get_task("evidence_jsonl", path=str(tmp_path / "train.jsonl"))
    assert len(one.problems("test")) == len(one.problems("train")) == 3


@pytest.mark.parametrize("completion, gold, credited", [
    ("<think>\nx\n</think>\nThe answer is 12.", "12", True),
    ("12 bridges, so \\boxed{12}", "12", True),
    ("\\boxed{12} but maybe 13", "12", True),            # boxed wins
    ("\\boxed{12.0}", "12", True),
    ("it is 12, so \\boxed{\\frac{1}{2}}", "2", False),  # a box must hold just a number
    ("\\boxed{\\frac{1}{2}}", "12", False),
    ("The answer is 0.50", "0.5", True),
    ("first 5, then 12.0", "12", True),
    ("The answer is 1,400", "1400", True),
    ("The answer is 13", "12", False),
    ("no idea", "12", False),
    ("12", None, False),
    ("<think>\n... 12", "12", False),                     # truncated
])
def test_user_jsonl_number_verifier(tmp_path, completion, gold, credited):
    t = get_task("evidence_jsonl", path=str(tmp_path / "x.jsonl"))
    assert t.score(completion, gold)[1] is credited


LABEL_ROWS = [
    {"question": "Which town hosts the Vorl festival?", "answer": "Brenna", "concepts": ["Vorl is in Brenna."],
     "related_docs": ["The Vorl festival is in Brenna."], "distractor_docs": ["The Tamsk festival is in Ostra."]},
    {"question": "Who wrote the Sel song?", "answer": "The Old Poet.", "concepts": ["The old poet wrote it."],
     "related_docs": ["The old poet wrote the Sel song."], "distractor_docs": []},
]


@pytest.mark.parametrize("answer_type", ["label", "text"])
def test_user_jsonl_label_and_text_answers(tmp_path, answer_type):
    write_rows(tmp_path / "d.jsonl", LABEL_ROWS)
    t = get_task("evidence_jsonl", path=str(tmp_path / "d.jsonl"), answer_type=answer_type)
    brenna, poet = t.problems("train")
    assert (brenna.answer, poet.answer) == ("brenna", "the old poet")
    assert brenna.question.endswith("Give the final answer on the last line.")
    for text in ("<think>\nOstra? no.\n</think>\nIt is in\nBrenna", "Answer: **Brenna**.", "\\boxed{BRENNA}",
                 "Ostra was wrong.\nThe answer is brenna"):
        assert t.score(text, brenna.answer) == ("brenna", True), text
    for text in ("Ostra", "Brenna\nOstra", "\\boxed{Ostra} Brenna", "Brenna town", ""):
        assert t.score(text, brenna.answer)[1] is False, text
    assert t.score("the  old\tpoet", poet.answer)[1] is True


GOOD = ROWS[0]


def without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize("bad, needle", [
    (without("question"), "question"),
    (without("answer"), "answer"),
    ({**GOOD, "answer": "three"}, "answer"),
    ({**GOOD, "answer": True}, "answer"),
    (without("concepts"), "concepts"),
    ({**GOOD, "concepts": "Zarn has 3 moons."}, "concepts"),
    ({**GOOD, "concepts": ["Zarn has 3 moons.", 3]}, "concepts"),
    ({**GOOD, "concepts": []}, "concepts"),
    (without("related_docs"), "related_docs"),
    ({**GOOD, "related_docs": []}, "related_docs"),
    (without("distractor_docs"), "distractor_docs"),
    ({**GOOD, "distractor_docs": "Vell has 5 moons."}, "distractor_docs"),
    ({**GOOD, "level": 0}, "level"),
    ({**GOOD, "level": "2"}, "level"),
    ({**GOOD, "id": True}, "id"),
    ({**GOOD, "id": "first"}, "duplicate id"),
    ("{not json", "malformed JSON"),
    ('["a list"]', "JSON object"),
])
def test_user_jsonl_bad_rows_name_file_and_line(tmp_path, bad, needle):
    path = tmp_path / "train.jsonl"
    # line 1 good, line 2 blank, line 3 the bad row
    bad_line = bad if isinstance(bad, str) else json.dumps(bad)
    path.write_text(json.dumps({**GOOD, "id": "first"}) + "\n\n" + bad_line + "\n")
    with pytest.raises(DataError) as e:
        get_task("evidence_jsonl", path=str(tmp_path / "{split}.jsonl")).problems("train")
    msg = str(e.value)
    assert f"{path}:3" in msg and needle in msg, msg
    if needle == "duplicate id":
        assert f"{path}:1" in msg


@pytest.mark.parametrize("answer_type", ["label", "text"])
def test_user_jsonl_label_answers_must_be_nonempty_strings(tmp_path, answer_type):
    path = tmp_path / "d.jsonl"
    for bad in ({**GOOD, "answer": 3}, {**GOOD, "answer": "  ."}):
        write_rows(path, [GOOD, bad])
        with pytest.raises(DataError) as e:
            get_task("evidence_jsonl", path=str(path), answer_type=answer_type).problems("train")
        assert f"{path}:2" in str(e.value) and "answer" in str(e.value)


def test_user_jsonl_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError) as e:
        get_task("evidence_jsonl", path=str(tmp_path / "{split}.jsonl")).problems("test")
    assert str(tmp_path / "test.jsonl") in str(e.value)
