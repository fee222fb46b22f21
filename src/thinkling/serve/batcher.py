"""The request batcher of ``thinkling serve``: one worker thread running the ``hf`` engine's decode loop.

Requests (``Job``s, each with one or more ``Choice``s) wait in a bounded queue. A free worker waits a
few milliseconds for more to arrive, takes as many as fit in ``max_batch_size`` sequences and decodes
them together with :class:`~thinkling.engines.hf_decode.StepDecoder` (the engine's token-by-token loop,
whose greedy replies equal the engine's batched ones), streaming jobs notified after every step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from thinkling.engines.hf import HFEngine
from thinkling.engines.hf_decode import Choice

log = logging.getLogger("thinkling.serve")


class Overloaded(RuntimeError):
    """The queue of waiting and running requests is full."""


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


class Batcher:
    """Queues jobs and decodes them in batches on one engine, in one worker thread."""

    def __init__(self, engine: HFEngine, *, max_batch_size: int = 32, batch_window_ms: float = 5.0,
                 max_queued_requests: int = 256):
        import torch  # noqa: F401 - fail here, not in the worker

        self.engine = engine
        self.decoder = engine.decoder
        self.tok = engine.tokenizer
        self.adapters = list(engine.adapters)
        self.context_len = engine.context or 2048
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
            self.decoder.prepare(c)
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
                    self._decode(jobs)
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

    def _decode(self, jobs: list[Job]) -> None:
        """Generate every choice of ``jobs`` to its end, notifying streaming jobs after each step."""
        rows = [(j, c) for j in jobs for c in j.choices]
        self.stats.batches += 1
        self.stats.sequences += len(rows)
        self.stats.largest_batch = max(self.stats.largest_batch, len(rows))

        def on_step(live: list[int]) -> None:
            by_job: dict[int, tuple[Job, list[Choice]]] = {}
            for r in live:
                job, c = rows[r]
                if job.stream and not job.cancelled:
                    by_job.setdefault(id(job), (job, []))[1].append(c)
            for job, changed in by_job.values():
                job.notify("step", job.snapshots(changed))

        self.stats.tokens += self.decoder.decode([(c, j.adapter) for j, c in rows], on_step,
                                                 lambda r: rows[r][0].cancelled or self._stopping)
