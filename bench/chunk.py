"""Measure the `chunk` curation op: non-reasoning detection against the oracle teacher's labels.

    python bench/chunk.py --n 50 --out runs/bench-chunk.json

For each embedder (minilm, lexical) and each synthetic family (arithmetic, rules; levels 1-4, the
oracle's ``long`` traces), chunks every trace and scores non-reasoning detection per oracle
sentence (positive = non-reasoning; a sentence is predicted non-reasoning when most of its
characters fall in non-reasoning chunks). Prints a markdown table with precision, recall, F1,
chunks per trace and throughput (sentences per second through split + label + embed + DP, model
load excluded), and the share of GSM8K reference-solution sentences labelled reasoning (a sanity
check: most of them compute a new number). Runs on one thread by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50, help="problems per level (levels 1-4) per family")
    ap.add_argument("--out", default=None, help="optional JSON file for the results")
    ap.add_argument("--embedders", default="minilm,lexical", help="comma-separated: minilm, lexical")
    ap.add_argument("--gsm8k-n", type=int, default=100, help="GSM8K train solutions for the sanity check (0: skip)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads for the minilm embedder")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from thinkling.curate.chunking import (
        ChunkOptions, chunk_rationale, get_embedder, label_sentences, nonreasoning_counts, precision_recall,
        split_sentences,
    )
    from thinkling.tasks import get_task

    rows = []
    for name in [e.strip() for e in args.embedders.split(",") if e.strip()]:
        opts = ChunkOptions(embedder=name)
        t0 = time.perf_counter()
        embedder = get_embedder(opts)
        if name == "minilm":
            import torch

            torch.set_num_threads(args.threads)
        load_s = time.perf_counter() - t0
        for family in ("arithmetic", "rules"):
            task = get_task(family)
            problems = task.problems("train", n=args.n, levels=[1, 2, 3, 4])
            traces = [(p, task.oracle(p, "long", seed=0)) for p in problems]
            counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
            n_chunks = n_sents = 0
            t0 = time.perf_counter()
            for p, tr in traces:
                chunks = chunk_rationale(p.question, tr.reasoning, tr.answer, embedder, opts)
                for k, v in nonreasoning_counts(chunks, tr.reasoning, tr.sentences).items():
                    counts[k] += v
                n_chunks += len(chunks)
                n_sents += len(split_sentences(tr.reasoning))
            secs = time.perf_counter() - t0
            prec, rec, f1 = precision_recall(counts)
            rows.append({"embedder": embedder.name, "family": family, "traces": len(traces), "sentences": n_sents,
                         "chunks_per_trace": n_chunks / len(traces), "precision": prec, "recall": rec, "f1": f1,
                         "sentences_per_s": n_sents / secs, "load_s": load_s, **counts})

    print(f"\ncommand: python bench/chunk.py {' '.join(sys.argv[1:])}")
    print("\n| family | embedder | traces | oracle sentences (NR) | P non-reasoning | R non-reasoning | F1 "
          "| chunks/trace | sentences/s | load s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        oracle = r["tp"] + r["fp"] + r["fn"] + r["tn"]
        print(f"| {r['family']} | {r['embedder']} | {r['traces']} | {oracle} ({r['tp'] + r['fn']}) "
              f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['chunks_per_trace']:.1f} "
              f"| {r['sentences_per_s']:.0f} | {r['load_s']:.1f} |")

    result: dict = {"n_per_level": args.n, "rows": rows}
    if args.gsm8k_n:
        task = get_task("gsm8k")
        n_reason = n_total = 0
        for p in task.problems("train", n=args.gsm8k_n):
            sol = p.meta["solution"]
            sents = [sol[a:b] for a, b in split_sentences(sol)]
            labels = label_sentences(p.question, sents, p.answer or "")
            n_reason += sum(labels)
            n_total += len(labels)
        share = n_reason / max(n_total, 1)
        result["gsm8k"] = {"solutions": args.gsm8k_n, "sentences": n_total, "reasoning": n_reason, "share": share}
        print(f"\nGSM8K train reference solutions ({args.gsm8k_n}): {n_reason}/{n_total} sentences "
              f"labelled reasoning ({100 * share:.1f}%)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
