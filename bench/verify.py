"""Benchmark the verifier on real data: the `verify` curation op's core (extract + verify) and its
agreement with math-verify applied directly to the gold solutions.

    python bench/verify.py                      # GSM8K train (7,473) and MATH-500 (500)
    python bench/verify.py --datasets gsm8k,math500,math --data ../shared/data

Table 1 runs ``task.extract_answer`` then ``task.verify`` (exactly what the op does per trace) on two
kinds of completion per problem: the reference trace the `reference` teacher writes
(``The answer is \\boxed{<gold>}.``) and the dataset's own solution text taken as a student
completion (scored with ``task.score``, as the evaluate stage does). Every one should be credited.
The "math-verify only" rows skip our canonical-string shortcut, to show what it saves.

Table 2 compares our verdict on the solution text with math-verify's own: ``parse(solution)`` with its
default extraction, verified against ``parse("$gold$")``. Disagreements are listed.

Runs in the main thread, so math-verify's own timeouts apply. Timings are wall-clock on whatever
machine runs it (single process); compare rows within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _timed(fn, items):
    t0 = time.perf_counter()
    out = [fn(x) for x in items]
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="the shared benchmark data folder")
    ap.add_argument("--datasets", default="gsm8k,gsm8k:test,math500",
                    help="comma-separated: gsm8k (train split; gsm8k:test for its test split), math500, math (test split)")
    ap.add_argument("--show", type=int, default=20, help="disagreements / failures to list per dataset")
    args = ap.parse_args()

    from math_verify import parse, verify

    from thinkling.artifacts import read_jsonl
    from thinkling.tasks import get_task
    from thinkling.tasks.mathverify import VERIFY_TIMEOUT_S, math_verify_equal, verifier_events

    data = Path(args.data)
    default_split = {"gsm8k": "train", "math500": "test", "math": "test"}
    rows1, rows2, notes = [], [], []
    for item in args.datasets.split(","):
        name, _, sp = item.partition(":")
        split = {name: sp or default_split[name]}
        task = get_task(name, data_dir=str(data / name))
        probs = task.problems(split[name])
        golds = [p.answer for p in probs]
        if name == "gsm8k":  # the raw worked answer, "... #### 72", calculator annotations and all
            sols = [r["answer"] for r in read_jsonl(data / name / f"{split[name]}.jsonl")]
            assert len(sols) == len(probs)
        else:
            sols = [p.meta["solution"] for p in probs]
        refs = [task.reference_trace(p).answer for p in probs]

        def core(args_, task=task):  # what the verify op does per trace
            text, gold = args_
            pred = task.extract_answer(text)
            return pred, (pred is not None and task.verify(pred, gold))

        def mv_only(args_, task=task):
            text, gold = args_
            pred = task.extract_answer(text)
            return pred, (pred is not None and gold is not None and math_verify_equal(pred, gold, VERIFY_TIMEOUT_S))

        def scored(args_, task=task):  # a student completion, as the evaluate stage scores it
            return task.score(*args_)

        for label, fn, texts in (("reference trace", core, refs), ("solution as completion", scored, sols),
                                 ("reference trace, math-verify only", mv_only, refs),
                                 ("solution as completion, math-verify only", mv_only, sols)):
            res, secs = _timed(fn, list(zip(texts, golds)))
            ok = sum(c for _, c in res)
            none = sum(p is None for p, _ in res)
            rows1.append((name, split[name], label, len(res), ok, none, secs))
            if label == "solution as completion":
                ours = res
                fails = [(p.id, p.answer, pred) for p, (pred, c) in zip(probs, res) if not c]
                for f in fails[: args.show]:
                    notes.append(f"- {name} not credited: id `{f[0]}`, gold `{f[1]}`, extracted `{f[2]}`")

        def direct(args_):
            sol, gold = args_
            if gold is None:
                return False
            g = parse(f"${gold}$")
            return bool(g) and bool(verify(g, parse(sol)))

        mv, secs = _timed(direct, list(zip(sols, golds)))
        both = sum(a[1] and b for a, b in zip(ours, mv))
        differ = [i for i, (a, b) in enumerate(zip(ours, mv)) if a[1] != b]
        n_ours_only = sum(ours[i][1] for i in differ)
        rows2.append((name, len(probs), sum(a[1] for a in ours), sum(mv), both, len(probs) - len(differ),
                      n_ours_only, len(differ) - n_ours_only, secs))
        for i in differ[: args.show]:
            who = "ours only" if ours[i][1] else "math-verify only"
            notes.append(f"- {name} credited by {who}: id `{probs[i].id}`, gold `{golds[i]}`, ours extracted "
                         f"`{ours[i][0]}`, math-verify extracted `{[str(x) for x in parse(sols[i])]}`")

    print(f"\ncommand: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print("\n### Verify op core (extract + verify)\n")
    print("| dataset | split | completion | n | credited | credited % | no answer | s | records/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, sp, label, n, ok, none, secs in rows1:
        print(f"| {name} | {sp} | {label} | {n} | {ok} | {100 * ok / n:.2f} | {none} | {secs:.2f} | {n / secs:,.0f} |")
    print("\n### Agreement with math-verify applied directly to the gold solution\n")
    print("| dataset | n | ours credited | math-verify credited | both | agree | agree % | ours only "
          "| math-verify only | math-verify s | math-verify records/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, o, m, both, agree, oo, mo, secs in rows2:
        print(f"| {name} | {n} | {o} | {m} | {both} | {agree} | {100 * agree / n:.2f} | {oo} | {mo} "
              f"| {secs:.2f} | {n / secs:,.0f} |")
    print(f"\nverifier timeouts/errors: {dict(verifier_events) or 'none'}")
    if notes:
        print("\nNot credited / disagreements:\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
