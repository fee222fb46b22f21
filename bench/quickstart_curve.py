"""Learning curves in training tokens for the quickstart's students, one per seed: how much compute
each needs before its accuracy jumps (what the quickstart's token budgets are calibrated on).

    OMP_NUM_THREADS=1 python bench/quickstart_curve.py --students long,concise --seeds 0,1,2 \\
        --budget long=8e6,concise=3e6 --every long=250,concise=125 --out runs/qs-curve

The quickstart recipe's data (generate + curate, exactly as `thinkling quickstart` makes it) is built
once under ``--out``. Each (student, seed) is then trained by the real train stage with its recipe
config, ``seed`` set and ``budget_tokens`` replaced by ``--budget``, keeping a checkpoint every
``--every`` optimizer steps (this script lifts the stage's one-checkpoint limit); every checkpoint is
evaluated greedily on the quickstart's level-4 test problems. The lr schedule runs on the share of
the *whole* budget, so a checkpoint at half the budget is not the model a run with half the budget
makes (that one would have decayed its lr): the curve says where the jump comes, and the quickstart
budget is then checked by running it. Tokens are exact, so the curve is the same on a busy machine;
only the wall time is not. Prints a markdown table (tokens, step, accuracy per seed) and writes
``curve.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "quickstart.yaml"


def _pairs(s: str, cast=float) -> dict[str, float]:
    return {k: cast(v) for k, v in (x.split("=") for x in s.split(",") if x)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/qs-curve")
    ap.add_argument("--students", default="long,concise")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", default="long=8e6,concise=3e6", help="student=tokens")
    ap.add_argument("--every", default="long=250,concise=125", help="student=steps between checkpoints")
    ap.add_argument("--n", type=int, default=200, help="level-4 test problems")
    args = ap.parse_args()

    import thinkling.train.trainer as trainer_mod
    from thinkling.config import build_config
    from thinkling.curate.stage import curate
    from thinkling.evaluate.config import EvalConfig
    from thinkling.evaluate.stage import evaluate
    from thinkling.generate.stage import generate
    from thinkling.pipeline import load_recipe
    from thinkling.train.stage import train

    keep_all = trainer_mod.training_args

    def training_args(cfg, ckpt_dir, budget):  # every checkpoint kept, for the curve
        a = keep_all(cfg, ckpt_dir, budget)
        a.save_total_limit = None
        return a

    trainer_mod.training_args = training_args
    out = Path(args.out)
    plan = load_recipe(RECIPE, [f"out={out / 'recipe'}"])
    quiet = Console(file=io.StringIO())
    for c in plan.gen.values():
        generate(c, console=quiet)
    for c in plan.cur.values():
        curate(c, console=quiet)
    budgets, every = _pairs(args.budget), _pairs(args.every, int)
    curve: dict = json.loads((out / "curve.json").read_text()) if (out / "curve.json").exists() else {}
    log = Console(stderr=True)
    for student in args.students.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            key = f"{student}/seed-{seed}"
            if key in curve:
                continue
            base = plan.trn[student].model_dump(mode="json")
            base.update({"out": str(out / "train" / student / f"seed-{seed}"), "seed": seed, "budget_minutes": None,
                         "budget_flops": None, "budget_tokens": int(budgets[student]), "save_steps": every[student]})
            cfg = build_config(type(plan.trn[student]), base)
            t0 = time.time()
            m = train(cfg, console=quiet)
            log.print(f"{key}: trained {m['compute']['tokens']} tokens, {m['compute']['steps']} steps in "
                      f"{time.time() - t0:.0f} s")
            points = []
            for ck in sorted(Path(cfg.out, "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
                for f in Path(cfg.out).glob("tokenizer*"):
                    shutil.copy(f, ck / f.name)
                for f in ("chat_template.jinja", "special_tokens_map.json"):
                    if (Path(cfg.out) / f).exists():
                        shutil.copy(Path(cfg.out) / f, ck / f)
                state = json.loads((ck / "trainer_state.json").read_text())
                ev = build_config(EvalConfig, {
                    "out": str(ck / "eval"), "models": [{"name": student, "path": str(ck)}],
                    "task": {"name": "arithmetic", "split": "test", "n": args.n, "levels": [4]},
                    "max_new_tokens": plan.ev.max_new_tokens, "batch_size": plan.ev.batch_size, "threads": 1})
                evaluate(ev, console=quiet)
                rows = json.loads((ck / "eval" / "results.json").read_text())
                acc = next(r["accuracy"] for r in rows if r["level"] == 4)
                points.append({"step": state["global_step"], "tokens": state["num_input_tokens_seen"], "acc": acc})
                log.print(f"  {key} step {state['global_step']} tokens {state['num_input_tokens_seen']}: {acc:.3f}")
                shutil.rmtree(ck)  # a checkpoint is ~14 MB with its optimizer state
            curve[key] = points
            (out / "curve.json").write_text(json.dumps(curve, indent=1))
    print("\n| student/seed | tokens (M) at first >= 50% | at first >= 90% | final accuracy |")
    print("|---|---|---|---|")
    for key, pts in curve.items():
        def first(th):
            return next((f"{p['tokens'] / 1e6:.2f}" for p in pts if p["acc"] >= th), "-")
        print(f"| {key} | {first(0.5)} | {first(0.9)} | {pts[-1]['acc']:.3f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
