"""The ``openai`` engine: config errors, an API key from the environment, Retry-After honoured, replies
streamed back in batches (through the loopback fault proxy, ``tests/faultproxy.py``), and against
``thinkling serve`` on a tiny model: chat and completions, the reasoning split over HTTP, a bad model or
prompt failing at once with the server's reason, and log-probs equal to the hf engine's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from faultproxy import FaultProxy, stub_responder
from helpers.engines import QS, ask, engine, req, teacher
from thinkling.engines import Reply, Request, RequestError, SamplingParams, build_engine, engine_options


def test_config_errors_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="missing required key 'teacher.base_url'"):
        engine(backend="openai", model="m")
    with pytest.raises(ValueError, match="missing required key 'teacher.model'"):
        engine(backend="openai", base_url="http://127.0.0.1:1/v1")
    monkeypatch.delenv("THINKLING_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="THINKLING_TEST_KEY.*not set"):
        engine(backend="openai", model="m", base_url="http://x/v1", api_key_env="THINKLING_TEST_KEY")


def test_api_key_from_env_and_retry_after_honoured(monkeypatch):
    """A 429 waits what Retry-After asks (not the tiny backoff), a 500 is retried with backoff."""
    monkeypatch.setenv("THINKLING_TEST_KEY", "sk-test-123")
    with FaultProxy(responder=stub_responder(), script=["429", "500", "ok"], retry_after="1") as px:
        b = engine(**teacher(px.base_url, api_key_env="THINKLING_TEST_KEY", concurrency=1))
        [rep] = b.generate([req("2 + 3?", max_tokens=64)])
    assert isinstance(rep, Reply) and rep.answer == "42" and rep.reasoning == "Add the numbers step by step."
    assert rep.meta["attempts"] == 3 and b.stats.retries == {"429": 1, "5xx": 1, "timeout": 0, "connection": 0}
    t = [e["t"] for e in px.log]
    assert t[1] - t[0] >= 0.95  # Retry-After: 1
    assert all(e["headers"]["authorization"] == "Bearer sk-test-123" for e in px.log)


def test_stream_hands_back_batches_as_replies_come():
    with FaultProxy(responder=stub_responder(latency=0.05)) as px:
        b = engine(**teacher(px.base_url, concurrency=3))
        seen = []
        b.progress = lambda _req, rep: seen.append(rep)
        reqs = [req(f"{i} + 1?", key=f"k{i}", max_tokens=64) for i in range(7)]
        batches = list(b.stream(reqs, batch=2))
        assert all(1 <= len(x) <= 2 for x in batches) and len(batches) >= 4
        assert sorted(r.key for x in batches for r, _ in x) == sorted(r.key for r in reqs)
        assert len(seen) == 7 and all(isinstance(rep, Reply) for x in batches for _, rep in x)
        # closing early cancels what is in flight and does not hang
        it = b.stream(reqs, batch=1)
        next(it)
        it.close()
        assert len(px.posts()) <= 7 + 3 + 3


# ----------------------------------------------------------------------------- against thinkling serve


@pytest.mark.slow
def test_chat_and_completions_against_serve(served):
    reqs = [req(f"What is {i} + 3?", key=f"k{i}") for i in range(6)]
    with FaultProxy(served) as px:
        got = {}
        for api in ("chat", "completions"):
            for stream in (False, True):
                b = engine(**teacher(px.base_url, api=api, stream=stream))
                got[api, stream] = b.generate([replace(x, sampling=SamplingParams(max_tokens=12)) for x in reqs])
    for (api, stream), replies in got.items():
        assert all(isinstance(r, Reply) for r in replies), replies
        assert all(r.finish_reason in ("stop", "length") and r.prompt_tokens > 0 and r.completion_tokens > 0
                   for r in replies)
        assert not any(r.meta.get("usage_missing") for r in replies)
        # greedy: streamed == not streamed
        assert [(r.answer, r.finish_reason, r.completion_tokens) for r in replies] == \
            [(r.answer, r.finish_reason, r.completion_tokens) for r in got[api, False]]
    paths = [e["path"] for e in px.posts()]
    assert paths.count("/v1/chat/completions") == paths.count("/v1/completions") == 12
    sent = [e["request"] for e in px.posts() if e["path"] == "/v1/completions"]
    assert {s["prompt"] for s in sent} == {r.messages[0]["content"] for r in reqs}  # the text, no template
    assert all(s["max_tokens"] == 12 for s in sent)


@pytest.mark.slow
def test_reasoning_split_over_http(served):
    """<think> tags in content or text, a reasoning_content field, and streamed reasoning deltas."""

    def tags(path, request, resp):
        for c in resp["choices"]:
            key = ("message", "content") if "message" in c else (None, "text")
            node = c[key[0]] if key[0] else c
            node[key[1]] = "<think>\nplan it\n</think>\nFINAL"
        return resp

    def field(path, request, resp):
        for c in resp["choices"]:
            c["message"]["reasoning_content"] = "plan it"
            c["message"]["content"] = "FINAL"
        return resp

    def deltas(path, request, chunk):  # a streaming server that sends all text as reasoning
        for c in chunk.get("choices", []):
            d = c.get("delta") or {}
            if d.get("content"):
                d["reasoning_content"] = d.pop("content")
        return chunk

    r = [req("What is 1 + 1?", max_tokens=8)]
    for transform, api, stream in ((tags, "chat", False), (tags, "completions", False), (field, "chat", False)):
        with FaultProxy(served, transform=transform) as px:
            [rep] = engine(**teacher(px.base_url, api=api, stream=stream)).generate(r)
        assert (rep.reasoning, rep.answer) == ("plan it", "FINAL"), (transform.__name__, api)
        assert rep.meta.get("reasoning_field", False) == (transform is field)
    plain = engine(**teacher(served)).generate(r)[0]
    with FaultProxy(served, transform=deltas) as px:
        [rep] = engine(**teacher(px.base_url, stream=True)).generate(r)
    assert rep.reasoning == plain.answer and rep.answer == "" and rep.meta["reasoning_field"]


@pytest.mark.slow
def test_unknown_model_and_too_long_prompt_fail_at_once_with_the_servers_reason(served):
    with FaultProxy(served) as px:
        [bad] = engine(**teacher(px.base_url, model="no-such-model")).generate([req("1 + 1?", max_tokens=8)])
        assert len(px.posts()) == 1  # a 404 is not retried
        long_q = "1 + 2 + 3 " * 400
        b = engine(**teacher(px.base_url))
        too_long, ok = b.generate([req(long_q, "a", max_tokens=8), req("1 + 1?", "b", max_tokens=8)])
    assert isinstance(bad, RequestError) and bad.status == 404 and bad.attempts == 1 and bad.cause == "4xx"
    assert "no-such-model" in str(bad) and "does not exist" in str(bad) and "not retried" in str(bad)
    assert isinstance(too_long, RequestError) and too_long.status == 400 and too_long.attempts == 1
    assert "maximum context length" in str(too_long)
    assert isinstance(ok, Reply)


@pytest.mark.slow
def test_logprobs_over_http_equal_the_hf_engines(noisy_model, hf):
    """The openai engine against ``thinkling serve`` (its token-by-token loop) gives the hf engine's
    greedy replies and log-probs."""
    from thinkling.serve.server import serve_in_thread

    url, stop = serve_in_thread(str(noisy_model), name="tiny")
    try:
        remote = build_engine(engine_options({"backend": "openai", "base_url": url, "model": "tiny",
                                              "api": "completions", "timeout": 30}))
        tok = hf.tokenizer
        local = hf.generate([Request(prompt=q, sampling=SamplingParams(max_tokens=10), logprobs=2) for q in QS])
        served = remote.generate([Request(prompt=q, sampling=SamplingParams(max_tokens=10), logprobs=2) for q in QS])
        chat_local = hf.generate([ask(q, 10, logprobs=2) for q in QS])
        chat = build_engine(engine_options({"backend": "openai", "base_url": url, "model": "tiny", "timeout": 30}))
        chat_served = chat.generate([ask(q, 10, logprobs=2) for q in QS])
    finally:
        stop()
    for a, b in [*zip(local, served), *zip(chat_local, chat_served)]:
        assert isinstance(b, Reply), b
        assert b.text == a.text and b.completion_tokens == a.completion_tokens
        assert [e.token for e in b.logprobs] == [tok.decode([e.token]) for e in a.logprobs]
        assert all(abs(x.logprob - y.logprob) < 1e-4 for x, y in zip(a.logprobs, b.logprobs))


# ----------------------------------------------------------------------------- secrets


def test_scrub_removes_what_looks_like_a_credential():
    from thinkling.engines.openai_wire import REDACTED, scrub

    key = "sk-test-0123456789abcdef"
    cases = [f"Incorrect API key provided: {key}.", "invalid header Authorization: Bearer abc.def-ghi_123",
             "{'authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.x'}", "api_key=hunter2hunter2&x=1",
             "token: ghp_abcdefgh12345678", "upstream http://bob:s3cret@10.0.0.1/v1 refused", "my-own-key-xyz leaked"]
    for text in cases:
        out = scrub(text, ("my-own-key-xyz",))
        assert REDACTED in out, text
        for secret in (key, "abc.def-ghi_123", "eyJhbGciOiJIUzI1NiJ9.x", "hunter2hunter2", "ghp_abcdefgh12345678",
                       "s3cret", "my-own-key-xyz"):
            assert secret not in out, (text, out)
    assert scrub("HTTP 400: prompt of 900 tokens is too long") == "HTTP 400: prompt of 900 tokens is too long"


def test_a_server_echoing_the_key_does_not_get_it_stored_or_printed(monkeypatch, tmp_path, captured):
    """A 401 whose message repeats the Authorization header (as real servers do): the key is neither in
    failed.jsonl nor on the console."""
    from thinkling.config import build_config
    from thinkling.generate.stage import GenerateConfig, generate

    key = "sk-live-ABCDEFGH12345678"
    monkeypatch.setenv("THINKLING_TEST_KEY", key)

    async def echo_401(path, request):
        return 401, {"error": {"message": f"Incorrect API key provided: {key}; header Authorization: Bearer {key}",
                               "type": "invalid_request_error"}}

    with FaultProxy(responder=echo_401) as px:
        cfg = build_config(GenerateConfig, {"out": str(tmp_path / "g"), "task": {"n": 2, "levels": [1]},
                                            "teacher": teacher(px.base_url, api_key_env="THINKLING_TEST_KEY")})
        with pytest.raises(RuntimeError) as e:
            generate(cfg, console=captured.console)
    assert all(x["headers"]["authorization"] == f"Bearer {key}" for x in px.log)  # it was sent ...
    stored = (tmp_path / "g" / "failed.jsonl").read_text()
    assert "401" in stored and key not in stored                                # ... and never written
    assert key not in captured.text and key not in str(e.value)
    assert key not in (tmp_path / "g" / "config.json").read_text()


def test_credentials_in_a_base_url_are_refused():
    from thinkling.config import ConfigError

    with pytest.raises(ConfigError, match="base_url holds a user name or password.*api_key_env"):
        engine_options({"backend": "openai", "model": "m", "base_url": "http://bob:s3cret@127.0.0.1:8000/v1"})
    assert engine_options({"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:8000/v1"})
