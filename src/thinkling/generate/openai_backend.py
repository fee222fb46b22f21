"""The ``openai`` teacher backend: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, SGLang, llama.cpp,
``thinkling serve`` ...), asynchronous with bounded concurrency.

One request is one logical call with its own retry loop; the ``openai`` client's own retries are off
(``max_retries=0``) so that every attempt is seen and counted here:

- retried: 429, 5xx, 408, 409, timeouts and dropped connections, with a full-jitter exponential
  backoff (``uniform(0, min(cap, base * 2**k))``) - or exactly the server's ``Retry-After`` (seconds or
  an HTTP date) on 429/503. A 429 also pauses every other request until then: rate limits are shared.
- not retried: any other 4xx (a 400 "prompt too long", a 404 "no such model", a 401): the request fails
  at once with the server's message.
- ``rpm`` and ``tpm`` are token buckets; a request takes ``len(prompt)/4 + max_tokens`` tokens up front
  and is corrected by the reported usage when it returns.

The reasoning comes from the server's ``reasoning_content`` (or ``reasoning``) field when it sends one,
else from ``<think>...</think>`` in the content; it is kept apart from the answer. A server that returns
no ``usage`` gets 0 tokens and ``meta.usage_missing = True``, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

from thinkling.generate.backends import Backend, Reply, Request, SamplingParams, TeacherError, TeacherSpec

# Retry-After values beyond this are clipped: a server asking for an hour would stall the run silently
MAX_RETRY_AFTER = 900.0
NO_KEY = "EMPTY"
# iter_generate hands back what is done at least this often, so a slow tail never holds finished replies
FLUSH_SECONDS = 2.0
_DONE, _ERROR = object(), object()


# ----------------------------------------------------------------------------- pure helpers (unit-tested)


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


def _wire_errors() -> tuple[type[BaseException], ...]:
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


def split_reasoning(content: str | None, reasoning_field: str | None) -> tuple[str, str, bool]:
    """(reasoning, answer, closed) from a server's separate reasoning field and/or ``<think>`` tags."""
    from thinkling.format import THINK_CLOSE, THINK_OPEN, split_thinking

    content = content or ""
    if reasoning_field:
        if THINK_CLOSE in content or THINK_OPEN in content:  # both: tags in the content are reasoning too
            more, answer, closed = split_thinking(content)
            return (reasoning_field.strip() + ("\n" + more if more else "")).strip(), answer, closed
        return reasoning_field.strip(), content.strip(), True
    return split_thinking(content)


def completion_prompt(messages: list[dict[str, str]]) -> str:
    """``api=completions``: the message texts joined by blank lines, roles dropped, no chat template."""
    return "\n\n".join(m["content"] for m in messages)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A tokenizer-free estimate for the tpm bucket (about 4 characters per token)."""
    return sum(len(m.get("content", "")) for m in messages) // 4 + 4 * len(messages)


def _reasoning_of(d: dict[str, Any]) -> str | None:
    for k in ("reasoning_content", "reasoning"):
        v = d.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def parse_completion(body: Any, api: str) -> tuple[str | None, str | None, str, dict[str, Any] | None]:
    """(content, reasoning field, finish_reason, usage or None) of a non-streamed response body."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise BadResponse(f"response has no choices: {json.dumps(body)[:300]}")
    ch = body["choices"][0]
    if api == "chat":
        msg = ch.get("message") or {}
        content, reasoning = msg.get("content"), _reasoning_of(msg)
    else:
        content, reasoning = ch.get("text"), _reasoning_of(ch)
    usage = body.get("usage")
    return content, reasoning, ch.get("finish_reason") or "stop", usage if isinstance(usage, dict) else None


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


# ----------------------------------------------------------------------------- the backend


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


class OpenAIBackend(Backend):
    """An OpenAI-compatible endpoint as a teacher (see the module docstring for retries and limits)."""

    def __init__(self, spec: TeacherSpec, seed: int | None = None):
        if not spec.base_url:
            raise ValueError("teacher.backend=openai needs teacher.base_url (e.g. http://127.0.0.1:8000/v1)")
        if not spec.model:
            raise ValueError("teacher.backend=openai needs teacher.model (the model name the endpoint serves)")
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(
                    f"teacher.api_key_env={spec.api_key_env}: the environment variable {spec.api_key_env} is not "
                    "set or empty (export it, or leave teacher.api_key_env unset for an endpoint that needs no key)")
            self.api_key = key
        else:
            self.api_key = NO_KEY
        self.spec = spec
        self.rng = random.Random(seed)
        self.rpm = TokenBucket(spec.rpm) if spec.rpm else None
        self.tpm = TokenBucket(spec.tpm) if spec.tpm else None
        self.not_before = 0.0  # monotonic time before which no request is sent (after a 429)

    # -- sync entry points

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[Reply | Exception]:
        if not requests:
            return []
        out: list[Reply | Exception | None] = [None] * len(requests)

        def emit(i: int, res: Reply | Exception) -> None:
            out[i] = res

        run_sync(lambda: self._run_all(requests, sampling, emit))
        return out  # type: ignore[return-value]

    def iter_generate(self, requests: list[Request], sampling: SamplingParams,
                      batch: int) -> Iterator[list[tuple[Request, Reply | Exception]]]:
        """Replies in batches as they come, with ``concurrency`` requests kept in flight throughout.

        The requests run on an event loop in a worker thread; a batch is handed back when it holds
        ``batch`` replies or ``FLUSH_SECONDS`` have passed. Closing the iterator cancels what is in flight.
        """
        if not requests:
            return
        q: queue.Queue = queue.Queue()
        ctl: dict[str, Any] = {}

        def target() -> None:
            try:
                asyncio.run(self._run_all(requests, sampling, lambda i, res: q.put((i, res)), ctl))
            except BaseException as e:  # noqa: BLE001 - handed to the consuming thread, which raises it
                q.put((_ERROR, e))
                return
            q.put((_DONE, None))

        worker = threading.Thread(target=target, name="openai-teacher", daemon=True)
        worker.start()
        buf: list[tuple[Request, Reply | Exception]] = []
        last = time.monotonic()
        try:
            while True:
                try:
                    i, res = q.get(timeout=max(0.01, FLUSH_SECONDS - (time.monotonic() - last)))
                except queue.Empty:
                    i = None
                if i is _DONE:
                    break
                if i is _ERROR:
                    raise res
                if i is not None:
                    buf.append((requests[i], res))
                    if self.progress is not None:
                        self.progress(res)
                if buf and (len(buf) >= batch or time.monotonic() - last >= FLUSH_SECONDS):
                    yield buf
                    buf, last = [], time.monotonic()
            if buf:
                yield buf
        finally:
            if worker.is_alive() and "task" in ctl:
                ctl["loop"].call_soon_threadsafe(ctl["task"].cancel)
            worker.join(30)

    async def _run_all(self, requests: list[Request], sampling: SamplingParams, emit, ctl: dict | None = None) -> None:
        """Run every request with ``concurrency`` on the wire; ``emit(index, reply or exception)`` each."""
        from openai import AsyncOpenAI

        if ctl is not None:
            ctl["loop"], ctl["task"] = asyncio.get_running_loop(), asyncio.current_task()
        for b in (self.rpm, self.tpm):
            if b is not None:
                b.lock = asyncio.Lock()
        sem = asyncio.Semaphore(self.spec.concurrency)
        client = AsyncOpenAI(base_url=self.spec.base_url, api_key=self.api_key, timeout=self.spec.timeout,
                             max_retries=0)
        todo = iter(enumerate(requests))

        async def worker() -> None:
            for i, r in todo:  # one shared iterator: each worker takes the next request when it is free
                emit(i, await self._request(client, sem, r, sampling))

        # more workers than slots: a request backing off gives its slot to one that can go
        try:
            await asyncio.gather(*(worker() for _ in range(min(len(requests), 2 * self.spec.concurrency))))
        finally:
            await client.close()

    # -- one logical request: its retry loop

    async def _request(self, client, sem: asyncio.Semaphore, r: Request, sampling: SamplingParams) -> Reply | Exception:
        spec = self.spec
        estimate = estimate_tokens(r.messages) + sampling.max_tokens
        attempt = 0
        while True:
            attempt += 1
            wait = self.not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            async with sem:  # a slot is held while on the wire, not while backing off
                if self.rpm is not None:
                    await self.rpm.take(1)
                if self.tpm is not None:
                    await self.tpm.take(estimate)
                self.stats.attempted()
                t0 = time.monotonic()
                try:
                    reply = await self._attempt(client, r, sampling)
                except _wire_errors() as e:  # anything else is a bug: it propagates, loudly
                    err: Exception | None = e
                else:
                    err = None
            if err is None:
                if self.tpm is not None and not reply.meta.get("usage_missing"):
                    self.tpm.correct(reply.prompt_tokens + reply.completion_tokens - estimate)
                reply.meta.update(attempts=attempt, seconds=round(time.monotonic() - t0, 3))
                return reply
            cause, retryable, status = classify(err)
            if self.tpm is not None:
                self.tpm.correct(-estimate)  # nothing was generated
            if not retryable or attempt > spec.max_retries:
                return self._failure(err, cause, status, attempt, retryable)
            self.stats.retried(cause)
            delay = None
            if status in (429, 503):
                delay = retry_after_of(err)
            if delay is None:
                delay = backoff_delay(attempt - 1, spec.backoff_base, spec.backoff_cap, self.rng)
            elif status == 429:  # the limit is the endpoint's, shared by every request in flight
                self.not_before = max(self.not_before, time.monotonic() + delay)
            await asyncio.sleep(delay)

    def _failure(self, err: Exception, cause: str, status: int | None, attempts: int, retryable: bool) -> TeacherError:
        where = self.spec.base_url
        if status is not None:
            what = f"HTTP {status} from {where}: {server_message(err)}"
        elif cause in ("timeout", "connection"):
            what = f"{cause} error talking to {where}: {server_message(err)}"
            if cause == "timeout":
                what += f" (teacher.timeout={self.spec.timeout:g}s)"
        else:
            what = f"{type(err).__name__} from {where}: {server_message(err)}"
        what += f" (gave up after {attempts} attempts)" if retryable else " (not retried)"
        return TeacherError(what, cause=cause, attempts=attempts, status=status)

    # -- one HTTP attempt

    async def _streamed(self, client, r: Request, kw: dict[str, Any]):
        """(content, reasoning field, finish_reason, usage) of a streamed reply, deltas joined."""
        kw = {**kw, "stream": True, "stream_options": {"include_usage": True}}
        if self.spec.api == "chat":
            stream = await client.chat.completions.create(messages=r.messages, **kw)
        else:
            stream = await client.completions.create(prompt=completion_prompt(r.messages), **kw)
        content: list[str] = []
        reasoning: list[str] = []
        finish, usage, seen = None, None, False
        async with stream:
            async for chunk in stream:
                d = chunk.model_dump()
                if isinstance(d.get("usage"), dict):
                    usage = d["usage"]
                for ch in d.get("choices") or []:
                    if ch.get("index", 0) != 0:
                        continue
                    seen = True
                    part = (ch.get("delta") or {}) if self.spec.api == "chat" else ch
                    content.append(part.get("content" if self.spec.api == "chat" else "text") or "")
                    reasoning.append(_reasoning_of(part) or "")
                    finish = ch.get("finish_reason") or finish
        if not seen:
            raise BadResponse("the stream ended without a choice")
        if finish is None:  # the server closed the stream before saying why: the reply is cut
            raise BadResponse("the stream ended without a finish_reason")
        return "".join(content), "".join(reasoning) or None, finish, usage

    async def _attempt(self, client, r: Request, sampling: SamplingParams) -> Reply:
        spec = self.spec
        kw: dict[str, Any] = {"model": spec.model, "temperature": sampling.temperature, "top_p": sampling.top_p,
                              spec.token_limit_param: sampling.max_tokens}
        if spec.extra_body:
            kw["extra_body"] = dict(spec.extra_body)
        if spec.stream:
            content, reasoning_field, finish, usage = await self._streamed(client, r, kw)
        else:
            if spec.api == "chat":
                raw = await client.chat.completions.with_raw_response.create(messages=r.messages, **kw)
            else:
                raw = await client.completions.with_raw_response.create(prompt=completion_prompt(r.messages), **kw)
            try:
                body = json.loads(raw.text)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise BadResponse(f"response is not JSON ({e}): {raw.text[:200]!r}") from None
            content, reasoning_field, finish, usage = parse_completion(body, spec.api)
        reasoning, answer, closed = split_reasoning(content, reasoning_field)
        meta: dict[str, Any] = {}
        if reasoning_field:
            meta["reasoning_field"] = True
        if r.context.get("raw"):  # the text exactly as served (eval rebuilds the whole reply from it)
            meta.update(content=content or "", reasoning_text=reasoning_field)
        prompt_tokens = completion_tokens = 0
        if usage is None or not isinstance(usage.get("completion_tokens"), int):
            meta["usage_missing"] = True
        else:
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage["completion_tokens"])
        return Reply(reasoning=reasoning, answer=answer if closed else "", finish_reason=finish,
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, meta=meta)


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
