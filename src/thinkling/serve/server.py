"""``thinkling serve``: any HF causal LM (a student) behind an OpenAI-compatible HTTP API.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (the official
``openai`` client works unchanged), plus ``GET /health``, ``GET /stats`` (JSON counters) and
``GET /metrics`` (the same counters for Prometheus). See docs/serve.md.

``serve(cfg)`` runs the server in the foreground; ``serve_in_thread(model, ...)`` starts it in a
background thread (for tests and for programs that want a local student endpoint).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException

from thinkling.config import build_config
from thinkling.engines.hf import HFEngine, HFOptions
from thinkling.models.loading import set_threads
from thinkling.serve.api import Api
from thinkling.serve.batcher import Batcher
from thinkling.serve.config import ServeConfig
from thinkling.serve.guard import Guard, header_timeout_protocol
from thinkling.serve.protocol import ApiError, error_body

log = logging.getLogger("thinkling.serve")


# ---- loading -----------------------------------------------------------------------------------------

def load_engine(cfg: ServeConfig) -> Batcher:
    """Load the base model, its tokenizer and the LoRA adapters (a LoRID output dir brings its own) into
    the ``hf`` engine; return a started batcher over it."""
    set_threads(cfg.threads)
    engine = HFEngine(HFOptions(model=cfg.model, dtype=cfg.dtype, lorid=True, adapter_dirs=cfg.adapters,
                                max_model_len=cfg.max_model_len))
    batcher = Batcher(engine, max_batch_size=cfg.max_batch_size, batch_window_ms=cfg.batch_window_ms,
                      max_queued_requests=cfg.max_queued_requests, max_queued_rows=cfg.max_queued_rows)
    batcher.start()
    return batcher


# ---- the app -----------------------------------------------------------------------------------------

def build_app(engine: Batcher, cfg: ServeConfig):
    """The FastAPI app over a loaded engine: the guard (API key, body size, read timeout; guard.py),
    OpenAI-shaped errors, then the routes."""
    api = Api(engine, cfg)
    app = FastAPI(title="thinkling serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.api = api
    app.add_middleware(Guard, api_key=cfg.resolved_api_key(), max_body_bytes=cfg.max_body_bytes,
                       read_timeout_s=cfg.read_timeout_s, draining=lambda: api.draining)
    _error_handlers(app)
    _routes(app, api)
    return app


def _error_handlers(app: FastAPI) -> None:
    """Every error answers OpenAI's JSON shape (``{"error": {...}}``) and leaves the server up."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError):
        headers = {"Retry-After": "1"} if e.status == 503 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        if first.get("type") == "json_invalid":
            msg = f"the request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
        else:
            msg = "; ".join(f"{'.'.join(str(x) for x in er.get('loc', ()) if x != 'body') or 'body'}: {er.get('msg')}"
                            for er in errs[:5])
        param = None if first.get("type") == "json_invalid" else ".".join(loc) or None
        return JSONResponse(error_body(msg, param=param), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException):
        return JSONResponse(error_body(str(e.detail), code=str(e.status_code)), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, e: Exception):
        log.exception("request failed")
        return JSONResponse(error_body(f"internal error: {type(e).__name__}: {e}", "server_error"), status_code=500)


def _routes(app: FastAPI, api: Api) -> None:
    def _respond(out):
        if isinstance(out, dict):
            return out
        return StreamingResponse(out, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/v1/models")
    async def models():
        return api.models()

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        api.adapter_for(model_id)
        return next(m for m in api.models()["data"] if m["id"] == model_id)

    # the guard read the body (bounded in size and time); it is parsed in a prepare thread
    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return _respond(await api.chat(request.scope, request.receive))

    @app.post("/v1/completions")
    async def completions(request: Request):
        return _respond(await api.complete(request.scope, request.receive))

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/stats")
    async def stats():
        return api.stats()

    @app.get("/metrics")
    async def metrics():
        lines = []
        for k, v in api.stats().items():
            kind = ("counter" if k in ("requests", "rejected", "batches", "sequences", "tokens", "errors", "cancelled")
                    else "gauge")
            lines += [f"# TYPE thinkling_serve_{k} {kind}",
                      f"thinkling_serve_{k} {v}"]
        return PlainTextResponse("\n".join(lines) + "\n")


# ---- running -----------------------------------------------------------------------------------------

def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def _make_server(app, engine: Batcher, cfg: ServeConfig, on_ready: Callable[[], None], log_config):
    api: Api = app.state.api

    class _Server(uvicorn.Server):
        grace = cfg.shutdown_timeout_s

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started:
                on_ready()

        async def shutdown(self, sockets=None):
            """Refuse new requests, let those in flight run for ``grace`` seconds, then end the rest with a
            JSON 503 (uvicorn would cancel them, which answers a plain-text 500), then uvicorn's own shutdown."""
            api.draining = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.grace
            while engine.in_flight and loop.time() < deadline and not self.force_exit:
                await asyncio.sleep(0.05)
            engine.halt()
            await super().shutdown(sockets=sockets)

    kw = {} if log_config == "default" else {"log_config": log_config}
    # uvicorn's own grace only has to cover answering: the engine has ended every job by then
    return _Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level,
                                  http=header_timeout_protocol(cfg.read_timeout_s), timeout_graceful_shutdown=5, **kw))


def _url(host: str, port: int) -> str:
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"


def serve(cfg: ServeConfig, console=None) -> None:
    """Load the model and serve until interrupted (Ctrl-C / SIGTERM)."""
    sock = _bind(cfg.host, cfg.port)  # before loading: a busy port fails in a second, not after the load
    try:
        engine = load_engine(cfg)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    names = ", ".join([cfg.served_name, *engine.adapters])

    def ready():
        key = "; clients must send the API key" if cfg.resolved_api_key() else ""
        msg = f"thinkling serve: ready on {_url(cfg.host, port)} (models: {names}{key})"
        if console is not None:
            console.print(msg, markup=False, highlight=False, soft_wrap=True)
        else:
            log.warning(msg)

    server = _make_server(build_app(engine, cfg), engine, cfg, ready, "default")
    try:
        server.run(sockets=[sock])
    finally:
        engine.stop()
        sock.close()


def serve_in_thread(model: str, host: str = "127.0.0.1", port: int = 0,
                    **options) -> tuple[str, Callable[..., None]]:
    """Start a server for ``model`` in a background thread; return ``(base_url, stop)`` once it is ready.

    ``base_url`` ends in ``/v1`` (pass it to ``openai.OpenAI(base_url=..., api_key="x")``); ``port=0``
    picks a free port. ``options`` are any other ``ServeConfig`` keys (``adapters``, ``name``,
    ``max_batch_size``, ``reasoning_parser``, ...). ``stop(grace=0)`` shuts the server down as Ctrl-C does,
    with ``grace`` seconds for the requests in flight (those still running then get a JSON 503); it is
    idempotent.
    """
    opts = {"log_level": "warning", **options}
    cfg = build_config(ServeConfig, {"model": model, "host": host, "port": port, **opts}, "serve_in_thread")
    sock = _bind(host, port)
    try:
        engine = load_engine(cfg)
    except BaseException:
        sock.close()
        raise
    url = _url(host, sock.getsockname()[1])
    ready = threading.Event()
    app = build_app(engine, cfg)
    api = app.state.api
    server = _make_server(app, engine, cfg, ready.set, None)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="thinkling-serve", daemon=True)
    thread.start()
    while not ready.wait(0.05):
        if not thread.is_alive():
            engine.stop()
            sock.close()
            raise RuntimeError(f"thinkling serve failed to start on {host}:{port} (see the log above)")
    log.info("thinkling serve: ready on %s", url)

    def stop(grace: float = 0.0) -> None:
        server.grace = grace       # then running and waiting requests end with a JSON 503
        server.should_exit = True
        thread.join(30 + grace)
        engine.stop()
        api.pool.shutdown(wait=False)
        sock.close()

    return url, stop
