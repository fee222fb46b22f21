"""math-verify, safely: timeouts and errors are "not verified", never a crash, in the main thread and in
worker threads (through a verifier process that is killed and restarted when stuck)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from thinkling.tasks import get_task, mathverify
from thinkling.tasks.mathverify import math_equal, verifier_events


def test_timeout_in_the_main_thread_is_not_verified():
    before = verifier_events["verify_timeout"]
    t0 = time.perf_counter()
    assert math_equal("2^{2^{40}}", "3", timeout=1) is False  # sympy would compute 2^(2^40)
    assert time.perf_counter() - t0 < 10
    assert verifier_events["verify_timeout"] == before + 1


def test_errors_are_not_verified_and_counted(monkeypatch):
    import math_verify

    def boom(*a, **k):
        raise RuntimeError("boom")

    before = Counter(verifier_events)
    monkeypatch.setattr(math_verify, "verify", boom)
    assert math_equal("0.5", "\\frac12") is False
    monkeypatch.setattr(math_verify, "parse", boom)
    assert math_equal("0.5", "\\frac12") is False
    assert verifier_events["verify_error"] > before["verify_error"]  # one per (gold, pred) candidate pair
    assert verifier_events["parse_error"] == before["parse_error"] + 1


def test_verifiers_work_in_worker_threads(gsm8k_dir, m500):
    """math-verify's timeouts are signals (main thread only); from a worker thread a verifier process
    answers, with timeouts intact. GSM8K shares the verifier (it raised ValueError in threads before)."""
    gsm = get_task("gsm8k", data_dir=str(gsm8k_dir))
    cases = [(m500, "0.5", "\\frac12", True), (m500, "3", "4", False), (gsm, "\\frac{36}{2}", "18", True),
             (gsm, "19", "18", False)]
    with ThreadPoolExecutor(2) as ex:
        got = list(ex.map(lambda c: c[0].verify(c[1], c[2]), cases))
        assert got == [c[3] for c in cases]

        def slow():
            t0 = time.perf_counter()
            return math_equal("2^{2^{40}}", "3", timeout=1), time.perf_counter() - t0

        ok, secs = ex.submit(slow).result(timeout=120)
        assert ok is False and secs < 60


def test_a_stuck_verifier_process_is_killed_and_restarted():
    before = verifier_events["worker_timeout"]

    def run():
        w = mathverify.VerifierProcess()
        try:
            assert w.equal("0.5", "\\frac12", timeout=5) is True  # starts the process
            first = w.proc.pid
            assert w.equal("2^{2^{40}}", "3", timeout=30, budget=1) is False  # overruns its budget
            assert w.proc is None  # killed
            assert w.equal("0.5", "\\frac12", timeout=5) is True  # a fresh process
            return first != w.proc.pid
        finally:
            w.stop()

    with ThreadPoolExecutor(1) as ex:
        assert ex.submit(run).result(timeout=180)
    assert verifier_events["worker_timeout"] == before + 1
