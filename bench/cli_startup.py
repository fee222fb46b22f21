"""CLI start-up time: how long ``thinkling --help`` (and each stage's ``--help``) takes, side by side for
two source trees (e.g. before and after a change), interleaved so machine noise hits both alike.

    python bench/cli_startup.py --a /path/to/old/src --b src [--runs 7] [--commands "--help,train --help"]

Each run is a fresh ``python -m thinkling.cli ...`` with ``PYTHONPATH`` set to the tree; the table gives the
median and the minimum wall time per command and tree, and the ratio of the medians (a / b).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def once(src: str, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "thinkling.cli", *args], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{src}: thinkling {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="source dir of the first tree (the one holding thinkling/)")
    ap.add_argument("--b", required=True, help="source dir of the second tree")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--commands", default="--help,generate --help,train --help,eval --help")
    a = ap.parse_args()
    commands = [c.split() for c in a.commands.split(",")]
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(a.runs):
        for cmd in commands:
            for tree in (a.a, a.b):  # interleaved: both trees see the same moment of the machine
                times.setdefault((" ".join(cmd), tree), []).append(once(tree, cmd))
    print(f"| command | {a.a} median (min) s | {a.b} median (min) s | a / b |")
    print("|---|---|---|---|")
    for cmd in commands:
        c = " ".join(cmd)
        ta, tb = times[c, a.a], times[c, a.b]
        print(f"| thinkling {c} | {statistics.median(ta):.2f} ({min(ta):.2f}) | {statistics.median(tb):.2f} "
              f"({min(tb):.2f}) | {statistics.median(ta) / statistics.median(tb):.1f}x |")


if __name__ == "__main__":
    main()
