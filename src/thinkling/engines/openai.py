"""The ``openai`` engine: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, SGLang, llama.cpp,
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

A request's ``adapter`` names the served model to ask (``thinkling serve`` serves LoRA adapters, and a
LoRID dir's three, under their names); a ``prefix`` is sent as a started assistant message with
``continue_final_message`` (vLLM's and ``thinkling serve``'s convention). The reasoning comes from the
server's ``reasoning_content`` (or ``reasoning``) field when it sends one, else from ``<think>`` tags in
the content; the reply's ``text`` is the content as served, with a separate reasoning field put back
in its tags. A server that returns no ``usage`` gets 0 tokens and ``meta.usage_missing``, never a crash.
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
from typing import Any, Literal

from pydantic import Field, field_validator

from thinkling.engines.base import (
    Engine, EngineOptions, Reply, Request, RequestError, register_engine, timed_share,
)
from thinkling.engines.openai_wire import (
    FLUSH_SECONDS, NO_KEY, BadResponse, Served, TokenBucket, backoff_delay, classify, completion_prompt,
    estimate_tokens, logprobs_of, parse_completion, reasoning_of, retry_after_of, run_sync, scrub, server_message,
    url_credentials, wire_errors,
)
from thinkling.format import join_served, split_served

_DONE, _ERROR = object(), object()


class OpenAIOptions(EngineOptions):
    backend: Literal["openai"] = "openai"
    model: str = Field(description="the served model name")
    base_url: str = Field(description="endpoint base URL, with its /v1 (e.g. http://127.0.0.1:8000/v1)")
    api_key_env: str | None = Field(None, description="name of the environment variable holding the API "
                                    "key (unset: the endpoint needs no key; 'EMPTY' is sent)")
    api: Literal["chat", "completions"] = Field(
        "chat", description="chat (/chat/completions with the messages; the server applies its chat "
        "template) or completions (/completions with the message texts joined by blank lines; no template)")
    concurrency: int = Field(16, ge=1, description="requests in flight at once")
    rpm: float = Field(0, ge=0, description="requests per minute (token bucket; 0 = no limit)")
    tpm: float = Field(0, ge=0, description="tokens per minute (prompt estimate + max_tokens, corrected "
                       "by the reported usage; 0 = no limit)")
    max_retries: int = Field(6, ge=0, description="retries per request on 429, 5xx, 408/409, timeouts "
                             "and dropped connections")
    timeout: float = Field(600.0, gt=0, description="seconds per attempt before it counts as a timeout")
    backoff_base: float = Field(1.0, ge=0, description="backoff before retry k is uniform in "
                                "[0, min(cap, base * 2^k)] (full jitter), unless the server sends Retry-After")
    backoff_cap: float = Field(60.0, ge=0, description="cap of the backoff, in seconds")
    stream: bool = Field(False, description="stream the reply (server-sent events, usage asked with "
                         "stream_options.include_usage); the timeout then bounds each silence, not the whole reply")
    token_limit_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="the request field that carries sampling.max_tokens (OpenAI's "
        "reasoning models want max_completion_tokens)")
    price_prompt_per_mtok: float = Field(0.0, ge=0, description="price per million prompt tokens (ledger cost)")
    price_completion_per_mtok: float = Field(0.0, ge=0, description="price per million completion tokens")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields sent with "
                                       "every request (e.g. {top_k: 20} or {chat_template_kwargs: "
                                       "{enable_thinking: true}})")
    adapters: list[str] = Field(default_factory=list, description="served model names a request may ask "
                                "for as its adapter (e.g. a LoRID dir's intuitive, knowledge, deep)")

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        if url_credentials(v):
            raise ValueError("base_url holds a user name or password; they would be written to config.json, the "
                             "manifest and the ledger - put the key in an environment variable and name it in "
                             "api_key_env instead")
        return v

    OPERATIONAL = frozenset({
        "base_url", "api_key_env", "concurrency", "rpm", "tpm", "max_retries", "timeout", "backoff_base",
        "backoff_cap", "stream", "token_limit_param", "price_prompt_per_mtok", "price_completion_per_mtok",
    })

    def engine_id(self) -> str:
        return self.name or f"openai:{self.model}" + (":completions" if self.api == "completions" else "")


@register_engine("openai", OpenAIOptions)
class OpenAIEngine(Engine):
    """An OpenAI-compatible endpoint (see the module docstring for retries, limits and adapters)."""

    def __init__(self, options: OpenAIOptions, seed: int | None = None):
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise ValueError(
                    f"teacher.api_key_env={options.api_key_env}: the environment variable {options.api_key_env} is "
                    "not set or empty (export it, or leave teacher.api_key_env unset for an endpoint that needs no key)")
            self.api_key = key
        else:
            self.api_key = NO_KEY
        self.spec = options
        self.adapters = tuple(options.adapters)
        self.rng = random.Random(seed)
        self.rpm = TokenBucket(options.rpm) if options.rpm else None
        self.tpm = TokenBucket(options.tpm) if options.tpm else None
        self.not_before = 0.0  # monotonic time before which no request is sent (after a 429)

    # -- sync entry points

    def generate(self, requests: list[Request]) -> list[Reply | Exception]:
        if not requests:
            return []
        out: list[Reply | Exception | None] = [None] * len(requests)

        def emit(i: int, res: Reply | Exception) -> None:
            out[i] = res
            if self.progress is not None:
                self.progress(requests[i], res)

        t0 = time.perf_counter()
        run_sync(lambda: self._run_all(requests, emit))
        share = timed_share(t0, len(requests))
        for r in out:
            if isinstance(r, Reply):
                r.seconds = share
        return out  # type: ignore[return-value]

    def stream(self, requests: list[Request], batch: int) -> Iterator[list[tuple[Request, Reply | Exception]]]:
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
                asyncio.run(self._run_all(requests, lambda i, res: q.put((i, res)), ctl))
            except BaseException as e:  # noqa: BLE001 - handed to the consuming thread, which raises it
                q.put((_ERROR, e))
                return
            q.put((_DONE, None))

        worker = threading.Thread(target=target, name="openai-engine", daemon=True)
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
                        self.progress(requests[i], res)
                if buf and (len(buf) >= batch or time.monotonic() - last >= FLUSH_SECONDS):
                    yield buf
                    buf, last = [], time.monotonic()
            if buf:
                yield buf
        finally:
            if worker.is_alive() and "task" in ctl:
                ctl["loop"].call_soon_threadsafe(ctl["task"].cancel)
            worker.join(30)

    async def _run_all(self, requests: list[Request], emit, ctl: dict | None = None) -> None:
        """Run every request with ``concurrency`` on the wire; ``emit(index, reply or exception)`` each."""
        from openai import AsyncOpenAI  # see openai_wire: the client loads on first use

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
                emit(i, await self._request(client, sem, r))

        # more workers than slots: a request backing off gives its slot to one that can go
        try:
            await asyncio.gather(*(worker() for _ in range(min(len(requests), 2 * self.spec.concurrency))))
        finally:
            await client.close()

    # -- one logical request: its retry loop

    async def _request(self, client, sem: asyncio.Semaphore, r: Request) -> Reply | Exception:
        if r.adapter is not None and r.adapter not in self.adapters:
            return ValueError(f"adapter {r.adapter!r} is not among this endpoint's served adapters "
                              f"({', '.join(self.adapters) or 'none'}; option adapters)")
        estimate = estimate_tokens(self._messages(r)) + r.sampling.max_tokens
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
                    reply = await self._attempt(client, r)
                except wire_errors() as e:  # anything else is a bug: it propagates, loudly
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
            if not retryable or attempt > self.spec.max_retries:
                return self._failure(err, cause, status, attempt, retryable)
            self.stats.retried(cause)
            delay = retry_after_of(err) if status in (429, 503) else None
            if delay is None:
                delay = backoff_delay(attempt - 1, self.spec.backoff_base, self.spec.backoff_cap, self.rng)
            elif status == 429:  # the limit is the endpoint's, shared by every request in flight
                self.not_before = max(self.not_before, time.monotonic() + delay)
            await asyncio.sleep(delay)

    def _failure(self, err: Exception, cause: str, status: int | None, attempts: int, retryable: bool) -> RequestError:
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
        # what a server says may echo the request's headers: never store or print a credential
        return RequestError(scrub(what, (self.api_key,) if self.api_key != NO_KEY else ()), cause=cause,
                            attempts=attempts, status=status)

    # -- one HTTP attempt

    @staticmethod
    def _messages(r: Request) -> list[dict[str, str]]:
        if r.prompt is not None:
            return [{"role": "user", "content": r.prompt}]
        return r.messages + ([{"role": "assistant", "content": r.prefix}] if r.prefix else [])

    def _text_prompt(self, r: Request) -> str:
        """``api=completions``: the raw prompt, or the message texts joined by blank lines (no template)."""
        return r.prompt + r.prefix if r.prompt is not None else completion_prompt(self._messages(r))

    def _kwargs(self, r: Request) -> dict[str, Any]:
        spec, s = self.spec, r.sampling
        kw: dict[str, Any] = {"model": r.adapter or spec.model, "temperature": s.temperature, "top_p": s.top_p,
                              spec.token_limit_param: s.max_tokens}
        extra = dict(spec.extra_body)
        if r.prefix:
            extra.update(continue_final_message=True, add_generation_prompt=False)
        if extra:
            kw["extra_body"] = extra
        if r.logprobs is not None:
            chat = spec.api == "chat"
            kw.update({"logprobs": True, "top_logprobs": r.logprobs} if chat else {"logprobs": r.logprobs})
        return kw

    async def _create(self, client, r: Request, kw: dict[str, Any]):
        if self.spec.api == "chat":
            return await client.chat.completions.create(messages=self._messages(r), **kw)
        return await client.completions.create(prompt=self._text_prompt(r), **kw)

    async def _streamed(self, client, r: Request, kw: dict[str, Any]) -> Served:
        """A streamed reply, deltas joined."""
        chat = self.spec.api == "chat"
        stream = await self._create(client, r, {**kw, "stream": True, "stream_options": {"include_usage": True}})
        content: list[str] = []
        reasoning: list[str] = []
        logprobs: list = []
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
                    part = (ch.get("delta") or {}) if chat else ch
                    content.append(part.get("content" if chat else "text") or "")
                    reasoning.append(reasoning_of(part) or "")
                    logprobs += logprobs_of(ch.get("logprobs"), self.spec.api) or []
                    finish = ch.get("finish_reason") or finish
        if not seen:
            raise BadResponse("the stream ended without a choice")
        if finish is None:  # the server closed the stream before saying why: the reply is cut
            raise BadResponse("the stream ended without a finish_reason")
        return Served("".join(content), "".join(reasoning) or None, finish, usage,
                      logprobs if r.logprobs is not None else None)

    async def _attempt(self, client, r: Request) -> Reply:
        kw = self._kwargs(r)
        if self.spec.stream:
            got = await self._streamed(client, r, kw)
        else:
            if self.spec.api == "chat":
                raw = await client.chat.completions.with_raw_response.create(messages=self._messages(r), **kw)
            else:
                raw = await client.completions.with_raw_response.create(prompt=self._text_prompt(r), **kw)
            try:
                body = json.loads(raw.text)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise BadResponse(f"response is not JSON ({e}): {raw.text[:200]!r}") from None
            got = parse_completion(body, self.spec.api)
        return self._reply(r, got)

    @staticmethod
    def _reply(r: Request, got: Served) -> Reply:
        meta: dict[str, Any] = {}
        if got.reasoning:
            meta["reasoning_field"] = True
        prompt_tokens = completion_tokens = 0
        if got.usage is None or not isinstance(got.usage.get("completion_tokens"), int):
            meta["usage_missing"] = True
        else:
            prompt_tokens = int(got.usage.get("prompt_tokens") or 0)
            completion_tokens = int(got.usage["completion_tokens"])
        kw = dict(finish_reason=got.finish_reason or "stop", prompt_tokens=prompt_tokens,
                  completion_tokens=completion_tokens, logprobs=got.logprobs, meta=meta)
        text = r.prefix + join_served(got.content, got.reasoning)
        if r.prefix:  # the continuation alone does not say whether the thinking closed: the whole reply does
            return Reply.of_text(text, **kw)
        reasoning, answer, closed = split_served(got.content, got.reasoning)
        return Reply(text=text, reasoning=reasoning, answer=answer if closed else "", **kw)
