"""Load any HF causal LM (hub id or local path) with its tokenizer and chat template."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be loaded; the message names the path or id."""


HUB = "hub:"
"""A model written ``hub:org/name`` is a Hugging Face hub id, said explicitly (recipes ask for it)."""

HUB_PROBE_SECONDS = 3.0


def hub_id(name: str) -> str:
    """``name`` without its ``hub:`` mark."""
    return name[len(HUB):] if name.startswith(HUB) else name


def looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name`` (or marked ``hub:...``); anything else (./x, /x, ~/x, a/b/c) is
    a local path."""
    if name.startswith(HUB):
        return False
    return name.startswith((".", "/", "~")) or name.strip("/").count("/") > 1 or Path(name).exists()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub_model(name: str) -> None:
    """A hub id that cannot be loaded fails at once, with the reason: offline (``HF_HUB_OFFLINE``) and not in
    the local cache, or the hub unreachable (no network) - instead of retrying for tens of seconds."""
    repo = hub_id(name)
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(repo, "config.json"), str):
            raise ModelLoadError(f"{repo!r} is a hub id, HF_HUB_OFFLINE is set and it is not in the local cache "
                                 "(download it where there is network, or give a local checkpoint dir)")
        return
    if not hub_reachable():
        raise ModelLoadError(f"{repo!r} is a hub id and the Hugging Face hub cannot be reached (no network?); "
                             "give a local checkpoint dir, or set HF_HUB_OFFLINE=1 to use the local cache")


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the hub's host answers a TCP connection within ``timeout`` (DNS included)."""
    import socket
    import threading
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok and ok[0])


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
    name = hub_id(name)
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
    name = hub_id(name)
    try:
        return AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load model from {name!r}: {e}") from None


def _check_exists(name: str) -> None:
    p = Path(name).expanduser()
    if looks_like_path(name) and not p.exists():
        raise ModelLoadError(f"model path does not exist: {name}")
    if not p.exists():  # a hub id: fail now if it cannot be loaded, not after retries
        check_hub_model(name)
    if p.is_dir() and not (p / "config.json").exists() and not (p / "tokenizer_config.json").exists():
        raise ModelLoadError(f"{name} is a directory but holds no HF checkpoint (no config.json)")
