"""The inference layer: every model call of every stage goes through an engine from this package.

``oracle``     the synthetic tasks' built-in teacher (a program; also judge, rewriter, knowledge writer)
``reference``  a dataset's own worked solutions
``hf``         a local transformers model, batched in-process (and serve's token-by-token loop)
``openai``     any OpenAI-compatible endpoint (async, retries, rate limits)
``vllm``       vLLM's offline engine (an extra; on CPU the venv of ``scripts/vllm_venv.sh``)

Each backend is one module here, found by :func:`~thinkling.registry.discover` (no list to keep):
its options model joins the tagged union :data:`TeacherSpec` (discriminated by ``backend``), and
``build_engine(options)`` builds its engine. See docs/architecture.md for adding one.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from thinkling.config import ConfigError, format_validation_error
from thinkling.engines.base import (
    ENGINES, GREEDY, CallStats, Engine, EngineError, EngineOptions, Reply, Request, RequestError, SamplingParams,
    TokenLogprob, build_engine, engine_names, register_engine,
)
from thinkling.registry import discover

discover(__name__)  # every backend module registers itself


def _backend_of(v: Any) -> str:
    if isinstance(v, dict):
        return v.get("backend", "oracle")
    return getattr(v, "backend", "oracle")


#: The options of any registered backend (a tagged union on ``backend``, default ``oracle``).
TeacherSpec = Annotated[
    Union[tuple(Annotated[spec.options, Tag(name)] for name, spec in ENGINES.items())],  # noqa: UP007
    Discriminator(_backend_of, custom_error_type="unknown_backend",
                  custom_error_message=f"unknown engine backend (known: {', '.join(engine_names())})"),
]

_ADAPTER: TypeAdapter = TypeAdapter(TeacherSpec)


def engine_options(data: dict[str, Any] | EngineOptions, key: str = "teacher") -> EngineOptions:
    """Validate ``data`` as the options of its ``backend``; errors name ``key`` (e.g. ``teacher.base_url``)."""
    if isinstance(data, EngineOptions):
        return data
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(
            e, key, prefix=key, clean=lambda loc: loc[1:] if loc and loc[0] in ENGINES else loc)) from None


def options_class(backend: str) -> type[EngineOptions]:
    return ENGINES.get(backend).options


__all__ = [
    "ENGINES", "GREEDY", "CallStats", "Engine", "EngineError", "EngineOptions", "Reply", "Request", "RequestError",
    "SamplingParams", "TeacherSpec", "TokenLogprob", "build_engine", "engine_names", "engine_options",
    "options_class", "register_engine",
]
