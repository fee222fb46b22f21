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
from thinkling.artifacts import DataError, is_complete, read_jsonl, write_manifest, invalidate
from thinkling.records import Example
from thinkling.format import LORID_ADAPTERS
from thinkling.train.config import LoraOptions, TrainConfig
from thinkling.train.interface import IGNORE


def _data_file(data: str) -> Path:
    p = Path(data)
    if p.is_dir():
        p = p / "train.jsonl"
    if not p.exists():
        raise DataError(f"training data not found: {p}")
    return p


def data_files(data: str | list[str]) -> list[Path]:
    """The training JSONL of each data source (one, or several for multi-task training)."""
    return [_data_file(d) for d in ([data] if isinstance(data, str) else data)]


def data_inputs(data: str | list[str]) -> dict[str, str]:
    files = data_files(data)
    return {"data": str(files[0])} if isinstance(data, str) else {f"data_{i}": str(f) for i, f in enumerate(files)}


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


def model_inputs(cfg: TrainConfig) -> dict[str, str]:
    """Local model directories a student depends on (its base, its kd teacher): fingerprinted inputs,
    so a retrained base or teacher makes the student re-train."""
    out = {}
    if cfg.model != "tiny" and Path(cfg.model).is_dir():
        out["model"] = cfg.model
    if cfg.method == "kd" and cfg.kd.teacher and Path(cfg.kd.teacher).is_dir():
        out["teacher"] = cfg.kd.teacher
    return out


def _checkpoint_step(ckpt: Path) -> int:
    import json

    state = ckpt / "trainer_state.json"
    return json.loads(state.read_text()).get("global_step", 0) if state.exists() else 0


def train(cfg: TrainConfig, force: bool = False, console=None) -> dict:
    """Run the train stage; returns the manifest. Skips when ``cfg.out`` is complete for this config."""
    from rich.console import Console

    console = console or Console(stderr=True)
    out = Path(cfg.out)
    files = data_files(cfg.data)
    data_file = " + ".join(map(str, files))  # names the data in errors
    inputs = data_inputs(cfg.data)
    for i, src in enumerate(cfg.tokenizer_from):
        inputs[f"tokenizer_from_{i}"] = src
    inputs.update(model_inputs(cfg))
    if not force and is_complete(out, "train", cfg, inputs):
        console.print(f"[green]train[/]: {out} is complete for this config; skipping")
        from thinkling.artifacts import read_manifest

        return read_manifest(out)  # type: ignore[return-value]

    started = time.time()
    from thinkling.models.loading import set_threads

    set_threads(cfg.threads)
    import torch
    from transformers import set_seed

    from thinkling.models.loading import load_model, load_tokenizer
    from thinkling.models.render import show_mask
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

                texts = _texts(cfg.tokenizer_from or [str(f) for f in files])
                step = max(1, -(-len(texts) // cfg.tokenizer_texts))  # ceil: at most tokenizer_texts texts
                build_tiny(init_dir, texts[::step], cfg.tiny, seed=cfg.seed)
    examples = [e for f in files for e in read_jsonl(f, Example)]
    if not examples:
        raise DataError(f"{data_file}: no training examples")
    model_src = str(init_dir) if cfg.model == "tiny" else cfg.model
    tokenizer = load_tokenizer(model_src)
    model = load_model(model_src, cfg.dtype)
    n_params = sum(p.numel() for p in model.parameters())


    method = get_method(cfg.method)
    rows = method.build_rows(examples, tokenizer, cfg)
    covered = {str(r["id"]).split("#", 1)[0] for r in rows}
    dropped = sum(1 for e in examples if e.id.split("#", 1)[0] not in covered)
    if not rows:
        raise DataError(f"{data_file}: every example is longer than max_len={cfg.max_len}")
    if cfg.show_mask:
        r = rows[0]
        mask = [int(x != IGNORE) for x in r["labels"]]
        console.print("[bold]tokens that get loss[/] (in [[...]]), first row:")
        console.print(show_mask(tokenizer, r["input_ids"], mask), markup=False, highlight=False)
    trained_tokens = sum(sum(1 for x in r["labels"] if x != IGNORE) for r in rows)
    console.print(
        f"[bold]train[/] {cfg.method}: {len(rows)} rows from {len(examples)} examples ({dropped} over max_len "
        f"dropped), {trained_tokens} trained tokens, model {model_src} ({n_params / 1e6:.2f}M params)"
    )
    loss_name = cfg.kd.loss if method.loss == "from_config" else method.loss
    hp: dict = {}
    teacher = None
    if cfg.method == "kd":
        teacher = _load_teacher(cfg, model, console)
        hp = {"tau": cfg.kd.tau, "ce_weight": cfg.kd.ce_weight}
        if loss_name == "kd_jsd":
            hp["beta"] = cfg.kd.beta
        if cfg.kd.offline:
            rows = _add_teacher_topk(rows, teacher, cfg.kd.top_k, console, tau=cfg.kd.tau)
            del teacher
            teacher = None
    if cfg.method == "lorid":
        return _train_lorid(cfg, model, tokenizer, rows, out, inputs, dist, console, started,
                            {"examples": len(examples), "rows": len(rows), "dropped_over_max_len": dropped,
                             "params": n_params})
    if cfg.lora.enabled:
        model = _wrap_lora(model, cfg.lora)

    trainer = _make_trainer(cfg, model, tokenizer, rows, out, out / "checkpoints", cfg.budget_minutes, loss_name, hp,
                            teacher, console)
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    resume = str(ckpts[-1]) if ckpts else None
    if resume:
        console.print(f"[yellow]resuming[/] from {resume}")
    t_train = time.time()
    if resume and cfg.max_steps > 0 and _checkpoint_step(Path(resume)) >= cfg.max_steps and not cfg.lora.enabled:
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
    seen_rows = steps * cfg.batch_size * cfg.grad_accum * max(trainer.args.world_size, 1)
    if cfg.lora.enabled:
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(str(out / "adapter"))
            if cfg.lora.merge:  # a plain HF checkpoint: the adapter merged into the weights
                trainer.model.merge_and_unload().save_pretrained(str(out))
    else:
        trainer.save_model(str(out))  # on every rank: FSDP/DeepSpeed gather the weights; rank 0 writes
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(out))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    counts = {
        "examples": len(examples),
        "rows": len(rows),
        "dropped_over_max_len": dropped,
        "trained_tokens_per_epoch": trained_tokens,
        "steps": steps,
        "examples_seen": seen_rows,
        "rows_seen": seen_rows,
        "train_seconds": round(train_seconds, 1),
        "trained_tokens": trainer.trained_tokens,
        "trained_tokens_per_second": round(trainer.trained_tokens / max(train_seconds, 1e-9), 1),
        "final_loss": round(losses[-1], 4) if losses else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "params": n_params,
        "train_loss": round(result.training_loss, 4) if result is not None else None,
    }
    files = [f.name for f in out.iterdir() if f.is_file() and f.name != "manifest.json"]
    return write_manifest(out, "train", cfg, inputs, counts, outputs=sorted(files),
                          extra={"loss_history": losses, "pid": os.getpid()}, started=started)


# ----------------------------------------------------------------------------- the loop's pieces


def _progress(*a, **kw):
    """A one-line progress display (steps, loss, budget), the wall-clock budget stop, and the
    thread hand-over (a runner that frees cores writes ``out/.threads``). A factory, because
    transformers is imported lazily (it takes seconds)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self, out: Path, name: str, budget_minutes: float | None, console, taid=None):
            self.out, self.name, self.budget, self.console, self.taid = out, name, budget_minutes, console, taid
            self.t0 = time.time()
            self.last_print = 0.0
            self.loss: float | None = None
            self.last_thread_check = 0.0

        def _maybe_change_threads(self):
            import torch

            if time.time() - self.last_thread_check < 5:
                return
            self.last_thread_check = time.time()
            f = self.out / ".threads"
            try:
                n = int(f.read_text().strip()) if f.exists() else 0
            except ValueError:
                return
            if n > 0 and n != torch.get_num_threads():
                torch.set_num_threads(n)
                self.console.print(f"  train {self.name}: now using {n} threads", highlight=False)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, a, state, control, **kw):
            el = time.time() - self.t0
            self._maybe_change_threads()
            if self.budget and el > self.budget * 60:
                control.should_training_stop = True
                control.should_save = True
            if state.is_world_process_zero and (time.time() - self.last_print > 15 or control.should_training_stop):
                self.last_print = time.time()
                total = f"/{state.max_steps}" if state.max_steps < 10**8 else ""
                budget = f" of {self.budget:.1f} min budget" if self.budget else ""
                loss = f"{self.loss:.4f}" if self.loss is not None else "-"
                taid = f", taid t {self.taid.t:.3f}" if self.taid is not None else ""
                self.console.print(f"  train {self.name}: step {state.global_step}{total}, loss {loss}{taid}, "
                                   f"{el / 60:.1f} min{budget}, {state.global_step / max(el, 1e-9):.1f} steps/s",
                                   highlight=False)
            return control

    return Progress(*a, **kw)


def _make_trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], out: Path, ckpt_dir: Path,
                  budget_minutes: float | None, loss_name: str, hp: dict, teacher, console, name: str | None = None):
    """The Trainer every method runs on: our collator, our loss (a registry function divided once by
    the global trained-token count), optionally a teacher's logits; checkpoints in ``ckpt_dir``."""
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from thinkling.train.losses import get_loss, normalize_by_global_tokens

    keys = ["input_ids", "labels", "length"] + [k for k in ("weight", "topk_ids", "topk_logprobs") if k in rows[0]]
    ds = Dataset.from_list([{k: r[k] for k in keys} for r in rows])
    max_steps = cfg.max_steps
    if budget_minutes and max_steps <= 0:
        max_steps = 10**9  # the budget stops training; the schedule runs on time
    args = TrainingArguments(
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
    )
    taid = None
    if loss_name == "taid":
        from thinkling.train.losses import TAIDSchedule

        taid = TAIDSchedule(t_start=cfg.kd.taid_t_start, t_end=cfg.kd.taid_t_end, alpha=cfg.kd.taid_alpha,
                            beta=cfg.kd.taid_beta)
    optimizers = (None, None)
    if budget_minutes:
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, cfg.adam_beta2))
        optimizers = (opt, _time_schedule(opt, budget_minutes * 60, cfg.warmup_fraction))

    extras: dict = {}
    base_loss = get_loss(loss_name)

    def loss_with_extras(logits, labels, **kw):
        teacher_in = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(input_ids=extras["input_ids"], attention_mask=extras["attention_mask"]).logits
            teacher_in = {"logits": t_logits[:, :-1, :]}
        elif "topk_ids" in extras:
            teacher_in = {"topk_ids": extras["topk_ids"][:, :-1], "topk_logprobs": extras["topk_logprobs"][:, :-1],
                          "tau": cfg.kd.tau}
        args_ = dict(hp)
        if taid is not None:
            args_["t"] = taid.t
        return base_loss(logits, labels, teacher=teacher_in, weights=extras.get("weights"), **args_)

    class _T(Trainer):
        """Hands the batch's extra fields (teacher inputs, weights) to the loss; nothing else changes."""

        trained_tokens = 0  # loss-bearing tokens processed on this rank (for tokens/s)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.model.training:
                self.trained_tokens += int((inputs["labels"][:, 1:] != IGNORE).sum())
            extras.clear()
            for k in ("weights", "topk_ids", "topk_logprobs"):
                if k in inputs:
                    extras[k] = inputs.pop(k)
            extras["input_ids"], extras["attention_mask"] = inputs["input_ids"], inputs["attention_mask"]
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
            if taid is not None and self.model.training:
                taid.observe(float((loss[0] if return_outputs else loss).detach()))
            return loss

    callbacks = [_progress(out, name or out.name, budget_minutes, console, taid)]
    if taid is not None:
        from transformers import TrainerCallback

        t_begin = time.time()

        class _TaidStep(TrainerCallback):
            def on_step_end(self, a, state, control, **kw):
                if budget_minutes:  # a budgeted run's progress is its share of the budget, as for the lr
                    frac = min((time.time() - t_begin) / (budget_minutes * 60), 1.0)
                    taid.step(max(1, int(frac * 10**6)), 10**6)
                else:
                    taid.step(state.global_step, state.max_steps)

        callbacks.append(_TaidStep())
    trainer = _T(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=Collator(tokenizer.pad_token_id),
        compute_loss_func=normalize_by_global_tokens(loss_with_extras),
        callbacks=callbacks,
        optimizers=optimizers,
    )
    trainer.remove_callback(PrinterCallback)  # our Progress callback prints one line per ~15 s instead
    return trainer


def _wrap_lora(model, opts: LoraOptions, adapter: str = "default"):
    from peft import LoraConfig, get_peft_model

    conf = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout, target_modules=opts.target_modules,
                      task_type="CAUSAL_LM")
    return get_peft_model(model, conf, adapter_name=adapter)


def _load_teacher(cfg: TrainConfig, student, console):
    from thinkling.models.loading import load_model

    if not cfg.kd.teacher:
        raise ValueError("method kd needs kd.teacher (a model path or hub id with the student's tokenizer)")
    teacher = load_model(cfg.kd.teacher, cfg.dtype)
    tv, sv = teacher.get_output_embeddings().weight.shape[0], student.get_output_embeddings().weight.shape[0]
    if tv != sv:
        raise ValueError(f"kd.teacher {cfg.kd.teacher}: teacher vocabulary {tv} != student vocabulary {sv}; logit "
                         "distillation needs the same tokenizer (train the student with the teacher's tokenizer)")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    n = sum(p.numel() for p in teacher.parameters())
    console.print(f"[bold]kd[/]: teacher {cfg.kd.teacher} ({n / 1e6:.2f}M params), loss {cfg.kd.loss}"
                  + (f", offline top-{cfg.kd.top_k}" if cfg.kd.offline else ", online"))
    return teacher


def _add_teacher_topk(rows: list[dict], teacher, k: int, console, tau: float = 1.0,
                      batch_size: int = 32) -> list[dict]:
    """Offline KD: the teacher's top-k log-probs (at temperature ``tau``) at every position of every
    row, computed once; the mass outside the top-k becomes the loss's 'rest' bucket."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: rows[i]["length"])
    out = [dict(r) for r in rows]
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            n = max(rows[i]["length"] for i in idx)
            ids = torch.zeros((len(idx), n), dtype=torch.long)
            att = torch.zeros((len(idx), n), dtype=torch.long)
            for j, i in enumerate(idx):
                L = rows[i]["length"]
                ids[j, :L] = torch.tensor(rows[i]["input_ids"])
                att[j, :L] = 1
            logp = torch.log_softmax(teacher(input_ids=ids, attention_mask=att).logits.float() / tau, dim=-1)
            top = logp.topk(k, dim=-1)
            for j, i in enumerate(idx):
                L = rows[i]["length"]
                out[i]["topk_ids"] = top.indices[j, :L].tolist()
                out[i]["topk_logprobs"] = [[round(x, 5) for x in v] for v in top.values[j, :L].tolist()]
    console.print(f"[bold]kd[/]: stored the teacher's top-{k} log-probs for {len(rows)} rows")
    return out




def _train_lorid(cfg: TrainConfig, model, tokenizer, rows: list[dict], out: Path, inputs: dict, dist, console,
                 started: float, counts: dict) -> dict:
    """LoRID: three LoRA adapters on one base, trained one after the other (each with a third of the
    budget or ``max_steps``). Saved as ``adapters/<name>/`` beside the untouched base (``base/``), so
    inference loads the base once and switches adapters; ``out/`` itself holds the Intuitive Reasoner
    merged into a plain checkpoint (what ``thinkling eval`` runs by default)."""
    from thinkling.artifacts import atomic_write_json

    lora = cfg.lora.model_copy(update={"enabled": True})
    base_dir = out / "base"
    if dist.is_main_process:
        model.save_pretrained(str(base_dir))
        tokenizer.save_pretrained(str(base_dir))
    peft_model = _wrap_lora(model, lora, adapter=LORID_ADAPTERS[0])
    from peft import LoraConfig

    for name in LORID_ADAPTERS[1:]:
        peft_model.add_adapter(name, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    budget = cfg.budget_minutes / len(LORID_ADAPTERS) if cfg.budget_minutes else None
    per: dict = {}
    for name in LORID_ADAPTERS:
        done = out / "adapters" / name / "adapter_config.json"
        sub = [r for r in rows if r["adapter"] == name]
        peft_model.set_adapter(name)
        if done.exists():  # trained by an earlier, interrupted run
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(peft_model, load_file(str(done.parent / "adapter_model.safetensors")),
                                      adapter_name=name)
            console.print(f"[yellow]lorid[/]: adapter {name} already trained; loaded")
            continue
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        console.print(f"[bold]lorid[/]: adapter {name}: {len(sub)} rows, {trainable} trainable params")
        t0 = time.time()
        trainer = _make_trainer(cfg, peft_model, tokenizer, sub, out, out / "checkpoints" / name, budget, "ce", {},
                                None, console, name=f"{out.name}/{name}")
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        per[name] = {"rows": len(sub), "steps": trainer.state.global_step, "train_seconds": round(time.time() - t0, 1),
                     "trained_tokens": trainer.trained_tokens,
                     "first_loss": round(losses[0], 4) if losses else None,
                     "final_loss": round(losses[-1], 4) if losses else None}
        if dist.is_main_process:
            peft_model.save_pretrained(str(out / "adapters"), selected_adapters=[name])
    if not dist.is_main_process:
        return {}
    # peft writes non-default adapters to adapters/<name>/; the first one too since it is named
    peft_model.set_adapter(LORID_ADAPTERS[0])
    merged = peft_model.merge_and_unload(adapter_names=[LORID_ADAPTERS[0]])
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    atomic_write_json(out / "lorid.json", {"base": "base", "adapters": {n: f"adapters/{n}" for n in LORID_ADAPTERS},
                                           "default": LORID_ADAPTERS[0]})
    first = per.get(LORID_ADAPTERS[0], {})
    secs = sum(v["train_seconds"] for v in per.values())
    toks = sum(v["trained_tokens"] for v in per.values())
    counts.update({"adapters": per, "steps": sum(v["steps"] for v in per.values()),
                   "train_seconds": round(secs, 1), "trained_tokens": toks,
                   "trained_tokens_per_second": round(toks / max(secs, 1e-9), 1),
                   "first_loss": first.get("first_loss"), "final_loss": first.get("final_loss")})
    files = [f.name for f in out.iterdir() if f.is_file() and f.name != "manifest.json"]
    return write_manifest(out, "train", cfg, inputs, counts, outputs=sorted(files), started=started)
