"""Measure SFT training throughput: thinkling's train stage vs TRL's SFTTrainer, side by side.

    OMP_NUM_THREADS=1 python bench/train_throughput.py --out runs/bench-train-throughput.json

Same model (one tiny Llama built from scratch with the default ``TinySpec``, loaded fresh from the
same init directory for every run), same data (oracle ``long`` traces of the arithmetic task,
levels 1-4, so lengths vary ~3x), same sequence budget (``--max-len``), same optimizer settings
(AdamW, lr, beta2 0.98, cosine with 5% warmup, no gradient checkpointing unless said), same
per-device batch size and number of steps (so about the same tokens), one thread, in this process.
The configs run in interleaved rounds (A B C ... A B C ...), so that other load on the machine hits
them alike; each figure is the mean over its rounds, and the ratios are given per round too.

- **ours** (``ours``, ``ours-bf16``): the real stage, ``thinkling.train.stage.train`` on a curated
  ``train.jsonl`` of ``Example`` rows (length-grouped batches, right padding, loss on the assistant
  reply); ``ours-bf16`` is ``bf16_autocast=true``.
- **TRL**: ``trl.SFTTrainer`` on the same conversations in the conversational prompt-completion
  format with ``completion_only_loss=True`` (``assistant_only_loss=True`` needs ``{% generation %}``
  markers that our ChatML template does not have: the script probes it and reports the error).
  Configs: ``trl-random`` (TRL's default sampler, padded batches, fp32), ``trl-grouped`` (the same
  length-grouped sampler as ours), ``trl-grouped-bf16`` (bf16 autocast, TRL's default precision),
  ``trl-defaults`` (not run unless asked: bf16 and gradient checkpointing, TRL's own defaults),
  ``trl-padding_free`` (flattened batches with position_ids, ``max_length=None``, which TRL requires
  without packing; every example fits the budget anyway) and ``trl-packing`` (BFD packing to
  ``--max-len``; it changes examples per step, so its row says how many it saw). The last two are
  ~5x slower on CPU and run in the first round only.

Both trainers are instrumented the same way, by this script only: a callback and a wrapper of
``training_step`` installed on every ``transformers.Trainer`` built while measuring. Per optimizer
step it records the batch actually processed: trained tokens (labels != -100), real tokens
(forward tokens, prompt included, padding excluded), processed tokens (the input tensor, padding
included) and sequences. The timed window runs from the end of step ``--warmup-steps`` to the end of
the last step (data loading, forward, backward, optimizer, logging; model load, dataset preparation
and the final save are outside it).

The machine's own matmul FLOP/s is measured after each round (a 2048^3 fp32 matmul, and the model's
linear layers at one step's rows: forward, grad-input and grad-weight shapes), and each row's model
FLOPs utilisation is ``6 x params x real tokens/s`` over the best of them. After the rounds,
``--profile-steps`` of our steps run under ``torch.profiler`` and its top ops are printed.
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

    def __init__(self, profile_after: int | None = None, profile_until: int | None = None):
        self.steps: list[dict] = []
        self._pending = self._zero()
        self.t_begin = self.t_end = None
        self.profile_after = profile_after  # profile the steps after this one up to profile_until
        self.profile_until = profile_until
        self.profiler = None

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
        if self.profile_after is not None and step == self.profile_after:
            from torch.profiler import ProfilerActivity, profile

            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.start()
        if self.profile_until is not None and step == self.profile_until:
            self.stop_profiler()

    def stop_profiler(self) -> None:
        if self.profiler is not None and self.profile_after is not None:
            self.profiler.stop()
            self.profile_after = None

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
            "real_tokens_per_s": tot["real"] / secs,
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
            meter.stop_profiler()

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


OURS_CONFIGS = {  # name: (setting, bf16 autocast)
    "ours": ("length-grouped, right-padded", False),
    "ours-bf16": ("as ours, bf16 autocast", True),
}
TRL_CONFIGS = {  # name: (setting, SFTConfig overrides)
    "trl-random": ("TRL defaults but fp32: random order, right-padded", {}),
    "trl-grouped": ("length-grouped, right-padded", {"train_sampling_strategy": "group_by_length"}),
    "trl-grouped-bf16": ("length-grouped, right-padded, bf16 autocast",
                         {"train_sampling_strategy": "group_by_length", "bf16": True}),
    "trl-defaults": ("TRL's own defaults: random order, bf16, gradient checkpointing",
                     {"bf16": True, "gradient_checkpointing": True}),
    # without packing TRL refuses a max_length with padding_free; no example exceeds the budget (checked)
    "trl-padding_free": ("random order, padding-free (position_ids, one flattened row)",
                         {"padding_free": True, "max_length": None}),
    "trl-packing": ("BFD packing to max_len (position_ids)", {"packing": True, "packing_strategy": "bfd"}),
}
SLOW = ("trl-padding_free", "trl-packing")
"""~5x slower on CPU (attention over the whole flattened row): run in the first round only."""


def run_ours(args, name: str, data_file: Path, init_dir: Path, work: Path, profile_steps: int = 0) -> dict:
    from rich.console import Console

    from thinkling.train.config import TrainConfig
    from thinkling.train.stage import train

    setting, bf16 = OURS_CONFIGS[name]
    steps = args.steps if not profile_steps else args.warmup_steps + profile_steps
    cfg = TrainConfig(data=str(data_file), out=str(work / name), model=str(init_dir), max_steps=steps,
                      batch_size=args.batch_size, lr=args.lr, threads=args.threads, show_mask=False,
                      max_len=args.max_len, save_steps=steps, logging_steps=args.logging_steps, seed=0,
                      bf16_autocast=bf16)
    meter = Meter(profile_after=args.warmup_steps if profile_steps else None,
                  profile_until=steps if profile_steps else None)
    with metered(meter):
        manifest = train(cfg, force=True, console=Console(file=io.StringIO()))
    if profile_steps:
        return meter
    counts = manifest["counts"]
    return {"name": name, "trainer": "thinkling", "setting": setting, **meter.summary(args.warmup_steps),
            "final_loss": counts["final_loss"], "params": counts["params"],
            "tokens_seen": manifest["compute"]["tokens"], "dropped_over_max_len": counts["dropped_over_max_len"]}


def trl_config(args, name: str, work: Path, batch_size: int):
    from trl import SFTConfig

    common = dict(
        output_dir=str(work / name), per_device_train_batch_size=batch_size, gradient_accumulation_steps=1,
        learning_rate=args.lr, weight_decay=0.0, adam_beta2=0.98, max_steps=args.steps, warmup_steps=0.05,
        lr_scheduler_type="cosine", logging_steps=args.logging_steps, logging_first_step=True, save_strategy="no",
        seed=0, data_seed=0, report_to="none", use_cpu=True, bf16=False, gradient_checkpointing=False,
        dataloader_num_workers=0, disable_tqdm=True, completion_only_loss=True, max_length=args.max_len,
        packing=False, padding_free=False, train_sampling_strategy="random",
    )
    common.update(TRL_CONFIGS[name][1])
    return SFTConfig(**common)


def run_trl(args, name: str, convs: list[dict], init_dir: Path, work: Path, tokens_per_example: float):
    from datasets import Dataset
    from trl import SFTTrainer

    from thinkling.models.loading import load_model, load_tokenizer

    batch_size = args.batch_size
    if name == "trl-packing":  # packs of max_len tokens: about as many tokens per step as the others
        batch_size = max(1, round(args.batch_size * tokens_per_example / args.max_len))
    meter = Meter()
    with metered(meter):
        trainer = SFTTrainer(model=load_model(str(init_dir)), args=trl_config(args, name, work, batch_size),
                             train_dataset=Dataset.from_list(convs), processing_class=load_tokenizer(str(init_dir)))
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    row = {"name": name, "trainer": "trl.SFTTrainer", "setting": TRL_CONFIGS[name][0],
           "per_device_batch": batch_size, **meter.summary(args.warmup_steps),
           "final_loss": round(losses[-1], 4) if losses else None}
    return row, trainer


# ---------------------------------------------------------------------------------- the machine


def matmul_flops(tokens: int, spec, vocab: int, seconds: float = 1.0) -> dict:
    """The machine's own fp32 matmul FLOP/s on this thread count: one large square matmul (2048^3) and
    the model's own shapes for a batch of ``tokens`` rows (each linear layer's forward, its input-grad
    and weight-grad products), the latter as total FLOPs / total time."""
    import torch

    def rate(a, b) -> float:
        a @ b  # warm
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 4 or n < 2:
            a @ b
            n += 1
        return n / (time.perf_counter() - t0)  # matmuls per second

    g = torch.Generator().manual_seed(0)
    sq = 2048
    out = {"square_2048": 2 * sq ** 3 * rate(torch.randn(sq, sq, generator=g), torch.randn(sq, sq, generator=g))}
    h, i, n_layers = spec.hidden_size, spec.intermediate_size, spec.num_layers
    linears = [(h, h)] * 4 * n_layers + [(h, i)] * 2 * n_layers + [(i, h)] * n_layers + [(h, vocab)]
    total_flops = total_time = 0.0
    cache: dict = {}
    for k, n in linears:
        for m_, k_, n_ in ((tokens, k, n), (tokens, n, k), (k, tokens, n)):  # forward, grad input, grad weight
            key = (m_, k_, n_)
            if key not in cache:
                cache[key] = rate(torch.randn(m_, k_, generator=g), torch.randn(k_, n_, generator=g))
            total_flops += 2 * m_ * k_ * n_
            total_time += 1 / cache[key]
    out["model_shapes"] = total_flops / total_time
    out["model_shapes_tokens"] = tokens
    return out


def profile_table(args, data_file: Path, init_dir: Path, work: Path, rows: int = 18) -> str:
    """torch.profiler's table of the top ops (self CPU time) over ``--profile-steps`` of our steps."""
    meter = run_ours(args, "ours", data_file, init_dir, work / "profile", profile_steps=args.profile_steps)
    return meter.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


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
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per run")
    ap.add_argument("--warmup-steps", type=int, default=5, help="first steps of each run left out of the timing")
    ap.add_argument("--batch-size", type=int, default=32, help="per-device batch size (examples) for every run")
    ap.add_argument("--n", type=int, default=600, help="problems per level (levels 1-4; level 1 has fewer)")
    ap.add_argument("--max-len", type=int, default=1024, help="sequence budget in tokens (ours: max_len, TRL: max_length)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--logging-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads")
    ap.add_argument("--configs", default=",".join(c for c in (*OURS_CONFIGS, *TRL_CONFIGS) if c != "trl-defaults"),
                    help=f"runs, comma-separated, from: {', '.join((*OURS_CONFIGS, *TRL_CONFIGS))}")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved rounds (A B C A B C ...): noise hits every config alike; "
                         f"{', '.join(SLOW)} run in the first round only")
    ap.add_argument("--profile-steps", type=int, default=3, help="our steps profiled after the rounds (0: none)")
    ap.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--out", default=None, help="optional JSON file for the results")
    args = ap.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in OURS_CONFIGS and c not in TRL_CONFIGS:
            ap.error(f"unknown config {c!r}; known: {', '.join((*OURS_CONFIGS, *TRL_CONFIGS))}")
    if "ours" not in configs:
        ap.error("--configs must include ours (the ratios are to it)")
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
    spec = TinySpec()
    build_tiny(init_dir, texts, spec, seed=0)
    tokenizer = load_tokenizer(str(init_dir))
    convs = conversations(examples)
    levels = {lv: sum(1 for e in examples if e.level == lv) for lv in (1, 2, 3, 4)}

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say(f"{len(examples)} examples (per level {levels}); model {init_dir}; {args.steps} steps x batch "
        f"{args.batch_size}, {args.threads} thread(s), warmup {args.warmup_steps} steps, {args.rounds} round(s)")
    aol = probe_assistant_only_loss(init_dir, examples)
    say(f"TRL assistant_only_loss=True with our template: {aol}")

    t_bench = time.perf_counter()
    check = None
    mean_len = None
    mm_runs = []
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for rnd in range(args.rounds):
        for c in configs:
            if rnd > 0 and c in SLOW:
                continue
            say(f"round {rnd + 1}/{args.rounds}: {c}")
            if c in OURS_CONFIGS:
                row = run_ours(args, c, data_file, init_dir, work)
                mean_len = mean_len or row["real_tokens"] / max(row["sequences"], 1)
            else:
                row, trainer = run_trl(args, c, convs, init_dir, work, mean_len or 220.0)
                if check is None and c not in SLOW:
                    check = mask_check(tokenizer, examples, trainer.train_dataset)
                del trainer
            runs[c].append(row | {"round": rnd + 1})
        tokens_per_step = round(runs["ours"][0]["processed_tokens"] / runs["ours"][0]["steps_timed"])
        say(f"round {rnd + 1}: matmul micro-benchmark ({tokens_per_step} rows)")
        mm_runs.append(matmul_flops(tokens_per_step, spec, len(tokenizer)))
    profile = None
    if args.profile_steps:
        say(f"profile: {args.profile_steps} of our steps")
        profile = profile_table(args, data_file, init_dir, work)
    bench_seconds = time.perf_counter() - t_bench

    # ---- figures: per config, the mean over its rounds of trained and real (forward) tokens per second
    n_params = runs["ours"][0]["params"]
    mm = {k: max(r[k] for r in mm_runs) for k in ("square_2048", "model_shapes")}  # the best the machine did
    rows = []
    for c in configs:
        rs = runs[c]
        row = dict(rs[0])
        for k in ("trained_tokens_per_s", "real_tokens_per_s", "processed_tokens_per_s", "seconds_per_step"):
            row[k] = sum(r[k] for r in rs) / len(rs)
            row[k + "_rounds"] = [r[k] for r in rs]
        row["rounds"] = len(rs)
        row["model_flops_per_s"] = 6 * n_params * row["real_tokens_per_s"]
        row["mfu_vs_square"] = row["model_flops_per_s"] / mm["square_2048"]
        row["mfu_vs_model_shapes"] = row["model_flops_per_s"] / mm["model_shapes"]
        rows.append(row)
    by = {r["name"]: r for r in rows}
    ours = by["ours"]
    for r in rows:
        r["ours_over_this"] = ours["trained_tokens_per_s"] / r["trained_tokens_per_s"]
        r["ours_over_this_per_round"] = [a / b for a, b in zip(ours["trained_tokens_per_s_rounds"],
                                                               r["trained_tokens_per_s_rounds"])]

    print(f"\ncommand: OMP_NUM_THREADS={args.threads} python bench/train_throughput.py {' '.join(sys.argv[1:])}")
    print(f"({bench_seconds / 60:.1f} min)")
    if check:
        print(f"\n{len(examples)} oracle `long` traces (arithmetic, levels 1-4: {levels}); real length "
              f"{check['lengths']['min']}-{check['lengths']['max']} tokens (mean {check['lengths']['mean']:.0f}); "
              f"tiny Llama {spec.model_dump()} ({n_params} params); batch {args.batch_size}, {args.steps} steps "
              f"(first {args.warmup_steps} not timed), lr {args.lr}, {args.threads} thread(s), {args.rounds} "
              f"interleaved round(s), torch {torch.__version__}, transformers {transformers.__version__}, "
              f"trl {trl.__version__}\n")
    print("| run | batching | rounds | examples/step | padding share | s/step | trained tok/s | forward tok/s "
          "| MFU (vs 2048^2 / model shapes) | ours / this (per round) | final loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per_round = ", ".join(f"{x:.2f}" for x in r["ours_over_this_per_round"])
        print(f"| {r['name']} | {r['setting']} | {r['rounds']} | {r['examples_per_step']:.1f} "
              f"| {100 * r['padding_share']:.1f}% | {r['seconds_per_step']:.2f} | {r['trained_tokens_per_s']:.0f} "
              f"| {r['real_tokens_per_s']:.0f} | {100 * r['mfu_vs_square']:.0f}% / {100 * r['mfu_vs_model_shapes']:.0f}% "
              f"| **{r['ours_over_this']:.2f}x** ({per_round}) | {r['final_loss']} |")
    print(f"\nmatmul fp32, {args.threads} thread(s), best of {len(mm_runs)}: 2048^3 {mm['square_2048'] / 1e9:.1f} "
          f"GFLOP/s; the model's linear layers at {mm_runs[0]['model_shapes_tokens']} rows (forward, grad input, "
          f"grad weight) {mm['model_shapes'] / 1e9:.1f} GFLOP/s (per round: "
          + ", ".join(f"{r['square_2048'] / 1e9:.1f} / {r['model_shapes'] / 1e9:.1f}" for r in mm_runs) + ")")
    print("MFU = 6 x params x forward tokens/s (prompt included, padding excluded) / that matmul FLOP/s")
    trl_rows = [r for r in rows if r["trainer"] != "thinkling"]
    if trl_rows:
        best = max(trl_rows, key=lambda r: r["trained_tokens_per_s"])
        fp32 = [r for r in rows if "bf16" not in r["name"] and r["name"] != "trl-defaults"]
        best32 = max((r for r in fp32 if r["trainer"] != "thinkling"), key=lambda r: r["trained_tokens_per_s"])
        best_ours = max((r for r in rows if r["trainer"] == "thinkling"), key=lambda r: r["trained_tokens_per_s"])
        print(f"fastest TRL: {best['name']} {best['trained_tokens_per_s']:.0f} trained tok/s; ours (fp32) "
              f"{ours['trained_tokens_per_s'] / best['trained_tokens_per_s']:.2f}x, {best_ours['name']} "
              f"{best_ours['trained_tokens_per_s'] / best['trained_tokens_per_s']:.2f}x; fp32 to fp32: ours / "
              f"{best32['name']} {ours['trained_tokens_per_s'] / best32['trained_tokens_per_s']:.2f}x (goal >= 1.5x)")
        if "ours-bf16" in by and "trl-grouped-bf16" in by:
            print(f"bf16 to bf16: ours-bf16 / trl-grouped-bf16 "
                  f"{by['ours-bf16']['trained_tokens_per_s'] / by['trl-grouped-bf16']['trained_tokens_per_s']:.2f}x")
    print(f"TRL assistant_only_loss=True: {aol}; TRL rows use completion_only_loss=True (prompt-completion).")
    if check:
        print(f"mask check: {check['trl_equals_ours_then_tail']}/{check['examples']} TRL examples = ours + tail "
              f"{check['trl_tails']}, {check['trl_extra_trained_tokens_per_example']:.2f} extra trained token(s) "
              f"per example (ours trains {check['trained_per_example_mean']:.1f} per example)")
    if profile:
        print(f"\nprofile of {args.profile_steps} of our steps (torch.profiler, self CPU time):\n{profile}")

    result = {"args": vars(args), "examples": len(examples), "levels": levels, "tiny_spec": spec.model_dump(),
              "params": n_params, "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                               "trl": trl.__version__},
              "assistant_only_loss": aol, "mask_check": check, "matmul_flops": mm_runs, "rows": rows,
              "runs": runs, "profile": profile, "bench_seconds": bench_seconds}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
