"""Typed stage configs: YAML plus dotted ``key=value`` overrides, unknown keys are errors.

Every stage has one pydantic model deriving from :class:`StageConfig`. Field descriptions are the
documentation: they are printed by ``thinkling <stage> --help`` and written next to every artifact
as part of the resolved config.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file and the key."""


class StageConfig(BaseModel):
    """Base class: forbids unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


C = TypeVar("C", bound=BaseModel)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 3e-4). Values are parsed as YAML scalars/lists."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.lr=3e-4)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:  # pragma: no cover - yaml is very permissive for scalars
        raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from e
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node: Any = out
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {item!r}: {part!r} is not an index of the list "
                                      f"'{'.'.join(path[:depth])}' (it has {len(node)} items)")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"override {item!r}: '{'.'.join(path[:depth])}' is a value, not a section")
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if p.is_dir():
        raise ConfigError(f"{p} is a directory, not a YAML config file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (at byte {e.start}); save the config as UTF-8") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys to values, got {type(data).__name__}")
    return data


def format_validation_error(err: ValidationError, source: str, prefix: str = "") -> str:
    """One line per error, naming the dotted key (``prefix`` before it)."""
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        key = ".".join(str(x) for x in ((prefix,) if prefix else ()) + tuple(e["loc"])) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}'")
        elif e["type"] == "missing":
            lines.append(f"  missing required key '{key}'")
        else:
            got = e.get("input")
            lines.append(f"  key '{key}': {e['msg']} (got {got!r})")
    return "\n".join(lines)


@dataclass(frozen=True)
class Tagged:
    """Field metadata: the field holds one of several models, chosen by the value of its ``tag`` key
    (e.g. an engine's options, chosen by ``backend``); ``members()`` gives {tag value: model} at the time
    it is asked (a registry can grow after import). ``--help`` describes every member's keys."""

    tag: str
    members: Callable[[], dict[str, type[BaseModel]]]


@dataclass(frozen=True)
class Described:
    """Field metadata: a description computed when ``--help`` asks (e.g. the names a registry holds then)."""

    text: Callable[[], str]


def _description(field) -> str:
    lazy = next((m for m in field.metadata if isinstance(m, Described)), None)
    return lazy.text() if lazy is not None else field.description or ""


def _tagged(field) -> Tagged | None:
    return next((m for m in field.metadata if isinstance(m, Tagged)), None)


def build_config(cls: type[C], data: dict[str, Any], source: str = "config") -> C:
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def load_config(
    cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> C:
    """Load ``cls`` from (base dict) <- YAML file <- dotted overrides, validating strictly."""
    data: dict[str, Any] = copy.deepcopy(base) if base else {}
    source = "defaults"
    if path is not None:
        data = deep_merge(data, load_yaml(path))
        source = str(path)
    if overrides:
        data = apply_overrides(data, overrides)
        source += " + overrides " + " ".join(overrides)
    return build_config(cls, data, source)


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def describe_fields(cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) for every field, recursing into sub-models and into each
    member of a tagged union (a key there says which members have it)."""
    rows: list[tuple[str, str, str]] = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        tagged = _tagged(field)
        if tagged is not None:
            rows.extend(_describe_tagged(tagged, field, key + "."))
            continue
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(describe_fields(ann, key + "."))
            continue
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((key, default, _description(field)))
    return rows


def _describe_tagged(tagged: Tagged, field, prefix: str) -> list[tuple[str, str, str]]:
    members = tagged.members()
    chosen = field.get_default(call_default_factory=True) if not field.is_required() else None
    tag_key = tagged.tag
    rows = [(f"{prefix}{tag_key}", repr(getattr(chosen, tag_key, None)),
             f"one of {', '.join(members)}; the other keys depend on it")]
    seen: dict[str, list] = {}
    for tag, model in members.items():
        for key, default, desc in describe_fields(model, prefix):
            if key != f"{prefix}{tag_key}":
                seen.setdefault(key, []).append((tag, default, desc))
    for key, owners in seen.items():
        descs = list(dict.fromkeys(d for _, _, d in owners))
        who = "" if len(owners) == len(members) else f"({', '.join(t for t, _, _ in owners)}) "
        if len(descs) > 1:  # the same key means something else per backend: say each
            text = "; ".join(f"{t}: {d}" for t, _, d in owners)
        else:
            text = descs[0]
        rows.append((key, owners[0][1], who + text))
    return rows


def fields_help(cls: type[BaseModel]) -> str:
    """Config keys as a help epilog (typer/click keeps paragraphs separated by blank lines)."""
    lines = ["Config keys (set in YAML or as key=value overrides):", ""]
    for key, default, desc in describe_fields(cls):
        lines.append(f"{key} [{default}]: {desc}")
        lines.append("")
    return "\n".join(lines)
