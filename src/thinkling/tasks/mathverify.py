"""math-verify, safely: the answer equivalence of the math tasks (MATH, MATH-500, AIME, AMC, GSM8K, jsonl).

:func:`math_equal`: equal after a light, meaning-preserving normalisation (:func:`canonical`:
``\\left``/``\\right``, spacing, ``\\dfrac``, ``^\\circ``, ``\\%``, ``\\text{}`` wrappers), else math-verify
(sympy equivalence, :func:`math_verify_equal`). math-verify's timeouts use ``SIGALRM``, which only works
in the main thread: there we pass them through; a call from any other thread is answered by a verifier
process of that thread (:class:`VerifierProcess`: math-verify in its main thread, killed if it
overruns). A timeout or an error is "not verified", never a crash, and is counted in
:data:`verifier_events`.

math-verify (and sympy under it) is imported only where a comparison needs it: importing this module
stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import weakref
from collections import Counter
from itertools import product
from pathlib import Path

log = logging.getLogger(__name__)

VERIFY_TIMEOUT_S = 5
"""Seconds math-verify may spend on one parse or one comparison (whole seconds: ``signal.alarm``)."""

verifier_events: Counter[str] = Counter()
"""Process-wide counts of verifier calls that ended in a timeout or an error (and so were not
credited): ``parse_timeout``, ``parse_error``, ``verify_timeout``, ``verify_error``, and off the main
thread ``worker_timeout``, ``worker_died``, ``worker_start_failed``."""


# ----------------------------------------------------------------------------- normalisation


TEXT_WRAP = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])")
_SPACING = re.compile(r"\\[!,;:> ]|\\q?quad(?![A-Za-z])|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?")
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def strip_math_delimiters(s: str) -> str:
    """``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x`` (whole-string delimiters only)."""
    s = s.strip()
    for open_, close in _DELIMS:
        if len(s) > len(open_) + len(close) and s.startswith(open_) and s.endswith(close):
            return s[len(open_):-len(close)].strip()
    return s


def canonical(s: str) -> str:
    """A light normal form of a LaTeX answer for exact comparison; every step keeps the meaning.

    Removes math delimiters, ``\\left``/``\\right``, LaTeX spacing, ``^\\circ``, ``\\$``, ``\\%``,
    ``\\text{...}``-style wrappers, all whitespace and trailing full stops; ``\\dfrac``/``\\tfrac``
    become ``\\frac``. Anything subtler (``0.5`` vs ``\\frac12``, ``x=3`` vs ``3``) is math-verify's job.
    """
    s = strip_math_delimiters(s)
    s = _LEFT_RIGHT.sub("", s)
    s = _SPACING.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _DEGREES.sub("", s)
    s = s.replace("\\$", "").replace("\\%", "").replace("%", "")
    prev = None
    while prev != s:
        prev, s = s, TEXT_WRAP.sub(r"\1", s)
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


# ----------------------------------------------------------------------------- math-verify, safely


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def math_verify_equal(pred: str, gold: str, timeout: int | None) -> bool:
    """math-verify on two answer strings; timeouts (seconds, or None = off) and errors -> False."""
    from math_verify import parse, verify  # heavy (sympy): imported on the first comparison
    from math_verify.errors import TimeoutException

    parsed = []
    for s in (gold, pred):
        try:
            p = parse(f"${s}$", parsing_timeout=timeout, raise_on_error=True)
        except TimeoutException:
            verifier_events["parse_timeout"] += 1
            log.warning("math-verify: parse timed out after %ss: %.200s", timeout, s)
            return False
        except Exception as e:  # noqa: BLE001 - counted and reported; a bad answer is not a crash
            verifier_events["parse_error"] += 1
            log.warning("math-verify: parse failed (%s: %s): %.200s", type(e).__name__, e, s)
            return False
        if not p:
            return False
        parsed.append(p)
    # Pair by pair (as math-verify's own verify does), so an error in one pair does not hide a match
    # in another, and timeouts are counted here rather than only logged by math-verify.
    for g, p in product(*parsed):
        try:
            if verify(g, p, timeout_seconds=timeout, raise_on_error=True):
                return True
        except TimeoutException:
            verifier_events["verify_timeout"] += 1
            log.warning("math-verify: comparison timed out after %ss: %.200s vs gold %.200s", timeout, pred, gold)
        except Exception:  # noqa: BLE001 - counted; this pair is simply not a match
            verifier_events["verify_error"] += 1
    return False


def math_equal(pred: str, gold: str, timeout: int = VERIFY_TIMEOUT_S) -> bool:
    """True when ``pred`` and ``gold`` (LaTeX or plain answer strings) are the same answer.

    Equal canonical forms are a match; otherwise math-verify decides. Never raises: timeouts and
    errors are "not verified" and counted in :data:`verifier_events`. Safe in any thread.
    """
    if not pred or not gold:
        return False
    cp, cg = canonical(pred), canonical(gold)
    if cp and cp == cg:
        return True
    if _in_main_thread():
        return math_verify_equal(pred, gold, timeout)
    return _thread_worker().equal(pred, gold, timeout)


# Off the main thread SIGALRM is unavailable, and no thread can stop another: sympy's big-integer
# powers (``2^{2^{40}}``) run in C holding the GIL, so a watchdog thread would hang with them. Each
# calling thread therefore gets its own verifier process, where math-verify runs in the main thread
# with its own timeouts; if it still overruns its budget it is killed and restarted on next use.

_WORKER_START_S = 120  # a fresh interpreter importing sympy and math-verify (slow on a busy machine)
_local = threading.local()


def _serve() -> None:
    """The verifier process: JSON lines ``[pred, gold, timeout]`` in, ``[credited, events]`` out."""
    import math_verify  # noqa: F401  (imported before "ready", so start-up is not charged to a call)

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but replies on the reply channel
    out.write('"ready"\n')
    out.flush()
    for line in sys.stdin:
        pred, gold, timeout = json.loads(line)
        before = Counter(verifier_events)
        ok = math_verify_equal(pred, gold, timeout)
        out.write(json.dumps([ok, dict(verifier_events - before)]) + "\n")
        out.flush()


def _reap(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout):
        f.close()


class VerifierProcess:
    """One child interpreter running :func:`_serve` (a plain subprocess: nothing of the caller's
    ``__main__`` is re-run, unlike multiprocessing's spawn)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._finalizer = None

    def _readline(self, seconds: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        return self.proc.stdout.readline() if ready else None

    def _start(self) -> bool:
        src = str(Path(__file__).resolve().parents[2])  # the directory holding the thinkling package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from thinkling.tasks.mathverify import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        # when the calling thread ends (its thread-local is dropped) or the interpreter exits
        self._finalizer = weakref.finalize(self, _reap, self.proc)
        if (self._readline(_WORKER_START_S) or "").strip() == '"ready"':
            return True
        self.stop()
        return False

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills and reaps self.proc, once
        self.proc = self._finalizer = None

    def equal(self, pred: str, gold: str, timeout: int, budget: float | None = None) -> bool:
        """``budget``: seconds to wait for the answer (default: 2 parses + 1 comparison + 2 s)."""
        if (self.proc is None or self.proc.poll() is not None) and not self._start():
            verifier_events["worker_start_failed"] += 1
            log.warning("math-verify: the verifier process did not start; %.200s not verified", pred)
            return False
        budget = 3 * timeout + 2 if budget is None else budget
        try:
            self.proc.stdin.write(json.dumps([pred, gold, timeout]) + "\n")
            self.proc.stdin.flush()
            line = self._readline(budget)
        except OSError:  # the child died (e.g. out of memory): restart on next use
            line = ""
        if line is None:
            verifier_events["worker_timeout"] += 1
            log.warning("math-verify: killed the verifier process after %ss: %.200s vs gold %.200s",
                        budget, pred, gold)
            self.stop()
            return False
        if not line:
            verifier_events["worker_died"] += 1
            log.warning("math-verify: the verifier process died on %.200s vs gold %.200s", pred, gold)
            self.stop()
            return False
        ok, events = json.loads(line)
        verifier_events.update(events)
        return bool(ok)


def _thread_worker() -> VerifierProcess:
    w = getattr(_local, "worker", None)
    if w is None:
        w = _local.worker = VerifierProcess()
    return w
