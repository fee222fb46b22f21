"""The transformers Trainer every method runs on, and the default fit (one Trainer, resumable).

Pieces: :class:`Collator` (right-padding, per-row fields), :func:`budget_schedule` (the lr on the
share of a budget spent: ``budget.py``), :func:`progress` (the one-line display, the budget stop, the
thread hand-over), :func:`make_trainer` (our collator and our loss - a registry function divided once by the
global trained-token count - on a plain Trainer) and :func:`fit_one` (what a method without a
``fit`` hook gets: optionally LoRA, resume from the latest checkpoint, save, count).

transformers, torch, peft and datasets are imported inside the functions: they take seconds to load.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from thinkling.models.loading import load_model
from thinkling.train.budget import Budget, Meter, budget_of, consumed, flops_per_token, lr_factor
from thinkling.train.interface import IGNORE, Fitted, Objective, Run

if TYPE_CHECKING:  # annotations only: the config's method check imports the methods, which import this
    from thinkling.train.config import LoraOptions, TrainConfig

ROW_FIELDS = ("weight", "topk_ids", "topk_logprobs")
"""Optional per-row fields the collator pads (as ``weights``, ``topk_ids``, ``topk_logprobs``)."""
BATCH_FIELDS = ("weights", "topk_ids", "topk_logprobs")
"""The batch fields that go to the loss (via :attr:`Objective.teacher` or ``weights``), not to the model."""


class Collator:
    """Right-pads a batch; padded positions get no attention and no loss."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]):
        import torch  # heavy

        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), IGNORE, dtype=torch.long)
        att = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            labels[i, :k] = torch.tensor(r["labels"])
            att[i, :k] = 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": att}
        if "weight" in rows[0]:  # per-sequence loss weights (redi)
            batch["weights"] = torch.tensor([float(r["weight"]) for r in rows])
        if "topk_ids" in rows[0]:  # an offline teacher's top-k log-probs per position
            k = len(rows[0]["topk_ids"][0])
            tid = torch.zeros((len(rows), n, k), dtype=torch.long)
            tlp = torch.full((len(rows), n, k), -1e4)
            for i, r in enumerate(rows):
                m = len(r["topk_ids"])
                tid[i, :m] = torch.tensor(r["topk_ids"])
                tlp[i, :m] = torch.tensor(r["topk_logprobs"])
            batch["topk_ids"], batch["topk_logprobs"] = tid, tlp
        return batch


def budget_schedule(optimizer, meter: Meter, warmup: float):
    """The lr on the share of the budget spent (:func:`~thinkling.train.budget.lr_factor`): a budgeted
    run does not know its step count in advance. Read after each optimizer step, from the tokens the
    Trainer has counted (or the clock, for a minutes budget)."""
    import torch  # heavy

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: lr_factor(meter.fraction(), warmup))


# ----------------------------------------------------------------------------- callbacks


def progress(out: Path, name: str, meter: Meter | None, console, status=None, take_cores: bool | None = None):
    """A one-line progress display (steps, loss, budget, the objective's ``status``), the budget stop,
    and the thread hand-over (a runner that frees cores writes ``out/.threads``; by default taken only by a
    minutes budget or none, since another thread count may round differently and a tokens or FLOPs
    budget promises the same model on a busy machine; ``take_cores`` True or False decides instead: the
    config's ``take_freed_cores``). A factory: transformers is imported lazily."""
    from transformers import TrainerCallback  # heavy

    class Progress(TrainerCallback):
        def __init__(self):
            self.t0 = time.time()
            self.last_print = 0.0
            self.loss: float | None = None
            self.last_thread_check = 0.0

        def _maybe_change_threads(self):
            import torch  # heavy

            exact = meter is not None and meter.budget.kind != "minutes"
            if not (take_cores if take_cores is not None else not exact) or time.time() - self.last_thread_check < 5:
                return
            self.last_thread_check = time.time()
            f = out / ".threads"
            try:
                n = int(f.read_text().strip()) if f.exists() else 0
            except ValueError:
                return
            if n > 0 and n != torch.get_num_threads():
                torch.set_num_threads(n)
                console.print(f"  train {name}: now using {n} threads", highlight=False)

        def on_train_begin(self, a, state, control, **kw):
            if meter is not None:
                meter.start()

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, a, state, control, **kw):
            el = time.time() - self.t0
            self._maybe_change_threads()
            if meter is not None and meter.fraction() >= 1.0:
                control.should_training_stop = True
                control.should_save = True
            if state.is_world_process_zero and (time.time() - self.last_print > 15 or control.should_training_stop):
                self.last_print = time.time()
                total = f"/{state.max_steps}" if state.max_steps < 10**8 else ""
                spent = f"{meter.describe()}, " if meter is not None and meter.budget.kind != "minutes" else ""
                budget = f" of {meter.budget.total:.1f} min budget" if meter is not None and not spent else ""
                loss = f"{self.loss:.4f}" if self.loss is not None else "-"
                extra = f", {status()}" if status is not None else ""
                console.print(f"  train {name}: step {state.global_step}{total}, loss {loss}{extra}, {spent}"
                              f"{el / 60:.1f} min{budget}, {state.global_step / max(el, 1e-9):.1f} steps/s",
                              highlight=False)
            return control

    return Progress()


def schedule_stepper(schedule, meter: Meter | None):
    """Steps the objective's schedule after every optimizer step, by the share of steps done (a
    budgeted run: by the share of the budget spent, as for the lr)."""
    from transformers import TrainerCallback  # heavy

    class ScheduleStep(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if meter is not None:
                schedule.step(max(1, int(meter.fraction() * 10**6)), 10**6)
            else:
                schedule.step(state.global_step, state.max_steps)

    return ScheduleStep()


# ----------------------------------------------------------------------------- the Trainer


def training_args(cfg: TrainConfig, ckpt_dir: Path, budget: Budget | None):
    import torch  # heavy
    from transformers import TrainingArguments

    max_steps = cfg.max_steps
    if budget is not None and max_steps <= 0:
        max_steps = 10**9  # the budget stops training; the schedule runs on the share spent
    return TrainingArguments(
        output_dir=str(ckpt_dir),
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
        include_num_input_tokens_seen="non_padding",  # the tokens budget and the manifest's compute
    )


def _optimizers(cfg: TrainConfig, model, meter: Meter | None):
    """The Trainer's defaults, except for a budgeted run: AdamW with the lr on the budget spent."""
    import torch  # heavy

    if meter is None:
        return (None, None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, cfg.adam_beta2))
    return (opt, budget_schedule(opt, meter, cfg.warmup_fraction))


def _loss_func(objective: Objective, batch_fields: dict):
    """The objective's loss as a ``compute_loss_func``: the teacher's view of the batch and the row
    weights go in beside the logits; the sum is divided once by the global trained-token count."""
    from thinkling.train.losses import get_loss, normalize_by_global_tokens  # imports torch

    base_loss = get_loss(objective.loss)

    def loss_with_fields(logits, labels, **kw):
        teacher_in = objective.teacher(batch_fields) if objective.teacher is not None else None
        return base_loss(logits, labels, teacher=teacher_in, weights=batch_fields.get("weights"), **objective.hp)

    return normalize_by_global_tokens(loss_with_fields)


def _trainer_class(batch_fields: dict, schedule):
    from transformers import Trainer  # heavy

    class _T(Trainer):
        """Hands the batch's extra fields (teacher inputs, weights) to the loss; nothing else changes."""

        trained_tokens = 0  # loss-bearing tokens processed on this rank (for tokens/s)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.model.training:
                self.trained_tokens += int((inputs["labels"][:, 1:] != IGNORE).sum())
            batch_fields.clear()
            for k in BATCH_FIELDS:
                if k in inputs:
                    batch_fields[k] = inputs.pop(k)
            batch_fields["input_ids"], batch_fields["attention_mask"] = inputs["input_ids"], inputs["attention_mask"]
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
            if schedule is not None and self.model.training:
                schedule.observe(float((loss[0] if return_outputs else loss).detach()))
            return loss

    return _T


def make_trainer(run: Run, model, objective: Objective, ckpt_dir: Path, budget: Budget | None,
                 name: str | None = None):
    """The Trainer every method runs on: our collator, the objective's loss over its rows,
    checkpoints in ``ckpt_dir``, stopped when ``budget`` is spent (``trainer.meter`` reads it)."""
    from datasets import Dataset  # heavy
    from transformers.trainer_callback import PrinterCallback

    rows = objective.rows
    keys = ["input_ids", "labels", "length"] + [k for k in ROW_FIELDS if k in rows[0]]
    ds = Dataset.from_list([{k: r[k] for k in keys} for r in rows])
    args = training_args(run.cfg, ckpt_dir, budget)
    meter = Meter(budget) if budget is not None else None
    optimizers = _optimizers(run.cfg, model, meter)
    batch_fields: dict = {}  # the current micro-batch's fields for the loss, set by compute_loss
    callbacks = [progress(run.out, name or run.out.name, meter, run.console, objective.status,
                          run.cfg.take_freed_cores)]
    if objective.schedule is not None:
        callbacks.append(schedule_stepper(objective.schedule, meter))
    trainer = _trainer_class(batch_fields, objective.schedule)(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=Collator(run.tokenizer.pad_token_id),
        compute_loss_func=_loss_func(objective, batch_fields),
        callbacks=callbacks,
        optimizers=optimizers,
    )
    trainer.remove_callback(PrinterCallback)  # our Progress callback prints one line per ~15 s instead
    if meter is not None:
        meter.bind(trainer)
    trainer.meter = meter
    return trainer


def lora_config(opts: LoraOptions):
    from peft import LoraConfig  # heavy

    return LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout, target_modules=opts.target_modules,
                      task_type="CAUSAL_LM")


def wrap_lora(model, opts: LoraOptions, adapter: str = "default"):
    from peft import get_peft_model  # heavy

    return get_peft_model(model, lora_config(opts), adapter_name=adapter)


# ----------------------------------------------------------------------------- the default fit


def _checkpoint_state(ckpt: Path) -> dict:
    state = ckpt / "trainer_state.json"
    return json.loads(state.read_text()) if state.exists() else {}


def latest_checkpoint(ckpt_dir: Path) -> str | None:
    ckpts = sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


def _finished(cfg: TrainConfig, budget: Budget | None, state: dict) -> str | None:
    """Why a checkpoint's state already holds the whole run (its steps, or its tokens/FLOPs budget)."""
    if cfg.max_steps > 0 and state.get("global_step", 0) >= cfg.max_steps:
        return f"all {cfg.max_steps} steps"
    if budget is not None and budget.kind != "minutes" and budget.fraction(state.get("num_input_tokens_seen", 0), 0) >= 1:
        return f"its whole {budget.kind} budget"
    return None


def _train_or_take(run: Run, trainer, resume: str | None):
    """``trainer.train()``, resumed from ``resume``; a checkpoint that already holds the whole run is
    taken as it is (training on would take one step too many). Returns the train output or None."""
    cfg = run.cfg
    done = _finished(cfg, trainer.meter.budget if trainer.meter else None, _checkpoint_state(Path(resume))) \
        if resume else None
    if done and not cfg.lora.enabled:
        # the run had finished before it was interrupted: take the checkpoint as is
        run.console.print(f"[yellow]train[/]: {resume} already holds {done}; not training further")
        from transformers import TrainerState  # heavy

        trainer.model = load_model(resume, cfg.dtype)
        trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
        return None
    return trainer.train(resume_from_checkpoint=resume)


def _save(run: Run, trainer) -> None:
    out, lora = run.out, run.cfg.lora
    if lora.enabled:
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(str(out / "adapter"))
            if lora.merge:  # a plain HF checkpoint: the adapter merged into the weights
                trainer.model.merge_and_unload().save_pretrained(str(out))
    else:
        trainer.save_model(str(out))  # on every rank: FSDP/DeepSpeed gather the weights; rank 0 writes


def fit_one(run: Run, objective: Objective) -> Fitted | None:
    """The default fit: one Trainer over the objective's rows (LoRA when ``lora.enabled``), resumed
    from the latest checkpoint in ``checkpoints/``; the weights go to ``out/`` (and ``adapter/``)."""
    cfg, out = run.cfg, run.out
    model = wrap_lora(run.model, cfg.lora) if cfg.lora.enabled else run.model
    per_token = flops_per_token(run.n_params, objective.teacher_params)
    budget = budget_of(cfg, per_token, objective.teacher_flops)
    trainer = make_trainer(run, model, objective, out / "checkpoints", budget)
    resume = latest_checkpoint(out / "checkpoints")
    if resume:
        run.console.print(f"[yellow]resuming[/] from {resume}")
    t_train = time.time()
    result = _train_or_take(run, trainer, resume)
    train_seconds = time.time() - t_train
    steps = trainer.state.global_step
    seen_rows = steps * cfg.batch_size * cfg.grad_accum * max(trainer.args.world_size, 1)
    _save(run, trainer)
    if not trainer.is_world_process_zero():
        return None
    run.tokenizer.save_pretrained(str(out))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    counts = {
        **run.data_counts,
        "trained_tokens_per_epoch": run.trained_tokens,
        "steps": steps,
        "examples_seen": seen_rows,
        "rows_seen": seen_rows,
        "train_seconds": round(train_seconds, 1),
        "trained_tokens": trainer.trained_tokens,
        "trained_tokens_per_second": round(trainer.trained_tokens / max(train_seconds, 1e-9), 1),
        "final_loss": round(losses[-1], 4) if losses else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "params": run.n_params,
        "train_loss": round(result.training_loss, 4) if result is not None else None,
    }
    compute = consumed(trainer.state.num_input_tokens_seen, steps, train_seconds, per_token, objective.teacher_flops,
                       budget) | {"budget": budget.as_dict() if budget else stop_rule(cfg)}
    return Fitted(counts, extra={"loss_history": losses, "pid": os.getpid(), "compute": compute})


def stop_rule(cfg: TrainConfig) -> dict:
    """The manifest's ``compute.budget`` of a run without a compute budget: its steps or epochs."""
    return {"kind": "steps", "total": cfg.max_steps} if cfg.max_steps > 0 else {"kind": "epochs", "total": cfg.epochs}
