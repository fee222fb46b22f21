"""Requests and engines for the engine tests: a chat request, the prompts the hf engine is asked, and an
``openai`` teacher config and engine (pointed at a fault proxy or ``thinkling serve``)."""

from __future__ import annotations

from thinkling.engines import Request, SamplingParams, engine_options
from thinkling.engines.openai import OpenAIEngine
from thinkling.records import Problem


def ask(q: str, n: int = 16, **kw) -> Request:
    return Request([{"role": "user", "content": q}], sampling=SamplingParams(max_tokens=n), **kw)


QS = ["a=1\nb=a+2\nWhat is b?", "x", "Compute mod 10.\na=7\nWhat is a?", "b=3", "one two three"]


MODEL = "tiny"


def teacher(base_url: str, **kw) -> dict:
    return {"backend": "openai", "base_url": base_url, "model": MODEL, "concurrency": 8, "timeout": 30,
            "backoff_base": 0.01, "backoff_cap": 0.05, **kw}


def problem(q: str = "What is 2 + 3?") -> Problem:
    return Problem(id="p0", task="arithmetic", split="train", question=q, answer="5")


def req(q: str, key: str = "k", max_tokens: int = 2048) -> Request:
    return Request([{"role": "user", "content": q}], sampling=SamplingParams(max_tokens=max_tokens), problem=problem(q),
                   key=key)


def engine(**kw) -> OpenAIEngine:
    return OpenAIEngine(engine_options(kw))
