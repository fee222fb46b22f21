"""What ``thinkling serve`` checks before a handler runs (serve/guard.py), on a real server on loopback: the API
key (constant-time compare, /health open), the body-size limit, the read timeouts of the body and of the
headers, each refusal JSON in OpenAI's shape."""

from __future__ import annotations

import hmac
import http.client
import json
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import openai
import pytest

from helpers.serve import msgs
from thinkling.config import build_config
from thinkling.serve import guard
from thinkling.serve.config import API_KEY_ENV, ServeConfig
from thinkling.serve.server import serve_in_thread

KEY = "sekret-key-1"


@pytest.fixture(scope="module")
def guarded(noisy_model: Path):
    url, stop = serve_in_thread(str(noisy_model), name="g", api_key=KEY, max_body_bytes=4096, read_timeout_s=1)
    yield url, urlparse(url).port
    stop()


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        return r.status, json.loads(r.read()), dict(r.getheaders())
    finally:
        conn.close()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_api_key_is_required_but_not_for_health(guarded, monkeypatch):
    url, port = guarded
    for headers in ({}, bearer("wrong"), bearer(KEY[:-1]), {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        status, out, hs = call(port, "GET", "/v1/models", headers=headers)
        assert status == 401 and out["error"]["code"] == "invalid_api_key", (headers, out)
        assert "api_key" in out["error"]["message"] and hs.get("www-authenticate") == "Bearer"
        assert call(port, "POST", "/v1/completions", b'{"model": "g", "prompt": "a"}', headers)[0] == 401
    assert call(port, "GET", "/stats")[0] == 401
    assert call(port, "GET", "/health")[:2] == (200, {"status": "ok"})
    status, out, _ = call(port, "GET", "/v1/models", headers=bearer(KEY))
    assert status == 200 and [m["id"] for m in out["data"]] == ["g"]

    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(base_url=url, api_key="nope", max_retries=0).models.list()
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    r = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0).chat.completions.create(
        model="g", messages=msgs("a=1. a?"), temperature=0, max_tokens=3)
    assert r.choices[0].message.content is not None

    # the key is compared in constant time (hmac.compare_digest), on every request
    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(guard.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert call(port, "GET", "/v1/models", headers=bearer("guess"))[0] == 401
    assert call(port, "GET", "/v1/models", headers=bearer(KEY))[0] == 200
    assert seen == [(b"guess", KEY.encode()), (KEY.encode(), KEY.encode())]


def test_api_key_from_the_environment(monkeypatch, tiny_model):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    cfg = build_config(ServeConfig, {"model": str(tiny_model)}, "t")
    assert cfg.resolved_api_key() is None
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert cfg.resolved_api_key() == "from-env"
    cfg = build_config(ServeConfig, {"model": str(tiny_model), "api_key": "from-config"}, "t")
    assert cfg.resolved_api_key() == "from-config" and "from-config" not in repr(cfg)


def test_body_larger_than_the_limit_is_refused(guarded):
    url, port = guarded
    big = json.dumps({"model": "g", "prompt": "a=1, " * 2000}).encode()
    assert len(big) > 4096
    status, out, hs = call(port, "POST", "/v1/completions", big, bearer(KEY))
    assert status == 413 and out["error"]["code"] == "body_too_large"
    assert "max_body_bytes" in out["error"]["message"] and "4096" in out["error"]["message"]
    assert hs.get("connection") == "close"
    # a chunked body (no Content-Length) is refused as soon as it passes the limit
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/completions", body=iter([big[i:i + 1000] for i in range(0, len(big), 1000)]),
                 headers={"Content-Type": "application/json", **bearer(KEY)}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    conn.close()
    # the openai client gets the 413 too, and the server goes on
    with pytest.raises(openai.APIStatusError) as e:
        openai.OpenAI(base_url=url, api_key=KEY, max_retries=0).completions.create(model="g", prompt="a=1, " * 2000)
    assert e.value.status_code == 413
    status, out, _ = call(port, "POST", "/v1/completions", b'{"model": "g", "prompt": "a=1", "max_tokens": 2}',
                          bearer(KEY))
    assert status == 200 and out["choices"][0]["text"] is not None


def _raw(port: int, data: bytes, wait: float) -> tuple[bytes, float]:
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    t0 = time.monotonic()
    try:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got, time.monotonic() - t0
    finally:
        s.close()


def test_slow_body_gets_408_and_slow_headers_are_cut(guarded):
    _, port = guarded
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n").encode()
    got, dt = _raw(port, head + b'{"model": ', wait=10)
    assert got.startswith(b"HTTP/1.1 408") and 0.9 < dt < 5, (got, dt)
    assert json.loads(got.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    # half a header, then nothing: the connection is closed after read_timeout_s (uvicorn alone never would)
    got, dt = _raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le", wait=10)
    assert got == b"" and 0.9 < dt < 5, (got, dt)
    # and a connection that says nothing at all
    got, dt = _raw(port, b"", wait=10)
    assert got == b"" and dt < 5


def test_a_request_may_run_longer_than_the_read_timeout(guarded):
    """The header deadline is for the headers: a long reply on the connection is not cut."""
    url, _ = guarded
    c = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=60)
    t0 = time.monotonic()
    text, last = "", None
    for ch in c.chat.completions.create(model="g", messages=msgs("a=1"), max_tokens=700, temperature=0, stream=True,
                                        extra_body={"ignore_eos": True}):
        text += ch.choices[0].delta.content or ""
        last = ch.choices[0].finish_reason or last
        time.sleep(0.002)
    assert time.monotonic() - t0 > 1 and last == "length"
