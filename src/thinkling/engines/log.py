"""Replies logged by request key, each as soon as the engine reports it: an engine call that is cut short
(a kill, an endpoint that went away) is finished by running it again, without asking twice for what was
answered.

:class:`LoggedEngine` wraps any engine. Each reply it gets is appended to a JSONL log
(:class:`~thinkling.artifacts.AppendLog`: a line torn by a kill is cut on reopen) under the request's
key; a request whose key is in the log is answered from it. Failures are not logged, so a re-run retries
them. Eval (``units/*/calls.jsonl``) and curate's teacher ops (``views/*/calls.jsonl``) keep their calls
this way; generate keeps its own append-only ``traces.jsonl``, keyed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from thinkling.artifacts import AppendLog, iter_jsonl
from thinkling.engines.base import Engine, Reply, Request, TokenLogprob
from thinkling.format import format_assistant


def reply_row(key: str, r: Reply) -> dict[str, Any]:
    d = asdict(r)
    if r.logprobs is None:
        d.pop("logprobs")
    return {"key": key, **d}


def reply_of_row(row: dict[str, Any]) -> Reply:
    """A logged reply; rows written before the engines were one layer are read too (eval's
    ``{text, n_tokens, truncated, seconds}`` and curate's ``{reasoning, answer, finish_reason, ...}``)."""
    if "n_tokens" in row:  # an eval call of an earlier version
        return Reply.of_text(row["text"], finish_reason="length" if row["truncated"] else "stop",
                             completion_tokens=row["n_tokens"], seconds=row.get("seconds", 0.0))
    if "text" not in row:  # a curate call of an earlier version
        reasoning, answer = row.get("reasoning", ""), row.get("answer", "")
        text = format_assistant(reasoning, answer)
        return Reply(text=text, reasoning=reasoning, answer=answer, finish_reason=row.get("finish_reason", "stop"),
                     prompt_tokens=row.get("prompt_tokens", 0), completion_tokens=row.get("completion_tokens", 0))
    lps = row.get("logprobs")
    return Reply(text=row["text"], reasoning=row.get("reasoning", ""), answer=row.get("answer", ""),
                 finish_reason=row.get("finish_reason", "stop"), prompt_tokens=row.get("prompt_tokens", 0),
                 completion_tokens=row.get("completion_tokens", 0), seconds=row.get("seconds", 0.0),
                 logprobs=None if lps is None else [TokenLogprob(e["token"], e["logprob"], [tuple(t) for t in e["top"]])
                                                    for e in lps],
                 meta=row.get("meta") or {})


class LoggedEngine(Engine):
    """An engine whose replies are logged by request key (``key(request)``, default ``request.key``).

    ``inner`` is an engine, or a function that builds one: then it is built only when a request is not
    in the log, and closed with this one.
    """

    def __init__(self, inner: Engine | Callable[[], Engine], log_path: str | Path,
                 key: Callable[[Request], str] | None = None):
        self._inner = inner if isinstance(inner, Engine) else None
        self._factory = None if isinstance(inner, Engine) else inner
        self.adapters = self._inner.adapters if self._inner is not None else ()
        self.key_of = key or (lambda r: r.key)
        self.log = AppendLog(log_path)  # first: it cuts a line torn by a kill
        self.done: dict[str, Reply] = {r["key"]: reply_of_row(r) for r in iter_jsonl(log_path)}

    @property
    def inner(self) -> Engine:
        if self._inner is None:
            self._inner = self._factory()
        return self._inner

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        """Replies from the log where it has them; the rest from the inner engine, each appended to the log
        as the engine reports it (per batch on ``hf``, per reply on ``openai``), so a kill loses at most
        what was in flight."""
        keys = [self.key_of(r) for r in requests]
        out: list[Reply | Exception | None] = [self.done.get(k) for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        if self.progress is not None:
            for r, rep in zip(requests, out):
                if rep is not None:
                    self.progress(r, rep)
        if not todo:
            return out  # type: ignore[return-value]
        inner = self.inner
        inner.progress = self._log_as_they_come
        try:
            res = inner.generate([requests[i] for i in todo])
        finally:
            inner.progress = None
        for i, r in zip(todo, res, strict=True):
            out[i] = r
            if isinstance(r, Reply) and keys[i] not in self.done:  # an engine that reports nothing as it goes
                self._log(keys[i], r)
        return out  # type: ignore[return-value]

    def _log_as_they_come(self, request: Request, reply: Reply | Exception) -> None:
        if isinstance(reply, Reply):
            self._log(self.key_of(request), reply)
        if self.progress is not None:
            self.progress(request, reply)

    def _log(self, key: str, reply: Reply) -> None:
        self.done[key] = reply
        self.log.append([reply_row(key, reply)])

    @property
    def stats(self):
        return self.inner.stats

    def close(self) -> None:
        self.log.close()
        if self._factory is not None and self._inner is not None:
            self._inner.close()

