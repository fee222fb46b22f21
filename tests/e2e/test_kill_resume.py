"""``thinkling generate`` killed with ``kill -9`` mid-run and run again: nothing lost, nothing duplicated,
the first run's work kept - with the oracle teacher, and with the ``openai`` teacher against ``thinkling
serve`` through the fault proxy (only what was in flight at the kill is asked twice)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from faultproxy import FaultProxy
from helpers.engines import MODEL
from helpers.generate import ledger, lines
from thinkling.artifacts import read_jsonl, read_manifest
from thinkling.engines import SamplingParams
from thinkling.generate.stage import request_key


@pytest.mark.slow
def test_generate_survives_kill_9_and_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "traces"
    n, levels = 20000, [3, 4]  # with operands up to 9, level 3 holds ~4.2k distinct train problems
    args = [sys.executable, "-m", "thinkling.cli", "generate", f"out={out}", f"task.n={n}", "task.options.max_operand=9",
            f"task.levels=[{','.join(map(str, levels))}]", "teacher.style=concise", "chunk_size=64"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    traces = out / "traces.jsonl"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if traces.exists() and traces.stat().st_size > 20_000:  # some chunks are on disk
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the generate process was not killed mid-run (exit {proc.returncode}); raise task.n\n"
        + (tmp_path / "first.log").read_text()[-2000:])
    assert not (out / "manifest.json").exists()
    requested = (out / "problems.jsonl").read_bytes().count(b"\n")
    assert requested > n  # level 4 alone gives n
    lines_at_kill = traces.read_bytes().count(b"\n")
    assert 0 < lines_at_kill < requested

    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already done" in second.stderr

    keys = []
    with open(traces, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            assert line.endswith("\n"), f"line {i} is partial"
            keys.append(json.loads(line)["key"])  # every line parses
    assert len(keys) == len(set(keys)), "duplicate keys after resume"
    assert len(keys) == requested
    problems = read_jsonl(out / "problems.jsonl")
    wanted = {request_key("oracle:concise", [{"role": "user", "content": p["question"]}], SamplingParams(), 0)
              for p in problems}
    assert set(keys) == wanted
    m = read_manifest(out)
    assert m["counts"]["traces"] == m["counts"]["requested"] == requested
    assert 0 < m["counts"]["new_this_run"] <= requested - lines_at_kill + 1  # the first run's work was kept


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(served, tmp_path):
    out = tmp_path / "g"
    traces = out / "traces.jsonl"
    with FaultProxy(served) as px:
        args = [sys.executable, "-m", "thinkling.cli", "generate", f"out={out}", "task.n=150", "task.levels=[1,2]",
                "teacher.backend=openai", f"teacher.base_url={px.base_url}", f"teacher.model={MODEL}",
                "teacher.concurrency=4", "sampling.max_tokens=8", "chunk_size=8"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
        with open(tmp_path / "first.log", "w") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                if traces.exists() and traces.stat().st_size > 0:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
        assert not (out / "manifest.json").exists()
        first = traces.read_bytes()
        first = first[: first.rfind(b"\n") + 1]  # complete lines; a partial one is cut on resume
        posts_first = len(px.posts())
        second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
        posts = len(px.posts())
    final = lines(traces)
    requested = len(read_jsonl(out / "problems.jsonl"))
    keys = [t["key"] for t in final]
    assert len(keys) == len(set(keys)) == requested, "lost or duplicated after resume"
    assert traces.read_bytes().startswith(first)  # the first run's traces kept as they were
    wanted = {request_key(f"openai:{MODEL}", [{"role": "user", "content": p["question"]}], SamplingParams(), 0)
              for p in read_jsonl(out / "problems.jsonl")}
    assert set(keys) == wanted
    n_first = first.count(b"\n")
    assert 0 < n_first < requested
    # only what was in flight or not yet flushed at the kill (concurrency + chunk_size) was asked twice
    assert posts - requested <= 4 + 8 and posts - posts_first == requested - n_first
    led = ledger(out)
    assert [r["status"] for r in led["runs"]] == ["interrupted", "finished"]
    assert led["runs"][1]["ok"] == requested - n_first
    assert read_manifest(out)["counts"]["traces"] == requested


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled every 5 ms)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)


def _calls(out) -> list[str]:
    """The keys in the (one) eval unit's completion log."""
    logs = list((out / "units").glob("*/calls.jsonl"))
    if not logs:
        return []
    data = logs[0].read_bytes()
    return [json.loads(x)["key"] for x in data[: data.rfind(b"\n") + 1].splitlines() if x.strip()]


EVAL_TASK = ["task.name=arithmetic", "task.split=test", "task.n=60", "task.levels=[3,4]", "max_new_tokens=24"]


@pytest.mark.slow
def test_eval_killed_mid_unit_over_an_endpoint_pays_for_nothing_twice(served, tmp_path):
    """Each completion is logged when it arrives: after a kill -9 the re-run asks exactly for the rest, and
    at most the requests in flight at the kill were answered without being logged."""
    out = tmp_path / "e"
    with FaultProxy(served) as px:
        args = [sys.executable, "-m", "thinkling.cli", "eval", f"out={out}", *EVAL_TASK,
                f"models=[{{name: remote, path: {MODEL}, backend: openai, base_url: '{px.base_url}', "
                "backend_options: {concurrency: 2}}]"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
        with open(tmp_path / "first.log", "w") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            _kill_when(proc, lambda: len(_calls(out)) >= 10)
        assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
        logged, posts_first = len(_calls(out)), len(px.posts())
        second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
        posts = len(px.posts())
    total = len(read_jsonl(out / "samples.jsonl"))
    assert 10 <= logged < total, "the kill did not land mid-unit"
    assert posts - posts_first == total - logged      # the re-run asked exactly for what was not logged
    assert posts_first - logged <= 2                   # answered but unlogged: at most what was in flight
    keys = _calls(out)
    assert len(keys) == len(set(keys)) == total


@pytest.mark.slow
def test_eval_killed_mid_unit_on_hf_loses_at_most_the_batch_in_flight(noisy_model, tmp_path):
    out = tmp_path / "e"
    args = [sys.executable, "-m", "thinkling.cli", "eval", f"out={out}", *EVAL_TASK, "batch_size=8",
            f"models=[m={noisy_model}]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        _kill_when(proc, lambda: len(_calls(out)) >= 16)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
    before = _calls(out)
    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    total = len(read_jsonl(out / "samples.jsonl"))
    after = _calls(out)
    assert 16 <= len(before) < total, "the kill did not land mid-unit"
    assert after[: len(before)] == before and len(after) == len(set(after)) == total  # the rest, asked once
