"""The request batcher of ``thinkling serve``: one worker thread running the ``hf`` engine's decode loop.

Requests (``Job``s, each with one or more ``Choice`` rows) wait in a bounded queue: at most
``max_queued_requests`` jobs and ``max_queued_rows`` rows are waiting or running at once. A free worker
waits a few milliseconds for more to arrive, takes as many rows as fit in ``max_batch_size`` and decodes
them together with :class:`~thinkling.engines.hf_decode.StepDecoder` (the engine's token-by-token loop,
whose greedy replies equal the engine's batched ones), streaming jobs notified after every step. A job
with more rows than ``max_batch_size`` is decoded in slices of that size, and goes to the back of the
queue after each slice, so that one large request does not hold the others back for all of its rows.
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
from thinkling.serve.guard import release_memory

log = logging.getLogger("thinkling.serve")


class Overloaded(RuntimeError):
    """The queue of waiting and running requests (or rows) is full."""


class ShuttingDown(Overloaded):
    """The server is stopping: no new job is taken."""


@dataclass(frozen=True)
class Failure:
    """Why a job ended without its replies (the payload of an ``("error", ...)`` event)."""

    message: str
    status: int = 500
    code: str = "generation_failed"


SHUTDOWN = Failure("the server is shutting down; retry on another replica or later", 503, "server_shutting_down")
GONE = Failure("the client closed the connection", 499, "client_disconnected")


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
    ``("error", Failure)``; they are put on the handler's event loop from the engine thread.
    """

    def __init__(self, choices: list[Choice], adapter: str | None, stream: bool, loop: asyncio.AbstractEventLoop):
        self.choices = choices
        self.adapter = adapter
        self.stream = stream
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.submitted = time.monotonic()
        self.taken = 0           # rows handed to a batch so far (engine thread, under the batcher's lock)
        self.ended = False       # its last event was sent

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
    cancelled: int = 0         # requests whose client went away (or that shutdown ended) before their end


class Batcher:
    """Queues jobs and decodes them in batches (slices of large jobs) on one engine, in one worker thread."""

    def __init__(self, engine: HFEngine, *, max_batch_size: int = 32, batch_window_ms: float = 5.0,
                 max_queued_requests: int = 256, max_queued_rows: int = 1024):
        import torch  # noqa: F401 - fail here, not in the worker

        self.engine = engine
        self.decoder = engine.decoder
        self.tok = engine.tokenizer
        self.adapters = list(engine.adapters)
        self.context_len = engine.context or 2048
        self.max_batch_size = max_batch_size
        self.window = batch_window_ms / 1000
        self.max_queued = max_queued_requests
        self.max_rows = max_queued_rows
        self.stats = Stats()
        self._pending: deque[Job] = deque()
        self._in_flight = 0
        self._rows = 0                                    # rows of the jobs in flight not yet decoded
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="thinkling-serve-engine", daemon=True)

    # ---- the queue -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        """Refuse new jobs and end the waiting and running ones with a shutdown error (returns at once)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def stop(self, timeout: float = 30) -> None:
        self.halt()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def rows_in_flight(self) -> int:
        return self._rows

    def submit(self, job: Job) -> None:
        """Queue a job, or raise ``Overloaded`` at once when ``max_queued_requests`` jobs or ``max_queued_rows``
        rows are in flight (``ShuttingDown`` once the server stops)."""
        for c in job.choices:
            self.decoder.prepare(c)
        rows = len(job.choices)
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            if self._in_flight >= self.max_queued:
                self.stats.rejected += 1
                raise Overloaded(f"{self._in_flight} requests are already waiting or running "
                                 f"(max_queued_requests={self.max_queued}); retry later")
            if self._rows + rows > self.max_rows:
                self.stats.rejected += 1
                raise Overloaded(f"{self._rows} rows (prompts x n) are already waiting or running and this request "
                                 f"has {rows} (max_queued_rows={self.max_rows}); retry later")
            self._in_flight += 1
            self._rows += rows
            self.stats.requests += 1
            self._pending.append(job)
            self._cond.notify_all()

    def _end(self, job: Job, kind: str, payload) -> None:
        """A job's last event (under the lock): its rows not decoded yet are released."""
        if job.ended:
            return
        job.ended = True
        self._rows -= len(job.choices) - job.taken
        job.taken = len(job.choices)
        self._in_flight -= 1
        if kind == "error" and payload in (GONE, SHUTDOWN):
            self.stats.cancelled += 1
        job.notify(kind, payload)

    def _take(self) -> list[tuple[Job, list[Choice]]]:
        """Wait for work, then up to ``batch_window_ms`` for company; return the (job, rows) of one batch:
        whole jobs first come first served, and a slice of a job larger than ``max_batch_size``."""
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return []
            head = self._pending[0]
            if head.taken == 0:   # a new request: wait a little for company (a job's next slice goes at once)
                deadline = head.submitted + self.window
                while (sum(len(j.choices) - j.taken for j in self._pending) < self.max_batch_size
                       and (left := deadline - time.monotonic()) > 0 and not self._stopping):
                    self._cond.wait(left)
            batch: list[tuple[Job, list[Choice]]] = []
            room = self.max_batch_size
            while self._pending and room:
                j = self._pending[0]
                if j.cancelled:
                    self._pending.popleft()
                    self._end(j, "error", GONE)
                    continue
                left = len(j.choices) - j.taken
                if left > room and left <= self.max_batch_size:
                    break                                  # it fits the next batch whole: first come first served
                k = min(left, room)
                self._pending.popleft()
                batch.append((j, j.choices[j.taken:j.taken + k]))
                j.taken += k
                room -= k
                if j.taken < len(j.choices):
                    self._pending.append(j)                # its next slice after the others' turn
            return batch

    def _work(self) -> None:
        import torch

        while True:
            batch = self._take()
            if not batch:
                if self._stopping:
                    with self._cond:
                        while self._pending:
                            self._end(self._pending.popleft(), "error", SHUTDOWN)
                    return
                continue
            failure = None
            try:
                with torch.inference_mode():
                    self._decode(batch)
            except Exception as e:  # noqa: BLE001 - reported to every request of the batch, and logged
                log.exception("generation failed for a batch of %d rows", sum(len(p) for _, p in batch))
                self.stats.errors += 1
                failure = Failure(f"generation failed: {type(e).__name__}: {e}")
            with self._cond:
                for job, part in batch:
                    self._rows -= len(part)
                    if failure is not None:
                        self._end(job, "error", failure)
                    elif any(c.finish_reason == "cancelled" for c in part) or job.cancelled:
                        self._end(job, "error", SHUTDOWN if self._stopping else GONE)
                    elif job.taken == len(job.choices):
                        self._end(job, "done", job.snapshots())
                for job, _ in batch:                       # an ended job's later slices never run
                    if job.ended and job in self._pending:
                        self._pending.remove(job)
                idle = not self._pending
            batch = None
            if idle:
                release_memory()   # the batch's tensors and lists are freed: give the pages back to the OS

    def _decode(self, batch: list[tuple[Job, list[Choice]]]) -> None:
        """Generate every row of ``batch`` to its end, notifying streaming jobs after each step."""
        rows = [(j, c) for j, part in batch for c in part]
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
