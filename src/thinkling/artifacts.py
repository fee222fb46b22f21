"""Stage directories, manifests, fingerprints and JSONL records.

A stage is a function from input artifacts to one output directory. The directory is complete
when its ``manifest.json`` is written - always last, atomically. A re-run compares the manifest's
config hash and input fingerprints and skips the stage when they match.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

MANIFEST = "manifest.json"

M = TypeVar("M", bound=BaseModel)


class DataError(ValueError):
    """Bad input data; the message names the file and line (and field where known)."""


# ----------------------------------------------------------------------------- hashing


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def file_sha256(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def fingerprint(path: str | Path) -> str:
    """Fingerprint of an input artifact: a stage dir's manifest output hash, or a file's content hash."""
    p = Path(path)
    if p.is_dir():
        m = p / MANIFEST
        if m.exists():
            return json.loads(m.read_text())["outputs_fingerprint"]
        files = sorted(x for x in p.rglob("*") if x.is_file())
        return stable_hash([(str(f.relative_to(p)), file_sha256(f)) for f in files])
    if p.is_file():
        return file_sha256(p)
    raise DataError(f"input not found: {p}")


# ----------------------------------------------------------------------------- atomic files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OSError(e.errno, e.strerror, e.filename or str(p)) from e  # a failed write names its file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def share_modes(root: str | Path) -> int:
    """Give every file under ``root`` written 0600 (mkstemp; transformers' safetensors writes) the mode a
    plain ``open()`` would give it, as every other artifact has; returns how many were changed."""
    changed = 0
    for p in Path(root).rglob("*"):
        try:
            if p.is_file() and not p.is_symlink() and (p.stat().st_mode & 0o777) == 0o600:
                os.chmod(p, 0o666 & ~_UMASK)
                changed += 1
        except OSError:  # a file that vanished or is not ours: leave it
            continue
    return changed


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict]) -> int:
    """Atomically write a whole JSONL file; returns the number of records."""
    lines = []
    for r in records:
        d = r.model_dump(mode="json") if isinstance(r, BaseModel) else r
        lines.append(json.dumps(d, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text; bytes that are not are a DataError naming ``where`` and the column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {e.start + 1}); "
                        "save the file as UTF-8") from None


def _json_lines(p: Path, missing: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; malformed JSON or bytes that are not UTF-8 name
    the line."""
    if not p.exists():
        raise DataError(missing or f"file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, not a JSONL file")
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = decode_utf8(raw, f"{p}:{lineno}")
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{p}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None


def located_rows(path: str | Path, missing: str | None = None) -> list[tuple[dict, str]]:
    """(row, "file:line") pairs of a JSONL file of objects, for loaders that check fields themselves
    (see :func:`require_field`); ``missing`` is the error message when the file does not exist."""
    p = Path(path)
    rows = []
    for lineno, obj in _json_lines(p, missing):
        if not isinstance(obj, dict):
            raise DataError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        rows.append((obj, f"{p}:{lineno}"))
    return rows


def require_field(row: dict, name: str, where: str, kind: type = str) -> Any:
    """``row[name]`` if it is a ``kind`` (a bool is not an int), else a DataError naming ``where``."""
    v = row.get(name)
    if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
        raise DataError(f"{where}: missing or non-{kind.__name__} field '{name}'")
    return v


def iter_jsonl(path: str | Path, model: type[M] | None = None) -> Iterator[Any]:
    """Yield records of a JSONL file. Errors name the file, the line and the field."""
    p = Path(path)
    for lineno, obj in _json_lines(p):
        if model is None:
            yield obj
            continue
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            errs = "; ".join(
                f"field '{'.'.join(str(x) for x in err['loc'])}': {err['msg']}" for err in e.errors()
            )
            raise DataError(f"{p}:{lineno}: {errs}") from None


def read_jsonl(path: str | Path, model: type[M] | None = None) -> list[Any]:
    return list(iter_jsonl(path, model))


class AppendLog:
    """An append-only JSONL file that survives ``kill -9``.

    Each record is written as one line and flushed + fsynced per batch. On open, a partial last line
    (the remnant of a crash mid-write) is cut off, so every line in the file is a complete record.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = self._repair()
        self._f = open(self.path, "a", encoding="utf-8")

    def _repair(self) -> int:
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as f:
            f.truncate(keep)
        return len(data) - keep

    def append(self, records: Iterable[BaseModel | dict]) -> None:
        try:
            for r in records:
                d = r.model_dump(mode="json") if isinstance(r, BaseModel) else r
                self._f.write(json.dumps(d, ensure_ascii=False) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as e:  # a full disk: the records written before stay (a torn last line is cut on reopen)
            raise OSError(e.errno, e.strerror, str(self.path)) from e

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- manifests


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("thinkling", "torch", "transformers", "accelerate", "peft", "trl", "math-verify"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def config_hash(config: BaseModel | dict) -> str:
    d = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    return stable_hash(d)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    m = Path(out_dir) / MANIFEST
    if not m.exists():
        return None
    try:
        return json.loads(m.read_text())
    except json.JSONDecodeError:
        return None


def is_complete(out_dir: str | Path, stage: str, config: BaseModel | dict, inputs: dict[str, str]) -> bool:
    """True when ``out_dir`` holds a manifest for the same stage, config and input fingerprints."""
    m = read_manifest(out_dir)
    if m is None:
        return False
    try:
        fps = {k: fingerprint(v) for k, v in inputs.items()}
    except DataError:
        return False
    return m.get("stage") == stage and m.get("config_hash") == config_hash(config) and m.get("inputs") == fps


def write_manifest(
    out_dir: str | Path,
    stage: str,
    config: BaseModel | dict,
    inputs: dict[str, str],
    counts: dict[str, Any],
    outputs: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` last: resolved config, input fingerprints, counts, versions. Every output
    file gets the usual mode first (:func:`share_modes`: model weights are written 0600)."""
    out = Path(out_dir)
    share_modes(out)
    cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    files = outputs if outputs is not None else sorted(
        str(p.relative_to(out)) for p in out.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
        and "checkpoint-" not in str(p.relative_to(out))
    )
    out_fp = stable_hash([(f, file_sha256(out / f)) for f in files if (out / f).is_file()])
    manifest = {
        "stage": stage,
        "config": cfg,
        "config_hash": config_hash(cfg),
        "inputs": {k: fingerprint(v) for k, v in inputs.items()},
        "input_paths": {k: str(v) for k, v in inputs.items()},
        "counts": counts,
        "outputs": files,
        "outputs_fingerprint": out_fp,
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if started is not None:
        manifest["seconds"] = round(time.time() - started, 2)
    if extra:
        manifest.update(extra)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def invalidate(out_dir: str | Path) -> None:
    """Remove a stage's manifest before rewriting its outputs, so a crash leaves it incomplete."""
    m = Path(out_dir) / MANIFEST
    if m.exists():
        m.unlink()
