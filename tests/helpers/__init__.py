"""What several test files use: the repository root, the tokenizer text of the tiny model, conversations in
every oracle style (for rendering and losses), the CLI in a subprocess, and a file's SHA-256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from thinkling.format import format_assistant
from thinkling.tasks import get_task

REPO = Path(__file__).resolve().parents[2]


def arithmetic_texts(n: int = 40) -> list[str]:
    """Questions and oracle traces of all three styles, as the training text of the tokenizer."""
    from thinkling.tasks.synthetic import oracle_texts

    return oracle_texts("arithmetic", n=n, styles=("long", "concise", "none"))


def conversations():
    """(prompt messages, assistant reply) of every oracle style, for both synthetic tasks."""
    out = []
    for name in ("arithmetic", "rules"):
        task = get_task(name)
        for p in task.problems("train", n=3, levels=[1, 3]):
            for style in ("long", "concise", "none"):
                tr = task.oracle(p, style)
                out.append((task.messages(p), format_assistant(tr.reasoning, tr.answer)))
    return out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m thinkling.cli ARGS`` in a subprocess, one thread, offline; text output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "thinkling.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
