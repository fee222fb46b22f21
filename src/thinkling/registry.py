"""One small registry type for everything that plugs in by name: tasks, curation ops, losses,
training methods, eval strategies, engine backends. ``thinkling`` looks them up by the names used in
configs, and a package of plug-ins is loaded by :func:`discover` (no hand-kept list of modules)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")``."""
        return lambda item: self.add(name, item)

    def remove(self, name: str) -> T:
        """Take ``name`` out again (tests that register a plug-in of their own clean up with it)."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, item) pairs in name order."""
        return ((n, self._items[n]) for n in self.names())


def discover(package: str) -> list[str]:
    """Import every module of ``package`` (modules whose name starts with ``_`` excepted), so that the
    plug-ins they define register themselves; returns the module names in import order."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
