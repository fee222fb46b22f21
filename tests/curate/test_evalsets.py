"""The evaluation sets decontamination checks against, read through their tasks from the real files:
every split with unique ids, unchanged since they were read by decontamination's own readers, a
missing file named, and each task's data-dir rule followed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from thinkling.artifacts import DataError
from thinkling.curate.overlap import EVAL_SETS, default_data_dir, load_eval_sets

EXPECTED_SIZES = {"gsm8k": 1319, "math500": 500, "math": 5000, "aime24": 30, "aime25": 30, "amc23": 40,
                  "folio": 204, "proofwriter": 600, "prontoqa": 500, "logical_deduction": 300,
                  "knights_and_knaves": 500, "arc": 3548}


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
