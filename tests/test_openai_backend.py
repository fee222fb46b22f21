"""The ``openai`` teacher backend and resumable generation at scale.

Unit tests of the pieces (Retry-After, full-jitter backoff, the reasoning split, token buckets, config
errors) and, through the loopback fault proxy (``tests/faultproxy.py``), end-to-end runs against
``thinkling serve`` on a tiny model: chat and completions, the reasoning split, 30% injected faults,
``kill -9`` and resume, raising ``max_tokens``, and bad input (unreachable endpoint, unknown model,
no usage, a prompt longer than the context).

The server runs the ``noisy_model`` fixture (the session's tiny model with louder seeded weights): its
greedy replies mostly stop at end-of-turn and some hit a small token cap, which the max_tokens test needs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path

import pytest

from faultproxy import FaultProxy, stub_responder
from thinkling.artifacts import read_jsonl, read_manifest
from thinkling.config import build_config
from thinkling.engines import Reply, Request, RequestError, SamplingParams, engine_options
from thinkling.engines.openai import OpenAIEngine, OpenAIOptions
from thinkling.engines.openai_wire import TokenBucket, backoff_delay, completion_prompt, parse_retry_after
from thinkling.format import split_served as split_reasoning
from thinkling.generate.stage import GenerateConfig, generate, request_key
from thinkling.records import Problem, latest_traces

MODEL = "tiny"
# what the proxy injects -> the ledger's retry cause
CAUSE = {"429": "429", "500": "5xx", "slow": "timeout", "drop": "connection", "truncate": "connection"}


def teacher(base_url: str, **kw) -> dict:
    return {"backend": "openai", "base_url": base_url, "model": MODEL, "concurrency": 8, "timeout": 30,
            "backoff_base": 0.01, "backoff_cap": 0.05, **kw}


def ocfg(out: Path, base_url: str, n: int = 6, levels=(1, 2), max_tokens: int = 8, chunk_size: int = 16,
         **teacher_kw) -> GenerateConfig:
    return build_config(GenerateConfig, {"out": str(out), "task": {"n": n, "levels": list(levels)},
                                         "teacher": teacher(base_url, **teacher_kw),
                                         "sampling": {"max_tokens": max_tokens}, "chunk_size": chunk_size})


def lines(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            assert line.endswith("\n"), f"{path}:{i} is partial"
            out.append(json.loads(line))
    return out


def ledger(out: Path) -> dict:
    return json.loads((out / "ledger.json").read_text())


def problem(q: str = "What is 2 + 3?") -> Problem:
    return Problem(id="p0", task="arithmetic", split="train", question=q, answer="5")


def req(q: str, key: str = "k", max_tokens: int = 2048) -> Request:
    return Request([{"role": "user", "content": q}], sampling=SamplingParams(max_tokens=max_tokens), problem=problem(q),
                   key=key)


def engine(**kw) -> OpenAIEngine:
    return OpenAIEngine(engine_options(kw))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- pieces


def test_request_key_leaves_out_max_tokens_but_not_the_rest():
    msgs = [{"role": "user", "content": "q"}]
    k = request_key("openai:m", msgs, SamplingParams(max_tokens=16), 0)
    assert k == request_key("openai:m", msgs, SamplingParams(max_tokens=4096), 0)
    assert k != request_key("openai:m", msgs, SamplingParams(max_tokens=16, top_p=0.9), 0)
    url = "http://x/v1"
    assert OpenAIOptions(model="m", base_url=url).engine_id() == "openai:m"
    assert OpenAIOptions(model="m", base_url=url, api="completions").engine_id() == "openai:m:completions"
    # the endpoint, limits and prices are not the teacher's identity; the model and extra body are
    a = OpenAIOptions(model="m", base_url="http://a/v1", concurrency=2, price_prompt_per_mtok=3)
    b = OpenAIOptions(model="m", base_url="http://b/v1", rpm=60, max_retries=1)
    assert a.identity() == b.identity()
    assert a.identity() != OpenAIOptions(model="m", base_url=url, extra_body={"top_k": 5}).identity()


def test_retry_after_in_seconds_or_http_date():
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("999999") == 900.0  # clipped: a run never stalls silently for a day
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 7, usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_is_full_jitter_under_the_cap():
    rng = random.Random(0)
    for k in range(12):
        d = [backoff_delay(k, 0.5, 8.0, rng) for _ in range(200)]
        hi = min(8.0, 0.5 * 2 ** k)
        assert all(0 <= x <= hi for x in d)
        assert max(d) > 0.7 * hi and min(d) < 0.3 * hi  # spread over the whole range, not a fixed delay


def test_reasoning_split_from_a_field_or_think_tags():
    assert split_reasoning("<think>\nplan\n</think>\n42", None) == ("plan", "42", True)
    assert split_reasoning("plan</think>42", None) == ("plan", "42", True)  # template opened <think>
    assert split_reasoning("<think>plan, cut at the cap", None) == ("plan, cut at the cap", "", False)
    assert split_reasoning("just 42", None) == ("", "just 42", True)
    assert split_reasoning("42", "plan") == ("plan", "42", True)
    assert split_reasoning(None, "plan") == ("plan", "", True)
    assert completion_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}]) \
        == "Be brief.\n\n2+3?"


def test_token_bucket_takes_and_gives_back():
    import asyncio

    async def run():
        b = TokenBucket(600)  # 10 per second, starts full
        b.lock = asyncio.Lock()
        await b.take(600)
        assert b.level < 1
        b.correct(-300)  # the reply used 300 tokens fewer than reserved: they are given back
        t0 = time.monotonic()
        await b.take(290)
        assert time.monotonic() - t0 < 0.5
        b.correct(+1000)  # more than reserved: a debt the next requests wait out
        assert b.level < 0

    asyncio.run(run())


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
        b.progress = seen.append
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


def test_stage_ledger_accumulates_runs_with_cost(tmp_path, captured):
    """The ledger keeps one entry per run and totals; cost follows the prices and the reported usage."""
    out = tmp_path / "g"
    with FaultProxy(responder=stub_responder()) as px:
        prices = {"price_prompt_per_mtok": 2.0, "price_completion_per_mtok": 10.0}
        m1 = generate(ocfg(out, px.base_url, n=3, max_tokens=64, **prices), console=captured.console)
        m2 = generate(ocfg(out, px.base_url, n=5, max_tokens=64, **prices), console=captured.console)
    traces = lines(out / "traces.jsonl")
    assert m1["counts"]["traces"] == 6 and m2["counts"]["traces"] == 10 and m2["counts"]["new_this_run"] == 4
    assert len(traces) == 10 and len({t["key"] for t in traces}) == 10
    assert all(t["answer"] == "42" and t["meta"]["max_tokens"] == 64 and t["meta"]["attempts"] == 1 for t in traces)
    led = ledger(out)
    assert [r["status"] for r in led["runs"]] == ["finished", "finished"]
    assert [r["requests"] for r in led["runs"]] == [6, 4] and led["totals"]["requests"] == 10
    p = sum(t["usage"]["prompt_tokens"] for t in traces)
    c = sum(t["usage"]["completion_tokens"] for t in traces)
    assert led["totals"]["prompt_tokens"] == p and led["totals"]["completion_tokens"] == c > 0
    assert led["totals"]["cost"] == pytest.approx((2 * p + 10 * c) / 1e6)
    assert "tok" in captured.text and "$" in captured.text


def test_partial_failures_are_recorded_and_the_same_command_retries_them(tmp_path, captured):
    ok = stub_responder()
    calls = {"n": 0}

    async def first_three_rejected(path, request):
        calls["n"] += 1
        if calls["n"] <= 3:
            return 400, {"error": {"message": f"rejected request {calls['n']}", "type": "invalid_request_error"}}
        return await ok(path, request)

    out = tmp_path / "g"
    with FaultProxy(responder=first_three_rejected) as px:
        cfg = ocfg(out, px.base_url, n=4, max_tokens=64, concurrency=1)
        m1 = generate(cfg, console=captured.console)
        failed = read_jsonl(out / "failed.jsonl")
        assert m1["counts"]["failed"] == 3 and m1["counts"]["traces"] == 5 and len(failed) == 3
        assert all("HTTP 400" in f["error"] and "rejected request" in f["error"] and f["attempts"] == 1
                   for f in failed)
        m2 = generate(cfg, console=captured.console)  # same command: the failed ones are asked again
        assert "retrying them" in captured.text
        assert len(px.posts()) == 8 + 3
    assert m2["counts"]["failed"] == 0 and m2["counts"]["new_this_run"] == 3 and m2["counts"]["traces"] == 8
    assert {t["key"] for t in lines(out / "traces.jsonl")[5:]} == {f["key"] for f in failed}
    assert read_jsonl(out / "failed.jsonl") == []
    assert ledger(out)["totals"]["failures_by_cause"] == {"4xx": 3}


def test_same_dir_allows_a_new_endpoint_and_max_tokens_but_not_another_model(tmp_path, captured):
    out = tmp_path / "g"
    with FaultProxy(responder=stub_responder()) as a, FaultProxy(responder=stub_responder()) as b:
        generate(ocfg(out, a.base_url, n=2, max_tokens=64), console=captured.console)
        generate(ocfg(out, b.base_url, n=2, max_tokens=128, concurrency=2, rpm=600), console=captured.console)
        assert len(b.posts()) == 0  # every key was done, none truncated
        with pytest.raises(ValueError, match="teacher.model: 'tiny' -> 'other'") as e:
            generate(build_config(GenerateConfig, {**ocfg(out, b.base_url, n=2).model_dump(),
                                                   "teacher": teacher(b.base_url, model="other")}),
                     console=captured.console)
        assert str(out) in str(e.value)
        with pytest.raises(ValueError, match="sampling.temperature"):
            generate(build_config(GenerateConfig, {**ocfg(out, b.base_url, n=2).model_dump(),
                                                   "sampling": {"temperature": 0.7}}), console=captured.console)
    assert len(lines(out / "traces.jsonl")) == 4


def test_a_dir_with_the_legacy_keys_is_continued_not_regenerated(tmp_path, captured):
    """Traces written when max_tokens was part of the key: continued with those keys and that cap."""
    from thinkling.generate.stage import legacy_request_key

    out = tmp_path / "g"
    cfg = build_config(GenerateConfig, {"out": str(out), "task": {"n": 3, "levels": [1]}, "teacher": {"style": "concise"}})
    generate(cfg, console=captured.console)
    old = []
    for t in lines(out / "traces.jsonl"):  # what an older thinkling wrote
        t["key"] = legacy_request_key("oracle:concise", t["prompt"], cfg.sampling, t["sample_index"])
        t["meta"].pop("max_tokens")
        old.append(json.dumps(t) + "\n")
    (out / "traces.jsonl").write_text("".join(old))
    (out / "manifest.json").unlink()
    m = generate(build_config(GenerateConfig, {**cfg.model_dump(), "task": {"n": 4, "levels": [1]}}),
                 console=captured.console)
    assert m["counts"]["traces"] == 4 and m["counts"]["new_this_run"] == 1
    assert (out / "traces.jsonl").read_text().startswith("".join(old))
    with pytest.raises(ValueError, match="keep sampling.max_tokens=2048"):
        generate(build_config(GenerateConfig, {**cfg.model_dump(), "sampling": {"max_tokens": 4096}}),
                 console=captured.console)


# ----------------------------------------------------------------------------- against thinkling serve


@pytest.fixture(scope="module")
def served(noisy_model):
    from thinkling.serve.server import serve_in_thread

    url, stop = serve_in_thread(str(noisy_model), name=MODEL, threads=1)
    yield url
    stop()


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
def test_thirty_percent_faults_lose_and_duplicate_nothing(served, tmp_path, captured):
    out = tmp_path / "g"
    # every kind of fault once at the start, then 30% of all requests (retries included), seeded
    with FaultProxy(served, fault_rate=0.3, seed=3, retry_after="0.2", slow_seconds=2.5,
                    script=["429", "500", "slow", "drop", "truncate"]) as px:
        cfg = ocfg(out, px.base_url, n=20, levels=(1, 2, 3), timeout=2.0, max_retries=8)
        m = generate(cfg, console=captured.console)
    injected = px.injected()
    assert m["counts"]["requested"] >= 50 and sum(injected.values()) >= 15 and all(injected.values()), injected
    traces = lines(out / "traces.jsonl")
    failed = read_jsonl(out / "failed.jsonl")
    keys = [t["key"] for t in traces]
    assert len(keys) == len(set(keys)), "duplicated traces"
    assert len(keys) + len(failed) == m["counts"]["requested"] and not set(keys) & {f["key"] for f in failed}
    run = ledger(out)["runs"][-1]
    for cause in set(CAUSE.values()):  # every injected fault was seen and retried (or ended a request)
        want = sum(n for fault, n in injected.items() if CAUSE[fault] == cause)
        assert run["retries"][cause] + run["failures_by_cause"].get(cause, 0) == want, (cause, injected, run)
    # each success was served once (a truncated reply was served but never reached the client)
    assert px.counts["forwarded"] - injected["truncate"] == len(keys)
    assert run["attempts"] == px.counts["requests"]
    assert max(t["meta"]["attempts"] for t in traces) >= 2


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(served, tmp_path):
    out = tmp_path / "g"
    traces = out / "traces.jsonl"
    with FaultProxy(served) as px:
        args = [sys.executable, "-m", "thinkling.cli", "generate", f"out={out}", "task.n=150", "task.levels=[1,2]",
                "teacher.backend=openai", f"teacher.base_url={px.base_url}", f"teacher.model={MODEL}",
                "teacher.concurrency=4", "sampling.max_tokens=8", "chunk_size=8"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
        with open(tmp_path / "first.log", "w") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                if traces.exists() and traces.stat().st_size > 0:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
        assert not (out / "manifest.json").exists()
        first = traces.read_bytes()
        first = first[: first.rfind(b"\n") + 1]  # complete lines; a partial one is cut on resume
        posts_first = len(px.posts())
        second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
        posts = len(px.posts())
    final = lines(traces)
    requested = len(read_jsonl(out / "problems.jsonl"))
    keys = [t["key"] for t in final]
    assert len(keys) == len(set(keys)) == requested, "lost or duplicated after resume"
    assert traces.read_bytes().startswith(first)  # the first run's traces kept as they were
    wanted = {request_key(f"openai:{MODEL}", [{"role": "user", "content": p["question"]}], SamplingParams(), 0)
              for p in read_jsonl(out / "problems.jsonl")}
    assert set(keys) == wanted
    n_first = first.count(b"\n")
    assert 0 < n_first < requested
    # only what was in flight or not yet flushed at the kill (concurrency + chunk_size) was asked twice
    assert posts - requested <= 4 + 8 and posts - posts_first == requested - n_first
    led = ledger(out)
    assert [r["status"] for r in led["runs"]] == ["interrupted", "finished"]
    assert led["runs"][1]["ok"] == requested - n_first
    assert read_manifest(out)["counts"]["traces"] == requested


@pytest.mark.slow
def test_raising_max_tokens_rerequests_only_the_truncated(served, tmp_path, captured):
    out = tmp_path / "g"
    with FaultProxy(served) as px:
        m1 = generate(ocfg(out, px.base_url, n=30, max_tokens=4), console=captured.console)
        first = lines(out / "traces.jsonl")
        truncated = {t["key"] for t in first if t["finish_reason"] == "length"}
        n = m1["counts"]["requested"]
        assert 0 < len(truncated) < n and len(first) == n
        before = len(px.posts())
        m2 = generate(ocfg(out, px.base_url, n=30, max_tokens=32), console=captured.console)
        again = px.posts()[before:]
        assert len(again) == len(truncated) == m2["counts"]["rerequested_length"]
        assert all(e["request"]["max_tokens"] == 32 for e in again)
        # the same config again: skipped; a lower cap: nothing to re-request
        generate(ocfg(out, px.base_url, n=30, max_tokens=32), console=captured.console)
        m4 = generate(ocfg(out, px.base_url, n=30, max_tokens=16), console=captured.console)
        assert len(px.posts()) == before + len(truncated) and m4["counts"]["new_this_run"] == 0
    allrecs = lines(out / "traces.jsonl")
    assert len(allrecs) == n + len(truncated)  # append-only: the old versions are still there
    assert [t["key"] for t in allrecs[n:]] and {t["key"] for t in allrecs[n:]} == truncated
    latest = latest_traces(out / "traces.jsonl")
    assert len(latest) == n == m2["counts"]["traces"] and m2["counts"]["superseded_records"] == len(truncated)
    for k, t in latest.items():
        assert t.meta["max_tokens"] == (32 if k in truncated else 4)
        if k not in truncated:
            assert t.finish_reason == "stop"
    longer = [latest[k] for k in truncated]
    assert sum(t.usage.completion_tokens for t in longer) > 4 * len(longer)


@pytest.mark.slow
def test_unreachable_endpoint_fails_clearly_and_a_later_run_completes(served, tmp_path, captured):
    out = tmp_path / "g"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RuntimeError) as e:
        generate(ocfg(out, dead, n=3, max_retries=2), console=captured.console)
    msg = str(e.value)
    assert "all 6 requests" in msg and "connection: 6" in msg and "failed.jsonl" in msg and dead in msg
    failed = read_jsonl(out / "failed.jsonl")
    assert len(failed) == 6 and all("gave up after 3 attempts" in f["error"] and f["attempts"] == 3 for f in failed)
    assert not (out / "manifest.json").exists()
    assert ledger(out)["runs"][0]["retries"]["connection"] == 12
    m = generate(ocfg(out, served, n=3), console=captured.console)  # the endpoint is up now
    assert m["counts"]["traces"] == 6 and m["counts"]["failed"] == 0
    assert {t["key"] for t in lines(out / "traces.jsonl")} == {f["key"] for f in failed}
    assert read_jsonl(out / "failed.jsonl") == []
    led = ledger(out)
    assert [r["status"] for r in led["runs"]] == ["failed", "finished"] and led["totals"]["failed"] == 6


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
def test_a_server_without_usage_is_counted_as_zero_and_marked(served, tmp_path, captured):
    out = tmp_path / "g"
    with FaultProxy(served, strip_usage=True) as px:
        m = generate(ocfg(out, px.base_url, n=3, price_completion_per_mtok=5.0), console=captured.console)
    traces = lines(out / "traces.jsonl")
    assert m["counts"]["traces"] == len(traces) == 6
    assert all(t["usage"] == {"prompt_tokens": 0, "completion_tokens": 0} and t["meta"]["usage_missing"]
               for t in traces)
    run = ledger(out)["runs"][0]
    assert run["usage_missing"] == 6 and run["completion_tokens"] == 0 and run["cost"] == 0
