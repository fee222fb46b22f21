"""Measure SFT training throughput: thinkling's train stage vs TRL's SFTTrainer, side by side.

    OMP_NUM_THREADS=1 python bench/train_throughput.py --steps 60 --batch-size 32 --out runs/bench-train-throughput.json

Same model (one tiny Llama built from scratch with the default ``TinySpec``, loaded fresh from the
same init directory for every run), same data (oracle ``long`` traces of the arithmetic task,
levels 1-4, so lengths vary ~3x), same sequence budget (``--max-len``), same optimizer settings
(AdamW, lr, beta2 0.98, cosine with 5% warmup, fp32, no gradient checkpointing), same per-device
batch size and number of steps, one thread, run one after the other in this process.

- **ours**: the real stage, ``thinkling.train.stage.train`` on a curated ``train.jsonl`` of
  ``Example`` rows (length-grouped batches, right padding, loss on the assistant reply).
- **TRL**: ``trl.SFTTrainer`` on the same conversations in the conversational prompt-completion
  format with ``completion_only_loss=True`` (``assistant_only_loss=True`` needs ``{% generation %}``
  markers that our ChatML template does not have: the script probes it and reports the error).
  Variants (``--trl``): ``random`` (TRL's default sampler, padded batches), ``grouped`` (the same
  length-grouped sampler as ours), ``padding_free`` (flattened batches, ``max_length=None``, which
  TRL requires without packing; every example fits the budget anyway) and ``packing`` (BFD packing
  to ``--max-len``; it changes examples per step, so its row says how many it saw).

Both trainers are instrumented the same way, by this script only: a callback and a wrapper of
``training_step`` installed on every ``transformers.Trainer`` built while measuring. Per optimizer
step it records the batch actually processed: trained tokens (labels != -100), real tokens,
processed tokens (the input tensor, padding included) and sequences. The timed window runs from
the end of step ``--warmup-steps`` to the end of the last step (data loading, forward, backward,
optimizer, logging; model load, dataset preparation and the final save are outside it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TRL_VARIANTS = ("random", "grouped", "padding_free", "packing")


# ---------------------------------------------------------------------------------- measurement


class Meter:
    """Per-step statistics of the batches a Trainer actually trained on, and step end times."""

    def __init__(self):
        self.steps: list[dict] = []
        self._pending = self._zero()
        self.t_begin = self.t_end = None

    @staticmethod
    def _zero() -> dict:
        return {"trained": 0, "real": 0, "processed": 0, "sequences": 0, "micro_batches": 0}

    def record_inputs(self, inputs: dict) -> None:
        ids = inputs["input_ids"]
        labels = inputs["labels"]
        p = self._pending
        p["trained"] += int((labels != -100).sum())
        p["processed"] += ids.numel()
        if "attention_mask" in inputs:
            p["real"] += int(inputs["attention_mask"].sum())
            p["sequences"] += ids.shape[0]
        else:  # padding-free: one flattened row; sequences start where position_ids restart at 0
            pos = inputs["position_ids"]
            p["real"] += pos.numel()
            p["sequences"] += int((pos == 0).sum())
        p["micro_batches"] += 1

    def step_end(self, step: int) -> None:
        self.steps.append({"step": step, "t": time.perf_counter(), **self._pending})
        self._pending = self._zero()

    def summary(self, warmup: int) -> dict:
        if len(self.steps) <= warmup:
            raise RuntimeError(f"only {len(self.steps)} steps ran; need more than --warmup-steps={warmup}")
        timed = self.steps[warmup:]
        secs = timed[-1]["t"] - self.steps[warmup - 1]["t"] if warmup > 0 else timed[-1]["t"] - self.t_begin
        tot = {k: sum(s[k] for s in timed) for k in ("trained", "real", "processed", "sequences")}
        return {
            "steps_total": len(self.steps),
            "steps_timed": len(timed),
            "seconds": secs,
            "train_loop_seconds_all_steps": (self.t_end or timed[-1]["t"]) - self.t_begin,
            **{f"{k}_tokens" if k != "sequences" else k: v for k, v in tot.items()},
            "padding_share": 1 - tot["real"] / max(tot["processed"], 1),
            "trained_share_of_processed": tot["trained"] / max(tot["processed"], 1),
            "trained_tokens_per_s": tot["trained"] / secs,
            "processed_tokens_per_s": tot["processed"] / secs,
            "seconds_per_step": secs / len(timed),
            "examples_per_step": tot["sequences"] / len(timed),
        }


@contextlib.contextmanager
def metered(meter: Meter):
    """Instrument every ``transformers.Trainer`` built inside the block (ours and TRL's alike)."""
    from transformers import Trainer, TrainerCallback

    class StepClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            meter.t_begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            meter.step_end(state.global_step)

        def on_train_end(self, args, state, control, **kw):
            meter.t_end = time.perf_counter()

    original_init = Trainer.__init__

    def init(self, *a, **kw):
        original_init(self, *a, **kw)
        self.add_callback(StepClock())
        step = self.training_step

        def training_step(model, inputs, *rest, **kwrest):
            meter.record_inputs(inputs)
            return step(model, inputs, *rest, **kwrest)

        self.training_step = training_step

    Trainer.__init__ = init
    try:
        yield meter
    finally:
        Trainer.__init__ = original_init


# ---------------------------------------------------------------------------------- data, model


def build_examples(n_per_level: int):
    from thinkling.records import Example
    from thinkling.tasks import get_task

    task = get_task("arithmetic")
    examples = []
    for p in task.problems("train", n=n_per_level, levels=[1, 2, 3, 4]):
        tr = task.oracle(p, "long", seed=0)
        examples.append(Example(id=f"{p.id}/long", problem_id=p.id, task=p.task, level=p.level,
                                question=p.question, reasoning=tr.reasoning, answer=tr.answer, gold=p.answer))
    return examples


def conversations(examples) -> list[dict]:
    """TRL's conversational prompt-completion rows: the same user turn and assistant reply as ours."""
    from thinkling.format import format_assistant

    return [{"prompt": [{"role": "user", "content": ex.question}],
             "completion": [{"role": "assistant", "content": format_assistant(ex.reasoning, ex.answer)}]}
            for ex in examples]


def probe_assistant_only_loss(init_dir: Path, examples) -> str:
    """Does ``assistant_only_loss=True`` accept our template? Returns 'ok' or the error message."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from thinkling.models.loading import load_model, load_tokenizer

    rows = [{"messages": c["prompt"] + c["completion"]} for c in conversations(examples[:4])]
    cfg = SFTConfig(output_dir=str(init_dir.parent / "probe"), assistant_only_loss=True, report_to="none",
                    use_cpu=True, bf16=False, gradient_checkpointing=False, max_steps=1, save_strategy="no",
                    disable_tqdm=True)
    try:
        SFTTrainer(model=load_model(str(init_dir)), args=cfg, train_dataset=Dataset.from_list(rows),
                   processing_class=load_tokenizer(str(init_dir)))
    except (ValueError, RuntimeError) as e:  # the documented failure modes; the message is reported
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    return "ok"


# ---------------------------------------------------------------------------------- runs


def run_ours(args, data_file: Path, init_dir: Path, work: Path, tag: str) -> dict:
    from rich.console import Console

    from thinkling.train.config import TrainConfig
    from thinkling.train.stage import train

    cfg = TrainConfig(data=str(data_file), out=str(work / tag), model=str(init_dir), max_steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, threads=args.threads, show_mask=False,
                      max_len=args.max_len, save_steps=args.steps, logging_steps=args.logging_steps, seed=0)
    meter = Meter()
    with metered(meter):
        manifest = train(cfg, force=True, console=Console(file=io.StringIO()))
    counts = manifest["counts"]
    row = {"name": tag, "trainer": "thinkling", "setting": "length-grouped, right-padded",
           **meter.summary(args.warmup_steps), "final_loss": counts["final_loss"],
           "manifest_train_seconds": counts["train_seconds"], "dropped_over_max_len": counts["dropped_over_max_len"]}
    return row


def trl_config(args, variant: str, work: Path, batch_size: int):
    from trl import SFTConfig

    common = dict(
        output_dir=str(work / f"trl-{variant}"), per_device_train_batch_size=batch_size, gradient_accumulation_steps=1,
        learning_rate=args.lr, weight_decay=0.0, adam_beta2=0.98, max_steps=args.steps, warmup_steps=0.05,
        lr_scheduler_type="cosine", logging_steps=args.logging_steps, logging_first_step=True, save_strategy="no",
        seed=0, data_seed=0, report_to="none", use_cpu=True, bf16=False, gradient_checkpointing=False,
        dataloader_num_workers=0, disable_tqdm=True, completion_only_loss=True, max_length=args.max_len,
        packing=False, padding_free=False, train_sampling_strategy="random",
    )
    if variant == "grouped":
        common["train_sampling_strategy"] = "group_by_length"
    elif variant == "padding_free":
        # without packing TRL refuses a max_length with padding_free; no example exceeds the budget (checked)
        common.update(padding_free=True, max_length=None)
    elif variant == "packing":
        common.update(packing=True, packing_strategy="bfd")
    return SFTConfig(**common)


def run_trl(args, variant: str, convs: list[dict], init_dir: Path, work: Path, tokens_per_example: float) -> dict:
    from datasets import Dataset
    from trl import SFTTrainer

    from thinkling.models.loading import load_model, load_tokenizer

    batch_size = args.batch_size
    if variant == "packing":  # packs of max_len tokens: about as many tokens per step as the others
        batch_size = max(1, round(args.batch_size * tokens_per_example / args.max_len))
    meter = Meter()
    with metered(meter):
        trainer = SFTTrainer(model=load_model(str(init_dir)), args=trl_config(args, variant, work, batch_size),
                             train_dataset=Dataset.from_list(convs), processing_class=load_tokenizer(str(init_dir)))
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    setting = {"random": "random order, right-padded", "grouped": "length-grouped, right-padded",
               "padding_free": "random order, padding-free", "packing": f"BFD packing to {args.max_len}"}[variant]
    row = {"name": f"trl-{variant}", "trainer": "trl.SFTTrainer", "setting": setting,
           "per_device_batch": batch_size, **meter.summary(args.warmup_steps),
           "final_loss": round(losses[-1], 4) if losses else None}
    return row, trainer


def mask_check(tokenizer, examples, trl_dataset) -> dict:
    """Compare TRL's prepared labels with ours example by example (ids and trained positions)."""
    from thinkling.models.render import render
    from thinkling.format import format_assistant

    ours = []
    for ex in examples:  # what the sft method trains on: render(), loss where the mask is 1
        ids, mask = render(tokenizer, [{"role": "user", "content": ex.question}],
                           format_assistant(ex.reasoning, ex.answer))
        ours.append({"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask)], "length": len(ids)})
    same_prefix = extra = 0
    tails: set[str] = set()
    for o, t in zip(ours, trl_dataset):
        n = len(o["input_ids"])
        t_ids, t_lab = t["input_ids"], t["labels"]
        if t_ids[:n] == o["input_ids"] and t_lab[:n] == o["labels"]:
            same_prefix += 1
            extra += sum(1 for x in t_lab[n:] if x != -100)
            tails.add(tokenizer.decode(t_ids[n:]))
    return {"examples": len(ours), "trl_equals_ours_then_tail": same_prefix,
            "trl_extra_trained_tokens_per_example": extra / max(same_prefix, 1), "trl_tails": sorted(tails),
            "lengths": {"min": min(r["length"] for r in ours), "max": max(r["length"] for r in ours),
                        "mean": sum(r["length"] for r in ours) / len(ours)},
            "trained_per_example_mean": sum(sum(x != -100 for x in r["labels"]) for r in ours) / len(ours)}


# ---------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    ap.add_argument("--warmup-steps", type=int, default=5, help="first steps of each run left out of the timing")
    ap.add_argument("--batch-size", type=int, default=32, help="per-device batch size (examples) for every run")
    ap.add_argument("--n", type=int, default=600, help="problems per level (levels 1-4; level 1 has fewer)")
    ap.add_argument("--max-len", type=int, default=1024, help="sequence budget in tokens (ours: max_len, TRL: max_length)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--logging-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads")
    ap.add_argument("--trl", default="random,grouped,padding_free,packing",
                    help=f"TRL variants to run, comma-separated from: {', '.join(TRL_VARIANTS)}")
    ap.add_argument("--no-repeat-ours", action="store_true",
                    help="do not run ours a second time after TRL (the repeat checks the machine stayed steady)")
    ap.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--out", default=None, help="optional JSON file for the results")
    args = ap.parse_args()
    variants = [v.strip() for v in args.trl.split(",") if v.strip()]
    for v in variants:
        if v not in TRL_VARIANTS:
            ap.error(f"unknown TRL variant {v!r}; known: {', '.join(TRL_VARIANTS)}")
    if args.steps <= args.warmup_steps:
        ap.error("--steps must exceed --warmup-steps")

    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[k] = "1"
    import torch

    torch.set_num_threads(args.threads)
    import datasets
    import transformers
    import trl
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()

    from thinkling.artifacts import write_jsonl
    from thinkling.models.loading import load_tokenizer
    from thinkling.models.tiny import TinySpec, build_tiny

    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="thinkling-bench-train-")
        work = Path(tmp.name)

    examples = build_examples(args.n)
    data_file = work / "data" / "train.jsonl"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(data_file, examples)
    init_dir = work / "init"
    # the tokenizer is trained on the training text (questions, reasoning, answers), as the train stage
    # does for model=tiny
    texts = sorted({t for e in examples for t in (e.question, e.reasoning, e.answer) if t})
    build_tiny(init_dir, texts, TinySpec(), seed=0)
    tokenizer = load_tokenizer(str(init_dir))
    convs = conversations(examples)
    levels = {lv: sum(1 for e in examples if e.level == lv) for lv in (1, 2, 3, 4)}

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say(f"{len(examples)} examples (per level {levels}); model {init_dir}; "
        f"{args.steps} steps x batch {args.batch_size}, {args.threads} thread(s), warmup {args.warmup_steps} steps")
    aol = probe_assistant_only_loss(init_dir, examples)
    say(f"TRL assistant_only_loss=True with our template: {aol}")

    rows: list[dict] = []
    check = None
    say("run: ours")
    rows.append(run_ours(args, data_file, init_dir, work, "ours"))
    tokens_per_example = rows[0]["real_tokens"] / max(rows[0]["sequences"], 1)
    for v in variants:
        say(f"run: trl-{v}")
        row, trainer = run_trl(args, v, convs, init_dir, work, tokens_per_example)
        rows.append(row)
        if check is None and v != "packing":
            check = mask_check(tokenizer, examples, trainer.train_dataset)
        del trainer
    if not args.no_repeat_ours:
        say("run: ours (again)")
        rows.append(run_ours(args, data_file, init_dir, work, "ours-again"))

    ours = [r for r in rows if r["trainer"] == "thinkling"]
    ours_tps = sum(r["trained_tokens_per_s"] for r in ours) / len(ours)
    for r in rows:
        r["ours_over_this"] = ours_tps / r["trained_tokens_per_s"]

    print(f"\ncommand: OMP_NUM_THREADS={args.threads} python bench/train_throughput.py {' '.join(sys.argv[1:])}")
    print(f"\n{len(examples)} oracle `long` traces (arithmetic, levels 1-4: {levels}); real length "
          f"{check['lengths']['min']}-{check['lengths']['max']} tokens (mean {check['lengths']['mean']:.0f}); "
          f"tiny Llama {TinySpec().model_dump()}; batch {args.batch_size}, {args.steps} steps "
          f"(first {args.warmup_steps} not timed), lr {args.lr}, fp32, {args.threads} thread(s), "
          f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}\n"
          if check else "")
    print("| run | batching | timed steps | examples/step | trained tokens | processed tokens | padding share "
          "| s/step | trained tok/s | processed tok/s | ours / this | final loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['setting']} | {r['steps_timed']} | {r['examples_per_step']:.1f} "
              f"| {r['trained_tokens']} | {r['processed_tokens']} | {100 * r['padding_share']:.1f}% "
              f"| {r['seconds_per_step']:.2f} | {r['trained_tokens_per_s']:.0f} | {r['processed_tokens_per_s']:.0f} "
              f"| {r['ours_over_this']:.2f}x | {r['final_loss']} |")
    trl_rows = [r for r in rows if r["trainer"] != "thinkling"]
    if trl_rows:
        best = max(trl_rows, key=lambda r: r["trained_tokens_per_s"])
        print(f"\nours (mean of {len(ours)} runs) {ours_tps:.0f} trained tok/s; best TRL ({best['name']}) "
              f"{best['trained_tokens_per_s']:.0f}: ratio {ours_tps / best['trained_tokens_per_s']:.2f}x "
              f"(goal >= 1.5x)")
    print(f"TRL assistant_only_loss=True: {aol}; TRL rows use completion_only_loss=True (prompt-completion).")
    if check:
        print(f"mask check: {check['trl_equals_ours_then_tail']}/{check['examples']} TRL examples = ours + tail "
              f"{check['trl_tails']}, {check['trl_extra_trained_tokens_per_example']:.2f} extra trained token(s) "
              f"per example (ours trains {check['trained_per_example_mean']:.1f} per example)")

    result = {"args": vars(args), "examples": len(examples), "levels": levels, "tiny_spec": TinySpec().model_dump(),
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
              "assistant_only_loss": aol, "mask_check": check, "ours_trained_tokens_per_s": ours_tps, "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
