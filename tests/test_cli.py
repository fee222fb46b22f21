"""The command line: help texts, user errors as one line + exit 2 (no traceback), the options the
commands add (``curate --ops``, ``run --seeds``), and ``thinkling serve``'s help and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from thinkling.cli import app

runner = CliRunner()

HELP_KEYS = {
    "generate": ["task.n", "task.levels", "teacher.style", "sampling.temperature", "chunk_size", "samples"],
    "curate": ["traces", "ops", "select.max_per_problem", "compress.budget_ratio", "difficulty.method"],
    "train": ["data", "lr", "batch_size", "max_steps", "tiny.hidden_size", "save_steps", "budget_minutes"],
    "eval": ["models", "task.split", "max_new_tokens", "batch_size"],
    "run": ["out", "parallel", "generate", "curate", "train", "eval", "checks", "seeds"],
}


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_clean_error(result, *needles: str) -> None:
    """Exit code 2, a one-line 'error:' naming what is wrong, no traceback."""
    out = result.output
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    assert "error:" in out
    for n in needles:
        assert n in out, (n, out)


# ----------------------------------------------------------------------------- help


def test_top_level_help_lists_every_stage():
    r = invoke("--help")
    assert r.exit_code == 0, r.output
    for cmd in ("generate", "curate", "train", "eval", "run", "quickstart"):
        assert cmd in r.output
    bare = invoke()
    assert "Usage" in bare.output  # no arguments shows help


@pytest.mark.parametrize("cmd", sorted(HELP_KEYS))
def test_stage_help_documents_config_keys(cmd):
    r = invoke(cmd, "--help")
    assert r.exit_code == 0, r.output
    assert "Config keys" in r.output
    assert "--config" in r.output or cmd == "run"
    for key in HELP_KEYS[cmd]:
        assert f"{key} [" in r.output, (cmd, key)


def test_quickstart_help():
    r = invoke("quickstart", "--help")
    assert r.exit_code == 0, r.output
    assert "--out" in r.output and "key=value" in r.output
    assert "report.md" in r.output


def test_help_in_a_subprocess_is_fast_and_clean(cli):
    r = cli("train", "--help")
    assert r.returncode == 0, r.stderr
    assert "tiny.hidden_size [" in r.stdout and "lr [" in r.stdout


def test_cli_serve_help_and_errors(tmp_path: Path, tiny_model: Path):
    from typer.testing import CliRunner

    from thinkling.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0
    for key in ("model", "adapters", "max_batch_size", "max_queued_requests", "reasoning_parser", "batch_window_ms"):
        assert f"{key} [" in r.output, key
    for args, needle in [
        ([], "missing required key 'model'"),
        (["model=x", "bogus=1"], "unknown key 'bogus'"),
        (["model=/no/such/dir"], "model path does not exist"),
        ([f"model={tiny_model}", f"adapters=[a={tmp_path}]"], "no peft adapter"),
        ([f"model={tiny_model}", "--reasoning-parser", "deepseek"], "reasoning_parser"),
    ]:
        r = runner.invoke(app, ["serve", *args])
        assert r.exit_code == 2 and "error:" in r.output and needle in r.output, (args, r.output)
    import socket

    with socket.socket() as busy:  # a port someone else listens on: a one-line failure, before loading
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = runner.invoke(app, ["serve", f"model={tiny_model}", "--port", str(busy.getsockname()[1])])
        assert r.exit_code == 1 and "cannot listen on 127.0.0.1:" in r.output and "Traceback" not in r.output, r.output


def test_cli_serve_api_key_option_reaches_the_config(tiny_model: Path, monkeypatch):
    from typer.testing import CliRunner

    import thinkling.serve.server as server
    from thinkling.cli import app

    seen = {}
    monkeypatch.setattr(server, "serve", lambda cfg, console=None: seen.setdefault("cfg", cfg))
    monkeypatch.delenv("THINKLING_SERVE_API_KEY", raising=False)
    r = CliRunner().invoke(app, ["serve", f"model={tiny_model}", "--api-key", "s3cret"])
    assert r.exit_code == 0, r.output
    assert seen["cfg"].resolved_api_key() == "s3cret" and "s3cret" not in repr(seen["cfg"])
    assert "--api-key" in CliRunner().invoke(app, ["serve", "--help"]).output


# ----------------------------------------------------------------------------- user errors


def test_wrong_key_exits_2_naming_the_key_without_traceback(cli, tmp_path):
    r = cli("generate", f"out={tmp_path / 'g'}", "task.nme=arithmetic")
    assert r.returncode == 2, r.stderr
    assert "unknown key 'task.nme'" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "g").exists()  # nothing was started


@pytest.mark.parametrize("args, needle", [
    (["train", "data=d.jsonl", "out=o", "lrr=0.1"], "unknown key 'lrr'"),
    (["train", "data=d.jsonl", "out=o", "lr=-1"], "key 'lr'"),
    (["train", "data=d.jsonl", "out=o", "batch_size=abc"], "key 'batch_size'"),
    (["curate", "traces=t", "out=o", "ops=[verify,sparkle]"], "sparkle"),
    (["eval", "out=o", "models=[a=b]", "strategy=beam"], "key 'strategy'"),
    (["generate", "out=o", "task.n"], "key=value"),
])
def test_config_errors_are_one_line_exit_2(args, needle):
    assert_clean_error(invoke(*args), needle)


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_clean_error(invoke("train", "--config", str(missing)), str(missing))


def test_wrong_key_in_a_recipe_names_stage_and_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "generate": {"g": {"task": {"n": 2}}},
                                      "curate": {"c": {"traces": "g", "opps": ["verify"]}}}))
    assert_clean_error(invoke("run", str(recipe)), "curate.c", "unknown key 'opps'")
    recipe.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "paralel": 2}))
    assert_clean_error(invoke("run", str(recipe)), "unknown key 'paralel'")
    recipe.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "curate": {"c": {"traces": "nowhere"}}}))
    assert_clean_error(invoke("run", str(recipe)), "curate.c.traces", "nowhere")


def test_unknown_task_is_a_clean_error(tmp_path):
    assert_clean_error(invoke("generate", f"out={tmp_path / 'g'}", "task.name=chess"), "chess")


def test_missing_model_path_names_the_path(cli, tmp_path):
    r = cli("eval", f"out={tmp_path / 'e'}", "models=[x=/nonexistent/dir]", "task.n=2", "task.levels=[1]")
    assert r.returncode == 2, r.stderr
    assert "/nonexistent/dir" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_a_directory_without_a_checkpoint_is_named(tmp_path):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    r = invoke("eval", f"out={tmp_path / 'e'}", f"models=[x={empty}]", "task.n=2", "task.levels=[1]")
    assert_clean_error(r, str(empty), "no HF checkpoint")


def _example(i: int) -> str:
    return json.dumps({"id": f"e{i}", "problem_id": f"p{i}", "task": "arithmetic", "level": 1,
                       "question": "Compute mod 10.\na=1\nb=a+1\nWhat is b?", "reasoning": "b=a+1=1+1=2",
                       "answer": "2"})


def test_malformed_jsonl_in_training_data_names_file_and_line(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(_example(1) + "\n" + _example(2) + "\n" + '{"id": "e3", "question": \n' + _example(4) + "\n")
    r = invoke("train", f"data={data}", f"out={tmp_path / 's'}", "max_steps=1")
    assert_clean_error(r, f"{data}:3", "malformed JSON")
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_bytes((_example(1) + "\n").encode() + b'{"id": "caf\xe9"}\n')
    assert_clean_error(invoke("train", f"data={data}", f"out={tmp_path / 's'}", "max_steps=1"),
                       f"{data}:2", "not UTF-8", "0xe9")
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"lr: 0.1  # caf\xe9\n")
    assert_clean_error(invoke("train", "--config", str(cfg)), str(cfg), "not UTF-8")


def test_an_out_dir_that_cannot_be_one_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert_clean_error(invoke("generate", f"out={blocker}", "task.n=2"), str(blocker), "a file is in the way")
    assert_clean_error(invoke("generate", f"out={blocker / 'sub'}", "task.n=2"), str(blocker / "sub"),
                       "a path above it is a file")
    assert blocker.read_text() == "x"


def test_a_failing_write_mid_run_is_one_line_and_keeps_what_was_written(tmp_path):
    """A file that cannot grow (here: a 400 KiB file-size limit, as a full disk would stop it) ends the
    run with the file named, exit 2, no traceback; the traces already on disk stay, and a run without
    the limit finishes them."""
    import resource
    import subprocess
    import sys

    out = tmp_path / "g"
    args = [sys.executable, "-m", "thinkling.cli", "generate", f"out={out}", "task.n=400", "task.levels=[4]",
            "teacher.style=long", "chunk_size=32"]  # ~250 KB of problems, ~650 KB of traces

    def limit():  # in the child: writes past 400 KiB fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (400 * 1024, 400 * 1024))

    r = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "error:" in r.stderr and "File too large" in r.stderr, r.stderr[-2000:]
    assert f"{out / 'traces.jsonl'}: File too large" in " ".join(r.stderr.split()), r.stderr[-2000:]
    written = (out / "traces.jsonl").read_bytes().count(b"\n")
    assert written > 0
    r2 = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "already done" in r2.stderr


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.delenv("THINKLING_DEBUG", raising=False)
    r = invoke("--debug", "generate", f"out={blocker}", "task.n=2")
    assert r.exit_code != 2 and isinstance(r.exception, FileExistsError)


def test_training_row_missing_a_field_names_file_line_and_field(tmp_path):
    data = tmp_path / "train.jsonl"
    row = json.loads(_example(2))
    del row["answer"]
    data.write_text(_example(1) + "\n" + json.dumps(row) + "\n")
    r = invoke("train", f"data={data}", f"out={tmp_path / 's'}", "max_steps=1")
    assert_clean_error(r, f"{data}:2", "field 'answer'")


def test_missing_training_data_is_named(tmp_path):
    r = invoke("train", f"data={tmp_path / 'absent'}", f"out={tmp_path / 's'}")
    assert_clean_error(r, str(tmp_path / "absent"))


def test_generate_into_a_dir_of_another_teacher_is_refused(tmp_path):
    out = tmp_path / "g"
    assert invoke("generate", f"out={out}", "task.n=3", "task.levels=[1]").exit_code == 0
    assert_clean_error(invoke("generate", f"out={out}", "task.n=3", "task.levels=[1]", "teacher.style=none"),
                       "different 'teacher'")


def test_quickstart_recipe_is_packaged_and_valid(tmp_path):
    """BUG (packaging): `thinkling quickstart` reads src/thinkling/recipes/quickstart.yaml, which does not
    exist (pyproject ships recipes/*.yaml), so it exits with 'config file not found'."""
    from thinkling.cli import QUICKSTART
    from thinkling.pipeline import load_recipe

    assert QUICKSTART.is_file(), f"built-in recipe missing: {QUICKSTART}"
    plan = load_recipe(QUICKSTART, [f"out={tmp_path / 'qs'}"])
    assert plan.trn and plan.gen and plan.cur


# ----------------------------------------------------------------------------- options


def test_cli_takes_ops_as_a_comma_list(long_traces, tmp_path):
    from helpers import run_cli

    r = run_cli("curate", f"traces={long_traces}", f"out={tmp_path / 'd'}", "--ops", "verify,difficulty,select",
                "difficulty.method=level")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert [o["op"] for o in m["counts"]["ops"]] == ["verify", "difficulty", "select"]
    bad = run_cli("curate", f"traces={long_traces}", f"out={tmp_path / 'e'}", "--ops", "verify,sparkle")
    assert bad.returncode == 2 and "sparkle" in bad.stderr


def test_run_takes_seeds_as_a_comma_list(tmp_path):
    from thinkling.cli import seeds_override

    r = invoke("run", "--help")
    assert r.exit_code == 0 and "--seeds" in r.output and "0,1,2" in r.output
    assert seeds_override("0, 1,2") == ["seeds=[0,1,2]"] and seeds_override(None) == []
    assert_clean_error(invoke("run", str(tmp_path / "x.yaml"), "--seeds", "0,one"), "--seeds", "'0,one'")
    assert_clean_error(invoke("run", str(tmp_path / "x.yaml"), "--seeds", "-1"), "--seeds")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "train": {"s": {"data": str(tmp_path),
                                                                                   "seed": 4}}}))
    # the option reaches the recipe: a student with its own seed is then an error naming it
    assert_clean_error(invoke("run", str(recipe), "--seeds", "1,2"), "train.s.seed", "[1, 2]")
