"""Curation ops: named functions in a registry, each with its own options and per-reason drop counts.

One module per op, found by :func:`~thinkling.registry.discover` (no list to keep). An op takes the
current examples and returns ``(kept, dropped)``; dropped examples are never deleted (the stage writes
them beside the kept ones; incorrect traces become ``negatives.jsonl``), and an op that rewrites an
example (``compress``) returns a copy, so raw traces on disk are never touched. Each op declares an
options model; ``CurateConfig`` gets one section per registered op (``verify.*``, ``compress.*``, ...),
so a new op plugs in with ``@register_op("name", MyOptions)`` in a new module here and its keys appear
in ``thinkling curate --help``.
"""

from thinkling.curate.ops.base import OPS, OpContext, OpOptions, OpResult, ask, get_op, op_names, register_op
from thinkling.registry import discover

discover(__name__)

__all__ = ["OPS", "OpContext", "OpOptions", "OpResult", "ask", "get_op", "op_names", "register_op"]
