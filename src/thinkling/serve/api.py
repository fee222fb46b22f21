"""Request handling of ``thinkling serve`` between HTTP and the batcher: validation, rendering, the
OpenAI response shapes (plain and streamed), usage and log-probs.

A request body is parsed, rendered and tokenized in a small thread pool, never on the event loop (which
keeps answering ``/health`` and the other clients meanwhile), and its cost is bounded before the work
that costs: its rows (prompts x ``n``) against ``max_queued_rows``, and its tokens (the sum over its rows
of prompt + ``max_tokens``) against ``max_request_tokens`` - first a lower bound from the characters of
each prompt (no token is shorter than ``1 / chars_per_token`` of the longest token in the vocabulary, so
a prompt far too long for the context is refused before it is tokenized), then the exact count.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from thinkling.engines.hf_decode import Choice, DecodeSampling
from thinkling.models.render import render_prompt
from thinkling.serve.batcher import GONE, Batcher, Failure, Job, Overloaded, ShuttingDown, Snapshot
from thinkling.serve.config import ServeConfig
from thinkling.serve.guard import BODY, TRIM
from thinkling.serve.protocol import ApiError, ChatRequest, CompletionRequest, error_body
from thinkling.serve.text import CLOSE, OPEN, visible

PREPARE_THREADS = 2   # parsing, rendering and tokenizing requests (tokenizers release the GIL)
TRIM_AFTER_TOKENS = 1 << 15   # a request costing this many tokens gives its memory back once answered


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _failed(f: Failure) -> ApiError:
    return ApiError(f.status, f.message, type="server_error", code=f.code)


class Client:
    """The connection of a request being handled: a client that hangs up before its reply cancels its job.

    Watches ``receive`` for ``http.disconnect`` (the body was read before the handler ran) until
    :meth:`close`; a streamed reply is watched by the streaming response itself once it starts.
    """

    def __init__(self, scope: dict | None = None, receive=None):
        self.scope = scope if scope is not None else {}
        self.gone = False
        self.job: Job | None = None
        self._task = asyncio.ensure_future(self._watch(receive)) if receive is not None else None

    async def _watch(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            await asyncio.sleep(0.05)
        self.gone = True
        if self.job is not None:
            self.job.cancelled = True           # its rows leave the queue, or the batch at the next step
            self.job.events.put_nowait(("error", GONE))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Api:
    """Request handling between HTTP and the engine: validation, rendering, response shapes."""

    def __init__(self, engine: Batcher, cfg: ServeConfig):
        self.engine = engine
        self.cfg = cfg
        self.tok = engine.tok
        self.base_name = cfg.served_name
        self.created = int(time.time())
        self.max_request_tokens = cfg.max_request_tokens or cfg.max_batch_size * engine.context_len
        # the most characters one token stands for: a text of c characters has at least c / this tokens
        vocab = self.tok.convert_ids_to_tokens(list(range(len(self.tok))))
        self.chars_per_token = max(1, *(len(t or "") for t in vocab))
        self.pool = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="thinkling-serve-prepare")
        self.draining = False   # shutting down: no new request is taken

    # -- shared pieces --

    def adapter_for(self, model: str) -> str | None:
        if model == self.base_name:
            return None
        if model in self.engine.adapters:
            return model
        raise ApiError(404, f"The model `{model}` does not exist. Served: "
                       f"{', '.join([self.base_name, *self.engine.adapters])}", param="model", code="model_not_found")

    def models(self) -> dict:
        # root is the served name, never the checkpoint's path (which would tell clients the server's disk layout)
        data = [{"id": self.base_name, "object": "model", "created": self.created, "owned_by": "thinkling",
                 "root": self.base_name, "parent": None, "max_model_len": self.engine.context_len}]
        data += [{"id": a, "object": "model", "created": self.created, "owned_by": "thinkling", "root": a,
                  "parent": self.base_name, "max_model_len": self.engine.context_len} for a in self.engine.adapters]
        return {"object": "list", "data": data}

    @lru_cache(maxsize=65536)  # noqa: B019 - one Api per server, tokens are few
    def token_text(self, tid: int) -> str:
        return self.tok.decode([tid], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def opens_think(self, prompt: list[int]) -> bool:
        tail = self.tok.decode(prompt[-16:], skip_special_tokens=False).rstrip()
        return tail.endswith(OPEN) and CLOSE not in tail[tail.rfind(OPEN):]

    def max_tokens(self, prompt_len: int, asked: int | None, default: int, param: str, exact: bool = True) -> int:
        ctx = self.engine.context_len
        least = "" if exact else "at least "
        if prompt_len >= ctx:
            raise ApiError(400, f"This model's maximum context length is {ctx} tokens. However, your prompt is "
                           f"{least}{prompt_len} tokens long; shorten it.", param=param, code="context_length_exceeded")
        if asked is not None and prompt_len + asked > ctx:
            raise ApiError(400, f"This model's maximum context length is {ctx} tokens. However, you requested "
                           f"{least}{prompt_len + asked} tokens ({least}{prompt_len} in the prompt, {asked} for the "
                           "completion). Reduce the prompt or max_tokens.", param="max_tokens",
                           code="context_length_exceeded")
        return asked if asked is not None else min(default, ctx - prompt_len)

    def at_least(self, n_chars: int) -> int:
        """A lower bound on the tokens of a text of ``n_chars`` characters (no tokenizing)."""
        return -(-n_chars // self.chars_per_token)

    def check_cost(self, rows: int, tokens: int | None, param: str, exact: bool = True) -> None:
        """Refuse a request with more rows than the queue takes, or costing more than ``max_request_tokens``
        (``tokens``: the sum over its rows of prompt + max_tokens, or a lower bound of it)."""
        if rows > self.cfg.max_queued_rows:
            raise ApiError(400, f"This request has {rows} rows (prompts x n); the server takes at most "
                           f"{self.cfg.max_queued_rows} at once (server key max_queued_rows). Send fewer prompts or "
                           "a smaller n, or split the request.", param=param, code="request_too_large")
        if tokens is not None and tokens > self.max_request_tokens:
            raise ApiError(400, f"This request would cost {'' if exact else 'at least '}{tokens} tokens ({rows} rows, "
                           f"prompts x n, of prompt + max_tokens each); the server accepts at most "
                           f"{self.max_request_tokens} per request (server key max_request_tokens). Send fewer or "
                           "shorter prompts, a smaller n or max_tokens, or split the request.", param=param,
                           code="request_too_large")

    def check_request(self, req, n_prompts: int) -> None:
        if req.n > self.cfg.max_n:
            raise ApiError(400, f"n must be between 1 and {self.cfg.max_n}, got {req.n}", param="n")
        self.check_cost(n_prompts * req.n, None, "n" if n_prompts == 1 else "prompt")

    def choices(self, req, prompts: list[list[int]], max_tokens: int | None, default_max: int,
                logprobs: int | None, chat: bool) -> list[Choice]:
        self.check_request(req, len(prompts))
        if logprobs is not None and logprobs > self.cfg.max_logprobs:
            raise ApiError(400, f"at most {self.cfg.max_logprobs} top log-probs per token, got {logprobs}",
                           param="logprobs")
        sampling = DecodeSampling(temperature=1.0 if req.temperature is None else req.temperature,
                            top_p=1.0 if req.top_p is None else req.top_p, top_k=req.top_k or 0, seed=req.seed)
        stops = req.stops()
        vocab = len(self.tok)
        param = "messages" if chat else "prompt"
        caps = []
        for p in prompts:
            if not p:
                raise ApiError(400, "the prompt is empty", param="prompt")
            if min(p) < 0 or max(p) >= vocab:
                raise ApiError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
            caps.append(self.max_tokens(len(p), max_tokens, default_max, param))
        self.check_cost(len(prompts) * req.n, req.n * sum(len(p) + cap for p, cap in zip(prompts, caps)), param)
        out = []
        for p, cap in zip(prompts, caps):
            opened = self.opens_think(p)
            for _ in range(req.n):
                out.append(Choice(index=len(out), prompt=p, max_tokens=cap, sampling=sampling, stop=stops,
                                  logprobs=logprobs, thinking_budget=req.thinking_budget, opened=opened,
                                  ignore_eos=req.ignore_eos))
        return out

    def submit(self, choices: list[Choice], adapter: str | None, stream: bool, client: Client) -> Job:
        if client.gone:                          # it hung up while its request was prepared
            raise _failed(GONE)
        job = Job(choices, adapter, stream, asyncio.get_running_loop())
        try:
            self.engine.submit(job)
        except ShuttingDown:
            raise ApiError(503, "the server is shutting down; retry on another replica or later", type="server_error",
                           code="server_shutting_down") from None
        except Overloaded as e:
            raise ApiError(503, f"The server is overloaded: {e}", type="server_error",
                           code="server_overloaded") from None
        client.job = job
        if sum(len(c.prompt) + c.max_tokens for c in choices) >= TRIM_AFTER_TOKENS:
            client.scope[TRIM] = True            # the guard gives the memory back once it is answered
        return job

    @staticmethod
    async def wait(job: Job) -> None:
        try:
            while True:
                kind, payload = await job.events.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise _failed(payload)
        except asyncio.CancelledError:
            job.cancelled = True
            raise

    @staticmethod
    def parse(model, body: bytes):
        """The request body as ``model`` (in a prepare thread); errors answer as FastAPI's own would.

        ``json.loads`` then validation, not pydantic's ``model_validate_json``: on a body of token ids the
        latter holds ~30x the body's size while it runs (7.6 MB -> 215 MB), the former ~2-8x."""
        try:
            data = json.loads(body)
        except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
                                           "ctx": {"error": str(e)}}]) from None
        try:
            return model.model_validate(data)
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_input=False, include_url=False)) from None

    async def prepared(self, fn, body: bytes):
        """``fn(body)`` in a prepare thread (the event loop goes on serving meanwhile)."""
        if self.draining:
            raise ApiError(503, "the server is shutting down; retry on another replica or later", type="server_error",
                           code="server_shutting_down")
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, body)

    @staticmethod
    def usage(choices: list[Choice], prompt_tokens: int) -> dict:
        done = sum(len(c.tokens) for c in choices)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": prompt_tokens + done,
                "completion_tokens_details": {"reasoning_tokens": sum(c.think_tokens for c in choices)}}

    def chat_logprobs(self, c: Choice, lo: int = 0, hi: int | None = None) -> dict | None:
        if c.logprobs is None:
            return None

        def one(tid, lp):
            s = self.token_text(tid)
            return {"token": s, "logprob": lp, "bytes": list(s.encode("utf-8"))}

        return {"content": [{**one(e.token, e.logprob), "top_logprobs": [one(t, v) for t, v in e.top]}
                            for e in c.entries[lo:hi]]}

    def completion_logprobs(self, c: Choice, lo: int = 0, hi: int | None = None, offset: int = 0) -> dict | None:
        if c.logprobs is None:
            return None
        tokens, lps, tops, offsets = [], [], [], []
        for e in c.entries[lo:hi]:
            s = self.token_text(e.token)
            tokens.append(s)
            lps.append(e.logprob)
            tops.append({self.token_text(t): v for t, v in e.top} if c.logprobs else None)
            offsets.append(offset)
            offset += len(s)
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}

    # -- chat --

    def prepare_chat(self, body: bytes):
        """(In a prepare thread.) The request, its adapter, prompt ids and choices; cheap bounds first."""
        req = self.parse(ChatRequest, body)
        adapter = self.adapter_for(req.model)
        messages = [m.as_dict() for m in req.messages]
        started = ""
        if req.continue_final_message:  # the reply was started by the client: render up to it, then its text
            if messages[-1]["role"] != "assistant" or len(messages) < 2:
                raise ApiError(400, "continue_final_message needs a started assistant message last",
                               param="messages")
            messages, started = messages[:-1], messages[-1]["content"]
        if req.top_logprobs is not None and not req.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        self.check_request(req, 1)
        asked = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        try:
            text = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # noqa: BLE001 - a template that rejects these messages (jinja raises anything)
            raise ApiError(400, f"the chat template cannot render these messages: {e}", param="messages") from None
        least = self.at_least(len(text) + len(started))   # before tokenizing: a prompt far too long costs nothing
        cap = self.max_tokens(least, asked, self.cfg.default_max_tokens, "messages", exact=False)
        self.check_cost(req.n, req.n * (least + cap), "messages", exact=False)
        del text
        prompt = render_prompt(self.tok, messages)
        if started:
            prompt = prompt + self.tok(started, add_special_tokens=False)["input_ids"]
        k = (req.top_logprobs or 0) if req.logprobs else None
        choices = self.choices(req, [prompt], asked, self.cfg.default_max_tokens, k, chat=True)
        return req, adapter, len(prompt), choices

    async def chat(self, scope: dict, receive=None):
        """A chat request whose body the guard read into ``scope``; ``receive`` tells when its client hangs up."""
        client = Client(scope, receive)
        try:
            req, adapter, prompt_len, choices = await self.prepared(self.prepare_chat, scope.pop(BODY, b""))
            split = (req.separate_reasoning if req.separate_reasoning is not None
                     else self.cfg.reasoning_parser == "think")
            job = self.submit(choices, adapter, req.stream, client)
            rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            if req.stream:
                return self.chat_stream(job, req, rid, prompt_len, split)
            await self.wait(job)
        finally:
            client.close()
        out = []
        for c in choices:
            reasoning, content = visible(c.text, True, split, c.opened, c.stop)
            msg = {"role": "assistant", "content": content}
            if reasoning is not None:
                msg["reasoning_content"] = reasoning
            out.append({"index": c.index, "message": msg, "logprobs": self.chat_logprobs(c),
                        "finish_reason": c.finish_reason})
        return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": req.model,
                "choices": out, "usage": self.usage(choices, prompt_len), "system_fingerprint": None}

    def chat_stream(self, job: Job, req: ChatRequest, rid: str, prompt_len: int, split: bool):
        by_index = {c.index: c for c in job.choices}
        sent = {i: ("", "", 0) for i in by_index}   # reasoning, content, logprob entries already sent

        def deltas(snaps: list[Snapshot]):
            for s in snaps:
                c = by_index[s.index]
                final = s.finish_reason is not None
                r, t = visible(s.text, final, split, c.opened, c.stop)
                r0, t0, n0 = sent[s.index]
                delta = {}
                if r and r != r0 and r.startswith(r0):
                    delta["reasoning_content"] = r[len(r0):]
                if t != t0 and t.startswith(t0):
                    delta["content"] = t[len(t0):]
                sent[s.index] = (r if r is not None and r.startswith(r0) else r0, t if t.startswith(t0) else t0,
                                 s.n_entries)
                lp = self.chat_logprobs(c, n0, s.n_entries) if s.n_entries > n0 else None
                if delta or lp or final:
                    yield {"index": s.index, "delta": delta, "logprobs": lp,
                           "finish_reason": s.finish_reason if final else None}

        opening = [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                    "finish_reason": None} for i in by_index]
        return self._events(job, req, rid, "chat.completion.chunk", prompt_len, deltas, opening)

    async def _events(self, job: Job, req, rid: str, obj: str, prompt_len: int, deltas, opening=()):
        """A streamed reply as server-sent events: the ``opening`` choices, then what ``deltas(snapshots)``
        makes of each step (finished choices are not shown again), the usage when asked, and ``[DONE]``."""
        created = int(time.time())
        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(choices, usage=None):
            body = {"id": rid, "object": obj, "created": created, "model": req.model, "choices": choices,
                    "system_fingerprint": None}
            if include_usage:
                body["usage"] = usage
            return _sse(body)

        try:
            if opening:
                yield chunk(list(opening))
            finished: set[int] = set()
            while True:
                kind, payload = await job.events.get()
                if kind == "error":
                    yield _sse(error_body(payload.message, "server_error", code=payload.code))
                    break
                snaps = [s for s in payload if s.index not in finished]
                for choice in deltas(snaps):
                    yield chunk([choice])
                finished |= {s.index for s in snaps if s.finish_reason is not None}
                if kind == "done":
                    if include_usage:
                        yield chunk([], self.usage(job.choices, prompt_len))
                    break
            yield "data: [DONE]\n\n"
        finally:
            job.cancelled = True  # a client that hung up stops its rows; a finished job is unaffected

    # -- completions --

    def prepare_completion(self, body: bytes):
        """(In a prepare thread.) The request, its adapter, prompt ids and choices; cheap bounds first."""
        req = self.parse(CompletionRequest, body)
        adapter = self.adapter_for(req.model)
        if req.echo:
            raise ApiError(400, "echo is not supported", param="echo")
        if req.suffix:
            raise ApiError(400, "suffix is not supported", param="suffix")
        if req.best_of is not None and req.best_of != req.n:
            raise ApiError(400, "best_of other than n is not supported", param="best_of")
        p = req.prompt
        if isinstance(p, str):
            texts = [p]
        elif p and all(isinstance(x, str) for x in p):
            texts = list(p)
        else:
            texts = None
        if texts is not None:
            self.check_request(req, len(texts))
            least = [self.at_least(len(t)) for t in texts]   # before tokenizing: the lengths of the texts bound it
            caps = [self.max_tokens(n, req.max_tokens, self.cfg.default_max_tokens, "prompt", exact=False)
                    for n in least]
            self.check_cost(len(texts) * req.n, req.n * (sum(least) + sum(caps)), "prompt", exact=False)
            prompts = self.tok(texts)["input_ids"]
            del texts
        elif p and isinstance(p[0], int):
            prompts = [list(p)]
        else:
            prompts = [list(x) for x in p]
        if not prompts:
            raise ApiError(400, "prompt must not be an empty list", param="prompt")
        choices = self.choices(req, prompts, req.max_tokens, self.cfg.default_max_tokens, req.logprobs,
                               chat=False)
        return req, adapter, sum(len(x) for x in prompts), choices

    async def complete(self, scope: dict, receive=None):
        """A completions request whose body the guard read into ``scope`` (see :meth:`chat`)."""
        client = Client(scope, receive)
        try:
            req, adapter, n_prompt, choices = await self.prepared(self.prepare_completion, scope.pop(BODY, b""))
            job = self.submit(choices, adapter, req.stream, client)
            rid = f"cmpl-{uuid.uuid4().hex[:24]}"
            if req.stream:
                return self.complete_stream(job, req, rid, n_prompt)
            await self.wait(job)
        finally:
            client.close()
        out = [{"index": c.index, "text": c.text, "logprobs": self.completion_logprobs(c),
                "finish_reason": c.finish_reason} for c in choices]
        return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": req.model,
                "choices": out, "usage": self.usage(choices, n_prompt), "system_fingerprint": None}

    def complete_stream(self, job: Job, req: CompletionRequest, rid: str, n_prompt: int):
        by_index = {c.index: c for c in job.choices}
        sent = {i: ("", 0) for i in by_index}   # text, logprob entries already sent

        def deltas(snaps: list[Snapshot]):
            for s in snaps:
                c = by_index[s.index]
                final = s.finish_reason is not None
                _, t = visible(s.text, final, False, False, c.stop)
                t0, n0 = sent[s.index]
                lp = self.completion_logprobs(c, n0, s.n_entries, offset=len(t0)) if s.n_entries > n0 else None
                sent[s.index] = (t, s.n_entries)
                if t != t0 or lp or final:
                    yield {"index": s.index, "text": t[len(t0):], "logprobs": lp,
                           "finish_reason": s.finish_reason if final else None}

        return self._events(job, req, rid, "text_completion", n_prompt, deltas)

    # -- counters --

    def stats(self) -> dict:
        s = self.engine.stats
        return {"requests": s.requests, "rejected": s.rejected, "batches": s.batches, "sequences": s.sequences,
                "tokens": s.tokens, "largest_batch": s.largest_batch, "errors": s.errors,
                "cancelled": s.cancelled, "in_flight": self.engine.in_flight,
                "rows_in_flight": self.engine.rows_in_flight, "max_queued_requests": self.engine.max_queued,
                "max_queued_rows": self.engine.max_rows, "max_batch_size": self.engine.max_batch_size,
                "max_request_tokens": self.max_request_tokens}
