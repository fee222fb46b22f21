"""The train stage: curated examples -> a student checkpoint directory.

One readable loop assembled from config, on the transformers Trainer, so ``accelerate launch`` /
``torchrun`` give DDP, FSDP and DeepSpeed without a line changed here. Methods differ by their data
source and loss (registries in ``methods.py`` and ``losses.py``), not by trainer subclasses.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from thinkling.artifacts import DataError, is_complete, read_jsonl, write_manifest, invalidate
from thinkling.config import StageConfig
from thinkling.models.tiny import TinySpec
from thinkling.records import Example
from thinkling.train.losses import IGNORE


class TrainConfig(StageConfig):
    data: str = Field(description="curated data: a curate output dir (uses train.jsonl) or a JSONL of examples")
    out: str = Field(description="output dir for the student checkpoint")
    method: str = Field("sft", description="training method (registry name): sft")
    model: str = Field("tiny", description="'tiny' (built from scratch), an HF hub id, or a local checkpoint path")
    tiny: TinySpec = Field(default_factory=TinySpec)
    tokenizer_from: list[str] = Field(
        default_factory=list,
        description="for model=tiny: JSONL files or stage dirs whose text trains the tokenizer (default: the training data)",
    )
    tokenizer_texts: int = Field(20000, ge=100, description="for model=tiny: at most this many texts (an even spread) train the tokenizer")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="weights dtype")
    lr: float = Field(1e-3, gt=0, description="peak learning rate (1e-3 suits tiny models from scratch; ~1e-5 for pretrained)")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="share of the run spent warming the lr up")
    weight_decay: float = Field(0.0, ge=0)
    adam_beta2: float = Field(0.98, gt=0, lt=1, description="AdamW beta2 (0.98 adapts faster on short runs than 0.999)")
    batch_size: int = Field(32, ge=1, description="examples per device per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    epochs: float = Field(1.0, gt=0, description="passes over the data (ignored when max_steps > 0)")
    max_steps: int = Field(-1, description="optimizer steps; -1 = from epochs")
    budget_minutes: float | None = Field(
        None, gt=0,
        description="wall-clock budget: the lr schedule (warmup, cosine to 10%) runs on elapsed time and training stops when it is spent",
    )
    max_len: int = Field(1024, ge=8, description="longest example in tokens; longer ones are dropped (counted)")
    group_by_length: bool = Field(True, description="batch examples of similar length (little padding, no cross-attention)")
    save_steps: int = Field(200, ge=1, description="checkpoint every N steps (resume picks up the latest)")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch threads (1 when anything else runs on the CPU)")
    bf16_autocast: bool = Field(False, description="bf16 autocast for compute (faster on some CPUs)")
    logging_steps: int = Field(20, ge=1)
    show_mask: bool = Field(True, description="print which tokens of the first example get loss")

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from thinkling.train.methods import method_names

        if v not in method_names():
            raise ValueError(f"unknown method {v!r}; known: {', '.join(method_names())}")
        return v


def _data_file(data: str) -> Path:
    p = Path(data)
    if p.is_dir():
        p = p / "train.jsonl"
    if not p.exists():
        raise DataError(f"training data not found: {p}")
    return p


def _texts(sources: list[str]) -> list[str]:
    texts: list[str] = []
    for src in sources:
        p = Path(src)
        files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
        for f in files:
            for r in read_jsonl(f):
                for k in ("question", "reasoning", "answer"):
                    if isinstance(r.get(k), str) and r[k]:
                        texts.append(r[k])
    return sorted(set(texts))


class Collator:
    """Right-pads a batch; padded positions get no attention and no loss."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]):
        import torch

        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), IGNORE, dtype=torch.long)
        att = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            labels[i, :k] = torch.tensor(r["labels"])
            att[i, :k] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": att}


def _time_schedule(optimizer, budget_s: float, warmup: float):
    """LR factor from elapsed wall time: linear warmup, then cosine decay to 10% at the budget.

    A budgeted run does not know its step count in advance, so the schedule runs on the clock.
    """
    import torch

    state = {"t0": None}

    def factor(_step: int) -> float:
        if state["t0"] is None:
            state["t0"] = time.time()
        frac = min((time.time() - state["t0"]) / budget_s, 1.0)
        if warmup > 0 and frac < warmup:
            return max(frac / warmup, 0.01)
        p = (frac - warmup) / max(1 - warmup, 1e-9)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _reset_if_other_run(out: Path, cfg: TrainConfig, inputs: dict[str, str], force: bool, console) -> None:
    """Checkpoints and the tiny init may only be resumed by the same config and inputs.

    ``out/.run_key`` records which (config, input fingerprints) the partial state belongs to; a
    different key (or ``--force``) clears ``init/`` and ``checkpoints/`` before training anew.
    """
    import shutil

    from thinkling.artifacts import atomic_write_text, config_hash, fingerprint, stable_hash

    key = stable_hash({"config": config_hash(cfg), "inputs": {k: fingerprint(v) for k, v in inputs.items()}})
    marker = out / ".run_key"
    stale = force or not marker.exists() or marker.read_text().strip() != key
    if stale:
        for sub in ("init", "checkpoints"):
            if (out / sub).exists():
                console.print(f"[yellow]train[/]: clearing {out / sub} (it belongs to another config or --force)")
                shutil.rmtree(out / sub)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, key + "\n")


def _checkpoint_step(ckpt: Path) -> int:
    import json

    state = ckpt / "trainer_state.json"
    return json.loads(state.read_text()).get("global_step", 0) if state.exists() else 0


def train(cfg: TrainConfig, force: bool = False, console=None) -> dict:
    """Run the train stage; returns the manifest. Skips when ``cfg.out`` is complete for this config."""
    from rich.console import Console

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    data_file = _data_file(cfg.data)
    inputs = {"data": str(data_file)}
    for i, src in enumerate(cfg.tokenizer_from):
        inputs[f"tokenizer_from_{i}"] = src
    if not force and is_complete(out, "train", cfg, inputs):
        console.print(f"[green]train[/]: {out} is complete for this config; skipping")
        from thinkling.artifacts import read_manifest

        return read_manifest(out)  # type: ignore[return-value]

    started = time.time()
    from thinkling.models.loading import set_threads

    set_threads(cfg.threads)
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import show_mask
    from thinkling.train.losses import get_loss, normalize_by_global_tokens
    from thinkling.train.methods import get_method

    from accelerate import PartialState

    set_seed(cfg.seed)
    # one process, or one rank of `torchrun` / `accelerate launch`; on CPU, cpu=True is what makes
    # accelerate see the ranks (gloo) instead of one lone process per rank
    dist = PartialState(cpu=not torch.cuda.is_available())
    init_dir = out / "init"
    with dist.main_process_first():  # rank 0 prepares the directory and the tiny init; others wait
        if dist.is_main_process:
            invalidate(out)
            _reset_if_other_run(out, cfg, inputs, force, console)
            (out / ".threads").unlink(missing_ok=True)  # a runner's thread hand-over is per run
            if cfg.model == "tiny" and not (init_dir / "config.json").exists():
                from thinkling.models.tiny import build_tiny

                texts = _texts(cfg.tokenizer_from or [str(data_file)])
                step = max(1, -(-len(texts) // cfg.tokenizer_texts))  # ceil: at most tokenizer_texts texts
                build_tiny(init_dir, texts[::step], cfg.tiny, seed=cfg.seed)
    examples = read_jsonl(data_file, Example)
    if not examples:
        raise DataError(f"{data_file}: no training examples")
    model_src = str(init_dir) if cfg.model == "tiny" else cfg.model
    tokenizer = load_tokenizer(model_src)
    model = load_model(model_src, cfg.dtype)
    n_params = sum(p.numel() for p in model.parameters())

    method = get_method(cfg.method)
    rows = method.build_rows(examples, tokenizer, cfg.max_len)
    dropped = len(examples) - len(rows)
    if not rows:
        raise DataError(f"{data_file}: every example is longer than max_len={cfg.max_len}")
    if cfg.show_mask:
        r = rows[0]
        mask = [int(x != IGNORE) for x in r["labels"]]
        console.print("[bold]tokens that get loss[/] (in [[...]]), first example:")
        console.print(show_mask(tokenizer, r["input_ids"], mask), markup=False, highlight=False)
    trained_tokens = sum(sum(1 for x in r["labels"] if x != IGNORE) for r in rows)
    console.print(
        f"[bold]train[/] {cfg.method}: {len(rows)} examples ({dropped} over max_len dropped), "
        f"{trained_tokens} trained tokens, model {model_src} ({n_params / 1e6:.2f}M params)"
    )

    from datasets import Dataset

    ds = Dataset.from_list([{k: r[k] for k in ("input_ids", "labels", "length")} for r in rows])
    max_steps = cfg.max_steps
    if cfg.budget_minutes and max_steps <= 0:
        max_steps = 10**9  # the budget stops training; the schedule runs on time
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        adam_beta2=cfg.adam_beta2,
        num_train_epochs=cfg.epochs,
        max_steps=max_steps,
        warmup_steps=cfg.warmup_fraction if cfg.warmup_fraction < 1 else 0,
        lr_scheduler_type="cosine",
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        remove_unused_columns=False,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        bf16=cfg.bf16_autocast,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        disable_tqdm=True,
    )

    class Progress(TrainerCallback):
        """A one-line progress display (steps, loss, budget) and the wall-clock budget stop."""

        def __init__(self):
            self.t0 = time.time()
            self.last_print = 0.0
            self.loss: float | None = None
            self.last_thread_check = 0.0

        def _maybe_change_threads(self):
            """A runner that frees cores (another student finished) writes ``out/.threads``."""
            if time.time() - self.last_thread_check < 5:
                return
            self.last_thread_check = time.time()
            f = out / ".threads"
            try:
                n = int(f.read_text().strip()) if f.exists() else 0
            except ValueError:
                return
            if n > 0 and n != torch.get_num_threads():
                torch.set_num_threads(n)
                console.print(f"  train {out.name}: now using {n} threads", highlight=False)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, a, state, control, **kw):
            el = time.time() - self.t0
            self._maybe_change_threads()
            if cfg.budget_minutes and el > cfg.budget_minutes * 60:
                control.should_training_stop = True
                control.should_save = True
            if state.is_world_process_zero and (time.time() - self.last_print > 15 or control.should_training_stop):
                self.last_print = time.time()
                total = f"/{state.max_steps}" if state.max_steps < 10**8 else ""
                budget = f" of {cfg.budget_minutes:.1f} min budget" if cfg.budget_minutes else ""
                loss = f"{self.loss:.4f}" if self.loss is not None else "-"
                console.print(f"  train {out.name}: step {state.global_step}{total}, loss {loss}, "
                              f"{el / 60:.1f} min{budget}, {state.global_step / max(el, 1e-9):.1f} steps/s",
                              highlight=False)
            return control

    optimizers = (None, None)
    if cfg.budget_minutes:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                betas=(0.9, cfg.adam_beta2))
        optimizers = (opt, _time_schedule(opt, cfg.budget_minutes * 60, cfg.warmup_fraction))

    loss_fn = normalize_by_global_tokens(get_loss(method.loss))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=Collator(tokenizer.pad_token_id),
        compute_loss_func=loss_fn,
        callbacks=[Progress()],
        optimizers=optimizers,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our Progress callback prints one line per ~15 s instead
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    resume = str(ckpts[-1]) if ckpts else None
    if resume:
        console.print(f"[yellow]resuming[/] from {resume}")
    t_train = time.time()
    if resume and cfg.max_steps > 0 and _checkpoint_step(Path(resume)) >= cfg.max_steps:
        # the run had finished its steps before it was interrupted: take the checkpoint as is
        console.print(f"[yellow]train[/]: {resume} already holds all {cfg.max_steps} steps; not training further")
        from transformers import TrainerState

        trainer.model = load_model(resume, cfg.dtype)
        trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
        result = None
    else:
        result = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.time() - t_train
    steps = trainer.state.global_step
    seen_examples = steps * cfg.batch_size * cfg.grad_accum * max(trainer.args.world_size, 1)
    trainer.save_model(str(out))  # on every rank: FSDP/DeepSpeed gather the weights; rank 0 writes
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(out))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    counts = {
        "examples": len(rows),
        "dropped_over_max_len": dropped,
        "trained_tokens_per_epoch": trained_tokens,
        "steps": steps,
        "examples_seen": seen_examples,
        "train_seconds": round(train_seconds, 1),
        "final_loss": round(losses[-1], 4) if losses else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "params": n_params,
        "train_loss": round(result.training_loss, 4) if result is not None else None,
    }
    files = [f.name for f in out.iterdir() if f.is_file() and f.name != "manifest.json"]
    return write_manifest(out, "train", cfg, inputs, counts, outputs=sorted(files),
                          extra={"loss_history": losses, "pid": os.getpid()}, started=started)
