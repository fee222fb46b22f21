"""The generate stage: keyed, append-only traces, skipped when complete, extended when asked for more,
refused into a dir of another teacher; and with the ``openai`` teacher (through the loopback fault proxy
and against ``thinkling serve`` on a tiny model): partial failures retried by the same command, a new
endpoint or max_tokens allowed, legacy keys continued, 30% injected faults losing and duplicating
nothing, raising ``max_tokens`` re-requesting only the truncated, an unreachable endpoint failing
clearly, and a server that reports no usage."""

from __future__ import annotations

import json
import socket

import pytest

from faultproxy import FaultProxy, stub_responder
from helpers import sha
from helpers.engines import teacher
from helpers.generate import gen_cfg, ledger, lines, ocfg
from thinkling.artifacts import read_jsonl, read_manifest
from thinkling.config import build_config
from thinkling.engines import SamplingParams
from thinkling.engines.openai import OpenAIOptions
from thinkling.generate.stage import GenerateConfig, generate, request_key
from thinkling.records import Problem, Trace, latest_traces


def test_generate_with_the_oracle_end_to_end(tmp_path, captured):
    out = tmp_path / "traces"
    cfg = gen_cfg(out, n=15, style="long", samples=2)
    m = generate(cfg, console=captured.console)
    assert m["counts"]["problems"] == 30
    assert m["counts"]["requested"] == m["counts"]["traces"] == m["counts"]["new_this_run"] == 60
    assert m["counts"]["failed"] == 0
    problems = read_jsonl(out / "problems.jsonl", Problem)
    assert len(problems) == 30 and len({p.id for p in problems}) == 30
    assert {p.level for p in problems} == {1, 2} and all(p.split == "train" for p in problems)
    traces = read_jsonl(out / "traces.jsonl", Trace)
    assert len(traces) == 60 and len({t.key for t in traces}) == 60
    gold = {p.id: p.answer for p in problems}
    by_problem: dict[str, set[int]] = {}
    for t in traces:
        # keyed by (teacher, rendered prompt, sampling, sample index)
        assert t.key == request_key("oracle:long", t.prompt, cfg.sampling, t.sample_index)
        assert t.prompt == [{"role": "user", "content": t.question}]
        assert t.answer == gold[t.problem_id] and t.reasoning and t.finish_reason == "stop"
        assert t.usage.completion_tokens > 0 and t.meta["sentences"]
        by_problem.setdefault(t.problem_id, set()).add(t.sample_index)
    assert by_problem == {p.id: {0, 1} for p in problems}
    assert read_jsonl(out / "failed.jsonl") == []
    assert json.loads((out / "config.json").read_text())["teacher"]["style"] == "long"

    # the same config again: skipped by the manifest, nothing rewritten
    before = {f: sha(out / f) for f in ("manifest.json", "traces.jsonl", "problems.jsonl")}
    again = generate(cfg, console=captured.console)
    assert "skipping" in captured.text
    assert again == m and before == {f: sha(out / f) for f in before}

    # more problems into the same dir: finished keys are reused, only the new ones are generated
    bigger = gen_cfg(out, n=20, style="long", samples=2)
    m2 = generate(bigger, console=captured.console)
    assert m2["counts"]["requested"] == m2["counts"]["traces"] == 80
    assert m2["counts"]["new_this_run"] == 20
    keys = [t.key for t in read_jsonl(out / "traces.jsonl", Trace)]
    assert len(keys) == len(set(keys)) == 80


def test_request_keys_depend_on_every_part():
    msgs = [{"role": "user", "content": "q"}]
    s = SamplingParams()
    k = request_key("oracle:long", msgs, s, 0)
    assert k == request_key("oracle:long", [{"content": "q", "role": "user"}], SamplingParams(), 0)
    assert len({k, request_key("oracle:concise", msgs, s, 0), request_key("oracle:long", msgs, s, 1),
                request_key("oracle:long", [{"role": "user", "content": "q2"}], s, 0),
                request_key("oracle:long", msgs, SamplingParams(temperature=0.7), 0)}) == 5


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


def test_generating_with_another_teacher_style_into_the_same_dir_is_refused(tmp_path, captured):
    out = tmp_path / "traces"
    generate(gen_cfg(out, n=5, style="long"), console=captured.console)
    before = sha(out / "traces.jsonl")
    with pytest.raises(ValueError) as e:
        generate(gen_cfg(out, n=5, style="concise"), console=captured.console)
    assert "teacher" in str(e.value) and str(out) in str(e.value)
    with pytest.raises(ValueError):
        generate(gen_cfg(out, n=5, style="long", sampling={"temperature": 0.5}), console=captured.console)
    assert sha(out / "traces.jsonl") == before
    assert read_manifest(out)["config"]["teacher"]["style"] == "long"  # the finished run is left intact


# ----------------------------------------------------------------------------- with the openai teacher


# what the proxy injects -> the ledger's retry cause
CAUSE = {"429": "429", "500": "5xx", "slow": "timeout", "drop": "connection", "truncate": "connection"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
