"""The wire side of the ``openai`` engine, as plain functions: classifying failures, Retry-After and
backoff, rate-limit buckets, parsing completion bodies. Each is unit-tested on its own."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from thinkling.engines.base import TokenLogprob

# the `openai` client takes ~0.5 s to import and these modules load with every config (--help): it is
# imported where a request is made

# Retry-After values beyond this are clipped: a server asking for an hour would stall the run silently
MAX_RETRY_AFTER = 900.0
NO_KEY = "EMPTY"
# iter_generate hands back what is done at least this often, so a slow tail never holds finished replies
FLUSH_SECONDS = 2.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date. None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), MAX_RETRY_AFTER)


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**retry)] (retry = 0 for the first retry)."""
    return rng.uniform(0.0, min(cap, base * (2 ** min(retry, 60))))


def classify(exc: BaseException) -> tuple[str, bool, int | None]:
    """(cause, retryable, HTTP status) of an exception raised by one attempt."""
    import openai

    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - older openai clients use httpx
        import httpx  # type: ignore[no-redef]

    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | asyncio.TimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return "connection", True, None
    if isinstance(exc, openai.APIStatusError):
        s = exc.status_code
        if s == 429:
            return "429", True, s
        if s >= 500:
            return "5xx", True, s
        if s in (408, 409):
            return str(s), True, s
        return "4xx", False, s
    if isinstance(exc, BadResponse):
        return "bad_response", True, None
    return "error", False, None


def wire_errors() -> tuple[type[BaseException], ...]:
    """What one attempt may raise because of the endpoint or the network (all classified by ``classify``)."""
    import openai

    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover
        import httpx  # type: ignore[no-redef]
    return (openai.OpenAIError, httpx.HTTPError, httpx.StreamError, BadResponse, asyncio.TimeoutError)


class BadResponse(Exception):
    """A 2xx whose body is not a completion (malformed JSON, no choices): retried like a server error."""


def server_message(exc: BaseException) -> str:
    """The server's own words for an HTTP error (OpenAI ``error.message``, FastAPI ``detail``, raw text)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        if isinstance(body, dict):
            for k in ("message", "detail", "error"):
                if body.get(k):
                    v = body[k]
                    return v if isinstance(v, str) else json.dumps(v)
            return json.dumps(body)
        if body:
            return str(body)
        try:
            return exc.response.text[:500] or str(exc)
        except Exception:  # noqa: BLE001 - a streamed/closed response has no text; the message is enough
            return str(exc)
    msg = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, openai.APIConnectionError) and cause is not None and str(cause):
        msg += f" ({type(cause).__name__}: {cause})"  # "Connection error." alone does not say which
    return msg


# what a credential looks like in a server's words: an Authorization header (any scheme), a bearer token,
# an OpenAI-style key, an "api_key=..." style pair, and credentials inside a URL
_SECRETS = [
    re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?)(?:bearer|basic|token)?\s*[^\s\"',;}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"()\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]+"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),
]
REDACTED = "[redacted]"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with anything that looks like a credential replaced by ``[redacted]``: the configured
    ``secrets`` themselves first, then Authorization headers, bearer tokens, ``sk-...`` keys,
    ``api_key=...`` pairs and ``user:password@`` in URLs. Server messages are scrubbed before they are
    stored (failed.jsonl) or printed."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, REDACTED)
    for pat in _SECRETS:
        text = pat.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def url_credentials(url: str) -> bool:
    """True when ``url`` carries a user or password (``http://user:pass@host``)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return bool(parts.username or parts.password)


def completion_prompt(messages: list[dict[str, str]]) -> str:
    """``api=completions``: the message texts joined by blank lines, roles dropped, no chat template."""
    return "\n\n".join(m["content"] for m in messages)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A tokenizer-free estimate for the tpm bucket (about 4 characters per token)."""
    return sum(len(m.get("content", "")) for m in messages) // 4 + 4 * len(messages)


def reasoning_of(d: dict[str, Any]) -> str | None:
    """A server's separate reasoning field (``reasoning_content``, or ``reasoning``), when it sends one."""
    for k in ("reasoning_content", "reasoning"):
        v = d.get(k)
        if isinstance(v, str) and v:
            return v
    return None


@dataclass
class Served:
    """One choice of a completion as the server sent it."""

    content: str | None
    reasoning: str | None                 # the separate reasoning field
    finish_reason: str | None
    usage: dict[str, Any] | None = None
    logprobs: list[TokenLogprob] | None = None


def logprobs_of(lp: Any, api: str) -> list[TokenLogprob] | None:
    """OpenAI's log-prob shapes (chat: ``content[]`` entries; completions: parallel lists) as entries."""
    if not isinstance(lp, dict):
        return None
    if api == "chat":
        return [TokenLogprob(e.get("token", ""), float(e.get("logprob", 0.0)),
                             [(t.get("token", ""), float(t.get("logprob", 0.0))) for t in e.get("top_logprobs") or []])
                for e in lp.get("content") or []]
    tops = lp.get("top_logprobs") or []
    return [TokenLogprob(t, float(v if v is not None else 0.0),
                         sorted(((k, float(x)) for k, x in (tops[i] or {}).items()), key=lambda kv: -kv[1])
                         if i < len(tops) else [])
            for i, (t, v) in enumerate(zip(lp.get("tokens") or [], lp.get("token_logprobs") or []))]


def parse_completion(body: Any, api: str) -> Served:
    """The first choice of a non-streamed response body (a body without choices is a BadResponse)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise BadResponse(f"response has no choices: {json.dumps(body)[:300]}")
    ch = body["choices"][0]
    part = (ch.get("message") or {}) if api == "chat" else ch
    usage = body.get("usage")
    return Served(part.get("content" if api == "chat" else "text"), reasoning_of(part), ch.get("finish_reason") or "stop",
                  usage if isinstance(usage, dict) else None, logprobs_of(ch.get("logprobs"), api))


# ----------------------------------------------------------------------------- rate limits


class TokenBucket:
    """``per_minute`` units refilled continuously; starts full. ``take`` waits until it can take ``n``."""

    def __init__(self, per_minute: float):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.t = time.monotonic()
        self.lock: asyncio.Lock | None = None  # one per event loop, set by the backend

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.t) * self.rate)
        self.t = now

    async def take(self, n: float) -> None:
        n = min(n, self.capacity)  # a request larger than the bucket waits for a full bucket
        assert self.lock is not None
        async with self.lock:
            while True:
                self._refill()
                if self.level >= n:
                    self.level -= n
                    return
                await asyncio.sleep((n - self.level) / self.rate)

    def correct(self, delta: float) -> None:
        """Give back (delta < 0) or charge (delta > 0) the difference between estimate and actual."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)


def run_sync(make_coro):
    """Run a coroutine from sync code, also when the caller already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    box: dict[str, Any] = {}

    def target():
        try:
            box["v"] = asyncio.run(make_coro())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["e"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


def retry_after_of(err: Exception) -> float | None:
    """The wait a 429/503 asks for: ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or HTTP date)."""
    ms = _header(err, "retry-after-ms")
    if ms is not None:
        try:
            return min(max(float(ms) / 1000.0, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    return parse_retry_after(_header(err, "retry-after"))


def _header(err: Exception, name: str) -> str | None:
    resp = getattr(err, "response", None)
    if resp is None:
        return None
    try:
        return resp.headers.get(name)
    except Exception:  # noqa: BLE001 - a response without headers has no Retry-After
        return None
