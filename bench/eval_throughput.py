"""Eval throughput of the hf backend: batch 1 vs batched, through the real eval stage.

    OMP_NUM_THREADS=2 python bench/eval_throughput.py [--quick] [--batch-sizes 1,32,64] [--out runs/bench-eval.md]

On a shared machine, set ``OMP_WAIT_POLICY=PASSIVE`` (the script sets it unless the environment already does):
with OpenMP's default busy-waiting, two torch threads competing with other processes for two cores ran
batch-1 decoding at 2 tokens/s instead of ~400 (measured; see docs/benchmarks.md).

One model, the same problems, greedy, ``--max-new-tokens`` cap (128). For each benchmark (GSM8K test, the
first ``--gsm8k-n`` problems of ``../shared/data/gsm8k``; the synthetic arithmetic test set, ``--arith-n``
problems per level) and each batch size, ``evaluate(EvalConfig(..., batch_size=b))`` runs into a fresh
directory and its wall time is measured around the whole call (engine load, generation, scoring, writing
results). Every configuration runs ``--repeats`` times, interleaved (the order of the batch sizes is
reversed on every other round) because the machine is shared; the table keeps the faster run.

The model: with random weights (what ``bench/generate_throughput.py`` uses) every reply runs to the cap,
which is the best case for batching. Eval traffic is not like that, so this script trains the default tiny
Llama (``TinySpec()``) with the real train stage (sft, one thread by default) for ``--train-minutes`` on a
mix of arithmetic oracle traces (long and concise styles, levels 1-4) and GSM8K train solutions: its greedy
replies end at varied lengths (after 2 minutes: 30-42 tokens on arithmetic, by level; 40-128 on GSM8K,
most at the cap). The time budget makes the model depend on the machine's load, so the printed table says
how many steps it got and how long its replies are. ``--model PATH`` evaluates an existing checkpoint
instead (``--work DIR`` keeps the trained one in ``DIR/model``).

Printed per benchmark: problems/s and generated tokens/s over the stage's wall time, the share of that
time spent in ``model.generate`` (the completions' ``seconds``), the decode slots a batch used (generated
tokens / (rows x longest reply of the batch), for the batches ``generate_batched`` forms: a short reply
keeps its row busy until the longest one ends), the ratio to batch 1, and a PASS/MISS line: the greedy
completions must be identical across batch sizes and repeats (a MISS exits with status 1).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_model(work: Path, gsm8k_dir: Path, minutes: float, threads: int, n_arith: int, n_gsm8k: int) -> Path:
    """Train the default tiny Llama for ``minutes`` with the train stage on mixed-length replies."""
    from rich.console import Console

    from thinkling.artifacts import write_jsonl
    from thinkling.records import Example
    from thinkling.tasks import get_task
    from thinkling.train.config import TrainConfig
    from thinkling.train.stage import train

    rng = random.Random(0)
    ar = get_task("arithmetic")
    examples = []
    for p in ar.problems("train", n=n_arith // 4, levels=[1, 2, 3, 4]):
        style = rng.choice(("long", "concise"))
        tr = ar.oracle(p, style, seed=0)
        examples.append(Example(id=f"{p.id}/{style}", problem_id=p.id, task=p.task, level=p.level,
                                question=p.question, reasoning=tr.reasoning, answer=tr.answer, gold=p.answer))
    gsm = get_task("gsm8k", data_dir=str(gsm8k_dir))
    for p in gsm.problems("train", n=n_gsm8k):
        tr = gsm.reference_trace(p)
        if tr is not None:
            examples.append(Example(id=p.id, problem_id=p.id, task=p.task, level=p.level, question=p.question,
                                    reasoning=tr.reasoning, answer=tr.answer, gold=p.answer))
    rng.shuffle(examples)
    data = work / "train.jsonl"
    write_jsonl(data, examples)
    cfg = TrainConfig(data=str(data), out=str(work / "model"), model="tiny", batch_size=16, lr=2e-3, max_len=384,
                      budget_minutes=minutes, threads=threads, seed=0, show_mask=False, save_steps=100_000)
    train(cfg, force=True, console=Console(file=io.StringIO()))
    return work / "model"


def decode_slots_used(model: Path, problems, tokens: dict[str, int], batch: int) -> float:
    """Generated tokens / (rows x longest reply) over the batches ``generate_batched`` forms (prompts
    sorted by length, stable). 1.0 when every reply of a batch has the same length."""
    from thinkling.models.loading import load_tokenizer
    from thinkling.models.render import render_prompt

    tok = load_tokenizer(str(model))
    lens = [len(render_prompt(tok, [{"role": "user", "content": p.question}])) for p in problems]
    order = sorted(range(len(problems)), key=lambda i: lens[i])
    used = slots = 0
    for s in range(0, len(order), batch):
        ts = [tokens[problems[i].id] for i in order[s:s + batch]]
        used += sum(ts)
        slots += len(ts) * max(ts)
    return used / slots


def run_eval(model: Path, spec: dict, batch: int, max_new: int, threads: int, out: Path) -> dict:
    from rich.console import Console

    from thinkling.evaluate.stage import EvalConfig, evaluate

    cfg = EvalConfig(out=str(out), models=[{"name": "tiny", "path": str(model)}], tasks=[spec],
                     strategies=["greedy"], batch_size=batch, max_new_tokens=max_new, threads=threads, seed=0)
    t0 = time.perf_counter()
    evaluate(cfg, force=True, console=Console(file=io.StringIO()))
    wall = time.perf_counter() - t0
    samples = [json.loads(ln) for ln in (out / "samples.jsonl").read_text().splitlines() if ln.strip()]
    row = next(r for r in json.loads((out / "results.json").read_text()) if r["level"] == "all")
    res = {"wall": wall, "n": len(samples), "tokens": sum(s["tokens"] for s in samples),
           "gen_seconds": row["seconds_per_problem"] * row["n"], "accuracy": row["accuracy"],
           "truncated": sum(s["truncated"] for s in samples),
           "completions": {s["problem_id"]: s["completion"] for s in samples},
           "token_counts": {s["problem_id"]: s["tokens"] for s in samples}}
    shutil.rmtree(out, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint to evaluate (default: train a tiny one for --train-minutes)")
    ap.add_argument("--train-minutes", type=float, default=2.0)
    ap.add_argument("--gsm8k-n", type=int, default=128, help="first N GSM8K test problems")
    ap.add_argument("--arith-n", type=int, default=64, help="arithmetic test problems per level (levels 1-2 "
                    "hold only 3 and 12)")
    ap.add_argument("--batch-sizes", default="1,32,64")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration, interleaved; the best is kept")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the eval runs")
    ap.add_argument("--train-threads", type=int, default=1, help="torch threads while training the model (1: on a "
                    "shared machine two threads can run several times slower than one)")
    ap.add_argument("--gsm8k-dir", default=os.environ.get("THINKLING_GSM8K_DIR", str(REPO.parent / "shared/data/gsm8k")))
    ap.add_argument("--quick", action="store_true", help="~1 minute smoke test: 20 s of training (too little "
                    "to end replies early: most run to the cap), 16 GSM8K and 27 arithmetic problems, batch sizes "
                    "1 and 32, 64 new tokens")
    ap.add_argument("--work", help="keep the model and data here (default: a temp dir, removed at the end)")
    ap.add_argument("--out", help="also write the tables to this markdown file")
    a = ap.parse_args()
    if a.quick:
        a.train_minutes, a.gsm8k_n, a.arith_n, a.max_new_tokens = 1 / 3, 16, 8, 64
        a.batch_sizes = "1,32"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see the module docstring
    import torch

    torch.set_num_threads(a.threads)
    batches = [int(b) for b in a.batch_sizes.split(",")]
    if batches[0] != 1:
        raise SystemExit("--batch-sizes must start with 1 (the baseline)")
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    if a.model:
        model, how = Path(a.model), a.model
    else:
        t0 = time.perf_counter()
        model = build_model(work, Path(a.gsm8k_dir), a.train_minutes, a.train_threads, n_arith=4000, n_gsm8k=4000)
        torch.set_num_threads(a.threads)
        steps = json.loads((model / "manifest.json").read_text()).get("counts", {}).get("steps", "?")
        how = (f"tiny TinySpec() trained {a.train_minutes:.2g} min with {a.train_threads} thread(s) (sft, {steps} "
               f"steps of 16) on arithmetic traces (long + concise) and GSM8K train solutions "
               f"({time.perf_counter() - t0:.0f} s with tokenizer and data)")
        print(f"model: {how}", flush=True)
    specs = {"gsm8k test": {"name": "gsm8k", "split": "test", "n": a.gsm8k_n, "options": {"data_dir": a.gsm8k_dir}},
             "arithmetic test": {"name": "arithmetic", "split": "test", "n": a.arith_n}}
    for spec in specs.values():  # warm-up: imports, math-verify, first torch calls
        run_eval(model, {**spec, "n": 2}, 2, 8, a.threads, work / "warmup")
    load0 = os.getloadavg()[0]
    runs: dict[tuple[str, int], list[dict]] = {}
    for rep in range(a.repeats):
        order = batches if rep % 2 == 0 else batches[::-1]
        for label, spec in specs.items():
            for b in order:
                r = run_eval(model, spec, b, a.max_new_tokens, a.threads, work / f"eval-{rep}-{b}")
                runs.setdefault((label, b), []).append(r)
                print(f"round {rep + 1} {label} batch {b}: {r['wall']:.2f} s", flush=True)
    from thinkling.tasks.spec import TaskSpec

    setup = (f"model: {how}; greedy, max_new_tokens {a.max_new_tokens}, torch threads {a.threads}, "
             f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, {os.cpu_count()} CPUs, best of {a.repeats} "
             f"interleaved runs; load average (1 min) "
             f"{load0:.1f} before the runs, {os.getloadavg()[0]:.1f} after")
    lines = [f"`{' '.join(['python', *sys.argv])}`", "", setup, "",
             ("| benchmark | n | batch | wall s | in generate s | problems/s | gen tokens/s | mean tokens | "
              "truncated | decode slots used | vs batch 1 | accuracy |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    checks = []
    for label, spec in specs.items():
        problems = TaskSpec(**spec).problems()
        base = None
        ref = runs[(label, 1)][0]["completions"]
        for b in batches:
            rs = runs[(label, b)]
            best = min(rs, key=lambda r: r["wall"])
            pps = best["n"] / best["wall"]
            base = base or pps
            slots = decode_slots_used(model, problems, best["token_counts"], b)
            lines.append(f"| {label} | {best['n']} | {b} | {best['wall']:.2f} | {best['gen_seconds']:.2f} | "
                         f"{pps:.2f} | {best['tokens'] / best['wall']:.0f} | {best['tokens'] / best['n']:.1f} | "
                         f"{best['truncated']} | {100 * slots:.0f}% | {pps / base:.1f}x | "
                         f"{100 * best['accuracy']:.1f}% |")
            for r in rs:
                diff = [k for k in ref if r["completions"].get(k) != ref[k]]
                checks.append((label, b, len(diff), len(ref)))
    lines.append("")
    missed = False
    for label in specs:
        cs = [c for c in checks if c[0] == label]
        bad = sum(c[2] for c in cs)
        status = "PASS" if bad == 0 else "MISS"
        missed |= bad > 0
        detail = ", ".join(f"batch {b}: {d} differ" for _, b, d, _ in cs if d) or "none differ"
        lines.append(f"{status}: {label}: greedy completions identical across batch sizes "
                     f"{'/'.join(map(str, batches))} and {a.repeats} repeats ({cs[0][3]} problems; {detail})")
    lines.append(f"\ntotal wall {time.perf_counter() - t_start:.0f} s")
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    if missed:
        raise SystemExit("MISS: greedy completions differ across batch sizes (see above)")


if __name__ == "__main__":
    main()
