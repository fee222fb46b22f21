"""The train stage: curated examples -> a student checkpoint directory.

One readable loop assembled from config, on the transformers Trainer, so ``accelerate launch`` /
``torchrun`` give DDP, FSDP and DeepSpeed without a line changed here. Methods differ by their data
source, loss and hooks (registries in ``methods.py`` and ``losses.py``), not by trainer subclasses
or switches in this loop. Its pieces: ``config.py`` (the options), ``trainer.py`` (the Trainer and
the default fit), ``teacher.py`` (kd), ``lorid.py`` (LoRID's adapters).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from thinkling.artifacts import (
    DataError, atomic_write_text, config_hash, fingerprint, invalidate, is_complete, read_jsonl, read_manifest,
    stable_hash, write_manifest,
)
from thinkling.models.loading import load_model, load_tokenizer, set_threads
from thinkling.models.render import show_mask
from thinkling.models.tiny import build_tiny
from thinkling.records import Example
from thinkling.train.config import TrainConfig
from thinkling.train.interface import IGNORE, Objective, Run
from thinkling.train.methods import Method, get_method
from thinkling.train.trainer import fit_one


def train(cfg: TrainConfig, force: bool = False, console=None) -> dict:
    """Run the train stage; returns the manifest. Skips when ``cfg.out`` is complete for this config."""
    console = console or Console(stderr=True)
    out = Path(cfg.out)
    files = data_files(cfg.data)
    inputs = train_inputs(cfg)
    if not force and is_complete(out, "train", cfg, inputs):
        console.print(f"[green]train[/]: {out} is complete for this config; skipping")
        return read_manifest(out)  # type: ignore[return-value]

    started = time.time()
    set_threads(cfg.threads)
    import torch  # heavy, as are transformers and accelerate: imported once there is training to do
    from accelerate import PartialState
    from transformers import set_seed

    set_seed(cfg.seed)
    # one process, or one rank of `torchrun` / `accelerate launch`; on CPU, cpu=True is what makes
    # accelerate see the ranks (gloo) instead of one lone process per rank
    dist = PartialState(cpu=not torch.cuda.is_available())
    with dist.main_process_first():  # rank 0 prepares the directory and the tiny init; others wait
        if dist.is_main_process:
            _prepare_out(cfg, out, inputs, files, force, console)
    examples = [e for f in files for e in read_jsonl(f, Example)]
    if not examples:
        raise DataError(f"{_names(files)}: no training examples")
    model_src = str(out / "init") if cfg.model == "tiny" else cfg.model
    tokenizer = load_tokenizer(model_src)
    model = load_model(model_src, cfg.dtype)

    method = get_method(cfg.method)
    run = _make_run(cfg, method, examples, files, tokenizer, model, model_src, out, dist, console)
    objective = Objective(run.rows, method.loss_for(cfg))
    if method.prepare is not None:  # e.g. kd: load the teacher, store its top-k
        objective = method.prepare(run, objective)
    fitted = (method.fit or fit_one)(run, objective)  # trains and saves the weights
    if fitted is None:  # a rank other than the main one: rank 0 writes the manifest
        return {}
    outputs = [f.name for f in out.iterdir() if f.is_file() and f.name != "manifest.json"]
    return write_manifest(out, "train", cfg, inputs, fitted.counts, outputs=sorted(outputs), extra=fitted.extra,
                          started=started)


# ----------------------------------------------------------------------------- the loop's pieces


def _make_run(cfg: TrainConfig, method: Method, examples: list[Example], files: list[Path], tokenizer, model,
              model_src: str, out: Path, dist, console) -> Run:
    """The method's rows, counted and shown (which tokens get loss) before anything trains."""
    n_params = sum(p.numel() for p in model.parameters())
    rows = method.build_rows(examples, tokenizer, cfg)
    covered = {str(r["id"]).split("#", 1)[0] for r in rows}
    dropped = sum(1 for e in examples if e.id.split("#", 1)[0] not in covered)
    if not rows:
        raise DataError(f"{_names(files)}: every example is longer than max_len={cfg.max_len}")
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
    counts = {"examples": len(examples), "rows": len(rows), "dropped_over_max_len": dropped}
    return Run(cfg=cfg, model=model, tokenizer=tokenizer, rows=rows, out=out, dist=dist, console=console,
               data_counts=counts, trained_tokens=trained_tokens, n_params=n_params)


def _prepare_out(cfg: TrainConfig, out: Path, inputs: dict[str, str], files: list[Path], force: bool,
                 console) -> None:
    """The output dir made ready for this run (main process only): the old manifest removed, state of
    another run cleared, and the tiny model's init (tokenizer trained on the data) built if missing."""
    invalidate(out)
    _reset_if_other_run(out, cfg, inputs, force, console)
    (out / ".threads").unlink(missing_ok=True)  # a runner's thread hand-over is per run
    init_dir = out / "init"
    if cfg.model == "tiny" and not (init_dir / "config.json").exists():
        texts = _texts(cfg.tokenizer_from or [str(f) for f in files])
        step = max(1, -(-len(texts) // cfg.tokenizer_texts))  # ceil: at most tokenizer_texts texts
        build_tiny(init_dir, texts[::step], cfg.tiny, seed=cfg.seed)


def _reset_if_other_run(out: Path, cfg: TrainConfig, inputs: dict[str, str], force: bool, console) -> None:
    """Checkpoints and the tiny init may only be resumed by the same config and inputs.

    ``out/.run_key`` records which (config, input fingerprints) the partial state belongs to; a
    different key (or ``--force``) clears ``init/`` and ``checkpoints/`` before training anew.
    """
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


# ----------------------------------------------------------------------------- inputs


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


def _names(files: list[Path]) -> str:
    """The data, named in errors."""
    return " + ".join(map(str, files))


def data_inputs(data: str | list[str]) -> dict[str, str]:
    files = data_files(data)
    return {"data": str(files[0])} if isinstance(data, str) else {f"data_{i}": str(f) for i, f in enumerate(files)}


def model_inputs(cfg: TrainConfig) -> dict[str, str]:
    """Local model directories a student depends on (its base, its kd teacher): fingerprinted inputs,
    so a retrained base or teacher makes the student re-train."""
    out = {}
    if cfg.model != "tiny" and Path(cfg.model).is_dir():
        out["model"] = cfg.model
    method = get_method(cfg.method)
    if method.inputs is not None:
        out.update(method.inputs(cfg))
    return out


def train_inputs(cfg: TrainConfig) -> dict[str, str]:
    """Every input the manifest fingerprints: the data, the tokenizer's texts, local model dirs."""
    inputs = data_inputs(cfg.data)
    for i, src in enumerate(cfg.tokenizer_from):
        inputs[f"tokenizer_from_{i}"] = src
    inputs.update(model_inputs(cfg))
    return inputs


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
