"""Run the quickstart end to end and print the figures recorded in docs/benchmarks.md.

    python bench/quickstart.py --out runs/bench-quickstart

Prints the wall time per stage, the per-level table (accuracy with 95% CI, mean tokens) and the
claims checked, as markdown. The numbers are wall-clock on whatever machine runs it: compare
students within one run (ratios), not across machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench-quickstart")
    ap.add_argument("overrides", nargs="*", help="recipe overrides passed to thinkling quickstart")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "thinkling.cli", "quickstart", "--out", args.out, "--force", *args.overrides]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time() - t0
    out = Path(args.out)
    run = json.loads((out / "run.json").read_text())
    rows = json.loads((out / "results.json").read_text())
    print(f"\ncommand: thinkling quickstart --out {args.out} --force {' '.join(args.overrides)}")
    print(f"wall time (process): {wall:.0f} s; stages: " +
          ", ".join(f"{k} {v:.0f} s" for k, v in run["timings"].items()))
    print("\n| student | level | n | accuracy % [95% CI] | mean tokens | p95 tokens | truncated % |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['level']} | {r['n']} | {100 * r['accuracy']:.1f} "
              f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] | {r['mean_tokens']:.1f} "
              f"| {r['p95_tokens']:.0f} | {100 * r['truncation_rate']:.1f} |")
    from thinkling.pipeline import describe_check

    print("\n| claim | measured | result |\n|---|---|---|")
    for c in run["checks"]:
        print(describe_check(c))


if __name__ == "__main__":
    main()
