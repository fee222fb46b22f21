"""The ``decontaminate`` op: planted GSM8K test questions are flagged and reported with their ids."""

from __future__ import annotations

import json

from helpers.curate import cur, op_row
from thinkling.artifacts import read_jsonl
from thinkling.config import build_config
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.records import Trace


def test_decontaminate_flags_planted_gsm8k_test_questions_and_reports_their_ids(gsm8k_dir, tmp_path, captured):
    cfg = build_config(GenerateConfig, {"out": str(tmp_path / "t"), "task": {"name": "gsm8k", "n": 40,
                                        "options": {"data_dir": str(gsm8k_dir)}}, "teacher": {"backend": "reference"}})
    generate(cfg, console=captured.console)
    test_qs = [json.loads(x)["question"] for x in (gsm8k_dir / "test.jsonl").read_text().splitlines()[:5]]
    rows = read_jsonl(tmp_path / "t" / "traces.jsonl", Trace)
    planted = {}
    for j, q in enumerate(test_qs):  # five training traces whose question is a test question, one with a new number
        q = q.replace(q.split()[-1], "quickly?") if j == 4 else q
        rows[j] = rows[j].model_copy(update={"question": q})
        planted[rows[j].key] = f"gsm8k/test/{j}"
    (tmp_path / "t" / "traces.jsonl").write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in rows))
    m = cur(tmp_path / "t", tmp_path / "d", captured.console, ops=["verify", "decontaminate"],
            task_options={"data_dir": str(gsm8k_dir)}, decontaminate={"data_dir": str(gsm8k_dir.parent)})
    row = op_row(m, "decontaminate")
    # the five planted ones, and GSM8K train/20: a genuine near-duplicate of test/632 in the dataset
    # (same story with other names and numbers; one of 4 in all of GSM8K train, see docs/benchmarks.md)
    assert row["dropped"] == {"contaminated": 6} and row["kept"] == 34
    removed = {r["id"]: r["matches"][0] for r in row["report"]["removed"]}
    assert {k: v["id"] for k, v in removed.items() if k in planted} == planted
    extra = [r for r in row["report"]["removed"] if r["id"] not in planted]
    assert [(r["problem_id"], r["matches"][0]["id"]) for r in extra] == [("gsm8k/train/20", "gsm8k/test/632")]
    assert all(v["set"] == "gsm8k" for v in removed.values())
    assert row["report"]["checked_against"]["gsm8k"] == 1319 and len(row["report"]["checked_against"]) >= 10
