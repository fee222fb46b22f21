"""Request handling of ``thinkling serve`` (serve/api.py) under its limits, on a real server on loopback: the cost
of a request bounded before it is accepted, a large request decoded in slices of ``max_batch_size`` (the
same replies as small requests), no path in ``/v1/models``, a non-streaming client that hangs up cancels
its rows."""

from __future__ import annotations

import json
import platform
import socket
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from helpers.serve import client, msgs, post, stats
from thinkling.serve import api, guard
from thinkling.serve.server import serve_in_thread


@pytest.fixture(scope="module")
def limited(noisy_model: Path):
    url, stop = serve_in_thread(str(noisy_model), name="lim", max_batch_size=4, max_queued_rows=16,
                                max_request_tokens=600)
    yield url
    stop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _prompts(k: int, length: int) -> list[list[int]]:
    return [[5 + (i * 7 + j) % 300 for j in range(length)] for i in range(k)]


def test_a_too_costly_request_is_refused_at_once(limited):
    url = limited
    before = stats(url)
    t0 = time.monotonic()
    # 10 prompts x (30 + 40) tokens = 700 > max_request_tokens = 600
    status, out = post(url, "/completions", {"model": "lim", "prompt": _prompts(10, 30), "max_tokens": 40})
    assert status == 400 and out["error"]["code"] == "request_too_large", out
    msg = out["error"]["message"]
    assert "700" in msg and "600" in msg and "max_request_tokens" in msg, msg
    # n counts: 1 prompt x n=8 x (30 + 40) = 560 is allowed, n=9 (630) is not
    status, out = post(url, "/completions", {"model": "lim", "prompt": _prompts(1, 30), "max_tokens": 40, "n": 9})
    assert status == 400 and out["error"]["code"] == "request_too_large" and "630" in out["error"]["message"]
    # more rows than the queue takes at once: 17 > max_queued_rows = 16, whatever their length
    status, out = post(url, "/completions", {"model": "lim", "prompt": _prompts(17, 1), "max_tokens": 1})
    assert status == 400 and out["error"]["code"] == "request_too_large"
    assert "max_queued_rows" in out["error"]["message"]
    # text prompts are bounded before they are tokenized: characters / the longest token's length
    status, out = post(url, "/completions", {"model": "lim", "prompt": ["a=1, b=a+2. " * 400] * 3, "max_tokens": 1})
    assert status == 400 and out["error"]["code"] == "request_too_large" and "at least" in out["error"]["message"]
    # a chat prompt far beyond the context is refused from its length, without tokenizing its megabyte
    status, out = post(url, "/chat/completions", {"model": "lim", "messages": msgs("a=1, b=a+2. " * 80_000)})
    assert status == 400 and out["error"]["code"] == "context_length_exceeded" and "at least" in out["error"]["message"]
    assert time.monotonic() - t0 < 5
    after = stats(url)
    assert after["requests"] == before["requests"] and after["batches"] == before["batches"], "none was accepted"
    # the openai client sees a BadRequestError naming the key
    with pytest.raises(openai.BadRequestError, match="max_request_tokens"):
        client(url).completions.create(model="lim", prompt=_prompts(10, 30), max_tokens=40)


def test_a_large_request_is_decoded_in_slices_with_the_same_replies(limited):
    url = limited
    c = client(url)
    prompts = _prompts(10, 12)        # 10 rows x (12 + 8) = 200 tokens: allowed, but more rows than a batch
    alone = [c.completions.create(model="lim", prompt=p, temperature=0, max_tokens=8).choices[0].text for p in prompts]
    before = stats(url)
    r = c.completions.create(model="lim", prompt=prompts, temperature=0, max_tokens=8)
    after = stats(url)
    assert [x.text for x in r.choices] == alone
    assert [x.index for x in r.choices] == list(range(10))
    assert after["batches"] - before["batches"] == 3, "slices of 4, 4 and 2"
    assert after["sequences"] - before["sequences"] == 10 and after["largest_batch"] == 4
    assert after["in_flight"] == 0 and after["rows_in_flight"] == 0
    # n x prompts: 3 prompts x n=2 = 6 rows, streamed, each choice's pieces add up to the plain reply
    kw = dict(model="lim", prompt=prompts[:3], temperature=0, max_tokens=8, n=2)
    full = c.completions.create(**kw)
    parts: dict[int, str] = {}
    for ch in c.completions.create(stream=True, **kw):
        for x in ch.choices:
            parts[x.index] = parts.get(x.index, "") + x.text
    assert parts == {x.index: x.text for x in full.choices}
    assert [x.text for x in full.choices] == [t for t in alone[:3] for _ in range(2)]


def test_rows_in_flight_are_bounded(limited):
    url = limited
    c = client(url)
    run = c.completions.create(model="lim", prompt=_prompts(3, 4), n=4, max_tokens=40, temperature=0, stream=True,
                               extra_body={"ignore_eos": True})          # 12 of the 16 rows, in slices of 4
    it = iter(run)
    next(it)
    with pytest.raises(openai.APIStatusError) as e:
        c.completions.create(model="lim", prompt=_prompts(5, 4), max_tokens=2)   # 5 more rows: 17 > 16
    assert e.value.status_code == 503 and e.value.body["code"] == "server_overloaded"
    assert "max_queued_rows" in e.value.body["message"]
    run.close()
    deadline = time.monotonic() + 10
    while stats(url)["rows_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.completions.create(model="lim", prompt=_prompts(5, 4), max_tokens=2).choices


def test_models_show_no_path(limited, noisy_model: Path):
    with urllib.request.urlopen(limited + "/models") as r:
        out = json.loads(r.read())
    assert [(m["id"], m["root"]) for m in out["data"]] == [("lim", "lim")]
    text = json.dumps(out)
    assert str(noisy_model) not in text and str(noisy_model.parent) not in text and "/" not in text


def test_a_client_that_hangs_up_cancels_its_non_streamed_request(limited):
    url = limited
    body = json.dumps({"model": "lim", "messages": msgs("a=1"), "max_tokens": 500, "temperature": 0,
                       "ignore_eos": True}).encode()
    before = stats(url)
    s = socket.create_connection(("127.0.0.1", _port(url)))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    deadline = time.monotonic() + 10
    while not stats(url)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)                     # decoding (the counters move when its batch ends)
    assert stats(url)["in_flight"] == 1
    s.close()
    t0 = time.monotonic()
    while stats(url)["in_flight"] and time.monotonic() < t0 + 5:
        time.sleep(0.01)
    after = stats(url)
    assert after["in_flight"] == 0 and time.monotonic() - t0 < 5
    assert after["tokens"] - before["tokens"] < 400 and after["cancelled"] == before["cancelled"] + 1
    # the next request does not wait for the abandoned one
    t0 = time.monotonic()
    r = client(url).chat.completions.create(model="lim", messages=msgs("a=2"), max_tokens=2)
    assert r.choices[0].message.content is not None and time.monotonic() - t0 < 2


def test_a_client_that_hangs_up_while_queued_never_runs(limited):
    """Waiting behind a full batch, its rows leave the queue when it goes."""
    url = limited
    c = client(url)
    run = c.completions.create(model="lim", prompt=_prompts(1, 4), n=4, max_tokens=120, temperature=0, stream=True,
                               extra_body={"ignore_eos": True})          # one full batch running
    it = iter(run)
    next(it)
    before = stats(url)
    body = json.dumps({"model": "lim", "prompt": _prompts(1, 4), "max_tokens": 100, "ignore_eos": True}).encode()
    s = socket.create_connection(("127.0.0.1", _port(url)))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    deadline = time.monotonic() + 5
    while stats(url)["in_flight"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    for _ in it:
        pass
    deadline = time.monotonic() + 5
    while stats(url)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    after = stats(url)
    assert after["in_flight"] == 0 and after["sequences"] - before["sequences"] == 0, "its row was never decoded"
    assert after["cancelled"] == before["cancelled"] + 1


def test_concurrent_small_requests_still_share_batches(limited):
    url = limited
    c = client(url)
    before = stats(url)
    threads = [threading.Thread(target=lambda i=i: c.completions.create(model="lim", prompt=_prompts(1, 5 + i)[0],
                                                                         max_tokens=4)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = stats(url)
    assert after["requests"] - before["requests"] == 8 and after["batches"] - before["batches"] < 8


def test_memory_is_given_back_after_a_large_request(limited, monkeypatch):
    """Once a large request is answered, glibc's arenas are trimmed (guard.release_memory: malloc_trim)."""
    calls = []
    monkeypatch.setattr(guard, "release_memory", lambda: calls.append(time.monotonic()))
    c = client(limited)
    c.completions.create(model="lim", prompt=_prompts(2, 5), max_tokens=4)
    time.sleep(0.2)
    assert calls == [], "a small request is not worth a trim"
    monkeypatch.setattr(api, "TRIM_AFTER_TOKENS", 50)
    c.completions.create(model="lim", prompt=_prompts(4, 10), max_tokens=4)      # 4 x (10 + 4) = 56 tokens
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 1
    if platform.libc_ver()[0] == "glibc":
        assert guard._malloc_trim is not None, "glibc's malloc_trim is found"
