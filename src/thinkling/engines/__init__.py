"""The inference layer: every model call of every stage goes through an engine from this package.

``oracle``     the synthetic tasks' built-in teacher (a program; also judge, rewriter, knowledge writer)
``reference``  a dataset's own worked solutions
``hf``         a local transformers model, batched in-process (and serve's token-by-token loop)
``openai``     any OpenAI-compatible endpoint (async, retries, rate limits)
``vllm``       vLLM's offline engine (an extra; on CPU the venv of ``scripts/vllm_venv.sh``)

Each backend is one module here, found by :func:`~thinkling.registry.discover` (no list to keep):
its options model is what a :data:`TeacherSpec` field holds when ``backend`` names it, and
``build_engine(options)`` builds its engine. See docs/architecture.md for adding one.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from thinkling.config import ConfigError, format_validation_error
from thinkling.engines.base import (
    ENGINES, GREEDY, CallStats, Engine, EngineError, EngineOptions, Reply, Request, RequestError, SamplingParams,
    TeacherSpec, TokenLogprob, build_engine, engine_names, register_engine, to_options,
)
from thinkling.registry import discover

discover(__name__)  # every backend module registers itself


def engine_options(data: dict[str, Any] | EngineOptions, key: str = "teacher") -> EngineOptions:
    """Validate ``data`` as the options of its ``backend``; errors name ``key`` (e.g. ``teacher.base_url``)."""
    try:
        return to_options(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, key, prefix=key)) from None
    except ValueError as e:
        raise ConfigError(f"invalid config ({key}):\n  key '{key}.backend': {e}") from None


def options_class(backend: str) -> type[EngineOptions]:
    return ENGINES.get(backend).options


__all__ = [
    "ENGINES", "GREEDY", "CallStats", "Engine", "EngineError", "EngineOptions", "Reply", "Request", "RequestError",
    "SamplingParams", "TeacherSpec", "TokenLogprob", "build_engine", "engine_names", "engine_options",
    "options_class", "register_engine", "to_options",
]
