"""The report's inputs (``thinkling report DIR|results.json ...``): merged, old samples completed, and a
missing or broken file named."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from helpers.report import fake_rows, make_row, write_eval_dir
from thinkling.report import load_inputs


def test_cli_report_merges_inputs_and_names_missing_or_broken_files(tmp_path):
    from thinkling.cli import app

    a = write_eval_dir(tmp_path / "a")
    extra = [make_row("tiny", "arithmetic", "all", "greedy", 3, 10, 20.0),
             make_row("concise", "arithmetic", "all", "greedy", 1, 120, 1.0, training="multi-task")]  # replaces a's
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps(extra))
    runner = CliRunner()
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(a), str(tmp_path / "b" / "results.json"), "--out", str(out),
                            "--title", "merged", "--max-samples", "5"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert md.startswith("# merged") and "| tiny |" in md and "1 result row(s) appeared in more than one input" in md
    assert "| 0.8 [" in md  # the replacing row (1/120) is shown, not a's
    page = (out / "report.html").read_text()
    assert "at most 5 per model, task and strategy" in page and "65 more left out" in page
    data = load_inputs([a, tmp_path / "b" / "results.json"])
    assert len(data.rows) == len(fake_rows()) + 1 and data.replaced == 1
    # an old sample: task from its problem id, strategy from the rows, reasoning/answer from the completion
    old = [s for s in data.samples if s["problem_id"] == "arithmetic/test/L1/old"][0]
    assert (old["task"], old["strategy"], old["reasoning"], old["answer_text"]) == ("arithmetic", "greedy", "nine", "9")

    missing = tmp_path / "nope"
    r = runner.invoke(app, ["report", str(a), str(missing), "--out", str(out)])
    assert r.exit_code == 2 and str(missing) in r.output and "not found" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["report", str(tmp_path / "empty"), "--out", str(out)])
    assert r.exit_code == 2 and f"{tmp_path / 'empty' / 'results.json'}: not found" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text('[{"model": "m",')
    r = runner.invoke(app, ["report", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and f"{bad / 'results.json'}: not valid JSON" in r.output
    (bad / "results.json").write_text('[{"model": "m"}]')
    r = runner.invoke(app, ["report", str(bad / "results.json"), "--out", str(out)])
    assert r.exit_code == 2 and "row 0: missing field(s) task, level, n, accuracy" in r.output
    (bad / "results.json").write_text(json.dumps(extra))
    (bad / "samples.jsonl").write_text('{"model": "m"}\n{oops\n')
    r = runner.invoke(app, ["report", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and f"{bad / 'samples.jsonl'}:2: malformed JSON" in r.output
