"""What ``thinkling serve`` checks before a request reaches its handler, and giving memory back.

- :class:`Guard`, an ASGI middleware: the API key (``Authorization: Bearer``, compared in constant time;
  ``/health`` stays open), refusal while shutting down, the body-size limit (a declared
  ``Content-Length`` over it is refused before a byte of the body is read, a chunked body as soon as it
  passes it) and the body read timeout. It reads the whole body itself and hands it to the handler in
  ``scope[BODY]``, so a handler never waits on a slow client.
- :func:`header_timeout_protocol`: uvicorn's HTTP protocol with a timeout on the request line and
  headers (uvicorn has none: a client that sends half a header holds its connection for ever).
- :func:`release_memory`: glibc keeps freed memory in its arenas; ``malloc_trim`` gives it back (the
  guard calls it once a large request - a large body, or one its handler marked ``scope[TRIM]`` - is
  answered and its objects are freed).

Every refusal is JSON in OpenAI's shape and says which server key raises the limit.
"""

from __future__ import annotations

import asyncio
import ctypes
import hmac
import json
from collections.abc import Callable

from uvicorn.protocols.http.auto import AutoHTTPProtocol

BODY = "thinkling.body"       # the scope key the request body is handed over in
TRIM = "thinkling.trim"       # a handler sets it on a large request: memory is given back after its answer
OPEN_PATHS = frozenset({"/health"})
TRIM_AFTER_BYTES = 1 << 20    # give memory back after a body this large
LINGER_S = 1.0                # how long a refused body is read (and dropped) so that its client sees the 413

try:  # glibc only; elsewhere (musl, macOS) freed memory is left to the allocator
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _malloc_trim = None


def release_memory() -> None:
    """Give the pages of freed memory back to the OS (``malloc_trim(0)``; a no-op without glibc)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _error(message: str, code: str, type: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": type, "param": None, "code": code}}).encode()


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = (), close: bool = False):
    hs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if close:  # the client may still be sending: the connection cannot carry another request
        hs.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: API key, shutdown refusal, body size and read timeout (see the module docstring)."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, read_timeout_s: float,
                 draining: Callable[[], bool]):
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.max_body = max_body_bytes
        self.timeout = read_timeout_s
        self.draining = draining

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            return await _answer(send, 401, _error(
                "Incorrect API key provided: send it as `Authorization: Bearer KEY` (the server's key api_key, "
                "or THINKLING_SERVE_API_KEY)", "invalid_api_key"), [(b"www-authenticate", b"Bearer")], close=True)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        if self.draining():
            return await _answer(send, 503, _error("the server is shutting down; retry on another replica or later",
                                                   "server_shutting_down", "server_error"), close=True)
        body = await self._read(headers, receive, send)
        if body is None:
            return                                 # answered (413, 408), or the client left
        size = len(body)
        scope[BODY] = body
        del body
        try:
            await self.app(scope, receive, send)
        finally:
            scope.pop(BODY, None)
            if size >= TRIM_AFTER_BYTES or scope.pop(TRIM, False):
                await asyncio.to_thread(release_memory)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        ok = hmac.compare_digest(given.strip(), self.key)   # constant time: the key cannot be guessed byte by byte
        return ok and scheme.lower() == b"bearer"

    def _too_large(self, what: str) -> bytes:
        return _error(f"The request body is {what}; this server accepts at most {self.max_body} bytes (server key "
                      "max_body_bytes). Send fewer or shorter prompts, or split the request.", "body_too_large")

    async def _read(self, headers: dict[bytes, bytes], receive, send) -> bytes | None:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._discard(receive)
            await _answer(send, 413, self._too_large(f"{int(declared)} bytes"), close=True)
            return None
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    msg = await receive()
            except TimeoutError:
                await _answer(send, 408, _error(
                    f"The request body did not arrive within {self.timeout:g} s (server key read_timeout_s).",
                    "request_timeout"), close=True)
                return None
            if msg["type"] == "http.disconnect":
                return None
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                del chunks
                await self._discard(receive)
                await _answer(send, 413, self._too_large(f"more than {self.max_body} bytes"), close=True)
                return None
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _discard(receive) -> None:
        """Read what is left of a refused body, keeping none of it, for at most ``LINGER_S``: a client that
        sends its whole body before it reads (most do) then sees the 413 instead of a reset connection
        (nginx's lingering close). A client with more to send than that gets the reset."""
        try:
            async with asyncio.timeout(LINGER_S):
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect" or not msg.get("more_body", False):
                        return
        except TimeoutError:
            return


def header_timeout_protocol(timeout: float):
    """uvicorn's HTTP protocol class with a deadline on each request's line and headers: ``timeout`` seconds
    from the connection's start (or the previous response's end) to the end of the headers; a connection
    that misses it is closed."""

    class HeaderTimeoutProtocol(AutoHTTPProtocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm(None)

        def on_response_complete(self) -> None:
            cycle = self.cycle          # a pipelined request already read starts a new cycle in there
            super().on_response_complete()
            self._arm(cycle)

        def connection_lost(self, exc) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm(self, cycle) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()

            def expire() -> None:    # no new request's headers since arming: a slow (or idle) client
                if self.cycle is cycle and not self.transport.is_closing():
                    self.transport.close()

            self._header_timer = self.loop.call_later(timeout, expire)

    return HeaderTimeoutProtocol
