"""The generation engine of ``thinkling serve``: one worker thread, one readable decode loop.

Requests (``Job``s, each with one or more ``Choice``s) wait in a bounded queue. A free worker waits a
few milliseconds for more to arrive, takes as many as fit in ``max_batch_size`` sequences and decodes
them together: prompts left-padded, positions from the attention mask (as ``generate`` computes them,
so greedy replies equal ``thinkling.evaluate.generation.generate_batched``), the KV cache, and rows
dropped from the batch as they finish.

The loop is ours rather than ``model.generate`` because every row carries its own request: sampling
parameters and seed, stop strings, token cap, top-k log-probs, a thinking budget (budget forcing
inserts ``</think>`` when it runs out) and, with peft, its own LoRA adapter (peft's per-row
``adapter_names``), and streaming needs every token as it comes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from thinkling.serve.text import CLOSE, OPEN, Detokenizer, find_stop

log = logging.getLogger("thinkling.serve")

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class Overloaded(RuntimeError):
    """The queue of waiting and running requests is full."""


@dataclass
class Sampling:
    temperature: float = 1.0   # 0: greedy
    top_p: float = 1.0
    top_k: int = 0             # 0: off
    seed: int | None = None    # None: a fresh random seed


@dataclass
class TokenLogprob:
    token: int
    logprob: float
    top: list[tuple[int, float]]   # the k most likely tokens at this step, most likely first


@dataclass
class Choice:
    """One sequence to generate, and its state as it grows."""

    index: int
    prompt: list[int]
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None          # None: none; k >= 0: the chosen token's and the top k
    thinking_budget: int | None = None   # most tokens inside <think>...</think>
    opened: bool = False                 # the prompt ends inside <think>
    ignore_eos: bool = False
    # state, written by the engine thread only
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None     # "stop" | "length" | "cancelled"
    thinking: bool = False
    think_done: bool = False
    think_start: int = 0                 # where the reasoning starts in text
    think_tokens: int = 0
    forced: list[int] = field(default_factory=list)   # tokens to emit next (the closing tag)
    forcing: bool = False
    entries: list[TokenLogprob] = field(default_factory=list)
    detok: Detokenizer | None = None
    generator: object = None


@dataclass(frozen=True)
class Snapshot:
    """What a client may be told about a choice after a step (immutable: read on another thread)."""

    index: int
    text: str
    n_entries: int
    finish_reason: str | None


class Job:
    """One HTTP request: its choices, the adapter, and a queue of events for the request's handler.

    Events are ``("step", [Snapshot])`` (streaming only), ``("done", [Snapshot])`` and
    ``("error", message)``; they are put on the handler's event loop from the engine thread.
    """

    def __init__(self, choices: list[Choice], adapter: str | None, stream: bool, loop: asyncio.AbstractEventLoop):
        self.choices = choices
        self.adapter = adapter
        self.stream = stream
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.submitted = time.monotonic()

    def notify(self, kind: str, payload) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))
        except RuntimeError:  # the handler's loop is gone (server shutting down)
            self.cancelled = True

    def snapshots(self, only: list[Choice] | None = None) -> list[Snapshot]:
        return [Snapshot(c.index, c.text, len(c.entries), c.finish_reason) for c in (only or self.choices)]


@dataclass
class Stats:
    requests: int = 0          # accepted
    rejected: int = 0          # refused with 503 (queue full)
    batches: int = 0           # decode loops run
    sequences: int = 0         # choices decoded
    tokens: int = 0            # tokens generated
    largest_batch: int = 0
    errors: int = 0


class Engine:
    def __init__(self, model, tokenizer, *, adapters: list[str] | None = None, context_len: int | None = None,
                 max_batch_size: int = 32, batch_window_ms: float = 5.0, max_queued_requests: int = 256):
        import torch  # noqa: F401 - fail here, not in the worker

        self.model = model.eval()
        self.tok = tokenizer
        self.adapters = list(adapters or [])
        base = model.get_base_model() if self.adapters else model
        self.config = base.config
        gen_eos = getattr(getattr(base, "generation_config", None), "eos_token_id", None)
        eos = [tokenizer.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]
        self.stop_ids = {int(e) for e in eos if e is not None}
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.close_ids = tokenizer(CLOSE, add_special_tokens=False)["input_ids"]
        self.context_len = int(context_len or getattr(self.config, "max_position_embeddings", 0) or 2048)
        import inspect

        self._keep_kw = "logits_to_keep" in inspect.signature(base.forward).parameters
        self.max_batch_size = max_batch_size
        self.window = batch_window_ms / 1000
        self.max_queued = max_queued_requests
        self.stats = Stats()
        self._pending: deque[Job] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="thinkling-serve-engine", daemon=True)

    # ---- the queue -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, job: Job) -> None:
        """Queue a job, or raise ``Overloaded`` at once when ``max_queued_requests`` are in flight."""
        for c in job.choices:
            c.detok = Detokenizer(self.tok)
            c.thinking = c.opened
            self._spend_budget(c)
            seed = c.sampling.seed
            if c.sampling.temperature > 0:
                import torch

                s = random.SystemRandom().getrandbits(63) if seed is None else (seed * 1_000_003 + c.index) % 2**63
                c.generator = torch.Generator().manual_seed(s)
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if self._in_flight >= self.max_queued:
                self.stats.rejected += 1
                raise Overloaded(f"{self._in_flight} requests are already waiting or running "
                                 f"(max_queued_requests={self.max_queued}); retry later")
            self._in_flight += 1
            self.stats.requests += 1
            self._pending.append(job)
            self._cond.notify_all()

    def _take(self) -> list[Job]:
        """Wait for work, then up to ``batch_window_ms`` for company; return jobs that fit one batch."""
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return []
            deadline = self._pending[0].submitted + self.window
            while (sum(len(j.choices) for j in self._pending) < self.max_batch_size
                   and (left := deadline - time.monotonic()) > 0 and not self._stopping):
                self._cond.wait(left)
            jobs, rows = [], 0
            while self._pending:
                j = self._pending[0]
                if j.cancelled:
                    self._pending.popleft()
                    self._in_flight -= 1
                    continue
                if jobs and rows + len(j.choices) > self.max_batch_size:
                    break
                jobs.append(self._pending.popleft())
                rows += len(j.choices)
            return jobs

    def _work(self) -> None:
        import torch

        while True:
            jobs = self._take()
            if not jobs:
                if self._stopping:
                    for j in list(self._pending):
                        j.notify("error", "the server is shutting down")
                    return
                continue
            try:
                with torch.inference_mode():
                    self.decode(jobs)
                for j in jobs:
                    if any(c.finish_reason == "cancelled" for c in j.choices):
                        j.notify("error", "the server is shutting down")  # (or the client hung up)
                    else:
                        j.notify("done", j.snapshots())
            except Exception as e:  # noqa: BLE001 - reported to every request of the batch, and logged
                log.exception("generation failed for a batch of %d requests", len(jobs))
                self.stats.errors += 1
                for j in jobs:
                    j.notify("error", f"generation failed: {type(e).__name__}: {e}")
            finally:
                with self._cond:
                    self._in_flight -= len(jobs)

    # ---- the decode loop -------------------------------------------------------------------------

    def decode(self, jobs: list[Job]) -> None:
        """Generate every choice of ``jobs`` to its end, notifying streaming jobs after each step."""
        import torch

        rows = [(j, c) for j in jobs for c in j.choices]
        self.stats.batches += 1
        self.stats.sequences += len(rows)
        self.stats.largest_batch = max(self.stats.largest_batch, len(rows))
        width = max(len(c.prompt) for _, c in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (_, c) in enumerate(rows):
            ids[r, width - len(c.prompt):] = torch.tensor(c.prompt)
            att[r, width - len(c.prompt):] = 1
        pos = (att.cumsum(-1) - 1).masked_fill(att == 0, 0)   # as generate() computes them
        from transformers import DynamicCache

        cache = DynamicCache(config=self.config)
        live = list(range(len(rows)))                         # rows still in the batch, in tensor order
        want_logprobs = any(c.logprobs is not None for _, c in rows)
        while True:
            kw = {"logits_to_keep": 1} if self._keep_kw else {}
            if self.adapters:
                kw["adapter_names"] = [rows[r][0].adapter or BASE for r in live]
            out = self.model(input_ids=ids, attention_mask=att, position_ids=pos, past_key_values=cache,
                             use_cache=True, **kw)
            logits = out.logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1) if want_logprobs else None
            greedy = logits.argmax(dim=-1).tolist()
            nxt, keep = [], []
            for b, r in enumerate(live):
                job, c = rows[r]
                if job.cancelled or self._stopping:
                    c.finish_reason = "cancelled"
                else:
                    tok = self._pick(c, logits[b], greedy[b])
                    self._append(c, tok, None if logp is None else logp[b])
                nxt.append(c.tokens[-1] if c.tokens else self.pad)
                if c.finish_reason is None:
                    keep.append(b)
            self.stats.tokens += len(live)
            self._notify_stream(rows, live)
            if not keep:
                return
            if len(keep) < len(live):                          # drop finished rows from the batch
                sel = torch.tensor(keep)
                cache.batch_select_indices(sel)
                att, pos = att[sel], pos[sel]
                live, nxt = [live[b] for b in keep], [nxt[b] for b in keep]
            ids = torch.tensor(nxt, dtype=torch.long)[:, None]
            att = torch.cat([att, att.new_ones((len(live), 1))], dim=-1)
            pos = pos[:, -1:] + 1

    def _notify_stream(self, rows, live) -> None:
        by_job: dict[int, tuple[Job, list[Choice]]] = {}
        for r in live:
            job, c = rows[r]
            if job.stream and not job.cancelled:
                by_job.setdefault(id(job), (job, []))[1].append(c)
        for job, changed in by_job.values():
            job.notify("step", job.snapshots(changed))

    def _pick(self, c: Choice, logits, greedy: int) -> int:
        import torch

        if c.forced:
            return c.forced.pop(0)
        s = c.sampling
        if s.temperature <= 0:
            return greedy
        x = logits / s.temperature
        if s.top_k and s.top_k < x.numel():
            kth = torch.topk(x, s.top_k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if s.top_p < 1.0:
            srt, idx = torch.sort(x, descending=True)
            p = torch.softmax(srt, dim=-1)
            drop = (p.cumsum(-1) - p) > s.top_p               # keep the smallest head with mass >= top_p
            x = torch.full_like(x, float("-inf")).scatter(0, idx, srt.masked_fill(drop, float("-inf")))
        return int(torch.multinomial(torch.softmax(x, dim=-1), 1, generator=c.generator).item())

    def _append(self, c: Choice, tok: int, logp) -> None:
        import torch

        c.tokens.append(tok)
        if c.logprobs is not None:
            top = []
            if c.logprobs > 0:
                v, i = torch.topk(logp, min(c.logprobs, logp.numel()))
                top = list(zip(i.tolist(), v.tolist()))
            c.entries.append(TokenLogprob(tok, float(logp[tok]), top))
        if tok in self.stop_ids and not c.ignore_eos:
            c.text += c.detok.flush()
            c.finish_reason = "stop"
            return
        delta = c.detok.add(tok)
        c.text += delta
        self._track_thinking(c, delta)
        if c.stop:
            start = max(0, len(c.text) - len(delta) - max(map(len, c.stop)) + 1)
            if (i := find_stop(c.text, c.stop, start)) >= 0:
                c.text = c.text[:i]
                c.finish_reason = "stop"
                return
        if len(c.tokens) >= c.max_tokens:
            c.text += c.detok.flush()
            c.finish_reason = "length"

    def _track_thinking(self, c: Choice, delta: str) -> None:
        """Count tokens inside <think>...</think>; when the budget is spent, force the closing tag."""
        if c.think_done:
            return
        if not c.thinking:
            head = c.text.lstrip()
            if head.startswith(OPEN):
                c.thinking = True
                c.think_start = c.text.index(OPEN) + len(OPEN)
                self._spend_budget(c)
            elif not OPEN.startswith(head):
                c.think_done = True                           # this reply does not think
            return
        window = c.text[max(c.think_start, len(c.text) - len(delta) - len(CLOSE)):]
        if CLOSE in window:
            c.thinking, c.think_done, c.forced, c.forcing = False, True, [], False
            return
        if not c.forcing:
            c.think_tokens += 1
            self._spend_budget(c)

    def _spend_budget(self, c: Choice) -> None:
        if c.thinking and c.thinking_budget is not None and c.think_tokens >= c.thinking_budget and not c.forcing:
            c.forced, c.forcing = list(self.close_ids), True
