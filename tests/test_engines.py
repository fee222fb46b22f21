"""The inference layer: the registry and its options, the programmatic engines, the hf engine's requests
(raw prompts, started replies, adapters, context, seeds, log-probs), log-probs over HTTP, the call log,
and a new backend plugged in as one module."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from typing import Literal

import pytest

from thinkling.config import ConfigError, build_config, describe_fields
from thinkling.engines import (
    ENGINES, Engine, EngineOptions, Reply, Request, SamplingParams, build_engine, engine_names, engine_options,
    register_engine,
)
from thinkling.engines.log import LoggedEngine
from thinkling.format import format_assistant
from thinkling.generate.stage import GenerateConfig, generate
from thinkling.models.generation import generate_ids, token_logprobs
from thinkling.models.render import render_prompt
from thinkling.records import latest_traces
from thinkling.tasks import get_task


def ask(q: str, n: int = 16, **kw) -> Request:
    return Request([{"role": "user", "content": q}], sampling=SamplingParams(max_tokens=n), **kw)


# ----------------------------------------------------------------------------- registry and options


def test_every_backend_is_registered_with_its_own_options():
    assert set(engine_names()) >= {"oracle", "reference", "hf", "openai", "vllm"}
    for name, spec in ENGINES.items():
        assert spec.options.model_fields["backend"].default == name, name
        assert spec.cls.name == name and issubclass(spec.cls, Engine)
    minimal = {"oracle": {}, "reference": {}, "hf": {"model": "m"}, "vllm": {"model": "m"},
               "openai": {"model": "m", "base_url": "http://x/v1"}}
    for name, extra in minimal.items():
        assert type(engine_options({"backend": name, **extra})) is ENGINES.get(name).options
    assert engine_options({}).backend == "oracle"  # the default teacher
    ids = {n: engine_options({"backend": n, **e}).engine_id() for n, e in minimal.items()}
    # the ids older versions keyed traces by
    assert ids == {"oracle": "oracle:long", "reference": "reference:long", "hf": "hf:m", "vllm": "vllm:m",
                   "openai": "openai:m"}


def test_option_errors_name_the_key_and_old_spellings_keep_working():
    with pytest.raises(ConfigError, match="unknown engine backend 'nope'; known: .*openai"):
        engine_options({"backend": "nope"})
    with pytest.raises(ConfigError, match="unknown key 'teacher.bogus'"):
        engine_options({"backend": "hf", "model": "m", "bogus": 1})
    with pytest.raises(ConfigError, match="key 'models.x.batch_size'"):
        engine_options({"backend": "hf", "model": "m", "batch_size": "many"}, key="models.x")
    with pytest.raises(ConfigError, match="missing required key 'teacher.model'"):
        build_config(GenerateConfig, {"out": "x", "teacher": {"backend": "hf"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # configs written when every backend had every key: unset ones drop silently
        old = engine_options({"backend": "oracle", "style": "concise", "model": None, "batch_size": 32,
                              "base_url": None, "vllm_max_model_len": None, "extra_body": {}, "api": "chat"})
    assert old.model_dump() == {"backend": "oracle", "name": None, "style": "concise"}
    with pytest.warns(UserWarning, match="'batch_size' belongs to backend hf; ignored for backend oracle"):
        engine_options({"backend": "oracle", "batch_size": 64})
    with pytest.warns(FutureWarning, match="'vllm_max_model_len' is now 'max_model_len'"):
        v = engine_options({"backend": "vllm", "model": "m", "vllm_max_model_len": 512})
    assert v.max_model_len == 512


def test_help_lists_each_backends_keys_from_the_registry():
    rows = {k: d for k, _, d in describe_fields(GenerateConfig)}
    assert "hf, openai, oracle, reference, vllm" in rows["teacher.backend"]
    assert rows["teacher.base_url"].startswith("(openai)") and rows["teacher.style"].startswith("(oracle)")
    assert "teacher.vllm_max_model_len" not in rows and "teacher.max_model_len" in rows


class EchoOptions(EngineOptions):
    backend: Literal["echo"] = "echo"
    shout: bool = False


class EchoEngine(Engine):
    """Answers every request with its own question (a test backend)."""

    def __init__(self, options: EchoOptions):
        self.shout = options.shout

    def generate(self, requests):
        out = []
        for r in requests:
            q = r.messages[-1]["content"]
            out.append(Reply(format_assistant("echo", q.upper() if self.shout else q), reasoning="echo",
                             answer=q.upper() if self.shout else q))
        return out


@pytest.fixture
def echo_backend():
    register_engine("echo", EchoOptions)(EchoEngine)
    yield
    ENGINES._items.pop("echo")


def test_a_new_backend_is_one_module_and_one_registry_line(echo_backend, tmp_path, captured):
    """Registered after thinkling was imported: configs, --help and the generate stage take it at once."""
    assert "echo" in engine_names()
    assert "(echo)" in {k: d for k, _, d in describe_fields(GenerateConfig)}["teacher.shout"]
    cfg = build_config(GenerateConfig, {"out": str(tmp_path / "g"), "task": {"n": 2, "levels": [1]},
                                        "teacher": {"backend": "echo", "shout": True}})
    m = generate(cfg, console=captured.console)
    traces = list(latest_traces(tmp_path / "g" / "traces.jsonl").values())
    assert m["counts"]["traces"] == len(traces) == 2
    assert all(t.teacher == "echo" and t.answer == t.question.upper() for t in traces)


# ----------------------------------------------------------------------------- programmatic engines


def test_oracle_answers_every_role_and_cuts_at_max_tokens_words():
    task = get_task("arithmetic")
    p = task.problems("train", n=1, levels=[3])[0]
    eng = build_engine(engine_options({"backend": "oracle", "style": "long"}), task)
    base = {"problem": p, "task": task}
    solve, judge, know, rewrite = eng.generate([
        ask(p.question, 2048, seed=1, **base), ask("rate", 8, role="judge", context={"tiers": 3}, **base),
        ask("knowledge?", 64, role="knowledge", **base),
        ask("rewrite", 2048, role="rewrite", context={"sentences": task.oracle(p, "long").sentences,
                                                       "budget_words": 10}, **base)])
    tr = task.oracle(p, "long", seed=1)
    assert (solve.reasoning, solve.answer) == (tr.reasoning, tr.answer)
    assert solve.text == format_assistant(tr.reasoning, tr.answer) and solve.meta["usage_unit"] == "words"
    assert solve.completion_tokens == len((tr.reasoning + " " + tr.answer).split())
    assert judge.answer == "3" and know.answer == tr.knowledge and rewrite.meta["sentences"]
    kinds = {s[1] for s in rewrite.meta["sentences"]}  # fitted into 10 words: transitions go first, steps stay
    assert len(rewrite.reasoning.split()) <= 10 and "step" in kinds and "transition" not in kinds
    [cut] = eng.generate([ask(p.question, 5, seed=1, **base)])
    assert cut.finish_reason == "length" and cut.answer == "" and cut.completion_tokens == 5
    assert len(cut.reasoning.split()) == 5 and solve.text.startswith(cut.text)
    [bad] = eng.generate([ask("q", 8, problem=p, task=get_task("gsm8k"))])
    assert isinstance(bad, ValueError) and "synthetic" in str(bad)
    with pytest.raises(ValueError, match="only knows synthetic tasks"):
        build_engine(engine_options({"backend": "oracle"}), get_task("gsm8k"))


def test_reference_engine_writes_the_datasets_solutions(gsm8k_dir):
    task = get_task("gsm8k", data_dir=str(gsm8k_dir))
    p = task.problems("train", n=1)[0]
    eng = build_engine(engine_options({"backend": "reference"}))
    rep, err = eng.generate([ask(p.question, 2048, problem=p, task=task),
                             ask(p.question, 8, problem=p, task=task, role="judge")])
    tr = task.reference_trace(p)
    assert (rep.reasoning, rep.answer) == (tr.reasoning, tr.answer)
    assert task.score(rep.text, p.answer)[1]
    assert isinstance(err, ValueError) and "cannot judge" in str(err)


# ----------------------------------------------------------------------------- the hf engine


@pytest.fixture(scope="module")
def hf(noisy_model):
    return build_engine(engine_options({"backend": "hf", "model": str(noisy_model), "batch_size": 4}))


QS = ["a=1\nb=a+2\nWhat is b?", "x", "Compute mod 10.\na=7\nWhat is a?", "b=3", "one two three"]


def test_hf_requests_raw_prompts_started_replies_and_failures_alone(hf):
    tok = hf.tokenizer
    raw = [Request(prompt=q, sampling=SamplingParams(max_tokens=12)) for q in QS[:3]]
    want = generate_ids(hf.model, tok, [tok(q)["input_ids"] for q in QS[:3]], max_new_tokens=12)
    assert [r.text for r in hf.generate(raw)] == [c.text for c in want]
    plain = hf.generate([ask(q, 12) for q in QS])
    started = hf.generate([ask(q, 12, prefix="<think>\nSo b") for q in QS])
    start = tok("<think>\nSo b", add_special_tokens=False)["input_ids"]
    prompts = [render_prompt(tok, [{"role": "user", "content": q}]) + start for q in QS]
    cont = generate_ids(hf.model, tok, prompts, max_new_tokens=12)
    assert [s.text for s in started] == ["<think>\nSo b" + c.text for c in cont]  # the prompt, then the started reply
    assert [s.completion_tokens for s in started] == [c.n_tokens for c in cont]
    assert [s.text for s in started] != [r.text for r in plain]
    ctx = hf.context
    reqs = [ask(q, 12) for q in QS[:2]] + [ask("1 + " * ctx, 12), ask(QS[2], 12, adapter="nope")]
    ok1, ok2, too_long, no_adapter = hf.generate(reqs)
    assert [ok1.text, ok2.text] == [plain[0].text, plain[1].text]
    assert isinstance(too_long, ValueError) and "does not fit" in str(too_long)
    assert isinstance(no_adapter, ValueError) and "not loaded" in str(no_adapter)


def test_hf_sampled_replies_are_seeded_per_seed_group(hf):
    """Requests are grouped by seed and each group is one seeded call: the same requests give the same
    samples, another seed other samples (a sample still depends on its group's other requests)."""
    hot = SamplingParams(temperature=1.0, max_tokens=12)
    reqs = [Request([{"role": "user", "content": q}], sampling=hot, seed=s) for q in QS for s in (1, 2)]
    a, b = hf.generate(reqs), hf.generate(reqs)
    assert [r.text for r in a] == [r.text for r in b]
    assert [r.text for r in a[0::2]] != [r.text for r in a[1::2]]


def test_hf_logprobs_are_the_models_own(hf):
    reps = hf.generate([ask(q, 10, logprobs=3) for q in QS])
    for q, r in zip(QS, reps):
        prompt = render_prompt(hf.tokenizer, [{"role": "user", "content": q}])
        toks = [e.token for e in r.logprobs]
        assert len(toks) == r.completion_tokens and hf.tokenizer.decode(toks, skip_special_tokens=True) == r.text
        [ref] = token_logprobs(hf.model, [prompt + toks], [len(prompt)], k=3)
        assert [(t, round(lp, 5)) for t, lp, _ in ref] == [(e.token, round(e.logprob, 5)) for e in r.logprobs]
        for e in r.logprobs:  # greedy: the chosen token is the most likely one, and the top 3 are sorted
            assert len(e.top) == 3 and e.top[0][0] == e.token and e.top[0][1] >= e.top[1][1] >= e.top[2][1]
            assert e.logprob <= 0 and math.isclose(e.top[0][1], e.logprob, abs_tol=1e-6)
    assert hf.generate([ask(QS[0], 10)])[0].logprobs is None


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


# ----------------------------------------------------------------------------- the call log


class Counting(Engine):
    def __init__(self):
        self.asked: list[str] = []

    def generate(self, requests):
        self.asked += [r.key for r in requests]
        return [Reply(f"re {r.key}", answer=f"re {r.key}", completion_tokens=2) if r.key != "bad" else ValueError("no")
                for r in requests]


def test_logged_engine_asks_each_key_once_and_reads_older_logs(tmp_path):
    log = tmp_path / "calls.jsonl"
    # rows an earlier version wrote: eval's (text, n_tokens, truncated) and curate's (reasoning, answer, ...)
    log.write_text(json.dumps({"key": "e", "text": "<think>\nx</think>\n7", "n_tokens": 4, "truncated": True,
                               "seconds": 0.5}) + "\n"
                   + json.dumps({"key": "c", "reasoning": "r", "answer": "a", "finish_reason": "stop",
                                 "prompt_tokens": 3, "completion_tokens": 2}) + "\n" + '{"key": "to')
    built = []

    def make():
        built.append(Counting())
        return built[-1]

    with LoggedEngine(make, log) as eng:
        e, c = eng.generate([Request(key="e"), Request(key="c")])
        assert not built  # everything was in the log: no engine was built
        assert (e.text, e.completion_tokens, e.truncated, e.answer) == ("<think>\nx</think>\n7", 4, True, "7")
        assert (c.reasoning, c.answer, c.text, c.prompt_tokens) == ("r", "a", format_assistant("r", "a"), 3)
        new, bad, again = eng.generate([Request(key="n"), Request(key="bad"), Request(key="e")])
        assert new.text == "re n" and isinstance(bad, ValueError) and again.text == e.text
    assert built[0].asked == ["n", "bad"]
    with LoggedEngine(make, log) as eng:  # a re-run: the failure is asked again, the rest is read back
        eng.generate([Request(key="n"), Request(key="bad")])
    assert len(built) == 2 and built[1].asked == ["bad"]
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["e", "c", "n"]  # the torn line was cut, the failure never logged


def test_replies_keep_their_parts(tmp_path):
    r = Reply.of_text("<short><think>\nplan\n</think>\n42", completion_tokens=5)
    assert (r.reasoning, r.answer, r.truncated) == ("plan", "42", False)
    cut = Reply.of_text("<think>\nstill thinking", finish_reason="length")
    assert cut.truncated and cut.answer == "" and cut.reasoning == "still thinking"
    req = replace(ask("q", 8), prefix="<long>")
    assert req.sampling.max_tokens == 8 and req.prefix == "<long>" and req.seed == 0
