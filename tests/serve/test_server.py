"""``thinkling serve``: a real server on loopback, real tiny models, the official ``openai`` client.

Replies are compared with what the same model gives without the server (``generate_batched``, peft,
a plain forward pass), so the server is shown to add nothing but the API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
import torch

from helpers.serve import QUESTIONS, client, msgs, post, stats
from thinkling.models.generation import generate_batched
from thinkling.models.loading import load_model, load_tokenizer
from thinkling.models.render import render_prompt
from thinkling.serve.server import serve_in_thread


@pytest.fixture(scope="module")
def thinker(noisy_model: Path, tmp_path_factory):
    """The noisy model with an R1-style template whose generation prompt opens ``<think>``."""
    out = tmp_path_factory.mktemp("thinker") / "model"
    shutil.copytree(noisy_model, out)
    tok = load_tokenizer(str(out))
    tok.chat_template = tok.chat_template.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\n<think>\n'")
    tok.save_pretrained(out)
    url, stop = serve_in_thread(str(out), name="thinker")
    yield url, tok, out
    stop()


def test_models_chat_and_completions(noisy):
    url, _, tok = noisy
    c = client(url)
    assert [m.id for m in c.models.list().data] == ["noisy"] and c.models.retrieve("noisy").id == "noisy"
    r = c.chat.completions.create(model="noisy", messages=msgs(QUESTIONS[0]), temperature=0, max_tokens=12)
    assert r.object == "chat.completion" and r.model == "noisy" and len(r.choices) == 1
    ch = r.choices[0]
    assert ch.message.role == "assistant" and isinstance(ch.message.content, str)
    assert ch.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens == len(render_prompt(tok, msgs(QUESTIONS[0])))
    assert 1 <= r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    parts = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
             {"role": "user", "content": [{"type": "text", "text": "a=1. "}, {"type": "text", "text": "a?"}]}]
    r = c.chat.completions.create(model="noisy", messages=parts, temperature=0, max_tokens=4)
    assert r.usage.prompt_tokens == len(render_prompt(tok, [{"role": "system", "content": "Be brief."},
                                                            {"role": "user", "content": "a=1. a?"}]))

    r = c.completions.create(model="noisy", prompt=["a=3, b=a+1", "x=2"], temperature=0, max_tokens=5, n=2)
    assert r.object == "text_completion" and [x.index for x in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text  # greedy: the two samples of one prompt agree
    assert r.usage.prompt_tokens == len(tok("a=3, b=a+1")["input_ids"]) + len(tok("x=2")["input_ids"])
    assert {x.finish_reason for x in r.choices} <= {"stop", "length"} and r.usage.completion_tokens <= 20


def test_greedy_equals_generate_batched(noisy):
    url, model, tok = noisy
    c = client(url)
    ref = generate_batched(model, tok, [msgs(q) for q in QUESTIONS[:6]], max_new_tokens=30)
    got = [c.chat.completions.create(model="noisy", messages=msgs(q), temperature=0, max_tokens=30)
           for q in QUESTIONS[:6]]
    assert [r.choices[0].message.content for r in got] == [x.text for x in ref]
    assert [r.choices[0].finish_reason for r in got] == ["length" if x.truncated else "stop" for x in ref]
    assert [r.usage.completion_tokens for r in got] == [x.n_tokens for x in ref]
    assert all(x.n_tokens == 30 for x in ref if x.truncated)
    assert {r.choices[0].finish_reason for r in got} == {"stop", "length"}, "both endings should be exercised"
    # the same prompt as token ids through /v1/completions gives the same text
    ids = render_prompt(tok, msgs(QUESTIONS[0]))
    r = c.completions.create(model="noisy", prompt=ids, temperature=0, max_tokens=30)
    assert r.choices[0].text == ref[0].text


def test_continue_final_message_continues_a_started_reply(noisy):
    url, model, tok = noisy
    c = client(url)
    started = "<think>\nx"
    ref = generate_batched(model, tok, [msgs(QUESTIONS[1])], max_new_tokens=12, reply_prefix=started)[0]
    r = c.chat.completions.create(model="noisy", messages=msgs(QUESTIONS[1]) + [{"role": "assistant", "content": started}],
                                  temperature=0, max_tokens=12,
                                  extra_body={"continue_final_message": True, "add_generation_prompt": False})
    assert started + r.choices[0].message.content == ref.text      # the reply holds the continuation only
    assert r.usage.completion_tokens == ref.n_tokens
    with pytest.raises(openai.BadRequestError, match="started assistant message"):
        c.chat.completions.create(model="noisy", messages=msgs(QUESTIONS[1]), max_tokens=2,
                                  extra_body={"continue_final_message": True})


def test_n_samples_and_seed(noisy):
    url, _, _ = noisy
    c = client(url)
    kw = dict(model="noisy", messages=msgs(QUESTIONS[1]), n=3, temperature=1.0, top_p=0.95, max_tokens=15,
              extra_body={"ignore_eos": True})
    r1 = c.chat.completions.create(seed=7, **kw)
    assert [ch.index for ch in r1.choices] == [0, 1, 2]
    texts = [ch.message.content for ch in r1.choices]
    assert len(set(texts)) > 1, texts
    assert r1.usage.completion_tokens == 45
    r2 = c.chat.completions.create(seed=7, **kw)
    assert [ch.message.content for ch in r2.choices] == texts  # a seed makes sampling reproducible
    r3 = c.chat.completions.create(seed=8, **kw)
    assert [ch.message.content for ch in r3.choices] != texts


def test_streaming_equals_non_streaming(noisy):
    url, _, _ = noisy
    c = client(url)
    for q in QUESTIONS[:3]:
        kw = dict(model="noisy", messages=msgs(q), temperature=0, max_tokens=25)
        full = c.chat.completions.create(**kw).choices[0]
        chunks = list(c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == full.message.content
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == full.finish_reason
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    # completions, n=2, with a stop string: each choice's pieces, in order, give its text
    kw = dict(model="noisy", prompt="a=3, b=a+1. b?", temperature=0, max_tokens=25, n=2)
    full = c.completions.create(**kw)
    parts = {0: "", 1: ""}
    for ch in c.completions.create(stream=True, **kw):
        for x in ch.choices:
            parts[x.index] += x.text
    assert parts == {x.index: x.text for x in full.choices}


def test_stop_strings(noisy):
    url, _, _ = noisy
    c = client(url)
    kw = dict(model="noisy", messages=msgs(QUESTIONS[2]), temperature=0, max_tokens=30)
    text = c.chat.completions.create(**kw).choices[0].message.content
    assert len(text) > 6
    stop = text[4:6]
    cut = text[: text.index(stop)]
    r = c.chat.completions.create(stop=[stop, "never-said"], **kw).choices[0]
    assert (r.message.content, r.finish_reason) == (cut, "stop")
    chunks = c.chat.completions.create(stop=stop, stream=True, **kw)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert streamed == cut


def test_logprobs_match_a_forward_pass(noisy):
    url, model, tok = noisy
    c = client(url)
    k = 5
    r = c.chat.completions.create(model="noisy", messages=msgs(QUESTIONS[3]), temperature=0, max_tokens=8,
                                  logprobs=True, top_logprobs=k, extra_body={"ignore_eos": True})
    entries = r.choices[0].logprobs.content
    assert len(entries) == 8
    ids = render_prompt(tok, msgs(QUESTIONS[3]))
    with torch.no_grad():
        for e in entries:  # greedy, so each chosen token is the argmax of a plain full forward pass
            lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)
            top = torch.topk(lp, k)
            nxt = int(top.indices[0])
            assert e.token == tok.decode([nxt])
            assert e.logprob == pytest.approx(float(lp[nxt]), abs=1e-4)
            assert [t.logprob for t in e.top_logprobs] == sorted((t.logprob for t in e.top_logprobs), reverse=True)
            assert [t.token for t in e.top_logprobs] == [tok.decode([i]) for i in top.indices.tolist()]
            assert [t.logprob for t in e.top_logprobs] == pytest.approx(top.values.tolist(), abs=1e-4)
            assert e.bytes == list(e.token.encode())
            ids.append(nxt)
    # completions: the legacy shape, k entries per token
    r = c.completions.create(model="noisy", prompt="a=3, b=a+1", temperature=0, max_tokens=4, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens
    assert all(len(d) <= 3 and max(d.values()) == pytest.approx(v) for d, v in zip(lp.top_logprobs, lp.token_logprobs))


def _think_len(entries) -> int:
    """Generated tokens before the </think> token (the prompt opened the thinking)."""
    tokens = [e.token for e in entries]
    assert "</think>" in tokens, tokens
    return tokens.index("</think>")


def test_thinking_budget_and_reasoning_split(thinker):
    url, tok, _ = thinker
    c = client(url)
    kw = dict(model="thinker", messages=msgs(QUESTIONS[4]), temperature=0, max_tokens=40, logprobs=True,
              top_logprobs=0)
    free = c.chat.completions.create(extra_body={"ignore_eos": True}, **kw)
    assert "</think>" not in free.choices[0].message.content, "the model should not close its thinking by itself"
    assert free.usage.completion_tokens_details.reasoning_tokens == 40

    for budget in (0, 5):
        r = c.chat.completions.create(extra_body={"thinking_budget": budget, "ignore_eos": True}, **kw)
        assert _think_len(r.choices[0].logprobs.content) == budget
        assert r.usage.completion_tokens_details.reasoning_tokens == budget
        raw = r.choices[0].message.content
        assert "</think>" in raw and raw.split("</think>", 1)[1].strip(), "the answer goes on after </think>"
        assert getattr(r.choices[0].message, "reasoning_content", None) is None  # default: raw text in content

        split = c.chat.completions.create(extra_body={"thinking_budget": budget, "ignore_eos": True,
                                                      "separate_reasoning": True}, **kw).choices[0].message
        head, tail = raw.split("</think>", 1)
        assert split.reasoning_content == head.strip() and split.content == tail.lstrip()
        # streamed, the two parts arrive separately and add up to the same
        parts = {"reasoning_content": "", "content": ""}
        for ch in c.chat.completions.create(stream=True, extra_body={"thinking_budget": budget, "ignore_eos": True,
                                                                     "separate_reasoning": True}, **kw):
            for key in parts:
                parts[key] += getattr(ch.choices[0].delta, key, None) or ""
        assert parts == {"reasoning_content": split.reasoning_content, "content": split.content}


def test_reasoning_parser_server_flag(thinker):
    _, tok, path = thinker
    url, stop = serve_in_thread(str(path), name="t", reasoning_parser="think")
    try:
        c = client(url)
        kw = dict(model="t", messages=msgs(QUESTIONS[5]), temperature=0, max_tokens=20)
        extra = {"thinking_budget": 4, "ignore_eos": True}
        m = c.chat.completions.create(extra_body=extra, **kw).choices[0].message
        raw = c.chat.completions.create(extra_body={**extra, "separate_reasoning": False}, **kw).choices[0].message
        assert m.reasoning_content and "</think>" not in m.content
        assert getattr(raw, "reasoning_content", None) is None and "</think>" in raw.content
        assert raw.content.split("</think>")[0].strip() == m.reasoning_content
        # completions are never split; a prompt that opens <think> is budgeted there too
        ids = render_prompt(tok, msgs(QUESTIONS[5]))
        r = c.completions.create(model="t", prompt=ids, temperature=0, max_tokens=20, logprobs=0, extra_body=extra)
        assert r.choices[0].logprobs.tokens.index("</think>") == 4
        assert r.usage.completion_tokens_details.reasoning_tokens == 4
    finally:
        stop()


@pytest.fixture(scope="module")
def lora_dirs(tiny_model: Path, tmp_path_factory) -> dict[str, Path]:
    """Two LoRA adapters on the tiny model, random A *and* B (init_lora_weights=False) so they differ."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for name, seed in (("alpha", 1), ("beta", 2)):
        torch.manual_seed(seed)
        conf = LoraConfig(r=8, lora_alpha=64, init_lora_weights=False,
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        get_peft_model(load_model(str(tiny_model)), conf).save_pretrained(root / name)
        out[name] = root / name
    return out


@pytest.mark.slow
def test_adapters_by_model_name(tiny_model: Path, lora_dirs):
    from peft import PeftModel

    tok = load_tokenizer(str(tiny_model))
    convs = [msgs(q) for q in QUESTIONS[:3]]
    want = {"tiny": [x.text for x in generate_batched(load_model(str(tiny_model)), tok, convs, max_new_tokens=12)]}
    for name, path in lora_dirs.items():
        peft_model = PeftModel.from_pretrained(load_model(str(tiny_model)), str(path))
        want[name] = [x.text for x in generate_batched(peft_model, tok, convs, max_new_tokens=12)]
    assert want["alpha"] != want["beta"] and want["alpha"] != want["tiny"] and want["beta"] != want["tiny"]

    url, stop = serve_in_thread(str(tiny_model), name="tiny", adapters={k: str(v) for k, v in lora_dirs.items()})
    try:
        c = client(url)
        assert [m.id for m in c.models.list().data] == ["tiny", "alpha", "beta"]

        def ask(model, conv):
            r = c.chat.completions.create(model=model, messages=conv, temperature=0, max_tokens=12)
            return r.choices[0].message.content

        for name in ("alpha", "tiny", "beta", "alpha"):  # switching back and forth
            assert [ask(name, conv) for conv in convs] == want[name], name
        # all three models in flight at once: one batch mixes adapters (peft adapter_names), same replies
        got: dict[tuple[str, int], str] = {}
        jobs = [(name, i) for name in want for i in range(len(convs))]
        threads = [threading.Thread(target=lambda n=n, i=i: got.__setitem__((n, i), ask(n, convs[i]))) for n, i in jobs]
        before = stats(url)["batches"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {k: got[k] for k in jobs} == {(n, i): want[n][i] for n, i in jobs}
        assert stats(url)["batches"] - before < len(jobs)
    finally:
        stop()


def test_malformed_requests_get_4xx_and_the_server_goes_on(noisy):
    url, _, tok = noisy
    good = {"model": "noisy", "messages": msgs("a=1. a?"), "max_tokens": 3, "temperature": 0}
    long_prompt = "a=1, b=a+2, " * 300
    assert len(render_prompt(tok, msgs(long_prompt))) > 1024
    bad = [
        ("/chat/completions", b"{not json"),
        ("/chat/completions", {"model": "noisy"}),                                   # no messages
        ("/chat/completions", {**good, "messages": []}),
        ("/chat/completions", {**good, "messages": [{"role": "wizard", "content": "x"}]}),
        ("/chat/completions", {**good, "max_tokens": -5}),
        ("/chat/completions", {**good, "n": 0}),
        ("/chat/completions", {**good, "n": 1000}),
        ("/chat/completions", {**good, "temperature": 7}),
        ("/chat/completions", {**good, "top_logprobs": 3}),                          # without logprobs=true
        ("/chat/completions", {**good, "logprobs": True, "top_logprobs": 1000}),
        ("/chat/completions", {**good, "messages": msgs(long_prompt)}),              # longer than the context
        ("/chat/completions", {**good, "max_tokens": 5000}),                         # prompt + max_tokens > context
        ("/chat/completions", {**good, "stop": [""]}),
        ("/completions", {"model": "noisy", "prompt": []}),
        ("/completions", {"model": "noisy", "prompt": [10**9]}),
        ("/completions", {"model": "noisy"}),
        ("/nowhere", good),
    ]
    for path, body in bad:
        status, out = post(url, path, body)
        assert 400 <= status < 500, (path, body, status, out)
        assert set(out["error"]) >= {"message", "type", "code"} and out["error"]["message"], out
        status, out = post(url, "/chat/completions", good)   # and the server still serves
        assert status == 200 and out["choices"][0]["message"]["content"] is not None
    status, out = post(url, "/chat/completions", {**good, "messages": msgs(long_prompt)})
    assert out["error"]["code"] == "context_length_exceeded" and "1024" in out["error"]["message"]


def test_unknown_model_is_404(noisy):
    url, _, _ = noisy
    with pytest.raises(openai.NotFoundError) as e:
        client(url).chat.completions.create(model="gpt-9", messages=msgs("hi"))
    assert e.value.status_code == 404
    assert e.value.body["code"] == "model_not_found" and "gpt-9" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client(url).models.retrieve("gpt-9")
    status, out = post(url, "/completions", {"model": "gpt-9", "prompt": "x"})
    assert status == 404 and out["error"]["type"] == "invalid_request_error"


@pytest.mark.slow
def test_cli_serve_binds_loopback_and_logs_ready(tiny_model: Path):
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "thinkling.cli", "serve", f"model={tiny_model}", "--port", "0",
                          "name=cli-tiny", "shutdown_timeout_s=0.5"], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "ready on" not in line and time.monotonic() < deadline:
            line = p.stderr.readline()
            assert line or p.poll() is None, "the server exited before it was ready"
        assert "ready on http://127.0.0.1:" in line and "cli-tiny" in line
        url = line.split("ready on ")[1].split()[0]
        assert [m.id for m in client(url).models.list().data] == ["cli-tiny"]
        # SIGTERM with a request in flight: after shutdown_timeout_s it is answered with a JSON 503
        got = []
        t = threading.Thread(target=lambda: got.append(post(url, "/chat/completions", {
            "model": "cli-tiny", "messages": msgs("a=1"), "max_tokens": 1000, "ignore_eos": True})))
        t.start()
        deadline = time.monotonic() + 10
        while not stats(url)["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        p.terminate()
        t.join(30)
        (status, out), = got
        assert status == 503 and out["error"]["code"] == "server_shutting_down", out
    finally:
        p.terminate()
        p.wait(30)


def test_stop_ends_running_requests(noisy_model: Path):
    url, stop = serve_in_thread(str(noisy_model), name="s")
    c = client(url)
    run = c.chat.completions.create(model="s", messages=msgs("a=1"), max_tokens=1000, temperature=0, stream=True,
                                    extra_body={"ignore_eos": True})
    it = iter(run)
    next(it)
    t0 = time.monotonic()
    stop()
    assert time.monotonic() - t0 < 10
    with pytest.raises(Exception):  # noqa: B017 - the stream ends with an error event (or the connection drops)
        for _ in it:
            pass
    stop()  # idempotent


def test_shutdown_answers_json_errors(noisy_model: Path):
    """Running and waiting requests are answered with a JSON 503 (not uvicorn's plain-text 500)."""
    url, stop = serve_in_thread(str(noisy_model), name="sd", max_batch_size=2)
    got: dict[int, tuple[int, dict]] = {}
    body = {"model": "sd", "messages": msgs("a=1"), "max_tokens": 1000, "ignore_eos": True}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, post(url, "/chat/completions", body)))
               for i in range(3)]                     # two run (max_batch_size=2), one waits
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while stats(url)["in_flight"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop()
    for t in threads:
        t.join(30)
    assert len(got) == 3
    for status, out in got.values():
        assert status == 503 and out["error"]["code"] == "server_shutting_down", out
        assert out["error"]["type"] == "server_error" and "shutting down" in out["error"]["message"]


def test_shutdown_grace_lets_requests_finish(noisy_model: Path):
    url, stop = serve_in_thread(str(noisy_model), name="gr")
    got = []
    t = threading.Thread(target=lambda: got.append(post(url, "/chat/completions", {
        "model": "gr", "messages": msgs("a=1"), "max_tokens": 300, "ignore_eos": True})))
    t.start()
    deadline = time.monotonic() + 10
    while not stats(url)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    stop(grace=30)
    t.join(30)
    (status, out), = got
    assert status == 200 and out["usage"]["completion_tokens"] == 300
    assert time.monotonic() - t0 < 20, "stop returns once the requests in flight are done, not after the grace"


def test_lorid_output_dir_serves_its_adapters(tiny_model: Path, lora_dirs, tmp_path: Path):
    """The layout a LoRID training writes: base/, adapters/<name>/ and lorid.json, served as one model dir."""
    root = tmp_path / "lorid-student"
    shutil.copytree(tiny_model, root / "base")
    for name, path in lora_dirs.items():
        shutil.copytree(path, root / "adapters" / name)
    (root / "lorid.json").write_text(json.dumps({"base": "base", "adapters": {n: f"adapters/{n}" for n in lora_dirs},
                                                 "default": "alpha"}))
    url, stop = serve_in_thread(str(root))
    try:
        c = client(url)
        assert [m.id for m in c.models.list().data] == ["lorid-student", "alpha", "beta"]
        out = {m: c.chat.completions.create(model=m, messages=msgs(QUESTIONS[0]), temperature=0,
                                            max_tokens=8).choices[0].message.content for m in ("alpha", "beta")}
        assert out["alpha"] != out["beta"]
    finally:
        stop()
