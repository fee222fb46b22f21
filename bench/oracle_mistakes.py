"""Honest mistakes for REDI (issue 13): how many traces the oracle teacher writes flawed at
``teacher.error_rate``, and how many of them curate's ``verify`` catches.

    python bench/oracle_mistakes.py                          # 1,000 arithmetic train problems, levels 1-4, rate 0.3
    python bench/oracle_mistakes.py --families arithmetic,rules,abduction,induction,evidence,evidence:concepts

Per family it runs the real stages on one CPU thread: ``generate`` (the oracle, ``long`` style, the
given ``error_rate``; at least ``--n`` train problems over the levels - easy levels give what they hold,
the others more - and ``--samples`` traces each) and ``curate`` with ``ops: [verify]``, and compares the
ground truth (a raw trace is flawed when it carries ``meta.mistake``) with verify's verdict (its
``negatives.jsonl``; every other drop is counted too):

- flawed %: flawed traces / all traces (should be close to error_rate);
- caught %: flawed traces that verify rejected (should be 100: a flawed answer always differs);
- false neg. %: unflawed (correct) traces that verify rejected (should be 0);
- mistakes: the mistakes written, by kind.

Evidence's ``instruction`` regime does not fit the table: there the oracle guesses without evidence, so
its unflawed traces are mostly wrong as well (and verify rightly rejects them). Needs no model and no
data; the figures are deterministic (seeded per problem, sample index and ``error_seed``). Exits
non-zero when verify disagrees with the ground truth.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _spec(item: str) -> tuple[str, dict]:
    """``evidence:concepts`` -> ("evidence", {"regime": "concepts"}); a bare name has no options."""
    family, _, regime = item.partition(":")
    return family, ({"regime": regime} if regime else {})


def _per_level(family: str, options: dict, n: int, levels: list[int]) -> int:
    """The smallest per-level count (generate's ``task.n``) that gives at least ``n`` problems: easy levels
    of a family hold fewer distinct problems than asked, and give what they have."""
    from thinkling.tasks import get_task

    task = get_task(family, **options)
    sizes = [len(task.problems("train", n=n, levels=[lv])) for lv in levels]
    k = -(-n // len(levels))
    while sum(min(k, s) for s in sizes) < min(n, sum(sizes)):
        k += 1
    return k


def run_family(item: str, n: int, levels: list[int], rate: float, seed: int, samples: int, work: Path) -> dict:
    from rich.console import Console

    from thinkling.artifacts import read_jsonl
    from thinkling.config import build_config
    from thinkling.curate.stage import CurateConfig, curate
    from thinkling.generate.stage import GenerateConfig, generate
    from thinkling.records import Example

    family, options = _spec(item)
    quiet = Console(file=open(os.devnull, "w"))
    per_level = _per_level(family, options, n, levels)
    work = work / item.replace(":", "-")
    t0 = time.perf_counter()
    gen = build_config(GenerateConfig, {
        "out": str(work / "traces"), "samples": samples,
        "task": {"name": family, "n": per_level, "levels": levels, "options": options},
        "teacher": {"backend": "oracle", "style": "long", "error_rate": rate, "error_seed": seed}})
    generate(gen, console=quiet)
    m = curate(build_config(CurateConfig, {"traces": str(work / "traces"), "out": str(work / "data"),
                                           "ops": ["verify"], "task_options": options}), console=quiet)
    seconds = time.perf_counter() - t0
    traces = read_jsonl(work / "traces" / "traces.jsonl")
    flawed = {t["key"] for t in traces if "mistake" in t["meta"]}
    rejected = {e.source_key for e in read_jsonl(work / "data" / "negatives.jsonl", Example)}
    kept = {e.source_key for e in read_jsonl(work / "data" / "train.jsonl", Example)}
    other_drops = len(traces) - len(rejected) - len(kept)
    n_problems = len({t["problem_id"] for t in traces})
    kinds = Counter(t["meta"]["mistake"]["kind"] for t in traces if "mistake" in t["meta"])
    return {"family": item, "problems": n_problems, "traces": len(traces), "flawed": len(flawed),
            "caught": len(flawed & rejected), "false_neg": len(rejected - flawed), "missed": len(flawed - rejected),
            "other_drops": other_drops, "kinds": dict(sorted(kinds.items())), "seconds": seconds,
            "dropped": m["counts"]["ops"][0]["dropped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="arithmetic",
                    help="comma-separated synthetic families; evidence:<regime> for an evidence regime")
    ap.add_argument("--n", type=int, default=1000, help="train problems per family (spread over the levels)")
    ap.add_argument("--levels", default="1,2,3,4")
    ap.add_argument("--error-rate", type=float, default=0.3)
    ap.add_argument("--error-seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=1, help="traces per problem")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fam in args.families.split(","):
            rows.append(run_family(fam, args.n, levels, args.error_rate, args.error_seed, args.samples, Path(tmp)))

    print(f"error_rate={args.error_rate:g} error_seed={args.error_seed} levels={args.levels} samples={args.samples}")
    print("| family | problems | traces | flawed | flawed % | caught by verify | caught % | false neg. (correct rejected) "
          "| false neg. % | other drops | mistakes | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        correct = r["traces"] - r["flawed"]
        print(f"| {r['family']} | {r['problems']:,} | {r['traces']:,} | {r['flawed']:,} | "
              f"{100 * r['flawed'] / r['traces']:.1f} | {r['caught']:,} | "
              f"{100 * r['caught'] / max(r['flawed'], 1):.1f} | {r['false_neg']:,} | "
              f"{100 * r['false_neg'] / max(correct, 1):.1f} | {r['other_drops']} | "
              f"{', '.join(f'{k} {v}' for k, v in r['kinds'].items())} | {r['seconds']:.1f} |")
    bad = [r["family"] for r in rows if r["missed"] or r["false_neg"]]
    if bad:
        raise SystemExit(f"verify disagrees with the ground truth on: {', '.join(bad)}")


if __name__ == "__main__":
    main()
