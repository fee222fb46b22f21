"""The typed config of ``thinkling serve`` (kept free of heavy imports: ``--help`` reads it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from thinkling.config import StageConfig

API_KEY_ENV = "THINKLING_SERVE_API_KEY"


class ServeConfig(StageConfig):
    model: str = Field(description="HF hub id or local checkpoint dir of the base model (a LoRID output dir with "
                       "lorid.json loads its base/ and adapters/ by itself)")
    name: str | None = Field(None, description="model name the base is served under (default: the checkpoint "
                             "dir's name, or the hub id)")
    adapters: dict[str, str] = Field(default_factory=dict, description="peft LoRA adapters on the one loaded base, "
                                     "{model name: adapter dir}; a request's `model` picks one")
    host: str = Field("127.0.0.1", description="interface to bind (loopback by default; 0.0.0.0 exposes the server)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    reasoning_parser: Literal["none", "think"] = Field(
        "none", description="'think': return the <think>...</think> part of chat replies as "
        "message.reasoning_content and the rest as content (a request's separate_reasoning overrides); "
        "'none': the raw text in content")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="weights dtype")
    threads: int | None = Field(None, ge=1, description="torch threads (default: torch's choice)")
    max_batch_size: int = Field(32, ge=1, description="most sequences (rows: prompts x n) decoded in one batch; a "
                                "request with more rows is decoded in slices of this size")
    batch_window_ms: float = Field(5.0, ge=0, le=1000, description="how long a free worker waits to gather "
                                   "concurrent requests into one batch")
    max_queued_requests: int = Field(256, ge=1, description="most requests waiting or running at once; more get "
                                     "HTTP 503 (server_overloaded) at once, never an unbounded queue")
    max_queued_rows: int = Field(1024, ge=1, description="most rows (prompts x n, over all requests) waiting or "
                                 "running at once; a request that would pass it gets HTTP 503 (server_overloaded), "
                                 "one with more rows than this alone a 400 (request_too_large)")
    max_request_tokens: int | None = Field(None, ge=1, description="most tokens one request may cost: the sum over "
                                           "its rows (prompts x n) of prompt + max_tokens; a costlier request is "
                                           "refused at once with a 400 (request_too_large) (default: "
                                           "max_batch_size x the context length, one full batch)")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="largest request body accepted, in bytes; "
                                "a larger one gets HTTP 413 (body_too_large) before it is read")
    read_timeout_s: float = Field(30.0, gt=0, le=3600, description="most seconds a client may take to send its "
                                  "request line and headers, and again its body; a slower one is disconnected "
                                  "(headers) or answered HTTP 408 (body)")
    shutdown_timeout_s: float = Field(5.0, ge=0, le=3600, description="on Ctrl-C / SIGTERM, how long requests in "
                                      "flight may run on; those still running then are answered with a JSON "
                                      "HTTP 503 (server_shutting_down)")
    api_key: SecretStr | None = Field(None, description="require `Authorization: Bearer KEY` on every endpoint but "
                                      "/health (default: the THINKLING_SERVE_API_KEY environment variable; "
                                      "neither set: no key); pass it through the environment rather than the "
                                      "command line, where other users can read it")
    max_n: int = Field(16, ge=1, description="largest `n` (choices per request) accepted")
    default_max_tokens: int = Field(512, ge=1, description="max_tokens of a request that sets none (clipped to "
                                    "what is left of the context)")
    max_model_len: int | None = Field(None, ge=2, description="context length (default: the model config's "
                                      "max_position_embeddings)")
    max_logprobs: int = Field(20, ge=0, le=100, description="largest top_logprobs / logprobs k accepted")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="uvicorn log level")

    @field_validator("adapters", mode="before")
    @classmethod
    def _parse_adapters(cls, v):
        # `adapters=[a=path,b=path]` on the command line, like eval's models=[name=path]
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            out = {}
            for item in v:
                name, sep, path = str(item).partition("=")
                if not sep or not name or not path:
                    raise ValueError(f"adapter {item!r} is not of the form name=path")
                out[name] = path
            return out
        return v

    @model_validator(mode="after")
    def _names_unique(self):
        if self.served_name in self.adapters:
            raise ValueError(f"adapter name {self.served_name!r} is also the base model's name; rename one "
                             "(key 'name' sets the base's)")
        return self

    def resolved_api_key(self) -> str | None:
        """The key clients must send: ``api_key``, else ``$THINKLING_SERVE_API_KEY``, else none."""
        key = self.api_key.get_secret_value() if self.api_key is not None else os.environ.get(API_KEY_ENV, "")
        return key or None

    @property
    def served_name(self) -> str:
        if self.name:
            return self.name
        p = Path(self.model).expanduser()
        return p.resolve().name if p.exists() else self.model
