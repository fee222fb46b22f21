"""The lorid method's ``fit`` hook: three LoRA adapters on one base, fitted one after the other.

Each adapter trains on its own rows (tagged ``adapter`` by the data source in ``methods.py``) with a
third of the budget (tokens, FLOPs or minutes) or ``max_steps``. Layout of ``out/``: the untouched base in ``base/``, one
``adapters/<name>/`` per adapter, ``lorid.json`` naming them, and ``out/`` itself the Intuitive
Reasoner merged into a plain checkpoint (what ``thinkling eval`` runs by default). An adapter already
saved by an interrupted run is loaded, not trained again.

peft and safetensors are imported inside the functions (they load torch).
"""

from __future__ import annotations

import time
from dataclasses import replace

from thinkling.artifacts import atomic_write_json
from thinkling.format import LORID_ADAPTERS
from thinkling.train.interface import Fitted, Objective, Run
from thinkling.train.budget import Budget, add_consumed, budget_of, consumed, flops_per_token
from thinkling.train.trainer import lora_config, make_trainer, stop_rule, wrap_lora


def _with_adapters(run: Run):
    """The base saved to ``base/`` (main process), then wrapped with every LoRID adapter."""
    lora = run.cfg.lora.model_copy(update={"enabled": True})
    if run.dist.is_main_process:
        run.model.save_pretrained(str(run.out / "base"))
        run.tokenizer.save_pretrained(str(run.out / "base"))
    peft_model = wrap_lora(run.model, lora, adapter=LORID_ADAPTERS[0])
    for name in LORID_ADAPTERS[1:]:
        peft_model.add_adapter(name, lora_config(lora))
    return peft_model


def _load_adapter(peft_model, name: str, adapter_dir) -> None:
    from peft import set_peft_model_state_dict  # heavy
    from safetensors.torch import load_file

    set_peft_model_state_dict(peft_model, load_file(str(adapter_dir / "adapter_model.safetensors")), adapter_name=name)


def _fit_adapter(run: Run, peft_model, name: str, objective: Objective, budget: Budget | None) -> dict:
    """Train adapter ``name`` on its rows; its counts."""
    out = run.out
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    run.console.print(f"[bold]lorid[/]: adapter {name}: {len(objective.rows)} rows, {trainable} trainable params")
    t0 = time.time()
    trainer = make_trainer(run, peft_model, objective, out / "checkpoints" / name, budget, name=f"{out.name}/{name}")
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    secs = time.time() - t0
    return {"rows": len(objective.rows), "steps": trainer.state.global_step,
            "train_seconds": round(secs, 1), "trained_tokens": trainer.trained_tokens,
            "first_loss": round(losses[0], 4) if losses else None,
            "final_loss": round(losses[-1], 4) if losses else None,
            "compute": consumed(trainer.state.num_input_tokens_seen, trainer.state.global_step, secs,
                                flops_per_token(run.n_params), budget=budget)}


def _save_merged(run: Run, peft_model) -> None:
    """``out/`` as a plain checkpoint of the first adapter merged in, and ``lorid.json``."""
    # peft writes non-default adapters to adapters/<name>/; the first one too since it is named
    peft_model.set_adapter(LORID_ADAPTERS[0])
    merged = peft_model.merge_and_unload(adapter_names=[LORID_ADAPTERS[0]])
    merged.save_pretrained(str(run.out))
    run.tokenizer.save_pretrained(str(run.out))
    atomic_write_json(run.out / "lorid.json", {"base": "base",
                                               "adapters": {n: f"adapters/{n}" for n in LORID_ADAPTERS},
                                               "default": LORID_ADAPTERS[0]})


def fit_lorid(run: Run, objective: Objective) -> Fitted | None:
    """The lorid ``fit`` hook (see the module docstring); counts per adapter and in all."""
    cfg, out = run.cfg, run.out
    peft_model = _with_adapters(run)
    total = budget_of(cfg, flops_per_token(run.n_params))
    budget = total.share(len(LORID_ADAPTERS)) if total is not None else None  # equal shares, one after another
    per: dict = {}
    for name in LORID_ADAPTERS:
        done = out / "adapters" / name / "adapter_config.json"
        sub = [r for r in objective.rows if r["adapter"] == name]
        peft_model.set_adapter(name)
        if done.exists():  # trained by an earlier, interrupted run
            _load_adapter(peft_model, name, done.parent)
            run.console.print(f"[yellow]lorid[/]: adapter {name} already trained; loaded")
            continue
        per[name] = _fit_adapter(run, peft_model, name, replace(objective, rows=sub), budget)
        if run.dist.is_main_process:
            peft_model.save_pretrained(str(out / "adapters"), selected_adapters=[name])
    if not run.dist.is_main_process:
        return None
    _save_merged(run, peft_model)
    first = per.get(LORID_ADAPTERS[0], {})
    secs = sum(v["train_seconds"] for v in per.values())
    toks = sum(v["trained_tokens"] for v in per.values())
    counts = {**run.data_counts, "params": run.n_params,
              "adapters": per, "steps": sum(v["steps"] for v in per.values()),
              "train_seconds": round(secs, 1), "trained_tokens": toks,
              "trained_tokens_per_second": round(toks / max(secs, 1e-9), 1),
              "first_loss": first.get("first_loss"), "final_loss": first.get("final_loss")}
    parts = [v["compute"] for v in per.values()]
    compute = add_consumed(parts, total) if parts else None
    if compute is not None and total is None:
        compute["budget"] = stop_rule(cfg)
    return Fitted(counts, extra={"compute": compute} if compute is not None else None)
