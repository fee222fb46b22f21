"""A fault-injecting HTTP proxy on loopback, in front of an OpenAI-compatible server.

Real sockets, real HTTP/1.1 (one request per connection, ``Connection: close``): the client under test
cannot tell it from a flaky endpoint. For a seeded share of POST requests it answers, instead of the
upstream:

- ``429``  - HTTP 429 with ``Retry-After`` (seconds, configurable) and an OpenAI-style error body
- ``500``  - HTTP 500 with an error body
- ``slow`` - nothing for ``slow_seconds`` (set it beyond the client's timeout), then closes
- ``drop`` - reads the request and closes the connection without a byte of response
- ``truncate`` - forwards the request, then sends the headers and half the upstream's body and closes

and counts what it injected (``counts["injected"]``), what it forwarded and every request it saw
(``log``: path, fault, request JSON and headers, monotonic time). ``script`` forces the faults of the first requests, in order
(``"ok"`` for none). Responses can be rewritten on the way back: ``strip_usage`` removes ``usage``
(a server that reports none) and ``transform(path, request, response) -> response`` anything else.
With ``upstream=None`` a ``responder(path, request) -> (status, body)`` answers in place of a server
(:func:`stub_responder` writes R1-style completions), for tests and benchmarks without a model.

Use it in-process (``with FaultProxy(url, fault_rate=0.3, seed=0) as proxy: proxy.base_url``) or as a
script: ``python tests/faultproxy.py --upstream http://127.0.0.1:8000/v1 --fault-rate 0.3 --port 8001``.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("429", "500", "slow", "drop", "truncate")
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def stub_responder(reasoning: str = "Add the numbers step by step.", answer: str = "42",
                   latency: float = 0.0, reasoning_field: bool = False) -> Callable:
    """A stand-in server: chat or text completions of ``<think>reasoning</think>answer`` (or the reasoning
    in ``reasoning_content``), cut at ``max_tokens`` words with ``finish_reason="length"``, with usage."""

    async def respond(path: str, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if latency:
            await asyncio.sleep(latency)
        cap = int(req.get("max_tokens") or req.get("max_completion_tokens") or 1 << 30)
        think, ans = reasoning.split(), answer.split()
        words = think + ans if reasoning_field else ["<think>", *think, "</think>", *ans]
        finish = "length" if len(words) > cap else "stop"
        kept = words[:cap]
        if reasoning_field:
            rc, text = " ".join(kept[:len(think)]), " ".join(kept[len(think):])
        else:
            text = " ".join(kept)
        prompt = req.get("prompt") or " ".join(m.get("content", "") for m in req.get("messages", []))
        usage = {"prompt_tokens": len(str(prompt).split()), "completion_tokens": min(len(words), cap)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if path.endswith("/chat/completions"):
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if reasoning_field:
                msg["reasoning_content"] = rc
            choice = {"index": 0, "message": msg, "finish_reason": finish}
            obj = "chat.completion"
        elif path.endswith("/completions"):
            choice = {"index": 0, "text": text, "finish_reason": finish}
            obj = "text_completion"
        else:
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        return 200, {"id": "stub", "object": obj, "created": int(time.time()), "model": req.get("model", "stub"),
                     "choices": [choice], "usage": usage}

    return respond


class FaultProxy:
    def __init__(self, upstream: str | None = None, *, fault_rate: float = 0.0, mix: dict[str, float] | None = None,
                 seed: int = 0, retry_after: str = "1", slow_seconds: float = 5.0, script: list[str] | tuple = (),
                 strip_usage: bool = False, transform: Callable | None = None, responder: Callable | None = None,
                 host: str = "127.0.0.1", port: int = 0, keep_log: bool = True):
        if upstream is None and responder is None:
            raise ValueError("FaultProxy needs an upstream URL or a responder")
        self.upstream = upstream
        up = urlsplit(upstream) if upstream else None
        self._origin = f"{up.scheme}://{up.netloc}" if up else None
        self._prefix = up.path.rstrip("/") if up else "/v1"
        self.fault_rate = fault_rate
        self.mix = mix or dict.fromkeys(FAULTS, 1.0)  # equal weights
        unknown = set(self.mix) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.rng = random.Random(seed)
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.script = list(script)
        self.strip_usage = strip_usage
        self.transform = transform
        self.responder = responder
        self.host, self.port = host, port
        self.keep_log = keep_log
        self.counts: dict[str, Any] = {"requests": 0, "forwarded": 0, "upstream_errors": 0,
                                       "injected": dict.fromkeys(FAULTS, 0)}
        self.log: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self._prefix

    def start(self) -> FaultProxy:
        ready = threading.Event()
        err: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                err.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(30)
        if err:
            raise err[0]
        return self

    async def _open(self) -> None:
        self._client = None
        if self._origin:
            try:
                import httpx2 as httpx
            except ImportError:  # pragma: no cover
                import httpx  # type: ignore[no-redef]
            self._client = httpx.AsyncClient(base_url=self._origin, timeout=None, trust_env=False)
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=1 << 24)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def injected(self) -> dict[str, int]:
        return dict(self.counts["injected"])

    def posts(self) -> list[dict[str, Any]]:
        """The logged POST requests (the completions), in arrival order."""
        return [e for e in self.log if e["request"] is not None]

    # -- one connection, one request

    def _decide(self) -> str:
        if self.script:
            return self.script.pop(0)
        if self.fault_rate and self.rng.random() < self.fault_rate:
            kinds = list(self.mix)
            return self.rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        return "ok"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # the client went away (e.g. it timed out on a slow answer), or the proxy is stopping
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            req_json = json.loads(body) if body else None
        except json.JSONDecodeError:
            req_json = None

        self.counts["requests"] += 1
        fault = self._decide() if method == "POST" else "ok"
        if self.keep_log:
            self.log.append({"path": target, "fault": fault, "request": req_json, "headers": headers,
                             "t": time.monotonic()})
        if fault != "ok":
            self.counts["injected"][fault] += 1
        if fault == "drop":
            writer.transport.abort()  # no response at all: the client sees the connection go
            return
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
            writer.transport.abort()
            return
        if fault == "429":
            await self._send(writer, 429, {"error": {"message": "rate limited (injected by faultproxy)",
                                                     "type": "rate_limit_error", "code": "rate_limited"}},
                             extra={"Retry-After": self.retry_after})
            return
        if fault == "500":
            await self._send(writer, 500, {"error": {"message": "internal error (injected by faultproxy)",
                                                     "type": "server_error"}})
            return

        self.counts["forwarded"] += 1
        if self._client is None:
            status, obj = await self.responder(target, req_json or {})
            ctype, payload = "application/json", json.dumps(obj).encode()
        else:
            fwd = {k: v for k, v in headers.items()
                   if k not in ("host", "content-length", "connection", "accept-encoding", "transfer-encoding")}
            try:
                resp = await self._client.request(method, target, content=body, headers=fwd)
            except Exception as e:  # noqa: BLE001 - an unreachable upstream is a 502 to the client
                self.counts["upstream_errors"] += 1
                await self._send(writer, 502, {"error": {"message": f"faultproxy: upstream unreachable: {e}"}})
                return
            status, ctype, payload = resp.status_code, resp.headers.get("content-type", ""), resp.content
        payload = self._rewrite(target, req_json, ctype, payload)
        if fault == "truncate":  # the connection dies mid-reply
            head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + payload[: len(payload) // 2])
            await writer.drain()
            writer.transport.abort()
            return
        await self._send(writer, status, payload, ctype=ctype)

    def _rewrite(self, path: str, req: Any, ctype: str, payload: bytes) -> bytes:
        if not (self.strip_usage or self.transform):
            return payload
        if "event-stream" in ctype:
            out = []
            for line in payload.decode().split("\n"):
                if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                    obj = json.loads(line[6:])
                    if self.strip_usage:
                        obj.pop("usage", None)
                    if self.transform:
                        obj = self.transform(path, req, obj)
                    line = "data: " + json.dumps(obj)
                out.append(line)
            return "\n".join(out).encode()
        try:
            obj = json.loads(payload)
        except json.JSONDecodeError:
            return payload
        if isinstance(obj, dict) and "choices" in obj:
            if self.strip_usage:
                obj.pop("usage", None)
            if self.transform:
                obj = self.transform(path, req, obj)
        return json.dumps(obj).encode()

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: Any, ctype: str = "application/json",
                    extra: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Type: {ctype}",
                f"Content-Length: {len(payload)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
        writer.close()


def main() -> None:  # pragma: no cover - a manual/bench tool
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", help="upstream base URL (e.g. http://127.0.0.1:8000/v1); none: a stub server")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--fault-rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retry-after", default="1")
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--stub-latency", type=float, default=0.05)
    ap.add_argument("--strip-usage", action="store_true")
    a = ap.parse_args()
    proxy = FaultProxy(a.upstream, fault_rate=a.fault_rate, seed=a.seed, retry_after=a.retry_after,
                       slow_seconds=a.slow_seconds, strip_usage=a.strip_usage, port=a.port, keep_log=False,
                       responder=None if a.upstream else stub_responder(latency=a.stub_latency)).start()
    print(f"faultproxy on {proxy.base_url} -> {a.upstream or 'stub'}", flush=True)
    try:
        while True:
            time.sleep(5)
            print(json.dumps(proxy.counts), flush=True)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
