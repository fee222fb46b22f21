"""The request batcher of ``thinkling serve``: concurrent requests are decoded together (the same replies,
fewer batches), and a full queue answers 503 at once and frees its slot when a client hangs up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import openai
import pytest

from helpers.serve import QUESTIONS, client, msgs, stats
from thinkling.models.generation import generate_batched
from thinkling.serve.server import serve_in_thread


def test_concurrent_requests_are_batched(noisy):
    url, model, tok = noisy
    c = client(url)
    want = [x.text for x in generate_batched(model, tok, [msgs(q) for q in QUESTIONS], max_new_tokens=16)]
    before = stats(url)
    got: list[str | None] = [None] * len(QUESTIONS)

    def one(i):
        got[i] = c.chat.completions.create(model="noisy", messages=msgs(QUESTIONS[i]), temperature=0,
                                           max_tokens=16).choices[0].message.content

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = stats(url)
    assert got == want
    assert after["requests"] - before["requests"] == 20
    assert after["batches"] - before["batches"] < 20, after
    assert after["largest_batch"] > 1 and after["in_flight"] == 0


def test_full_queue_answers_503_at_once(noisy_model: Path):
    url, stop = serve_in_thread(str(noisy_model), name="q", max_queued_requests=1)
    try:
        c = client(url)
        long_run = c.chat.completions.create(model="q", messages=msgs("a=1"), max_tokens=1000, temperature=0,
                                             stream=True, extra_body={"ignore_eos": True})
        next(iter(long_run))                     # the first request is now running
        t0 = time.monotonic()
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model="q", messages=msgs("a=2"), max_tokens=2)
        assert time.monotonic() - t0 < 2, "a full queue answers at once"
        assert e.value.status_code == 503 and e.value.body["code"] == "server_overloaded"
        assert e.value.response.headers.get("retry-after") == "1"
        long_run.close()                         # a client that hangs up frees its slot
        deadline = time.monotonic() + 10
        while stats(url)["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.chat.completions.create(model="q", messages=msgs("a=2"), max_tokens=2)
        assert r.choices[0].message.content is not None
        s = stats(url)
        assert s["rejected"] == 1 and s["tokens"] < 900, "the hung-up request stopped generating"
    finally:
        stop()
