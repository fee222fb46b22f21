"""``thinkling generate`` killed with ``kill -9`` mid-run and run again: nothing lost, nothing duplicated,
the first run's work kept - with the oracle teacher, and with the ``openai`` teacher against ``thinkling
serve`` through the fault proxy (only what was in flight at the kill is asked twice)."""

from __future__ import annotations

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
