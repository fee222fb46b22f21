"""Request handling of ``thinkling serve`` between HTTP and the batcher: validation, rendering, the
OpenAI response shapes (plain and streamed), usage and log-probs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from functools import lru_cache

from thinkling.engines.hf_decode import Choice, DecodeSampling
from thinkling.models.render import render_prompt
from thinkling.serve.batcher import Batcher, Job, Overloaded, Snapshot
from thinkling.serve.config import ServeConfig
from thinkling.serve.protocol import ApiError, ChatRequest, CompletionRequest, error_body
from thinkling.serve.text import CLOSE, OPEN, visible


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class Api:
    """Request handling between HTTP and the engine: validation, rendering, response shapes."""

    def __init__(self, engine: Batcher, cfg: ServeConfig):
        self.engine = engine
        self.cfg = cfg
        self.tok = engine.tok
        self.base_name = cfg.served_name
        self.created = int(time.time())

    # -- shared pieces --

    def adapter_for(self, model: str) -> str | None:
        if model == self.base_name:
            return None
        if model in self.engine.adapters:
            return model
        raise ApiError(404, f"The model `{model}` does not exist. Served: "
                       f"{', '.join([self.base_name, *self.engine.adapters])}", param="model", code="model_not_found")

    def models(self) -> dict:
        data = [{"id": self.base_name, "object": "model", "created": self.created, "owned_by": "thinkling",
                 "root": self.cfg.model, "parent": None, "max_model_len": self.engine.context_len}]
        data += [{"id": a, "object": "model", "created": self.created, "owned_by": "thinkling", "root": a,
                  "parent": self.base_name, "max_model_len": self.engine.context_len} for a in self.engine.adapters]
        return {"object": "list", "data": data}

    @lru_cache(maxsize=65536)  # noqa: B019 - one Api per server, tokens are few
    def token_text(self, tid: int) -> str:
        return self.tok.decode([tid], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def opens_think(self, prompt: list[int]) -> bool:
        tail = self.tok.decode(prompt[-16:], skip_special_tokens=False).rstrip()
        return tail.endswith(OPEN) and CLOSE not in tail[tail.rfind(OPEN):]

    def max_tokens(self, prompt_len: int, asked: int | None, default: int, param: str) -> int:
        ctx = self.engine.context_len
        if prompt_len >= ctx:
            raise ApiError(400, f"This model's maximum context length is {ctx} tokens. However, your prompt is "
                           f"{prompt_len} tokens long; shorten it.", param=param, code="context_length_exceeded")
        if asked is not None and prompt_len + asked > ctx:
            raise ApiError(400, f"This model's maximum context length is {ctx} tokens. However, you requested "
                           f"{prompt_len + asked} tokens ({prompt_len} in the prompt, {asked} for the completion). "
                           "Reduce the prompt or max_tokens.", param="max_tokens", code="context_length_exceeded")
        return asked if asked is not None else min(default, ctx - prompt_len)

    def choices(self, req, prompts: list[list[int]], max_tokens: int | None, default_max: int,
                logprobs: int | None, chat: bool) -> list[Choice]:
        if req.n > self.cfg.max_n:
            raise ApiError(400, f"n must be between 1 and {self.cfg.max_n}, got {req.n}", param="n")
        if logprobs is not None and logprobs > self.cfg.max_logprobs:
            raise ApiError(400, f"at most {self.cfg.max_logprobs} top log-probs per token, got {logprobs}",
                           param="logprobs")
        sampling = DecodeSampling(temperature=1.0 if req.temperature is None else req.temperature,
                            top_p=1.0 if req.top_p is None else req.top_p, top_k=req.top_k or 0, seed=req.seed)
        stops = req.stops()
        vocab = len(self.tok)
        out = []
        for p in prompts:
            if not p:
                raise ApiError(400, "the prompt is empty", param="prompt")
            if min(p) < 0 or max(p) >= vocab:
                raise ApiError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
            cap = self.max_tokens(len(p), max_tokens, default_max, "messages" if chat else "prompt")
            opened = self.opens_think(p)
            for _ in range(req.n):
                out.append(Choice(index=len(out), prompt=p, max_tokens=cap, sampling=sampling, stop=stops,
                                  logprobs=logprobs, thinking_budget=req.thinking_budget, opened=opened,
                                  ignore_eos=req.ignore_eos))
        return out

    def submit(self, choices: list[Choice], adapter: str | None, stream: bool) -> Job:
        job = Job(choices, adapter, stream, asyncio.get_running_loop())
        try:
            self.engine.submit(job)
        except Overloaded as e:
            raise ApiError(503, f"The server is overloaded: {e}", type="server_error",
                           code="server_overloaded") from None
        return job

    @staticmethod
    async def wait(job: Job) -> None:
        try:
            while True:
                kind, payload = await job.events.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise ApiError(500, payload, type="server_error", code="generation_failed")
        except asyncio.CancelledError:
            job.cancelled = True
            raise

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

    async def chat(self, req: ChatRequest):
        adapter = self.adapter_for(req.model)
        messages = [m.as_dict() for m in req.messages]
        started = ""
        if req.continue_final_message:  # the reply was started by the client: render up to it, then its text
            if messages[-1]["role"] != "assistant" or len(messages) < 2:
                raise ApiError(400, "continue_final_message needs a started assistant message last",
                               param="messages")
            messages, started = messages[:-1], messages[-1]["content"]
        try:
            prompt = render_prompt(self.tok, messages)
        except Exception as e:  # noqa: BLE001 - a template that rejects these messages (jinja raises anything)
            raise ApiError(400, f"the chat template cannot render these messages: {e}", param="messages") from None
        if started:
            prompt = prompt + self.tok(started, add_special_tokens=False)["input_ids"]
        if req.top_logprobs is not None and not req.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        k = (req.top_logprobs or 0) if req.logprobs else None
        asked = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        choices = self.choices(req, [prompt], asked, self.cfg.default_max_tokens, k, chat=True)
        split = req.separate_reasoning if req.separate_reasoning is not None else self.cfg.reasoning_parser == "think"
        job = self.submit(choices, adapter, req.stream)
        rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if req.stream:
            return self.chat_stream(job, req, rid, len(prompt), split)
        await self.wait(job)
        out = []
        for c in choices:
            reasoning, content = visible(c.text, True, split, c.opened, c.stop)
            msg = {"role": "assistant", "content": content}
            if reasoning is not None:
                msg["reasoning_content"] = reasoning
            out.append({"index": c.index, "message": msg, "logprobs": self.chat_logprobs(c),
                        "finish_reason": c.finish_reason})
        return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": req.model,
                "choices": out, "usage": self.usage(choices, len(prompt)), "system_fingerprint": None}

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
                    yield _sse(error_body(payload, "server_error", code="generation_failed"))
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

    async def complete(self, req: CompletionRequest):
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
            prompts = [self.tok(t)["input_ids"] for t in texts]
        elif p and isinstance(p[0], int):
            prompts = [list(p)]
        else:
            prompts = [list(x) for x in p]
        if not prompts:
            raise ApiError(400, "prompt must not be an empty list", param="prompt")
        choices = self.choices(req, prompts, req.max_tokens, self.cfg.default_max_tokens, req.logprobs,
                               chat=False)
        job = self.submit(choices, adapter, req.stream)
        rid = f"cmpl-{uuid.uuid4().hex[:24]}"
        n_prompt = sum(len(x) for x in prompts)
        if req.stream:
            return self.complete_stream(job, req, rid, n_prompt)
        await self.wait(job)
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
                "in_flight": self.engine.in_flight, "max_queued_requests": self.engine.max_queued,
                "max_batch_size": self.engine.max_batch_size}
