"""Does a change keep the quickstart's results? The quickstart recipe, run by two source trees with a
fixed number of training steps instead of wall-clock budgets, artifact by artifact.

    python bench/same_results.py --a /path/to/old/src --b src --out /tmp/same [--steps 40] [--eval-n 20]

Both runs use one thread, train the students one after another and evaluate greedily, so everything but
timings is deterministic: the table lists the sha256 of each artifact under each tree (problems, traces,
curated data, the tokenizer, the initial and trained weights, the samples) and whether the results rows
agree once timing fields and paths are set aside. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDENTS = ("long", "concise", "none")
ARTIFACTS = [f"generate/{s}/{f}" for s in STUDENTS for f in ("problems.jsonl", "traces.jsonl")] + \
    [f"curate/{s}/train.jsonl" for s in STUDENTS] + \
    ["train/long/init/tokenizer.json", "train/long/init/model.safetensors"] + \
    [f"train/{s}/model.safetensors" for s in STUDENTS] + ["eval/samples.jsonl"]
TIMING = {"seconds_per_problem", "tokens_per_second", "model_path"}


def run(src: str, out: Path, steps: int, eval_n: int) -> None:
    over = [f"train.{s}.{k}" for s in STUDENTS for k in ("budget_minutes=null", f"max_steps={steps}")]
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "thinkling.cli", "quickstart", "--out", str(out), "--force", "parallel=1",
           "threads=1", f"eval.task.n={eval_n}", "eval.max_new_tokens=64", "eval.threads=1", *over]
    with open(f"{out}.log", "w") as log:
        p = subprocess.run(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise SystemExit(f"the run with {src} failed; see {out}.log")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "missing"


def rows(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING}
            for r in json.loads((out / "eval" / "results.json").read_text())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="source dir of the first tree (the one holding thinkling/)")
    ap.add_argument("--b", required=True, help="source dir of the second tree")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per student")
    ap.add_argument("--eval-n", type=int, default=20, help="test problems per level")
    a = ap.parse_args()
    outs = {"a": a.out / "a", "b": a.out / "b"}
    a.out.mkdir(parents=True, exist_ok=True)
    for k, src in (("a", a.a), ("b", a.b)):
        run(str(Path(src).resolve()), outs[k], a.steps, a.eval_n)
    same = True
    print("| artifact | a | b | same |\n|---|---|---|---|")
    for f in ARTIFACTS:
        ha, hb = sha(outs["a"] / f), sha(outs["b"] / f)
        same &= ha == hb != "missing"
        print(f"| {f} | {ha} | {hb} | {'yes' if ha == hb != 'missing' else 'NO'} |")
    ra, rb = rows(outs["a"]), rows(outs["b"])
    same &= ra == rb
    verdict = "yes" if ra == rb else "NO"
    print(f"| eval/results.json rows (timings and paths aside) | {len(ra)} | {len(rb)} | {verdict} |")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
