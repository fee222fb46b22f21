"""Load any HF causal LM (hub id or local path) with its tokenizer and chat template."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be loaded; the message names the path or id."""


def looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else (./x, /x, ~/x, a/b/c) is a local path."""
    return name.startswith((".", "/", "~")) or name.strip("/").count("/") > 1 or Path(name).exists()


def set_threads(n: int | None) -> None:
    """Torch intra-op threads. On small CPUs, 1 thread per process whenever anything else runs."""
    if not n:
        return
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(n)


def lorid_layout(path: str | Path) -> tuple[str, dict[str, str], str | None]:
    """(base checkpoint, {adapter: dir}, default adapter) of a LoRID output dir (``lorid.json``, written by
    train method ``lorid``); ``(path, {}, None)`` for any other checkpoint."""
    root = Path(path).expanduser()
    if not (root / "lorid.json").is_file():
        return str(path), {}, None
    spec = json.loads((root / "lorid.json").read_text())
    adapters = {n: str(root / rel) for n, rel in spec.get("adapters", {}).items()}
    return str(root / spec.get("base", "base")), adapters, spec.get("default")


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    _check_exists(name)
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load tokenizer from {name!r}: {e}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        raise ModelLoadError(
            f"tokenizer of {name!r} has no chat template; thinkling renders conversations with it "
            "(set tokenizer.chat_template or use an instruct/chat checkpoint)"
        )
    return tok


def load_model(name: str, dtype: str = "float32"):
    import torch
    from transformers import AutoModelForCausalLM

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    _check_exists(name)
    try:
        return AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load model from {name!r}: {e}") from None


def _check_exists(name: str) -> None:
    p = Path(name).expanduser()
    if looks_like_path(name) and not p.exists():
        raise ModelLoadError(f"model path does not exist: {name}")
    if p.is_dir() and not (p / "config.json").exists() and not (p / "tokenizer_config.json").exists():
        raise ModelLoadError(f"{name} is a directory but holds no HF checkpoint (no config.json)")
